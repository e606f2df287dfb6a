/*-------------------------------------------------------------------------
 *
 * ivfvacuum.c
 *	  VACUUM for ivfflat: remove dead TIDs and compact every group so its
 *	  live vectors stay a dense prefix; freed slots are refilled by later
 *	  inserts into the same list (through the list's insertion hint).
 *
 * Groups never leave their list and pages are never unlinked, so a scan
 * that has just released a page can always follow its next pointer.
 * Compaction moves the last live slot of a group into a dead one.  For a
 * one-page group that is a single atomic WAL record.  A group with segment
 * pages is changed in three steps, all under the head page's exclusive
 * lock: (1) the dead TIDs are invalidated on the head page, (2) the segment
 * pages receive the moved data (only into slots the head now marks dead,
 * which every reader ignores), (3) one record on the head page moves the
 * TIDs and lowers nvec.  A crash between the steps leaves a consistent
 * group that the next VACUUM finishes.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/genam.h"
#include "access/generic_xlog.h"
#include "access/xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "postmaster/autovacuum.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "gpuclient.h"
#include "ivfflat.h"
#include "ivfformat.h"
#include "ivfmaintain.h"
#include "ivfpage.h"

/*
 * Plan the moves that make the live slots [0, nvec) a dense prefix: dst[k]
 * <- src[k] for k < nmoves.  Returns the new nvec.
 */
static uint32
plan_compaction(const ItemPointerData *tids, uint32 nvec, uint32 *dst,
				uint32 *src, uint32 *nmoves)
{
	uint32		n = nvec;
	uint32		i;

	*nmoves = 0;
	for (i = 0; i < n; i++)
	{
		if (ItemPointerIsValid(&tids[i]))
			continue;
		/* drop dead slots from the end */
		while (n > i + 1 && !ItemPointerIsValid(&tids[n - 1]))
			n--;
		if (n > i + 1)
		{
			dst[*nmoves] = i;
			src[*nmoves] = n - 1;
			(*nmoves)++;
			n--;
		}
		else
		{
			n = i;
			break;
		}
	}
	return n;
}

static void
move_floats(Page page, const IvfGeometry *g, bool head, uint32 s,
			const uint32 *dst, const uint32 *src, uint32 nmoves)
{
	uint32		sd = ivf_seg_dims(g, s);
	uint32		k;

	/* raw element bytes: the move is the same for float and half */
	for (k = 0; k < nmoves; k++)
		memcpy(ivf_page_row(page, g, head, dst[k]),
			   ivf_page_row(page, g, head, src[k]), (Size) sd * g->elem_size);
}

/*
 * The code layout: the moves whose destination is on float page f (the
 * registered copy fpage), each reading its source from the current
 * contents of its own float page, which may be another one.  Sources are
 * live slots and destinations dead ones, so no move reads what an
 * earlier one wrote.
 */
static void
move_floats_codes(Page fpage, uint32 f, const Buffer *fbufs,
				  const IvfGeometry *g, const uint32 *dst, const uint32 *src,
				  uint32 nmoves)
{
	uint32		k;

	for (k = 0; k < nmoves; k++)
	{
		Page		sp;

		if (ivf_slot_fpage(g, dst[k]) != f)
			continue;
		sp = BufferGetPage(fbufs[1 + ivf_slot_fpage(g, src[k])]);
		memcpy(ivf_slot_elems(fpage, g, dst[k]), ivf_slot_elems(sp, g, src[k]),
			   (Size) g->dims * g->elem_size);
	}
}

static void
invalidate_dead(Page page, const IvfGeometry *g, const bool *dead, uint32 nvec)
{
	ItemPointerData *tids = ivf_head_tids(page, g);
	uint32		i;

	for (i = 0; i < nvec; i++)
		if (dead[i])
			ItemPointerSetInvalid(&tids[i]);
}

/* the final step on the head page: move TIDs and floats, lower nvec */
static void
finish_head(Page page, const IvfGeometry *g, const uint32 *dst,
			const uint32 *src, uint32 nmoves, uint32 newn)
{
	ItemPointerData *tids = ivf_head_tids(page, g);
	uint32		k;
	uint32		i;

	if (!g->codes)
		move_floats(page, g, true, 0, dst, src, nmoves);
	for (k = 0; k < nmoves; k++)
		tids[dst[k]] = tids[src[k]];
	if (g->codes)
	{
		float	   *errs = ivf_head_errs(page, g);
		float	   *cnorms = ivf_head_cnorms(page, g);
		uint8	   *codes = ivf_head_codes(page, g);

		for (k = 0; k < nmoves; k++)
		{
			errs[dst[k]] = errs[src[k]];
			cnorms[dst[k]] = cnorms[src[k]];
			memcpy(codes + (Size) dst[k] * g->dims,
				   codes + (Size) src[k] * g->dims, g->dims);
		}
	}
	for (i = newn; i < IvfPageGetOpaque(page)->nvec; i++)
		ItemPointerSetInvalid(&tids[i]);
	IvfPageGetOpaque(page)->nvec = newn;
	((PageHeader) page)->pd_lower = ivf_head_lower(g, newn);
}

