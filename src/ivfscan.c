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
	IvfSearchSettings settings; /* resolved at rescan (nprobe is in there too) */
	int			iterative;		/* IVF_ITERATIVE_* */
	bool		have_last;
	float		last_dist;		/* strict_order: last distance returned */

	IvfCandidates cands;
	IvfSelectStream stream;		/* the round's exact candidates */
	bool		have_e;			/* e_dist/e_id: the stream's next entry */
	float		e_dist;
	int64		e_id;

	/* prefilter: the round's deferred candidates, by lower bound */
	bool		use_pf;
	IvfPrefilter pf;
	int64	   *lb_idx;			/* stream ids: indexes into cands.lb_* */
	IvfSelectStream lbstream;
	bool		lb_pending;		/* lbstream not started: l_lb is the round's
								 * smallest bound, l_idx meaningless */
	bool		have_l;			/* l_lb/l_idx: lbstream's next entry */
	float		l_lb;
	int64		l_idx;
	/* deferred candidates refined so far, a min-heap in (dist, id) order */
	float	   *late_dist;
	int64	   *late_id;
	size_t		nlate;

	/*
	 * ivf.gpu = on: the first round's nearest rows as the GPU worker
	 * answered them (ascending), returned first; a scan that wants more
	 * runs the same round on the CPU and skips the ids returned already
	 * (gpu_seen, sorted).
	 */
	bool		gpu;
	int			gpu_n;
	int			gpu_next;
	float	   *gpu_dist;
	int64	   *gpu_id;
	int64	   *gpu_seen;
	bool		gpu_cpu_started;
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
ivf_probe_round(IndexScanDesc scan, IvfCache *cache)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	uint32		first = so->probed;
	uint32		n = Min(so->nprobe, so->nranked - first);
	uint64		budget = so->settings.budget;
	uint64		remaining = so->settings.max_codes > 0 ? so->settings.max_codes : PG_UINT64_MAX;
	uint64	   *caps = NULL;
	IvfListEntry next;
	uint32		i;

	if (n == 0)
		return false;

	if (budget > 0)
	{
		caps = palloc(sizeof(uint64) * n);
		ivf_list_budgets(so->order_dist + first, n, budget,
						 so->settings.budget_strategy, caps);
	}

	/*
	 * The centroids and the codes' rows never change, but the cache holding
	 * them may have been rebuilt since the last round: point at it afresh.
	 */
	if (so->use_pf)
	{
		if (cache == NULL)
			cache = ivf_get_cache(index);
		so->pf.lo = cache->sq8_lo;
		so->pf.step = cache->sq8_step;
	}

	ivf_candidates_reset(&so->cands, so->use_pf ? ivf_prefilter_k : 0);
	ivf_read_list_entry(index, &so->meta, &so->geo, so->order[first], &next);
	for (i = 0; i < n && remaining > 0; i++)
	{
		IvfListEntry entry = next;
		uint64		limit = remaining;
		int32		list = so->order[first + i];

		if (caps && caps[i] < limit)
			limit = caps[i];
		/* the next list's head warms up while this list is scanned */
		if (i + 1 < n)
		{
			ivf_read_list_entry(index, &so->meta, &so->geo,
								so->order[first + i + 1], &next);
			if (BlockNumberIsValid(next.head))
				ivf_prefetch_list_head(index, &so->geo, next.head,
									   so->use_pf);
		}
		if (!BlockNumberIsValid(entry.head))
			continue;
		if (so->use_pf)
			ivf_prefilter_list(&so->pf, so->query,
							   cache->centroids + (Size) list * so->meta.dims);
		remaining -= ivf_scan_list(index, &so->geo, so->metric, entry.head,
								   list, so->query, limit,
								   so->use_pf ? &so->pf : NULL, &so->cands);
	}
	so->probed = first + n;

	ivf_select_stream_init(&so->stream, so->cands.dist, so->cands.id,
						   so->cands.n, IVF_FIRST_CHUNK);
	so->have_e = false;
	so->have_l = false;
	so->lb_pending = false;
	so->nlate = 0;
	ivf_select_stream_init(&so->lbstream, NULL, NULL, 0, 1);
	if (so->cands.nlb > 0)
	{
		/*
		 * Selecting among tens of thousands of deferred slots costs about as
		 * much as scanning them (branchy quickselect), and most scans never
		 * need it: as long as the next exact candidate is nearer than the
		 * smallest bound, that bound alone decides (lb_start when not).  A
		 * NaN bound sorts last, but stands in as NaN, which nothing is
		 * nearer than, so the stream starts as it always did.
		 */
		so->lb_pending = true;
		so->have_l = true;
		so->l_lb = so->cands.lbnan ? get_float4_nan() : so->cands.lbmin;
	}
	return true;
}

