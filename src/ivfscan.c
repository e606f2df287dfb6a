/*-------------------------------------------------------------------------
 *
 * ivfscan.c
 *	  ORDER BY col <op> query scans of an ivfflat index.
 *
 * The first amgettuple after a rescan ranks the lists by centroid distance
 * and scans the nprobe nearest ("a probe round"): the distance of the
 * query to every vector of those lists (see listscan.c), within
 * ivf.max_codes and the candidate budget of ivf.profile /
 * ivf.candidate_budget, kept as (distance, tid) candidates.  Tuples are
 * then returned in exact distance order among the candidates, selected a
 * chunk at a time (select.c): the executor does not tell us the LIMIT, so
 * LIMIT 10 must not pay for sorting every candidate.
 *
 * With ivf.iterative_scan on, running out of candidates starts the next
 * round on the next nprobe lists, up to ivf.max_nprobe lists in all, so a
 * filtered query (WHERE ... ORDER BY ... LIMIT k) finds k rows when they
 * exist.  relaxed_order returns every new candidate (a later round may
 * hold rows nearer than ones already returned); strict_order skips those,
 * so the output stays ordered.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

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
	IvfMetaPageData meta;
	IvfGeometry geo;
	float	   *query;			/* prepared query */

	/* lists ranked nearest first; rounds of nprobe lists are scanned */
	int32	   *order;
	float	   *order_dist;
	uint32		nranked;
	uint32		probed;
	uint32		nprobe;
	int			iterative;		/* IVF_ITERATIVE_* */
	bool		have_last;
	float		last_dist;		/* strict_order: last distance returned */

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

/*
 * Scan the next round of up to nprobe ranked lists into a fresh candidate
 * set, within ivf.max_codes and the candidate budget.  Returns false when
 * no list is left.
 */
static bool
ivf_probe_round(IndexScanDesc scan)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	uint32		first = so->probed;
	uint32		n = Min(so->nprobe, so->nranked - first);
	uint64		budget = (uint64) ivf_effective_budget();
	uint64		remaining = ivf_max_codes > 0 ? (uint64) ivf_max_codes : PG_UINT64_MAX;
	uint64	   *caps = NULL;
	uint32		i;

	if (n == 0)
		return false;

	if (budget > 0)
	{
		caps = palloc(sizeof(uint64) * n);
		ivf_list_budgets(so->order_dist + first, n, budget,
						 ivf_budget_strategy, caps);
	}

	so->cands.n = 0;
	for (i = 0; i < n && remaining > 0; i++)
	{
		IvfListEntry entry;
		uint64		limit = remaining;

		if (caps && caps[i] < limit)
			limit = caps[i];
		ivf_read_list_entry(index, &so->meta, &so->geo, so->order[first + i], &entry);
		if (BlockNumberIsValid(entry.head))
			remaining -= ivf_scan_list(index, &so->geo, so->metric, entry.head,
									   so->order[first + i], so->query, limit,
									   &so->cands);
	}
	so->probed = first + n;

	ivf_select_stream_init(&so->stream, so->cands.dist, so->cands.id,
						   so->cands.n, IVF_FIRST_CHUNK);
	return true;
}

/* Rank the lists and scan the first round. */
static void
ivf_scan_start(IndexScanDesc scan)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	MemoryContext old = MemoryContextSwitchTo(so->cxt);
	IvfCache   *cache = ivf_get_cache(index);
	uint32		nlists;
	bool		skip;

	so->meta = cache->meta;
	so->geo = cache->geo;
	so->metric = (IvfMetric) so->meta.metric;
	nlists = so->meta.nlists;

	if (scan->numberOfOrderBys == 0 ||
		(scan->orderByData[0].sk_flags & SK_ISNULL))
	{
		/* no query vector: return the probed lists in arbitrary order */
		so->query = palloc0(sizeof(float) * so->meta.dims);
		so->null_query = true;
	}
	else
	{
		Vector	   *q = DatumGetVector(scan->orderByData[0].sk_argument);

		if (q->dim != (int) so->meta.dims)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("different vector dimensions %u and %d",
							so->meta.dims, q->dim),
					 errdetail("Index \"%s\" stores %u-dimensional vectors.",
							   RelationGetRelationName(index), so->meta.dims)));
		/* a zero cosine query has no direction: every distance is equal */
		so->query = ivf_prepare_vector(index, so->metric, so->meta.dims,
									   PointerGetDatum(q), &skip);
	}

	so->nprobe = ivf_effective_nprobe((int) ivf_index_default_nprobe(index, &so->meta),
									  (int) nlists);
	so->iterative = ivf_iterative_scan();
	so->nranked = so->nprobe;
	if (so->iterative != IVF_ITERATIVE_OFF)
	{
		int			maxp = ivf_max_nprobe();

		so->nranked = (maxp > 0) ? Max((uint32) maxp, so->nprobe) : nlists;
		so->nranked = Min(so->nranked, nlists);
	}
	so->order = palloc(sizeof(int32) * so->nranked);
	so->order_dist = palloc(sizeof(float) * so->nranked);
	ivf_nearest_lists(cache, so->query, so->nranked, so->order, so->order_dist);
	/* the cache may go away at the next invalidation: not used below */
	cache = NULL;

	ivf_candidates_init(&so->cands, so->cxt, 1024);
	so->probed = 0;
	so->have_last = false;
	(void) ivf_probe_round(scan);
	so->started = true;
	MemoryContextSwitchTo(old);

	pgstat_count_index_scan(index);
}

bool
ivf_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	float		d;
	int64		id;

	if (!so->started)
		ivf_scan_start(scan);

	for (;;)
	{
		if (ivf_select_stream_next(&so->stream, &d, &id))
		{
			/* strict order: never return a row nearer than one returned */
			if (so->iterative == IVF_ITERATIVE_STRICT && so->have_last &&
				d < so->last_dist)
				continue;
			break;
		}
		if (so->iterative == IVF_ITERATIVE_OFF)
			return false;
		else
		{
			MemoryContext old = MemoryContextSwitchTo(so->cxt);
			bool		more = ivf_probe_round(scan);

			MemoryContextSwitchTo(old);
			if (!more)
				return false;
		}
	}

	so->have_last = true;
	so->last_dist = d;
	ivf_id_to_tid(id, &scan->xs_heaptid);
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;
	if (scan->numberOfOrderBys > 0)
	{
		scan->xs_orderbyvals[0] = Float8GetDatum(ivf_distance_value(so->metric, d));
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
