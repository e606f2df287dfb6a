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
 * hold rows nearer than ones already returned).  strict_order returns the
 * same rows in exact (distance, tid) order: a candidate is returned only
 * once it is nearer than a lower bound of every row of the lists not probed
 * yet (from each list's centroid distance and radius, see strict_bounds);
 * the others stay candidates, carried into the next round's set, and the
 * last round (ivf.max_nprobe lists, or all) returns everything left.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <float.h>
#include <math.h>

#include "access/itup.h"
#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "distance.h"
#include "gpuclient.h"
#include "ivfflat.h"
#include "ivfformat.h"
#include "ivfmetric.h"
#include "ivfpage.h"
#include "ivfprobe.h"
#include "ivfquantizer.h"
#include "ivfsettings.h"
#include "listscan.h"
#include "select.h"
#include "vector.h"

#define IVF_FIRST_CHUNK 32

typedef struct IvfScanOpaqueData
{
	MemoryContext cxt;			/* reset at every rescan */
	bool		started;
	bool		null_query;		/* ORDER BY col <op> NULL, or no ORDER BY */
	IndexTuple	nulltup;		/* an index-only scan's tuple, all NULL */
	IvfMetric	metric;
	IvfMetaPageData meta;
	IvfGeometry geo;
	float	   *query;			/* prepared query */

	/*
	 * Lists ranked nearest first, as directory slots and the list ids of
	 * the scan's view (IvfCache, at scan start); rounds of nprobe lists are
	 * scanned.  order_pos: their positions in that view, for the GPU.
	 */
	int32	   *order;
	uint32	   *order_id;
	int32	   *order_pos;
	float	   *order_dist;
	uint32		nranked;
	uint32		probed;
	uint32		nprobe;
	IvfSearchSettings settings; /* resolved at rescan (nprobe is in there too) */
	int			iterative;		/* IVF_ITERATIVE_* */

	/*
	 * strict_order: strict_lb[p] is a lower bound of the distance of every
	 * row of the ranked lists [p, nranked) (+inf at nranked); the next
	 * candidate (held) is returned once it is below strict_lb[probed].
	 * carry_*: the candidates a round left, for the next round's set.
	 */
	float	   *strict_lb;
	bool		have_held;
	float		held_d;
	int64		held_id;
	float	   *carry_dist;
	int64	   *carry_id;
	size_t		ncarry;
	float	   *carry_lb;
	int64	   *carry_lb_id;
	int64	   *carry_loc;
	size_t		ncarry_lb;

	IvfCandidates cands;
	IvfSelectStream stream;		/* the round's exact candidates */
	bool		have_e;			/* e_dist/e_id: the stream's next entry */
	float		e_dist;
	int64		e_id;

	/*
	 * prefilter: the query against codebook 0 (pf) and, when the view's
	 * lists use codebook 1 (src/README "Codes"), against that (pf1, used
	 * when has_pf1); the round's deferred candidates, by lower bound
	 */
	bool		use_pf;
	IvfPrefilter pf;
	IvfPrefilter pf1;
	bool		has_pf1;
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
	IvfPrefilter *pf;
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
		/* a codebook in use by the view's lists stays until they go */
		if (so->has_pf1 && cache->sq8_lo1 != NULL)
		{
			so->pf1.lo = cache->sq8_lo1;
			so->pf1.step = cache->sq8_step1;
		}
	}

	/* the last round's bound stream arrays (strict_order carries many) */
	if (so->lb_idx != NULL)
	{
		pfree(so->lb_idx);
		pfree(so->late_dist);
		pfree(so->late_id);
		so->lb_idx = NULL;
	}
	ivf_candidates_reset(&so->cands, so->use_pf ? ivf_prefilter_k : 0);
	if (so->ncarry > 0 || so->ncarry_lb > 0)
	{
		ivf_candidates_carry(&so->cands, so->carry_dist, so->carry_id,
							 so->ncarry, so->carry_lb, so->carry_lb_id,
							 so->carry_loc, so->ncarry_lb);
		so->ncarry = so->ncarry_lb = 0;
	}
	ivf_view_reading(index, so->meta.generation);
	ivf_read_list_entry(index, &so->meta, &so->geo, so->order[first], &next);
	for (i = 0; i < n && remaining > 0; i++)
	{
		IvfListEntry entry = next;
		uint64		limit = remaining;
		int32		list = so->order[first + i];

		ivf_check_view_entry(index, &entry, list, so->order_id[first + i]);

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
		pf = NULL;
		if (so->use_pf)
		{
			pf = &so->pf;
			if (entry.flags & IVF_LIST_CODEBOOK1)
			{
				if (!so->has_pf1 || cache->sq8_lo1 == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INDEX_CORRUPTED),
							 errmsg("index \"%s\": list 0x%08X uses codebook 1, which the index does not have",
									RelationGetRelationName(index),
									so->order_id[first + i])));
				pf = &so->pf1;
			}
			ivf_prefilter_list(pf, so->query,
							   ivf_slot_centroid(cache, (uint32) list));
		}
		remaining -= ivf_scan_list(index, &so->geo, so->metric, entry.head,
								   so->order_id[first + i], so->query, limit,
								   pf, &so->cands);
	}
	so->probed = first + n;
	/* a standby: did the primary recycle what this round read? */
	ivf_view_check(index);

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
			ivf_view_reading(scan->indexRelation, so->meta.generation);
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
 * strict_order: the lower bounds strict_lb (see IvfScanOpaqueData).  A row
 * x of list l (centroid c, radius r >= |x - c|, IvfListEntry) is at least
 *
 *	L2:          |q - x|^2 >= max(0, |q - c| - r)^2       (triangle inequality)
 *	ip, cosine:  -q.x      >= -q.c - |q| r                (Cauchy-Schwarz)
 *
 * from the centroid distance the ranking computed (squared L2, or -q.c;
 * cosine works on unit vectors, as stored).  Every quantity here came out
 * of float kernels, so, as for the prefilter's bounds (ivfquantizer.c), the
 * bound is loosened by a relative slack of (dims + 16) float epsilons per
 * sum, more than their rounding can account for: a row is never returned
 * after one its kernel-computed distance puts first.
 *
 * The radii are read here, once: a row this scan's snapshot sees was
 * inserted, radius included (ivfinsert.c), before the snapshot was taken.
 */
