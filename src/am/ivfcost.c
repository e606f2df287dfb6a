/*-------------------------------------------------------------------------
 *
 * ivfcost.c
 *	  Cost estimate for ivfflat scans.
 *
 * An ivfflat scan does all its work before returning the first tuple: it
 * compares the query with every centroid, then reads the nprobe nearest
 * lists and computes a distance for each of their vectors.  So the startup
 * cost is that of the nprobe lists: about tuples * nprobe / lists
 * candidates, returned in distance order.
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
 * The planner takes an index path to return every row of the table that
 * passes the WHERE clause, and interpolates between the startup and total
 * costs for a LIMIT.  So the total cost is what returning all the rows the
 * index holds in order would take: reading every list, fetching every heap
 * row (the selectivity is the index's share of the table) and sorting them.
 * With a LIMIT k the cost stays near the startup cost; without one it is
 * above a sequential scan and a sort, which return every matching row,
 * where the index would return only those in the probed lists.  A cursor
 * is planned for cursor_tuple_fraction of its rows, so it uses the index
 * (pgvector's ivfflat costs these cases alike).
 *
 * A partial index holds fewer rows than the table: its candidates and heap
 * fetches are counted from its own rows (IndexOptInfo.tuples, at most its
 * predicate's selectivity times the table's rows), not the table's.
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
#include "ivfformat.h"
#include "ivfpage.h"
#include "ivfsettings.h"

/*
 * Cost of reading the given share of the index's lists: nprobe random reads
 * (one per list), the other pages sequential, capped by the same share of
 * the heap pages the index's rows take (see above).
 */
static Cost
ivf_list_io(double list_pages, double heap_pages, double share,
			double nprobe, double spc_random_page_cost,
			double spc_seq_page_cost, double *pages_out)
{
	double		pages = list_pages * share;

	if (heap_pages > 0)
		pages = Min(pages, heap_pages * share + nprobe);
	pages = Max(pages, 1);
	if (pages_out)
		*pages_out = pages;
	return Min(nprobe, pages) * spc_random_page_cost +
		Max(0, pages - nprobe) * spc_seq_page_cost;
}

void
ivf_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				 Cost *indexStartupCost, Cost *indexTotalCost,
				 Selectivity *indexSelectivity, double *indexCorrelation,
				 double *indexPages)
{
	IndexOptInfo *info = path->indexinfo;
	Relation	index;
	IvfMetaPageData meta;
	double		nlists;
	double		nprobe;
	double		ratio;
	double		rel_tuples;
	double		tuples;
	double		share;
	double		candidates;
	double		list_pages;
	double		heap_pages;
	double		all_pages;
	double		spc_random_page_cost;
	double		spc_seq_page_cost;
	Cost		per_candidate;
	Cost		startup;
	Cost		total;

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

	nlists = Max(meta.nlists, 1);
	nprobe = Min(Max(nprobe, 1), nlists);
	ratio = nprobe / nlists;

	/*
	 * The rows the index holds: the table's, or for a partial index its own
	 * count, and at most the predicate's selectivity times the table's rows
	 * as genericcostestimate() does (a VACUUM that deletes nothing records
	 * the table's row count as the index's).
	 */
	rel_tuples = Max(info->rel->tuples, 1);
	tuples = info->tuples > 0 ? Min(info->tuples, rel_tuples) : rel_tuples;
	if (info->indpred != NIL)
		tuples = Min(tuples, rel_tuples *
					 clauselist_selectivity(root, info->indpred,
											info->rel->relid, JOIN_INNER,
											NULL));
	share = tuples / rel_tuples;
	heap_pages = info->rel->pages * share;
	candidates = Max(1.0, tuples * ratio);

	get_tablespace_page_costs(info->reltablespace, &spc_random_page_cost,
							  &spc_seq_page_cost);

	/* list pages: all but the meta, centroid and directory pages */
	list_pages = (double) info->pages - 1 - meta.centroid_npages -
		meta.directory_npages;
	if (list_pages < 1)
		list_pages = 1;

	/* one distance and one selection per candidate */
	per_candidate = cpu_index_tuple_cost + 2 * cpu_operator_cost;

	/* startup: the centroid distances, then the nprobe lists */
	startup = nlists * cpu_operator_cost +
		ivf_list_io(list_pages, heap_pages, ratio, nprobe,
					spc_random_page_cost, spc_seq_page_cost, NULL) +
		candidates * per_candidate;

	/* every row in order: every list, and a sort's comparisons */
	total = nlists * cpu_operator_cost +
		ivf_list_io(list_pages, heap_pages, 1.0, nlists,
					spc_random_page_cost, spc_seq_page_cost, &all_pages) +
		Max(tuples, 1) * per_candidate;
	if (tuples > 1)
		total += 2.0 * cpu_operator_cost * tuples * log2(tuples);

	*indexStartupCost = startup;
	*indexTotalCost = Max(total, startup);
	*indexSelectivity = share;
	*indexCorrelation = 0;
	*indexPages = all_pages;
}
