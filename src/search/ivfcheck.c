/*-------------------------------------------------------------------------
 *
 * ivfcheck.c
 *	  ivf_check(index): verify an ivfflat index's structure and report
 *	  every problem found; ivf_index_info(index): what the index holds.
 *
 * The check walks the meta page, every centroid and directory page, every
 * list chain (page types, list numbers, slot counts, segment pages, tail and
 * insertion hint, group counts, no page reachable twice), every vector
 * (finite, unit length for cosine, within its list's radius) and every TID
 * (distinct, and pointing at a heap line pointer that is in use: live, dead
 * or redirected, but not unused, which would mean VACUUM removed the heap
 * tuple and left the index entry behind).
 *
 * Self-balancing lists (src/README "Crash safety"): the slots live at the
 * meta page's generation G are the index's lists, each TID in one of them
 * once and as many as nlists; lists retired at G (dead <= G, kept until
 * recycled) must be frozen whole and may hold deleted pages while their
 * recycling runs; lists born above G (an operation in progress or
 * abandoned) are checked like the others, but their TIDs, like retired
 * lists', are copies of live lists' rows and may repeat them; a frozen
 * group is allowed only in a list carrying a dead stamp.  Stamps above G, retired lists and deleted pages are legitimate
 * states, reported by ivf_check as NOTICEs, not as problems.  It takes the same share locks as
 * a scan, one page at a time, so it can run beside inserts and VACUUM; run
 * it on a quiet index for an exact picture.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <float.h>
#include <math.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relation.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "ivfformat.h"
#include "ivfmetric.h"
#include "ivfoptions.h"
#include "ivfpage.h"
#include "ivfquantizer.h"
#include "ivfsql.h"
#include "listscan.h"

typedef struct CheckState
{
	Relation	index;
	Relation	heap;
	IvfMetaPageData meta;
	IvfGeometry g;
	BlockNumber nblocks;
	bool	   *seen;			/* per block: reached from the structure */
	Tuplestorestate *problems;
	TupleDesc	desc;
	int			nproblems;
	/* totals for ivf_index_info */
	int64		vectors;
	int64		dead_slots;
	int64		groups;
	int64		empty_lists;
	int64		max_list;
	/* slots by state at the meta page's generation (src/README) */
	uint32		live_lists;
	uint32		retired_lists;
	uint32		recyclable_lists;	/* retired, past every xmin now */
	uint32		new_lists;		/* born above the generation */
	uint32		dying_lists;	/* live, stamped dead above it */
	uint32		free_slots;
	int64		frozen_groups;
	int64		deleted_pages;
	int64		*tids;			/* packed, for the duplicate check */
	int64		ntids;
	int64		captids;
	/* the centroid stream (NULL if unreadable) and scratch space */
	float	   *cstream;
	float	   *cb1;			/* codebook 1's lo and step rows, or NULL */
	float	   *residual;
	uint8	   *code;
	float	   *vec;			/* a multi-page vector, gathered */
	double		gamma;			/* strict_order's rounding slack (ivfscan.c) */
} CheckState;

#define MAX_PROBLEMS 1000

static void
problem(CheckState *cs, const char *fmt,...) pg_attribute_printf(2, 3);

static void
problem(CheckState *cs, const char *fmt,...)
{
	StringInfoData buf;
	va_list		args;
	Datum		value;
	bool		isnull = false;

	cs->nproblems++;
	if (cs->problems == NULL || cs->nproblems > MAX_PROBLEMS)
		return;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	value = CStringGetTextDatum(buf.data);
	tuplestore_putvalues(cs->problems, cs->desc, &value, &isnull);
	pfree(buf.data);
}

/* Mark a block as reached; false (and a problem) if out of range or seen. */
static bool
visit(CheckState *cs, BlockNumber blkno, const char *what, uint32 list)
{
	if (blkno >= cs->nblocks)
	{
		problem(cs, "list %u: %s points to block %u beyond the end of the index (%u blocks)",
				list, what, blkno, cs->nblocks);
		return false;
	}
	if (cs->seen[blkno])
	{
		problem(cs, "list %u: %s block %u is reachable twice", list, what, blkno);
		return false;
	}
	cs->seen[blkno] = true;
	return true;
}