static void
strict_bounds(IndexScanDesc scan, const IvfCache *cache)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	uint32		nlists = so->meta.nslots;
	float	   *radius = palloc(sizeof(float) * nlists);
	double		gamma = (double) (so->meta.dims + 16) * FLT_EPSILON;
	double		qn = 0;
	float		lo = get_float4_infinity();
	uint32		list = 0;
	uint32		i;

	for (i = 0; i < so->meta.directory_npages && list < nlists; i++)
	{
		Buffer		buf = ivf_read_directory_page(index, so->meta.dir_blocks[i]);
		uint32		n = Min(nlists - list, so->geo.directory_entries_per_page);
		uint32		j;

		for (j = 0; j < n; j++)
			radius[list + j] = ivf_dir_entry_ptr(BufferGetPage(buf), &so->geo, j)->radius;
		UnlockReleaseBuffer(buf);
		list += n;
	}
	if (list < nlists)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": the directory holds %u of %u list slots",
						RelationGetRelationName(index), list, nlists)));

	if (so->metric != IVF_METRIC_L2)
		qn = sqrt((double) ivf_kernels.norm_sq(so->query, so->meta.dims)) *
			(1 + gamma);

	so->strict_lb = palloc(sizeof(float) * (so->nranked + 1));
	so->strict_lb[so->nranked] = lo;
	for (i = so->nranked; i-- > 0;)
	{
		int32		l = so->order[i];
		double		cd = so->order_dist[i];
		double		r = (double) radius[l] * (1 + gamma);
		double		b;
		float		bf;

		if (so->metric == IVF_METRIC_L2)
		{
			double		t = sqrt(Max(cd, 0.0) / (1 + gamma)) - r;

			b = (t > 0) ? t * t * (1 - gamma) : 0;
		}
		else
		{
			double		cn = sqrt((double) ivf_kernels.norm_sq(ivf_slot_centroid(cache, (uint32) l),
															   so->meta.dims)) * (1 + gamma);

			b = cd - gamma * fabs(cd) - qn * (r * (1 + gamma) + 2 * gamma * cn);
		}
		/* round down to float; NaN (inf - inf) rules nothing out */
		bf = (float) b;
		if (isnan(b))
			bf = -get_float4_infinity();
		else if ((double) bf > b)
			bf = nextafterf(bf, -get_float4_infinity());
		if (bf < lo)
			lo = bf;
		so->strict_lb[i] = lo;
	}
	pfree(radius);
}

