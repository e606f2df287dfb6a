/*-------------------------------------------------------------------------
 *
 * ivfbuild.c
 *	  CREATE INDEX for ivfflat: sample, train k-means, assign, sort by list,
 *	  write list-packed pages.
 *
 * 1. Sampling: one heap scan keeps a uniform reservoir sample (Algorithm R
 *    with our own seeded generator, and a non-synchronised scan, so the
 *    same table and seed always give the same sample) of
 *    max(ivf.kmeans_points_per_list * lists, 10000) vectors, fewer when maintenance_work_mem is
 *    small.
 * 2. k-means (kmeans.c): Faiss's algorithm, assignment steps as blocked
 *    GEMM; spherical for the cosine and inner-product classes.  With the
 *    centroids option the centroids come from a Faiss file instead
 *    (ivffaiss.c), and the sample only trains the prefilter's ranges.
 * 3. Assignment: a second heap scan assigns vectors to their nearest
 *    centroid in GEMM batches, exactly as an insert would (kmeans.c
 *    re-ranks GEMM's shortlist with the pair kernel).  A serial pass
 *    appends each (residual, tid, vector) to its list's bucket in memory,
 *    and each list is sorted on its own when written; rows that outgrow
 *    maintenance_work_mem move to a tuplesort on (list, residual, tid),
 *    which spills.  When the planner gives the build workers
 *    (plan_create_index_workers) the pass is parallel: workers and the
 *    leader each scan part of the heap (a parallel table scan) and assign
 *    their rows; the workers send theirs to the leader through shm_mq
 *    queues and the leader keeps them as a serial pass would.  The order
 *    (list, residual, tid) is total, so the index is the same page for
 *    page whichever way the rows came.
 * 4. Writing: the ordered rows become each list's groups, written
 *    consecutively so a list is one run of blocks; then the directory and
 *    the meta page.  List pages are built in local memory and written
 *    straight to the relation file with smgrextend, each group WAL-logged
 *    as full images first (log_newpages), as nbtree's sorted build does;
 *    the few fixed pages go through shared buffers and are logged with
 *    log_newpage_range at the end, then the file is synced.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "catalog/pg_operator_d.h"
#include "catalog/pg_type_d.h"
#include "commands/progress.h"
#include "executor/instrument.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/latch.h"
#include "storage/shm_mq.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "portability/instr_time.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"

#include "distance.h"
#include "gpuclient.h"
#include "ivfflat.h"
#include "ivfformat.h"
#include "ivfmetric.h"
#include "ivfoptions.h"
#include "ivfpage.h"
#include "ivfquantizer.h"
#include "ivfsettings.h"
#include "kmeans.h"
#include "listscan.h"

/* float4 '<' (pg_operator.oid 622; no symbolic name in pg_operator_d.h) */
#define IVF_FLOAT4_LT_OPERATOR 622

#define IVF_MIN_SAMPLE		10000
#define IVF_WARN_PER_LIST	39	/* Faiss warns below this many per centroid */

typedef struct IvfBuildState
{
	Relation	heap;
	Relation	index;
	IndexInfo  *indexInfo;
	IvfMetric	metric;
	IvfElemType elem;			/* the stored elements (the opclass's type) */
	uint32		dims;
	IvfGeometry geo;
	MemoryContext tmpCtx;		/* reset per tuple */

	/* sampling */
	float	   *samples;
	size_t		nsamples;
	size_t		max_samples;
	uint64		rows;			/* indexable rows seen */
	double		heap_tuples;	/* live table rows seen, indexable or not */
	uint64		prng;

	/* assignment */
	uint32		nlists;
	float	   *centroids;		/* nlists rows, then lo and step with codes */
	float	   *centroid_norms;
	float	   *sq8_lo;			/* codes: quantizer rows, else NULL */
	float	   *sq8_step;
	void	   *assign_ws;
	size_t		batch_max;
	size_t		nbatch;
	float	   *batch;
	ItemPointerData *batch_tids;
	int32	   *batch_lists;
	float	   *batch_dist;
	bool		ordered;		/* list_ordering = residual_norm_asc */
	struct IvfRowStore *store;	/* serial: rows in memory, else NULL */
	struct IvfGpuKmeans *gpu;	/* serial, ivf.gpu_build: assign there */
	Tuplesortstate *sort;
	TupleDesc	sortdesc;
	TupleTableSlot *slot;
	double		indtuples;
	struct IvfLeader *leader;	/* parallel leader: the workers' queues */
	shm_mq_handle *mq;			/* parallel worker: rows go to the leader */
} IvfBuildState;

/* ------------------------------------------------- parallel assignment */

#define IVF_PARALLEL_KEY_SHARED		UINT64CONST(0xA1F0000000000001)
#define IVF_PARALLEL_KEY_QUEUES		UINT64CONST(0xA1F0000000000002)
#define IVF_PARALLEL_KEY_CENTROIDS	UINT64CONST(0xA1F0000000000003)
#define IVF_PARALLEL_KEY_QUERY_TEXT	UINT64CONST(0xA1F0000000000004)
#define IVF_PARALLEL_KEY_WAL_USAGE	UINT64CONST(0xA1F0000000000005)
#define IVF_PARALLEL_KEY_BUFFER_USAGE UINT64CONST(0xA1F0000000000006)

/*
 * Centroids travel to the workers in the DSM segment; past this size the
 * pass stays serial rather than ask for a huge segment (/dev/shm is often
 * small in containers).
 */
#define IVF_PARALLEL_MAX_CENTROID_BYTES ((Size) 256 * 1024 * 1024)

/*
 * Each worker sends its assigned rows to the leader through a shm_mq of
 * this size (in the DSM segment): about one batch of 128-d rows, so a
 * worker rarely waits while the leader is busy with its own batch.
 */
#define IVF_PARALLEL_QUEUE_BYTES	((Size) 4 * 1024 * 1024)

/* what every participant of the parallel pass reads (and the counters) */
typedef struct IvfShared
{
	Oid			heaprelid;
	Oid			indexrelid;
	bool		isconcurrent;
	uint32		nlists;
	uint32		dims;
	Size		queue_bytes;	/* each worker's shm_mq */

	slock_t		mutex;
	double		worker_rows;	/* rows the workers sent */
	/* a ParallelTableScanDescData follows at BUFFERALIGN(sizeof(IvfShared)) */
} IvfShared;

#define ParallelTableScanFromIvfShared(shared) \
	((ParallelTableScanDesc) ((char *) (shared) + BUFFERALIGN(sizeof(IvfShared))))

typedef struct IvfLeader
{
	ParallelContext *pcxt;
	IvfShared  *shared;
	shm_mq_handle **queues;		/* per launched worker; NULL once detached */
	int			nqueues;
	int			nactive;		/* queues not yet detached */
	double		received;		/* rows read from the queues */
	double		sent;			/* rows the workers said they sent */
	Snapshot	snapshot;
	WalUsage   *walusage;
	BufferUsage *bufferusage;
} IvfLeader;

PGDLLEXPORT void ivf_parallel_build_main(dsm_segment *seg, shm_toc *toc);

/* the lists of an index of 'rows' rows when the lists option is not given */
uint32
ivf_lists_for_rows(double rows)
{
	double		lists;

	if (rows <= 1000000)
		lists = rows / 1000;
	else
		lists = sqrt(rows);
	return (uint32) Max(1, Min(IVF_MAX_LISTS, floor(lists)));
}

/* the default when the index has no nprobe option: round(sqrt(lists)) */
static uint32
default_nprobe(uint32 nlists)
{
	return Max(1, (uint32) rint(sqrt((double) nlists)));
}

static void
check_interrupts(void *arg)
{
	CHECK_FOR_INTERRUPTS();
}

static void
kmeans_progress(void *arg, int iter, int niter, double objective)
{
	CHECK_FOR_INTERRUPTS();
	if (iter > 0)
	{
		const int	index[] = {PROGRESS_CREATEIDX_TUPLES_TOTAL,
		PROGRESS_CREATEIDX_TUPLES_DONE};
		const int64 val[] = {niter, iter};

		pgstat_progress_update_multi_param(2, index, val);
	}
}

/* ---------------------------------------------------------------- phase 1 */

