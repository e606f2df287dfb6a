/*-------------------------------------------------------------------------
 *
 * ivfautotune.c
 *	  Measuring recall and tuning the search knobs: ivf_recall(),
 *	  ivf_autotune() and ivf_set_params().
 *
 * Both measurements compare what the index's own scans return (the path
 * ORDER BY ... LIMIT k takes, through index_getnext_tid) with exact ground
 * truth computed from the table: every indexed row's vector against the
 * queries as one GEMM per block of rows, whose shortlists the pair kernel
 * re-ranks (for L2 under a rigorous bound, ivf_knn_l2sq), the k (+1)
 * nearest kept per query.
 *
 * ivf_autotune follows Faiss's AutoTune (ParameterSpace::explore):
 *	- the space is nprobe (1, 2, 4, ... and the list count) x max_codes
 *	  (none, and powers of two from about one list's size) x profile
 *	  (exact, and the approx_* presets whose budget binds), with settings
 *	  that cannot change a scan of this index dropped;
 *	- every knob is monotone (more = slower and more accurate), so before
 *	  running a point a it takes the best recall any measured point c >= a
 *	  reached and the longest time any measured b <= a took: if a point
 *	  already measured is at least that accurate and at most that slow, a
 *	  cannot join the Pareto frontier and is skipped;
 *	- the cheapest and the most expensive points go first, the rest in a
 *	  seeded random order, and each one is a NOTICE line, '*' marking those
 *	  that join the frontier as it stands.
 * Queries are rows sampled from the table; each query's own row is left
 * out of both its ground truth and its results (a scan asks for k + 1).
 *
 * Both sides see the same rows: those visible to the statement's snapshot.
 * The ground truth's table scan passes each visible row's index TID (the
 * root of its HOT chain, as the build does); a measured scan's TIDs are
 * fetched from the table as the executor would and only visible ones are
 * counted, by their index TID, so dead and uncommitted index entries are
 * neither hits nor misses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "storage/bufmgr.h"
#include "utils/snapmgr.h"

#include "distance.h"
#include "halfvec.h"
#include "ivfformat.h"
#include "ivfmetric.h"
#include "ivfpage.h"
#include "ivfsettings.h"
#include "ivfsql.h"
#include "kmeans.h"
#include "listscan.h"
#include "topk.h"
#include "vector.h"

/*
 * Rows per GEMM block of the ground truth: up to GT_BLOCK, fewer when the
 * queries are so many that the block's distances (queries x rows) would
 * pass GT_DIST_FLOATS.
 */
#define GT_BLOCK	4096
#define GT_DIST_FLOATS	((Size) 16 << 20)

/* most (query, neighbour) pairs held at once: nqueries x (k + 1) */
#define MAX_RESULTS	((Size) 50000000)

/* a query set and its exact nearest rows */
typedef struct TuneQueries
{
	int			nq;
	int			k;				/* neighbours measured */
	int			depth;			/* kept per query: k, or k + 1 with self */
	uint32		dims;
	IvfMetric	metric;
	IvfElemType elem;			/* the index's elements: its column's type */
	Datum	   *datums;			/* the query vectors, as scans get them */
	float	   *prepared;		/* nq x dims, the form the index stores */
	int64	   *self;			/* each query's own row, or -1 */
	int64	   *gt;				/* nq x k exact nearest (self excluded) */
	Snapshot	snapshot;		/* the statement's: what both sides see */
} TuneQueries;

static inline int64
tid_key(ItemPointer tid)
{
	return ((int64) ItemPointerGetBlockNumber(tid) << 16) |
		ItemPointerGetOffsetNumber(tid);
}

/* ---------------------------------------------------------- the table */

typedef struct SampleState
{
	Relation	index;
	TuneQueries *tq;
	int			want;
	int64		seen;
	uint64		rng;
	MemoryContext cxt;			/* where the sampled queries live */
} SampleState;

