/*-------------------------------------------------------------------------
 *
 * ivfmaintain.c
 *	  The maintainer of an adaptive index's lists: every list above the
 *	  split bound is replaced by two or more new lists built beside it, and
 *	  one WAL record on the meta page switches every reader to them
 *	  (src/README "Self-balancing lists", "Split, step by step").  Run by
 *	  amvacuumcleanup and by ivf_rebalance().
 *
 * One operation splits one list L at generation G:
 *
 *	1 plan    read L (share locks, as a scan), k-means on a sample of it
 *	2         take the switch lock
 *	3 stamp   a slot for each new list (born G + 1, its centroid row), then
 *	          dead = G + 1 in L's entry
 *	4 copy    L group by group: lock the head exclusively, route its live
 *	          rows to the nearest new list, freeze the head; stop before the
 *	          tail
 *	4b close  the rest of L, the tail included, frozen while locked
 *	5 switch  one record on the meta page: generation G + 1
 *	6         retire_xid in L's entry
 *	7         GPU list versions of L and the new lists
 *
 * A new list's rows wait in memory until they fill a group (or the close),
 * which is then written as full page images: its float or segment pages
 * first, then one record with its head, the link from the previous group
 * and the list's directory entry.  Nobody else locks a new list's pages: no
 * view holds it before the switch.  No row can leave L meanwhile
 * (ambulkdelete waits for the maintenance lock) and no row enters a frozen
 * group (inserts skip them, and wait at a closed tail), so at the switch
 * the new lists hold exactly L's rows.
 *
 * Lock order (src/README "Locking order"): the maintenance lock, the
 * switch lock (heavyweight, taken holding no buffer), then group pages of
 * L, group pages of the new lists, directory pages, centroid pages, the
 * meta page; GenericXLog registration follows it.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "commands/vacuum.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "gpuclient.h"
#include "ivfflat.h"
#include "ivfformat.h"
#include "ivfmaintain.h"
#include "ivfmetric.h"
#include "ivfoptions.h"
#include "ivfpage.h"
#include "ivfquantizer.h"
#include "ivfrecycle.h"
#include "ivfsettings.h"
#include "ivfsql.h"
#include "kmeans.h"
#include "listscan.h"

/* k of one split: at most this many new lists (src/README "The bound") */
#define IVF_SPLIT_MAX_K		256
/* reassignment (LIRE): the split list's nearest lists examined */
#define IVF_LIRE_NEIGHBOURS	8
/* lists read to choose them from */
#define IVF_LIRE_CANDIDATES	(2 * IVF_LIRE_NEIGHBOURS)
/* a list is re-homed when its radius passes this times the median */
#define IVF_REHOME_RADIUS	1.25f
/* passes over the lists above the bound, in one round */
#define IVF_SPLIT_PASSES	4
/* rounds of splits, re-homing and merges, in one run */
#define IVF_ROUNDS			3

/* what replace_lists does, for the counters of its switch record */
typedef enum IvfListOp
{
	IVF_OP_SPLIT,
	IVF_OP_MERGE,
	IVF_OP_REHOME
} IvfListOp;
/* the target list size is at least this */
#define IVF_MIN_TARGET_SIZE	64

char	   *ivf_debug_maintenance_pause = NULL;

/* a list under construction */
typedef struct NewList
{
	uint32		slot;
	uint32		id;
	const float *centroid;
	ItemPointerData *tids;		/* rows waiting for a group */
	float	   *vecs;
	uint32		npending;
	BlockNumber tail;			/* last group written, or invalid */
	uint64		nrows;
	float		radius;			/* over every row routed here */
} NewList;

typedef struct Maint
{
	Relation	index;
	IvfMetaPageData meta;		/* kept current: only the maintainer changes
								 * what it reads of it */
	IvfGeometry g;
	IvfMetric	metric;
	uint32		d;
	uint32		target_size;	/* this run's bounds, for the switch record */
	uint32		split_bound;
	uint32		merge_bound;
	float	   *sq8_lo;			/* the codebook new lists are encoded with */
	float	   *sq8_step;
	uint16		new_flags;		/* IVF_LIST_CODEBOOK1 when that is codebook 1 */

	/*
	 * An index built without rows has an untrained codebook 0 (all zero):
	 * the first split trains codebook 1 from its sample's residuals against
	 * the new centroids, writes it, and encodes from then on with it
	 * (src/README "Codes").  cb1: its lo and step rows.
	 */
	bool		train_cb1;
	float	   *cb1;
	MemoryContext opcxt;		/* one operation */
	MemoryContext tmpcxt;		/* one group */

	/* free slots (recycled or rolled back), reused before new ones */
	uint32	   *free_slots;
	uint32		nfree;
	uint32		free_next;

	/*
	 * No view of this backend can be open (VACUUM runs the maintenance):
	 * each operation recycles what no other snapshot can still read, so
	 * that the next one reuses its pages and slots.
	 */
	bool		self_idle;
	uint64		recycled;
	MemoryContext runcxt;		/* the run */

	/* the operation */
	uint32		k;
	float	   *centroids;		/* k x d */
	float	   *cnorms;
	NewList    *nl;
	void	   *aws;			/* ivf_assign's workspace */
	uint64		copied;
	uint64		reassigned;		/* rows of a rewritten neighbour that moved */
	int32		origin_new;		/* while copying a rewritten neighbour: its
								 * kept list among the new ones, else -1 */
	bool		copy_paused;

	/* one group's live rows */
	float	   *rows;
	ItemPointerData *rtids;
	int32	   *assign;
	uint32	   *live;
	float	   *scratch;
	char	   *pages;			/* nsegments page images of a new group */
} Maint;

#define LOCAL_PAGE(ms, s) ((Page) ((ms)->pages + (Size) (s) * BLCKSZ))

static bool rehome_list(Maint *ms, uint32 slot, const IvfListEntry *e,
						bool dissolve, IvfMaintainStats *out);

/*
 * ivf.debug_maintenance_pause: park at 'point' until the test releases the
 * advisory lock IVF_MAINTENANCE_PAUSE_KEY.  Called holding no buffer lock.
 */
static void
maintenance_pause(Relation index, const char *point)
{
	if (ivf_debug_maintenance_pause == NULL ||
		strcmp(ivf_debug_maintenance_pause, point) != 0)
		return;
	elog(LOG, "ivf maintenance of index \"%s\" paused at \"%s\"",
		 RelationGetRelationName(index), point);
	DirectFunctionCall1(pg_advisory_lock_shared_int8,
						Int64GetDatum(IVF_MAINTENANCE_PAUSE_KEY));
	DirectFunctionCall1(pg_advisory_unlock_shared_int8,
						Int64GetDatum(IVF_MAINTENANCE_PAUSE_KEY));
}

static void
kmeans_check(void *arg, int iter, int niter, double objective)
{
	CHECK_FOR_INTERRUPTS();
}

/* the meta page, exclusively locked */
static Buffer
lock_meta_exclusive(Relation index)
{
	Buffer		buf = ReadBuffer(index, IVF_METAPAGE_BLKNO);

	(void) ivf_lock_meta_page(index, buf, BUFFER_LOCK_EXCLUSIVE);
	return buf;
}

/*
 * Group head blkno of list 'id', locked in 'mode', after checking that it
 * is one.
 */
static Buffer
lock_group_head(Maint *ms, BlockNumber blkno, uint32 id, int mode)
{
	Buffer		buf = ReadBuffer(ms->index, blkno);
	IvfPageOpaque opaque;

	LockBuffer(buf, mode);
	opaque = IvfPageGetOpaque(BufferGetPage(buf));
	if ((opaque->flags & IVF_PAGE_LIST) == 0 || opaque->list != id)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a group of list 0x%08X",
						RelationGetRelationName(ms->index), blkno, id),
				 errdetail("The page has flags 0x%04X and list id 0x%08X.",
						   opaque->flags, opaque->list)));
	return buf;
}

/*
 * The live rows of a locked group head (share or exclusive): vectors,
 * widened to float, into ms->rows and their TIDs into ms->rtids; the
 * group's float or segment pages are share-locked one at a time.
 */
static uint32
read_group(Maint *ms, Page head)
{
	const IvfGeometry *g = &ms->g;
	uint32		nvec = IvfPageGetOpaque(head)->nvec;
	ItemPointerData *tids = ivf_head_tids(head, g);
	uint32		n = 0;
	uint32		i;

	if (nvec > g->vecs_per_group)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": a group holds %u slots of %u",
						RelationGetRelationName(ms->index), nvec,
						g->vecs_per_group)));
	for (i = 0; i < nvec; i++)
	{
		ms->live[i] = ItemPointerIsValid(&tids[i]) ? n++ : PG_UINT32_MAX;
		if (ms->live[i] != PG_UINT32_MAX)
			ms->rtids[ms->live[i]] = tids[i];
	}
	if (n == 0)
		return 0;

	if (g->codes)
	{
		uint32		nf = (nvec + g->floats_per_page - 1) / g->floats_per_page;
		uint32		f;

		for (f = 0; f < nf; f++)
		{
			Buffer		fbuf = ReadBuffer(ms->index, ivf_head_segblocks(head)[f]);
			Page		fpage;

			LockBuffer(fbuf, BUFFER_LOCK_SHARE);
			fpage = BufferGetPage(fbuf);
			if ((IvfPageGetOpaque(fpage)->flags & IVF_PAGE_SEGMENT) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INDEX_CORRUPTED),
						 errmsg("index \"%s\": block %u is not a float page",
								RelationGetRelationName(ms->index),
								BufferGetBlockNumber(fbuf))));
			for (i = f * g->floats_per_page;
				 i < Min(nvec, (f + 1) * g->floats_per_page); i++)
				if (ms->live[i] != PG_UINT32_MAX)
					ivf_load_elems(g->elem, ms->rows + (Size) ms->live[i] * ms->d,
								   ivf_slot_elems(fpage, g, i), ms->d);
			UnlockReleaseBuffer(fbuf);
		}
	}
	else
	{
		uint32		s;

		for (s = 0; s < g->nsegments; s++)
		{
			Buffer		sbuf = InvalidBuffer;
			Page		src = head;

			if (s > 0)
			{
				sbuf = ReadBuffer(ms->index, ivf_head_segblocks(head)[s - 1]);
				LockBuffer(sbuf, BUFFER_LOCK_SHARE);
				src = BufferGetPage(sbuf);
				if ((IvfPageGetOpaque(src)->flags & IVF_PAGE_SEGMENT) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INDEX_CORRUPTED),
							 errmsg("index \"%s\": block %u is not a segment page",
									RelationGetRelationName(ms->index),
									BufferGetBlockNumber(sbuf))));
			}
			for (i = 0; i < nvec; i++)
				if (ms->live[i] != PG_UINT32_MAX)
					ivf_load_elems(g->elem,
								   ms->rows + (Size) ms->live[i] * ms->d +
								   (Size) s * g->seg_dims,
								   ivf_page_row(src, g, s == 0, i),
								   ivf_seg_dims(g, s));
			if (BufferIsValid(sbuf))
				UnlockReleaseBuffer(sbuf);
		}
	}
	return n;
}

