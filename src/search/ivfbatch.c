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
 *			when lists are shared by several queries (nq * nprobe >= lists,
 *			nq counting a chunk's queries, see Memory).
 *
 * ivf.search_mode = auto | matrix | csr picks the path (auto by the rule
 * above).  Both apply the settings an index scan applies -- nprobe,
 * ivf.max_codes, the candidate budget -- to each query, so a batch returns
 * what the queries would return one by one (ties broken by TID in both).
 * Iterative scanning does not apply: a batch has no WHERE clause to
 * satisfy.
 *
 * Visibility.  Like an index scan's executor, the candidates' TIDs are
 * fetched from the table in rank order (table_index_fetch_tuple) with the
 * statement's snapshot until k are visible: only visible rows are returned, and the tid returned is the
 * visible version's (what SELECT ctid shows; the index's TID is the root
 * of a HOT chain), ranked by (distance, index TID) like the scan's output.
 * A query gets k rows whenever its probed lists hold k visible ones: the
 * matrix path walks its candidates in order until k are visible; csr keeps
 * a few more than k per query and the GPU worker returns k, and a query
 * left short with all of those taken is answered again by the matrix path.
 *
 * Memory.  Queries are processed in chunks whose working set (prepared
 * queries, ranked lists, top-k heaps) fits in work_mem, at least one query
 * per chunk, in a context reset after each chunk; rows go to a tuplestore
 * that spills to disk past work_mem.  One query's candidates (the matrix
 * path's scratch) are what an index scan holds as well.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "storage/predicate.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "gpuclient.h"
#include "halfvec.h"
#include "ivfformat.h"
#include "ivfmetric.h"
#include "ivfpage.h"
#include "ivfprobe.h"
#include "ivfquantizer.h"
#include "ivfsettings.h"
#include "ivfsql.h"
#include "listscan.h"
#include "select.h"
#include "topk.h"
#include "vector.h"

#define IVF_SEARCH_MAX_K	10000

/*
 * What a call of ivf_search keeps from chunk to chunk.  The chunk's arrays
 * (nq = the chunk's queries) live in the chunk context.
 */
typedef struct SearchState
{
	Relation	index;
	Relation	heap;
	IvfMetaPageData meta;
	IvfGeometry g;
	IvfMetric	metric;
	IvfSearchSettings settings;
	uint32		nprobe;
	int32		nprobe_arg;		/* the call's nprobe, or 0 (the default) */
	int			k;

	/*
	 * The view every chunk ranks against (src/README "The per-backend
	 * cache"): a copy of the cache's when the call has several chunks,
	 * since the cache may be rebuilt for a later generation in between;
	 * live_slot and live_id map its positions to slots and list ids.
	 */
	MemoryContext work;
	IvfCache   *view;
	uint32	   *live_slot;
	uint32	   *live_id;
	IvfElemType qelem;			/* the queries' type: vector[] or halfvec[] */
	Tuplestorestate *store;
	TupleDesc	desc;

	/* visibility, checked as an index scan's heap fetch checks it */
	Snapshot	snapshot;
	IndexFetchTableData *fetch;
	TupleTableSlot *slot;

	/* one query's candidates (matrix path), and its visible rows */
	IvfCandidates cands;
	ItemPointerData *vis_tid;	/* k */
	float	   *vis_dist;		/* k */

	/* the chunk */
	int			q0;				/* global number of its first query */
	int			nq;
	float	   *queries;		/* nq x dims, prepared */
	int32	   *plist;			/* nq x nprobe, ranked: positions in the view */
	float	   *pdist;
	uint64	   *limits;
} SearchState;

/* extra heap slots per query on the csr path, for rows not visible */
static inline int
csr_depth(int k)
{
	return k + Max(k / 8, 8);
}

/*
 * Is the row an index entry points at visible to the statement's snapshot?
 * If so, *tid is the visible version (the HOT chain followed).
 */
static bool
row_visible(SearchState *ss, int64 id, ItemPointer tid)
{
	ItemPointerData t;
	bool		call_again = false;
	bool		all_dead = false;

	ivf_id_to_tid(id, &t);
	if (!table_index_fetch_tuple(ss->fetch, &t, ss->snapshot, ss->slot,
								 &call_again, &all_dead))
		return false;
	*tid = ss->slot->tts_tid;
	ExecClearTuple(ss->slot);
	return true;
}