/*
 * Vacuum one group, whose head is exclusively locked in buf.  Returns the
 * group's nvec afterwards.
 */
static uint32
vacuum_group(Relation index, const IvfGeometry *g, Buffer buf,
			 IndexBulkDeleteCallback callback, void *callback_state,
			 IndexBulkDeleteResult *stats, uint32 *dst, uint32 *src)
{
	Page		page = BufferGetPage(buf);
	IvfPageOpaque opaque = IvfPageGetOpaque(page);
	uint32		nvec = opaque->nvec;
	ItemPointerData *tids = ivf_head_tids(page, g);
	bool	   *dead = palloc0(sizeof(bool) * Max(nvec, 1));
	uint32		ndead = 0;
	uint32		ninvalid = 0;
	uint32		i;
	uint32		newn;
	uint32		nmoves;
	GenericXLogState *state;

	for (i = 0; i < nvec; i++)
	{
		if (!ItemPointerIsValid(&tids[i]))
			ninvalid++;
		else if (callback(&tids[i], callback_state))
		{
			dead[i] = true;
			ndead++;
			stats->tuples_removed += 1;
		}
		else
			stats->num_index_tuples += 1;
	}

	if (ndead == 0 && ninvalid == 0)
	{
		pfree(dead);
		return nvec;
	}

	if (g->nsegments == 1)
	{
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		invalidate_dead(page, g, dead, nvec);
		newn = plan_compaction(ivf_head_tids(page, g), nvec, dst, src, &nmoves);
		finish_head(page, g, dst, src, nmoves, newn);
		GenericXLogFinish(state);
	}
	else
	{
		Buffer		sbufs[IVF_MAX_SEGMENTS];
		uint32		s;

		/* (1) invalidate the dead TIDs */
		if (ndead > 0)
		{
			state = GenericXLogStart(index);
			page = GenericXLogRegisterBuffer(state, buf, 0);
			invalidate_dead(page, g, dead, nvec);
			GenericXLogFinish(state);
			page = BufferGetPage(buf);
			tids = ivf_head_tids(page, g);
		}

		newn = plan_compaction(tids, nvec, dst, src, &nmoves);

		/* (2) the segment pages, into slots the head marks dead */
		for (s = 1; s < g->nsegments; s++)
		{
			sbufs[s] = ReadBuffer(index, ivf_head_segblocks(page)[s - 1]);
			LockBuffer(sbufs[s], BUFFER_LOCK_EXCLUSIVE);
		}
		if (nmoves > 0)
		{
			for (s = 1; s < g->nsegments; s += MAX_GENERIC_XLOG_PAGES)
			{
				uint32		j;

				state = GenericXLogStart(index);
				for (j = s; j < g->nsegments && j < s + MAX_GENERIC_XLOG_PAGES; j++)
				{
					Page		sp = GenericXLogRegisterBuffer(state, sbufs[j], 0);

					if (g->codes)
						move_floats_codes(sp, j - 1, sbufs, g, dst, src, nmoves);
					else
						move_floats(sp, g, false, j, dst, src, nmoves);
				}
				GenericXLogFinish(state);
			}
		}

		/* (3) publish on the head page */
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		finish_head(page, g, dst, src, nmoves, newn);
		GenericXLogFinish(state);

		for (s = 1; s < g->nsegments; s++)
			UnlockReleaseBuffer(sbufs[s]);
	}

	pfree(dead);
	return newn;
}