static void
sample_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
				bool tupleIsAlive, void *arg)
{
	IvfBuildState *bs = (IvfBuildState *) arg;
	MemoryContext old;
	float	   *vec;
	bool		skip;
	int64		slot;

	if (isnull[0])
		return;

	old = MemoryContextSwitchTo(bs->tmpCtx);
	vec = ivf_prepare_datum(index, bs->metric, bs->elem, bs->dims, values[0],
							&skip);
	if (!skip)
	{
		ivf_round_to_elem(bs->elem, vec, bs->dims);
		slot = ivf_reservoir_slot(bs->rows++, bs->max_samples, &bs->prng);
		if (slot >= 0)
		{
			if ((size_t) slot == bs->nsamples)
				bs->nsamples++;
			memcpy(bs->samples + slot * bs->dims, vec, sizeof(float) * bs->dims);
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpCtx);
}

/* ---------------------------------------------------------------- phase 3 */

/*
 * The assigned rows of a serial build stay in memory while they fit in
 * what maintenance_work_mem leaves after the assignment's buffers, each
 * appended to its list's bucket (a chain of chunks) as it is assigned;
 * the writer then sorts one list at a time on (residual, TID) and reads
 * its rows from that list's chunks: the tuplesort's order, without
 * forming, comparing and deforming a tuple per vector, and without its
 * random walk over all the rows (which waited on memory for ~0.8 s of a
 * 9 s serial build of 1M x 128).  Rows that outgrow the memory all move to
 * the tuplesort, which spills to disk.  A list's chunks double from 16
 * rows up to ~256 kB, so a short list wastes little.
 */
#define IVF_STORE_FIRST_ROWS	16
#define IVF_STORE_CHUNK_BYTES	((Size) 256 * 1024)

typedef struct IvfRowChunk
{
	struct IvfRowChunk *next;
	uint32		n;
	uint32		cap;
	ItemPointerData *tids;		/* cap each, after the header */
	float	   *dists;
	float	   *vecs;
} IvfRowChunk;

/* one row of the list being written, for sorting */
typedef struct IvfStoreRow
{
	float		dist;
	ItemPointerData tid;
	const float *vec;
} IvfStoreRow;

typedef struct IvfRowStore
{
	MemoryContext cxt;			/* the build's (rows arrive in a per-tuple one) */
	Size		budget;			/* bytes the chunks may take */
	Size		used;
	uint32		dims;
	uint32		nlists;
	Size		max_rows;		/* rows in the largest chunk */
	uint64		n;
	IvfRowChunk **head;			/* per list */
	IvfRowChunk **tail;
	uint64	   *count;
	/* readout */
	uint32		list;			/* the list being read */
	IvfStoreRow *rows;			/* its rows, sorted */
	uint64		nrows;
	uint64		next;
} IvfRowStore;

static IvfRowStore *
store_create(uint32 dims, uint32 nlists, Size budget)
{
	IvfRowStore *st = palloc0(sizeof(IvfRowStore));
	Size		fixed = (Size) nlists * (2 * sizeof(IvfRowChunk *) + sizeof(uint64));

	st->cxt = CurrentMemoryContext;
	st->dims = dims;
	st->nlists = nlists;
	st->max_rows = Max(IVF_STORE_FIRST_ROWS,
					   IVF_STORE_CHUNK_BYTES / (sizeof(float) * dims));
	st->budget = budget > fixed ? budget - fixed : 0;
	st->head = palloc_extended(sizeof(IvfRowChunk *) * nlists,
							   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	st->tail = palloc_extended(sizeof(IvfRowChunk *) * nlists,
							   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	st->count = palloc_extended(sizeof(uint64) * nlists,
								MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	st->list = 0;
	return st;
}

static Size
chunk_bytes(uint32 dims, uint32 cap)
{
	return MAXALIGN(sizeof(IvfRowChunk)) +
		MAXALIGN(sizeof(ItemPointerData) * cap) +
		MAXALIGN(sizeof(float) * cap) + sizeof(float) * dims * cap;
}

static void
store_free(IvfRowStore *st)
{
	uint32		l;

	for (l = 0; l < st->nlists; l++)
	{
		IvfRowChunk *c = st->head[l];

		while (c != NULL)
		{
			IvfRowChunk *next = c->next;

			pfree(c);
			c = next;
		}
	}
	pfree(st->head);
	pfree(st->tail);
	pfree(st->count);
	if (st->rows)
		pfree(st->rows);
	pfree(st);
}

/*
 * Append a row to its list's bucket; false (nothing stored) when a new
 * chunk would go past the budget.
 */
static bool
store_append(IvfRowStore *st, int32 list, ItemPointer tid, float dist,
			 const float *vec)
{
	IvfRowChunk *c = st->tail[list];

	if (c == NULL || c->n == c->cap)
	{
		uint32		cap = (c == NULL) ? IVF_STORE_FIRST_ROWS :
			(uint32) Min((Size) c->cap * 2, st->max_rows);
		Size		bytes = chunk_bytes(st->dims, cap);
		IvfRowChunk *nc;
		char	   *p;

		if (st->used + bytes > st->budget)
			return false;
		p = MemoryContextAllocHuge(st->cxt, bytes);
		nc = (IvfRowChunk *) p;
		p += MAXALIGN(sizeof(IvfRowChunk));
		nc->tids = (ItemPointerData *) p;
		p += MAXALIGN(sizeof(ItemPointerData) * cap);
		nc->dists = (float *) p;
		p += MAXALIGN(sizeof(float) * cap);
		nc->vecs = (float *) p;
		nc->next = NULL;
		nc->n = 0;
		nc->cap = cap;
		if (c == NULL)
			st->head[list] = nc;
		else
			c->next = nc;
		st->tail[list] = c = nc;
		st->used += bytes;
	}
	c->tids[c->n] = *tid;
	c->dists[c->n] = dist;
	memcpy(c->vecs + (Size) c->n * st->dims, vec, sizeof(float) * st->dims);
	c->n++;
	st->count[list]++;
	st->n++;
	return true;
}

/* one row into the tuplesort: (list, residual, tid, vector bytes) */
static void
sort_put_row(IvfBuildState *bs, int32 list, float dist, ItemPointer tid,
			 const float *vec, bytea *vbytes)
{
	ExecClearTuple(bs->slot);
	bs->slot->tts_values[0] = Int32GetDatum(list);
	bs->slot->tts_isnull[0] = false;
	/* the distance to the centroid orders a list when asked to */
	bs->slot->tts_values[1] = Float4GetDatum(bs->ordered ? dist : 0.0f);
	bs->slot->tts_isnull[1] = false;
	bs->slot->tts_values[2] = PointerGetDatum(tid);
	bs->slot->tts_isnull[2] = false;
	memcpy(VARDATA(vbytes), vec, sizeof(float) * bs->dims);
	bs->slot->tts_values[3] = PointerGetDatum(vbytes);
	bs->slot->tts_isnull[3] = false;
	ExecStoreVirtualTuple(bs->slot);
	tuplesort_puttupleslot(bs->sort, bs->slot);
}

static bytea *
vector_bytes(uint32 dims)
{
	bytea	   *vbytes = palloc(VARHDRSZ + sizeof(float) * dims);

	SET_VARSIZE(vbytes, VARHDRSZ + sizeof(float) * dims);
	return vbytes;
}

/*
 * The rows outgrew memory: hand them all to the tuplesort (which orders
 * them), freeing each chunk once it is in, so memory stays level.
 */
static void
store_spill(IvfBuildState *bs)
{
	IvfRowStore *st = bs->store;
	bytea	   *vbytes = vector_bytes(bs->dims);
	uint32		l;

	ereport(DEBUG1,
			(errmsg_internal("%s index \"%s\": %llu assigned rows outgrew maintenance_work_mem, sorting externally",
							 ivf_am_name(bs->index), RelationGetRelationName(bs->index),
							 (unsigned long long) st->n)));
	for (l = 0; l < st->nlists; l++)
	{
		IvfRowChunk *c = st->head[l];

		while (c != NULL)
		{
			IvfRowChunk *next = c->next;
			uint32		i;

			for (i = 0; i < c->n; i++)
				sort_put_row(bs, (int32) l, c->dists[i], &c->tids[i],
							 c->vecs + (Size) i * st->dims, vbytes);
			pfree(c);
			c = next;
			CHECK_FOR_INTERRUPTS();
		}
		st->head[l] = st->tail[l] = NULL;
	}
	pfree(vbytes);
	store_free(st);
	bs->store = NULL;
}

/* (residual, TID) within a list, as the tuplesort's float4 and tid orders */
static int
store_row_cmp(const void *a, const void *b)
{
	const IvfStoreRow *ra = (const IvfStoreRow *) a;
	const IvfStoreRow *rb = (const IvfStoreRow *) b;

	/* btfloat4cmp: NaN after everything, equal to itself */
	if (isnan(ra->dist) || isnan(rb->dist))
	{
		if (!isnan(rb->dist))
			return 1;
		if (!isnan(ra->dist))
			return -1;
	}
	else if (ra->dist != rb->dist)
		return ra->dist < rb->dist ? -1 : 1;
	return ItemPointerCompare((ItemPointer) &ra->tid, (ItemPointer) &rb->tid);
}

/* Gather and sort the rows of list l for the readout. */
static void
store_load_list(IvfRowStore *st, uint32 l)
{
	IvfRowChunk *c;
	uint64		n = 0;

	for (c = st->head[l]; c != NULL; c = c->next)
	{
		uint32		i;

		for (i = 0; i < c->n; i++)
		{
			st->rows[n].dist = c->dists[i];
			st->rows[n].tid = c->tids[i];
			st->rows[n].vec = c->vecs + (Size) i * st->dims;
			n++;
		}
	}
	Assert(n == st->count[l]);
	if (n > 1)
		qsort(st->rows, n, sizeof(IvfStoreRow), store_row_cmp);
	st->nrows = n;
	st->next = 0;
}

/*
 * After the last row: set up the readout, list by list.  The sort array of
 * the longest list counts against the budget too; false if it does not
 * fit (nothing done).
 */
static bool
store_sort(IvfBuildState *bs)
{
	IvfRowStore *st = bs->store;
	uint64		most = 1;
	uint32		l;

	for (l = 0; l < st->nlists; l++)
		most = Max(most, st->count[l]);
	if (st->used + most * sizeof(IvfStoreRow) > st->budget)
		return false;
	st->rows = MemoryContextAllocHuge(st->cxt, most * sizeof(IvfStoreRow));
	st->list = 0;
	store_load_list(st, 0);
	return true;
}

/*
 * Keep n assigned rows for the writer: in the row store while it has room,
 * else in the tuplesort.
 */
static void
keep_rows(IvfBuildState *bs, size_t n, const int32 *lists, const float *dists,
		  ItemPointer tids, const float *vecs)
{
	size_t		i = 0;
	bytea	   *vbytes;

	if (bs->store)
	{
		for (; i < n; i++)
			if (!store_append(bs->store, lists[i], &tids[i],
							  bs->ordered ? dists[i] : 0.0f,
							  vecs + i * bs->dims))
				break;
		if (i < n)
			store_spill(bs);
	}
	if (i < n)
	{
		vbytes = vector_bytes(bs->dims);
		for (; i < n; i++)
			sort_put_row(bs, lists[i], dists[i], &tids[i],
						 vecs + i * bs->dims, vbytes);
		pfree(vbytes);
	}
}

static void send_rows(IvfBuildState *bs);
static void drain_queues(IvfBuildState *bs, bool wait);

/* ivf_assign's periodic check: in a parallel leader, read the queues too */
static void
assign_check(void *arg)
{
	IvfBuildState *bs = (IvfBuildState *) arg;

	CHECK_FOR_INTERRUPTS();
	if (bs->leader != NULL)
		drain_queues(bs, false);
}

static void
flush_batch(IvfBuildState *bs)
{
	if (bs->nbatch == 0)
		return;

	if (bs->gpu == NULL ||
		ivf_gpu_assign_points(bs->gpu, bs->batch, bs->nbatch, bs->batch_lists,
							  bs->batch_dist) != 0)
		ivf_assign(bs->batch, bs->nbatch, bs->centroids, bs->centroid_norms,
				   bs->nlists, bs->dims,
				   bs->metric == IVF_METRIC_L2 ? IVF_KM_L2 : IVF_KM_IP,
				   bs->assign_ws, bs->batch_lists, bs->batch_dist,
				   assign_check, bs);

	if (bs->mq != NULL)
		send_rows(bs);
	else
		keep_rows(bs, bs->nbatch, bs->batch_lists, bs->batch_dist,
				  bs->batch_tids, bs->batch);
	bs->nbatch = 0;
	if (bs->leader != NULL)
		drain_queues(bs, false);
}

static void
assign_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
				bool tupleIsAlive, void *arg)
{
	IvfBuildState *bs = (IvfBuildState *) arg;
	MemoryContext old;
	float	   *vec;
	bool		skip;

	if (isnull[0])
		return;

	old = MemoryContextSwitchTo(bs->tmpCtx);
	vec = ivf_prepare_datum(index, bs->metric, bs->elem, bs->dims, values[0],
							&skip);
	if (!skip)
	{
		/* from here on the vector is what the index stores */
		ivf_round_to_elem(bs->elem, vec, bs->dims);
		memcpy(bs->batch + bs->nbatch * bs->dims, vec, sizeof(float) * bs->dims);
		bs->batch_tids[bs->nbatch] = *tid;
		bs->nbatch++;
		bs->indtuples += 1;
		if (bs->nbatch == bs->batch_max)
			flush_batch(bs);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpCtx);
}

/* ---------------------------------------------------------------- phase 4 */

/* a fresh page at the end of the fork, exclusively locked */
static Buffer
build_new_buffer(Relation index, ForkNumber fork)
{
	Buffer		buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	return buf;
}

static void
finish_page(Buffer buf)
{
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);
}

/*
 * Append a chain of centroid pages holding n floats of src, at most
 * per_page to a page, linked to the previous page *prev (if valid) and
 * through each other; returns the first page's block.  *prev becomes the
 * last page's.  Pages are written through shared buffers (the build logs
 * them at the end with log_newpage_range).
 */
static BlockNumber
append_float_pages(Relation index, ForkNumber fork, const float *src, Size n,
				   Size per_page, BlockNumber *prev)
{
	BlockNumber first = InvalidBlockNumber;
	Size		done = 0;

	do
	{
		Buffer		buf = build_new_buffer(index, fork);
		Page		page = BufferGetPage(buf);
		Size		k = Min(n - done, per_page);
		BlockNumber blkno = BufferGetBlockNumber(buf);

		ivf_init_page(page, IVF_PAGE_CENTROID, 0);
		memcpy(PageGetContents(page), src + done, k * sizeof(float));
		IvfPageGetOpaque(page)->nvec = k;
		((PageHeader) page)->pd_lower = IVF_PAGE_DATA_OFF + k * sizeof(float);
		finish_page(buf);
		if (BlockNumberIsValid(*prev))
		{
			/* the pages are consecutive: the previous one is still ours */
			Buffer		pbuf = ReadBufferExtended(index, fork, *prev, RBM_NORMAL, NULL);

			LockBuffer(pbuf, BUFFER_LOCK_EXCLUSIVE);
			IvfPageGetOpaque(BufferGetPage(pbuf))->next = blkno;
			finish_page(pbuf);
		}
		if (!BlockNumberIsValid(first))
			first = blkno;
		*prev = blkno;
		done += k;
	} while (done < n);
	return first;
}

/*
 * Format 4: the centroid pages (each slot's row, whole rows to a page, or
 * for a row wider than a page a run of pages of its own, all in one
 * chain), codebook 0's pages with codes, then the directory pages; the
 * slots' entries in dir get their centroid's place.
 */
static void
write_fixed_pages_v4(Relation index, ForkNumber fork, const IvfGeometry *g,
					 IvfMetaPageData *meta, const float *centroids,
					 IvfListEntry *dir)
{
	Size		d = meta->dims;
	BlockNumber prev = InvalidBlockNumber;
	uint32		slot;
	uint32		i;

	meta->nslots = meta->nlists;
	meta->centroid_start = IVF_METAPAGE_BLKNO + 1;
	if (g->centroid_rows_per_page > 0)
	{
		for (slot = 0; slot < meta->nslots; slot += g->centroid_rows_per_page)
		{
			uint32		rows = Min(meta->nslots - slot, g->centroid_rows_per_page);
			BlockNumber blkno = append_float_pages(index, fork,
												   centroids + (Size) slot * d,
												   (Size) rows * d,
												   (Size) rows * d, &prev);

			for (i = 0; i < rows; i++)
			{
				dir[slot + i].cblock = blkno;
				dir[slot + i].crow = i;
			}
		}
	}
	else
	{
		for (slot = 0; slot < meta->nslots; slot++)
		{
			dir[slot].cblock = append_float_pages(index, fork,
												  centroids + (Size) slot * d, d,
												  g->centroid_floats_per_page,
												  &prev);
			dir[slot].crow = 0;
		}
	}
	meta->centroid_tail = prev;
	meta->centroid_npages = prev - meta->centroid_start + 1;

	meta->codebook[0] = meta->codebook[1] = InvalidBlockNumber;
	if (meta->flags & IVF_META_CODES)
	{
		/* a chain of its own: the lo row, then the step row */
		prev = InvalidBlockNumber;
		meta->codebook[0] = append_float_pages(index, fork,
											   centroids + (Size) meta->nslots * d,
											   2 * d, g->centroid_floats_per_page,
											   &prev);
	}

	meta->directory_npages = (meta->nslots + g->directory_entries_per_page - 1) /
		g->directory_entries_per_page;
	if (meta->directory_npages > IVF_MAX_DIR_PAGES)
		elog(ERROR, "ivfflat: %u list slots need more than %d directory pages",
			 meta->nslots, IVF_MAX_DIR_PAGES);
	for (i = 0; i < meta->directory_npages; i++)
	{
		Buffer		buf = build_new_buffer(index, fork);
		Page		page = BufferGetPage(buf);
		uint32		first = i * g->directory_entries_per_page;
		uint32		n = Min(meta->nslots - first, g->directory_entries_per_page);

		meta->dir_blocks[i] = BufferGetBlockNumber(buf);
		ivf_init_page(page, IVF_PAGE_DIRECTORY, 0);
		memcpy(PageGetContents(page), dir + first, n * sizeof(IvfListEntry));
		IvfPageGetOpaque(page)->nvec = n;
		if (i + 1 < meta->directory_npages)
			IvfPageGetOpaque(page)->next = BufferGetBlockNumber(buf) + 1;
		((PageHeader) page)->pd_lower = IVF_PAGE_DATA_OFF + n * sizeof(IvfListEntry);
		finish_page(buf);
	}
	meta->directory_start = meta->dir_blocks[0];
}

/*
 * Format 3 (ivf.build_format = 3, for the tests that read old indexes):
 * the centroid stream (with codes, the lo and step rows at its end), then
 * the directory of IvfListEntryV3.  The meta page holds format 3's fields
 * only.
 */
static void
write_fixed_pages_v3(Relation index, ForkNumber fork, const IvfGeometry *g,
					 IvfMetaPageData *meta, const float *centroids)
{
	Size		total = ((Size) meta->nlists + ((meta->flags & IVF_META_CODES) ? 2 : 0)) *
		meta->dims;
	BlockNumber prev = InvalidBlockNumber;
	uint32		list = 0;
	uint32		i;

	meta->centroid_start = append_float_pages(index, fork, centroids, total,
											  g->centroid_floats_per_page, &prev);
	meta->centroid_npages = prev - meta->centroid_start + 1;
	meta->directory_start = prev + 1;
	meta->directory_npages = (meta->nlists + g->directory_entries_per_page - 1) /
		g->directory_entries_per_page;
	for (i = 0; i < meta->directory_npages; i++)
	{
		Buffer		buf = build_new_buffer(index, fork);
		Page		page = BufferGetPage(buf);
		uint32		n = Min(meta->nlists - list, g->directory_entries_per_page);
		uint32		j;

		Assert(BufferGetBlockNumber(buf) == meta->directory_start + i);
		ivf_init_page(page, IVF_PAGE_DIRECTORY, 0);
		for (j = 0; j < n; j++)
		{
			IvfListEntryV3 *e = ivf_dir_entry_ptr(page, g, j);

			e->head = e->tail = e->insert = InvalidBlockNumber;
			e->ngroups = 0;
			e->nbuilt = 0;
			e->radius = 0;
		}
		IvfPageGetOpaque(page)->nvec = n;
		if (i + 1 < meta->directory_npages)
			IvfPageGetOpaque(page)->next = BufferGetBlockNumber(buf) + 1;
		((PageHeader) page)->pd_lower = IVF_PAGE_DATA_OFF + n * sizeof(IvfListEntryV3);
		list += n;
		finish_page(buf);
	}
	ivf_meta_from_v3(meta);
}

/*
 * Write the meta page, centroid (and codebook) pages and directory pages
 * (blocks 0 ..) of an index with these centroids (the stream: nlists rows,
 * then with codes the lo and step rows), in the format meta->version
 * names.  dir holds nlists entries, every list empty; format 4 records
 * where each centroid went there.  Returns the meta page contents through
 * *meta.
 */
static void
write_fixed_pages(Relation index, ForkNumber fork, const IvfGeometry *g,
				  IvfMetaPageData *meta, const float *centroids,
				  IvfListEntry *dir)
{
	Buffer		metabuf;
	IvfGeometry vg = *g;

	metabuf = build_new_buffer(index, fork);
	Assert(BufferGetBlockNumber(metabuf) == IVF_METAPAGE_BLKNO);

	if (meta->version >= 4)
		write_fixed_pages_v4(index, fork, &vg, meta, centroids, dir);
	else
	{
		ivf_geometry_v3_directory(&vg);
		write_fixed_pages_v3(index, fork, &vg, meta, centroids);
	}

	/* the meta page last: its contents are final now */
	{
		Page		page = BufferGetPage(metabuf);
		Size		size = meta->version >= 4 ? sizeof(IvfMetaPageData) : IVF_META_V3_SIZE;

		ivf_init_page(page, IVF_PAGE_META, 0);
		memcpy(PageGetContents(page), meta, size);
		((PageHeader) page)->pd_lower = IVF_PAGE_DATA_OFF + size;
		finish_page(metabuf);
	}
}

/* nlists directory entries of empty lists, live from the build on */
static IvfListEntry *
empty_directory(const IvfMetaPageData *meta)
{
	IvfListEntry *dir = palloc_extended(sizeof(IvfListEntry) * meta->nlists,
										MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	uint32		i;

	for (i = 0; i < meta->nlists; i++)
	{
		dir[i].head = dir[i].tail = dir[i].insert = InvalidBlockNumber;
		dir[i].born = meta->generation;
		dir[i].dead = IVF_GEN_NEVER;
		dir[i].cblock = InvalidBlockNumber;
	}
	return dir;
}

/*
 * The pages of one group under construction, filled in local memory.
 * Block numbers are handed out in order from *next_block when a group is
 * started, and groups are finished in that order, so each group_end()
 * appends its pages at the end of the file.  They bypass shared buffers:
 * no buffer lookups, locks or dirty-page write-back for the bulk of the
 * index, and no later pass reading them back to WAL-log them.
 */
typedef struct GroupWriter
{
	BlockNumber blknos[IVF_MAX_SEGMENTS];	/* [0] head, [s] segment s */
	char	   *pages;			/* nsegments local page images */
} GroupWriter;

#define GROUP_PAGE(w, s) ((Page) ((w)->pages + (Size) (s) * BLCKSZ))

static void
group_begin(const IvfGeometry *g, uint32 list, BlockNumber *next_block,
			GroupWriter *w)
{
	uint32		s;

	for (s = 0; s < g->nsegments; s++)
	{
		Page		page = GROUP_PAGE(w, s);

		w->blknos[s] = (*next_block)++;
		ivf_init_page(page, s == 0 ? IVF_PAGE_LIST : IVF_PAGE_SEGMENT, list);
		((PageHeader) page)->pd_lower = (s == 0) ? ivf_head_lower(g, 0) : g->seg_floats_off;
		if (s > 0)
			ivf_head_segblocks(GROUP_PAGE(w, 0))[s - 1] = w->blknos[s];
	}
}

static void
group_end(Relation index, const IvfGeometry *g, GroupWriter *w,
		  BlockNumber next)
{
	SMgrRelation smgr = IvfRelationGetSmgr(index);
	Page		pages[IVF_MAX_SEGMENTS];
	uint32		s;

	IvfPageGetOpaque(GROUP_PAGE(w, 0))->next = next;
	for (s = 0; s < g->nsegments; s++)
		pages[s] = GROUP_PAGE(w, s);
	/* log first: log_newpages stamps the pages' LSNs */
	if (RelationNeedsWAL(index))
		log_newpages(IvfRelFileKey(index), MAIN_FORKNUM, g->nsegments,
					 w->blknos, pages, true);
	for (s = 0; s < g->nsegments; s++)
	{
		Assert(w->blknos[s] == smgrnblocks(smgr, MAIN_FORKNUM));
		PageSetChecksumInplace(pages[s], w->blknos[s]);
		smgrextend(smgr, MAIN_FORKNUM, w->blknos[s], (char *) pages[s], true);
	}
}

static void
group_add(const IvfBuildState *bs, GroupWriter *w, uint32 list,
		  const float *vec, ItemPointer tid, float *scratch)
{
	const IvfGeometry *g = &bs->geo;
	Page		page = GROUP_PAGE(w, 0);
	IvfPageOpaque opaque = IvfPageGetOpaque(page);
	uint32		slot = opaque->nvec;
	uint32		s;

	if (g->codes)
	{
		Page		fp = GROUP_PAGE(w, 1 + ivf_slot_fpage(g, slot));

		ivf_head_errs(page, g)[slot] =
			ivf_encode_vector(vec, bs->centroids + (Size) list * g->dims,
							  bs->sq8_lo, bs->sq8_step, g->dims, scratch,
							  ivf_head_codes(page, g) + (Size) slot * g->dims,
							  &ivf_head_cnorms(page, g)[slot]);
		ivf_head_tids(page, g)[slot] = *tid;
		opaque->nvec = slot + 1;
		((PageHeader) page)->pd_lower = ivf_head_lower(g, slot + 1);
		ivf_store_elems(g->elem, ivf_slot_elems(fp, g, slot), vec, g->dims);
		((PageHeader) fp)->pd_lower = ivf_slot_elems(fp, g, slot) +
			g->dims * g->elem_size - (char *) fp;
		return;
	}

	ivf_store_elems(g->elem, ivf_page_row(page, g, true, slot), vec,
					ivf_seg_dims(g, 0));
	ivf_head_tids(page, g)[slot] = *tid;
	opaque->nvec = slot + 1;
	((PageHeader) page)->pd_lower += g->seg_dims * g->elem_size;
	for (s = 1; s < g->nsegments; s++)
	{
		Page		sp = GROUP_PAGE(w, s);

		ivf_store_elems(g->elem, ivf_page_row(sp, g, false, slot),
						vec + (Size) s * g->seg_dims, ivf_seg_dims(g, s));
		((PageHeader) sp)->pd_lower += g->seg_dims * g->elem_size;
	}
}

/* The next row in (list, residual, tid) order, from the store or the sort. */
static bool
next_sorted_row(IvfBuildState *bs, TupleTableSlot *slot, int32 *list,
				ItemPointer *tid, const float **vec)
{
	IvfRowStore *st = bs->store;
	bool		isnull;

	if (st != NULL)
	{
		while (st->next >= st->nrows)
		{
			if (st->list + 1 >= st->nlists)
				return false;
			store_load_list(st, ++st->list);
		}
		*list = (int32) st->list;
		*tid = &st->rows[st->next].tid;
		*vec = st->rows[st->next].vec;
		st->next++;
		return true;
	}
	if (!tuplesort_gettupleslot(bs->sort, true, false, slot, NULL))
		return false;
	*list = DatumGetInt32(slot_getattr(slot, 1, &isnull));
	*tid = (ItemPointer) DatumGetPointer(slot_getattr(slot, 3, &isnull));
	*vec = (const float *) VARDATA_ANY(DatumGetByteaPP(slot_getattr(slot, 4, &isnull)));
	return true;
}

/*
 * Drain the sorted rows into list groups.  Groups are allocated just before
 * they are filled, so each list occupies consecutive blocks.
 */
static void
write_lists(IvfBuildState *bs, IvfListEntry *dir)
{
	const IvfGeometry *g = &bs->geo;
	TupleTableSlot *slot = MakeSingleTupleTableSlot(bs->sortdesc,
													&TTSOpsMinimalTuple);
	GroupWriter w;
	GroupWriter nw;
	int64		cur = -1;
	double		written = 0;
	float	   *scratch = palloc(sizeof(float) * g->dims);
	BlockNumber next_block = smgrnblocks(IvfRelationGetSmgr(bs->index),
										 MAIN_FORKNUM);

	/* two sets of page images: the group being finished and the next */
	w.pages = palloc((Size) g->nsegments * BLCKSZ);
	nw.pages = palloc((Size) g->nsegments * BLCKSZ);

	for (;;)
	{
		int32		list;
		ItemPointer tid;
		const float *vec;

		if (!next_sorted_row(bs, slot, &list, &tid, &vec))
			break;
		CHECK_FOR_INTERRUPTS();

		if (list != cur || IvfPageGetOpaque(GROUP_PAGE(&w, 0))->nvec == g->vecs_per_group)
		{
			char	   *spare;

			/* allocate the next group first: its block links the current */
			group_begin(g, list, &next_block, &nw);
			if (cur >= 0)
				group_end(bs->index, g, &w, list == cur ? nw.blknos[0] : InvalidBlockNumber);

			if (list != cur)
				dir[list].head = nw.blknos[0];
			dir[list].tail = nw.blknos[0];
			dir[list].insert = nw.blknos[0];
			dir[list].ngroups++;

			/* swap: nw becomes the current group, w's images are reused */
			spare = w.pages;
			w = nw;
			nw.pages = spare;
			cur = list;
		}
		group_add(bs, &w, (uint32) list, vec, tid, scratch);
		dir[list].nbuilt++;
		dir[list].nlive++;
		/* strict_order's bound on the list (see IvfListEntry) */
		dir[list].radius = Max(dir[list].radius,
							   ivf_member_radius(vec, bs->centroids + (Size) list * g->dims,
												 g->dims));

		written += 1;
		if ((int64) written % 1024 == 0)
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE,
										 (int64) written);
	}
	if (cur >= 0)
		group_end(bs->index, g, &w, InvalidBlockNumber);
	pfree(w.pages);
	pfree(nw.pages);
	pfree(scratch);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) written);
	ExecDropSingleTupleTableSlot(slot);
}