/* emit (query, rank, tid, distance), 1-based like SQL arrays */
static void
emit_rows(SearchState *ss, int qc, int n)
{
	int			r;

	for (r = 0; r < n; r++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(ss->q0 + qc + 1);
		values[1] = Int32GetDatum(r + 1);
		values[2] = PointerGetDatum(&ss->vis_tid[r]);
		values[3] = Float4GetDatum((float4) ivf_distance_value(ss->metric, ss->vis_dist[r]));
		tuplestore_putvalues(ss->store, ss->desc, values, nulls);
	}
}

/*
 * Take the visible rows among n candidates sorted by (dist, id), up to k,
 * into vis_*; returns how many.
 */
static int
take_visible(SearchState *ss, const float *dist, const int64 *id, size_t n)
{
	int			got = 0;
	size_t		i;

	for (i = 0; i < n && got < ss->k; i++)
		if (row_visible(ss, id[i], &ss->vis_tid[got]))
			ss->vis_dist[got++] = dist[i];
	return got;
}

/*
 * The matrix path for the chunk's query qc: every candidate of its probed
 * lists, walked in (dist, id) order through a selection stream (as an
 * index scan hands them out) until k visible rows are found.
 */
static void
search_matrix_query(SearchState *ss, int qc)
{
	IvfCandidates *cands = &ss->cands;
	const float *q = ss->queries + (Size) qc * ss->meta.dims;
	IvfSelectStream stream;
	float		d;
	int64		id;
	int			got = 0;
	uint32		i;

	cands->n = 0;
	for (i = 0; i < ss->nprobe; i++)
	{
		IvfListEntry e;
		int32		l = ss->plist[(Size) qc * ss->nprobe + i];

		ivf_read_list_entry(ss->index, &ss->meta, &ss->g, ss->live_slot[l], &e);
		ivf_check_view_entry(ss->index, &e, ss->live_slot[l], ss->live_id[l]);
		if (BlockNumberIsValid(e.head))
			(void) ivf_scan_list(ss->index, &ss->g, ss->metric, e.head,
								 ss->live_id[l], q,
								 ss->limits[(Size) qc * ss->nprobe + i], NULL,
								 cands);
	}
	ivf_view_check(ss->index);
	ivf_select_stream_init(&stream, cands->dist, cands->id, cands->n,
						   (size_t) ss->k);
	while (got < ss->k && ivf_select_stream_next(&stream, &d, &id))
		if (row_visible(ss, id, &ss->vis_tid[got]))
			ss->vis_dist[got++] = d;
	emit_rows(ss, qc, got);
}

/*
 * Emit a query's rows from its sorted top-n candidates (csr heaps, GPU),
 * which held every candidate unless full (n == cap): when full and fewer
 * than k are visible, more may lie beyond them, and the matrix path
 * answers the query instead.
 */
static void
emit_from_topk(SearchState *ss, int qc, const float *dist, const int64 *id,
			   size_t n, size_t cap)
{
	int			got = take_visible(ss, dist, id, n);

	if (got < ss->k && n == cap)
		search_matrix_query(ss, qc);
	else
		emit_rows(ss, qc, got);
}

/* csr: the chunk's (query, list) pairs grouped by list, each list read once */
static void
search_csr(SearchState *ss)
{
	int			nq = ss->nq;
	uint32		nprobe = ss->nprobe;
	uint32		nlists = ss->meta.nlists;
	int			depth = csr_depth(ss->k);
	uint32	   *count = palloc0(sizeof(uint32) * (nlists + 1));
	int32	   *bylist_q = palloc(sizeof(int32) * (Size) nq * nprobe);
	uint64	   *bylist_lim = palloc(sizeof(uint64) * (Size) nq * nprobe);
	uint32	   *fill;
	IvfTopK    *heaps = palloc(sizeof(IvfTopK) * nq);
	int			qi;
	uint32		i;

	for (qi = 0; qi < nq; qi++)
		ivf_topk_init(&heaps[qi], depth, palloc(sizeof(float) * depth),
					  palloc(sizeof(int64) * depth));
	for (qi = 0; qi < nq; qi++)
		for (i = 0; i < nprobe; i++)
			count[ss->plist[(Size) qi * nprobe + i] + 1]++;
	for (i = 0; i < nlists; i++)
		count[i + 1] += count[i];
	fill = palloc(sizeof(uint32) * nlists);
	memcpy(fill, count, sizeof(uint32) * nlists);
	for (qi = 0; qi < nq; qi++)
		for (i = 0; i < nprobe; i++)
		{
			int32		l = ss->plist[(Size) qi * nprobe + i];
			uint32		at = fill[l]++;

			bylist_q[at] = qi;
			bylist_lim[at] = ss->limits[(Size) qi * nprobe + i];
		}

	for (i = 0; i < nlists; i++)
	{
		uint32		n = count[i + 1] - count[i];
		IvfListEntry e;

		if (n == 0)
			continue;
		ivf_read_list_entry(ss->index, &ss->meta, &ss->g, ss->live_slot[i], &e);
		ivf_check_view_entry(ss->index, &e, ss->live_slot[i], ss->live_id[i]);
		if (BlockNumberIsValid(e.head))
			ivf_scan_list_multi(ss->index, &ss->g, ss->metric, e.head,
								ss->live_id[i],
								ss->queries, bylist_q + count[i],
								bylist_lim + count[i], n, heaps);
	}
	ivf_view_check(ss->index);

	for (qi = 0; qi < nq; qi++)
	{
		size_t		n = ivf_topk_sort(&heaps[qi]);

		emit_from_topk(ss, qi, heaps[qi].dist, heaps[qi].id, n, (size_t) depth);
	}
}