/*
 * strict_order: move every candidate the round has not returned (the held
 * one, the exact ones left in the stream and in the refined heap, the
 * deferred ones not refined) to the carry arrays, and scan the next round,
 * whose candidate set starts with them.  Called only while lists are left.
 */
static void
strict_next_round(IndexScanDesc scan)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	MemoryContext old = MemoryContextSwitchTo(so->cxt);
	IvfCandidates *c = &so->cands;
	size_t		maxx = 2 + (so->stream.n - so->stream.next) + so->nlate;
	size_t		maxd;
	size_t		k;

	so->carry_dist = palloc_extended(sizeof(float) * maxx, MCXT_ALLOC_HUGE);
	so->carry_id = palloc_extended(sizeof(int64) * maxx, MCXT_ALLOC_HUGE);
	so->ncarry = 0;
	if (so->have_held)
	{
		so->carry_dist[so->ncarry] = so->held_d;
		so->carry_id[so->ncarry++] = so->held_id;
		so->have_held = false;
	}
	if (so->have_e)
	{
		so->carry_dist[so->ncarry] = so->e_dist;
		so->carry_id[so->ncarry++] = so->e_id;
		so->have_e = false;
	}
	for (k = so->stream.next; k < so->stream.n; k++)
	{
		so->carry_dist[so->ncarry] = so->stream.dist[k];
		so->carry_id[so->ncarry++] = so->stream.id[k];
	}
	for (k = 0; k < so->nlate; k++)
	{
		so->carry_dist[so->ncarry] = so->late_dist[k];
		so->carry_id[so->ncarry++] = so->late_id[k];
	}
	so->nlate = 0;

	/*
	 * Deferred ones: all of them while the bound stream is not started;
	 * else its next entry and the rest, whose positions in lb_id and loc are
	 * the stream's ids (the stream permutes only lb and the ids).
	 */
	maxd = so->lb_pending ? c->nlb :
		(so->have_l ? 1 : 0) + (so->lbstream.n - so->lbstream.next);
	so->carry_lb = palloc_extended(sizeof(float) * Max(maxd, 1), MCXT_ALLOC_HUGE);
	so->carry_lb_id = palloc_extended(sizeof(int64) * Max(maxd, 1), MCXT_ALLOC_HUGE);
	so->carry_loc = palloc_extended(sizeof(int64) * Max(maxd, 1), MCXT_ALLOC_HUGE);
	so->ncarry_lb = 0;
	if (so->lb_pending)
	{
		memcpy(so->carry_lb, c->lb, sizeof(float) * c->nlb);
		memcpy(so->carry_lb_id, c->lb_id, sizeof(int64) * c->nlb);
		memcpy(so->carry_loc, c->loc, sizeof(int64) * c->nlb);
		so->ncarry_lb = c->nlb;
	}
	else
	{
		if (so->have_l)
		{
			so->carry_lb[0] = so->l_lb;
			so->carry_lb_id[0] = c->lb_id[so->l_idx];
			so->carry_loc[0] = c->loc[so->l_idx];
			so->ncarry_lb = 1;
		}
		for (k = so->lbstream.next; k < so->lbstream.n; k++)
		{
			size_t		j = (size_t) so->lbstream.id[k];

			so->carry_lb[so->ncarry_lb] = so->lbstream.dist[k];
			so->carry_lb_id[so->ncarry_lb] = c->lb_id[j];
			so->carry_loc[so->ncarry_lb++] = c->loc[j];
		}
	}
	so->have_l = false;
	so->lb_pending = false;

	(void) ivf_probe_round(scan, NULL);
	pfree(so->carry_dist);
	pfree(so->carry_id);
	pfree(so->carry_lb);
	pfree(so->carry_lb_id);
	pfree(so->carry_loc);
	so->ncarry = so->ncarry_lb = 0;
	MemoryContextSwitchTo(old);
}