/* Reservoir sample of the indexed rows as queries. */
static void
sample_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
				bool tupleIsAlive, void *arg)
{
	SampleState *ss = (SampleState *) arg;
	TuneQueries *tq = ss->tq;
	MemoryContext old;
	int64		slot;
	float	   *p;
	bool		skip;

	if (isnull[0] || !tupleIsAlive)
		return;
	p = ivf_prepare_datum(index, tq->metric, tq->elem, tq->dims, values[0],
						  &skip);
	if (skip)
	{
		pfree(p);
		return;
	}
	old = MemoryContextSwitchTo(ss->cxt);
	slot = ivf_reservoir_slot(ss->seen++, ss->want, &ss->rng);
	if (slot >= 0)
	{
		if (tq->datums[slot] != (Datum) 0)
			pfree(DatumGetPointer(tq->datums[slot]));
		tq->datums[slot] = PointerGetDatum(PG_DETOAST_DATUM_COPY(values[0]));
		memcpy(tq->prepared + (Size) slot * tq->dims, p, sizeof(float) * tq->dims);
		tq->self[slot] = tid_key(tid);
	}
	pfree(p);
	MemoryContextSwitchTo(old);
}

typedef struct TruthState
{
	Relation	index;
	TuneQueries *tq;
	float	   *block;			/* rows x dims */
	int64	   *ids;			/* rows */
	int			n;
	int			rows;			/* block capacity */
	float	   *dist;			/* nq x rows */
	int64	   *knn_id;			/* L2: nq x depth; IP: a shortlist */
	float	   *knn_dist;
	IvfTopK    *heaps;			/* one per query */
	MemoryContext rowctx;
} TruthState;