/*
 * The GPU worker, with ivf.gpu on (or auto and a big chunk): false when the
 * CPU must answer the chunk.
 */
static bool
search_gpu(SearchState *ss)
{
	int			nq = ss->nq;
	int			k = ss->k;
	float	   *gd = palloc_extended(sizeof(float) * (Size) nq * k, MCXT_ALLOC_HUGE);
	int64	   *gi = palloc_extended(sizeof(int64) * (Size) nq * k, MCXT_ALLOC_HUGE);
	int			qi;

	if (!ivf_gpu_search(ss->index, &ss->meta, &ss->g, nq, ss->queries,
						(int) ss->nprobe, ss->plist, ss->limits, k, gd, gi))
	{
		pfree(gd);
		pfree(gi);
		return false;
	}
	for (qi = 0; qi < nq; qi++)
	{
		size_t		m = 0;

		/* ascending, padded with id -1 past the candidates */
		while (m < (size_t) k && gi[(Size) qi * k + m] >= 0)
			m++;
		emit_from_topk(ss, qi, gd + (Size) qi * k, gi + (Size) qi * k, m,
					   (size_t) k);
	}
	return true;
}

/*
 * Take the cache's view for the call: its meta page, geometry and the
 * settings that follow from them (the default nprobe follows the live
 * lists).  Any time after the snapshot will do, so it is taken again when
 * the generation moved before the first chunk.
 */
static void
take_view(SearchState *ss, const IvfCache *cache)
{
	ss->meta = cache->meta;
	ss->g = cache->geo;
	ss->metric = (IvfMetric) ss->meta.metric;
	ivf_search_settings(ss->index, &ss->meta, &ss->settings);
	ss->nprobe = (ss->nprobe_arg == 0) ? ss->settings.nprobe :
		Min((uint32) ss->nprobe_arg, ss->meta.nlists);
}