/* Fill in the directory pages written by write_fixed_pages. */
static void
write_directory(Relation index, const IvfMetaPageData *meta,
				const IvfGeometry *geo, const IvfListEntry *dir)
{
	IvfGeometry vg;
	const IvfGeometry *g = &vg;
	uint32		i;

	ivf_meta_geometry(meta, &vg);
	Assert(vg.vecs_per_group == geo->vecs_per_group);
	for (i = 0; i < meta->directory_npages; i++)
	{
		Buffer		buf = ReadBuffer(index, meta->dir_blocks[i]);
		Page		page;
		uint32		first = i * g->directory_entries_per_page;
		uint32		n = Min(meta->nslots - first, g->directory_entries_per_page);
		uint32		j;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		if (g->directory_entry_size == sizeof(IvfListEntry))
			memcpy(PageGetContents(page), dir + first, n * sizeof(IvfListEntry));
		else
			for (j = 0; j < n; j++)
			{
				IvfListEntryV3 *e = ivf_dir_entry_ptr(page, g, j);
				const IvfListEntry *src = &dir[first + j];

				e->head = src->head;
				e->tail = src->tail;
				e->insert = src->insert;
				e->ngroups = src->ngroups;
				e->nbuilt = src->nbuilt;
				e->radius = src->radius;
			}
		finish_page(buf);
	}
}

