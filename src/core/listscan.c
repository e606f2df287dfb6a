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
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "distance.h"
#include "ivfformat.h"
#include "ivfmetric.h"
#include "ivfpage.h"
#include "ivfquantizer.h"
#include "listscan.h"
#include "topk.h"

void
ivf_candidates_init(IvfCandidates *c, MemoryContext cxt, size_t initial)
{
	memset(c, 0, sizeof(*c));
	c->cxt = cxt;
	c->cap = Max(initial, 64);
	c->dist = MemoryContextAllocHuge(cxt, c->cap * sizeof(float));
	c->id = MemoryContextAllocHuge(cxt, c->cap * sizeof(int64));
}

/* Empty the candidate set; k0 > 0 sizes the prefilter's bar (kbest). */
void
ivf_candidates_reset(IvfCandidates *c, int k0)
{
	c->n = 0;
	c->nlb = 0;
	c->lbmin = get_float4_infinity();
	c->lbnan = false;
	if ((size_t) k0 > c->kbest.k)
		ivf_topk_init(&c->kbest, k0, MemoryContextAlloc(c->cxt, sizeof(float) * k0),
					  MemoryContextAlloc(c->cxt, sizeof(int64) * k0));
	c->kbest.k = k0;
	ivf_topk_reset(&c->kbest);
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

static void deferred_reserve(IvfCandidates *c, size_t more);

/*
 * Add candidates left over from an earlier probe round (strict_order keeps
 * them, see ivfscan.c) to a set just reset: n exact ones and nlb deferred
 * ones with their bounds and locations.  The exact ones also count for the
 * prefilter's bar.
 */
void
ivf_candidates_carry(IvfCandidates *c, const float *dist, const int64 *id,
					 size_t n, const float *lb, const int64 *lb_id,
					 const int64 *loc, size_t nlb)
{
	size_t		i;

	candidates_reserve(c, n);
	memcpy(c->dist + c->n, dist, sizeof(float) * n);
	memcpy(c->id + c->n, id, sizeof(int64) * n);
	c->n += n;
	if (c->kbest.k > 0)
		for (i = 0; i < n; i++)
			ivf_topk_push(&c->kbest, dist[i], id[i]);
	if (nlb == 0)
		return;
	deferred_reserve(c, nlb);
	memcpy(c->lb + c->nlb, lb, sizeof(float) * nlb);
	memcpy(c->lb_id + c->nlb, lb_id, sizeof(int64) * nlb);
	memcpy(c->loc + c->nlb, loc, sizeof(int64) * nlb);
	c->nlb += nlb;
	for (i = 0; i < nlb; i++)
	{
		if (lb[i] < c->lbmin)
			c->lbmin = lb[i];
		else if (isnan(lb[i]))
			c->lbnan = true;
	}
}

/*
 * The deferred arrays are borrowed from a per-backend pool instead of the
 * scan's context: a scan over many lists defers tens of thousands of
 * slots, and arrays that large come from fresh mmap'd or trimmed memory
 * on every allocation, whose first touch page-faults (130 faults, a
 * fifth of the time, per query at 32 lists of synth-1m-128).  The pool
 * keeps the largest set returned, up to IVF_DEFERRED_KEEP bytes; the
 * arrays go back when the scan's context is reset or deleted, errors
 * included (a reset callback).
 */
#define IVF_DEFERRED_KEEP	((Size) 32 * 1024 * 1024)
#define IVF_DEFERRED_BYTES	(sizeof(float) + 2 * sizeof(int64))

static MemoryContext deferred_cxt = NULL;
static float *pool_lb = NULL;
static int64 *pool_lb_id = NULL;
static int64 *pool_loc = NULL;
static size_t pool_cap = 0;

static void
deferred_free(float *lb, int64 *lb_id, int64 *loc)
{
	pfree(lb);
	pfree(lb_id);
	pfree(loc);
}

/* reset callback of the candidate set's context: give the arrays back */
static void
deferred_return(void *arg)
{
	IvfCandidates *c = (IvfCandidates *) arg;

	if (c->lbcap > pool_cap && c->lbcap * IVF_DEFERRED_BYTES <= IVF_DEFERRED_KEEP)
	{
		if (pool_cap > 0)
			deferred_free(pool_lb, pool_lb_id, pool_loc);
		pool_lb = c->lb;
		pool_lb_id = c->lb_id;
		pool_loc = c->loc;
		pool_cap = c->lbcap;
	}
	else
		deferred_free(c->lb, c->lb_id, c->loc);
	c->lb = NULL;
	c->lb_id = NULL;
	c->loc = NULL;
	c->lbcap = 0;
	c->nlb = 0;
}

static void
deferred_reserve(IvfCandidates *c, size_t more)
{
	size_t		want = c->nlb + more;

	if (want <= c->lbcap)
		return;
	if (c->lbcap == 0)
	{
		MemoryContextCallback *cb;

		if (deferred_cxt == NULL)
			deferred_cxt = AllocSetContextCreate(TopMemoryContext,
												 "ivf deferred slots",
												 ALLOCSET_DEFAULT_SIZES);
		cb = MemoryContextAlloc(c->cxt, sizeof(MemoryContextCallback));
		if (pool_cap > 0)
		{
			c->lb = pool_lb;
			c->lb_id = pool_lb_id;
			c->loc = pool_loc;
			c->lbcap = pool_cap;
			pool_cap = 0;
		}
		else
		{
			c->lbcap = Max(want, 1024);
			c->lb = MemoryContextAllocHuge(deferred_cxt, c->lbcap * sizeof(float));
			c->lb_id = MemoryContextAllocHuge(deferred_cxt, c->lbcap * sizeof(int64));
			c->loc = MemoryContextAllocHuge(deferred_cxt, c->lbcap * sizeof(int64));
		}
		cb->func = deferred_return;
		cb->arg = c;
		MemoryContextRegisterResetCallback(c->cxt, cb);
		if (want <= c->lbcap)
			return;
	}
	while (c->lbcap < want)
		c->lbcap *= 2;
	c->lb = repalloc_huge(c->lb, c->lbcap * sizeof(float));
	c->lb_id = repalloc_huge(c->lb_id, c->lbcap * sizeof(int64));
	c->loc = repalloc_huge(c->loc, c->lbcap * sizeof(int64));
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
	opaque = IvfPageGetOpaqueAt(BufferGetPage(buf));
	if ((opaque->flags & IVF_PAGE_LIST) == 0 || opaque->list != list ||
		opaque->nvec > g->vecs_per_group)
	{
		/* a standby's view voided by recycling on the primary, if not worse */
		ivf_view_check(index);
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a page of list %u",
						RelationGetRelationName(index), blkno, list)));
	}
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
 * Start loading a group head into the CPU cache: its special space, its
 * TIDs (and with codes its errs, cnorms and the first 2 kB of its code
 * block; without, the first lines of its float block).  Only a hint; the
 * page is read for real under its lock later.  The special space and the
 * TIDs, one in each 4 kB half of the page, are loaded rather than
 * prefetched: a software prefetch that misses the TLB may be dropped, and
 * was, for about half of the heads on a 2 GB shared_buffers without huge
 * pages (the lock then waited ~300 cycles for the special space); a load
 * fills the TLB for the prefetches and for the kernel's own.  Priming the
 * first lines gets the hardware prefetcher going on the next page while
 * this one is computed; prefetching the whole page measured slower.
 */
