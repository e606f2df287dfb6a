/*-------------------------------------------------------------------------
 *
 * listscan.c
 *	  The list scanner: distances from one query to every vector of one
 *	  inverted list, computed group by group straight from shared buffers.
 *
 * A group's float block is handed to the block kernel as it lies in the
 * buffer (one call per page, no copy, no per-tuple function call).  Groups
 * of more than one page (dims above ~2000) add up the per-segment partial
 * sums, which is exact for squared L2 and dot products alike because both
 * are sums over dimensions.
 *
 * Locking: each group's head page is share-locked while its segments are
 * read (segment pages are locked after the head, in order), and released
 * before moving on; no lock or pin is held between groups.  See src/README.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "distance.h"
#include "ivfflat.h"

void
ivf_candidates_init(IvfCandidates *c, MemoryContext cxt, size_t initial)
{
	c->cxt = cxt;
	c->n = 0;
	c->cap = Max(initial, 64);
	c->dist = MemoryContextAllocHuge(cxt, c->cap * sizeof(float));
	c->id = MemoryContextAllocHuge(cxt, c->cap * sizeof(int64));
}

static void
candidates_reserve(IvfCandidates *c, size_t more)
{
	size_t		want = c->n + more;

	if (want <= c->cap)
		return;
	while (c->cap < want)
		c->cap *= 2;
	c->dist = repalloc_huge(c->dist, c->cap * sizeof(float));
	c->id = repalloc_huge(c->id, c->cap * sizeof(int64));
}

/*
 * Share-lock the pinned head page of a group of list 'list', checking that
 * it is one.
 */
static void
lock_group_head(Relation index, const IvfGeometry *g, Buffer buf,
				BlockNumber blkno, uint32 list)
{
	IvfPageOpaque opaque;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	opaque = IvfPageGetOpaque(BufferGetPage(buf));
	if ((opaque->flags & IVF_PAGE_LIST) == 0 || opaque->list != list ||
		opaque->nvec > g->vecs_per_group)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a page of list %u",
						RelationGetRelationName(index), blkno, list)));
}

/* Read and share-lock the head page of a group of list 'list'. */
static Buffer
read_group_head(Relation index, const IvfGeometry *g, BlockNumber blkno,
				uint32 list)
{
	Buffer		buf = ivf_read_buffer(index, blkno);

	lock_group_head(index, g, buf, blkno, list);
	return buf;
}

/*
 * Start loading a pinned (not yet locked) group head into the CPU cache:
 * its special space, the start of its TIDs and the first lines of its
 * float block.  Only a hint; the page is read for real under its lock
 * later.  Priming the first lines gets the hardware prefetcher going on
 * the next page while this one is computed (a list's pages need not be
 * adjacent in shared memory); prefetching the whole page measured slower.
 */
static inline void
prefetch_group_head(Buffer buf, const IvfGeometry *g)
{
	const char *page = BufferGetPage(buf);
	const char *floats = page + g->head_floats_off;
	int			i;

	ivf_prefetch(page + IVF_PAGE_SPECIAL_OFF);
	ivf_prefetch(page + g->head_tids_off);
	for (i = 0; i < 8; i++)
		ivf_prefetch(floats + i * 64);
}

/* distance of q to each of the n vectors of one page's block: out[i] */
static inline void
block_distances(IvfMetric metric, const float *q, const float *x, size_t n,
				size_t d, float *out)
{
	if (metric == IVF_METRIC_L2)
		ivf_kernels.l2sq_block(q, x, n, d, out);
	else
		ivf_kernels.dot_block(q, x, n, d, out);
}

/*
 * Append (distance, tid) for the live slots among the first 'limit' slots
 * of list 'list' (whose first group head is 'head') to out, in chain
 * order; the group that crosses the limit is cut exactly.  Distances are
 * squared L2 for L2 and -dot otherwise (smaller is nearer in both cases).
 * Returns the number of slots examined.
 */