static void
check_floats(CheckState *cs, const float *x, uint32 n, uint32 list,
			 BlockNumber blkno, uint32 slot, double *normsq)
{
	uint32		i;

	for (i = 0; i < n; i++)
	{
		if (!isfinite(x[i]))
		{
			problem(cs, "list %u: block %u slot %u holds a non-finite value",
					list, blkno, slot);
			return;
		}
		*normsq += (double) x[i] * x[i];
	}
}

static void
check_heap_tid(CheckState *cs, ItemPointer tid, uint32 list, BlockNumber blkno)
{
	BlockNumber hblk = ItemPointerGetBlockNumber(tid);
	OffsetNumber off = ItemPointerGetOffsetNumber(tid);
	Buffer		hbuf;
	Page		hpage;
	ItemId		lp;

	if (cs->heap == NULL)
		return;
	if (hblk >= RelationGetNumberOfBlocks(cs->heap))
	{
		problem(cs, "list %u: block %u holds TID (%u,%u) beyond the end of the table",
				list, blkno, hblk, off);
		return;
	}
	hbuf = ReadBuffer(cs->heap, hblk);
	LockBuffer(hbuf, BUFFER_LOCK_SHARE);
	hpage = BufferGetPage(hbuf);
	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(hpage))
		problem(cs, "list %u: block %u holds TID (%u,%u) past the last line pointer of its heap page",
				list, blkno, hblk, off);
	else
	{
		lp = PageGetItemId(hpage, off);
		if (!ItemIdIsUsed(lp))
			problem(cs, "list %u: block %u holds TID (%u,%u) whose heap line pointer is unused",
					list, blkno, hblk, off);
	}
	UnlockReleaseBuffer(hbuf);
}

/* what a list slot is at the generation checked */
typedef enum SlotKind
{
	SLOT_LIVE,					/* born <= G < dead: one of the index's lists */
	SLOT_RETIRED,				/* dead <= G: frozen, waiting to be recycled */
	SLOT_NEW,					/* born > G: under construction, or abandoned */
	SLOT_FREE					/* never born (born = IVF_GEN_NEVER) */
} SlotKind;

static SlotKind
slot_kind(const IvfListEntry *e, uint32 gen)
{
	if (ivf_entry_free(e))
		return SLOT_FREE;
	if (e->born > gen)
		return SLOT_NEW;
	if (e->dead <= gen)
		return SLOT_RETIRED;
	return SLOT_LIVE;
}

/* a page of a list that recycling marked deleted (flags = DELETED alone) */
static bool
page_deleted(Page page)
{
	return !PageIsNew(page) && IvfPageGetOpaque(page)->page_id == IVF_PAGE_ID &&
		IvfPageGetOpaque(page)->flags == IVF_PAGE_DELETED;
}