/* Queries q0 .. q0 + nq - 1: prepare, rank their lists, search, emit. */
static void
search_chunk(SearchState *ss, Datum *elems, bool *elemnulls, int q0, int nq,
			 bool last)
{
	uint32		dims;
	uint32		nprobe;
	IvfCache   *cache = ss->view;
	uint64	   *sizes;
	bool		csr;
	int			qi;
	uint32		i;

	if (cache == NULL)
	{
		/* take_view may look up catalogs: invalidations free the cache */
		cache = ivf_get_cache(ss->index);
		while (cache->meta.generation != ss->meta.generation)
		{
			take_view(ss, cache);
			cache = ivf_get_cache(ss->index);
		}
		if (!last)
		{
			MemoryContext old = MemoryContextSwitchTo(ss->work);

			ss->view = cache = ivf_copy_view(cache);
			MemoryContextSwitchTo(old);
		}
		ss->live_slot = cache->live_slot;
		ss->live_id = cache->live_id;
		if (ss->view == NULL)
		{
			/* one chunk: the cache may go before its lists are scanned */
			ss->live_slot = palloc(sizeof(uint32) * cache->nlive);
			ss->live_id = palloc(sizeof(uint32) * cache->nlive);
			memcpy(ss->live_slot, cache->live_slot, sizeof(uint32) * cache->nlive);
			memcpy(ss->live_id, cache->live_id, sizeof(uint32) * cache->nlive);
		}
	}
	dims = ss->meta.dims;
	nprobe = ss->nprobe;
	ss->q0 = q0;
	ss->nq = nq;
	ss->queries = palloc_extended(sizeof(float) * (Size) nq * dims, MCXT_ALLOC_HUGE);
	ss->plist = palloc(sizeof(int32) * (Size) nq * nprobe);
	ss->pdist = palloc(sizeof(float) * (Size) nq * nprobe);
	for (qi = 0; qi < nq; qi++)
	{
		Pointer		v;
		int			dim;
		float	   *p;
		bool		skip;

		if (elemnulls[q0 + qi])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("query %d is NULL", q0 + qi + 1)));

		/*
		 * A halfvec query is widened to float (exactly), whatever the
		 * index stores: the scan compares a float query with its vectors
		 * in any case.
		 */
		if (ss->qelem == IVF_ELEM_HALF)
		{
			HalfVector *h = DatumGetHalfVector(elems[q0 + qi]);

			v = (Pointer) h;
			dim = h->dim;
		}
		else
		{
			Vector	   *f = DatumGetVector(elems[q0 + qi]);

			v = (Pointer) f;
			dim = f->dim;
		}
		if (dim != (int) dims)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("different %s dimensions %u and %d",
							ivf_elem_name(ss->qelem), dims, dim),
					 errdetail("Query %d; index \"%s\" stores %u-dimensional vectors.",
							   q0 + qi + 1, RelationGetRelationName(ss->index), dims)));
		p = ivf_prepare_datum(ss->index, ss->metric, ss->qelem, dims,
							  PointerGetDatum(v), &skip);
		memcpy(ss->queries + (Size) qi * dims, p, sizeof(float) * dims);
		pfree(p);
		ivf_nearest_lists(cache, ss->queries + (Size) qi * dims, nprobe,
						  ss->plist + (Size) qi * nprobe,
						  ss->pdist + (Size) qi * nprobe);
	}
	/* the cache may go away at the next invalidation: not used below */
	cache = NULL;

	/* list sizes are needed only to carry max_codes from list to list */
	sizes = palloc0(sizeof(uint64) * (Size) nq * nprobe);
	if (ss->settings.max_codes > 0)
	{
		int64	   *slots = palloc(sizeof(int64) * ss->meta.nlists);

		for (i = 0; i < ss->meta.nlists; i++)
			slots[i] = -1;
		for (qi = 0; qi < nq; qi++)
			for (i = 0; i < nprobe; i++)
			{
				int32		l = ss->plist[(Size) qi * nprobe + i];

				if (slots[l] < 0)
					slots[l] = (int64) ivf_list_size(ss->index, &ss->meta, &ss->g,
													 ss->live_slot[l]);
				sizes[(Size) qi * nprobe + i] = (uint64) slots[l];
			}
	}
	ss->limits = palloc(sizeof(uint64) * (Size) nq * nprobe);
	for (qi = 0; qi < nq; qi++)
		ivf_query_limits(&ss->settings, ss->pdist + (Size) qi * nprobe,
						 sizes + (Size) qi * nprobe, nprobe,
						 ss->limits + (Size) qi * nprobe);

	ivf_view_reading(ss->index, ss->meta.generation);
	if (search_gpu(ss))
		return;
	csr = (ivf_search_mode == IVF_SEARCH_CSR) ||
		(ivf_search_mode == IVF_SEARCH_AUTO &&
		 (double) nq * nprobe >= (double) ss->meta.nlists);
	if (csr)
		search_csr(ss);
	else
		for (qi = 0; qi < nq; qi++)
		{
			search_matrix_query(ss, qi);
			CHECK_FOR_INTERRUPTS();
		}
}

/*
 * Queries per chunk: what one query holds while its chunk is processed
 * (its prepared vector, ranked lists with their limits, csr's pairs and
 * heap or the GPU's answer, whichever is larger), within work_mem.
 */
static int
chunk_queries(const SearchState *ss, int nq)
{
	Size		per = sizeof(float) * ss->meta.dims +
		(sizeof(int32) + sizeof(float) + 2 * sizeof(uint64) +
		 sizeof(int32) + sizeof(uint64)) * (Size) ss->nprobe +
		(sizeof(float) + sizeof(int64)) * (Size) csr_depth(ss->k) +
		sizeof(IvfTopK);
	Size		n = ((Size) work_mem * 1024) / per;

	return (int) Max(1, Min(n, (Size) Max(nq, 1)));
}

/*
 * ivf_search(index, queries, k, nprobe): the body of both SQL signatures,
 * queries vector[] (qelem float) or halfvec[] (qelem half).  The element
 * type comes from the C entry point, not from the array's type OID: under
 * ivf_pgvector the types are pgvector's, and no OID is looked up by name.
 */
