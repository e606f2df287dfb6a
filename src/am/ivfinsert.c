/*-------------------------------------------------------------------------
 *
 * ivfinsert.c
 *	  Insert one vector into an ivfflat index: into the list whose
 *	  centroid is nearest, in the first group with a free slot at or after
 *	  the list's insertion hint, or in a new group appended to the list.
 *
 * Lock order (see src/README): list pages, then the directory page, then
 * the relation extension lock (which is only ever held while extending and
 * never while waiting for anything else).  A group's segment pages are
 * locked after its head page.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "gpuclient.h"
#include "ivfflat.h"
#include "ivfformat.h"
#include "ivfmetric.h"
#include "ivfpage.h"
#include "ivfquantizer.h"
#include "listscan.h"

/*
 * Write the segment parts of a vector into slot 'slot' of the segment
 * pages (copies registered with GenericXLog).
 */
static void
write_segment(Page spage, const IvfGeometry *g, uint32 s, uint32 slot,
			  const float *vec)
{
	char	   *dst;
	uint32		n;
	uint16		lower;

	if (g->codes)
	{
		/* the code layout: the whole vector, on its own float page only */
		if (s - 1 != ivf_slot_fpage(g, slot))
			return;
		dst = ivf_slot_elems(spage, g, slot);
		n = g->dims;
	}
	else
	{
		dst = ivf_page_row(spage, g, false, slot);
		n = ivf_seg_dims(g, s);
		vec += (Size) s * g->seg_dims;
	}
	ivf_store_elems(g->elem, dst, vec, n);
	/* never shrink: slots below the head's nvec must stay under pd_lower */
	lower = (dst + (Size) n * g->elem_size) - (char *) spage;
	if (((PageHeader) spage)->pd_lower < lower)
		((PageHeader) spage)->pd_lower = lower;
}

/*
 * Write slot 'slot' (== nvec) of a head page and publish it.  code and err
 * are the slot's code and error when the index has codes (else unused).
 */
static void
write_head(Page page, const IvfGeometry *g, uint32 slot, const float *vec,
		   ItemPointer tid, const uint8 *code, float err, float cnorm)
{
	IvfPageOpaque opaque = IvfPageGetOpaque(page);

	Assert(opaque->nvec == slot);
	if (g->codes)
	{
		/* the floats are on a float page (write_segment) */
		memcpy(ivf_head_codes(page, g) + (Size) slot * g->dims, code, g->dims);
		ivf_head_errs(page, g)[slot] = err;
		ivf_head_cnorms(page, g)[slot] = cnorm;
	}
	else
		ivf_store_elems(g->elem, ivf_page_row(page, g, true, slot), vec,
						ivf_seg_dims(g, 0));
	ivf_head_tids(page, g)[slot] = *tid;
	opaque->nvec = slot + 1;
	((PageHeader) page)->pd_lower = ivf_head_lower(g, slot + 1);
}

/*
 * Log segment pages sbufs[first .. S-1] minus the last 'keep' ones, four per
 * record, applying write_segment (or initialising them first when isnew).
 * Returns the index of the first segment not yet logged.
 */
static uint32
log_segments(Relation index, const IvfGeometry *g, Buffer *sbufs,
			 uint32 keep, uint32 slot, const float *vec, bool isnew,
			 uint32 list)
{
	uint32		s = 1;

	while (g->nsegments - s > keep)
	{
		GenericXLogState *state = GenericXLogStart(index);
		uint32		n = Min(MAX_GENERIC_XLOG_PAGES, g->nsegments - s - keep);
		uint32		j;

		for (j = 0; j < n; j++)
		{
			Page		sp = GenericXLogRegisterBuffer(state, sbufs[s + j],
													   isnew ? GENERIC_XLOG_FULL_IMAGE : 0);

			if (isnew)
				ivf_init_page(sp, IVF_PAGE_SEGMENT, list);
			write_segment(sp, g, s + j, slot, vec);
		}
		GenericXLogFinish(state);
		s += n;
	}
	return s;
}

/*
 * Add a new group holding 'vec' to the list whose id is 'list' (labelling
 * its pages).  tailbuf is the list's
 * last group (exclusively locked, full) or InvalidBuffer when the list is
 * empty; dirbuf is the directory page (exclusively locked) with the list's
 * entry at 'slot'.
 */