uint64
ivf_scan_list(Relation index, const IvfGeometry *g, IvfMetric metric,
			  BlockNumber head, uint32 list, const float *q, uint64 limit,
			  IvfCandidates *out)
{
	uint64		examined = 0;
	BlockNumber blkno = head;
	Buffer		next = InvalidBuffer;
	float	   *partial = NULL;
	float	   *acc = NULL;

	if (g->nsegments > 1)
	{
		partial = palloc(sizeof(float) * g->vecs_per_group);
		acc = palloc(sizeof(float) * g->vecs_per_group);
	}

	if (BlockNumberIsValid(blkno) && limit > 0)
		next = ivf_read_buffer(index, blkno);

	/*
	 * The next group's head is pinned and prefetched before this group is
	 * computed (a pin, not a lock: the lock is taken only after this
	 * group's is released, so the lock order of src/README is kept).
	 */
	while (BufferIsValid(next))
	{
		Buffer		buf = next;
		Buffer		segbufs[IVF_MAX_SEGMENTS];
		Page		page;
		IvfPageOpaque opaque;
		uint32		nvec;
		uint32		i;
		float	   *dist;
		ItemPointerData *tids;

		CHECK_FOR_INTERRUPTS();

		next = InvalidBuffer;
		lock_group_head(index, g, buf, blkno, list);
		page = BufferGetPage(buf);
		opaque = IvfPageGetOpaque(page);

		nvec = opaque->nvec;
		if (nvec > limit - examined)
			nvec = (uint32) (limit - examined);
		examined += nvec;
		blkno = opaque->next;
		if (BlockNumberIsValid(blkno) && examined < limit)
		{
			next = ivf_read_buffer(index, blkno);
			prefetch_group_head(next, g);
		}

		if (nvec > 0)
		{
			candidates_reserve(out, nvec);
			dist = out->dist + out->n;
			tids = ivf_head_tids(page, g);

			if (g->nsegments == 1)
				block_distances(metric, q, ivf_page_floats(page, g, true),
								nvec, g->dims, dist);
			else
			{
				BlockNumber *segblk = ivf_head_segblocks(page);
				uint32		s;

				block_distances(metric, q, ivf_page_floats(page, g, true),
								nvec, g->seg_dims, acc);
				for (s = 1; s < g->nsegments; s++)
				{
					Page		spage;

					segbufs[s] = ivf_read_buffer(index, segblk[s - 1]);
					LockBuffer(segbufs[s], BUFFER_LOCK_SHARE);
					spage = BufferGetPage(segbufs[s]);
					if ((IvfPageGetOpaque(spage)->flags & IVF_PAGE_SEGMENT) == 0)
						ereport(ERROR,
								(errcode(ERRCODE_INDEX_CORRUPTED),
								 errmsg("index \"%s\": block %u is not a segment page",
										RelationGetRelationName(index),
										segblk[s - 1])));
					block_distances(metric, q + (Size) s * g->seg_dims,
									ivf_page_floats(spage, g, false), nvec,
									ivf_seg_dims(g, s), partial);
					for (i = 0; i < nvec; i++)
						acc[i] += partial[i];
				}
				for (s = 1; s < g->nsegments; s++)
					UnlockReleaseBuffer(segbufs[s]);
				memcpy(dist, acc, sizeof(float) * nvec);
			}

			/* keep live slots; dead ones (invalid TID) are compacted out */
			{
				size_t		k = out->n;

				for (i = 0; i < nvec; i++)
				{
					if (!ItemPointerIsValid(&tids[i]))
						continue;
					out->dist[k] = (metric == IVF_METRIC_L2) ? dist[i] : -dist[i];
					out->id[k] = ivf_tid_to_id(&tids[i]);
					k++;
				}
				out->n = k;
			}
		}

		UnlockReleaseBuffer(buf);
	}

	if (partial)
	{
		pfree(partial);
		pfree(acc);
	}
	return examined;
}

/*
 * Per-list candidate caps for one probe round (torch-ivf's per-list
 * budgets): the round's lists, nearest first, with their centroid
 * distances cdist[0..n).  uniform: ceil(budget / n) each.
 * distance_weighted: list i gets a share of the budget in proportion to
 * exp(-3 z_i), z_i = (d_i - d_min) / (d_median - d_min) clamped to [0, 8],
 * rounded up.  A list never yields more than it holds, so caps above its
 * size cost nothing.
 */
void
ivf_list_budgets(const float *cdist, uint32 n, uint64 budget, int strategy,
				 uint64 *caps)
{
	uint32		i;

	if (n == 0)
		return;
	if (strategy == IVF_BUDGET_UNIFORM)
	{
		uint64		each = (budget + n - 1) / n;

		for (i = 0; i < n; i++)
			caps[i] = each;
	}
	else
	{
		double		dmin = cdist[0];
		double		dmed;
		double		span;
		double		sum = 0;
		double	   *w = palloc(sizeof(double) * n);

		/* cdist is ascending, so the median is in the middle */
		dmed = (n % 2) ? cdist[n / 2] : 0.5 * ((double) cdist[n / 2 - 1] + cdist[n / 2]);
		span = dmed - dmin;
		for (i = 0; i < n; i++)
		{
			double		z = (span > 0) ? (cdist[i] - dmin) / span : 0.0;

			if (!(z > 0))		/* also NaN */
				z = 0;
			if (z > 8)
				z = 8;
			w[i] = exp(-3.0 * z);
			sum += w[i];
		}
		for (i = 0; i < n; i++)
			caps[i] = (uint64) ceil((double) budget * w[i] / sum);
		pfree(w);
	}
}