/* ------------------------------------------------------------------ ambuild */

static uint32
index_dims(Relation index)
{
	int32		typmod = TupleDescAttr(RelationGetDescr(index), 0)->atttypmod;

	if (typmod < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column does not have dimensions"),
				 errhint("Index a %s(n) column, or an expression such as (embedding::%s(768)).",
						 ivf_elem_name(ivf_index_elem(index)),
						 ivf_elem_name(ivf_index_elem(index)))));
	if (typmod > IVF_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("column cannot have more than %d dimensions for %s index",
						IVF_MAX_DIM, ivf_am_name(index))));
	return (uint32) typmod;
}

static void
init_meta(IvfMetaPageData *meta, Relation index, IvfMetric metric,
		  uint32 dims, const IvfGeometry *g)
{
	IvfOptions *opts = ivf_get_options(index);

	memset(meta, 0, sizeof(*meta));
	meta->magic = IVF_MAGIC;
	/* ivf.build_format: the tests' way to write an older format */
	meta->version = ivf_build_format;
	meta->generation = 1;
	meta->oldest_gen = 1;
	if (opts->adaptive && meta->version >= 4)
		meta->flags |= IVF_META_ADAPTIVE;
	meta->metric = metric;
	meta->dims = dims;
	meta->lists_requested = opts->lists > 0 ? opts->lists : 0;
	meta->seed = (uint64) opts->seed;
	meta->nsegments = g->nsegments;
	meta->seg_dims = g->seg_dims;
	meta->vecs_per_group = g->vecs_per_group;
	meta->elem_type = g->elem;
}