static void
truth_flush(TruthState *ts)
{
	TuneQueries *tq = ts->tq;
	int			depth = tq->depth;
	int			q;

	if (ts->n == 0)
		return;
	if (tq->metric == IVF_METRIC_L2)
	{
		/*
		 * GEMM for a shortlist, re-ranked with the pair kernel under a
		 * rigorous error bound: the block's exact nearest, as a scan of
		 * every list would rank them.
		 */
		if (ivf_knn_l2sq(tq->prepared, tq->nq, ts->block, ts->n, tq->dims,
						 depth, ts->knn_id, ts->knn_dist) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory computing exact neighbours")));
		for (q = 0; q < tq->nq; q++)
			for (int e = 0; e < depth; e++)
			{
				int64		local = ts->knn_id[(Size) q * depth + e];

				if (local >= 0)
					ivf_topk_push(&ts->heaps[q], ts->knn_dist[(Size) q * depth + e],
								  ts->ids[local]);
			}
	}
	else
	{
		/*
		 * Inner products (cosine: of unit vectors): GEMM's products pick a
		 * shortlist twice the depth (at least 16 more), which the pair
		 * kernel then ranks as a scan would.
		 */
		int			kp = depth + Max(depth, 16);
		IvfTopK		sl;
		Size		i;

		ivf_gemm_dot(tq->prepared, tq->nq, ts->block, ts->n, tq->dims, ts->dist);
		for (i = 0; i < (Size) tq->nq * ts->n; i++)
			ts->dist[i] = -ts->dist[i];
		ivf_topk_init(&sl, kp, ts->knn_dist, ts->knn_id);
		for (q = 0; q < tq->nq; q++)
		{
			const float *qv = tq->prepared + (Size) q * tq->dims;

			ivf_topk_reset(&sl);
			ivf_topk_push_block(&sl, ts->dist + (Size) q * ts->n, ts->n, 0);
			for (i = 0; i < sl.n; i++)
			{
				int64		local = sl.id[i];

				ivf_topk_push(&ts->heaps[q],
							  -ivf_kernels.dot(qv, ts->block + (Size) local * tq->dims,
											   tq->dims),
							  ts->ids[local]);
			}
		}
	}
	ts->n = 0;
	CHECK_FOR_INTERRUPTS();
}

static void
truth_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			   bool tupleIsAlive, void *arg)
{
	TruthState *ts = (TruthState *) arg;
	MemoryContext old;
	float	   *p;
	bool		skip;

	if (isnull[0] || !tupleIsAlive)
		return;
	old = MemoryContextSwitchTo(ts->rowctx);
	p = ivf_prepare_datum(index, ts->tq->metric, ts->tq->elem, ts->tq->dims,
						  values[0], &skip);
	if (!skip)
	{
		memcpy(ts->block + (Size) ts->n * ts->tq->dims, p,
			   sizeof(float) * ts->tq->dims);
		ts->ids[ts->n++] = tid_key(tid);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(ts->rowctx);
	if (ts->n == ts->rows)
		truth_flush(ts);
}

/*
 * One pass over the table's rows visible to the snapshot (the index's
 * expression and predicate applied, as a build sees them), an MVCC one so
 * that concurrent writers are neither waited for nor warned about.
 */
static void
scan_table(Relation heap, Relation index, Snapshot snapshot,
		   IndexBuildCallback cb, void *arg)
{
	IndexInfo  *ii = BuildIndexInfo(index);
	TableScanDesc scan;

	/* "concurrent" makes the scan honour the snapshot we pass */
	ii->ii_Concurrent = true;
	snapshot = RegisterSnapshot(snapshot);
	scan = table_beginscan_strat(heap, snapshot, 0, NULL, true, false);
	(void) table_index_build_scan(heap, index, ii, true, false, cb, arg, scan);
	UnregisterSnapshot(snapshot);
}

/* Exact nearest rows of every query, self excluded when known. */
static void
ground_truth(Relation heap, Relation index, TuneQueries *tq)
{
	TruthState	ts;
	int			q;

	memset(&ts, 0, sizeof(ts));
	ts.index = index;
	ts.tq = tq;
	ts.rows = (int) Max(1, Min((Size) GT_BLOCK, GT_DIST_FLOATS / (Size) tq->nq));
	ts.block = palloc_extended(sizeof(float) * ts.rows * tq->dims, MCXT_ALLOC_HUGE);
	ts.ids = palloc(sizeof(int64) * ts.rows);
	if (tq->metric != IVF_METRIC_L2)
		ts.dist = palloc_extended(sizeof(float) * ts.rows * (Size) tq->nq, MCXT_ALLOC_HUGE);
	ts.knn_id = palloc_extended(sizeof(int64) * (Size) tq->nq * (tq->depth + Max(tq->depth, 16)),
								MCXT_ALLOC_HUGE);
	ts.knn_dist = palloc_extended(sizeof(float) * (Size) tq->nq * (tq->depth + Max(tq->depth, 16)),
								  MCXT_ALLOC_HUGE);
	ts.heaps = palloc(sizeof(IvfTopK) * tq->nq);
	for (q = 0; q < tq->nq; q++)
		ivf_topk_init(&ts.heaps[q], tq->depth, palloc(sizeof(float) * tq->depth),
					  palloc(sizeof(int64) * tq->depth));
	ts.rowctx = AllocSetContextCreate(CurrentMemoryContext, "ivf ground truth row",
									  ALLOCSET_SMALL_SIZES);
	scan_table(heap, index, tq->snapshot, truth_callback, &ts);
	truth_flush(&ts);

	tq->gt = palloc(sizeof(int64) * (Size) tq->nq * tq->k);
	for (q = 0; q < tq->nq; q++)
	{
		IvfTopK    *h = &ts.heaps[q];
		size_t		n = ivf_topk_sort(h);
		int			got = 0;
		size_t		i;

		for (i = 0; i < n && got < tq->k; i++)
			if (h->id[i] != tq->self[q])
				tq->gt[(Size) q * tq->k + got++] = h->id[i];
		for (; got < tq->k; got++)
			tq->gt[(Size) q * tq->k + got] = -1;
	}
	MemoryContextDelete(ts.rowctx);
}

/* ---------------------------------------------------------- measuring */

/*
 * Run every query through the index's scan with the current settings (or
 * the override); return the mean recall@k and set *ms to the mean time of
 * one query's scan.  Rows are counted as ORDER BY ... LIMIT returns them:
 * the first ones visible to the snapshot.
 */
static double
measure(Relation heap, Relation index, const TuneQueries *tq, double *ms)
{
	Snapshot	snapshot = RegisterSnapshot(tq->snapshot);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	int64	   *got = palloc(sizeof(int64) * tq->depth);
	int64	   *truth = palloc(sizeof(int64) * Max(tq->k, 1));
	double		hits = 0.0;
	double		total = 0.0;
	double		seconds = 0.0;
	/* whatever a scan leaves behind goes with it: thousands run here */
	MemoryContext qcxt = AllocSetContextCreate(CurrentMemoryContext,
											   "ivf recall scan",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;
	int			q;

	for (q = 0; q < tq->nq; q++)
	{
		IndexScanDesc scan;
		ScanKeyData key;
		ItemPointer tid;
		instr_time	t0,
					t1;
		int			n = 0;
		int			nt = 0;
		int			i,
					j;

		ScanKeyEntryInitialize(&key, 0, 1, IVF_ORDERBY_STRATEGY, InvalidOid,
							   InvalidOid, InvalidOid, tq->datums[q]);
		old = MemoryContextSwitchTo(qcxt);
		INSTR_TIME_SET_CURRENT(t0);
		scan = index_beginscan(heap, index, snapshot, 0, 1);
		index_rescan(scan, NULL, 0, &key, 1);
		while (n < tq->depth &&
			   (tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
		{
			/* the index's TID, as the ground truth has it */
			int64		key = tid_key(tid);

			if (index_fetch_heap(scan, slot))
				got[n++] = key;
		}
		index_endscan(scan);
		INSTR_TIME_SET_CURRENT(t1);
		MemoryContextSwitchTo(old);
		MemoryContextReset(qcxt);
		INSTR_TIME_SUBTRACT(t1, t0);
		seconds += INSTR_TIME_GET_DOUBLE(t1);

		/* drop the query's own row, then keep the first k */
		for (i = 0, j = 0; i < n; i++)
			if (got[i] != tq->self[q])
				got[j++] = got[i];
		n = Min(j, tq->k);
		for (i = 0; i < tq->k; i++)
			if (tq->gt[(Size) q * tq->k + i] >= 0)
				truth[nt++] = tq->gt[(Size) q * tq->k + i];
		qsort(got, n, sizeof(int64), ivf_cmp_int64);
		qsort(truth, nt, sizeof(int64), ivf_cmp_int64);
		for (i = 0, j = 0; i < n && j < nt;)
		{
			if (got[i] == truth[j])
			{
				hits += 1.0;
				i++;
				j++;
			}
			else if (got[i] < truth[j])
				i++;
			else
				j++;
		}
		total += nt;
		CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	MemoryContextDelete(qcxt);
	*ms = tq->nq > 0 ? seconds * 1000.0 / tq->nq : 0.0;
	return total > 0 ? hits / total : 1.0;
}

static void
init_queries(TuneQueries *tq, Relation index, int nq, int k, bool self)
{
	IvfMetaPageData meta;

	if ((Size) nq * (Size) (k + 1) > MAX_RESULTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%d queries with k = %d are too many to measure at once", nq, k),
				 errdetail("The number of queries times k + 1 may be at most %zu.",
						   (size_t) MAX_RESULTS)));
	ivf_read_meta(index, &meta);
	memset(tq, 0, sizeof(*tq));
	tq->nq = nq;
	tq->k = k;
	tq->depth = self ? k + 1 : k;
	tq->dims = meta.dims;
	tq->metric = (IvfMetric) meta.metric;
	tq->elem = (IvfElemType) meta.elem_type;
	tq->datums = palloc0(sizeof(Datum) * Max(nq, 1));
	tq->prepared = palloc_extended(sizeof(float) * (Size) Max(nq, 1) * meta.dims,
								   MCXT_ALLOC_HUGE);
	tq->self = palloc(sizeof(int64) * Max(nq, 1));
	for (int i = 0; i < nq; i++)
		tq->self[i] = -1;
	tq->snapshot = GetActiveSnapshot();
}

static void
check_k(int k)
{
	if (k < 1 || k > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and 10000, not %d", k)));
}

/*
 * The body of ivf_recall for queries of either type (qelem: vector[] or
 * halfvec[], from the C entry point).  Each query becomes a value of the
 * indexed column's type, so the scans measured get the ORDER BY argument
 * a query on that column would give them.
 */
static Datum
recall_queries(FunctionCallInfo fcinfo, IvfElemType qelem)
{
	Oid			indexoid = PG_GETARG_OID(0);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	int32		k = PG_GETARG_INT32(2);
	MemoryContext work;
	MemoryContext old;
	Relation	heap;
	Relation	index;
	TuneQueries tq;
	Datum	   *elems;
	bool	   *nulls;
	int			nq;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	double		ms;
	double		recall;

	check_k(k);
	work = AllocSetContextCreate(CurrentMemoryContext, "ivf_recall",
								 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	/* named as the SQL function in errors, whichever signature was called */
	index = ivf_open_index(indexoid, &heap, "ivf_recall", IVF_OPEN_READ);

	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
					  &elems, &nulls, &nq);
	if (nq == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no queries given")));
	init_queries(&tq, index, nq, k, false);
	for (int q = 0; q < nq; q++)
	{
		float	   *p;
		bool		skip;
		int			qdim;

		if (nulls[q])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("query %d is NULL", q + 1)));
		/* detoasted once; checked before the conversion, to name its type */
		if (qelem == IVF_ELEM_HALF)
		{
			HalfVector *h = DatumGetHalfVector(elems[q]);

			elems[q] = PointerGetDatum(h);
			qdim = h->dim;
		}
		else
		{
			Vector	   *v = DatumGetVector(elems[q]);

			elems[q] = PointerGetDatum(v);
			qdim = v->dim;
		}
		if (qdim != (int) tq.dims)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("different %s dimensions %u and %d",
							ivf_elem_name(qelem), tq.dims, qdim),
					 errdetail("Query %d; index \"%s\" stores %u-dimensional vectors.",
							   q + 1, RelationGetRelationName(index), tq.dims)));
		if (tq.elem == IVF_ELEM_HALF && qelem == IVF_ELEM_FLOAT)
		{
			/*
			 * A halfvec index is scanned with halfvec queries: the vector
			 * rounded to half precision, as a cast would.
			 */
			Vector	   *v = DatumGetVector(elems[q]);

			elems[q] = PointerGetDatum(ivf_halfvec_from_floats(v->x, v->dim));
		}
		else if (tq.elem == IVF_ELEM_FLOAT && qelem == IVF_ELEM_HALF)
		{
			/* and a vector index with vector queries: widened, exactly */
			HalfVector *h = DatumGetHalfVector(elems[q]);
			Vector	   *v = InitVector(h->dim);

			ivf_halfvec_to_floats(h, v->x);
			elems[q] = PointerGetDatum(v);
		}
		p = ivf_prepare_datum(index, tq.metric, tq.elem, tq.dims, elems[q],
							  &skip);
		if (skip)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("query %d is a zero vector, which has no cosine distance", q + 1)));
		memcpy(tq.prepared + (Size) q * tq.dims, p, sizeof(float) * tq.dims);
		tq.datums[q] = elems[q];
	}
	ground_truth(heap, index, &tq);
	recall = measure(heap, index, &tq, &ms);

	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	PG_RETURN_FLOAT8(recall);
}

