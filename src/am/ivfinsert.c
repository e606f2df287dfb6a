/*-------------------------------------------------------------------------
 *
 * ivfinsert.c
 *	  Insert one vector into an ivfflat index: into the list whose
 *	  centroid is nearest, in the first group with a free slot at or after
 *	  the list's insertion hint, or in a new group appended to the list.
 *
 * Lock order (see src/README): the switch lock (a heavyweight page lock,
 * taken only with no buffer locked, at a closed list), then list pages,
 * then the directory page, then the meta page, then the relation extension
 * lock (which is only ever held while extending and never while waiting
 * for anything else).  A group's segment pages are locked after its head
 * page.
 *
 * Groups frozen by maintenance (IVF_PAGE_FROZEN) take no row: the walk
 * skips them, and a list whose tail is frozen is closed (src/README
 * "Inserts").
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
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
 * One insert: the vector, what was computed from it against the chosen
 * list's centroid, and the list (its slot, its id, the directory entry's
 * place).  Nothing here points into the cache.
 */
typedef struct InsertState
{
	Relation	index;
	IvfMetaPageData meta;		/* the view's meta page (cache copy) */
	IvfGeometry g;
	uint32		viewgen;		/* the view's generation */
	uint32		slot;			/* the chosen list's slot */
	uint32		listid;			/* its id, as its pages carry it */
	BlockNumber dirblk;			/* its directory page */
	uint32		dirslot;		/* its entry there */
	const float *vec;
	ItemPointer tid;
	uint8	   *code;			/* codes: the vector's code, else NULL */
	float		err;
	float		cnorm;
	float		radius;			/* |vec - centroid| */
} InsertState;

/* where a step of the walk left the insert */
typedef enum InsertResult
{
	INSERT_DONE,				/* the vector is in the list */
	INSERT_RESTART,				/* read the entry again and walk again */
	INSERT_RECHOOSE				/* the view is stale: choose again */
} InsertResult;

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
 * Whether the group being added takes the list (entry dirslot of the
 * exclusively locked directory page) past the meta page's split bound, so
 * that the record marks it IVF_LIST_OVERFULL for maintenance: format 4
 * adaptive indexes only, a bound of 0 being unset, and not again once
 * marked.  The bound is read from the meta page itself, not the cache:
 * maintenance rewrites it without a switch.  List and directory pages are
 * locked here, which come before the meta page in the lock order.
 */
static bool
list_overfull(InsertState *is, Page dirpage)
{
	IvfListEntry *e;
	IvfMetaPageData meta;

	if (is->meta.version < 4 || !(is->meta.flags & IVF_META_ADAPTIVE))
		return false;
	e = ivf_dir_entry_v4_ptr(dirpage, &is->g, is->dirslot);
	if (e->flags & IVF_LIST_OVERFULL)
		return false;
	ivf_read_meta(is->index, &meta);
	return meta.split_bound != 0 &&
		(uint64) (e->ngroups + 1) * is->g.vecs_per_group > meta.split_bound;
}

/*
 * Add a new group holding the vector to the list, labelling its pages with
 * the list's id.  tailbuf is the list's last group (exclusively locked:
 * full, or frozen) or InvalidBuffer when the list is empty; dirbuf is the
 * directory page (exclusively locked) with the list's entry.  The record
 * that links the group also writes the entry, and sets IVF_LIST_OVERFULL
 * there when the list has grown past the split bound.
 */