static Size
mwm_bytes(void)
{
	return (Size) maintenance_work_mem * 1024;
}

static void
memory_error(Relation index, Size need)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("memory required to build %s index \"%s\" is %zu MB, maintenance_work_mem is %d MB",
					ivf_am_name(index), RelationGetRelationName(index),
					(size_t) ((need + 1024 * 1024 - 1) / (1024 * 1024)),
					maintenance_work_mem / 1024),
			 errdetail("k-means needs the centroids and at least one training vector per list in memory."),
			 errhint("Increase maintenance_work_mem or use fewer lists.")));
}

/* DEBUG2 line with the seconds a build phase took */
static void
phase_done(Relation index, const char *phase, instr_time *start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, *start);
	ereport(DEBUG2,
			(errmsg_internal("%s index \"%s\": %s took %.3f s",
							 ivf_am_name(index), RelationGetRelationName(index), phase,
							 INSTR_TIME_GET_DOUBLE(now))));
	INSTR_TIME_SET_CURRENT(*start);
}

/*
 * The prefilter's quantizer: per-dimension range of the training sample's
 * residuals to their nearest centroid (the same rule inserts use), stored
 * as two more rows after the k centroids.  Vectors outside the range are
 * clamped when encoded; their larger error is recorded with them, so the
 * bounds stay valid.  The sample is overwritten: it is not needed again.
 * Leaves everything as it was when the dimensions are too many for codes.
 * With no sample (an adaptive index built on an empty table) the quantizer
 * is all zero: every code is 0 and its error the residual's length, valid
 * bounds that rule out little, until the first split trains codebook 1
 * (src/README "Codes").
 */
static void
train_codes(IvfBuildState *bs, uint32 k, const int32 *assign,
			IvfMetaPageData *meta)
{
	IvfGeometry g;
	Size		i;
	uint32		j;

	ivf_geometry(bs->dims, true, bs->elem, &g);
	if (!g.codes)
		return;

	/*
	 * k-means' last assignment (before its last update) is close enough
	 * for a range: any lo and step are valid, only less tight.
	 */
	for (i = 0; i < bs->nsamples; i++)
	{
		float	   *x = bs->samples + i * bs->dims;
		const float *c;

		if (assign[i] < 0 || (uint32) assign[i] >= k)
			continue;
		c = bs->centroids + (Size) assign[i] * bs->dims;
		for (j = 0; j < bs->dims; j++)
			x[j] -= c[j];
	}
	bs->centroids = repalloc_huge(bs->centroids,
								  (Size) (k + 2) * bs->dims * sizeof(float));
	bs->sq8_lo = bs->centroids + (Size) k * bs->dims;
	bs->sq8_step = bs->sq8_lo + bs->dims;
	ivf_sq8_train(bs->samples, bs->nsamples, bs->dims, bs->sq8_lo,
				  bs->sq8_step);

	bs->geo = g;
	meta->flags |= IVF_META_CODES;
	meta->nsegments = g.nsegments;
	meta->seg_dims = g.seg_dims;
	meta->vecs_per_group = g.vecs_per_group;
}

/* ---------------------------------------------------- phase 3 helpers */

/* vectors assigned per GEMM batch: up to 4096, within 16 MB */
static Size
assign_batch_rows(uint32 dims)
{
	return Max(1, Min(4096, (16 * 1024 * 1024) / (sizeof(float) * dims)));
}

/* memory of one participant's assignment pass besides its sort */
static Size
assign_fixed_bytes(uint32 nlists, uint32 dims)
{
	Size		dbytes = sizeof(float) * dims;

	return (Size) nlists * (dbytes + sizeof(float)) +
		ivf_assign_workspace_bytes(nlists, dims) +
		assign_batch_rows(dims) * dbytes;
}

/* work_mem (kB) for a sort that shares 'bytes' with the assignment pass */
static int
sort_mem_kb(Size bytes, Size fixed)
{
	return (int) Max(1024, ((bytes > fixed) ? bytes - fixed : 0) / 1024);
}

/* the (list, residual, tid, vector) tuplesort and its input slot */
static void
sort_begin(IvfBuildState *bs, int sortmem)
{
	AttrNumber	attnums[3] = {1, 2, 3};
	Oid			sortops[3] = {Int4LessOperator, IVF_FLOAT4_LT_OPERATOR, TIDLessOperator};
	Oid			colls[3] = {InvalidOid, InvalidOid, InvalidOid};
	bool		nullsfirst[3] = {false, false, false};

	bs->sortdesc = CreateTemplateTupleDesc(4);
	TupleDescInitEntry(bs->sortdesc, 1, "list", INT4OID, -1, 0);
	TupleDescInitEntry(bs->sortdesc, 2, "residual", FLOAT4OID, -1, 0);
	TupleDescInitEntry(bs->sortdesc, 3, "tid", TIDOID, -1, 0);
	TupleDescInitEntry(bs->sortdesc, 4, "vector", BYTEAOID, -1, 0);
	bs->sort = tuplesort_begin_heap(bs->sortdesc, 3, attnums, sortops, colls,
									nullsfirst, sortmem, NULL,
									IVF_TUPLESORT_NONE);
	bs->slot = MakeSingleTupleTableSlot(bs->sortdesc, &TTSOpsVirtual);
}

/*
 * Set up one participant's assignment: GEMM workspace and batch buffers.
 * The centroids and their norms are in bs already.
 */
static void
assign_begin(IvfBuildState *bs)
{
	Size		dbytes = sizeof(float) * bs->dims;

	bs->assign_ws = MemoryContextAllocHuge(CurrentMemoryContext,
										   ivf_assign_workspace_bytes(bs->nlists, bs->dims));
	bs->batch_max = assign_batch_rows(bs->dims);
	bs->batch = MemoryContextAllocHuge(CurrentMemoryContext, bs->batch_max * dbytes);
	bs->batch_tids = palloc(sizeof(ItemPointerData) * bs->batch_max);
	bs->batch_lists = palloc(sizeof(int32) * bs->batch_max);
	bs->batch_dist = palloc(sizeof(float) * bs->batch_max);
}

/* number of workers for the assignment pass (0: serial), as the planner says */
static int
parallel_workers(Relation heap, Relation index, IndexInfo *indexInfo,
				 uint32 nlists, uint32 dims)
{
	if ((Size) nlists * dims * sizeof(float) > IVF_PARALLEL_MAX_CENTROID_BYTES)
		return 0;
	return IvfIndexBuildWorkers(heap, index, indexInfo);
}

/*
 * A message of the workers' queues: a batch of n assigned rows as arrays,
 * (n, 0), lists[n], residuals[n], tids[n], padding to 4 bytes, vectors[n].
 * shm_mq hands messages over MAXALIGNed, so each array is aligned.
 */
static Size
rows_message_layout(size_t n, uint32 dims, Size *off_tids, Size *off_vecs)
{
	Size		off = 2 * sizeof(uint32) + n * (sizeof(int32) + sizeof(float));

	*off_tids = off;
	off += n * sizeof(ItemPointerData);
	off = TYPEALIGN(sizeof(float), off);
	*off_vecs = off;
	return off + n * dims * sizeof(float);
}