/*
 * ivf_recall(index, queries, k): mean recall@k of the index's scans, with
 * the session's settings, against exact search of the table.
 */
PG_FUNCTION_INFO_V1(ivf_recall);
Datum
ivf_recall(PG_FUNCTION_ARGS)
{
	return recall_queries(fcinfo, IVF_ELEM_FLOAT);
}

/* ivf_recall(regclass, halfvec[], int) */
PG_FUNCTION_INFO_V1(ivf_recall_halfvec);
Datum
ivf_recall_halfvec(PG_FUNCTION_ARGS)
{
	return recall_queries(fcinfo, IVF_ELEM_HALF);
}

/* ------------------------------------------------------------ params */

/* The index's name as ALTER INDEX takes it. */
static char *
index_sql_name(Relation index)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(index)),
									  RelationGetRelationName(index));
}

/*
 * Store params (already validated, canonical) as the index's params option,
 * or remove the option when it is empty: ALTER INDEX, so ownership is
 * checked and the change is transactional and WAL-logged like any other.
 * The caller must have closed the index (ALTER refuses a relation this
 * session has open); the locks it keeps are weaker than ALTER's.
 */
static void
store_index_params(const char *name, const char *params)
{
	char	   *sql;

	if (params[0] == '\0')
		sql = psprintf("ALTER INDEX %s RESET (params)", name);
	else
		sql = psprintf("ALTER INDEX %s SET (params = %s)", name,
					   quote_literal_cstr(params));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not run: %s", sql);
	SPI_finish();
}

