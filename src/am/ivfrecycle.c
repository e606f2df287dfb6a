/*-------------------------------------------------------------------------
 *
 * ivfrecycle.c
 *	  The two clean-ups of list restructuring (src/README "Self-balancing
 *	  lists"): rolling back an operation a crash or an error abandoned, and
 *	  recycling the lists retired by a switch once no view can read them.
 *
 * Both run with the maintenance lock held (ivfmaintain.c), so the meta
 * page's generation G cannot move meanwhile.  Each step is a GenericXLog
 * record that leaves a state the next run finishes from: a list's pages
 * are marked deleted in chain order with their next links and segment
 * block arrays kept, so a walk interrupted by a crash can walk the chain
 * again; its slot is freed only once every page is marked; the pages go
 * to the free space map last (a crash before that leaves them outside it
 * until REINDEX, which ivf_check counts).
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/generic_xlog.h"
#include "access/transam.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "storage/indexfsm.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "ivfformat.h"
#include "ivfpage.h"
#include "ivfrecycle.h"

/*
 * Change slot 'slot''s directory entry in one record: 'change' is applied
 * to the entry as it is on the page.
 */
typedef void (*EntryChange) (IvfListEntry *e, uint64 arg);

static void
change_entry(Relation index, const IvfMetaPageData *meta,
			 const IvfGeometry *g, uint32 slot, EntryChange change, uint64 arg)
{
	uint32		i;
	Buffer		buf = ReadBuffer(index, ivf_directory_block(meta, g, slot, &i));
	GenericXLogState *state;
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	change(ivf_dir_entry_v4_ptr(page, g, i), arg);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

static void
entry_free(IvfListEntry *e, uint64 arg)
{
	/* the incarnation and the centroid row stay with the slot */
	e->head = e->tail = e->insert = InvalidBlockNumber;
	e->ngroups = 0;
	e->nbuilt = 0;
	e->radius = 0;
	e->born = IVF_GEN_NEVER;
	e->dead = IVF_GEN_NEVER;
	e->retire_xid = 0;
	e->nlive = 0;
	e->flags = 0;
}

static void
entry_undo_retire(IvfListEntry *e, uint64 arg)
{
	e->dead = IVF_GEN_NEVER;
	/* inserts moved the hint past the groups that were frozen */
	e->insert = e->head;
}

static void
entry_set_retire_xid(IvfListEntry *e, uint64 arg)
{
	e->retire_xid = arg;
}

/* Change the meta page in one record. */
typedef void (*MetaChange) (IvfMetaPageData *m, uint64 arg);

static void
change_meta(Relation index, MetaChange change, uint64 arg)
{
	Buffer		buf = ReadBuffer(index, IVF_METAPAGE_BLKNO);
	GenericXLogState *state;
	Page		page;

	(void) ivf_lock_meta_page(index, buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	change(IvfPageGetMeta(page), arg);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

static void
meta_raise_oldest_gen(IvfMetaPageData *m, uint64 arg)
{
	if (m->oldest_gen < (uint32) arg)
		m->oldest_gen = (uint32) arg;
}

static void
meta_count_recycled(IvfMetaPageData *m, uint64 arg)
{
	m->lists_recycled += arg;
}

/*
 * Exclusively lock a page of list 'id' (or one this walk deleted before a
 * crash), checking its label.
 */
static Buffer
lock_list_page(Relation index, BlockNumber blkno, uint32 id, uint16 type)
{
	Buffer		buf = ReadBuffer(index, blkno);
	IvfPageOpaque op;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	op = IvfPageGetOpaque(BufferGetPage(buf));
	if (op->page_id != IVF_PAGE_ID || op->list != id ||
		(op->flags != IVF_PAGE_DELETED && (op->flags & type) == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a page of list 0x%08X",
						RelationGetRelationName(index), blkno, id),
				 errdetail("The page is labelled 0x%08X with flags 0x%04X.",
						   op->list, op->flags)));
	return buf;
}

/*
 * Mark every page of the list whose first group head is 'head' deleted,
 * group by group (its segment or float pages, then its head, at most
 * four pages a record), keeping each page's contents, so that the chain
 * can be walked again after a crash.  The blocks are appended to
 * *blocks (*nblocks of *cap, grown as needed) for the free space map.
 */
static void
delete_list_pages(Relation index, const IvfGeometry *g, BlockNumber head,
				  uint32 id, BlockNumber **blocks, uint32 *nblocks,
				  uint32 *cap)
{
	BlockNumber blkno = head;

	while (BlockNumberIsValid(blkno))
	{
		Buffer		bufs[IVF_MAX_SEGMENTS];
		Buffer		hbuf = lock_list_page(index, blkno, id, IVF_PAGE_LIST);
		Page		hpage = BufferGetPage(hbuf);
		BlockNumber next = IvfPageGetOpaque(hpage)->next;
		uint32		n = 0;
		uint32		done = 0;
		uint32		s;

		CHECK_FOR_INTERRUPTS();
		for (s = 1; s < g->nsegments; s++)
			bufs[n++] = lock_list_page(index, ivf_head_segblocks(hpage)[s - 1],
									   id, IVF_PAGE_SEGMENT);
		bufs[n++] = hbuf;
		while (done < n)
		{
			GenericXLogState *state = GenericXLogStart(index);
			uint32		k = Min(n - done, MAX_GENERIC_XLOG_PAGES);
			uint32		j;

			for (j = 0; j < k; j++)
			{
				Page		p = GenericXLogRegisterBuffer(state, bufs[done + j], 0);

				IvfPageGetOpaque(p)->flags = IVF_PAGE_DELETED;
			}
			GenericXLogFinish(state);
			done += k;
		}
		for (s = 0; s < n; s++)
		{
			if (*nblocks == *cap)
			{
				*cap *= 2;
				*blocks = repalloc(*blocks, sizeof(BlockNumber) * *cap);
			}
			(*blocks)[(*nblocks)++] = BufferGetBlockNumber(bufs[s]);
			UnlockReleaseBuffer(bufs[s]);
		}
		blkno = next;
	}
}

/* Clear IVF_PAGE_FROZEN on every group head of the list, a record each. */
static void
unfreeze_list(Relation index, BlockNumber head, uint32 id)
{
	BlockNumber blkno = head;

	while (BlockNumberIsValid(blkno))
	{
		Buffer		buf = lock_list_page(index, blkno, id, IVF_PAGE_LIST);
		IvfPageOpaque op = IvfPageGetOpaque(BufferGetPage(buf));
		BlockNumber next = op->next;

		CHECK_FOR_INTERRUPTS();
		if (op->flags & IVF_PAGE_FROZEN)
		{
			GenericXLogState *state = GenericXLogStart(index);
			Page		p = GenericXLogRegisterBuffer(state, buf, 0);

			IvfPageGetOpaque(p)->flags &= ~IVF_PAGE_FROZEN;
			GenericXLogFinish(state);
		}
		UnlockReleaseBuffer(buf);
		blkno = next;
	}
}

/* the directory entries of every slot, with the meta page they go with */
static IvfListEntry *
read_slots(Relation index, IvfMetaPageData *meta, IvfGeometry *g)
{
	IvfListEntry *slots;

	ivf_read_meta(index, meta);
	ivf_meta_geometry(meta, g);
	slots = palloc(sizeof(IvfListEntry) * Max(meta->nslots, 1));
	ivf_read_entries(index, meta, g, slots);
	return slots;
}

static void
free_pages(Relation index, const BlockNumber *blocks, uint32 n)
{
	uint32		i;

	for (i = 0; i < n; i++)
		RecordFreeIndexPage(index, blocks[i]);
	if (n > 0)
		IndexFreeSpaceMapVacuum(index);
}

/*
 * Step 0 of every maintenance run (src/README "Crash safety"): undo what an
 * operation that never reached its switch left.  Entries stamped born
 * above the meta page's generation are lists under construction that no
 * view includes: their pages are deleted and their slots freed.  Entries
 * stamped dead above it are the lists that operation was replacing: their
 * frozen groups are unfrozen first, then the stamp is reset, so a crash in
 * between leaves the stamp, and the next run finishes.  Returns the lists
 * rolled back.  Caller holds the maintenance lock; format 4 only.
 */
uint32
ivf_rollback_abandoned(Relation index)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "ivf rollback",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	IvfMetaPageData meta;
	IvfGeometry g;
	IvfListEntry *slots = read_slots(index, &meta, &g);
	uint32		G = meta.generation;
	uint32		cap = 64;
	uint32		nblocks = 0;
	BlockNumber *blocks = palloc(sizeof(BlockNumber) * cap);
	uint32		n = 0;
	uint32		s;

	Assert(meta.version >= 4);
	for (s = 0; s < meta.nslots; s++)
	{
		IvfListEntry *e = &slots[s];
		uint32		id = ivf_entry_list_id(e, s);

		if (ivf_entry_free(e))
			continue;
		if (e->born > G)
		{
			delete_list_pages(index, &g, e->head, id, &blocks, &nblocks, &cap);
			change_entry(index, &meta, &g, s, entry_free, 0);
			n++;
		}
		else if (e->dead != IVF_GEN_NEVER && e->dead > G)
		{
			unfreeze_list(index, e->head, id);
			change_entry(index, &meta, &g, s, entry_undo_retire, 0);
			n++;
		}
	}
	free_pages(index, blocks, nblocks);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return n;
}

/*
 * The oldest xmin a snapshot may hold now, for lists whose retire_xid the
 * horizon test cannot clear because no transaction id was assigned since
 * (src/README "Recycling"): the oldest of the proc array's xmins (prepared
 * transactions included) and the replication slots'; InvalidTransactionId
 * when none is set.  A backend holding a view read it under a snapshot
 * taken before the switch, whose xmin is at most the next transaction id
 * then, so at most retire_xid: a retire_xid before this is past them all.
 * self_idle: this backend holds no view (the VACUUM that runs the
 * maintenance), so its own xmin does not count.
 */
static TransactionId
oldest_snapshot_xmin(bool self_idle)
{
	TransactionId oldest = InvalidTransactionId;
	int			i;

	LWLockAcquire(ProcArrayLock, LW_SHARED);
	for (i = 0; i < (int) ProcGlobal->allProcCount; i++)
	{
		TransactionId xmin = ivf_proc_xmin(i);

		if (self_idle && &ProcGlobal->allProcs[i] == MyProc)
			continue;
		if (TransactionIdIsValid(xmin) &&
			(!TransactionIdIsValid(oldest) || TransactionIdPrecedes(xmin, oldest)))
			oldest = xmin;
	}
	LWLockRelease(ProcArrayLock);

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (i = 0; i < max_replication_slots; i++)
	{
		ReplicationSlot *slot = &ReplicationSlotCtl->replication_slots[i];
		TransactionId xmin;

		if (!slot->in_use)
			continue;
		SpinLockAcquire(&slot->mutex);
		xmin = slot->effective_xmin;
		SpinLockRelease(&slot->mutex);
		if (TransactionIdIsValid(xmin) &&
			(!TransactionIdIsValid(oldest) || TransactionIdPrecedes(xmin, oldest)))
			oldest = xmin;
	}
	LWLockRelease(ReplicationSlotControlLock);
	return oldest;
}

/*
 * Recycle the retired lists no view can still read (src/README
 * "Recycling"): a list retired by the switch to generation d, stamped with
 * retire_xid after that switch, is read only by views older than d, each
 * held by a backend whose snapshot predates retire_xid; once retire_xid is
 * behind every snapshot (the horizon test nbtree applies to deleted
 * pages, or oldest_snapshot_xmin when no transaction id came since), no
 * such backend is left.  A retired list without its stamp (a
 * crash between the switch and the stamp) is stamped now, later than
 * needed, which only delays it.  In order: one record raises the meta
 * page's oldest_gen (so a standby's view older than it knows it is void
 * before anything of it changes), the lists' pages are marked deleted,
 * their slots freed, the pages given to the free space map.  Returns the
 * lists recycled.  Caller holds the maintenance lock; format 4 only.
 */
uint32
ivf_recycle_retired(Relation index, bool self_idle)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "ivf recycle",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	IvfMetaPageData meta;
	IvfGeometry g;
	IvfListEntry *slots = read_slots(index, &meta, &g);
	uint32		G = meta.generation;
	uint32	   *ready = palloc(sizeof(uint32) * Max(meta.nslots, 1));
	uint32		nready = 0;
	uint32		void_below = 0;
	uint32		cap = 64;
	uint32		nblocks = 0;
	BlockNumber *blocks = palloc(sizeof(BlockNumber) * cap);
	TransactionId oldest = InvalidTransactionId;
	bool		have_oldest = false;
	uint32		s;

	Assert(meta.version >= 4);
	for (s = 0; s < meta.nslots; s++)
	{
		IvfListEntry *e = &slots[s];

		if (ivf_entry_free(e) || e->dead == IVF_GEN_NEVER || e->dead > G)
			continue;
		if (e->retire_xid == 0)
		{
			FullTransactionId now = ReadNextFullTransactionId();

			change_entry(index, &meta, &g, s, entry_set_retire_xid,
						 U64FromFullTransactionId(now));
			continue;
		}
		if (!ivf_full_xid_recyclable(FullTransactionIdFromU64(e->retire_xid)))
		{
			TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(e->retire_xid));

			if (!have_oldest)
			{
				oldest = oldest_snapshot_xmin(self_idle);
				have_oldest = true;
			}
			if (TransactionIdIsValid(oldest) && !TransactionIdPrecedes(xid, oldest))
				continue;
		}
		ready[nready++] = s;
		void_below = Max(void_below, e->dead);
	}

	if (nready > 0)
	{
		uint32		i;

		change_meta(index, meta_raise_oldest_gen, void_below);
		for (i = 0; i < nready; i++)
		{
			IvfListEntry *e = &slots[ready[i]];

			delete_list_pages(index, &g, e->head, ivf_entry_list_id(e, ready[i]),
							  &blocks, &nblocks, &cap);
			change_entry(index, &meta, &g, ready[i], entry_free, 0);
		}
		free_pages(index, blocks, nblocks);
		change_meta(index, meta_count_recycled, nready);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return nready;
}