/*
 * The csr path of batch search: one pass over list 'list' serves every
 * query that probes it.  For each group, each query j of qidx[0..nq)
 * examines up to limits[j] slots of the list in chain order (the same
 * prefix the single-query scanner would read), with the same block kernel
 * straight from the buffer, and offers its live slots to heaps[qidx[j]].
 * The group's floats stay in cache across the queries.
 */
void
ivf_scan_list_multi(Relation index, const IvfGeometry *g, IvfMetric metric,
					BlockNumber head, uint32 list, const float *queries,
					const int32 *qidx, const uint64 *limits, uint32 nq,
					IvfTopK *heaps)
{
	BlockNumber blkno = head;
	uint64	   *examined = palloc0(sizeof(uint64) * nq);
	float	   *dist = palloc(sizeof(float) * g->vecs_per_group);
	float	   *partial = palloc(sizeof(float) * g->vecs_per_group);
	int64	   *ids = palloc(sizeof(int64) * g->vecs_per_group);
	uint32		active = nq;

	while (BlockNumberIsValid(blkno) && active > 0)
	{
		Buffer		buf;
		Buffer		segbufs[IVF_MAX_SEGMENTS];
		Page		segpages[IVF_MAX_SEGMENTS];
		Page		page;
		IvfPageOpaque opaque;
		ItemPointerData *tids;
		uint32		nvec;
		uint32		s;
		uint32		j;
		uint32		i;

		CHECK_FOR_INTERRUPTS();

		buf = read_group_head(index, g, blkno, list);
		page = BufferGetPage(buf);
		opaque = IvfPageGetOpaque(page);
		nvec = opaque->nvec;
		tids = ivf_head_tids(page, g);
		for (i = 0; i < nvec; i++)
			ids[i] = ItemPointerIsValid(&tids[i]) ? ivf_tid_to_id(&tids[i]) : -1;

		segpages[0] = page;
		for (s = 1; s < g->nsegments; s++)
		{
			segbufs[s] = ivf_read_buffer(index, ivf_head_segblocks(page)[s - 1]);
			LockBuffer(segbufs[s], BUFFER_LOCK_SHARE);
			segpages[s] = BufferGetPage(segbufs[s]);
		}

		active = 0;
		for (j = 0; j < nq; j++)
		{
			const float *q = queries + (Size) qidx[j] * g->dims;
			uint32		n = nvec;

			if (examined[j] >= limits[j])
				continue;
			if (n > limits[j] - examined[j])
				n = (uint32) (limits[j] - examined[j]);
			examined[j] += n;
			if (examined[j] < limits[j])
				active++;
			if (n == 0)
				continue;

			block_distances(metric, q, ivf_page_floats(page, g, true), n,
							ivf_seg_dims(g, 0), dist);
			for (s = 1; s < g->nsegments; s++)
			{
				block_distances(metric, q + (Size) s * g->seg_dims,
								ivf_page_floats(segpages[s], g, false), n,
								ivf_seg_dims(g, s), partial);
				for (i = 0; i < n; i++)
					dist[i] += partial[i];
			}
			for (i = 0; i < n; i++)
			{
				if (ids[i] < 0)
					continue;
				ivf_topk_push(&heaps[qidx[j]],
							  metric == IVF_METRIC_L2 ? dist[i] : -dist[i],
							  ids[i]);
			}
		}

		for (s = 1; s < g->nsegments; s++)
			UnlockReleaseBuffer(segbufs[s]);
		blkno = opaque->next;
		UnlockReleaseBuffer(buf);
	}

	pfree(examined);
	pfree(dist);
	pfree(partial);
	pfree(ids);
}

/* Slots in list 'list' (dead ones included), counted from the group heads. */
uint64
ivf_list_slots(Relation index, BlockNumber head)
{
	BlockNumber blkno = head;
	uint64		n = 0;

	while (BlockNumberIsValid(blkno))
	{
		Buffer		buf = ReadBuffer(index, blkno);
		IvfPageOpaque opaque;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		opaque = IvfPageGetOpaque(BufferGetPage(buf));
		n += opaque->nvec;
		blkno = opaque->next;
		UnlockReleaseBuffer(buf);
	}
	return n;
}