/*
 * ivf_set_params(index, params): the index's search defaults, used by every
 * query that does not set the knob itself.  Returns the stored text.
 */
PG_FUNCTION_INFO_V1(ivf_set_params);
Datum
ivf_set_params(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	char	   *str = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Relation	heap;
	Relation	index;
	IvfParamSet ps;
	char	   *msg;
	char	   *canon;
	char	   *name;

	if (!ivf_params_parse(str, &ps, &msg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid parameter string \"%s\"", str),
				 errdetail("%s", msg)));
	canon = ivf_params_format(&ps);
	/* only the owner changes the params; nothing of the rows is returned */
	index = ivf_open_index(indexoid, &heap, __func__, IVF_OPEN_OWNER);
	name = index_sql_name(index);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	store_index_params(name, canon);
	PG_RETURN_TEXT_P(cstring_to_text(canon));
}

/* ----------------------------------------------------------- autotune */

/* "no limit" sorts above every value of a knob */
#define KNOB_NONE	INT64_MAX

typedef struct Point
{
	int			nprobe;
	int64		max_codes;		/* KNOB_NONE: no limit */
	int64		budget;			/* KNOB_NONE: exact */
	int			profile;
	bool		done;
	double		recall;
	double		ms;
} Point;

static bool
point_ge(const Point *a, const Point *b)
{
	return a->nprobe >= b->nprobe && a->max_codes >= b->max_codes &&
		a->budget >= b->budget;
}