static void
add_group(InsertState *is, Buffer tailbuf, Buffer dirbuf)
{
	Relation	index = is->index;
	const IvfGeometry *g = &is->g;
	Buffer		headbuf;
	Buffer		sbufs[IVF_MAX_SEGMENTS];
	BlockNumber segblk[IVF_MAX_SEGMENTS];
	GenericXLogState *state;
	Page		page;
	IvfListEntryV3 *entry;
	bool		overfull;
	uint32		s;
	uint32		first;

	overfull = list_overfull(is, BufferGetPage(dirbuf));

	headbuf = ivf_new_buffer(index);
	for (s = 1; s < g->nsegments; s++)
	{
		sbufs[s] = ivf_new_buffer(index);
		segblk[s - 1] = BufferGetBlockNumber(sbufs[s]);
	}

	/* segments first: unreachable until the final record links the head */
	first = log_segments(index, g, sbufs, Min(g->nsegments - 1, 1), 0,
						 is->vec, true, is->listid);

	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, headbuf, GENERIC_XLOG_FULL_IMAGE);
	ivf_init_page(page, IVF_PAGE_LIST, is->listid);
	if (g->nsegments > 1)
		memcpy(ivf_head_segblocks(page), segblk,
			   sizeof(BlockNumber) * (g->nsegments - 1));
	write_head(page, g, 0, is->vec, is->tid, is->code, is->err, is->cnorm);

	for (s = first; s < g->nsegments; s++)
	{
		Page		sp = GenericXLogRegisterBuffer(state, sbufs[s],
												   GENERIC_XLOG_FULL_IMAGE);

		ivf_init_page(sp, IVF_PAGE_SEGMENT, is->listid);
		write_segment(sp, g, s, 0, is->vec);
	}

	if (BufferIsValid(tailbuf))
	{
		Page		tp = GenericXLogRegisterBuffer(state, tailbuf, 0);

		IvfPageGetOpaque(tp)->next = BufferGetBlockNumber(headbuf);
	}

	page = GenericXLogRegisterBuffer(state, dirbuf, 0);
	entry = ivf_dir_entry_ptr(page, g, is->dirslot);
	if (!BlockNumberIsValid(entry->head))
		entry->head = BufferGetBlockNumber(headbuf);
	entry->tail = BufferGetBlockNumber(headbuf);
	entry->insert = BufferGetBlockNumber(headbuf);
	entry->ngroups++;
	if (!(entry->radius >= is->radius))
		entry->radius = is->radius;
	if (overfull)
		ivf_dir_entry_v4_ptr(page, g, is->dirslot)->flags |= IVF_LIST_OVERFULL;
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
 * Whether directory entry e still names the list the insert chose and that
 * list is not retired at generation 'now' (>= the view's): else the view is
 * stale (a switch retired the list, or its slot was freed or reused since;
 * a reused slot's new list is born after the view, so it is not live in
 * it).
 */
static bool
entry_is_ours(const InsertState *is, const IvfListEntry *e, uint32 now)
{
	return ivf_entry_list_id(e, is->slot) == is->listid &&
		e->born <= is->viewgen && e->dead > now;
}

static void
read_entry(InsertState *is, IvfListEntry *e)
{
	ivf_read_list_entry(is->index, &is->meta, &is->g, is->slot, e);
}

/*
 * The walk locked block blkno and found it is not a group of the list
 * (labelled 'label', flags 'flags'); every lock is released.  If the
 * entry moved on (the list was retired and recycled, its pages reused),
 * choose again; if it still names the list, the index is corrupt.
 */
static InsertResult
not_our_page(InsertState *is, BlockNumber blkno, uint32 label, uint16 flags)
{
	IvfListEntry e;

	read_entry(is, &e);
	if (!entry_is_ours(is, &e, ivf_read_generation(is->index)))
		return INSERT_RECHOOSE;
	ereport(ERROR,
			(errcode(ERRCODE_INDEX_CORRUPTED),
			 errmsg("index \"%s\": block %u is not a page of list %u",
					RelationGetRelationName(is->index), blkno, is->listid),
			 errdetail("The page is labelled 0x%08X with flags 0x%04X, the list's id is 0x%08X.",
					   label, flags, is->listid)));
	return INSERT_RECHOOSE;		/* keep the compiler quiet */
}

/*
 * Append a group after the list's frozen tail, or create its first group,
 * when the list is closed but live: called holding the switch lock in
 * share mode when a switch was pending (the operation was then abandoned),
 * or for a frozen tail without a dead stamp.  Restart when somebody
 * appended meanwhile.
 */
static InsertResult
append_after_closed(InsertState *is)
{
	IvfListEntry e;
	Buffer		tailbuf;
	Buffer		dirbuf;
	IvfPageOpaque opaque;

	read_entry(is, &e);
	if (!BlockNumberIsValid(e.head))
	{
		IvfListEntry now;

		dirbuf = ReadBuffer(is->index, is->dirblk);
		LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
		ivf_dir_entries_get(BufferGetPage(dirbuf), &is->g, is->dirslot, 1,
							is->slot, &now);
		if (BlockNumberIsValid(now.head))
		{
			UnlockReleaseBuffer(dirbuf);
			return INSERT_RESTART;
		}
		add_group(is, InvalidBuffer, dirbuf);
		UnlockReleaseBuffer(dirbuf);
		return INSERT_DONE;
	}

	tailbuf = ReadBuffer(is->index, e.tail);
	LockBuffer(tailbuf, BUFFER_LOCK_EXCLUSIVE);
	opaque = IvfPageGetOpaque(BufferGetPage(tailbuf));
	if ((opaque->flags & IVF_PAGE_LIST) == 0 || opaque->list != is->listid)
	{
		uint32		label = opaque->list;
		uint16		flags = opaque->flags;

		UnlockReleaseBuffer(tailbuf);
		return not_our_page(is, e.tail, label, flags);
	}
	/* no longer the tail, or unfrozen by a rollback: walk again */
	if (!(opaque->flags & IVF_PAGE_FROZEN) || BlockNumberIsValid(opaque->next))
	{
		UnlockReleaseBuffer(tailbuf);
		return INSERT_RESTART;
	}
	dirbuf = ReadBuffer(is->index, is->dirblk);
	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	add_group(is, tailbuf, dirbuf);
	UnlockReleaseBuffer(dirbuf);
	UnlockReleaseBuffer(tailbuf);
	return INSERT_DONE;
}

/*
 * The list is closed: its tail is frozen, or it has no group and carries a
 * dead stamp (no tail to freeze: the stamp closes it).  No buffer is held.
 * src/README "Inserts": if the generation has reached the dead stamp the
 * list is retired, choose again; else a switch is pending, so wait for it
 * on the switch lock and look again: retired now, choose again; still
 * pending while the lock is held, no maintainer is between its stamps and
 * its switch, so the operation was abandoned and the list is live: append
 * an unfrozen group.
 */
static InsertResult
insert_closed(InsertState *is)
{
	IvfListEntry e;
	InsertResult result;

	read_entry(is, &e);
	if (!entry_is_ours(is, &e, ivf_read_generation(is->index)))
		return INSERT_RECHOOSE;
	if (e.dead == IVF_GEN_NEVER)
	{
		/*
		 * A frozen tail without a stamp, which no step leaves (a rollback
		 * unfreezes before it resets the stamp): no switch can be pending,
		 * so the list is live.
		 */
		return append_after_closed(is);
	}

	(void) ivf_lock_index(is->index, IVF_SWITCH_LOCK, ShareLock, false);
	read_entry(is, &e);
	if (!entry_is_ours(is, &e, ivf_read_generation(is->index)))
		result = INSERT_RECHOOSE;
	else
		result = append_after_closed(is);
	ivf_unlock_index(is->index, IVF_SWITCH_LOCK, ShareLock);
	return result;
}

/* An empty list: its first group, under the directory page's lock. */
static InsertResult
insert_empty(InsertState *is)
{
	Buffer		dirbuf = ReadBuffer(is->index, is->dirblk);
	IvfListEntry e;

	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	ivf_dir_entries_get(BufferGetPage(dirbuf), &is->g, is->dirslot, 1,
						is->slot, &e);
	if (BlockNumberIsValid(e.head))
	{
		/* somebody beat us to it */
		UnlockReleaseBuffer(dirbuf);
		return INSERT_RESTART;
	}
	if (!entry_is_ours(is, &e, is->viewgen))
	{
		UnlockReleaseBuffer(dirbuf);
		return INSERT_RECHOOSE;
	}
	if (e.dead != IVF_GEN_NEVER)
	{
		UnlockReleaseBuffer(dirbuf);
		return insert_closed(is);
	}
	add_group(is, InvalidBuffer, dirbuf);
	UnlockReleaseBuffer(dirbuf);
	return INSERT_DONE;
}

/*
 * Walk the list from the insertion hint of entry e to the first group that
 * is not frozen and has a free slot, and fill it; at a full tail that is
 * not frozen append a group; at a frozen tail see insert_closed.
 */
static InsertResult
insert_walk(InsertState *is, const IvfListEntry *e)
{
	BlockNumber hint = BlockNumberIsValid(e->insert) ? e->insert : e->head;
	BlockNumber blkno;

	if (!BlockNumberIsValid(hint))
		return insert_empty(is);

	blkno = hint;
	for (;;)
	{
		Buffer		buf = ReadBuffer(is->index, blkno);
		Page		page;
		IvfPageOpaque opaque;
		bool		frozen;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		opaque = IvfPageGetOpaque(page);
		if ((opaque->flags & IVF_PAGE_LIST) == 0 || opaque->list != is->listid)
		{
			uint32		label = opaque->list;
			uint16		flags = opaque->flags;

			UnlockReleaseBuffer(buf);
			return not_our_page(is, blkno, label, flags);
		}
		frozen = (opaque->flags & IVF_PAGE_FROZEN) != 0;

		if (!frozen && opaque->nvec < is->g.vecs_per_group)
		{
			/*
			 * The radius only grows, so one read before the lock that
			 * already covers this vector still does; else recheck locked.
			 */
			add_to_group(is->index, &is->g, buf, is->vec, is->tid, is->code,
						 is->err, is->cnorm, !(e->radius >= is->radius),
						 is->dirblk, is->dirslot, is->radius);
			UnlockReleaseBuffer(buf);
			if (blkno != hint)
				advance_hint(is->index, &is->meta, &is->g, is->slot, hint,
							 blkno);
			return INSERT_DONE;
		}

		if (BlockNumberIsValid(opaque->next))
		{
			BlockNumber next = opaque->next;

			UnlockReleaseBuffer(buf);
			blkno = next;
			CHECK_FOR_INTERRUPTS();
			continue;
		}

		if (!frozen)
		{
			/* the tail is full: append a group (lock order: list, directory) */
			Buffer		dirbuf = ReadBuffer(is->index, is->dirblk);

			LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
			add_group(is, buf, dirbuf);
			UnlockReleaseBuffer(dirbuf);
			UnlockReleaseBuffer(buf);
			return INSERT_DONE;
		}

		/* a frozen tail: the list is closed */
		UnlockReleaseBuffer(buf);
		return insert_closed(is);
	}
}

/*
 * Insert one prepared vector (normalised for cosine) with its heap TID
 * into the nearest list of the cache's view.  The cache is used only to
 * choose the list and encode the vector, before any heavyweight lock is
 * taken.  Returns false, having written nothing, when the view turned out
 * stale (the list retired or its slot reused since): the caller refreshes
 * the cache and calls again.  Else *listid is the id of the list the
 * vector went to.
 */
bool
ivf_insert_vector(Relation index, const IvfCache *cache, const float *vec,
				  ItemPointer tid, uint32 *listid)
{
	InsertState is;
	int32		pos;
	IvfListEntry entry;
	const float *centroid;
	const float *lo;
	const float *step;

	memset(&is, 0, sizeof(is));
	is.index = index;
	is.meta = cache->meta;
	is.g = cache->geo;
	is.viewgen = cache->meta.generation;
	is.vec = vec;
	is.tid = tid;

	/* a position among the view's live lists: its slot and list id */
	ivf_nearest_lists(cache, vec, 1, &pos, NULL);
	is.slot = cache->live_slot[pos];
	is.listid = cache->live_id[pos];
	is.dirblk = ivf_directory_block(&is.meta, &is.g, is.slot, &is.dirslot);

	/* buffer locks only: the cache stays valid until the encoding is done */
	read_entry(&is, &entry);
	if (!entry_is_ours(&is, &entry, is.viewgen))
		return false;

	centroid = ivf_slot_centroid(cache, is.slot);
	is.radius = ivf_member_radius(vec, centroid, is.g.dims);
	if (is.g.codes)
	{
		/* the list's codebook, which never changes for its id */
		lo = cache->sq8_lo;
		step = cache->sq8_step;
		if (entry.flags & IVF_LIST_CODEBOOK1)
		{
			if (cache->sq8_lo1 == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INDEX_CORRUPTED),
						 errmsg("index \"%s\": list 0x%08X uses codebook 1, which the index does not have",
								RelationGetRelationName(index), is.listid)));
			lo = cache->sq8_lo1;
			step = cache->sq8_step1;
		}
		is.code = palloc(is.g.dims);
		is.err = ivf_encode_vector(vec, centroid, lo, step, is.g.dims,
								   palloc(sizeof(float) * is.g.dims), is.code,
								   &is.cnorm);
	}
	/* the cache is not used below: the heavyweight locks may free it */

	for (;;)
	{
		switch (insert_walk(&is, &entry))
		{
			case INSERT_DONE:
				*listid = is.listid;
				return true;
			case INSERT_RECHOOSE:
				return false;
			case INSERT_RESTART:
				break;
		}
		read_entry(&is, &entry);
		if (!entry_is_ours(&is, &entry, is.viewgen))
			return false;
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

		/*
		 * Choose in the cache's view; when the walk finds that view stale,
		 * refresh it (ivf_get_cache reads the generation) and choose again.
		 * Staleness always comes with a newer generation (a list leaves a
		 * view only by a switch), so a refresh that finds the same one
		 * means the directory contradicts itself.
		 */
		for (;;)
		{
			uint32		viewgen = cache->meta.generation;

			if (ivf_insert_vector(index, cache, vec, heap_tid, &listid))
				break;
			CHECK_FOR_INTERRUPTS();
			cache = ivf_get_cache(index);
			if (cache->meta.generation == viewgen)
				ereport(ERROR,
						(errcode(ERRCODE_INDEX_CORRUPTED),
						 errmsg("index \"%s\": the list an insert chose at generation %u is not live at it",
								RelationGetRelationName(index), viewgen),
						 errhint("Run ivf_check on the index, and REINDEX it.")));
		}

		/* before this can commit: GPU copies of the list are stale */
		ivf_gpu_list_changed(index, listid);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
	return false;
}
