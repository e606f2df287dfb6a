/*-------------------------------------------------------------------------
 *
 * ivfbatch.c
 *	  Batch search from SQL:
 *	  ivf_search(index, queries vector[], k, nprobe) ->
 *	  (query int, rank int, tid tid, distance real)
 *
 * Two paths, as in torch-ivf, with identical results:
 *
 *	matrix	query-major: each query is answered like an index scan (its
 *			nprobe lists, in rank order, within the same limits), its
 *			candidates selected with select.c.  Best for a handful of
 *			queries.
 *	csr		list-major: the (query, list) pairs are grouped by list; each
 *			probed list is read once, and while a group's page is in cache
 *			every query probing that list computes its distances with the
 *			same block kernel and offers them to its own top-k heap.  Best
 *			when lists are shared by several queries (nq * nprobe >= lists).
 *
 * ivf.search_mode = auto | matrix | csr picks the path (auto by the rule
 * above).  Both apply the settings an index scan applies -- nprobe,
 * ivf.max_codes, the candidate budget -- to each query, so a batch returns
 * what the queries would return one by one (ties broken by TID in both).
 * Iterative scanning does not apply: a batch has no WHERE clause to
 * satisfy.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "ivfflat.h"
#include "vector.h"

#define IVF_SEARCH_MAX_K	10000

int			ivf_search_mode = IVF_SEARCH_AUTO;

/*
 * Per-query slot limits for its ranked lists, exactly as the index scan
 * computes them in one probe round: the list's budget cap, and what is
 * left of ivf.max_codes after the nearer lists.  sizes[i] (slots of the
 * query's i-th list) is needed only when max_codes is set.
 */
void
ivf_query_limits(const IvfSearchSettings *s, const float *pdist,
				 const uint64 *sizes, uint32 nprobe, uint64 *limits)
{
	uint64		remaining = s->max_codes > 0 ? s->max_codes : PG_UINT64_MAX;
	uint32		i;

	if (s->budget > 0)
		ivf_list_budgets(pdist, nprobe, s->budget, s->budget_strategy, limits);
	else
		for (i = 0; i < nprobe; i++)
			limits[i] = PG_UINT64_MAX;

	for (i = 0; i < nprobe; i++)
	{
		if (limits[i] > remaining)
			limits[i] = remaining;
		if (s->max_codes > 0)
			remaining -= Min(limits[i], sizes[i]);
	}
}