static char *
point_params(const Point *p)
{
	IvfParamSet ps;

	memset(&ps, 0, sizeof(ps));
	ps.set = IVF_PARAM_NPROBE | IVF_PARAM_MAX_CODES | IVF_PARAM_PROFILE;
	ps.nprobe = p->nprobe;
	ps.max_codes = p->max_codes == KNOB_NONE ? 0 : (int) p->max_codes;
	ps.profile = p->profile;
	return ivf_params_format(&ps);
}

/* Is p on the frontier of the measured points (none faster and as good)? */
static bool
on_frontier(const Point *pts, int n, const Point *p)
{
	for (int i = 0; i < n; i++)
	{
		const Point *o = &pts[i];

		if (o == p || !o->done)
			continue;
		if (o->recall >= p->recall && o->ms < p->ms)
			return false;
		if (o->recall > p->recall && o->ms <= p->ms)
			return false;
	}
	return true;
}

static int
cmp_point_ms(const void *a, const void *b)
{
	const Point *x = *(const Point *const *) a;
	const Point *y = *(const Point *const *) b;

	if (x->ms != y->ms)
		return x->ms < y->ms ? -1 : 1;
	return (x->recall > y->recall) ? -1 : (x->recall < y->recall);
}

/*
 * Measure the points in the given order, skipping those that cannot join
 * the frontier (see the top of the file); ps is the override the scans
 * see, filled in for each point.
 */
static void
explore(Relation heap, Relation index, const TuneQueries *tq, Point *pts,
		int npts, const int *order, IvfParamSet *ps)
{
	for (int e = 0; e < npts; e++)
	{
		Point	   *p = &pts[order[e]];
		double		perf_max = 1.0;
		double		t_min = 0.0;
		bool		skip = false;
		char	   *name = point_params(p);

		for (int i = 0; i < npts; i++)
		{
			const Point *o = &pts[i];

			if (!o->done)
				continue;
			if (point_ge(o, p))
				perf_max = Min(perf_max, o->recall);
			if (point_ge(p, o))
				t_min = Max(t_min, o->ms);
		}
		for (int i = 0; i < npts && !skip; i++)
			if (pts[i].done && pts[i].recall >= perf_max && pts[i].ms <= t_min)
				skip = true;
		if (skip)
		{
			ereport(NOTICE,
					(errmsg("%4d/%d: %s bounds [recall<=%.4f ms>=%.3f] skip",
							e + 1, npts, name, perf_max, t_min)));
			continue;
		}
		ps->nprobe = p->nprobe;
		ps->max_codes = p->max_codes == KNOB_NONE ? 0 : (int) p->max_codes;
		ps->profile = p->profile;
		ps->candidate_budget = 0;
		p->recall = measure(heap, index, tq, &p->ms);
		p->done = true;
		ereport(NOTICE,
				(errmsg("%4d/%d: %s bounds [recall<=%.4f ms>=%.3f] recall %.4f ms %.3f%s",
						e + 1, npts, name, perf_max, t_min, p->recall, p->ms,
						on_frontier(pts, npts, p) ? " *" : "")));
	}
}

/*
 * Warm up before timing anything, or the first experiment pays for every
 * page it is the first to read and its inflated time prunes points it
 * should not: the index's pages into shared buffers (when they take at
 * most half of them), then one untimed pass of the queries.
 */