/*
 * strict_order's next row: the round's next candidate once it is below the
 * bound of the lists left (or none is left), else the next round first.
 */
static bool
strict_next(IndexScanDesc scan, float *d, int64 *id)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;

	for (;;)
	{
		if (!so->have_held)
		{
			if (next_candidate(scan, &so->held_d, &so->held_id))
				so->have_held = true;
			else if (so->probed < so->nranked)
			{
				strict_next_round(scan);
				continue;
			}
			else
				return false;
		}
		if (so->probed >= so->nranked || so->null_query ||
			so->held_d < so->strict_lb[so->probed])
		{
			so->have_held = false;
			*d = so->held_d;
			*id = so->held_id;
			return true;
		}
		strict_next_round(scan);
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
						so->order_pos, limits, k, so->gpu_dist, so->gpu_id))
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
	 * The query has the opclass's type, vector or halfvec: both start with
	 * the varlena header and int16 dim, read here as a Vector's.
	 */
	if (scan->numberOfOrderBys > 0 &&
		(scan->orderByData[0].sk_flags & SK_ISNULL) == 0)
		q = DatumGetVector(scan->orderByData[0].sk_argument);

	cache = ivf_get_cache(index);
	so->meta = cache->meta;
	so->geo = cache->geo;
	so->metric = (IvfMetric) so->meta.metric;
	nlists = cache->nlive;

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
					 errmsg("different %s dimensions %u and %d",
							ivf_elem_name((IvfElemType) so->meta.elem_type),
							so->meta.dims, q->dim),
					 errdetail("Index \"%s\" stores %u-dimensional vectors.",
							   RelationGetRelationName(index), so->meta.dims)));
		/* a zero cosine query has no direction: every distance is equal */
		so->query = ivf_prepare_datum(index, so->metric,
									  (IvfElemType) so->meta.elem_type,
									  so->meta.dims, PointerGetDatum(q), &skip);
	}

	ivf_search_settings(index, &so->meta, &so->settings);
	so->nprobe = so->settings.nprobe;
	so->iterative = ivf_iterative_scan(index);

	/*
	 * No ORDER BY: the planner costs this path as disabled, so it runs only
	 * when every other one is too (enable_seqscan = off), e.g. an
	 * index-only scan for count(*).  It must return every row once: all
	 * lists in one round, no limits.
	 */
	if (scan->numberOfOrderBys == 0)
	{
		so->nprobe = nlists;
		so->iterative = IVF_ITERATIVE_OFF;
		so->settings.max_codes = 0;
		so->settings.budget = 0;
	}
	so->nranked = so->nprobe;
	if (so->iterative != IVF_ITERATIVE_OFF)
	{
		int			maxp = ivf_max_nprobe(index);

		so->nranked = (maxp > 0) ? Max((uint32) maxp, so->nprobe) : nlists;
		so->nranked = Min(so->nranked, nlists);
	}
	so->order = palloc(sizeof(int32) * so->nranked);
	so->order_id = palloc(sizeof(uint32) * so->nranked);
	so->order_pos = palloc(sizeof(int32) * so->nranked);
	so->order_dist = palloc(sizeof(float) * so->nranked);
	ivf_nearest_lists(cache, so->query, so->nranked, so->order_pos,
					  so->order_dist);
	for (uint32 i = 0; i < so->nranked; i++)
	{
		so->order[i] = (int32) cache->live_slot[so->order_pos[i]];
		so->order_id[i] = cache->live_id[so->order_pos[i]];
	}

	/* the prefilter: codes in the index, an ordering query, prefilter_k */
	so->use_pf = so->geo.codes && !so->null_query && ivf_prefilter_k > 0;
	so->has_pf1 = false;
	if (so->use_pf)
	{
		ivf_prefilter_init(&so->pf, so->metric, so->meta.dims, so->query,
						   cache->sq8_lo, cache->sq8_step);
		if (cache->sq8_lo1 != NULL)
		{
			ivf_prefilter_init(&so->pf1, so->metric, so->meta.dims, so->query,
							   cache->sq8_lo1, cache->sq8_step1);
			so->has_pf1 = true;
		}
	}

	ivf_candidates_init(&so->cands, so->cxt, 1024);
	so->probed = 0;
	so->lb_idx = NULL;			/* freed by the rescan's context reset */
	so->have_held = false;
	so->ncarry = so->ncarry_lb = 0;
	if (so->iterative == IVF_ITERATIVE_STRICT && !so->null_query)
		strict_bounds(scan, cache);
	so->gpu = false;
	if (!so->null_query && so->iterative == IVF_ITERATIVE_OFF && ivf_gpu_for_scans())
	{
		scan_start_gpu(scan);
		/* that read the cache again, which may have rebuilt it */
		cache = NULL;
	}
	if (!so->gpu)
		(void) ivf_probe_round(scan, cache);
	so->started = true;
	MemoryContextSwitchTo(old);

	pgstat_count_index_scan(index);
}