/*
 * The live rows of the group at *blkno of list 'id', read as a scan reads
 * (share locks), into ms->rows / ms->rtids; *blkno becomes the next
 * group's head.  Returns the rows.
 */
static uint32
read_next_group(Maint *ms, BlockNumber *blkno, uint32 id)
{
	Buffer		buf;
	uint32		n;

	CHECK_FOR_INTERRUPTS();
	vacuum_delay_point();
	buf = lock_group_head(ms, *blkno, id, BUFFER_LOCK_SHARE);
	n = read_group(ms, BufferGetPage(buf));
	*blkno = IvfPageGetOpaque(BufferGetPage(buf))->next;
	UnlockReleaseBuffer(buf);
	return n;
}

/* ------------------------------------------------------------ new lists */

/* put row i of list nl's pending rows into the local group images */
static void
local_group_put(Maint *ms, NewList *nl, uint32 i)
{
	const IvfGeometry *g = &ms->g;
	Page		page = LOCAL_PAGE(ms, 0);
	IvfPageOpaque opaque = IvfPageGetOpaque(page);
	uint32		slot = opaque->nvec;
	const float *vec = nl->vecs + (Size) i * ms->d;
	uint32		s;

	if (g->codes)
	{
		Page		fp = LOCAL_PAGE(ms, 1 + ivf_slot_fpage(g, slot));

		/* the code against the new list's centroid (src/README "Codes") */
		ivf_head_errs(page, g)[slot] =
			ivf_encode_vector(vec, nl->centroid, ms->sq8_lo, ms->sq8_step,
							  ms->d, ms->scratch,
							  ivf_head_codes(page, g) + (Size) slot * ms->d,
							  &ivf_head_cnorms(page, g)[slot]);
		ivf_head_tids(page, g)[slot] = nl->tids[i];
		opaque->nvec = slot + 1;
		((PageHeader) page)->pd_lower = ivf_head_lower(g, slot + 1);
		ivf_store_elems(g->elem, ivf_slot_elems(fp, g, slot), vec, ms->d);
		((PageHeader) fp)->pd_lower = ivf_slot_elems(fp, g, slot) +
			ms->d * g->elem_size - (char *) fp;
		return;
	}

	ivf_store_elems(g->elem, ivf_page_row(page, g, true, slot), vec,
					ivf_seg_dims(g, 0));
	ivf_head_tids(page, g)[slot] = nl->tids[i];
	opaque->nvec = slot + 1;
	((PageHeader) page)->pd_lower += g->seg_dims * g->elem_size;
	for (s = 1; s < g->nsegments; s++)
	{
		Page		sp = LOCAL_PAGE(ms, s);

		ivf_store_elems(g->elem, ivf_page_row(sp, g, false, slot),
						vec + (Size) s * g->seg_dims, ivf_seg_dims(g, s));
		((PageHeader) sp)->pd_lower += g->seg_dims * g->elem_size;
	}
}

/*
 * Write list nl's pending rows as a new group at the end of its chain.
 * The group's float or segment pages go first, as full images, up to four
 * a record (unreachable until linked); then one record holds the head
 * (full image), the previous group's next link and the list's directory
 * entry, which publishes them.  Called holding at most the head of the
 * old group being copied (group pages of a live list come first in the
 * lock order).
 */
static void
write_new_group(Maint *ms, NewList *nl)
{
	const IvfGeometry *g = &ms->g;
	Relation	index = ms->index;
	Buffer		bufs[IVF_MAX_SEGMENTS];
	Buffer		prevbuf = InvalidBuffer;
	Buffer		dirbuf;
	BlockNumber dirblk;
	uint32		dslot;
	GenericXLogState *state;
	Page		page;
	IvfListEntry *e;
	uint32		s;
	uint32		i;

	if (nl->npending == 0)
		return;

	for (s = 0; s < g->nsegments; s++)
	{
		Page		lp = LOCAL_PAGE(ms, s);

		bufs[s] = ivf_new_buffer(index);
		ivf_init_page(lp, s == 0 ? IVF_PAGE_LIST : IVF_PAGE_SEGMENT, nl->id);
		((PageHeader) lp)->pd_lower = (s == 0) ? ivf_head_lower(g, 0) : g->seg_floats_off;
		if (s > 0)
			ivf_head_segblocks(LOCAL_PAGE(ms, 0))[s - 1] = BufferGetBlockNumber(bufs[s]);
	}
	for (i = 0; i < nl->npending; i++)
		local_group_put(ms, nl, i);

	for (s = 1; s < g->nsegments;)
	{
		uint32		n = Min(MAX_GENERIC_XLOG_PAGES, g->nsegments - s);
		uint32		j;

		state = GenericXLogStart(index);
		for (j = 0; j < n; j++)
		{
			page = GenericXLogRegisterBuffer(state, bufs[s + j],
											 GENERIC_XLOG_FULL_IMAGE);
			memcpy(page, LOCAL_PAGE(ms, s + j), BLCKSZ);
		}
		GenericXLogFinish(state);
		s += n;
	}

	if (BlockNumberIsValid(nl->tail))
	{
		prevbuf = ReadBuffer(index, nl->tail);
		LockBuffer(prevbuf, BUFFER_LOCK_EXCLUSIVE);
	}
	dirblk = ivf_directory_block(&ms->meta, g, nl->slot, &dslot);
	dirbuf = ReadBuffer(index, dirblk);
	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);

	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, bufs[0], GENERIC_XLOG_FULL_IMAGE);
	memcpy(page, LOCAL_PAGE(ms, 0), BLCKSZ);
	if (BufferIsValid(prevbuf))
	{
		page = GenericXLogRegisterBuffer(state, prevbuf, 0);
		IvfPageGetOpaque(page)->next = BufferGetBlockNumber(bufs[0]);
	}
	page = GenericXLogRegisterBuffer(state, dirbuf, 0);
	e = ivf_dir_entry_v4_ptr(page, g, dslot);
	if (!BlockNumberIsValid(e->head))
		e->head = BufferGetBlockNumber(bufs[0]);
	e->tail = BufferGetBlockNumber(bufs[0]);
	e->insert = BufferGetBlockNumber(bufs[0]);
	e->ngroups++;
	e->nbuilt += nl->npending;
	e->nlive += nl->npending;
	if (!(e->radius >= nl->radius))
		e->radius = nl->radius;
	GenericXLogFinish(state);

	UnlockReleaseBuffer(dirbuf);
	if (BufferIsValid(prevbuf))
		UnlockReleaseBuffer(prevbuf);
	for (s = 0; s < g->nsegments; s++)
		UnlockReleaseBuffer(bufs[s]);

	nl->tail = BufferGetBlockNumber(bufs[0]);
	nl->npending = 0;
}

/*
 * Route the rows read from one group (ms->rows, ms->rtids) to the nearest
 * new list, exactly as an insert chooses (ivf_assign: ties to the lower
 * number); full groups are written at once.
 */
static void
route_rows(Maint *ms, uint32 n)
{
	uint32		i;

	if (n == 0)
		return;
	ivf_assign(ms->rows, n, ms->centroids, ms->cnorms, ms->k, ms->d,
			   ms->metric == IVF_METRIC_L2 ? IVF_KM_L2 : IVF_KM_IP,
			   ms->aws, ms->assign, NULL, NULL, NULL);
	for (i = 0; i < n; i++)
	{
		NewList    *nl = &ms->nl[ms->assign[i]];
		const float *vec = ms->rows + (Size) i * ms->d;
		float		r = ivf_member_radius(vec, nl->centroid, ms->d);

		if (ms->origin_new >= 0 && ms->assign[i] != ms->origin_new)
			ms->reassigned++;

		memcpy(nl->vecs + (Size) nl->npending * ms->d, vec, sizeof(float) * ms->d);
		nl->tids[nl->npending++] = ms->rtids[i];
		nl->nrows++;
		if (!(nl->radius >= r))
			nl->radius = r;
		if (nl->npending == ms->g.vecs_per_group)
			write_new_group(ms, nl);
	}
	ms->copied += n;
}

/* ------------------------------------------------------------- stamps */

/* the free slots of entries, reusable: a centroid row and an incarnation left */
static void
load_free_slots(Maint *ms, const IvfListEntry *entries)
{
	ms->free_slots = MemoryContextAlloc(ms->runcxt, sizeof(uint32) * Max(ms->meta.nslots, 1));
	ms->nfree = 0;
	ms->free_next = 0;
	for (uint32 s = 0; s < ms->meta.nslots; s++)
	{
		const IvfListEntry *e = &entries[s];

		if (ivf_entry_free(e) && e->incarnation < PG_UINT16_MAX &&
			BlockNumberIsValid(e->cblock))
			ms->free_slots[ms->nfree++] = s;
	}
}

/*
 * After an operation, with self_idle: recycle what it and earlier ones
 * retired once no snapshot can read it, and take the freed slots.
 */
static void
recycle_now(Maint *ms)
{
	uint32		n = ivf_recycle_retired(ms->index, true);
	IvfListEntry *entries;

	if (n == 0)
		return;
	ms->recycled += n;
	ivf_read_meta(ms->index, &ms->meta);
	entries = palloc(sizeof(IvfListEntry) * Max(ms->meta.nslots, 1));
	ivf_read_entries(ms->index, &ms->meta, &ms->g, entries);
	load_free_slots(ms, entries);
	pfree(entries);
}