static void
add_group(Relation index, const IvfGeometry *g, uint32 list, Buffer tailbuf,
		  Buffer dirbuf, uint32 dirslot, const float *vec, ItemPointer tid,
		  const uint8 *code, float err, float cnorm, float radius)
{
	Buffer		headbuf;
	Buffer		sbufs[IVF_MAX_SEGMENTS];
	BlockNumber segblk[IVF_MAX_SEGMENTS];
	GenericXLogState *state;
	Page		page;
	IvfListEntryV3 *entry;
	uint32		s;
	uint32		first;

	headbuf = ivf_new_buffer(index);
	for (s = 1; s < g->nsegments; s++)
	{
		sbufs[s] = ivf_new_buffer(index);
		segblk[s - 1] = BufferGetBlockNumber(sbufs[s]);
	}

	/* segments first: unreachable until the final record links the head */
	first = log_segments(index, g, sbufs, Min(g->nsegments - 1, 1), 0, vec,
						 true, list);

	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, headbuf, GENERIC_XLOG_FULL_IMAGE);
	ivf_init_page(page, IVF_PAGE_LIST, list);
	if (g->nsegments > 1)
		memcpy(ivf_head_segblocks(page), segblk,
			   sizeof(BlockNumber) * (g->nsegments - 1));
	write_head(page, g, 0, vec, tid, code, err, cnorm);

	for (s = first; s < g->nsegments; s++)
	{
		Page		sp = GenericXLogRegisterBuffer(state, sbufs[s],
												   GENERIC_XLOG_FULL_IMAGE);

		ivf_init_page(sp, IVF_PAGE_SEGMENT, list);
		write_segment(sp, g, s, 0, vec);
	}

	if (BufferIsValid(tailbuf))
	{
		Page		tp = GenericXLogRegisterBuffer(state, tailbuf, 0);

		IvfPageGetOpaque(tp)->next = BufferGetBlockNumber(headbuf);
	}

	page = GenericXLogRegisterBuffer(state, dirbuf, 0);
	entry = ivf_dir_entry_ptr(page, g, dirslot);
	if (!BlockNumberIsValid(entry->head))
		entry->head = BufferGetBlockNumber(headbuf);
	entry->tail = BufferGetBlockNumber(headbuf);
	entry->insert = BufferGetBlockNumber(headbuf);
	entry->ngroups++;
	if (!(entry->radius >= radius))
		entry->radius = radius;
	GenericXLogFinish(state);

	for (s = 1; s < g->nsegments; s++)
		UnlockReleaseBuffer(sbufs[s]);
	UnlockReleaseBuffer(headbuf);
}

/*
 * Lock the directory page dirblk exclusively if the list's radius (entry
 * 'dirslot') must grow to 'radius'; InvalidBuffer when it need not.  Called
 * holding the group's pages, which come first in the lock order.
 */
static Buffer
lock_for_radius(Relation index, const IvfGeometry *g, BlockNumber dirblk,
				uint32 dirslot, float radius)
{
	Buffer		dirbuf = ReadBuffer(index, dirblk);

	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	if (ivf_dir_entry_ptr(BufferGetPage(dirbuf), g, dirslot)->radius >= radius)
	{
		UnlockReleaseBuffer(dirbuf);
		return InvalidBuffer;
	}
	return dirbuf;
}

/* raise entry dirslot's radius in a page registered in the record */
static void
raise_radius(GenericXLogState *state, const IvfGeometry *g, Buffer dirbuf,
			 uint32 dirslot, float radius)
{
	Page		dp = GenericXLogRegisterBuffer(state, dirbuf, 0);

	ivf_dir_entry_ptr(dp, g, dirslot)->radius = radius;
}

/*
 * Store vec in the free slot of an exclusively locked group head.  When
 * 'grow' is set the list's radius may have to grow to 'radius': the
 * directory page is then locked after the group's pages and changed in the
 * record that publishes the vector, so no scan (or standby, or crash
 * recovery) sees the vector without the radius that covers it.
 */