static inline void
prefetch_group_page(const char *page, const IvfGeometry *g, bool codes)
{
	const char *c;
	const char *end;

	(void) *(volatile const char *) (page + IVF_PAGE_SPECIAL_OFF);
	(void) *(volatile const char *) (page + g->head_tids_off);
	if (codes)
	{
		c = page + g->head_tids_off;
		end = page + g->head_codes_off +
			Min((Size) g->vecs_per_group * g->dims, 2048);
	}
	else
	{
		c = page + g->head_floats_off;
		end = c + 8 * 64;
	}
	for (; c < end; c += 64)
		ivf_prefetch(c);
}

/* the same for a pinned (not yet locked) head */
static inline void
prefetch_group_head(Buffer buf, const IvfGeometry *g, bool codes)
{
	prefetch_group_page(BufferGetPage(buf), g, codes);
}

/*
 * The same for the first head of the list to be scanned after this one,
 * without a pin: through the buffer this backend last found block 'head'
 * in (ivf_read_buffer's hint), if any.  The buffer may hold another page
 * by now; shared buffers are always mapped, and a stale hint only warms
 * the wrong lines.  Hides the first head's miss, which nothing else can
 * (its block is known only from the list directory).
 */
void
ivf_prefetch_list_head(Relation index, const IvfGeometry *g,
					   BlockNumber head, bool codes)
{
#ifdef IVF_HAVE_READ_RECENT_BUFFER
	Buffer		hint = ivf_recent_hint((IvfCache *) index->rd_amcache, head);

	if (BufferIsValid(hint))
		prefetch_group_page(BufferGetBlock(hint), g, codes && g->codes);
#endif
}