static void
check_list(CheckState *cs, uint32 list, const IvfListEntry *e, SlotKind kind)
{
	const IvfGeometry *g = &cs->g;
	BlockNumber blkno = e->head;
	BlockNumber last = InvalidBlockNumber;
	bool		hint_found = false;
	uint32		ngroups = 0;
	int64		nlist = 0;
	float		maxdist = 0;	/* largest member distance to the centroid */
	BlockNumber maxblk = InvalidBlockNumber;
	uint32		maxslot = 0;
	bool		radius_ok = e->radius >= 0;
	uint32		listid = ivf_entry_list_id(e, list);
	bool		live = (kind == SLOT_LIVE);
	uint32		unfrozen = 0;	/* retired: groups not frozen */
	BlockNumber unfrozen_blk = InvalidBlockNumber;

	/* strict_order's bound needs radius >= 0; NaN would rule nothing out */
	if (!radius_ok)
		problem(cs, "list %u: radius %g is negative or NaN", list, e->radius);

	if (!BlockNumberIsValid(e->head))
	{
		if (BlockNumberIsValid(e->tail) || BlockNumberIsValid(e->insert) || e->ngroups != 0)
			problem(cs, "list %u: empty list has tail %u, insert %u, %u groups",
					list, e->tail, e->insert, e->ngroups);
		if (live)
			cs->empty_lists++;
		return;
	}

	while (BlockNumberIsValid(blkno))
	{
		Buffer		buf;
		Page		page;
		IvfPageOpaque op;
		uint32		nvec;
		uint32		i;
		uint32		s;
		Buffer		segbufs[IVF_MAX_SEGMENTS];
		Page		segpages[IVF_MAX_SEGMENTS];
		uint32		nsegok = 1;

		CHECK_FOR_INTERRUPTS();
		if (!visit(cs, blkno, "group", list))
			return;

		buf = ReadBuffer(cs->index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		op = IvfPageGetOpaque(page);
		if (kind == SLOT_RETIRED && page_deleted(page))
		{
			/* recycling deletes a retired list's pages in chain order */
			cs->deleted_pages++;
			if (blkno == e->insert)
				hint_found = true;
			ngroups++;
			last = blkno;
			blkno = op->next;
			UnlockReleaseBuffer(buf);
			continue;
		}
		if (PageIsNew(page) || op->page_id != IVF_PAGE_ID ||
			(op->flags & IVF_PAGE_LIST) == 0)
		{
			problem(cs, "list %u: block %u is not a list head page", list, blkno);
			UnlockReleaseBuffer(buf);
			return;
		}
		if (op->list != listid)
			problem(cs, "list %u: block %u is labelled list id 0x%08X, the list's is 0x%08X",
					list, blkno, op->list, listid);
		if (op->flags & IVF_PAGE_FROZEN)
		{
			cs->frozen_groups++;
			/* copied into a list under construction: only in a list replaced */
			if (e->dead == IVF_GEN_NEVER)
				problem(cs, "list %u: block %u is frozen, but no operation replaces the list (dead never)",
						list, blkno);
		}
		else if (kind == SLOT_RETIRED && unfrozen++ == 0)
			unfrozen_blk = blkno;
		nvec = op->nvec;
		if (nvec > g->vecs_per_group)
		{
			problem(cs, "list %u: block %u has %u slots in use, capacity %u",
					list, blkno, nvec, g->vecs_per_group);
			nvec = g->vecs_per_group;
		}
		if (((PageHeader) page)->pd_lower != ivf_head_lower(g, nvec))
			problem(cs, "list %u: block %u has pd_lower %u, expected %u",
					list, blkno, ((PageHeader) page)->pd_lower,
					(unsigned) ivf_head_lower(g, nvec));

		segpages[0] = page;
		for (s = 1; s < g->nsegments; s++)
		{
			BlockNumber sblk = ivf_head_segblocks(page)[s - 1];
			Page		sp;

			if (!visit(cs, sblk, "segment", list))
				break;
			segbufs[s] = ReadBuffer(cs->index, sblk);
			LockBuffer(segbufs[s], BUFFER_LOCK_SHARE);
			sp = BufferGetPage(segbufs[s]);
			if (kind == SLOT_RETIRED && page_deleted(sp))
			{
				/* its slots' vectors are gone: not read below */
				cs->deleted_pages++;
				UnlockReleaseBuffer(segbufs[s]);
				break;
			}
			segpages[s] = sp;
			nsegok = s + 1;
			if (PageIsNew(sp) || IvfPageGetOpaque(sp)->page_id != IVF_PAGE_ID ||
				(IvfPageGetOpaque(sp)->flags & IVF_PAGE_SEGMENT) == 0 ||
				IvfPageGetOpaque(sp)->list != listid)
			{
				problem(cs, "list %u: block %u, segment %u of group %u, is not a segment page of the list",
						list, sblk, s, blkno);
				break;
			}
			if (g->codes)
			{
				/* float page s - 1 holds slots [first, first + fpp) */
				uint32		first = (s - 1) * g->floats_per_page;
				uint32		used = (nvec > first) ? Min(nvec - first, g->floats_per_page) : 0;

				if (used > 0 &&
					((PageHeader) sp)->pd_lower < g->seg_floats_off + used * g->dims * g->elem_size)
					problem(cs, "list %u: float block %u has pd_lower %u below its %u slots",
							list, sblk, ((PageHeader) sp)->pd_lower, used);
			}
			else if (((PageHeader) sp)->pd_lower < g->seg_floats_off + nvec * g->seg_dims * g->elem_size)
				problem(cs, "list %u: segment block %u has pd_lower %u below its %u slots",
						list, sblk, ((PageHeader) sp)->pd_lower, nvec);
		}

		for (i = 0; i < nvec; i++)
		{
			ItemPointer tid = &ivf_head_tids(page, g)[i];
			double		normsq = 0;
			bool		complete;

			if (!ItemPointerIsValid(tid))
			{
				if (live)
					cs->dead_slots++;
				continue;
			}
			/* a float page that is not one was reported above */
			complete = g->codes ? 1 + ivf_slot_fpage(g, i) < nsegok :
				nsegok == g->nsegments;
			/* the slot's vector, widened to float (half elements) */
			if (g->codes && complete)
			{
				ivf_load_elems(g->elem, cs->vec,
							   ivf_slot_elems(segpages[1 + ivf_slot_fpage(g, i)], g, i),
							   g->dims);
				check_floats(cs, cs->vec, g->dims, list, blkno, i, &normsq);
			}
			else if (!g->codes)
				for (s = 0; s < nsegok && s < g->nsegments; s++)
				{
					float	   *part = cs->vec + (Size) s * g->seg_dims;

					ivf_load_elems(g->elem, part,
								   ivf_page_row(segpages[s], g, s == 0, i),
								   ivf_seg_dims(g, s));
					check_floats(cs, part, ivf_seg_dims(g, s), list, blkno, i,
								 &normsq);
				}
			if (g->codes && i == 0 && (e->flags & IVF_LIST_CODEBOOK1) &&
				!BlockNumberIsValid(cs->meta.codebook[1]))
				problem(cs, "list %u: uses codebook 1, which the index does not have", list);
			/* a list's codes use codebook 0, or 1 when it says so */
			if (g->codes && cs->cstream && complete &&
				(!(e->flags & IVF_LIST_CODEBOOK1) || cs->cb1 != NULL))
			{
				const float *lo = (e->flags & IVF_LIST_CODEBOOK1) ? cs->cb1 :
					ivf_stream_sq8_lo(&cs->meta, cs->cstream);
				float		err;
				float		cnorm;

				err = ivf_encode_vector(cs->vec,
										cs->cstream + (Size) list * g->dims,
										lo, lo + g->dims, g->dims, cs->residual,
										cs->code, &cnorm);
				if (memcmp(cs->code, ivf_head_codes(page, g) + (Size) i * g->dims, g->dims) != 0 ||
					err != ivf_head_errs(page, g)[i] ||
					cnorm != ivf_head_cnorms(page, g)[i])
					problem(cs, "list %u: block %u slot %u: code, error or code norm does not match the vector",
							list, blkno, i);
			}
			if (cs->cstream && complete && radius_ok)
			{
				float		dist;

				/* as the build and insert compute it (ivf_member_radius) */
				dist = ivf_member_radius(cs->vec, cs->cstream + (Size) list * g->dims,
										 g->dims);
				/* NaN: a non-finite value, reported above */
				if (dist > maxdist)
				{
					maxdist = dist;
					maxblk = blkno;
					maxslot = i;
				}
			}
			/* half elements: each within 2^-11 of the unit vector's */
			if (cs->meta.metric == IVF_METRIC_COSINE && complete &&
				fabs(normsq - 1.0) > (g->elem == IVF_ELEM_HALF ? 4e-3 : 1e-3))
				problem(cs, "list %u: block %u slot %u is not unit length (norm^2 %g) in a cosine index",
						list, blkno, i, normsq);
			/*
			 * VACUUM walks every list that is not free, so every TID's line
			 * pointer is in use; new and retired lists hold copies of live
			 * rows, so only live lists' TIDs must be distinct.
			 */
			check_heap_tid(cs, tid, list, blkno);
			if (!live)
				continue;
			if (cs->ntids == cs->captids)
			{
				cs->captids *= 2;
				cs->tids = repalloc_huge(cs->tids, sizeof(int64) * cs->captids);
			}
			cs->tids[cs->ntids++] = ivf_tid_to_id(tid);
			cs->vectors++;
			nlist++;
		}

		for (s = 1; s < nsegok; s++)
			UnlockReleaseBuffer(segbufs[s]);

		if (blkno == e->insert)
			hint_found = true;
		ngroups++;
		last = blkno;
		blkno = op->next;
		UnlockReleaseBuffer(buf);
	}

	/* step 5 switches only once every old list is frozen to its tail */
	if (unfrozen > 0)
		problem(cs, "list %u: retired at generation %u (dead %u) with unfrozen groups: %u, the first at block %u",
				list, cs->meta.generation, e->dead, unfrozen, unfrozen_blk);
	if (live)
	{
		cs->groups += ngroups;
		cs->max_list = Max(cs->max_list, nlist);
	}
	if (last != e->tail)
		problem(cs, "list %u: directory says tail %u, chain ends at %u", list, e->tail, last);
	if (!hint_found)
		problem(cs, "list %u: insertion hint %u is not a group of the list", list, e->insert);
	if (ngroups != e->ngroups)
		problem(cs, "list %u: directory says %u groups, chain has %u", list, e->ngroups, ngroups);

	/*
	 * With the slack strict_order gives the radius, it must cover every
	 * member.  An insert may have raised it since the directory was read:
	 * its vector was published with the raise, so reading the entry again
	 * now sees a radius covering every vector the walk saw.
	 */
	if (radius_ok && !((double) maxdist <= (double) e->radius * (1 + cs->gamma)))
	{
		IvfListEntry now;

		ivf_read_list_entry(cs->index, &cs->meta, g, list, &now);
		if (!((double) maxdist <= (double) now.radius * (1 + cs->gamma)))
			problem(cs, "list %u: radius %.9g is below the distance %.9g of its member at block %u slot %u to the centroid",
					list, now.radius, maxdist, maxblk, maxslot);
	}
}

/*
 * Visit the chain of centroid pages from blkno, checking their floats;
 * returns the floats they hold.
 */
static Size
check_float_chain(CheckState *cs, BlockNumber blkno, const char *what)
{
	Size		done = 0;

	while (BlockNumberIsValid(blkno))
	{
		Buffer		buf;
		Page		page;
		IvfPageOpaque op;
		double		normsq = 0;
		BlockNumber next;

		CHECK_FOR_INTERRUPTS();
		if (!visit(cs, blkno, what, 0))
			break;
		buf = ReadBuffer(cs->index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		op = IvfPageGetOpaque(page);
		if (op->page_id != IVF_PAGE_ID || (op->flags & IVF_PAGE_CENTROID) == 0)
		{
			problem(cs, "block %u is not a centroid page", blkno);
			UnlockReleaseBuffer(buf);
			break;
		}
		check_floats(cs, (float *) PageGetContents(page),
					 Min(op->nvec, cs->g.centroid_floats_per_page), 0, blkno, 0, &normsq);
		done += op->nvec;
		next = op->next;
		UnlockReleaseBuffer(buf);
		blkno = next;
	}
	return done;
}

static void
run_check(CheckState *cs)
{
	uint32		list;
	uint32		i;
	IvfListEntry *dir;
	Size		total;
	Size		done = 0;
	int64		k;

	cs->nblocks = RelationGetNumberOfBlocks(cs->index);
	cs->seen = palloc0(sizeof(bool) * Max(cs->nblocks, 1));
	cs->captids = 1024;
	cs->tids = palloc(sizeof(int64) * cs->captids);

	ivf_read_meta(cs->index, &cs->meta);
	ivf_meta_geometry(&cs->meta, &cs->g);
	cs->seen[IVF_METAPAGE_BLKNO] = true;
	cs->vec = palloc(sizeof(float) * cs->meta.dims);

	/* the element type (format 3) must be the operator class's */
	if (cs->meta.elem_type != (uint32) ivf_index_elem(cs->index))
		problem(cs, "meta page: element type %s, but the operator class indexes %s",
				ivf_elem_name((IvfElemType) cs->meta.elem_type),
				ivf_elem_name(ivf_index_elem(cs->index)));

	/*
	 * Centroid pages: one chain from centroid_start (format 2-3: the
	 * stream, codebook rows included; 4: every slot's row), then in format
	 * 4 with codes codebook 0's chain.
	 */
	total = ivf_centroid_rows(&cs->meta) * cs->meta.dims;
	done = check_float_chain(cs, cs->meta.centroid_start, "centroid page");
	if (cs->meta.version >= 4 && (cs->meta.flags & IVF_META_CODES))
	{
		if (!BlockNumberIsValid(cs->meta.codebook[0]))
			problem(cs, "meta page: codes but no codebook");
		else
			done += check_float_chain(cs, cs->meta.codebook[0], "codebook page");
	}
	if (cs->meta.version >= 4 && (cs->meta.flags & IVF_META_CODES) &&
		BlockNumberIsValid(cs->meta.codebook[1]) &&
		check_float_chain(cs, cs->meta.codebook[1], "codebook page") != 2 * (Size) cs->meta.dims)
		problem(cs, "codebook 1's pages do not hold %u floats", 2 * cs->meta.dims);
	if (done != total)
		problem(cs, "centroid pages hold %zu floats, expected %zu", (size_t) done, (size_t) total);
	else
	{
		/* the codes are checked against them, the radii from them */
		cs->cstream = palloc_extended(total * sizeof(float), MCXT_ALLOC_HUGE);
		ivf_load_centroids(cs->index, &cs->meta, cs->cstream);
		if ((cs->meta.flags & IVF_META_CODES) &&
			BlockNumberIsValid(cs->meta.codebook[1]))
		{
			cs->cb1 = palloc(sizeof(float) * 2 * cs->meta.dims);
			ivf_load_codebook1(cs->index, &cs->meta, cs->cb1);
		}
		cs->residual = palloc(sizeof(float) * cs->meta.dims);
		cs->code = palloc(cs->meta.dims);
	}
	cs->gamma = (double) (cs->meta.dims + 16) * FLT_EPSILON;

	/* directory pages, then every list slot */
	dir = palloc(sizeof(IvfListEntry) * cs->meta.nslots);
	for (i = 0; i < cs->meta.directory_npages; i++)
	{
		BlockNumber blkno = cs->meta.dir_blocks[i];
		Buffer		buf;
		Page		page;
		IvfPageOpaque op;
		uint32		first = i * cs->g.directory_entries_per_page;
		uint32		n;

		if (first >= cs->meta.nslots)
			break;
		n = Min(cs->meta.nslots - first, cs->g.directory_entries_per_page);

		if (!visit(cs, blkno, "directory page", 0))
			continue;
		buf = ReadBuffer(cs->index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		op = IvfPageGetOpaque(page);
		if (op->page_id != IVF_PAGE_ID || (op->flags & IVF_PAGE_DIRECTORY) == 0 ||
			op->nvec != n)
		{
			problem(cs, "block %u is not the directory page for lists %u..%u",
					blkno, first, first + n - 1);
			memset(dir + first, 0xFF, sizeof(IvfListEntry) * n);
			for (list = first; list < first + n; list++)
			{
				dir[list].ngroups = 0;
				dir[list].radius = 0;
				dir[list].born = 0;
				dir[list].dead = IVF_GEN_NEVER;
				dir[list].incarnation = 0;
			}
		}
		else
			ivf_dir_entries_get(page, &cs->g, 0, n, first, dir + first);
		UnlockReleaseBuffer(buf);
	}

	for (list = 0; list < cs->meta.nslots; list++)
	{
		const IvfListEntry *e = &dir[list];
		SlotKind	kind = slot_kind(e, cs->meta.generation);

		switch (kind)
		{
			case SLOT_FREE:
				cs->free_slots++;
				continue;
			case SLOT_LIVE:
				cs->live_lists++;
				if (e->dead != IVF_GEN_NEVER)
					cs->dying_lists++;
				break;
			case SLOT_RETIRED:
				cs->retired_lists++;
				/* retire_xid 0: not stamped yet (maintenance writes it) */
				if (e->retire_xid != 0 &&
					ivf_full_xid_recyclable(FullTransactionIdFromU64(e->retire_xid)))
					cs->recyclable_lists++;
				break;
			case SLOT_NEW:
				cs->new_lists++;
				break;
		}
		check_list(cs, list, e, kind);
	}
	if (cs->live_lists != cs->meta.nlists)
		problem(cs, "meta page: %u lists, but %u list slots are live at generation %u",
				cs->meta.nlists, cs->live_lists, cs->meta.generation);

	/*
	 * Pages no list reaches: count those recycling deleted (they wait in
	 * the free space map for reuse).  Others are legitimate too: the pages
	 * of a multi-page group whose creation an error interrupted.
	 */
	for (k = 0; k < cs->nblocks; k++)
	{
		Buffer		buf;

		if (cs->seen[k])
			continue;
		CHECK_FOR_INTERRUPTS();
		buf = ReadBuffer(cs->index, (BlockNumber) k);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		if (page_deleted(BufferGetPage(buf)))
			cs->deleted_pages++;
		UnlockReleaseBuffer(buf);
	}

	/* every TID once */
	qsort(cs->tids, cs->ntids, sizeof(int64), ivf_cmp_int64);
	for (k = 1; k < cs->ntids; k++)
	{
		if (cs->tids[k] == cs->tids[k - 1])
		{
			ItemPointerData tid;

			ivf_id_to_tid(cs->tids[k], &tid);
			problem(cs, "TID (%u,%u) is indexed more than once",
					ItemPointerGetBlockNumber(&tid), ItemPointerGetOffsetNumber(&tid));
		}
	}
}

/* both report what the index holds of the table's rows: SELECT, no RLS */
static void
open_for_check(CheckState *cs, Oid indexoid, const char *caller)
{
	memset(cs, 0, sizeof(*cs));
	cs->index = ivf_open_index(indexoid, &cs->heap, caller, IVF_OPEN_READ);

	/* line pointers are only meaningful for heap tables */
	if (cs->heap->rd_rel->relam != HEAP_TABLE_AM_OID)
	{
		table_close(cs->heap, AccessShareLock);
		cs->heap = NULL;
	}
}

static void
close_check(CheckState *cs)
{
	index_close(cs->index, AccessShareLock);
	if (cs->heap)
		table_close(cs->heap, AccessShareLock);
}

/*
 * States of the lists that are not problems but worth knowing, as NOTICEs:
 * stamps above the generation (an operation running, or abandoned until
 * the next maintenance rolls it back), retired lists waiting for
 * recycling, deleted pages.
 */
static void
report_states(CheckState *cs)
{
	if (cs->new_lists > 0 || cs->dying_lists > 0)
		ereport(NOTICE,
				(errmsg("index \"%s\" has list slots stamped above generation %u: an operation in progress or abandoned",
						RelationGetRelationName(cs->index), cs->meta.generation),
				 errdetail("%u new lists, %u lists to be replaced; %u frozen groups.",
						   cs->new_lists, cs->dying_lists, (uint32) Min(cs->frozen_groups, PG_UINT32_MAX)),
				 errhint("The next maintenance (VACUUM, ivf_rebalance) rolls an abandoned operation back.")));
	if (cs->retired_lists > 0 || cs->deleted_pages > 0)
		ereport(NOTICE,
				(errmsg("index \"%s\" holds %u retired lists (%u of them past every transaction's horizon now) and %lld deleted pages",
						RelationGetRelationName(cs->index), cs->retired_lists,
						cs->recyclable_lists, (long long) cs->deleted_pages)));
}

PG_FUNCTION_INFO_V1(ivf_check);
Datum
ivf_check(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CheckState	cs;
	TupleDesc	desc;
	Tuplestorestate *store;

	desc = CreateTemplateTupleDesc(1);
	TupleDescInitEntry(desc, 1, "problem", TEXTOID, -1, 0);
	store = ivf_srf_materialize(fcinfo, desc);
	desc = rsinfo->setDesc;

	open_for_check(&cs, indexoid, __func__);
	cs.problems = store;
	cs.desc = desc;
	run_check(&cs);
	if (cs.nproblems > MAX_PROBLEMS)
		problem(&cs, "... and %d more problems", cs.nproblems - MAX_PROBLEMS);
	report_states(&cs);
	close_check(&cs);
	return (Datum) 0;
}

/*
 * ivf_index_info(index) -> one row describing the index: its parameters
 * and what a full walk finds.
 */
PG_FUNCTION_INFO_V1(ivf_index_info);
Datum
ivf_index_info(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	TupleDesc	desc;
	CheckState	cs;
	Datum		values[26];
	bool		nulls[26] = {0};
	int			i = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	open_for_check(&cs, indexoid, __func__);
	{
		/* no TID checks needed for the summary */
		Relation	heap = cs.heap;

		cs.heap = NULL;
		run_check(&cs);
		cs.heap = heap;
	}

	values[i++] = CStringGetTextDatum(ivf_metric_name((IvfMetric) cs.meta.metric));
	values[i++] = Int32GetDatum(cs.meta.dims);
	values[i++] = Int32GetDatum(cs.meta.nlists);
	values[i++] = Int32GetDatum(cs.meta.lists_requested);
	if (cs.meta.lists_requested == 0)
		nulls[i - 1] = true;
	values[i++] = Int32GetDatum(ivf_index_default_nprobe(cs.index, &cs.meta));
	values[i++] = Int64GetDatum((int64) cs.meta.seed);
	values[i++] = Int64GetDatum((int64) cs.meta.ntrain);
	values[i++] = Int64GetDatum((int64) cs.meta.nbuilt);
	values[i++] = Int64GetDatum(cs.vectors);
	values[i++] = Int64GetDatum(cs.dead_slots);
	values[i++] = Int64GetDatum(cs.empty_lists);
	values[i++] = Int64GetDatum(cs.max_list);
	values[i++] = Int64GetDatum((int64) cs.nblocks);
	values[i++] = Int32GetDatum(cs.g.vecs_per_group);
	values[i++] = CStringGetTextDatum((cs.meta.flags & IVF_META_ORDERED) ?
									  "residual_norm_asc" : "none");
	values[i++] = BoolGetDatum((cs.meta.flags & IVF_META_CODES) != 0);
	/* 0.2.0: the element type (0.1.0's function has 16 columns) */
	values[i++] = CStringGetTextDatum(ivf_elem_name((IvfElemType) cs.meta.elem_type));
	/* 0.2.0: the format and the self-balancing lists (src/README) */
	values[i++] = Int32GetDatum((int32) cs.meta.version);
	values[i++] = BoolGetDatum(cs.meta.version >= 4 &&
							   ivf_get_options(cs.index)->adaptive);
	values[i++] = Int64GetDatum((int64) cs.meta.generation);
	values[i++] = Int32GetDatum((int32) cs.meta.nslots);
	values[i++] = Int64GetDatum((int64) cs.meta.nsplits);
	values[i++] = Int64GetDatum((int64) cs.meta.nmerges);
	values[i++] = Int64GetDatum((int64) cs.meta.vectors_copied);
	values[i++] = Int64GetDatum((int64) cs.meta.vectors_reassigned);
	values[i++] = Int64GetDatum((int64) cs.meta.lists_recycled);
	Assert(i == lengthof(values));

	close_check(&cs);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