/* Point the list's insertion hint back at blkno if it still reads 'from'. */
static void
lower_hint(Relation index, const IvfMetaPageData *meta, const IvfGeometry *g,
		   uint32 list, BlockNumber from, BlockNumber blkno)
{
	uint32		slot;
	Buffer		dirbuf = ReadBuffer(index, ivf_directory_block(meta, g, list, &slot));

	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	if (ivf_dir_entry_ptr(BufferGetPage(dirbuf), g, slot)->insert == from)
	{
		GenericXLogState *state = GenericXLogStart(index);
		Page		page = GenericXLogRegisterBuffer(state, dirbuf, 0);

		ivf_dir_entry_ptr(page, g, slot)->insert = blkno;
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(dirbuf);
}

IndexBulkDeleteResult *
ivf_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	IvfMetaPageData meta;
	IvfGeometry g;
	MemoryContext tmp;
	MemoryContext old;
	uint32		*dst;
	uint32		*src;
	uint32		list;

	if (stats == NULL)
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));

	/*
	 * The maintenance lock, waited for: no row may leave a list while the
	 * maintainer copies it, or the copy would keep a TID whose heap line
	 * pointer is about to be reused (src/README "Maintenance: when and
	 * who").  Taken holding no buffer; the meta page is read under it, so
	 * the walk sees every slot the maintainer made.
	 */
	(void) ivf_lock_index(index, IVF_MAINTENANCE_LOCK, ExclusiveLock, false);
	ivf_read_meta(index, &meta);
	ivf_meta_geometry(&meta, &g);
	tmp = AllocSetContextCreate(CurrentMemoryContext, "ivfflat vacuum",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(tmp);
	dst = palloc(sizeof(uint32) * g.vecs_per_group);
	src = palloc(sizeof(uint32) * g.vecs_per_group);

	/* every slot: lists retired but not recycled hold TIDs too */
	for (list = 0; list < meta.nslots; list++)
	{
		IvfListEntry entry;
		uint32		listid;
		BlockNumber blkno;
		BlockNumber first_free = InvalidBlockNumber;
		bool		before_hint = true;

		double		removed_before = stats->tuples_removed;

		ivf_read_list_entry(index, &meta, &g, list, &entry);
		if (ivf_entry_free(&entry))
			continue;
		listid = ivf_entry_list_id(&entry, list);
		blkno = entry.head;
		while (BlockNumberIsValid(blkno))
		{
			Buffer		buf;
			Page		page;
			IvfPageOpaque opaque;
			uint32		n;

			vacuum_delay_point();

			buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
									 info->strategy);
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			page = BufferGetPage(buf);
			opaque = IvfPageGetOpaque(page);
			if ((opaque->flags & IVF_PAGE_LIST) == 0 || opaque->list != listid)
				ereport(ERROR,
						(errcode(ERRCODE_INDEX_CORRUPTED),
						 errmsg("index \"%s\": block %u is not a page of list %u",
								RelationGetRelationName(index), blkno, list),
						 errdetail("The page is labelled 0x%08X, the list's id is 0x%08X.",
								   opaque->list, listid)));

			n = vacuum_group(index, &g, buf, callback, callback_state, stats,
							 dst, src);
			if (n < g.vecs_per_group && !BlockNumberIsValid(first_free) &&
				before_hint && blkno != entry.insert)
				first_free = blkno;
			if (blkno == entry.insert)
				before_hint = false;

			blkno = IvfPageGetOpaque(BufferGetPage(buf))->next;
			UnlockReleaseBuffer(buf);
			MemoryContextReset(tmp);
			dst = palloc(sizeof(uint32) * g.vecs_per_group);
			src = palloc(sizeof(uint32) * g.vecs_per_group);
		}

		/* let inserts refill the earliest group that now has room */
		if (BlockNumberIsValid(first_free))
			lower_hint(index, &meta, &g, list, entry.insert, first_free);

		/*
		 * GPU copies of a list that lost entries are stale.  Until now they
		 * could return TIDs of dead rows only, harmless: the heap reuses
		 * those line pointers after this index pass, not before.
		 */
		if (stats->tuples_removed != removed_before)
			ivf_gpu_list_changed(index, listid);
	}

	ivf_unlock_index(index, IVF_MAINTENANCE_LOCK, ExclusiveLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
	return stats;
}

IndexBulkDeleteResult *
ivf_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	IvfMetaPageData meta;

	if (info->analyze_only)
		return stats;

	/*
	 * Maintenance of an adaptive index's lists (ivfmaintain.c): the splits
	 * its growth calls for.  Autovacuum skips it when another process holds
	 * the maintenance lock; a standby never runs it (nor VACUUM).
	 */
	ivf_read_meta(info->index, &meta);
	if (!RecoveryInProgress() && ivf_maintenance_enabled(info->index, &meta))
	{
		IvfMaintainStats mstats;

		memset(&mstats, 0, sizeof(mstats));
		ivf_maintain(info->index, info->num_heap_tuples,
					 IsAutoVacuumWorkerProcess(), true, &mstats, 0);
		if (mstats.splits > 0)
			ereport(info->message_level,
					(errmsg("index \"%s\": %llu lists split, %llu vectors copied",
							RelationGetRelationName(info->index),
							(unsigned long long) mstats.splits,
							(unsigned long long) mstats.vectors_copied)));
	}

	IndexFreeSpaceMapVacuum(info->index);

	/*
	 * Nothing was deleted, so ambulkdelete did not count the index's
	 * entries.  The table's row count is no estimate of them (NULL vectors
	 * and rows outside a partial index's predicate have none), so report
	 * nothing and leave the index's statistics as they were.
	 */
	if (stats == NULL)
		return NULL;
	stats->num_pages = RelationGetNumberOfBlocks(info->index);
	return stats;
}