/* A worker sends its assigned batch to the leader (blocking while full). */
static void
send_rows(IvfBuildState *bs)
{
	uint32		header[2] = {(uint32) bs->nbatch, 0};
	static const char zeros[sizeof(float)];
	Size		off_tids;
	Size		off_vecs;
	shm_mq_iovec iov[6];
	shm_mq_result res;

	(void) rows_message_layout(bs->nbatch, bs->dims, &off_tids, &off_vecs);
	iov[0].data = (const char *) header;
	iov[0].len = sizeof(header);
	iov[1].data = (const char *) bs->batch_lists;
	iov[1].len = sizeof(int32) * bs->nbatch;
	iov[2].data = (const char *) bs->batch_dist;
	iov[2].len = sizeof(float) * bs->nbatch;
	iov[3].data = (const char *) bs->batch_tids;
	iov[3].len = sizeof(ItemPointerData) * bs->nbatch;
	iov[4].data = zeros;
	iov[4].len = off_vecs - off_tids - iov[3].len;
	iov[5].data = (const char *) bs->batch;
	iov[5].len = sizeof(float) * bs->dims * bs->nbatch;
	res = IvfShmMqSendv(bs->mq, iov, 6);
	if (res != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not send assigned rows to the parallel leader of %s index \"%s\"",
						ivf_am_name(bs->index), RelationGetRelationName(bs->index))));
}

/* The leader keeps the rows of a worker's message. */
static void
receive_rows(IvfBuildState *bs, const char *data, Size nbytes)
{
	uint32		n;
	Size		off_tids;
	Size		off_vecs;

	if (nbytes < 2 * sizeof(uint32))
		elog(ERROR, "ivfflat parallel build: short message of %zu bytes", nbytes);
	memcpy(&n, data, sizeof(uint32));
	if (rows_message_layout(n, bs->dims, &off_tids, &off_vecs) != nbytes)
		elog(ERROR, "ivfflat parallel build: message of %zu bytes for %u rows",
			 nbytes, n);
	Assert((uintptr_t) data % MAXIMUM_ALIGNOF == 0);
	keep_rows(bs, n, (const int32 *) (data + 2 * sizeof(uint32)),
			  (const float *) (data + 2 * sizeof(uint32) + n * sizeof(int32)),
			  (ItemPointer) (data + off_tids), (const float *) (data + off_vecs));
	bs->leader->received += n;
	bs->indtuples += n;
}

/*
 * The leader reads whatever its workers have sent; with wait, until every
 * worker has detached (done, or failed: parallel_end reports the error).
 */
static void
drain_queues(IvfBuildState *bs, bool wait)
{
	IvfLeader  *leader = bs->leader;

	for (;;)
	{
		bool		progress = false;
		int			i;

		for (i = 0; i < leader->nqueues; i++)
		{
			while (leader->queues[i] != NULL)
			{
				Size		nbytes;
				void	   *data;
				shm_mq_result res;

				res = shm_mq_receive(leader->queues[i], &nbytes, &data, true);
				if (res == SHM_MQ_WOULD_BLOCK)
					break;
				progress = true;
				if (res == SHM_MQ_DETACHED)
				{
					shm_mq_detach(leader->queues[i]);
					leader->queues[i] = NULL;
					leader->nactive--;
					break;
				}
				receive_rows(bs, data, nbytes);
			}
		}
		if (!wait || leader->nactive == 0)
			return;
		if (!progress)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1,
							 WAIT_EVENT_PARALLEL_CREATE_INDEX_SCAN);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * A participant's share of the parallel pass: scan part of the heap and
 * assign it; a worker sends its rows to the leader, the leader keeps its
 * own and reads the workers' as they come.
 */
static void
parallel_scan(IvfBuildState *bs, IvfShared *shared, bool progress)
{
	TableScanDesc scan;

	scan = table_beginscan_parallel(bs->heap, ParallelTableScanFromIvfShared(shared));
	(void) table_index_build_scan(bs->heap, bs->index, bs->indexInfo, true,
								  progress, assign_callback, bs, scan);
	flush_batch(bs);
}

static void
parallel_end(IvfLeader *leader)
{
	int			i;

	for (i = 0; i < leader->nqueues; i++)
		if (leader->queues[i] != NULL)
			shm_mq_detach(leader->queues[i]);
	WaitForParallelWorkersToFinish(leader->pcxt);
	/* the workers are gone: their count is final (the DSM goes next) */
	leader->sent = leader->shared->worker_rows;
	for (i = 0; i < leader->pcxt->nworkers_launched; i++)
		InstrAccumParallelQuery(&leader->bufferusage[i], &leader->walusage[i]);
	if (IsMVCCSnapshot(leader->snapshot))
		UnregisterSnapshot(leader->snapshot);
	DestroyParallelContext(leader->pcxt);
	ExitParallelMode();
}

/* Launch workers; NULL when none could be had (the caller goes serial). */
static IvfLeader *
parallel_begin(IvfBuildState *bs, int request)
{
	ParallelContext *pcxt;
	Snapshot	snapshot;
	Size		estshared;
	Size		queue_bytes = IVF_PARALLEL_QUEUE_BYTES;
	Size		centroid_bytes = (Size) bs->nlists * bs->dims * sizeof(float);
	IvfShared  *shared;
	char	   *queuespace;
	float	   *centroids;
	IvfLeader  *leader;
	int			querylen = 0;
	int			i;

	EnterParallelMode();
	pcxt = CreateParallelContext("ivf", "ivf_parallel_build_main", request);

	/* as in the serial scan: SnapshotAny, or an MVCC one for CONCURRENTLY */
	if (!bs->indexInfo->ii_Concurrent)
		snapshot = SnapshotAny;
	else
		snapshot = RegisterSnapshot(GetTransactionSnapshot());

	estshared = add_size(BUFFERALIGN(sizeof(IvfShared)),
						 table_parallelscan_estimate(bs->heap, snapshot));
	shm_toc_estimate_chunk(&pcxt->estimator, estshared);
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(queue_bytes, pcxt->nworkers));
	shm_toc_estimate_chunk(&pcxt->estimator, centroid_bytes);
	shm_toc_estimate_chunk(&pcxt->estimator,
						   mul_size(sizeof(WalUsage), pcxt->nworkers));
	shm_toc_estimate_chunk(&pcxt->estimator,
						   mul_size(sizeof(BufferUsage), pcxt->nworkers));
	shm_toc_estimate_keys(&pcxt->estimator, 5);
	if (debug_query_string)
	{
		querylen = strlen(debug_query_string);
		shm_toc_estimate_chunk(&pcxt->estimator, querylen + 1);
		shm_toc_estimate_keys(&pcxt->estimator, 1);
	}

	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return NULL;
	}

	shared = shm_toc_allocate(pcxt->toc, estshared);
	shared->heaprelid = RelationGetRelid(bs->heap);
	shared->indexrelid = RelationGetRelid(bs->index);
	shared->isconcurrent = bs->indexInfo->ii_Concurrent;
	shared->nlists = bs->nlists;
	shared->dims = bs->dims;
	shared->queue_bytes = queue_bytes;
	SpinLockInit(&shared->mutex);
	shared->worker_rows = 0;
	table_parallelscan_initialize(bs->heap, ParallelTableScanFromIvfShared(shared),
								  snapshot);

	/* one queue per worker, the leader receiving */
	queuespace = shm_toc_allocate(pcxt->toc, mul_size(queue_bytes, pcxt->nworkers));
	for (i = 0; i < pcxt->nworkers; i++)
		shm_mq_set_receiver(shm_mq_create(queuespace + (Size) i * queue_bytes,
										  queue_bytes), MyProc);

	centroids = shm_toc_allocate(pcxt->toc, centroid_bytes);
	memcpy(centroids, bs->centroids, centroid_bytes);

	shm_toc_insert(pcxt->toc, IVF_PARALLEL_KEY_SHARED, shared);
	shm_toc_insert(pcxt->toc, IVF_PARALLEL_KEY_QUEUES, queuespace);
	shm_toc_insert(pcxt->toc, IVF_PARALLEL_KEY_CENTROIDS, centroids);
	if (debug_query_string)
	{
		char	   *sharedquery = shm_toc_allocate(pcxt->toc, querylen + 1);

		memcpy(sharedquery, debug_query_string, querylen + 1);
		shm_toc_insert(pcxt->toc, IVF_PARALLEL_KEY_QUERY_TEXT, sharedquery);
	}

	leader = palloc0(sizeof(IvfLeader));
	leader->walusage = shm_toc_allocate(pcxt->toc,
										mul_size(sizeof(WalUsage), pcxt->nworkers));
	shm_toc_insert(pcxt->toc, IVF_PARALLEL_KEY_WAL_USAGE, leader->walusage);
	leader->bufferusage = shm_toc_allocate(pcxt->toc,
										   mul_size(sizeof(BufferUsage), pcxt->nworkers));
	shm_toc_insert(pcxt->toc, IVF_PARALLEL_KEY_BUFFER_USAGE, leader->bufferusage);

	LaunchParallelWorkers(pcxt);
	leader->pcxt = pcxt;
	leader->shared = shared;
	leader->snapshot = snapshot;
	leader->nqueues = pcxt->nworkers_launched;
	leader->nactive = leader->nqueues;
	if (pcxt->nworkers_launched == 0)
	{
		/* nothing was assigned yet: tear down and let the caller go serial */
		parallel_end(leader);
		return NULL;
	}
	leader->queues = palloc0(sizeof(shm_mq_handle *) * leader->nqueues);
	for (i = 0; i < leader->nqueues; i++)
		leader->queues[i] = shm_mq_attach((shm_mq *) (queuespace + (Size) i * queue_bytes),
										  pcxt->seg, pcxt->worker[i].bgwhandle);

	WaitForParallelWorkersToAttach(pcxt);
	return leader;
}