/*
 * Add a directory page: one record with the previous last page's link, the
 * new page (full image) and the meta page's dir_blocks.
 */
static void
add_directory_page(Maint *ms)
{
	Relation	index = ms->index;
	Buffer		newbuf;
	Buffer		prevbuf;
	Buffer		metabuf;
	GenericXLogState *state;
	Page		page;
	IvfMetaPageData *m;
	uint32		n = ms->meta.directory_npages;

	if (n >= IVF_MAX_DIR_PAGES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("index \"%s\" has no room for another list slot",
						RelationGetRelationName(index)),
				 errdetail("Its %d directory pages are full.", IVF_MAX_DIR_PAGES),
				 errhint("REINDEX the index.")));

	/* a new page: nobody else can be waiting for it */
	newbuf = ivf_new_buffer(index);
	prevbuf = ReadBuffer(index, ms->meta.dir_blocks[n - 1]);
	LockBuffer(prevbuf, BUFFER_LOCK_EXCLUSIVE);
	metabuf = lock_meta_exclusive(index);

	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, prevbuf, 0);
	IvfPageGetOpaque(page)->next = BufferGetBlockNumber(newbuf);
	page = GenericXLogRegisterBuffer(state, newbuf, GENERIC_XLOG_FULL_IMAGE);
	ivf_init_page(page, IVF_PAGE_DIRECTORY, 0);
	page = GenericXLogRegisterBuffer(state, metabuf, 0);
	m = IvfPageGetMeta(page);
	m->dir_blocks[n] = BufferGetBlockNumber(newbuf);
	m->directory_npages = n + 1;
	GenericXLogFinish(state);

	memcpy(&ms->meta, IvfPageGetMeta(BufferGetPage(metabuf)), sizeof(IvfMetaPageData));
	UnlockReleaseBuffer(metabuf);
	UnlockReleaseBuffer(prevbuf);
	UnlockReleaseBuffer(newbuf);
}

/*
 * Overwrite the centroid row of a free slot (its cblock, crow), one record
 * per page: no reader reads a free slot's row (caches skip free slots, and
 * recycling freed it only once no view could include it), so the entry
 * that makes the slot live again can follow in a record of its own.
 */
static void
write_centroid_row(Maint *ms, BlockNumber blkno, uint32 crow,
				   const float *centroid)
{
	const IvfGeometry *g = &ms->g;
	uint32		d = ms->d;
	uint32		done = 0;

	while (done < d)
	{
		Buffer		buf;
		GenericXLogState *state;
		Page		page;
		IvfPageOpaque opaque;
		uint32		off = g->centroid_rows_per_page > 0 ? crow * d : 0;
		uint32		n;

		if (!BlockNumberIsValid(blkno))
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\": a free list slot's centroid row ends after %u of %u floats",
							RelationGetRelationName(ms->index), done, d)));
		buf = ReadBuffer(ms->index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		opaque = IvfPageGetOpaque(BufferGetPage(buf));
		n = g->centroid_rows_per_page > 0 ? d : Min(d - done, opaque->nvec);
		if ((opaque->flags & IVF_PAGE_CENTROID) == 0 || n == 0 ||
			off + n > opaque->nvec)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\": block %u does not hold the centroid row of a free list slot",
							RelationGetRelationName(ms->index), blkno)));
		state = GenericXLogStart(ms->index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		memcpy((float *) PageGetContents(page) + off, centroid + done,
			   n * sizeof(float));
		GenericXLogFinish(state);
		blkno = opaque->next;
		UnlockReleaseBuffer(buf);
		done += n;
	}
}

/*
 * Step 3 for one new list in a free slot (ms->free_slots): its centroid
 * row written over the old one, then one record on the directory page
 * makes it a list under construction, born = 'born', with the next
 * incarnation (a new list id: pages, GPU versions and views of the slot's
 * earlier lists never match it).  A crash in between leaves a free slot.
 */
static uint32
reuse_slot(Maint *ms, uint32 slot, const float *centroid, uint32 born,
		   uint16 *incarnation)
{
	IvfListEntry old;
	uint32		i;
	Buffer		dirbuf;
	GenericXLogState *state;
	IvfListEntry *e;

	ivf_read_list_entry(ms->index, &ms->meta, &ms->g, slot, &old);
	Assert(ivf_entry_free(&old));
	write_centroid_row(ms, old.cblock, old.crow, centroid);

	dirbuf = ReadBuffer(ms->index, ivf_directory_block(&ms->meta, &ms->g, slot, &i));
	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(ms->index);
	e = ivf_dir_entry_v4_ptr(GenericXLogRegisterBuffer(state, dirbuf, 0), &ms->g, i);
	memset(e, 0, sizeof(*e));
	e->head = e->tail = e->insert = InvalidBlockNumber;
	e->born = born;
	e->dead = IVF_GEN_NEVER;
	e->flags = ms->new_flags;
	e->cblock = old.cblock;
	e->crow = old.crow;
	e->incarnation = old.incarnation + 1;
	*incarnation = e->incarnation;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(dirbuf);
	return slot;
}

/*
 * Step 3 for one new list: a new slot at the end of the directory, with
 * its centroid row and its entry (born = 'born', dead = never, no groups).
 * The row goes on the centroid chain's tail page when it has room; else on
 * new pages, written and logged first and linked from the tail page in the
 * final record.  That record holds the directory page, the centroid tail
 * page and the meta page (nslots, centroid_tail): until it, the slot does
 * not exist, and a crash before it leaves only unreachable pages.
 *
 * Free slots (recycled or rolled back, ivfrecycle.c) are reused first,
 * the lowest first (reuse_slot).
 */
static uint32
new_slot(Maint *ms, const float *centroid, uint32 born, uint16 *incarnation)
{
	Relation	index = ms->index;
	const IvfGeometry *g = &ms->g;
	uint32		per = g->directory_entries_per_page;
	uint32		d = ms->d;
	uint32		slot = ms->meta.nslots;
	uint32		i = slot % per;
	Buffer		dirbuf;
	Buffer		tailbuf;
	Buffer		metabuf;
	Buffer		rowbufs[IVF_MAX_SEGMENTS + 1];
	uint32		nrow = 0;
	Page		page;
	IvfPageOpaque opaque;
	GenericXLogState *state;
	BlockNumber cblock;
	uint32		crow = 0;
	uint32		tnvec;
	IvfListEntry *e;
	IvfMetaPageData *m;
	uint32		p;

	if (ms->free_next < ms->nfree)
		return reuse_slot(ms, ms->free_slots[ms->free_next++], centroid, born,
						  incarnation);

	*incarnation = 0;
	if (slot / per >= ms->meta.directory_npages)
		add_directory_page(ms);

	dirbuf = ReadBuffer(index, ms->meta.dir_blocks[slot / per]);
	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	tailbuf = ReadBuffer(index, ms->meta.centroid_tail);
	LockBuffer(tailbuf, BUFFER_LOCK_EXCLUSIVE);
	opaque = IvfPageGetOpaque(BufferGetPage(tailbuf));
	if ((opaque->flags & IVF_PAGE_CENTROID) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a centroid page",
						RelationGetRelationName(index), ms->meta.centroid_tail)));
	tnvec = opaque->nvec;

	if (g->centroid_rows_per_page > 0 &&
		tnvec + d <= g->centroid_rows_per_page * d)
	{
		cblock = ms->meta.centroid_tail;
		crow = tnvec / d;
	}
	else
	{
		/* new pages holding the row: one, or a run for a wide row */
		uint32		npages = g->centroid_rows_per_page > 0 ? 1 :
			g->centroid_pages_per_row;
		uint32		done = 0;

		Assert(npages <= lengthof(rowbufs));
		for (p = 0; p < npages; p++)
			rowbufs[p] = ivf_new_buffer(index);
		nrow = npages;
		for (p = 0; p < npages;)
		{
			uint32		n = Min(MAX_GENERIC_XLOG_PAGES, npages - p);
			uint32		j;

			state = GenericXLogStart(index);
			for (j = 0; j < n; j++)
			{
				uint32		k = Min(d - done, g->centroid_floats_per_page);

				page = GenericXLogRegisterBuffer(state, rowbufs[p + j],
												 GENERIC_XLOG_FULL_IMAGE);
				ivf_init_page(page, IVF_PAGE_CENTROID, 0);
				memcpy(PageGetContents(page), centroid + done, k * sizeof(float));
				IvfPageGetOpaque(page)->nvec = k;
				((PageHeader) page)->pd_lower = IVF_PAGE_DATA_OFF + k * sizeof(float);
				if (p + j + 1 < npages)
					IvfPageGetOpaque(page)->next = BufferGetBlockNumber(rowbufs[p + j + 1]);
				done += k;
			}
			GenericXLogFinish(state);
			p += n;
		}
		cblock = BufferGetBlockNumber(rowbufs[0]);
	}
	metabuf = lock_meta_exclusive(index);

	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, dirbuf, 0);
	e = ivf_dir_entry_v4_ptr(page, g, i);
	memset(e, 0, sizeof(*e));
	e->head = e->tail = e->insert = InvalidBlockNumber;
	e->born = born;
	e->dead = IVF_GEN_NEVER;
	e->flags = ms->new_flags;
	e->cblock = cblock;
	e->crow = crow;
	opaque = IvfPageGetOpaque(page);
	if (opaque->nvec < i + 1)
	{
		opaque->nvec = i + 1;
		((PageHeader) page)->pd_lower = IVF_PAGE_DATA_OFF + (i + 1) * sizeof(IvfListEntry);
	}
	page = GenericXLogRegisterBuffer(state, tailbuf, 0);
	if (nrow == 0)
	{
		memcpy((float *) PageGetContents(page) + tnvec, centroid, d * sizeof(float));
		IvfPageGetOpaque(page)->nvec = tnvec + d;
		((PageHeader) page)->pd_lower = IVF_PAGE_DATA_OFF + (tnvec + d) * sizeof(float);
	}
	else
		IvfPageGetOpaque(page)->next = cblock;
	page = GenericXLogRegisterBuffer(state, metabuf, 0);
	m = IvfPageGetMeta(page);
	m->nslots = slot + 1;
	if (nrow > 0)
	{
		m->centroid_tail = BufferGetBlockNumber(rowbufs[nrow - 1]);
		m->centroid_npages += nrow;
	}
	GenericXLogFinish(state);

	memcpy(&ms->meta, IvfPageGetMeta(BufferGetPage(metabuf)), sizeof(IvfMetaPageData));
	UnlockReleaseBuffer(metabuf);
	for (p = 0; p < nrow; p++)
		UnlockReleaseBuffer(rowbufs[p]);
	UnlockReleaseBuffer(tailbuf);
	UnlockReleaseBuffer(dirbuf);
	return slot;
}