/* Start selecting the round's deferred slots by lower bound. */
static void
lb_start(IvfScanOpaque so)
{
	MemoryContext old = MemoryContextSwitchTo(so->cxt);
	size_t		j;

	so->lb_idx = palloc_extended(sizeof(int64) * so->cands.nlb, MCXT_ALLOC_HUGE);
	for (j = 0; j < so->cands.nlb; j++)
		so->lb_idx[j] = (int64) j;
	ivf_select_stream_init(&so->lbstream, so->cands.lb, so->lb_idx,
						   so->cands.nlb, IVF_FIRST_CHUNK);
	so->late_dist = palloc_extended(sizeof(float) * so->cands.nlb, MCXT_ALLOC_HUGE);
	so->late_id = palloc_extended(sizeof(int64) * so->cands.nlb, MCXT_ALLOC_HUGE);
	so->lb_pending = false;
	so->have_l = ivf_select_stream_next(&so->lbstream, &so->l_lb, &so->l_idx);
	MemoryContextSwitchTo(old);
}

static void
late_push(IvfScanOpaque so, float d, int64 id)
{
	size_t		i = so->nlate++;

	while (i > 0 && ivf_dist_id_less(d, id, so->late_dist[(i - 1) / 2], so->late_id[(i - 1) / 2]))
	{
		so->late_dist[i] = so->late_dist[(i - 1) / 2];
		so->late_id[i] = so->late_id[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	so->late_dist[i] = d;
	so->late_id[i] = id;
}

static void
late_pop(IvfScanOpaque so)
{
	float		d = so->late_dist[--so->nlate];
	int64		id = so->late_id[so->nlate];
	size_t		i = 0;

	for (;;)
	{
		size_t		l = 2 * i + 1;
		size_t		m;

		if (l >= so->nlate)
			break;
		m = (l + 1 < so->nlate &&
			 ivf_dist_id_less(so->late_dist[l + 1], so->late_id[l + 1],
					   so->late_dist[l], so->late_id[l])) ? l + 1 : l;
		if (!ivf_dist_id_less(so->late_dist[m], so->late_id[m], d, id))
			break;
		so->late_dist[i] = so->late_dist[m];
		so->late_id[i] = so->late_id[m];
		i = m;
	}
	so->late_dist[i] = d;
	so->late_id[i] = id;
}

/*
 * The round's next candidate in (dist, id) order.  Exact candidates come
 * from the stream and from the heap of refined deferred ones; a deferred
 * candidate is refined (its vector read, see ivf_refine_slot) as soon as
 * its lower bound is not above the best exact one, so nothing is returned
 * before a deferred candidate that might be nearer.  Returns false when the
 * round has nothing left.
 */
static bool
next_candidate(IndexScanDesc scan, float *d, int64 *id)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;

	for (;;)
	{
		bool		from_late;
		float		bd;
		int64		bid;

		if (!so->have_e)
			so->have_e = ivf_select_stream_next(&so->stream, &so->e_dist, &so->e_id);
		if (!so->have_l)
			so->have_l = ivf_select_stream_next(&so->lbstream, &so->l_lb, &so->l_idx);

		if (so->have_e && (so->nlate == 0 ||
						   ivf_dist_id_less(so->e_dist, so->e_id, so->late_dist[0], so->late_id[0])))
		{
			from_late = false;
			bd = so->e_dist;
			bid = so->e_id;
		}
		else if (so->nlate > 0)
		{
			from_late = true;
			bd = so->late_dist[0];
			bid = so->late_id[0];
		}
		else if (!so->have_l)
			return false;
		else
		{
			from_late = false;
			bd = NAN;			/* no exact candidate: refine */
			bid = 0;
		}

		if (so->have_l && (!(so->have_e || so->nlate > 0) || !(bd < so->l_lb)))
		{
			size_t		j;
			float		exact;
			MemoryContext old;

			if (so->lb_pending)
			{
				lb_start(so);
				continue;
			}
			j = (size_t) so->l_idx;

			/* many may be read before the next row: stay cancellable */
			CHECK_FOR_INTERRUPTS();
			old = MemoryContextSwitchTo(so->cxt);
			so->have_l = false;
			if (ivf_refine_slot(scan->indexRelation, &so->geo, so->metric,
								so->query, so->cands.loc[j], so->cands.lb_id[j],
								&exact))
				late_push(so, exact, so->cands.lb_id[j]);
			MemoryContextSwitchTo(old);
			continue;
		}

		if (from_late)
			late_pop(so);
		else
			so->have_e = false;
		*d = bd;
		*id = bid;
		return true;
	}
}

/*
 * ivf.gpu = on: ask the GPU worker for the first round's ivf.gpu_scan_k
 * nearest rows (the lists ranked here, their limits as ivf_probe_round
 * computes them).  On any failure the worker's side falls back (counted)
 * and so->gpu stays false: the CPU scans as usual.
 */
static void
scan_start_gpu(IndexScanDesc scan)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	uint32		n = Min(so->nprobe, so->nranked);
	uint64	   *sizes = palloc0(sizeof(uint64) * Max(n, 1));
	uint64	   *limits = palloc(sizeof(uint64) * Max(n, 1));
	int			k = ivf_gpu_scan_k;
	uint32		i;

	if (so->settings.max_codes > 0)
		for (i = 0; i < n; i++)
		{
			sizes[i] = ivf_list_size(index, &so->meta, &so->geo, so->order[i]);
		}
	ivf_query_limits(&so->settings, so->order_dist, sizes, n, limits);
	so->gpu_dist = palloc(sizeof(float) * k);
	so->gpu_id = palloc(sizeof(int64) * k);
	if (!ivf_gpu_search(index, &so->meta, &so->geo, 1, so->query, (int) n,
						so->order, limits, k, so->gpu_dist, so->gpu_id))
		return;
	so->gpu = true;
	so->gpu_next = 0;
	so->gpu_n = 0;
	while (so->gpu_n < k && so->gpu_id[so->gpu_n] >= 0)
		so->gpu_n++;
	so->gpu_seen = palloc(sizeof(int64) * Max(so->gpu_n, 1));
	memcpy(so->gpu_seen, so->gpu_id, sizeof(int64) * so->gpu_n);
	qsort(so->gpu_seen, so->gpu_n, sizeof(int64), ivf_cmp_int64);
	so->gpu_cpu_started = false;
}

