/*-------------------------------------------------------------------------
 *
 * ivfcost.c
 *	  Cost estimate for ivfflat scans.
 *
 * An ivfflat scan does all its work before returning the first tuple: it
 * compares the query with every centroid, then reads the nprobe nearest
 * lists and computes a distance for each of their vectors.  So the startup
 * cost is the whole index cost, and the scan returns about
 * reltuples * nprobe / lists rows (its selectivity) in distance order.
 *
 * Pages: each list is a contiguous run of blocks after a build, so a list
 * costs one random read and then sequential ones.  The planner's cost for a
 * sequential scan does not include reading TOASTed values, and vectors of
 * more than ~500 dimensions are TOASTed, so a sequential scan of such a
 * table looks far cheaper than it is.  To compare like with like, the pages
 * the index reads are counted as at most the same fraction of the heap's
 * pages: the index reads nprobe/lists of the vectors, the sequential scan
 * all of them.
 *
 * Without an ORDER BY on the indexed operator the index is useless (it has
 * no search operators), so such paths are priced out.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "access/relation.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/spccache.h"

#include "ivfflat.h"

void
ivf_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				 Cost *indexStartupCost, Cost *indexTotalCost,
				 Selectivity *indexSelectivity, double *indexCorrelation,
				 double *indexPages)
{
	IndexOptInfo *info = path->indexinfo;
	Relation	index;
	IvfMetaPageData meta;
	double		nprobe;
	double		ratio;
	double		tuples;
	double		candidates;
	double		list_pages;
	double		pages;
	double		spc_random_page_cost;
	double		spc_seq_page_cost;
	Cost		io;
	Cost		cpu;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = disable_cost;
		*indexTotalCost = disable_cost;
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	index = index_open(info->indexoid, NoLock);
	ivf_read_meta(index, &meta);
	{
		IvfSearchSettings s;

		ivf_search_settings(index, &meta, &s);
		nprobe = s.nprobe;
	}
	index_close(index, NoLock);

	ratio = Min(1.0, nprobe / meta.nlists);

	tuples = info->rel->tuples > 0 ? info->rel->tuples : info->tuples;
	if (tuples < 1)
		tuples = 1;
	candidates = Max(1.0, tuples * ratio);

	get_tablespace_page_costs(info->reltablespace, &spc_random_page_cost,
							  &spc_seq_page_cost);

	/* list pages: all but the meta, centroid and directory pages */
	list_pages = (double) info->pages - 1 - meta.centroid_npages -
		meta.directory_npages;
	if (list_pages < 1)
		list_pages = 1;
	pages = list_pages * ratio;
	if (info->rel->pages > 0)
		pages = Min(pages, info->rel->pages * ratio + nprobe);
	pages = Max(pages, 1);

	io = Min(nprobe, pages) * spc_random_page_cost +
		Max(0, pages - nprobe) * spc_seq_page_cost;

	/* centroid distances, then one distance and one selection per candidate */
	cpu = meta.nlists * cpu_operator_cost +
		candidates * (cpu_index_tuple_cost + 2 * cpu_operator_cost);

	*indexStartupCost = io + cpu;
	*indexTotalCost = *indexStartupCost;
	*indexSelectivity = ratio;
	*indexCorrelation = 0;
	*indexPages = pages;
}
