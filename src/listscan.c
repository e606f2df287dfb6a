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
	float	   *partial = NULL;
	float	   *acc = NULL;

	if (g->nsegments > 1)
	{
		partial = palloc(sizeof(float) * g->vecs_per_group);
		acc = palloc(sizeof(float) * g->vecs_per_group);
	}

	while (BlockNumberIsValid(blkno) && examined < limit)
	{
		Buffer		buf;
		Buffer		segbufs[IVF_MAX_SEGMENTS];
		Page		page;
		IvfPageOpaque opaque;
		uint32		nvec;
		uint32		i;
		float	   *dist;
		ItemPointerData *tids;

		CHECK_FOR_INTERRUPTS();

		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		opaque = IvfPageGetOpaque(page);

		if ((opaque->flags & IVF_PAGE_LIST) == 0 || opaque->list != list ||
			opaque->nvec > g->vecs_per_group)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\": block %u is not a page of list %u",
							RelationGetRelationName(index), blkno, list)));

		nvec = opaque->nvec;
		if (nvec > limit - examined)
			nvec = (uint32) (limit - examined);
		examined += nvec;
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

					segbufs[s] = ReadBuffer(index, segblk[s - 1]);
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

		blkno = opaque->next;
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