static void
warm_up(Relation heap, Relation index, const TuneQueries *tq)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	double		ms;

	if (nblocks <= (BlockNumber) NBuffers / 2)
		for (BlockNumber b = 0; b < nblocks; b++)
		{
			ReleaseBuffer(ReadBufferExtended(index, MAIN_FORKNUM, b,
											 RBM_NORMAL, NULL));
			if ((b & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
		}
	(void) measure(heap, index, tq, &ms);
}

/* explore() with its settings taking precedence, whatever happens */
static void
explore_overriding(Relation heap, Relation index, const TuneQueries *tq,
				   Point *pts, int npts, const int *order, IvfParamSet *ps)
{
	const IvfParamSet *saved = ivf_params_override;

	PG_TRY();
	{
		ivf_params_override = ps;
		ps->nprobe = pts[0].nprobe;
		ps->max_codes = pts[0].max_codes == KNOB_NONE ? 0 : (int) pts[0].max_codes;
		ps->profile = pts[0].profile;
		warm_up(heap, index, tq);
		explore(heap, index, tq, pts, npts, order, ps);
	}
	PG_FINALLY();
	{
		ivf_params_override = saved;
	}
	PG_END_TRY();
}

PG_FUNCTION_INFO_V1(ivf_autotune);
Datum
ivf_autotune(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	double		target = PG_GETARG_FLOAT8(1);
	int32		k = PG_GETARG_INT32(2);
	int32		nqueries = PG_GETARG_INT32(3);
	bool		apply = PG_GETARG_BOOL(4);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc;
	Tuplestorestate *store;
	MemoryContext work;
	MemoryContext old;
	Relation	heap;
	Relation	index;
	IvfMetaPageData meta;
	IvfGeometry g;
	TuneQueries tq;
	SampleState ss;
	uint64	   *sizes;
	uint64		total = 0;
	uint64		largest = 0;
	int			nprobes[32];
	int			nnp = 0;
	int64		codes[64];
	int			ncodes = 0;
	int			profiles[4];
	int64		budgets[4];
	int			nprof = 0;
	Point	   *pts;
	Point	  **frontier;
	int			npts = 0;
	int			nfront = 0;
	int		   *order;
	uint64		rng = UINT64CONST(0x1F2E3D4C5B6A7988);
	IvfParamSet ps;
	const Point *best = NULL;
	char	   *name;
	uint32	   *live_slot;

	if (!(target >= 0.0 && target <= 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target_recall must be between 0 and 1, not %g", target)));
	check_k(k);
	if (nqueries < 1 || nqueries > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("nqueries must be between 1 and 100000, not %d", nqueries)));

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	store = ivf_srf_materialize(fcinfo, desc);
	desc = rsinfo->setDesc;

	work = AllocSetContextCreate(CurrentMemoryContext, "ivf_autotune",
								 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	/*
	 * With apply, only the owner may change the index's params: say so
	 * before any work (ALTER INDEX would too, but after the exploration).
	 */
	index = ivf_open_index(indexoid, &heap, __func__,
						   IVF_OPEN_READ | (apply ? IVF_OPEN_OWNER : 0));
	{
		/* the lists live now, whose sizes shape the knobs' space */
		IvfCache   *cache = ivf_get_cache(index);

		meta = cache->meta;
		g = cache->geo;
		live_slot = palloc(sizeof(uint32) * cache->nlive);
		memcpy(live_slot, cache->live_slot, sizeof(uint32) * cache->nlive);
	}

	/* the queries: rows of the table, and their exact neighbours */
	init_queries(&tq, index, nqueries, k, true);
	memset(&ss, 0, sizeof(ss));
	ss.index = index;
	ss.tq = &tq;
	ss.want = nqueries;
	ss.rng = UINT64CONST(0x5DEECE66D);
	ss.cxt = work;
	scan_table(heap, index, tq.snapshot, sample_callback, &ss);
	tq.nq = (int) Min(ss.seen, (int64) nqueries);
	if (tq.nq == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table of index \"%s\" has no indexed rows to sample queries from",
						RelationGetRelationName(index))));
	ground_truth(heap, index, &tq);

	/* the space: values of each knob that can make a difference here */
	sizes = palloc(sizeof(uint64) * meta.nlists);
	for (uint32 l = 0; l < meta.nlists; l++)
	{
		sizes[l] = ivf_list_size(index, &meta, &g, live_slot[l]);
		total += sizes[l];
		largest = Max(largest, sizes[l]);
	}
	for (int np = 1; np < (int) meta.nlists && nnp < 31; np *= 2)
		nprobes[nnp++] = np;
	nprobes[nnp++] = (int) meta.nlists;
	{
		uint64		avg = total / Max(meta.nlists, 1);
		int64		c = 1;

		while ((uint64) c < Max(avg, 1))
			c *= 2;
		for (; (uint64) c < total && c <= INT_MAX && ncodes < 63; c *= 2)
			codes[ncodes++] = c;
	}
	codes[ncodes++] = KNOB_NONE;
	{
		static const int pr[] = {IVF_PROFILE_FAST, IVF_PROFILE_BALANCED, IVF_PROFILE_QUALITY};
		static const int64 bu[] = {32768, 65536, 131072};

		/* a budget binds only if some probe round gets less than a list */
		for (int i = 0; i < 3; i++)
			if ((uint64) bu[i] < total && (uint64) bu[i] < largest * meta.nlists)
			{
				profiles[nprof] = pr[i];
				budgets[nprof++] = bu[i];
			}
	}
	profiles[nprof] = IVF_PROFILE_EXACT;
	budgets[nprof++] = KNOB_NONE;
	pts = palloc0(sizeof(Point) * nnp * ncodes * nprof);
	for (int a = 0; a < nnp; a++)
	{
		/* what nprobe lists can hold at most: no cap at or above it binds */
		uint64		reach = Min(total, largest * (uint64) nprobes[a]);

		for (int b = 0; b < ncodes; b++)
		{
			if (codes[b] != KNOB_NONE && (uint64) codes[b] >= reach)
				continue;
			for (int c = 0; c < nprof; c++)
			{
				/* uniform shares: ceil(budget / nprobe) per list */
				if (budgets[c] != KNOB_NONE &&
					(uint64) ((budgets[c] + nprobes[a] - 1) / nprobes[a]) >= largest)
					continue;
				pts[npts].nprobe = nprobes[a];
				pts[npts].max_codes = codes[b];
				pts[npts].budget = budgets[c];
				pts[npts].profile = profiles[c];
				npts++;
			}
		}
	}

	/* Faiss's order: the cheapest, the most expensive, then at random */
	order = palloc(sizeof(int) * npts);
	for (int i = 0; i < npts; i++)
		order[i] = i;
	if (npts > 1)
	{
		int			last = npts - 1;

		/* every knob ascends through pts: 0 is the least, the last the most */
		order[1] = last;
		order[last] = 1;
		for (int i = npts - 1; i > 2; i--)
		{
			int			j = 2 + (int) (ivf_splitmix64(&rng) % (uint64) (i - 1));
			int			t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
	}

	memset(&ps, 0, sizeof(ps));
	ps.set = IVF_PARAM_NPROBE | IVF_PARAM_MAX_CODES | IVF_PARAM_PROFILE |
		IVF_PARAM_BUDGET | IVF_PARAM_STRATEGY;
	ps.budget_strategy = IVF_BUDGET_UNIFORM;
	ereport(NOTICE,
			(errmsg("ivf_autotune: %d queries sampled from \"%s\", recall@%d, %d operating points to explore",
					tq.nq, get_rel_name(heap->rd_id), k, npts)));
	explore_overriding(heap, index, &tq, pts, npts, order, &ps);

	/* the frontier, fastest first */
	frontier = palloc(sizeof(Point *) * Max(npts, 1));
	for (int i = 0; i < npts; i++)
		if (pts[i].done && on_frontier(pts, npts, &pts[i]))
			frontier[nfront++] = &pts[i];
	qsort(frontier, nfront, sizeof(Point *), cmp_point_ms);
	for (int i = 0; i < nfront; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(point_params(frontier[i]));
		values[1] = Float8GetDatum(frontier[i]->recall);
		values[2] = Float8GetDatum(frontier[i]->ms);
		tuplestore_putvalues(store, desc, values, nulls);
		if (best == NULL && frontier[i]->recall >= target)
			best = frontier[i];
	}

	name = index_sql_name(index);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	if (apply)
	{
		if (best != NULL)
		{
			char	   *params = point_params(best);

			store_index_params(name, params);
			ereport(NOTICE,
					(errmsg("index %s now searches with \"%s\" by default (recall@%d %.4f, %.3f ms per query)",
							name, params, k, best->recall, best->ms)));
		}
		else
			ereport(WARNING,
					(errmsg("no operating point of index %s reached recall %g; its settings are unchanged",
							name, target),
					 nfront > 0 ?
					 errdetail("The most accurate measured was \"%s\" with recall %.4f.",
							   point_params(frontier[nfront - 1]),
							   frontier[nfront - 1]->recall) : 0));
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}