/*
 * |x - centroid|, what a list's radius must cover (IvfListEntry): the same
 * for every metric, since ip and cosine are bounded through it too.
 */
float
ivf_member_radius(const float *x, const float *centroid, uint32 d)
{
	return sqrtf(ivf_kernels.l2sq(x, centroid, d));
}

/*
 * distance of q to each of the n vectors of one page's block: out[i];
 * x is a row of g's elements
 */
static inline void
block_distances(const IvfGeometry *g, IvfMetric metric, const float *q,
				const char *x, size_t n, size_t d, float *out)
{
	ivf_block_distances(metric, g->elem, q, x, n, d, out);
}

/*
 * Code layout: distances of q to slots [0, n) of a group whose float
 * pages are fpages[0 ..]: one block kernel call per float page.
 */
static void
float_page_distances(IvfMetric metric, const float *q, const IvfGeometry *g,
					 const Page *fpages, uint32 n, float *out)
{
	uint32		first;

	for (first = 0; first < n; first += g->floats_per_page)
		block_distances(g, metric, q,
						ivf_slot_elems(fpages[first / g->floats_per_page], g, first),
						Min(n - first, g->floats_per_page), g->dims,
						out + first);
}

/* Read and share-lock float page f of the group whose head is 'head'. */
static Buffer
read_float_page(Relation index, const IvfGeometry *g, Page head, uint32 f)
{
	BlockNumber blkno = ivf_head_segblocks(head)[f];
	Buffer		buf = ivf_read_buffer(index, blkno);

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	if ((IvfPageGetOpaqueAt(BufferGetPage(buf))->flags & IVF_PAGE_SEGMENT) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a float page",
						RelationGetRelationName(index), blkno)));
	return buf;
}

/* Read and share-lock segment page blkno of a multi-page group. */
static Buffer
read_segment_page(Relation index, BlockNumber blkno)
{
	Buffer		buf = ivf_read_buffer(index, blkno);

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	if ((IvfPageGetOpaque(BufferGetPage(buf))->flags & IVF_PAGE_SEGMENT) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a segment page",
						RelationGetRelationName(index), blkno)));
	return buf;
}

/*
 * The prefilter's pass over one locked group head: bounds from the codes
 * of its first nvec slots, then exact distances (from the float pages)
 * only for the live slots whose bound is not above the k0-th smallest
 * exact distance so far; the others are deferred with their bound and
 * location.  Scanning the lists nearest first makes that bar drop fast, so
 * most slots are deferred and only their codes are read.
 */