/*
 * Phase 3: assign every row to its list, keep the rows in memory (or the
 * tuplesort when they outgrow it) and order them by (list, residual, tid).
 * In parallel, workers assign their share of the heap and send the rows
 * to the leader, which keeps them exactly as a serial pass would: the
 * vectors never cross a temporary file unless memory runs out, and the
 * rest of the build does not know which way the rows came.  Leaves
 * bs->store (or bs->sort) ready to read and bs->indtuples set.
 */
static void
assign_and_sort(IvfBuildState *bs)
{
	int			request = parallel_workers(bs->heap, bs->index, bs->indexInfo,
										   bs->nlists, bs->dims);
	IvfLeader  *leader = NULL;
	Size		fixed = assign_fixed_bytes(bs->nlists, bs->dims);
	int			sortmem;

	if (request > 0)
		leader = parallel_begin(bs, request);
	if (leader != NULL && bs->gpu != NULL)
	{
		/* the workers assign on their CPUs: one session serves one process */
		ivf_gpu_kmeans_end(bs->gpu);
		bs->gpu = NULL;
	}

	/* every participant's assignment buffers count against the memory */
	if (leader != NULL)
		fixed = mul_size(fixed, leader->nqueues + 1);
	sortmem = sort_mem_kb(mwm_bytes(), fixed);
	assign_begin(bs);
	sort_begin(bs, sortmem);
	bs->store = store_create(bs->dims, bs->nlists, (Size) sortmem * 1024);

	if (leader == NULL)
		(void) table_index_build_scan(bs->heap, bs->index, bs->indexInfo,
									  false, true, assign_callback, bs, NULL);
	else
	{
		ereport(DEBUG1,
				(errmsg_internal("%s index \"%s\": assignment pass with %d parallel workers",
								 ivf_am_name(bs->index), RelationGetRelationName(bs->index),
								 leader->pcxt->nworkers_launched)));

		/* the leader scans its share too, reporting the scan's progress */
		bs->leader = leader;
		parallel_scan(bs, leader->shared, true);
		drain_queues(bs, true);
		bs->leader = NULL;

		/* a failed worker's error is raised here */
		parallel_end(leader);
		if (leader->sent != leader->received)
			elog(ERROR, "ivfflat parallel build: workers sent %.0f rows, the leader received %.0f",
				 leader->sent, leader->received);
	}
	flush_batch(bs);
	if (bs->store && !store_sort(bs))
		store_spill(bs);
	if (bs->store == NULL)
		tuplesort_performsort(bs->sort);
}

/*
 * Entry point of a parallel worker of the assignment pass (found by name
 * through CreateParallelContext).
 */
void
ivf_parallel_build_main(dsm_segment *seg, shm_toc *toc)
{
	IvfShared  *shared;
	char	   *queuespace;
	shm_mq	   *mq;
	char	   *sharedquery;
	LOCKMODE	heapLockmode;
	LOCKMODE	indexLockmode;
	IvfBuildState bs;
	WalUsage   *walusage;
	BufferUsage *bufferusage;

	sharedquery = shm_toc_lookup(toc, IVF_PARALLEL_KEY_QUERY_TEXT, true);
	debug_query_string = sharedquery;
	pgstat_report_activity(STATE_RUNNING, debug_query_string);

	shared = shm_toc_lookup(toc, IVF_PARALLEL_KEY_SHARED, false);
	/* the leader's locks, which the lock group lets us share */
	if (!shared->isconcurrent)
	{
		heapLockmode = ShareLock;
		indexLockmode = AccessExclusiveLock;
	}
	else
	{
		heapLockmode = ShareUpdateExclusiveLock;
		indexLockmode = RowExclusiveLock;
	}

	memset(&bs, 0, sizeof(bs));
	queuespace = shm_toc_lookup(toc, IVF_PARALLEL_KEY_QUEUES, false);
	mq = (shm_mq *) (queuespace + (Size) ParallelWorkerNumber * shared->queue_bytes);
	shm_mq_set_sender(mq, MyProc);
	bs.mq = shm_mq_attach(mq, seg, NULL);

	bs.heap = table_open(shared->heaprelid, heapLockmode);
	bs.index = index_open(shared->indexrelid, indexLockmode);
	bs.indexInfo = BuildIndexInfo(bs.index);
	bs.indexInfo->ii_Concurrent = shared->isconcurrent;
	bs.metric = ivf_index_metric(bs.index);
	bs.elem = ivf_index_elem(bs.index);
	bs.dims = shared->dims;
	bs.nlists = shared->nlists;
	bs.centroids = shm_toc_lookup(toc, IVF_PARALLEL_KEY_CENTROIDS, false);
	bs.centroid_norms = palloc(sizeof(float) * bs.nlists);
	ivf_kernels.norm_sq_block(bs.centroids, bs.nlists, bs.dims, bs.centroid_norms);
	bs.tmpCtx = AllocSetContextCreate(CurrentMemoryContext, "ivfflat build tuple",
									  ALLOCSET_DEFAULT_SIZES);

	InstrStartParallelQuery();
	assign_begin(&bs);
	parallel_scan(&bs, shared, false);

	/* counted before the queue closes, so the leader reads the final sum */
	SpinLockAcquire(&shared->mutex);
	shared->worker_rows += bs.indtuples;
	SpinLockRelease(&shared->mutex);
	shm_mq_detach(bs.mq);
	bs.mq = NULL;

	bufferusage = shm_toc_lookup(toc, IVF_PARALLEL_KEY_BUFFER_USAGE, false);
	walusage = shm_toc_lookup(toc, IVF_PARALLEL_KEY_WAL_USAGE, false);
	InstrEndParallelQuery(&bufferusage[ParallelWorkerNumber],
						  &walusage[ParallelWorkerNumber]);

	index_close(bs.index, indexLockmode);
	table_close(bs.heap, heapLockmode);
}