/* one record on slot's directory page: its dead stamp or its retire_xid */
static void
stamp_entry(Maint *ms, uint32 slot, uint32 dead, uint64 retire_xid)
{
	uint32		i;
	Buffer		buf = ReadBuffer(ms->index,
								 ivf_directory_block(&ms->meta, &ms->g, slot, &i));
	GenericXLogState *state;
	IvfListEntry *e;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(ms->index);
	e = ivf_dir_entry_v4_ptr(GenericXLogRegisterBuffer(state, buf, 0), &ms->g, i);
	if (dead != 0)
		e->dead = dead;
	if (retire_xid != 0)
		e->retire_xid = retire_xid;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

/* one record on a locked group head: IVF_PAGE_FROZEN */
static void
freeze_group(Relation index, Buffer buf)
{
	GenericXLogState *state = GenericXLogStart(index);
	Page		page = GenericXLogRegisterBuffer(state, buf, 0);

	IvfPageGetOpaque(page)->flags |= IVF_PAGE_FROZEN;
	GenericXLogFinish(state);
}

/*
 * Steps 4 and 4b: copy and freeze the groups of old list 'id' from blkno
 * on.  Without 'close' the walk stops before the tail (a group whose next
 * link is invalid), returning its block, so that inserts keep filling it;
 * with 'close' it copies and freezes the tail too, read and frozen under
 * one exclusive lock, so that no group can be appended after it, and
 * returns InvalidBlockNumber.
 */
static BlockNumber
copy_groups(Maint *ms, uint32 id, BlockNumber blkno, bool close)
{
	while (BlockNumberIsValid(blkno))
	{
		Buffer		buf;
		BlockNumber next;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		vacuum_delay_point();

		buf = lock_group_head(ms, blkno, id, BUFFER_LOCK_EXCLUSIVE);
		next = IvfPageGetOpaque(BufferGetPage(buf))->next;
		if (!close && !BlockNumberIsValid(next))
		{
			UnlockReleaseBuffer(buf);
			return blkno;
		}
		old = MemoryContextSwitchTo(ms->tmpcxt);
		route_rows(ms, read_group(ms, BufferGetPage(buf)));
		MemoryContextSwitchTo(old);
		MemoryContextReset(ms->tmpcxt);
		freeze_group(ms->index, buf);
		UnlockReleaseBuffer(buf);

		if (!close && !ms->copy_paused)
		{
			ms->copy_paused = true;
			maintenance_pause(ms->index, "copy");
		}
		blkno = next;
	}
	return InvalidBlockNumber;
}

/* ------------------------------------------------------------- the plan */

/*
 * Step 1: new centroids for list 'slot' (entry e, about 'size' rows) by
 * k-means on a reservoir sample of its live rows, read with share locks as
 * a scan reads; into ms->centroids / ms->k.  Returns false when the list
 * turns out not to need a split (it shrank below 'bound', or its rows do
 * not form two clusters).
 */
static bool
plan_split(Maint *ms, uint32 slot, const IvfListEntry *e, uint64 size,
		   double target, uint64 bound)
{
	uint32		id = ivf_entry_list_id(e, slot);
	uint32		d = ms->d;
	uint32		k = (uint32) Min(Max(rint((double) size / target), 2), IVF_SPLIT_MAX_K);
	Size		want = (Size) Max(ivf_kmeans_points_per_list, 1) * k;
	Size		mwm = (Size) maintenance_work_mem * 1024;
	uint64		seen = 0;
	uint64		rng = ms->meta.seed ^ ((uint64) ms->meta.generation << 32);
	float	   *sample;
	int32	   *assign;
	uint32	   *count;
	void	   *ws;
	IvfKmeansParams params;
	BlockNumber blkno = e->head;
	uint32		nsample;
	uint32		j,
				kept;

	/* the sample and k-means' workspace within maintenance_work_mem */
	while (want > k &&
		   want * (sizeof(float) * d + sizeof(int32)) +
		   ivf_kmeans_workspace_bytes(want, d, k) > mwm)
		want -= Max(want / 8, 1);
	sample = MemoryContextAllocHuge(ms->opcxt, want * sizeof(float) * d);

	while (BlockNumberIsValid(blkno))
	{
		uint32		n = read_next_group(ms, &blkno, id);
		uint32		i;

		for (i = 0; i < n; i++)
		{
			int64		at = ivf_reservoir_slot(seen++, want, &rng);

			if (at >= 0)
				memcpy(sample + (Size) at * d, ms->rows + (Size) i * d,
					   sizeof(float) * d);
		}
	}
	if (seen <= bound)
		return false;
	nsample = (uint32) Min(seen, (uint64) want);
	k = Min(k, nsample);

	assign = palloc(sizeof(int32) * nsample);
	ws = MemoryContextAllocHuge(ms->opcxt, ivf_kmeans_workspace_bytes(nsample, d, k));
	ms->centroids = MemoryContextAllocHuge(ms->opcxt, sizeof(float) * d * k);
	memset(&params, 0, sizeof(params));
	params.niter = ivf_kmeans_iterations;
	params.tol = ivf_kmeans_tolerance;
	/* seeded from the index's seed and the generation (src/README) */
	params.seed = ms->meta.seed + ms->meta.generation;
	params.spherical = (ms->metric != IVF_METRIC_L2);
	params.metric = ms->metric == IVF_METRIC_L2 ? IVF_KM_L2 : IVF_KM_IP;
	params.progress = kmeans_check;
	params.assign_out = assign;
	if (ivf_kmeans(sample, nsample, d, k, &params, ws, ms->centroids, NULL) != 0)
		elog(ERROR, "k-means failed for %u vectors and %u lists", nsample, k);
	pfree(ws);

	/* codebook 1 from the residuals against the new centroids */
	if (ms->train_cb1)
	{
		for (j = 0; j < nsample; j++)
		{
			const float *c = ms->centroids + (Size) Max(assign[j], 0) * d;
			float	   *x = sample + (Size) j * d;

			for (uint32 t = 0; t < d; t++)
				x[t] -= c[t];
		}
		ivf_sq8_train(sample, nsample, d, ms->cb1, ms->cb1 + d);
	}

	/*
	 * Keep the centroids that drew rows: identical rows would otherwise
	 * make empty lists, and a list of one cluster is not worth splitting.
	 */
	count = palloc0(sizeof(uint32) * k);
	for (j = 0; j < nsample; j++)
		if (assign[j] >= 0 && (uint32) assign[j] < k)
			count[assign[j]]++;
	kept = 0;
	for (j = 0; j < k; j++)
		if (count[j] > 0)
		{
			if (kept != j)
				memcpy(ms->centroids + (Size) kept * d,
					   ms->centroids + (Size) j * d, sizeof(float) * d);
			kept++;
		}
	pfree(count);
	pfree(assign);
	pfree(sample);
	ms->k = kept;
	return kept >= 2;
}

/* ------------------------------------------------------------- a split */

/*
 * Write codebook 1 (ms->cb1: the lo row, then the step row) on pages of
 * its own, full images four a record (unreachable until named), then one
 * record naming it in the meta page; from then on new lists are encoded
 * with it and say so (IVF_LIST_CODEBOOK1).  Before any stamp: a crash
 * after this leaves a codebook no list uses, which the next run takes.
 */
static void
write_codebook1(Maint *ms)
{
	Relation	index = ms->index;
	uint32		per = ms->g.centroid_floats_per_page;
	uint32		total = 2 * ms->d;
	uint32		npages = (total + per - 1) / per;
	Buffer	   *bufs = palloc(sizeof(Buffer) * npages);
	Buffer		metabuf;
	GenericXLogState *state;
	uint32		done = 0;
	uint32		p;

	for (p = 0; p < npages; p++)
		bufs[p] = ivf_new_buffer(index);
	for (p = 0; p < npages;)
	{
		uint32		n = Min(MAX_GENERIC_XLOG_PAGES, npages - p);
		uint32		j;

		state = GenericXLogStart(index);
		for (j = 0; j < n; j++)
		{
			Page		page = GenericXLogRegisterBuffer(state, bufs[p + j],
														 GENERIC_XLOG_FULL_IMAGE);
			uint32		k = Min(total - done, per);

			ivf_init_page(page, IVF_PAGE_CENTROID, 0);
			memcpy(PageGetContents(page), ms->cb1 + done, k * sizeof(float));
			IvfPageGetOpaque(page)->nvec = k;
			((PageHeader) page)->pd_lower = IVF_PAGE_DATA_OFF + k * sizeof(float);
			if (p + j + 1 < npages)
				IvfPageGetOpaque(page)->next = BufferGetBlockNumber(bufs[p + j + 1]);
			done += k;
		}
		GenericXLogFinish(state);
		p += n;
	}

	metabuf = lock_meta_exclusive(index);
	state = GenericXLogStart(index);
	IvfPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0))->codebook[1] =
		BufferGetBlockNumber(bufs[0]);
	GenericXLogFinish(state);
	memcpy(&ms->meta, IvfPageGetMeta(BufferGetPage(metabuf)), sizeof(IvfMetaPageData));
	UnlockReleaseBuffer(metabuf);
	for (p = 0; p < npages; p++)
		UnlockReleaseBuffer(bufs[p]);
	pfree(bufs);

	ms->sq8_lo = ms->cb1;
	ms->sq8_step = ms->cb1 + ms->d;
	ms->new_flags = IVF_LIST_CODEBOOK1;
	ms->train_cb1 = false;
	ereport(DEBUG1,
			(errmsg_internal("ivf index \"%s\": trained codebook 1 at generation %u",
							 RelationGetRelationName(index), ms->meta.generation)));
}