static void
scan_group_codes(Relation index, const IvfGeometry *g, IvfPrefilter *pf,
				 const float *q, Page page, BlockNumber blkno, uint32 nvec,
				 float *bound, IvfCandidates *out)
{
	const ItemPointerData *tids = ivf_head_tids(page, g);
	Buffer		fbuf = InvalidBuffer;
	uint32		fcur = 0;
	uint32		i;

	ivf_kernels.sq8_dot_block(pf->w, ivf_head_codes(page, g), nvec, g->dims,
							  bound);
	ivf_prefilter_bounds(pf, bound, ivf_head_errs(page, g),
						 ivf_head_cnorms(page, g), nvec);

	candidates_reserve(out, nvec);
	deferred_reserve(out, nvec);
	for (i = 0; i < nvec; i++)
	{
		if (!ItemPointerIsValid(&tids[i]))
			continue;
		/* <=: every slot among the k0 nearest is read (ties included) */
		if (bound[i] <= ivf_topk_worst(&out->kbest))
		{
			const char *x;
			float		d;

			/* float pages are locked after the head, in slot order */
			if (!BufferIsValid(fbuf) || fcur != ivf_slot_fpage(g, i))
			{
				if (BufferIsValid(fbuf))
					UnlockReleaseBuffer(fbuf);
				fcur = ivf_slot_fpage(g, i);
				fbuf = read_float_page(index, g, page, fcur);
			}
			x = ivf_slot_elems(BufferGetPage(fbuf), g, i);
			d = ivf_pair_distance_elem(pf->metric, g->elem, q, x, g->dims);
			out->dist[out->n] = d;
			out->id[out->n] = ivf_tid_to_id((ItemPointer) &tids[i]);
			ivf_topk_push(&out->kbest, d, out->id[out->n]);
			out->n++;
		}
		else
		{
			if (bound[i] < out->lbmin)
				out->lbmin = bound[i];
			else if (isnan(bound[i]))
				out->lbnan = true;
			out->lb[out->nlb] = bound[i];
			out->lb_id[out->nlb] = ivf_tid_to_id((ItemPointer) &tids[i]);
			out->loc[out->nlb] = ((int64) blkno << 16) | i;
			out->nlb++;
		}
	}
	if (BufferIsValid(fbuf))
		UnlockReleaseBuffer(fbuf);
}

/*
 * Append (distance, tid) for the live slots among the first 'limit' slots
 * of list 'list' (whose first group head is 'head') to out, in chain
 * order; the group that crosses the limit is cut exactly.  Distances are
 * squared L2 for L2 and -dot otherwise (smaller is nearer in both cases).
 * With a prefilter (pf not NULL, ivf_prefilter_list() done for this list)
 * and codes in the index, slots the codes rule out go to out's deferred
 * set instead (see scan_group_codes).  Returns the number of slots
 * examined.
 */
