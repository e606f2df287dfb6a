/*-------------------------------------------------------------------------
 *
 * ivfscan.c
 *	  ORDER BY col <op> query scans of an ivfflat index.
 *
 * The first amgettuple after a rescan picks the nprobe nearest lists,
 * computes the distance of the query to every vector of those lists (see
 * listscan.c) and keeps (distance, tid) candidates.  Tuples are then
 * returned in exact distance order among the candidates, selected a chunk
 * at a time (select.c): the executor does not tell us the LIMIT, so LIMIT
 * 10 must not pay for sorting every candidate.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "ivfflat.h"
#include "vector.h"

#define IVF_FIRST_CHUNK 32

typedef struct IvfScanOpaqueData
{
	MemoryContext cxt;			/* reset at every rescan */
	bool		started;
	bool		null_query;		/* ORDER BY col <op> NULL */
	IvfMetric	metric;
	uint32		dims;
	float	   *query;			/* prepared query */
	IvfCandidates cands;
	IvfSelectStream stream;
} IvfScanOpaqueData;

typedef IvfScanOpaqueData *IvfScanOpaque;

IndexScanDesc
ivf_beginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	IvfScanOpaque so = palloc0(sizeof(IvfScanOpaqueData));

	so->cxt = AllocSetContextCreate(CurrentMemoryContext, "ivfflat scan",
									ALLOCSET_DEFAULT_SIZES);
	scan->opaque = so;
	if (norderbys > 0)
	{
		scan->xs_orderbyvals = palloc0(sizeof(Datum) * norderbys);
		scan->xs_orderbynulls = palloc(sizeof(bool) * norderbys);
		memset(scan->xs_orderbynulls, true, sizeof(bool) * norderbys);
	}
	return scan;
}

void
ivf_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys,
		   int norderbys)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;

	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys,
				scan->numberOfOrderBys * sizeof(ScanKeyData));

	MemoryContextReset(so->cxt);
	so->started = false;
	so->null_query = false;
}

/* Probe the lists and gather every candidate. */
static void
ivf_scan_start(IndexScanDesc scan)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	MemoryContext old = MemoryContextSwitchTo(so->cxt);
	IvfCache   *cache = ivf_get_cache(index);
	IvfMetaPageData meta = cache->meta;
	IvfGeometry g = cache->geo;
	uint32		nprobe;
	int32	   *lists;
	uint32		i;
	bool		skip;

	so->metric = (IvfMetric) meta.metric;
	so->dims = meta.dims;

	if (scan->numberOfOrderBys == 0 ||
		(scan->orderByData[0].sk_flags & SK_ISNULL))
	{
		/* no query vector: return the probed lists in arbitrary order */
		so->query = palloc0(sizeof(float) * meta.dims);
		so->null_query = true;
	}
	else
	{
		Vector	   *q = DatumGetVector(scan->orderByData[0].sk_argument);

		if (q->dim != (int) meta.dims)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("different vector dimensions %u and %d",
							meta.dims, q->dim),
					 errdetail("Index \"%s\" stores %u-dimensional vectors.",
							   RelationGetRelationName(index), meta.dims)));
		so->query = ivf_prepare_vector(index, so->metric, meta.dims,
									   PointerGetDatum(q), &skip);
		/* a zero cosine query has no direction: every distance is equal */
	}

	nprobe = ivf_effective_nprobe((int) ivf_index_default_nprobe(index, &meta),
								  (int) meta.nlists);
	lists = palloc(sizeof(int32) * nprobe);
	ivf_nearest_lists(cache, so->query, nprobe, lists, NULL);
	/* the cache may go away at the next invalidation: not used below */
	cache = NULL;

	ivf_candidates_init(&so->cands, so->cxt, 1024);
	for (i = 0; i < nprobe; i++)
	{
		IvfListEntry entry;

		ivf_read_list_entry(index, &meta, lists[i], &entry);
		if (BlockNumberIsValid(entry.head))
			ivf_scan_list(index, &g, so->metric, entry.head, lists[i],
						  so->query, &so->cands);
	}

	ivf_select_stream_init(&so->stream, so->cands.dist, so->cands.id,
						   so->cands.n, IVF_FIRST_CHUNK);
	so->started = true;
	MemoryContextSwitchTo(old);

	pgstat_count_index_scan(index);
}

/* the value of the ORDER BY operator for an internal distance */
static double
ivf_orderby_value(IvfMetric metric, float d)
{
	switch (metric)
	{
		case IVF_METRIC_L2:
			return sqrt((double) d);
		case IVF_METRIC_IP:
			return (double) d;
		case IVF_METRIC_COSINE:
			return 1.0 + (double) d;
	}
	return (double) d;
}

bool
ivf_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	float		d;
	int64		id;

	if (!so->started)
		ivf_scan_start(scan);

	if (!ivf_select_stream_next(&so->stream, &d, &id))
		return false;

	ivf_id_to_tid(id, &scan->xs_heaptid);
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;
	if (scan->numberOfOrderBys > 0)
	{
		scan->xs_orderbyvals[0] = Float8GetDatum(ivf_orderby_value(so->metric, d));
		scan->xs_orderbynulls[0] = so->null_query;
	}
	return true;
}

void
ivf_endscan(IndexScanDesc scan)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;

	MemoryContextDelete(so->cxt);
	pfree(so);
	scan->opaque = NULL;
}