static Datum
search_queries(FunctionCallInfo fcinfo, IvfElemType qelem)
{
	Oid			indexoid;
	ArrayType  *arr;
	int32		k;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext work;
	MemoryContext chunkcxt;
	MemoryContext old;
	TupleDesc	desc;
	SearchState ss;
	Datum	   *elems;
	bool	   *elemnulls;
	int			nq;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			per_chunk;
	int			q0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(&ss, 0, sizeof(ss));
	ss.store = ivf_srf_materialize(fcinfo, desc);
	ss.desc = rsinfo->setDesc;

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
	chunkcxt = AllocSetContextCreate(work, "ivf_search chunk",
									 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	/* named as the SQL function in errors, whichever signature was called */
	ss.index = ivf_open_index(indexoid, &ss.heap, "ivf_search", IVF_OPEN_READ);
	ss.work = work;
	ss.nprobe_arg = PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3);
	take_view(&ss, ivf_get_cache(ss.index));
	ss.k = k;
	ss.qelem = qelem;

	/* the statement's snapshot, read as an index scan reads the table */
	ss.snapshot = GetActiveSnapshot();
	PredicateLockRelation(ss.index, ss.snapshot);
	ss.fetch = table_index_fetch_begin(ss.heap);
	ss.slot = table_slot_create(ss.heap, NULL);
	ivf_candidates_init(&ss.cands, work, 1024);
	ss.vis_tid = palloc(sizeof(ItemPointerData) * k);
	ss.vis_dist = palloc(sizeof(float) * k);

	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
					  &elems, &elemnulls, &nq);

	per_chunk = chunk_queries(&ss, nq);
	for (q0 = 0; q0 < nq; q0 += per_chunk)
	{
		MemoryContextSwitchTo(chunkcxt);
		search_chunk(&ss, elems, elemnulls, q0, Min(per_chunk, nq - q0),
					 q0 + per_chunk >= nq);
		MemoryContextSwitchTo(work);
		MemoryContextReset(chunkcxt);
		CHECK_FOR_INTERRUPTS();
	}

	ExecDropSingleTupleTableSlot(ss.slot);
	table_index_fetch_end(ss.fetch);
	index_close(ss.index, AccessShareLock);
	table_close(ss.heap, AccessShareLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ivf_search);
Datum
ivf_search(PG_FUNCTION_ARGS)
{
	return search_queries(fcinfo, IVF_ELEM_FLOAT);
}

/* ivf_search(regclass, halfvec[], int, int) */
PG_FUNCTION_INFO_V1(ivf_search_halfvec);
Datum
ivf_search_halfvec(PG_FUNCTION_ARGS)
{
	return search_queries(fcinfo, IVF_ELEM_HALF);
}

/*
 * Planner support for ivf_search: when the queries and k are known at plan
 * time (literals, or the parameters of a custom plan), the result has at
 * most nq * k rows.  With the declared ROWS 1000 alone, a search for a few
 * queries joined back to its table on ctid was planned as a hash join over
 * the whole table, which cost far more than the search itself; with the
 * real count the planner takes a TID scan per row.
 */
PG_FUNCTION_INFO_V1(ivf_search_support);
Datum
ivf_search_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestRows *req;
	FuncExpr   *fexpr;
	Node	   *qarg;
	Node	   *karg;
	double		nq;
	double		k;

	if (!IsA(rawreq, SupportRequestRows))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestRows *) rawreq;
	if (!is_funcclause(req->node))
		PG_RETURN_POINTER(NULL);
	fexpr = (FuncExpr *) req->node;
	if (list_length(fexpr->args) < 3)
		PG_RETURN_POINTER(NULL);

	qarg = (Node *) lsecond(fexpr->args);
	karg = (Node *) lthird(fexpr->args);
	/* folds casts and, in a custom plan, replaces parameters by values */
	if (req->root != NULL)
	{
		qarg = estimate_expression_value(req->root, qarg);
		karg = estimate_expression_value(req->root, karg);
	}

	if (!IsA(karg, Const) || ((Const *) karg)->constisnull)
		PG_RETURN_POINTER(NULL);
	k = Max(DatumGetInt32(((Const *) karg)->constvalue), 1);

	if (IsA(qarg, Const) && !((Const *) qarg)->constisnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(((Const *) qarg)->constvalue);

		nq = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	}
	else if (IsA(qarg, ArrayExpr))
		nq = list_length(((ArrayExpr *) qarg)->elements);
	else
		PG_RETURN_POINTER(NULL);

	req->rows = Max(nq * k, 1.0);
	PG_RETURN_POINTER(req);
}