/*
 * The next row without strict_order: the round's next candidate (after the
 * GPU worker's rows, skipping those), else the next round's when iterative.
 */
static bool
next_row(IndexScanDesc scan, float *d, int64 *id)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;

	for (;;)
	{
		if (so->gpu && so->gpu_next < so->gpu_n)
		{
			*d = so->gpu_dist[so->gpu_next];
			*id = so->gpu_id[so->gpu_next];
			so->gpu_next++;
			return true;
		}
		if (so->gpu && !so->gpu_cpu_started)
		{
			/* more rows than the worker gave: the same round on the CPU */
			MemoryContext old = MemoryContextSwitchTo(so->cxt);

			so->gpu_cpu_started = true;
			(void) ivf_probe_round(scan, NULL);
			MemoryContextSwitchTo(old);
		}
		if (next_candidate(scan, d, id))
		{
			/* returned already from the worker's answer */
			if (so->gpu && so->gpu_n > 0 &&
				bsearch(id, so->gpu_seen, so->gpu_n, sizeof(int64), ivf_cmp_int64) != NULL)
				continue;
			return true;
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
}

bool
ivf_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	IvfScanOpaque so = (IvfScanOpaque) scan->opaque;
	float		d;
	int64		id;

	if (!so->started)
		ivf_scan_start(scan);

	if (so->iterative == IVF_ITERATIVE_STRICT ?
		!strict_next(scan, &d, &id) : !next_row(scan, &d, &id))
		return false;

	ivf_id_to_tid(id, &scan->xs_heaptid);
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;

	/*
	 * An index-only scan: with amcanreturn NULL the planner takes one only
	 * when the query needs no column of the index (count(*)), but the
	 * executor still wants a tuple.  All NULL, made once per scan.
	 */
	if (scan->xs_want_itup)
	{
		if (so->nulltup == NULL)
		{
			TupleDesc	desc = RelationGetDescr(scan->indexRelation);
			MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(so));
			Datum	   *values = palloc0(sizeof(Datum) * desc->natts);
			bool	   *isnull = palloc(sizeof(bool) * desc->natts);

			memset(isnull, true, sizeof(bool) * desc->natts);
			so->nulltup = index_form_tuple(desc, values, isnull);
			MemoryContextSwitchTo(old);
		}
		scan->xs_itup = so->nulltup;
		scan->xs_itupdesc = RelationGetDescr(scan->indexRelation);
	}
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