/*
 * Replace the live lists olds[0..nold) (entries es) by ms->k new lists with
 * the centroids ms->centroids, every row of the old lists going to the
 * nearest new one: steps 2 to 7 of src/README "Split, step by step", for
 * a split (one old list) and a merge (two old lists, one new).  The old
 * lists are copied up to their tails one after the other, then closed one
 * after the other, so that inserts wait only for the closing records.
 */
static void
replace_lists(Maint *ms, const uint32 *olds, const IvfListEntry *es,
			  const int32 *keep, uint32 nold, IvfListOp op)
{
	Relation	index = ms->index;
	uint32		G = ms->meta.generation;
	uint32		vpg = ms->g.vecs_per_group;
	BlockNumber resume[1 + IVF_LIRE_NEIGHBOURS];
	Buffer		metabuf;
	GenericXLogState *state;
	XLogRecPtr	lsn;
	IvfMetaPageData *m;
	uint64		retire;
	uint32		j;

	Assert(nold >= 1 && nold <= lengthof(resume));
	ms->origin_new = -1;
	ms->cnorms = palloc(sizeof(float) * ms->k);
	ivf_kernels.norm_sq_block(ms->centroids, ms->k, ms->d, ms->cnorms);
	ms->aws = MemoryContextAllocHuge(ms->opcxt, ivf_assign_workspace_bytes(ms->k, ms->d));
	ms->nl = palloc0(sizeof(NewList) * ms->k);
	ms->copied = 0;
	ms->reassigned = 0;
	ms->copy_paused = false;

	/* 2. the switch lock: inserts that find a closed list wait for it */
	(void) ivf_lock_index(index, IVF_SWITCH_LOCK, ExclusiveLock, false);

	/* 3. stamp: the new slots, born at G + 1; then the old die at G + 1 */
	for (j = 0; j < ms->k; j++)
	{
		NewList    *nl = &ms->nl[j];

		uint16		incarnation;

		nl->centroid = ms->centroids + (Size) j * ms->d;
		nl->slot = new_slot(ms, nl->centroid, G + 1, &incarnation);
		nl->id = ivf_list_id(nl->slot, incarnation);
		nl->tids = palloc(sizeof(ItemPointerData) * vpg);
		nl->vecs = MemoryContextAllocHuge(ms->opcxt, sizeof(float) * ms->d * vpg);
		nl->tail = InvalidBlockNumber;
	}
	for (j = 0; j < nold; j++)
		stamp_entry(ms, olds[j], G + 1, 0);
	maintenance_pause(index, "stamp");

	/* 4. copy and freeze up to each old list's tail ('copy' pauses inside) */
	for (j = 0; j < nold; j++)
	{
		ms->origin_new = keep[j];
		resume[j] = copy_groups(ms, ivf_entry_list_id(&es[j], olds[j]),
								es[j].head, false);
	}
	if (!ms->copy_paused)
	{
		ms->copy_paused = true;
		maintenance_pause(index, "copy");
	}

	/* 4b. close: the rest, each tail frozen while locked */
	for (j = 0; j < nold; j++)
	{
		ms->origin_new = keep[j];
		copy_groups(ms, ivf_entry_list_id(&es[j], olds[j]), resume[j], true);
	}
	ms->origin_new = -1;
	for (j = 0; j < ms->k; j++)
		write_new_group(ms, &ms->nl[j]);
	maintenance_pause(index, "close");

	/* 5. switch: views read G + 1 from this record on */
	metabuf = lock_meta_exclusive(index);
	m = IvfPageGetMeta(BufferGetPage(metabuf));
	if (m->generation != G)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": generation moved from %u to %u during maintenance",
						RelationGetRelationName(index), G, m->generation)));
	state = GenericXLogStart(index);
	m = IvfPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0));
	m->generation = G + 1;
	m->nlists = m->nlists - nold + ms->k;
	if (op == IVF_OP_MERGE)
		m->nmerges++;
	else if (op == IVF_OP_SPLIT)
		m->nsplits++;
	m->vectors_copied += ms->copied;
	m->vectors_reassigned += ms->reassigned;
	m->target_size = ms->target_size;
	m->split_bound = ms->split_bound;
	m->merge_bound = ms->merge_bound;
	lsn = GenericXLogFinish(state);

	/*
	 * ivf_rebalance assigns no xid, so its commit would not flush this
	 * record: a crash could undo a split the caller was told about.
	 */
	XLogFlush(lsn);
	memcpy(&ms->meta, IvfPageGetMeta(BufferGetPage(metabuf)), sizeof(IvfMetaPageData));
	UnlockReleaseBuffer(metabuf);
	ivf_unlock_index(index, IVF_SWITCH_LOCK, ExclusiveLock);
	maintenance_pause(index, "switch");

	/*
	 * 6. retire_xid, read after the switch: any view of G was taken by a
	 * snapshot older than it (src/README "Recycling")
	 */
	retire = U64FromFullTransactionId(ReadNextFullTransactionId());
	for (j = 0; j < nold; j++)
		stamp_entry(ms, olds[j], 0, retire);
	maintenance_pause(index, "retire");

	/* 7. GPU copies of the old lists and of the new ids are stale */
	for (j = 0; j < nold; j++)
		ivf_gpu_list_changed(index, ivf_entry_list_id(&es[j], olds[j]));
	for (j = 0; j < ms->k; j++)
		ivf_gpu_list_changed(index, ms->nl[j].id);

	/* 8. with self_idle, what no snapshot can read any more goes now */
	if (ms->self_idle)
		recycle_now(ms);
}

/* the index of the largest of counts[0..n) above 0, set to 0; n when none */
static uint32
take_most(uint64 *counts, uint32 n)
{
	uint32		best = n;

	for (uint32 i = 0; i < n; i++)
		if (counts[i] > 0 && (best == n || counts[i] > counts[best]))
			best = i;
	if (best < n)
		counts[best] = 0;
	return best;
}

/*
 * Reassignment (src/README "Reassignment (LIRE)"): of the live lists that
 * can hold a row nearer one of the split's new centroids than their own,
 * the IVF_LIRE_CANDIDATES likeliest are read, and of those with such rows
 * (at least 1% of theirs, and one) the IVF_LIRE_NEIGHBOURS with the most
 * are rewritten in the same operation, each as a new list keeping its
 * centroid.  Appends their centroids to ms->centroids (ms->k grows), their
 * slots and entries to rslots/res; returns how many.  Reads each
 * neighbour as a scan does.
 *
 * A row x of list L (centroid c_L, radius r_L >= |x - c_L|) is nearer a
 * new centroid c only if it lies past their bisector, at |c - c_L| / 2
 * from c_L: so only lists with |c - c_L| < 2 r_L can hold one, and the
 * smaller |c - c_L| / 2 r_L, the more of L lies past it.  Ranking by that
 * rather than by centroid distance alone finds the lists that drift
 * stretched: built where the first rows were, they took in rows from far
 * away before any list was there, and never grew enough to be split.
 */
static uint32
plan_reassign(Maint *ms, uint32 slot, uint32 *rslots, IvfListEntry *res)
{
	Relation	index = ms->index;
	uint32		d = ms->d;
	uint32		k = ms->k;
	uint32		cand[IVF_LIRE_CANDIDATES];
	float		cscore[IVF_LIRE_CANDIDATES];
	uint64		cmovers[IVF_LIRE_CANDIDATES];
	IvfListEntry cent[IVF_LIRE_CANDIDATES];
	uint32		ncand = 0;
	float	   *ccent = palloc(sizeof(float) * d * IVF_LIRE_CANDIDATES);
	float	   *cs = palloc(sizeof(float) * d * (k + 1));
	float	   *cn = palloc(sizeof(float) * (k + 1));
	void	   *ws = palloc(ivf_assign_workspace_bytes(k + 1, d));
	float	   *kept = palloc(sizeof(float) * d * IVF_LIRE_NEIGHBOURS);
	IvfListEntry *entries = palloc(sizeof(IvfListEntry) * Max(ms->meta.nslots, 1));
	uint32		nr = 0;
	IvfCache   *cache = ivf_get_cache(index);
	uint32		j;

	/* the radii are in the directory, the centroids in the view */
	ivf_read_entries(index, &ms->meta, &ms->g, entries);
	for (uint32 p = 0; p < cache->nlive; p++)
	{
		uint32		s = cache->live_slot[p];
		const float *cl = cache->centroids + (Size) p * d;
		float		r = entries[s].radius;
		float		score = 1.0f;
		uint32		at;

		if (s == slot || !(r > 0))
			continue;
		for (j = 0; j < k; j++)
			score = Min(score, ivf_member_radius(ms->centroids + (Size) j * d, cl, d) / (2 * r));
		if (!(score < 1.0f) ||
			(ncand == IVF_LIRE_CANDIDATES && !(score < cscore[ncand - 1])))
			continue;
		at = Min(ncand, IVF_LIRE_CANDIDATES - 1);
		while (at > 0 && score < cscore[at - 1])
		{
			cand[at] = cand[at - 1];
			cscore[at] = cscore[at - 1];
			memcpy(ccent + (Size) at * d, ccent + (Size) (at - 1) * d, sizeof(float) * d);
			at--;
		}
		cand[at] = s;
		cscore[at] = score;
		memcpy(ccent + (Size) at * d, cl, sizeof(float) * d);
		if (ncand < IVF_LIRE_CANDIDATES)
			ncand++;
	}
	cache = NULL;
	pfree(entries);

	/* each against the new centroids and its own, last */
	memcpy(cs, ms->centroids, sizeof(float) * d * k);
	for (j = 0; j < ncand; j++)
	{
		IvfListEntry en;
		uint32		id;
		BlockNumber blkno;
		uint64		rows = 0;
		uint64		movers = 0;

		cmovers[j] = 0;
		ivf_read_list_entry(index, &ms->meta, &ms->g, cand[j], &en);
		if (!ivf_entry_live(&en, ms->meta.generation))
			continue;
		id = ivf_entry_list_id(&en, cand[j]);
		memcpy(cs + (Size) k * d, ccent + (Size) j * d, sizeof(float) * d);
		ivf_kernels.norm_sq_block(cs, k + 1, d, cn);
		for (blkno = en.head; BlockNumberIsValid(blkno);)
		{
			uint32		n = read_next_group(ms, &blkno, id);

			if (n == 0)
				continue;
			ivf_assign(ms->rows, n, cs, cn, k + 1, d,
					   ms->metric == IVF_METRIC_L2 ? IVF_KM_L2 : IVF_KM_IP,
					   ws, ms->assign, NULL, NULL, NULL);
			for (uint32 i = 0; i < n; i++)
				movers += (ms->assign[i] != (int32) k) ? 1 : 0;
			rows += n;
		}
		if (movers == 0 || (double) movers < 0.01 * (double) rows)
			continue;
		cmovers[j] = movers;
		cent[j] = en;
	}

	/* those with the most movers */
	while (nr < IVF_LIRE_NEIGHBOURS)
	{
		uint32		best = take_most(cmovers, ncand);

		if (best == ncand)
			break;
		rslots[nr] = cand[best];
		res[nr] = cent[best];
		memcpy(kept + (Size) nr * d, ccent + (Size) best * d, sizeof(float) * d);
		nr++;
	}
	if (nr > 0)
	{
		float	   *all = MemoryContextAllocHuge(ms->opcxt, sizeof(float) * d * (k + nr));

		memcpy(all, ms->centroids, sizeof(float) * d * k);
		memcpy(all + (Size) k * d, kept, sizeof(float) * d * nr);
		ms->centroids = all;
		ms->k = k + nr;
	}
	pfree(ccent);
	pfree(cs);
	pfree(cn);
	pfree(ws);
	pfree(kept);
	return nr;
}