PG_FUNCTION_INFO_V1(ivf_search);
Datum
ivf_search(PG_FUNCTION_ARGS)
{
	Oid			indexoid;
	ArrayType  *arr;
	int32		k;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext work;
	MemoryContext old;
	TupleDesc	desc;
	Tuplestorestate *store;
	Relation	index;
	Relation	heap;
	IvfCache   *cache;
	IvfMetaPageData meta;
	IvfGeometry g;
	IvfMetric	metric;
	Datum	   *elems;
	bool	   *elemnulls;
	int			nq;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	uint32		nprobe;
	float	   *queries;
	int32	   *plist;
	float	   *pdist;
	uint64	   *limits;
	uint64	   *sizes;
	IvfTopK    *heaps;
	IvfSearchSettings settings;
	bool		csr;
	int			nq_served = 0;
	int			qi;
	uint32		i;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	store = ivf_srf_materialize(fcinfo, desc);
	desc = rsinfo->setDesc;

	/* NULL index, queries or k: no rows (nprobe NULL means the default) */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return (Datum) 0;
	indexoid = PG_GETARG_OID(0);
	arr = PG_GETARG_ARRAYTYPE_P(1);
	k = PG_GETARG_INT32(2);

	if (k < 1 || k > IVF_SEARCH_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and %d, not %d", IVF_SEARCH_MAX_K, k)));
	if (!PG_ARGISNULL(3) &&
		(PG_GETARG_INT32(3) < 1 || PG_GETARG_INT32(3) > IVF_MAX_LISTS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("nprobe must be between 1 and %d, not %d",
						IVF_MAX_LISTS, PG_GETARG_INT32(3))));
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("queries must be a one-dimensional array of vectors")));

	work = AllocSetContextCreate(CurrentMemoryContext, "ivf_search",
								 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	index = ivf_open_for_user(indexoid, &heap);
	cache = ivf_get_cache(index);
	meta = cache->meta;
	g = cache->geo;
	metric = (IvfMetric) meta.metric;
	ivf_search_settings(index, &meta, &settings);
	nprobe = PG_ARGISNULL(3) ? settings.nprobe :
		Min((uint32) PG_GETARG_INT32(3), meta.nlists);

	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
					  &elems, &elemnulls, &nq);

	/* prepare the queries and rank their lists as a scan would */
	queries = palloc_extended(sizeof(float) * (Size) Max(nq, 1) * meta.dims, MCXT_ALLOC_HUGE);
	plist = palloc(sizeof(int32) * (Size) Max(nq, 1) * nprobe);
	pdist = palloc(sizeof(float) * (Size) Max(nq, 1) * nprobe);
	for (qi = 0; qi < nq; qi++)
	{
		Vector	   *v;
		float	   *p;
		bool		skip;

		if (elemnulls[qi])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("query %d is NULL", qi + 1)));
		v = DatumGetVector(elems[qi]);
		if (v->dim != (int) meta.dims)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("different vector dimensions %u and %d", meta.dims, v->dim),
					 errdetail("Query %d; index \"%s\" stores %u-dimensional vectors.",
							   qi + 1, RelationGetRelationName(index), meta.dims)));
		p = ivf_prepare_vector(index, metric, meta.dims, PointerGetDatum(v), &skip);
		memcpy(queries + (Size) qi * meta.dims, p, sizeof(float) * meta.dims);
		pfree(p);
		ivf_nearest_lists(cache, queries + (Size) qi * meta.dims, nprobe,
						  plist + (Size) qi * nprobe, pdist + (Size) qi * nprobe);
	}
	/* the cache may go away at the next invalidation: not used below */
	cache = NULL;

	/* list sizes are needed only to carry max_codes from list to list */
	sizes = palloc0(sizeof(uint64) * (Size) Max(nq, 1) * nprobe);
	if (settings.max_codes > 0)
	{
		int64	   *slots = palloc(sizeof(int64) * meta.nlists);

		for (i = 0; i < meta.nlists; i++)
			slots[i] = -1;
		for (qi = 0; qi < nq; qi++)
			for (i = 0; i < nprobe; i++)
			{
				int32		l = plist[(Size) qi * nprobe + i];

				if (slots[l] < 0)
					slots[l] = (int64) ivf_list_size(index, &meta, &g, l);
				sizes[(Size) qi * nprobe + i] = (uint64) slots[l];
			}
	}
	limits = palloc(sizeof(uint64) * (Size) Max(nq, 1) * nprobe);
	for (qi = 0; qi < nq; qi++)
		ivf_query_limits(&settings, pdist + (Size) qi * nprobe,
						 sizes + (Size) qi * nprobe, nprobe,
						 limits + (Size) qi * nprobe);

	heaps = palloc(sizeof(IvfTopK) * Max(nq, 1));
	for (qi = 0; qi < nq; qi++)
		ivf_topk_init(&heaps[qi], k, palloc(sizeof(float) * k),
					  palloc(sizeof(int64) * k));

	csr = (ivf_search_mode == IVF_SEARCH_CSR) ||
		(ivf_search_mode == IVF_SEARCH_AUTO &&
		 (double) nq * nprobe >= (double) meta.nlists);

	/* the GPU worker, with ivf.gpu on (or auto and a big batch) */
	if (nq > 0)
	{
		float	   *gd = palloc_extended(sizeof(float) * (Size) nq * k, MCXT_ALLOC_HUGE);
		int64	   *gi = palloc_extended(sizeof(int64) * (Size) nq * k, MCXT_ALLOC_HUGE);

		if (ivf_gpu_search(index, &meta, &g, nq, queries, (int) nprobe, plist,
						   limits, k, gd, gi))
		{
			for (qi = 0; qi < nq; qi++)
			{
				size_t		m = 0;

				/* ascending, padded with id -1 past the candidates */
				while (m < (size_t) k && gi[(Size) qi * k + m] >= 0)
					m++;
				ivf_topk_push_block_ids(&heaps[qi], gd + (Size) qi * k,
										gi + (Size) qi * k, m);
			}
			nq_served = nq;
		}
	}

	if (nq_served > 0)
		;						/* answered by the GPU worker */
	else if (csr && nq > 0)
	{
		/* group the (query, list) pairs by list */
		uint32	   *count = palloc0(sizeof(uint32) * (meta.nlists + 1));
		int32	   *bylist_q = palloc(sizeof(int32) * (Size) nq * nprobe);
		uint64	   *bylist_lim = palloc(sizeof(uint64) * (Size) nq * nprobe);
		uint32	   *fill;

		for (qi = 0; qi < nq; qi++)
			for (i = 0; i < nprobe; i++)
				count[plist[(Size) qi * nprobe + i] + 1]++;
		for (i = 0; i < meta.nlists; i++)
			count[i + 1] += count[i];
		fill = palloc(sizeof(uint32) * meta.nlists);
		memcpy(fill, count, sizeof(uint32) * meta.nlists);
		for (qi = 0; qi < nq; qi++)
			for (i = 0; i < nprobe; i++)
			{
				int32		l = plist[(Size) qi * nprobe + i];
				uint32		at = fill[l]++;

				bylist_q[at] = qi;
				bylist_lim[at] = limits[(Size) qi * nprobe + i];
			}

		for (i = 0; i < meta.nlists; i++)
		{
			uint32		n = count[i + 1] - count[i];
			IvfListEntry e;

			if (n == 0)
				continue;
			ivf_read_list_entry(index, &meta, &g, i, &e);
			if (BlockNumberIsValid(e.head))
				ivf_scan_list_multi(index, &g, metric, e.head, i, queries,
									bylist_q + count[i], bylist_lim + count[i],
									n, heaps);
		}
	}
	else
	{
		IvfCandidates cands;

		ivf_candidates_init(&cands, work, 1024);
		for (qi = 0; qi < nq; qi++)
		{
			size_t		m;

			cands.n = 0;
			for (i = 0; i < nprobe; i++)
			{
				IvfListEntry e;
				int32		l = plist[(Size) qi * nprobe + i];

				ivf_read_list_entry(index, &meta, &g, l, &e);
				if (BlockNumberIsValid(e.head))
					(void) ivf_scan_list(index, &g, metric, e.head, l,
										 queries + (Size) qi * meta.dims,
										 limits[(Size) qi * nprobe + i], NULL,
										 &cands);
			}
			m = ivf_select_smallest(cands.dist, cands.id, cands.n, (size_t) k);
			ivf_topk_push_block_ids(&heaps[qi], cands.dist, cands.id, m);
		}
	}

	/* emit (query, rank, tid, distance), 1-based like SQL arrays */
	for (qi = 0; qi < nq; qi++)
	{
		size_t		n = ivf_topk_sort(&heaps[qi]);
		size_t		r;

		for (r = 0; r < n; r++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};
			ItemPointerData tid;

			ivf_id_to_tid(heaps[qi].id[r], &tid);
			values[0] = Int32GetDatum(qi + 1);
			values[1] = Int32GetDatum((int32) r + 1);
			values[2] = PointerGetDatum(&tid);
			values[3] = Float4GetDatum((float4) ivf_distance_value(metric, heaps[qi].dist[r]));
			tuplestore_putvalues(store, desc, values, nulls);
		}
	}

	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}