IndexBuildResult *
ivf_build(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result;
	IvfBuildState bs;
	IvfOptions *opts = ivf_get_options(index);
	IvfMetaPageData meta;
	IvfListEntry *dir;
	MemoryContext buildCtx;
	MemoryContext old;
	uint32		est_lists;
	uint32		k;
	int32	   *assign = NULL;
	Size		dbytes;
	float	   *fcentroids;
	uint32		flists = 0;
	bool		codes;
	instr_time	t;

	INSTR_TIME_SET_CURRENT(t);
	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data",
			 RelationGetRelationName(index));

	buildCtx = AllocSetContextCreate(CurrentMemoryContext, "ivfflat build",
									 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(buildCtx);

	memset(&bs, 0, sizeof(bs));
	bs.heap = heap;
	bs.index = index;
	bs.indexInfo = indexInfo;
	bs.metric = ivf_index_metric(index);
	bs.elem = ivf_index_elem(index);
	bs.dims = index_dims(index);
	ivf_geometry(bs.dims, false, bs.elem, &bs.geo);
	codes = ivf_prefilter_wanted(opts, bs.elem, bs.dims);
	bs.tmpCtx = AllocSetContextCreate(buildCtx, "ivfflat build tuple",
									  ALLOCSET_DEFAULT_SIZES);
	bs.prng = (uint64) opts->seed * UINT64CONST(0x2545F4914F6CDD1D) + 1;
	dbytes = sizeof(float) * bs.dims;

	/* centroids trained elsewhere (the centroids option), or NULL */
	fcentroids = ivf_faiss_index_centroids(index, bs.dims, bs.metric, &flists);

	/* ---- 1. sample ---- */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, IVF_PHASE_SAMPLE);
	if (fcentroids != NULL)
		est_lists = flists;
	else if (opts->lists > 0)
		est_lists = opts->lists;
	else
	{
		BlockNumber pages;
		double		tuples;
		double		allvisfrac;

		estimate_rel_size(heap, NULL, &pages, &tuples, &allvisfrac);
		est_lists = ivf_lists_for_rows(tuples);
	}
	bs.max_samples = Max((Size) ivf_kmeans_points_per_list * est_lists, IVF_MIN_SAMPLE);
	if (fcentroids != NULL)
	{
		/* only the prefilter's ranges learn from the sample: any size will do */
		Size		fixed = (Size) est_lists * dbytes;
		Size		avail = mwm_bytes() > fixed ? mwm_bytes() - fixed : 0;

		bs.max_samples = codes ? Min(bs.max_samples, avail / dbytes) : 0;
	}
	else
	{
		/* centroids, their norms and the k-means workspace come first */
		Size		fixed = (Size) est_lists * (dbytes + sizeof(float)) +
		ivf_kmeans_workspace_bytes(est_lists, bs.dims, est_lists);
		Size		per = dbytes;
		Size		avail = mwm_bytes() > fixed ? mwm_bytes() - fixed : 0;

		if (avail / per < bs.max_samples)
			bs.max_samples = avail / per;
		if (bs.max_samples < est_lists)
			memory_error(index, fixed + (Size) est_lists * per);
	}
	bs.samples = MemoryContextAllocHuge(buildCtx, bs.max_samples * dbytes);
	bs.heap_tuples = table_index_build_scan(heap, index, indexInfo, false, true,
											sample_callback, &bs, NULL);
	phase_done(index, "sampling", &t);

	/* ---- 2. k-means ---- */
	if (fcentroids != NULL)
		bs.nlists = flists;
	else if (opts->lists > 0)
		bs.nlists = opts->lists;
	else
		bs.nlists = ivf_lists_for_rows((double) bs.rows);

	init_meta(&meta, index, bs.metric, bs.dims, &bs.geo);
	k = bs.nlists;
	if (fcentroids != NULL)
	{
		/*
		 * No k-means.  The prefilter's ranges come from the sample assigned
		 * to these centroids exactly as inserts assign.
		 */
		bs.centroids = fcentroids;
		if (codes && bs.nsamples > 0)
		{
			void	   *ws = MemoryContextAllocHuge(buildCtx,
													ivf_assign_workspace_bytes(k, bs.dims));

			assign = MemoryContextAllocHuge(buildCtx, sizeof(int32) * bs.nsamples);
			ivf_assign(bs.samples, bs.nsamples, bs.centroids, NULL, k, bs.dims,
					   bs.metric == IVF_METRIC_L2 ? IVF_KM_L2 : IVF_KM_IP,
					   ws, assign, NULL, check_interrupts, NULL);
			pfree(ws);
			train_codes(&bs, k, assign, &meta);
		}
	}
	else if (bs.nsamples == 0)
	{
		/*
		 * Nothing to learn from: one list around the origin.  Inserts all
		 * land in it and scans stay exact until the index is rebuilt.
		 */
		k = 1;
		meta.flags |= IVF_META_EMPTY_BUILD;
		bs.centroids = palloc0(dbytes);
		/* an adaptive index grows out of it: its lists will have codes */
		if (codes && (meta.flags & IVF_META_ADAPTIVE))
			train_codes(&bs, k, NULL, &meta);
		ereport(NOTICE,
				(errmsg("%s index \"%s\" was created with no data",
						ivf_am_name(index), RelationGetRelationName(index)),
				 errdetail("It has a single list until it is rebuilt."),
				 errhint("REINDEX the index once the table is loaded.")));
	}
	else
	{
		IvfKmeansParams params;
		IvfKmeansStats kstats;
		IvfGpuKmeans *gk;
		Size		need;
		void	   *ws;

		if (k > bs.nsamples)
		{
			ereport(NOTICE,
					(errmsg("%s index \"%s\" has %zu vectors, fewer than the %u lists requested; using %zu lists",
							ivf_am_name(index), RelationGetRelationName(index),
							bs.nsamples, k, bs.nsamples),
					 errhint("REINDEX the index once the table is loaded.")));
			k = bs.nsamples;
		}
		else if (k > 1 && bs.nsamples < (Size) IVF_WARN_PER_LIST * k)
			ereport(NOTICE,
					(errmsg("%s index \"%s\" trained %u lists on %zu vectors; at least %zu are recommended",
							ivf_am_name(index), RelationGetRelationName(index), k, bs.nsamples,
							(size_t) IVF_WARN_PER_LIST * k),
					 errhint("Use fewer lists, or REINDEX the index once the table is loaded.")));

		/* the real k may exceed the estimate: shrink the sample to fit */
		for (;;)
		{
			need = (Size) k * (dbytes + sizeof(float)) +
				ivf_kmeans_workspace_bytes(bs.nsamples, bs.dims, k) +
				bs.nsamples * dbytes;
			if (need <= mwm_bytes() || bs.nsamples <= k)
				break;
			bs.nsamples = Max(k, bs.nsamples - bs.nsamples / 8);
		}
		if (need > mwm_bytes())
			memory_error(index, need);

		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, IVF_PHASE_KMEANS);
		bs.centroids = MemoryContextAllocHuge(buildCtx, (Size) k * dbytes);
		ws = MemoryContextAllocHuge(buildCtx,
									ivf_kmeans_workspace_bytes(bs.nsamples, bs.dims, k));
		memset(&params, 0, sizeof(params));
		params.niter = ivf_kmeans_iterations;
		params.tol = ivf_kmeans_tolerance;
		params.seed = meta.seed;
		params.spherical = (bs.metric != IVF_METRIC_L2);
		params.metric = (bs.metric == IVF_METRIC_L2) ? IVF_KM_L2 : IVF_KM_IP;
		params.progress = kmeans_progress;
		params.progress_arg = &bs;
		if (codes)
			params.assign_out = assign = MemoryContextAllocHuge(buildCtx,
																sizeof(int32) * bs.nsamples);
		/* ivf.gpu_build: the assignment steps on the GPU worker */
		gk = ivf_gpu_kmeans_begin(bs.samples, bs.nsamples, bs.dims, (int) params.metric);
		if (gk != NULL)
		{
			params.assign_fn = ivf_gpu_kmeans_assign;
			params.assign_arg = gk;
		}
		if (ivf_kmeans(bs.samples, bs.nsamples, bs.dims, k, &params, ws,
					   bs.centroids, &kstats) != 0)
			elog(ERROR, "k-means failed for %zu vectors and %u lists",
				 bs.nsamples, k);
		ereport(DEBUG2,
				(errmsg_internal("%s index \"%s\": k-means ran %d of at most %d iterations on %zu vectors, mean distance %g -> %g",
								 ivf_am_name(index), RelationGetRelationName(index),
								 kstats.iterations, params.niter, bs.nsamples,
								 kstats.objective_first, kstats.objective)));
		/* the session stays open for the assignment pass */
		if (gk != NULL && ivf_gpu_assign_centroids(gk, bs.centroids, k))
			bs.gpu = gk;
		else
			ivf_gpu_kmeans_end(gk);
		pfree(ws);
		if (codes)
			train_codes(&bs, k, assign, &meta);
	}
	phase_done(index, "k-means", &t);
	meta.ntrain = fcentroids != NULL ? 0 : bs.nsamples;
	pfree(bs.samples);
	bs.samples = NULL;
	bs.nlists = k;
	meta.nlists = k;
	meta.default_nprobe = default_nprobe(k);

	/* ---- 3. assign and sort ---- */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, IVF_PHASE_ASSIGN);
	bs.ordered = (opts->list_ordering == IVF_ORDER_RESIDUAL);
	if (bs.ordered)
		meta.flags |= IVF_META_ORDERED;
	bs.centroid_norms = palloc(sizeof(float) * k);
	ivf_kernels.norm_sq_block(bs.centroids, k, bs.dims, bs.centroid_norms);
	assign_and_sort(&bs);
	if (bs.gpu)
		ivf_gpu_kmeans_end(bs.gpu);
	bs.gpu = NULL;
	phase_done(index, "assignment and sort", &t);

	/* ---- 4. write ---- */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, IVF_PHASE_WRITE);
	{
		const int	index[] = {PROGRESS_CREATEIDX_TUPLES_TOTAL,
		PROGRESS_CREATEIDX_TUPLES_DONE};
		const int64 val[] = {(int64) bs.indtuples, 0};

		pgstat_progress_update_multi_param(2, index, val);
	}
	meta.nbuilt = (uint64) bs.indtuples;
	dir = empty_directory(&meta);
	write_fixed_pages(index, MAIN_FORKNUM, &bs.geo, &meta, bs.centroids, dir);
	write_lists(&bs, dir);
	write_directory(index, &meta, &bs.geo, dir);
	if (bs.store)
		store_free(bs.store);
	tuplesort_end(bs.sort);
	ExecDropSingleTupleTableSlot(bs.slot);
	phase_done(index, "writing the lists", &t);

	/*
	 * The fixed pages (meta, centroids, directory) are in shared buffers;
	 * the list pages were logged as they were written.  Those bypassed the
	 * buffer manager, so no checkpoint will sync them: do it now (with WAL
	 * skipped, wal_level = minimal, the commit syncs the new file).
	 */
	if (RelationNeedsWAL(index))
	{
		log_newpage_range(index, MAIN_FORKNUM, 0,
						  meta.directory_start + meta.directory_npages, true);
		smgrimmedsync(IvfRelationGetSmgr(index), MAIN_FORKNUM);
		phase_done(index, "WAL-logging the fixed pages and syncing", &t);
	}

	MemoryContextSwitchTo(old);

	result = (IndexBuildResult *) palloc(sizeof(IndexBuildResult));
	/* the table's row count (index_build stores it as its reltuples) */
	result->heap_tuples = bs.heap_tuples;
	result->index_tuples = bs.indtuples;

	MemoryContextDelete(buildCtx);
	return result;
}

/*
 * The init fork of an unlogged index: an empty index with one list around
 * the origin, what a crash resets the index to (the table is emptied too).
 */
void
ivf_buildempty(Relation index)
{
	IvfMetaPageData meta;
	IvfGeometry g;
	IvfMetric metric = ivf_index_metric(index);
	uint32		dims = index_dims(index);
	float	   *zero = palloc0(sizeof(float) * dims);

	ivf_geometry(dims, false, ivf_index_elem(index), &g);
	init_meta(&meta, index, metric, dims, &g);
	meta.flags |= IVF_META_EMPTY_BUILD;
	meta.nlists = 1;
	meta.default_nprobe = 1;
	/* as ivf_build with no rows: an adaptive index gets the code layout */
	if (ivf_prefilter_wanted(ivf_get_options(index), ivf_index_elem(index),
							 dims) &&
		(meta.flags & IVF_META_ADAPTIVE))
	{
		IvfGeometry cg;

		ivf_geometry(dims, true, ivf_index_elem(index), &cg);
		if (cg.codes)
		{
			/* the zero centroid, then an all-zero lo and step row */
			pfree(zero);
			zero = palloc0(3 * sizeof(float) * dims);
			g = cg;
			meta.flags |= IVF_META_CODES;
			meta.nsegments = g.nsegments;
			meta.seg_dims = g.seg_dims;
			meta.vecs_per_group = g.vecs_per_group;
		}
	}
	write_fixed_pages(index, INIT_FORKNUM, &g, &meta, zero,
					  empty_directory(&meta));
	log_newpage_range(index, INIT_FORKNUM, 0,
					  RelationGetNumberOfBlocksInFork(index, INIT_FORKNUM), true);
	pfree(zero);
}

char *
ivf_buildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case IVF_PHASE_SAMPLE:
			return "sampling table";
		case IVF_PHASE_KMEANS:
			return "performing k-means";
		case IVF_PHASE_ASSIGN:
			return "assigning tuples";
		case IVF_PHASE_WRITE:
			return "writing lists";
		default:
			return NULL;
	}
}