/*
 * Split live list 'slot' (entry e, about 'size' live rows) into new lists
 * of about 'target' rows.  Returns false when the plan found nothing to do.
 */
static bool
split_list(Maint *ms, uint32 slot, const IvfListEntry *e, uint64 size,
		   double target, IvfMaintainStats *out)
{
	uint32		olds[1 + IVF_LIRE_NEIGHBOURS];
	IvfListEntry es[1 + IVF_LIRE_NEIGHBOURS];
	int32		keep[1 + IVF_LIRE_NEIGHBOURS];
	uint32		knew;
	uint32		nr;

	if (!plan_split(ms, slot, e, size, target, ms->split_bound))
		return false;
	if (ms->train_cb1)
		write_codebook1(ms);
	olds[0] = slot;
	es[0] = *e;
	keep[0] = -1;
	knew = ms->k;
	nr = plan_reassign(ms, slot, olds + 1, es + 1);
	for (uint32 j = 0; j < nr; j++)
		keep[1 + j] = (int32) (knew + j);
	replace_lists(ms, olds, es, keep, 1 + nr, IVF_OP_SPLIT);

	out->splits++;
	out->vectors_copied += ms->copied;
	out->vectors_reassigned += ms->reassigned;
	ereport(DEBUG1,
			(errmsg_internal("ivf index \"%s\": list %u split into %u lists, %u neighbours rewritten (%llu rows copied, %llu reassigned) at generation %u",
							 RelationGetRelationName(ms->index), slot, knew, nr,
							 (unsigned long long) ms->copied,
							 (unsigned long long) ms->reassigned,
							 ms->meta.generation)));
	return true;
}

/*
 * Merge live list a (about na rows) into its nearest live list b (about
 * nb): one new list whose centroid is their centroids' mean weighted by
 * their sizes (normalized for the spherical metrics), holding the rows of
 * both (src/README "Merge").
 */
static void
merge_lists(Maint *ms, uint32 a, const IvfListEntry *ea, uint64 na,
			uint32 b, const IvfListEntry *eb, uint64 nb,
			const float *ca, const float *cb, IvfMaintainStats *out)
{
	uint32		olds[2] = {a, b};
	IvfListEntry es[2] = {*ea, *eb};
	double		wa = (double) Max(na, 1);
	double		wb = (double) Max(nb, 1);
	uint32		t;

	ms->k = 1;
	ms->centroids = palloc(sizeof(float) * ms->d);
	for (t = 0; t < ms->d; t++)
		ms->centroids[t] = (float) ((wa * ca[t] + wb * cb[t]) / (wa + wb));
	if (ms->metric != IVF_METRIC_L2)
	{
		double		n = sqrt((double) ivf_kernels.norm_sq(ms->centroids, ms->d));

		if (n > 0)
			for (t = 0; t < ms->d; t++)
				ms->centroids[t] = (float) (ms->centroids[t] / n);
	}
	{
		int32		keep[2] = {-1, -1};

		replace_lists(ms, olds, es, keep, 2, IVF_OP_MERGE);
	}

	out->merges++;
	out->vectors_copied += ms->copied;
	ereport(DEBUG1,
			(errmsg_internal("ivf index \"%s\": lists %u and %u (%llu rows) merged at generation %u",
							 RelationGetRelationName(ms->index), a, b,
							 (unsigned long long) ms->copied,
							 ms->meta.generation)));
}

/* ------------------------------------------------------------- the run */


/* a live list and its size, for the split candidates */
typedef struct ListSize
{
	uint32		slot;
	uint64		size;
} ListSize;

static int
cmp_size_desc(const void *a, const void *b)
{
	const ListSize *x = a;
	const ListSize *y = b;

	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return (x->slot > y->slot) - (x->slot < y->slot);
}