static void
add_to_group(Relation index, const IvfGeometry *g, Buffer headbuf,
			 const float *vec, ItemPointer tid, const uint8 *code, float err,
			 float cnorm, bool grow, BlockNumber dirblk, uint32 dirslot,
			 float radius)
{
	Page		page = BufferGetPage(headbuf);
	uint32		slot = IvfPageGetOpaque(page)->nvec;
	Buffer		sbufs[IVF_MAX_SEGMENTS];
	Buffer		dirbuf = InvalidBuffer;
	GenericXLogState *state;
	uint32		first;
	uint32		s;

	if (g->codes)
	{
		/* one record: the slot's float page, and the head publishing it */
		Buffer		fbuf;
		Page		fpage;

		s = 1 + ivf_slot_fpage(g, slot);
		fbuf = ReadBuffer(index, ivf_head_segblocks(page)[s - 1]);
		LockBuffer(fbuf, BUFFER_LOCK_EXCLUSIVE);
		if (grow)
			dirbuf = lock_for_radius(index, g, dirblk, dirslot, radius);
		state = GenericXLogStart(index);
		/* head first: redo locks in this order (see add_to_group's end) */
		page = GenericXLogRegisterBuffer(state, headbuf, 0);
		fpage = GenericXLogRegisterBuffer(state, fbuf, 0);
		write_segment(fpage, g, s, slot, vec);
		write_head(page, g, slot, vec, tid, code, err, cnorm);
		if (BufferIsValid(dirbuf))
			raise_radius(state, g, dirbuf, dirslot, radius);
		GenericXLogFinish(state);
		if (BufferIsValid(dirbuf))
			UnlockReleaseBuffer(dirbuf);
		UnlockReleaseBuffer(fbuf);
		return;
	}

	for (s = 1; s < g->nsegments; s++)
	{
		sbufs[s] = ReadBuffer(index, ivf_head_segblocks(page)[s - 1]);
		LockBuffer(sbufs[s], BUFFER_LOCK_EXCLUSIVE);
	}

	/*
	 * Segment data first; the slot becomes visible only when the head's
	 * nvec is raised, in the final record.
	 */
	if (grow)
		dirbuf = lock_for_radius(index, g, dirblk, dirslot, radius);
	first = log_segments(index, g, sbufs,
						 Min(g->nsegments - 1,
							 MAX_GENERIC_XLOG_PAGES - (BufferIsValid(dirbuf) ? 2 : 1)),
						 slot, vec, false, 0);

	/*
	 * The head is registered before the segment pages: redo locks a
	 * record's pages in registration order and holds them all to the end,
	 * so a standby's redo must take them head first, as scans do (a scan
	 * holding the head and waiting for a segment page would otherwise wait
	 * forever on a redo holding the segment page and waiting for the head).
	 */
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, headbuf, 0);
	for (s = first; s < g->nsegments; s++)
	{
		Page		sp = GenericXLogRegisterBuffer(state, sbufs[s], 0);

		write_segment(sp, g, s, slot, vec);
	}
	write_head(page, g, slot, vec, tid, code, err, cnorm);
	if (BufferIsValid(dirbuf))
		raise_radius(state, g, dirbuf, dirslot, radius);
	GenericXLogFinish(state);

	if (BufferIsValid(dirbuf))
		UnlockReleaseBuffer(dirbuf);
	for (s = 1; s < g->nsegments; s++)
		UnlockReleaseBuffer(sbufs[s]);
}

/*
 * Move the list's insertion hint from 'from' to 'to', unless someone (an
 * inserter or VACUUM) has changed it meanwhile.
 */