/* Rank the lists and scan the first round. */
static void
ivf_scan_start(IndexScanDesc scan)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	MemoryContext old = MemoryContextSwitchTo(so->cxt);
	IvfCache   *cache;
	Vector	   *q = NULL;
	uint32		nlists;
	bool		skip;

	/*
	 * Detoast the query first: that may take a lock, hence process
	 * invalidations, which free the cache (used until the first round ends).
	 */
	if (scan->numberOfOrderBys > 0 &&
		(scan->orderByData[0].sk_flags & SK_ISNULL) == 0)
		q = DatumGetVector(scan->orderByData[0].sk_argument);

	cache = ivf_get_cache(index);
	so->meta = cache->meta;
	so->geo = cache->geo;
	so->metric = (IvfMetric) so->meta.metric;
	nlists = so->meta.nlists;

	if (q == NULL)
	{
		/* no query vector: return the probed lists in arbitrary order */
		so->query = palloc0(sizeof(float) * so->meta.dims);
		so->null_query = true;
	}
	else
	{
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

	ivf_search_settings(index, &so->meta, &so->settings);
	so->nprobe = so->settings.nprobe;
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

	/* the prefilter: codes in the index, an ordering query, prefilter_k */
	so->use_pf = so->geo.codes && !so->null_query && ivf_prefilter_k > 0;
	if (so->use_pf)
		ivf_prefilter_init(&so->pf, so->metric, so->meta.dims, so->query,
						   cache->sq8_lo, cache->sq8_step);

	ivf_candidates_init(&so->cands, so->cxt, 1024);
	so->probed = 0;
	so->have_last = false;
	so->gpu = false;
	if (!so->null_query && so->iterative == IVF_ITERATIVE_OFF && ivf_gpu_for_scans())
		scan_start_gpu(scan);
	if (!so->gpu)
		(void) ivf_probe_round(scan, cache);
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
		if (so->gpu && so->gpu_next < so->gpu_n)
		{
			d = so->gpu_dist[so->gpu_next];
			id = so->gpu_id[so->gpu_next];
			so->gpu_next++;
			break;
		}
		if (so->gpu && !so->gpu_cpu_started)
		{
			/* more rows than the worker gave: the same round on the CPU */
			MemoryContext old = MemoryContextSwitchTo(so->cxt);

			so->gpu_cpu_started = true;
			(void) ivf_probe_round(scan, NULL);
			MemoryContextSwitchTo(old);
		}
		if (next_candidate(scan, &d, &id))
		{
			/* returned already from the worker's answer */
			if (so->gpu && so->gpu_n > 0 &&
				bsearch(&id, so->gpu_seen, so->gpu_n, sizeof(int64), ivf_cmp_int64) != NULL)
				continue;
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
			bool		more = ivf_probe_round(scan, NULL);

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