/* live rows of a list: its groups' slots minus the dead ones */
static uint64
count_live(Maint *ms, BlockNumber blkno, uint32 id)
{
	uint64		n = 0;

	while (BlockNumberIsValid(blkno))
	{
		Buffer		buf;
		Page		page;
		ItemPointerData *tids;
		uint32		nvec;
		uint32		i;

		CHECK_FOR_INTERRUPTS();
		buf = lock_group_head(ms, blkno, id, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		tids = ivf_head_tids(page, &ms->g);
		nvec = Min(IvfPageGetOpaque(page)->nvec, ms->g.vecs_per_group);
		for (i = 0; i < nvec; i++)
			n += ItemPointerIsValid(&tids[i]) ? 1 : 0;
		blkno = IvfPageGetOpaque(page)->next;
		UnlockReleaseBuffer(buf);
	}
	return n;
}

/* the live lists and their sizes, into a new *cand; returns how many */
static uint32
live_sizes(Maint *ms, ListSize **candp)
{
	IvfListEntry *entries = palloc(sizeof(IvfListEntry) * Max(ms->meta.nslots, 1));
	ListSize   *cand = palloc(sizeof(ListSize) * Max(ms->meta.nslots, 1));
	uint32		n = 0;

	/* all of them first: count_live locks group heads, before directory pages */
	ivf_read_entries(ms->index, &ms->meta, &ms->g, entries);
	for (uint32 s = 0; s < ms->meta.nslots; s++)
	{
		if (!ivf_entry_live(&entries[s], ms->meta.generation))
			continue;
		cand[n].slot = s;
		cand[n].size = count_live(ms, entries[s].head, ivf_entry_list_id(&entries[s], s));
		n++;
	}
	pfree(entries);
	*candp = cand;
	return n;
}

/* the lists option, else the build's rule (ivfbuild.c) */
static double
target_lists(Relation index, double rows)
{
	IvfOptions *opts = ivf_get_options(index);

	if (opts->lists > 0)
		return opts->lists;
	return ivf_lists_for_rows(rows);
}

/*
 * Merge each live list below the merge bound away, smallest first, while
 * the index has more lists than 'target' (and at least two), within
 * max_ops operations in all (done so far: 'done'): its rows go to the live
 * lists they are nearest (rehome_list, dissolving), so no centroid moves
 * and no row of another list ends up nearer a centroid not its own; an
 * empty list is merged into its nearest list (merge_lists).  Returns the
 * merges.
 */
static int
merge_small_lists(Maint *ms, double target, int max_ops, int done,
				  IvfMaintainStats *out)
{
	Relation	index = ms->index;
	uint32		nslots = ms->meta.nslots;
	ListSize   *small = palloc(sizeof(ListSize) * Max(nslots, 1));
	bool	   *used = palloc0(sizeof(bool) * Max(nslots, 1));
	uint32		nsmall = 0;
	uint32		c;
	int			merges = 0;
	float	   *ca = palloc(sizeof(float) * ms->d);
	float	   *cb = palloc(sizeof(float) * ms->d);

	if (ms->merge_bound == 0 || ms->meta.nlists <= Max(target, 1))
		return 0;
	for (uint32 s = 0; s < nslots; s++)
	{
		IvfListEntry e;
		uint64		n;

		ivf_read_list_entry(index, &ms->meta, &ms->g, s, &e);
		if (!ivf_entry_live(&e, ms->meta.generation))
			continue;
		n = count_live(ms, e.head, ivf_entry_list_id(&e, s));
		if (n < ms->merge_bound)
		{
			small[nsmall].slot = s;
			small[nsmall].size = n;
			nsmall++;
		}
	}
	/* smallest first */
	for (c = 1; c < nsmall; c++)
		for (uint32 j = c; j > 0 && small[j - 1].size > small[j].size; j--)
		{
			ListSize	t = small[j];

			small[j] = small[j - 1];
			small[j - 1] = t;
		}

	for (c = 0; c < nsmall; c++)
	{
		uint32		a = small[c].slot;
		uint32		b = PG_UINT32_MAX;
		float		best = 0;
		IvfCache   *cache;
		IvfListEntry ea,
					eb;

		if (ms->meta.nlists <= Max(target, 1) || ms->meta.nlists < 2)
			break;
		if (max_ops > 0 && done + merges >= max_ops)
			break;
		if (used[a])
			continue;
		ivf_read_list_entry(index, &ms->meta, &ms->g, a, &ea);
		if (!ivf_entry_live(&ea, ms->meta.generation))
			continue;

		/* its rows to the lists they are nearest */
		MemoryContextSwitchTo(ms->opcxt);
		if (rehome_list(ms, a, &ea, true, out))
		{
			MemoryContextReset(ms->opcxt);
			used[a] = true;
			merges++;
			continue;
		}
		MemoryContextReset(ms->opcxt);

		/* an empty list: into the nearest other live list, by centroid */
		cache = ivf_get_cache(index);
		memcpy(ca, ivf_slot_centroid(cache, a), sizeof(float) * ms->d);
		for (uint32 p = 0; p < cache->nlive; p++)
		{
			uint32		s = cache->live_slot[p];
			float		dist;

			if (s == a || (s < nslots && used[s]))
				continue;
			dist = ivf_pair_distance(ms->metric, ca, cache->centroids + (Size) p * ms->d,
									 ms->d);
			if (b == PG_UINT32_MAX || dist < best)
			{
				b = s;
				best = dist;
			}
		}
		if (b == PG_UINT32_MAX)
			break;
		memcpy(cb, ivf_slot_centroid(cache, b), sizeof(float) * ms->d);
		cache = NULL;

		ivf_read_list_entry(index, &ms->meta, &ms->g, b, &eb);
		if (!ivf_entry_live(&eb, ms->meta.generation))
			continue;
		MemoryContextSwitchTo(ms->opcxt);
		merge_lists(ms, a, &ea, small[c].size, b, &eb,
					count_live(ms, eb.head, ivf_entry_list_id(&eb, b)), ca, cb, out);
		MemoryContextReset(ms->opcxt);
		used[a] = true;
		if (b < nslots)
			used[b] = true;
		merges++;
	}
	return merges;
}

static int
cmp_float_asc(const void *a, const void *b)
{
	float		x = *(const float *) a;
	float		y = *(const float *) b;

	return (x > y) - (x < y);
}

/*
 * Rewrite live list 'slot' (entry e) with the lists its rows are nearest
 * (src/README "Re-homing"): each row is ranked against every live
 * centroid (every other one when 'dissolve'); unless dissolving, a list
 * with fewer movers than 1% of its rows (or none) is left alone.  The
 * IVF_LIRE_NEIGHBOURS lists most movers are nearest are rewritten with it
 * in one operation, each keeping its centroid, every row going to the
 * nearest of them; a dissolved list has no successor.  Returns whether
 * it did.
 */
static bool
rehome_list(Maint *ms, uint32 slot, const IvfListEntry *e, bool dissolve,
			IvfMaintainStats *out)
{
	Relation	index = ms->index;
	uint32		d = ms->d;
	IvfCache   *cache = ivf_get_cache(index);
	uint32		nc = cache->nlive;
	uint32		self = PG_UINT32_MAX;
	float	   *cs;
	float	   *cn;
	uint32	   *cslot;
	void	   *ws;
	uint64	   *movers;
	uint64		rows = 0;
	uint64		total = 0;
	uint32		olds[1 + IVF_LIRE_NEIGHBOURS];
	IvfListEntry es[1 + IVF_LIRE_NEIGHBOURS];
	int32		keep[1 + IVF_LIRE_NEIGHBOURS];
	uint32		nold = 1;
	uint32		first = dissolve ? 0 : 1;
	BlockNumber blkno;
	uint32		id = ivf_entry_list_id(e, slot);

	/* the live centroids as of the last switch, without this one's when dissolving */
	cs = MemoryContextAllocHuge(ms->opcxt, sizeof(float) * d * Max(nc, 1));
	cslot = palloc(sizeof(uint32) * Max(nc, 1));
	{
		uint32		m = 0;

		for (uint32 p = 0; p < cache->nlive; p++)
		{
			if (cache->live_slot[p] == slot)
			{
				self = m;
				if (dissolve)
					continue;
			}
			memcpy(cs + (Size) m * d, cache->centroids + (Size) p * d, sizeof(float) * d);
			cslot[m++] = cache->live_slot[p];
		}
		nc = m;
	}
	cache = NULL;
	if (self == PG_UINT32_MAX || nc == 0)
		return false;
	if (dissolve)
		self = PG_UINT32_MAX;
	movers = palloc0(sizeof(uint64) * nc);
	cn = palloc(sizeof(float) * nc);
	ivf_kernels.norm_sq_block(cs, nc, d, cn);
	ws = MemoryContextAllocHuge(ms->opcxt, ivf_assign_workspace_bytes(nc, d));
	for (blkno = e->head; BlockNumberIsValid(blkno);)
	{
		uint32		n = read_next_group(ms, &blkno, id);

		if (n == 0)
			continue;
		ivf_assign(ms->rows, n, cs, cn, nc, d,
				   ms->metric == IVF_METRIC_L2 ? IVF_KM_L2 : IVF_KM_IP,
				   ws, ms->assign, NULL, NULL, NULL);
		for (uint32 i = 0; i < n; i++)
			if ((uint32) ms->assign[i] != self)
			{
				movers[ms->assign[i]]++;
				total++;
			}
		rows += n;
	}
	if (!dissolve && (total == 0 || (double) total < 0.01 * (double) rows))
		return false;

	/* the lists most of them are nearest, most first */
	olds[0] = slot;
	es[0] = *e;
	keep[0] = dissolve ? -1 : 0;
	ms->centroids = MemoryContextAllocHuge(ms->opcxt, sizeof(float) * d * (1 + IVF_LIRE_NEIGHBOURS));
	if (!dissolve)
		memcpy(ms->centroids, cs + (Size) self * d, sizeof(float) * d);
	while (nold < 1 + IVF_LIRE_NEIGHBOURS)
	{
		uint32		best = take_most(movers, nc);

		if (best == nc)
			break;
		olds[nold] = cslot[best];
		ivf_read_list_entry(index, &ms->meta, &ms->g, olds[nold], &es[nold]);
		if (!ivf_entry_live(&es[nold], ms->meta.generation))
			continue;
		memcpy(ms->centroids + (Size) (nold - 1 + first) * d, cs + (Size) best * d,
			   sizeof(float) * d);
		keep[nold] = (int32) (nold - 1 + first);
		nold++;
	}
	/* a dissolved list with no rows still needs a list to go to */
	if (nold == 1 && dissolve)
		return false;
	ms->k = nold - 1 + first;
	replace_lists(ms, olds, es, keep, nold, dissolve ? IVF_OP_MERGE : IVF_OP_REHOME);
	out->vectors_copied += ms->copied;
	if (dissolve)
		out->merges++;
	else
		out->vectors_reassigned += ms->reassigned;
	ereport(DEBUG1,
			(errmsg_internal("ivf index \"%s\": list %u %s with %u others (%llu rows copied, %llu reassigned) at generation %u",
							 RelationGetRelationName(index), slot,
							 dissolve ? "dissolved" : "re-homed", nold - 1,
							 (unsigned long long) ms->copied,
							 (unsigned long long) ms->reassigned,
							 ms->meta.generation)));
	return true;
}

/*
 * Re-homing (src/README "Re-homing"): a list whose radius stands well
 * above the others' can hold rows that another list's centroid is nearer
 * now, lists split since they came in, which no split's reassignment
 * reached.  Each such list, widest first, goes through rehome_list.
 * Returns the operations done.
 */
static int
rehome_lists(Maint *ms, int max_ops, int done, IvfMaintainStats *out)
{
	Relation	index = ms->index;
	uint32		nslots = ms->meta.nslots;
	IvfListEntry *entries = palloc(sizeof(IvfListEntry) * Max(nslots, 1));
	ListSize   *wide = palloc(sizeof(ListSize) * Max(nslots, 1));
	float	   *radii = palloc(sizeof(float) * Max(nslots, 1));
	uint32		nwide = 0;
	uint32		nlive = 0;
	float		median;
	int			ops = 0;

	ivf_read_entries(index, &ms->meta, &ms->g, entries);
	for (uint32 s = 0; s < nslots; s++)
		if (ivf_entry_live(&entries[s], ms->meta.generation))
			radii[nlive++] = entries[s].radius;
	if (nlive < 2)
		return 0;
	qsort(radii, nlive, sizeof(float), cmp_float_asc);
	median = radii[nlive / 2];
	if (!(median > 0))
		return 0;
	for (uint32 s = 0; s < nslots; s++)
	{
		IvfListEntry *e = &entries[s];

		/* by radius: size is the splits' business */
		if (ivf_entry_live(e, ms->meta.generation) &&
			e->radius > IVF_REHOME_RADIUS * median)
		{
			wide[nwide].slot = s;
			wide[nwide].size = (uint64) (e->radius / median * 1000.0f);
			nwide++;
		}
	}
	qsort(wide, nwide, sizeof(ListSize), cmp_size_desc);

	for (uint32 c = 0; c < nwide; c++)
	{
		IvfListEntry e;

		if (max_ops > 0 && done + ops >= max_ops)
			break;
		ivf_read_list_entry(index, &ms->meta, &ms->g, wide[c].slot, &e);
		if (!ivf_entry_live(&e, ms->meta.generation))
			continue;
		MemoryContextSwitchTo(ms->opcxt);
		if (rehome_list(ms, wide[c].slot, &e, false, out))
			ops++;
		MemoryContextReset(ms->opcxt);
	}
	return ops;
}

/*
 * Whether maintenance may change the index's lists: format 4, adaptive at
 * build (IVF_META_ADAPTIVE) and the adaptive option on now.
 */
bool
ivf_maintenance_enabled(Relation index, const IvfMetaPageData *meta)
{
	return meta->version >= 4 && (meta->flags & IVF_META_ADAPTIVE) != 0 &&
		ivf_get_options(index)->adaptive;
}

/*
 * Maintain the lists of an index (the caller checked
 * ivf_maintenance_enabled): with the maintenance lock (waited for, or with
 * 'conditional' only taken if free: autovacuum), compute the target list
 * size from num_heap_tuples (the live rows of the live lists when
 * negative); split every live list above the bound, the largest first,
 * re-home stretched lists, merge small ones, at most max_ops operations
 * in all (0: no limit); recycle what no view can read.  self_idle: no scan
 * of this backend can be open (VACUUM), so recycling need not wait for
 * this backend's snapshot and runs after each operation.  Adds what it did
 * to *out.  Returns false when 'conditional' found the lock taken.
 */
bool
ivf_maintain(Relation index, double num_heap_tuples, bool conditional,
			 bool self_idle, IvfMaintainStats *out, int max_ops)
{
	MemoryContext cxt;
	MemoryContext old;
	Maint		ms;
	ListSize   *cand;
	uint32		ncand = 0;
	uint64		total = 0;
	bool		abandoned = false;
	double		rows;
	double		target;
	uint64		bound;
	uint32		s;
	uint32		c;
	int			ops = 0;

	if (conditional)
	{
		if (!ivf_lock_index(index, IVF_MAINTENANCE_LOCK, ExclusiveLock, true))
		{
			ereport(DEBUG1,
					(errmsg_internal("ivf index \"%s\": maintenance skipped, another process holds its maintenance lock",
									 RelationGetRelationName(index))));
			return false;
		}
	}
	else
		(void) ivf_lock_index(index, IVF_MAINTENANCE_LOCK, ExclusiveLock, false);

	/*
	 * Step 0: roll back what an operation that never reached its switch
	 * left (an error or a crash), before anything is planned.
	 */
	if (ivf_rollback_abandoned(index) > 0)
		ereport(LOG,
				(errmsg("ivf index \"%s\": rolled back an interrupted list operation",
						RelationGetRelationName(index))));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "ivf maintenance",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);

	memset(&ms, 0, sizeof(ms));
	ms.index = index;
	ms.self_idle = self_idle;
	ms.runcxt = cxt;
	ivf_read_meta(index, &ms.meta);
	ivf_meta_geometry(&ms.meta, &ms.g);
	ms.metric = (IvfMetric) ms.meta.metric;
	ms.d = ms.meta.dims;
	ms.opcxt = AllocSetContextCreate(cxt, "ivf maintenance operation",
									 ALLOCSET_DEFAULT_SIZES);
	ms.tmpcxt = AllocSetContextCreate(cxt, "ivf maintenance group",
									  ALLOCSET_DEFAULT_SIZES);
	ms.rows = MemoryContextAllocHuge(cxt, sizeof(float) * ms.d * ms.g.vecs_per_group);
	ms.rtids = palloc(sizeof(ItemPointerData) * ms.g.vecs_per_group);
	ms.assign = palloc(sizeof(int32) * ms.g.vecs_per_group);
	ms.live = palloc(sizeof(uint32) * ms.g.vecs_per_group);
	ms.scratch = palloc(sizeof(float) * ms.d);
	ms.pages = palloc((Size) ms.g.nsegments * BLCKSZ);
	if (ms.g.codes)
	{
		IvfCache   *cache = ivf_get_cache(index);

		bool		trained = false;
		uint32		t;

		/*
		 * New lists use codebook 1 once it exists, else codebook 0; an
		 * untrained codebook 0 (a build without rows) makes the first
		 * split train codebook 1 (src/README "Codes").
		 */
		ms.sq8_lo = palloc(sizeof(float) * ms.d * 2);
		ms.sq8_step = ms.sq8_lo + ms.d;
		if (cache->sq8_lo1 != NULL)
		{
			memcpy(ms.sq8_lo, cache->sq8_lo1, sizeof(float) * ms.d * 2);
			ms.new_flags = IVF_LIST_CODEBOOK1;
		}
		else
		{
			memcpy(ms.sq8_lo, cache->sq8_lo, sizeof(float) * ms.d);
			memcpy(ms.sq8_step, cache->sq8_step, sizeof(float) * ms.d);
			for (t = 0; t < ms.d && !trained; t++)
				trained = ms.sq8_step[t] != 0;
			if (!trained)
			{
				ms.train_cb1 = true;
				ms.cb1 = palloc(sizeof(float) * ms.d * 2);
			}
		}
	}

	/* an abandoned operation's stamps, the free slots, the live lists' sizes */
	{
		IvfListEntry *entries = palloc(sizeof(IvfListEntry) * Max(ms.meta.nslots, 1));
		uint32		G = ms.meta.generation;

		ivf_read_entries(index, &ms.meta, &ms.g, entries);
		for (s = 0; s < ms.meta.nslots; s++)
		{
			IvfListEntry *e = &entries[s];

			/* a free slot is born never (ivfrecycle.c) */
			if ((e->born != IVF_GEN_NEVER && e->born > G) ||
				(e->dead != IVF_GEN_NEVER && e->dead > G))
				abandoned = true;
		}
		load_free_slots(&ms, entries);
		pfree(entries);
	}
	ncand = live_sizes(&ms, &cand);
	for (c = 0; c < ncand; c++)
		total += cand[c].size;

	/* step 0 cleared them; a stamp above G now is a bug, not a crash */
	if (abandoned)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" holds list stamps above its generation %u after their rollback",
						RelationGetRelationName(index), ms.meta.generation)));

	/* the bound (src/README "The bound") */
	rows = num_heap_tuples >= 0 ? num_heap_tuples : (double) total;
	target = Max(ceil(rows / Max(target_lists(index, rows), 1)), IVF_MIN_TARGET_SIZE);
	bound = (uint64) (2 * target);
	ms.target_size = (uint32) Min(target, PG_UINT32_MAX);
	ms.split_bound = (uint32) Min(bound, PG_UINT32_MAX);
	ms.merge_bound = (uint32) (target / 4);

	/*
	 * Rounds of splits, re-homing and merges, until a round does nothing:
	 * each kind can leave work for the others (a dissolved list's rows can
	 * take a list above the bound, a re-homed one can fall below the
	 * floor), and a run that stops early leaves it to the next, whose
	 * copies cannot reuse this run's pages unless it runs under VACUUM.
	 */
	for (int round = 0; round < IVF_ROUNDS; round++)
	{
		int			round_start = ops;

		/*
		 * Splits, largest first; again while a pass split anything, since
		 * a split's reassignment can leave a rewritten neighbour above the
		 * bound
		 */
		for (int pass = 0; pass < IVF_SPLIT_PASSES; pass++)
		{
			int			before = ops;

			if (pass > 0 || round > 0)
			{
				pfree(cand);
				ncand = live_sizes(&ms, &cand);
			}
			qsort(cand, ncand, sizeof(ListSize), cmp_size_desc);
			for (c = 0; c < ncand && cand[c].size > bound; c++)
			{
				IvfListEntry e;

				if (max_ops > 0 && ops >= max_ops)
					break;
				if (ms.meta.nlists + IVF_SPLIT_MAX_K > IVF_MAX_LISTS)
					break;
				/* the entry as of now: only its groups can have grown */
				ivf_read_list_entry(index, &ms.meta, &ms.g, cand[c].slot, &e);
				if (!ivf_entry_live(&e, ms.meta.generation))
					continue;
				MemoryContextSwitchTo(ms.opcxt);
				if (split_list(&ms, cand[c].slot, &e, cand[c].size, target, out))
					ops++;
				MemoryContextSwitchTo(cxt);
				MemoryContextReset(ms.opcxt);
			}
			if (ops == before)
				break;
		}

		/* re-homing: the rows of stretched lists that others are nearer now */
		ops += rehome_lists(&ms, max_ops, ops, out);
		MemoryContextSwitchTo(cxt);

		/* merges: lists below the floor while there are more than the target */
		ops += merge_small_lists(&ms, target_lists(index, rows), max_ops, ops, out);
		MemoryContextSwitchTo(cxt);

		if (ops == round_start || (max_ops > 0 && ops >= max_ops))
			break;
	}

	/* no switch recorded the bounds: record them if they changed */
	if (ops == 0)
	{
		Buffer		metabuf = lock_meta_exclusive(index);
		IvfMetaPageData *m = IvfPageGetMeta(BufferGetPage(metabuf));

		if (m->target_size != ms.target_size ||
			m->split_bound != ms.split_bound ||
			m->merge_bound != ms.merge_bound)
		{
			GenericXLogState *state = GenericXLogStart(index);

			m = IvfPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0));
			m->target_size = ms.target_size;
			m->split_bound = ms.split_bound;
			m->merge_bound = ms.merge_bound;
			GenericXLogFinish(state);
		}
		UnlockReleaseBuffer(metabuf);
	}

	/* the retired lists no view can read any more, this run's later */
	out->lists_recycled += ms.recycled + ivf_recycle_retired(index, self_idle);

	ivf_unlock_index(index, IVF_MAINTENANCE_LOCK, ExclusiveLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return true;
}