uint64
ivf_scan_list(Relation index, const IvfGeometry *g, IvfMetric metric,
			  BlockNumber head, uint32 list, const float *q, uint64 limit,
			  IvfPrefilter *pf, IvfCandidates *out)
{
	bool		codes = (pf != NULL && g->codes);
	float	   *bound = NULL;
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
	if (codes)
		bound = palloc(sizeof(float) * g->vecs_per_group);

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
		opaque = IvfPageGetOpaqueAt(page);

		nvec = opaque->nvec;
		if (nvec > limit - examined)
			nvec = (uint32) (limit - examined);
		examined += nvec;
		blkno = opaque->next;
		if (BlockNumberIsValid(blkno) && examined < limit)
		{
			next = ivf_read_buffer(index, blkno);
			prefetch_group_head(next, g, codes);
		}

		if (nvec > 0 && codes)
			scan_group_codes(index, g, pf, q, page, BufferGetBlockNumber(buf),
							 nvec, bound, out);
		else if (nvec > 0)
		{
			candidates_reserve(out, nvec);
			dist = out->dist + out->n;
			tids = ivf_head_tids(page, g);

			if (g->codes)
			{
				/* the code layout without the prefilter: every float page */
				uint32		nf = (nvec + g->floats_per_page - 1) / g->floats_per_page;
				Page		fpages[IVF_MAX_SEGMENTS];
				uint32		f;

				for (f = 0; f < nf; f++)
				{
					segbufs[f] = read_float_page(index, g, page, f);
					fpages[f] = BufferGetPage(segbufs[f]);
				}
				float_page_distances(metric, q, g, fpages, nvec, dist);
				for (f = 0; f < nf; f++)
					UnlockReleaseBuffer(segbufs[f]);
			}
			else if (g->nsegments == 1)
				block_distances(g, metric, q, ivf_page_elems(page, g, true),
								nvec, g->dims, dist);
			else
			{
				BlockNumber *segblk = ivf_head_segblocks(page);
				uint32		s;

				block_distances(g, metric, q, ivf_page_elems(page, g, true),
								nvec, g->seg_dims, acc);
				for (s = 1; s < g->nsegments; s++)
				{
					Page		spage;

					segbufs[s] = read_segment_page(index, segblk[s - 1]);
					spage = BufferGetPage(segbufs[s]);
					block_distances(g, metric, q + (Size) s * g->seg_dims,
									ivf_page_elems(spage, g, false), nvec,
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
	if (bound)
		pfree(bound);
	return examined;
}

/*
 * The exact distance of a deferred candidate: the vector of heap TID 'id'
 * that was in slot loc & 0xFFFF of the group whose head is block loc >> 16.
 * VACUUM may since have moved it to another slot of that group (never out
 * of it), so it is looked up by TID if the slot holds another.  Returns
 * false when it is gone: VACUUM removed it, which it does only for rows no
 * snapshot can see.
 */
bool
ivf_refine_slot(Relation index, const IvfGeometry *g, IvfMetric metric,
				const float *q, int64 loc, int64 id, float *dist)
{
	BlockNumber blkno = (BlockNumber) (loc >> 16);
	uint32		slot = (uint32) (loc & 0xFFFF);
	Buffer		buf = ivf_read_buffer(index, blkno);
	Page		page;
	IvfPageOpaque opaque;
	ItemPointerData *tids;
	bool		found = false;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	opaque = IvfPageGetOpaque(page);
	if ((opaque->flags & IVF_PAGE_LIST) == 0 || opaque->nvec > g->vecs_per_group)
	{
		ivf_view_check(index);
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a list page",
						RelationGetRelationName(index), blkno)));
	}
	tids = ivf_head_tids(page, g);
	if (slot >= opaque->nvec || ivf_tid_to_id(&tids[slot]) != id)
	{
		uint32		i;

		for (i = 0; i < opaque->nvec; i++)
			if (ItemPointerIsValid(&tids[i]) && ivf_tid_to_id(&tids[i]) == id)
				break;
		/* rare (VACUUM ran meanwhile); the TAP test looks for these */
		if (i < opaque->nvec)
			elog(DEBUG2, "ivfflat: deferred candidate moved from slot %u to %u of block %u",
				 slot, i, blkno);
		else
			elog(DEBUG2, "ivfflat: deferred candidate gone from block %u", blkno);
		slot = i;
	}
	if (slot < opaque->nvec)
	{
		Buffer		fbuf = read_float_page(index, g, page, ivf_slot_fpage(g, slot));
		const char *x = ivf_slot_elems(BufferGetPage(fbuf), g, slot);

		*dist = ivf_pair_distance_elem(metric, g->elem, q, x, g->dims);
		UnlockReleaseBuffer(fbuf);
		found = true;
	}
	UnlockReleaseBuffer(buf);
	/* gone: VACUUM removed it, or (a standby) the group was recycled */
	if (!found)
		ivf_view_check(index);
	return found;
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
		uint32		nseg;
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
		nseg = g->nsegments;
		if (g->codes)			/* float pages in use only */
			nseg = 1 + (nvec + g->floats_per_page - 1) / g->floats_per_page;
		for (s = 1; s < nseg; s++)
		{
			if (g->codes)
				segbufs[s] = read_float_page(index, g, page, s - 1);
			else
			{
				segbufs[s] = ivf_read_buffer(index, ivf_head_segblocks(page)[s - 1]);
				LockBuffer(segbufs[s], BUFFER_LOCK_SHARE);
			}
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

			if (g->codes)
				float_page_distances(metric, q, g, segpages + 1, n, dist);
			else
				block_distances(g, metric, q, ivf_page_elems(page, g, true), n,
								ivf_seg_dims(g, 0), dist);
			for (s = 1; s < g->nsegments && !g->codes; s++)
			{
				block_distances(g, metric, q + (Size) s * g->seg_dims,
								ivf_page_elems(segpages[s], g, false), n,
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

		for (s = 1; s < nseg; s++)
			UnlockReleaseBuffer(segbufs[s]);
		blkno = opaque->next;
		UnlockReleaseBuffer(buf);
	}

	pfree(examined);
	pfree(dist);
	pfree(partial);
	pfree(ids);
}

/* Slots of list 'list' (dead ones included), 0 for an empty list. */
uint64
ivf_list_size(Relation index, const IvfMetaPageData *meta,
			  const IvfGeometry *g, uint32 list)
{
	IvfListEntry e;

	ivf_read_list_entry(index, meta, g, list, &e);
	return BlockNumberIsValid(e.head) ? ivf_list_slots(index, e.head) : 0;
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

/*
 * Every slot of list 'list', in chain order, as the GPU worker keeps it:
 * *vecs (n x dims floats, half elements widened) and *ids (ivf_tid_to_id,
 * -1 for a slot whose TID is invalid, so that a limit counts slots exactly
 * as ivf_scan_list does).  One group locked at a time, as a scan does; palloc'd in the
 * current context.
 */
void
ivf_export_list(Relation index, const IvfGeometry *g, BlockNumber head,
				uint32 list, float **vecs, int64 **ids, int64 *n)
{
	uint64		cap = ivf_list_slots(index, head);
	uint64		at = 0;
	BlockNumber blkno = head;
	Size		dbytes = sizeof(float) * g->dims;

	*vecs = palloc_extended(Max(cap, 1) * dbytes, MCXT_ALLOC_HUGE);
	*ids = palloc_extended(Max(cap, 1) * sizeof(int64), MCXT_ALLOC_HUGE);
	while (BlockNumberIsValid(blkno))
	{
		Buffer		buf = read_group_head(index, g, blkno, list);
		Page		page = BufferGetPage(buf);
		IvfPageOpaque opaque = IvfPageGetOpaqueAt(page);
		ItemPointerData *tids = ivf_head_tids(page, g);
		uint32		nvec = opaque->nvec;
		uint32		i;

		CHECK_FOR_INTERRUPTS();
		/* inserts may have added slots since the count: grow */
		if (at + nvec > cap)
		{
			cap = Max(cap * 2, at + nvec);
			*vecs = repalloc_huge(*vecs, cap * dbytes);
			*ids = repalloc_huge(*ids, cap * sizeof(int64));
		}
		for (i = 0; i < nvec; i++)
			(*ids)[at + i] = ItemPointerIsValid(&tids[i]) ?
				ivf_tid_to_id(&tids[i]) : -1;
		if (g->codes)
		{
			uint32		nf = (nvec + g->floats_per_page - 1) / g->floats_per_page;
			uint32		f;

			for (f = 0; f < nf; f++)
			{
				Buffer		fbuf = read_float_page(index, g, page, f);
				uint32		first = f * g->floats_per_page;
				uint32		last = Min(nvec, first + g->floats_per_page);

				for (i = first; i < last; i++)
					ivf_load_elems(g->elem, *vecs + (at + i) * g->dims,
								   ivf_slot_elems(BufferGetPage(fbuf), g, i),
								   g->dims);
				UnlockReleaseBuffer(fbuf);
			}
		}
		else
		{
			uint32		s;

			for (s = 0; s < g->nsegments; s++)
			{
				Buffer		sbuf = InvalidBuffer;
				Page		src;
				uint32		sd = ivf_seg_dims(g, s);

				if (s == 0)
					src = page;
				else
				{
					sbuf = read_segment_page(index, ivf_head_segblocks(page)[s - 1]);
					src = BufferGetPage(sbuf);
				}
				for (i = 0; i < nvec; i++)
					ivf_load_elems(g->elem,
								   *vecs + (at + i) * g->dims + (Size) s * g->seg_dims,
								   ivf_page_row(src, g, s == 0, i), sd);
				if (BufferIsValid(sbuf))
					UnlockReleaseBuffer(sbuf);
			}
		}
		at += nvec;
		blkno = opaque->next;
		UnlockReleaseBuffer(buf);
	}
	*n = (int64) at;
}

/* qsort/bsearch comparator for int64 (packed TIDs) */
int
ivf_cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}