static void
advance_hint(Relation index, const IvfMetaPageData *meta,
			 const IvfGeometry *g, uint32 list, BlockNumber from,
			 BlockNumber to)
{
	uint32		slot;
	BlockNumber dirblk = ivf_directory_block(meta, g, list, &slot);
	Buffer		dirbuf = ReadBuffer(index, dirblk);

	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	if (ivf_dir_entry_ptr(BufferGetPage(dirbuf), g, slot)->insert == from)
	{
		GenericXLogState *state = GenericXLogStart(index);
		Page		page = GenericXLogRegisterBuffer(state, dirbuf, 0);

		ivf_dir_entry_ptr(page, g, slot)->insert = to;
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(dirbuf);
}

/*
 * Insert one prepared vector (normalised for cosine) with its heap TID;
 * returns the id of the list it went to.  The cache is used only to
 * choose the list, before any lock is taken.
 */
uint32
ivf_insert_vector(Relation index, const IvfCache *cache, const float *vec,
				  ItemPointer tid)
{
	IvfMetaPageData meta = cache->meta;
	IvfGeometry g = cache->geo;
	int32		list;
	int32		pos;
	const float *centroid;
	IvfListEntry entry;
	BlockNumber hint;
	BlockNumber blkno;
	uint32		dirslot;
	BlockNumber dirblk;
	uint32		listid;
	uint8	   *code = NULL;
	float		err = 0;
	float		cnorm = 0;
	float		radius;

	ivf_nearest_lists(cache, vec, 1, &pos, NULL);
	list = (int32) cache->live_slot[pos];
	centroid = cache->centroids + (Size) pos * g.dims;
	dirblk = ivf_directory_block(&meta, &g, list, &dirslot);
	radius = ivf_member_radius(vec, centroid, g.dims);
	if (g.codes)
	{
		code = palloc(g.dims);
		err = ivf_encode_vector(vec, centroid,
								cache->sq8_lo, cache->sq8_step, g.dims,
								palloc(sizeof(float) * g.dims), code, &cnorm);
	}

restart:
	ivf_read_list_entry(index, &meta, &g, list, &entry);
	/* the id its pages carry (format 2-3: the list number) */
	listid = ivf_entry_list_id(&entry, list);
	hint = BlockNumberIsValid(entry.insert) ? entry.insert : entry.head;

	if (!BlockNumberIsValid(hint))
	{
		/* empty list: create its first group under the directory lock */
		Buffer		dirbuf = ReadBuffer(index, dirblk);

		LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
		if (BlockNumberIsValid(ivf_dir_entry_ptr(BufferGetPage(dirbuf), &g, dirslot)->head))
		{
			/* somebody beat us to it */
			UnlockReleaseBuffer(dirbuf);
			goto restart;
		}
		add_group(index, &g, listid, InvalidBuffer, dirbuf, dirslot, vec, tid,
				  code, err, cnorm, radius);
		UnlockReleaseBuffer(dirbuf);
		return listid;
	}

	blkno = hint;
	for (;;)
	{
		Buffer		buf = ReadBuffer(index, blkno);
		Page		page;
		IvfPageOpaque opaque;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		opaque = IvfPageGetOpaque(page);
		if ((opaque->flags & IVF_PAGE_LIST) == 0 || opaque->list != listid)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\": block %u is not a page of list %d",
							RelationGetRelationName(index), blkno, list),
					 errdetail("The page is labelled 0x%08X, the list's id is 0x%08X.",
							   opaque->list, listid)));

		if (opaque->nvec < g.vecs_per_group)
		{
			/*
			 * The radius only grows, so one read before the lock that
			 * already covers this vector still does; else recheck locked.
			 */
			add_to_group(index, &g, buf, vec, tid, code, err, cnorm,
						 !(entry.radius >= radius), dirblk, dirslot, radius);
			UnlockReleaseBuffer(buf);
			if (blkno != hint)
				advance_hint(index, &meta, &g, list, hint, blkno);
			return listid;
		}

		if (BlockNumberIsValid(opaque->next))
		{
			BlockNumber next = opaque->next;

			UnlockReleaseBuffer(buf);
			blkno = next;
			CHECK_FOR_INTERRUPTS();
			continue;
		}

		/* the tail is full: append a group (lock order: list, directory) */
		{
			Buffer		dirbuf = ReadBuffer(index, dirblk);

			LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
			add_group(index, &g, listid, buf, dirbuf, dirslot, vec, tid, code,
					  err, cnorm, radius);
			UnlockReleaseBuffer(dirbuf);
		}
		UnlockReleaseBuffer(buf);
		return listid;
	}
}

bool
ivf_insert(IVF_AMINSERT_PARAMS)
{
	MemoryContext tmp;
	MemoryContext old;
	IvfCache   *cache;
	Datum		value;
	float	   *vec;
	bool		skip;

	/* NULLs are not indexed */
	if (isnull[0])
		return false;

	tmp = AllocSetContextCreate(CurrentMemoryContext, "ivfflat insert",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(tmp);

	/* detoast before the cache: it may lock, and invalidations free it */
	value = PointerGetDatum(PG_DETOAST_DATUM(values[0]));
	cache = ivf_get_cache(index);
	vec = ivf_prepare_datum(index, (IvfMetric) cache->meta.metric,
							(IvfElemType) cache->meta.elem_type,
							cache->meta.dims, value, &skip);
	if (!skip)
	{
		uint32		listid;

		/* its list, radius and code describe the vector as stored */
		ivf_round_to_elem((IvfElemType) cache->meta.elem_type, vec,
						  cache->meta.dims);
		listid = ivf_insert_vector(index, cache, vec, heap_tid);

		/* before this can commit: GPU copies of the list are stale */
		ivf_gpu_list_changed(index, listid);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
	return false;
}