/* ------------------------------------------------------------- SQL */

/*
 * ivf_rebalance(index regclass, max_ops int DEFAULT NULL) -> (splits,
 * merges, vectors_copied, vectors_reassigned, lists_recycled): the
 * maintenance VACUUM runs, on demand.  The caller must own the index (as
 * for REINDEX); refused during recovery and on format 2-3 indexes; with
 * adaptive off it does nothing and says so.
 */
PG_FUNCTION_INFO_V1(ivf_rebalance);
Datum
ivf_rebalance(PG_FUNCTION_ARGS)
{
	Oid			indexoid;
	int			max_ops = 0;
	Relation	index;
	Relation	heap;
	IvfMetaPageData meta;
	IvfMaintainStats st;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {0};

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	indexoid = PG_GETARG_OID(0);
	if (!PG_ARGISNULL(1))
	{
		max_ops = PG_GETARG_INT32(1);
		if (max_ops < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_ops must be at least 1, not %d", max_ops)));
	}
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot rebalance index \"%s\" during recovery",
						get_rel_name(indexoid) ? get_rel_name(indexoid) : "?"),
				 errhint("Rebalance it on the primary; the standby replays the result.")));
	PreventCommandIfReadOnly("ivf_rebalance()");

	index = ivf_open_index(indexoid, &heap, "ivf_rebalance", IVF_OPEN_OWNER);
	ivf_read_meta(index, &meta);
	memset(&st, 0, sizeof(st));
	if (meta.version < 4)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s index \"%s\" has format version %u, whose lists cannot change",
						ivf_am_name(index), RelationGetRelationName(index),
						meta.version),
				 errhint("REINDEX the index to give it the current format.")));
	if (!ivf_maintenance_enabled(index, &meta))
		ereport(NOTICE,
				(errmsg("%s index \"%s\" is not adaptive: its lists stay as built",
						ivf_am_name(index), RelationGetRelationName(index)),
				 (meta.flags & IVF_META_ADAPTIVE) ?
				 errhint("ALTER INDEX %s SET (adaptive = on) lets VACUUM and ivf_rebalance change them.",
						 quote_identifier(RelationGetRelationName(index))) :
				 errhint("It was built with adaptive = off; REINDEX it with adaptive = on to let its lists change.")));
	else
		ivf_maintain(index, -1, false, false, &st, max_ops);

	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);

	values[0] = Int64GetDatum((int64) st.splits);
	values[1] = Int64GetDatum((int64) st.merges);
	values[2] = Int64GetDatum((int64) st.vectors_copied);
	values[3] = Int64GetDatum((int64) st.vectors_reassigned);
	values[4] = Int64GetDatum((int64) st.lists_recycled);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
