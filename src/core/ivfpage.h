/*-------------------------------------------------------------------------
 *
 * ivfpage.h
 *	  Reading and writing an index's pages: new pages, the meta page and
 *	  the per-backend cache of it with the centroids (IvfCache), the
 *	  directory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFPAGE_H
#define IVF_IVFPAGE_H

#include "ivfformat.h"

#include "storage/bufmgr.h"
#include "storage/lockdefs.h"
#include "utils/relcache.h"

/* lists from which the cache keeps codes of the centroids */
#define IVF_CENTROID_CODES_MIN_LISTS 64

/* a recent-buffer hint (IvfCache.recent) */
typedef struct IvfRecentBuffer
{
	BlockNumber blkno;			/* InvalidBlockNumber: empty slot */
	Buffer		buffer;
} IvfRecentBuffer;

/*
 * Per-index state cached in rd_amcache: the meta page and the centroids,
 * of the generation the meta page named when it was built (its "view",
 * src/README "The per-backend cache").  One palloc chunk: the arrays below
 * point into it, after the header (PostgreSQL frees just that chunk when
 * it drops rd_amcache, and ivf_get_cache when the generation moved).
 * Never hold a pointer to it across anything that may process relcache
 * invalidations (lock acquisition) or call ivf_get_cache: copy what is
 * needed.
 *
 * The lists live at the view are ranked by position, 0 .. nlive-1 in slot
 * order: ivf_nearest_lists returns positions, live_slot and live_id turn
 * them into directory slots and list ids.  slot_centroids holds every
 * slot's centroid by slot, retired ones included, so a scan whose view a
 * later cache no longer has still finds the centroids of the lists it
 * ranked (a slot's centroid does not change before it is recycled, and a
 * view's lists are not recycled while it is in use).
 */
typedef struct IvfCache
{
	IvfMetaPageData meta;
	IvfGeometry geo;
	uint32		nlive;			/* lists live at meta.generation (=
								 * meta.nlists) */
	uint32	   *live_slot;		/* position -> slot */
	uint32	   *live_id;		/* position -> list id */
	float	   *slot_centroids; /* meta.nslots x dims, by slot (free: 0) */
	float	   *centroids;		/* nlive x dims, by position (the same
								 * array as slot_centroids when every slot
								 * is live) */
	float	   *centroid_norms; /* |c|^2 by position */
	float	   *sq8_lo;			/* codes: per-dimension lo, else NULL */
	float	   *sq8_step;		/* codes: per-dimension step, else NULL */
	float	   *sq8_lo1;		/* codebook 1 (lists with IVF_LIST_CODEBOOK1),
								 * or NULL */
	float	   *sq8_step1;

	/*
	 * The centroids' own 8-bit codes (computed when the cache is built,
	 * for enough lists to pay off), so that ranking the lists reads a
	 * quarter of the bytes: lo and step rows, codes, errors; or NULL.
	 */
	float	   *ccode_lo;
	float	   *ccode_step;
	uint8	   *ccodes;
	float	   *ccode_err;
	float	   *ccode_cnorm;

	/*
	 * Buffer last seen holding a block, so that list scans can pin pages
	 * with ReadRecentBuffer() instead of a buffer-mapping lookup per page;
	 * a stale hint just falls back.  Direct-mapped: block b's hint is in
	 * slot b & (nrecent - 1), if that slot names b.  nrecent is a power of
	 * two, or 0 (no hints).
	 */
	IvfRecentBuffer *recent;
	uint32		nrecent;

	Size		view_size;		/* bytes of the chunk before the hints */
} IvfCache;

/* the centroid of directory slot 'slot' */
static inline const float *
ivf_slot_centroid(const IvfCache *cache, uint32 slot)
{
	Assert(slot < cache->meta.nslots);
	return cache->slot_centroids + (Size) slot * cache->meta.dims;
}

/* the buffer that last held blkno, per the cache's hints, or InvalidBuffer */
static inline Buffer
ivf_recent_hint(const IvfCache *cache, BlockNumber blkno)
{
	const IvfRecentBuffer *h;

	if (cache == NULL || cache->nrecent == 0)
		return InvalidBuffer;
	h = &cache->recent[blkno & (cache->nrecent - 1)];
	return h->blkno == blkno ? h->buffer : InvalidBuffer;
}

extern void ivf_init_page(Page page, uint16 flags, uint32 list);
extern Buffer ivf_new_buffer(Relation index);
extern Page ivf_lock_meta_page(Relation index, Buffer buf, int mode);
extern void ivf_read_meta(Relation index, IvfMetaPageData *meta);
extern void ivf_meta_from_v3(IvfMetaPageData *meta);
extern uint32 ivf_read_generation(Relation index);
extern void ivf_check_meta(Relation index, const IvfMetaPageData *meta);
extern char *ivf_am_name(Relation index);
extern IvfCache *ivf_get_cache(Relation index);
extern IvfCache *ivf_copy_view(const IvfCache *cache);
extern Buffer ivf_read_buffer(Relation index, BlockNumber blkno);
extern void ivf_load_centroids(Relation index, const IvfMetaPageData *meta,
							   float *dest);
extern void ivf_load_codebook1(Relation index, const IvfMetaPageData *meta,
							   float *dest);
extern void ivf_load_slots(Relation index, const IvfMetaPageData *meta,
						   float *dest, IvfListEntry *slots);
extern Buffer ivf_read_directory_page(Relation index, BlockNumber blkno);
extern void ivf_read_list_entry(Relation index, const IvfMetaPageData *meta,
								const IvfGeometry *g, uint32 list,
								IvfListEntry *entry);
extern BlockNumber ivf_directory_block(const IvfMetaPageData *meta,
									   const IvfGeometry *g, uint32 list,
									   uint32 *slot);
extern IvfListEntryV3 *ivf_dir_entry_ptr(Page page, const IvfGeometry *g,
										 uint32 i);
extern IvfListEntry *ivf_dir_entry_v4_ptr(Page page, const IvfGeometry *g,
										  uint32 i);
extern bool ivf_lock_index(Relation index, uint16 which, LOCKMODE mode,
						   bool conditional);
extern void ivf_unlock_index(Relation index, uint16 which, LOCKMODE mode);
extern void ivf_view_reading(Relation index, uint32 generation);
extern void ivf_view_check(Relation index);
extern void ivf_read_entries(Relation index, const IvfMetaPageData *meta,
							 const IvfGeometry *g, IvfListEntry *out);
extern void ivf_check_view_entry(Relation index, const IvfListEntry *entry,
								 uint32 slot, uint32 id);
extern void ivf_dir_entries_get(Page page, const IvfGeometry *g, uint32 first,
								uint32 n, uint32 slot, IvfListEntry *out);

#endif							/* IVF_IVFPAGE_H */
