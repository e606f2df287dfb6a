/*-------------------------------------------------------------------------
 *
 * ivfpage.c
 *	  The index's pages: geometry, new pages, the meta page and the
 *	  per-backend cache of it with the centroids, the directory.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "distance.h"
#include "ivfformat.h"
#include "ivfpage.h"
#include "ivfquantizer.h"

/* --------------------------------------------------------------- geometry */

/*
 * Lay out list groups for vectors of 'dims' elements of type 'elem' (4 or
 * 2 bytes each: everything that holds vectors scales with it).  A group
 * holds the same vector slots on every one of its pages; page s holds dims
 * [s*seg_dims, ...) of each vector, so distances (sums over dimensions) are
 * computed page by page and added.  Up to ~2000 dims (~4000 of halves) a
 * group is one page.  With 'codes', the code layout instead (ivfformat.h):
 * a head page with every slot's TID, error and code, and float pages with
 * the vectors; when a vector does not fit a page (above 2036 dims, 4072 of
 * halves) the group gets no codes, which g->codes reports.
 */
void
ivf_geometry(uint32 dims, bool codes, IvfElemType elem, IvfGeometry *g)
{
	uint32		esz = ivf_elem_size(elem);
	uint32		avail_floats;
	uint32		s;

	Assert(dims >= 1 && dims <= IVF_MAX_DIM);
	memset(g, 0, sizeof(*g));
	g->dims = dims;
	g->elem = elem;
	g->elem_size = esz;

	if (codes)
	{
		uint32		seg_floats_off = TYPEALIGN(IVF_FLOAT_ALIGN, IVF_PAGE_DATA_OFF);
		uint32		fpp = (IVF_PAGE_SPECIAL_OFF - seg_floats_off) / (dims * esz);
		uint32		f;

		/*
		 * The fewest float pages f that hold the slots the head can then
		 * describe (each float page's block number takes head room too).
		 */
		for (f = 1; fpp > 0 && f < IVF_MAX_SEGMENTS; f++)
		{
			uint32		tids_off = IVF_PAGE_DATA_OFF + f * sizeof(BlockNumber);
			uint32		per = dims + 2 * sizeof(float) + sizeof(ItemPointerData);
			uint32		cap;
			uint32		errs_off = 0;
			uint32		codes_off = 0;

			for (cap = (IVF_PAGE_SPECIAL_OFF - tids_off) / per; cap > 0; cap--)
			{
				errs_off = TYPEALIGN(sizeof(float), tids_off + cap * sizeof(ItemPointerData));
				codes_off = TYPEALIGN(IVF_FLOAT_ALIGN, errs_off + 2 * cap * sizeof(float));
				if (codes_off + (Size) cap * dims <= IVF_PAGE_SPECIAL_OFF)
					break;
			}
			if (cap == 0)
				break;
			if (cap > f * fpp && f + 1 < IVF_MAX_SEGMENTS)
				continue;
			cap = Min(Min(cap, f * fpp), PG_UINT16_MAX);
			errs_off = TYPEALIGN(sizeof(float), tids_off + cap * sizeof(ItemPointerData));
			codes_off = TYPEALIGN(IVF_FLOAT_ALIGN, errs_off + 2 * cap * sizeof(float));

			g->codes = true;
			g->floats_per_page = fpp;
			g->nsegments = 1 + (cap + fpp - 1) / fpp;
			g->seg_dims = dims;
			g->vecs_per_group = cap;
			g->head_tids_off = tids_off;
			g->head_errs_off = errs_off;
			g->head_cnorms_off = errs_off + cap * sizeof(float);
			g->head_codes_off = codes_off;
			g->head_floats_off = 0;	/* no floats on the head */
			g->seg_floats_off = seg_floats_off;
			break;
		}
	}

	for (s = 1; s <= IVF_MAX_SEGMENTS && !g->codes; s++)
	{
		uint32		seg_dims = (dims + s - 1) / s;
		uint32		tids_off = IVF_PAGE_DATA_OFF + (s - 1) * sizeof(BlockNumber);
		uint32		cap;

		/* the largest slot count whose TIDs and floats fit the head page */
		for (cap = (IVF_PAGE_SPECIAL_OFF - tids_off) / (seg_dims * esz + sizeof(ItemPointerData));
			 cap > 0; cap--)
		{
			uint32		floats_off = TYPEALIGN(IVF_FLOAT_ALIGN, tids_off + cap * sizeof(ItemPointerData));

			if (floats_off + (Size) cap * seg_dims * esz <= IVF_PAGE_SPECIAL_OFF)
				break;
		}
		if (cap == 0)
			continue;
		/* nvec is a uint16 */
		cap = Min(cap, PG_UINT16_MAX);

		g->nsegments = s;
		g->seg_dims = seg_dims;
		g->vecs_per_group = cap;
		g->head_tids_off = tids_off;
		g->head_floats_off = TYPEALIGN(IVF_FLOAT_ALIGN, tids_off + cap * sizeof(ItemPointerData));
		g->seg_floats_off = TYPEALIGN(IVF_FLOAT_ALIGN, IVF_PAGE_DATA_OFF);
		break;
	}
	if (g->nsegments == 0)
		elog(ERROR, "ivfflat: no page layout for %u dimensions", dims);

	avail_floats = (IVF_PAGE_SPECIAL_OFF - IVF_PAGE_DATA_OFF) / sizeof(float);
	g->centroid_floats_per_page = avail_floats;
	g->centroid_rows_per_page = avail_floats / dims;
	g->centroid_pages_per_row = (dims + avail_floats - 1) / avail_floats;
	g->directory_entry_size = sizeof(IvfListEntry);
	g->directory_entries_per_page = (IVF_PAGE_SPECIAL_OFF - IVF_PAGE_DATA_OFF) / sizeof(IvfListEntry);
}

/* Formats 2 and 3: 24-byte directory entries, the centroids a stream. */
void
ivf_geometry_v3_directory(IvfGeometry *g)
{
	g->centroid_rows_per_page = 0;
	g->centroid_pages_per_row = 0;
	g->directory_entry_size = sizeof(IvfListEntryV3);
	g->directory_entries_per_page = (IVF_PAGE_SPECIAL_OFF - IVF_PAGE_DATA_OFF) / sizeof(IvfListEntryV3);
}

/* ------------------------------------------------------------------ pages */

void
ivf_init_page(Page page, uint16 flags, uint32 list)
{
	IvfPageOpaque opaque;

	PageInit(page, BLCKSZ, MAXALIGN(sizeof(IvfPageOpaqueData)));
	opaque = IvfPageGetOpaque(page);
	opaque->next = InvalidBlockNumber;
	opaque->list = list;
	opaque->nvec = 0;
	opaque->flags = flags;
	opaque->unused = 0;
	opaque->page_id = IVF_PAGE_ID;
}

/*
 * A new, exclusively locked buffer: a page from the free space map if one
 * is there, else a new block at the end of the relation.  The caller
 * initialises the page (through GenericXLog with a full image).
 */
Buffer
ivf_new_buffer(Relation index)
{
	Buffer		buffer;
	bool		needLock;

	for (;;)
	{
		BlockNumber blkno = GetFreeIndexPage(index);

		if (blkno == InvalidBlockNumber)
			break;

		buffer = ReadBuffer(index, blkno);

		/* someone else may hold it after all: then try another */
		if (ConditionalLockBuffer(buffer))
		{
			if (PageIsNew(BufferGetPage(buffer)))
				return buffer;
			/* a page of a recycled list (ivfrecycle.c) is free too */
			if (IvfPageGetOpaque(BufferGetPage(buffer))->flags == 0 ||
				IvfPageGetOpaque(BufferGetPage(buffer))->flags == IVF_PAGE_DELETED)
				return buffer;
			LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		}
		ReleaseBuffer(buffer);
	}

	needLock = !RELATION_IS_LOCAL(index);
	if (needLock)
		LockRelationForExtension(index, ExclusiveLock);
	buffer = ReadBuffer(index, P_NEW);
	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	if (needLock)
		UnlockRelationForExtension(index, ExclusiveLock);

	return buffer;
}

/*
 * The SQL name of the index's access method, for messages: ivfflat or ivf
 * under the standalone extension, ivf under ivf_pgvector, where "ivfflat
 * index" would name pgvector's access method instead.
 */
char *
ivf_am_name(Relation index)
{
	char	   *name = get_am_name(index->rd_rel->relam);

	return name != NULL ? name : pstrdup("ivf");
}

/* --------------------------------------------------------------- meta page */

void
ivf_check_meta(Relation index, const IvfMetaPageData *meta)
{
	IvfGeometry g;

	if (meta->magic != IVF_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not an %s index of this extension",
						RelationGetRelationName(index), ivf_am_name(index)),
				 errdetail("Magic number is 0x%08X, expected 0x%08X.",
						   meta->magic, IVF_MAGIC)));
	if (meta->version < IVF_FORMAT_VERSION_MIN ||
		meta->version > IVF_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has format version %u, this build reads versions %d to %d",
						RelationGetRelationName(index), meta->version,
						IVF_FORMAT_VERSION_MIN, IVF_FORMAT_VERSION),
				 errhint("REINDEX the index.")));
	/* version 2 had no element type: its (zeroed) field must read float */
	if ((meta->elem_type != IVF_ELEM_FLOAT && meta->elem_type != IVF_ELEM_HALF) ||
		(meta->version < 3 && meta->elem_type != IVF_ELEM_FLOAT))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has an invalid element type %u",
						RelationGetRelationName(index), meta->elem_type),
				 errdetail("The meta page has format version %u.", meta->version)));
	if (meta->flags & ~IVF_META_KNOWN_FLAGS)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" uses a page layout this build does not read",
						RelationGetRelationName(index)),
				 errdetail("Meta page flags are 0x%04X.", meta->flags),
				 errhint("REINDEX the index.")));
	if (meta->dims < 1 || meta->dims > IVF_MAX_DIM ||
		meta->nlists < 1 || meta->nlists > IVF_MAX_LISTS)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has an invalid meta page",
						RelationGetRelationName(index)),
				 errdetail("The meta page gives %u dimensions and %u lists.", meta->dims, meta->nlists)));

	if (meta->version < 4 && (meta->flags & IVF_META_ADAPTIVE))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" uses a page layout this build does not read",
						RelationGetRelationName(index)),
				 errdetail("Meta page flags are 0x%04X with format version %u.",
						   meta->flags, meta->version),
				 errhint("REINDEX the index.")));

	ivf_meta_geometry(meta, &g);
	if (meta->nslots < meta->nlists ||
		meta->directory_npages < 1 || meta->directory_npages > IVF_MAX_DIR_PAGES ||
		meta->nslots > (uint64) meta->directory_npages * g.directory_entries_per_page)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has an invalid meta page",
						RelationGetRelationName(index)),
				 errdetail("The meta page gives %u live lists, %u list slots and %u directory pages.",
						   meta->nlists, meta->nslots, meta->directory_npages)));
	if (g.nsegments != meta->nsegments || g.seg_dims != meta->seg_dims ||
		g.vecs_per_group != meta->vecs_per_group ||
		g.codes != ((meta->flags & IVF_META_CODES) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" was built with a different page layout",
						RelationGetRelationName(index)),
				 errhint("REINDEX the index.")));
}

/* buf (block 0) locked in 'mode', after checking that it is a meta page */
Page
ivf_lock_meta_page(Relation index, Buffer buf, int mode)
{
	Page		page;

	LockBuffer(buf, mode);
	page = BufferGetPage(buf);
	if (PageIsNew(page) ||
		(IvfPageGetOpaque(page)->flags & IVF_PAGE_META) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has no valid meta page",
						RelationGetRelationName(index))));
	return page;
}

void
ivf_read_meta(Relation index, IvfMetaPageData *meta)
{
	Buffer		buf;
	Page		page;

	buf = ReadBuffer(index, IVF_METAPAGE_BLKNO);
	page = ivf_lock_meta_page(index, buf, BUFFER_LOCK_SHARE);
	memcpy(meta, IvfPageGetMeta(page), sizeof(IvfMetaPageData));
	UnlockReleaseBuffer(buf);

	if (meta->version < 4)
		ivf_meta_from_v3(meta);
	ivf_check_meta(index, meta);
}

/*
 * A format 2 or 3 meta page as format 4 describes the same index: every
 * list a slot, live since generation 0, the directory pages consecutive,
 * the codes' lo and step rows at the end of the centroid stream (no
 * codebook pages).  The fields format 4 added are zeroed first: they lie
 * past what those formats wrote.
 */
void
ivf_meta_from_v3(IvfMetaPageData *meta)
{
	uint32		i;

	memset((char *) meta + IVF_META_V3_SIZE, 0,
		   sizeof(IvfMetaPageData) - IVF_META_V3_SIZE);
	meta->nslots = meta->nlists;
	meta->centroid_tail = InvalidBlockNumber;
	for (i = 0; i < IVF_CODEBOOKS; i++)
		meta->codebook[i] = InvalidBlockNumber;
	for (i = 0; i < Min(meta->directory_npages, IVF_MAX_DIR_PAGES); i++)
		meta->dir_blocks[i] = meta->directory_start + i;
}

/*
 * The meta page's generation, read with a share lock held for the read:
 * what a scan or an insert takes as its view (src/README "Generations and
 * the directory").  The page is checked as ivf_read_meta checks it when
 * the cache is built.  Read through the cache's recent-buffer hints
 * (ivf_read_buffer), since every scan and insert reads it: a hit skips the
 * buffer-mapping lookup.
 */
uint32
ivf_read_generation(Relation index)
{
	Buffer		buf;
	Page		page;
	uint32		generation;

	buf = ivf_read_buffer(index, IVF_METAPAGE_BLKNO);
	page = ivf_lock_meta_page(index, buf, BUFFER_LOCK_SHARE);
	generation = IvfPageGetMeta(page)->generation;
	UnlockReleaseBuffer(buf);
	return generation;
}

/* block blkno, share-locked, after checking that it is a centroid page */
static Buffer
read_centroid_page(Relation index, BlockNumber blkno)
{
	Buffer		buf = ReadBuffer(index, blkno);
	IvfPageOpaque opaque;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	opaque = IvfPageGetOpaque(BufferGetPage(buf));
	if ((opaque->flags & IVF_PAGE_CENTROID) == 0 ||
		opaque->page_id != IVF_PAGE_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a centroid page",
						RelationGetRelationName(index), blkno)));
	return buf;
}

/*
 * Read 'total' floats from the chain of centroid pages starting at blkno
 * (each page's nvec floats, then its next link) into dest; what names the
 * chain, for the error.
 */
static void
read_float_chain(Relation index, BlockNumber blkno, Size total, float *dest,
				 const char *what)
{
	Size		done = 0;

	while (done < total && BlockNumberIsValid(blkno))
	{
		Buffer		buf = read_centroid_page(index, blkno);
		Page		page = BufferGetPage(buf);
		Size		n = Min((Size) IvfPageGetOpaque(page)->nvec, total - done);

		memcpy(dest + done, PageGetContents(page), n * sizeof(float));
		done += n;
		blkno = IvfPageGetOpaque(page)->next;
		UnlockReleaseBuffer(buf);
	}
	if (done != total)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": %s pages hold %zu of %zu floats",
						RelationGetRelationName(index), what, (size_t) done,
						(size_t) total)));
}

/*
 * Copy the centroids of slots 0 .. nslots-1 into dest, followed with codes
 * by codebook 0's lo and step rows: ivf_centroid_rows() x dims floats, the
 * stream formats 2 and 3 stored as such.  Format 4 finds each slot's row
 * through its directory entry (cblock, crow) and the codebook on its own
 * pages.
 */
void
ivf_load_centroids(Relation index, const IvfMetaPageData *meta, float *dest)
{
	ivf_load_slots(index, meta, dest, NULL);
}

/*
 * ivf_load_centroids, also copying every slot's directory entry to slots
 * (meta->nslots of them) unless it is NULL.
 */
void
ivf_load_slots(Relation index, const IvfMetaPageData *meta, float *dest,
			   IvfListEntry *slots)
{
	IvfGeometry g;
	Size		d = meta->dims;
	Buffer		buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	IvfListEntry *entries;
	uint32		s;

	ivf_meta_geometry(meta, &g);
	if (meta->version < 4)
	{
		read_float_chain(index, meta->centroid_start,
						 ivf_centroid_rows(meta) * d, dest, "centroid");
		if (slots != NULL)
			ivf_read_entries(index, meta, &g, slots);
		return;
	}

	entries = palloc(sizeof(IvfListEntry) * g.directory_entries_per_page);
	for (s = 0; s < meta->nslots; s++)
	{
		uint32		i = s % g.directory_entries_per_page;
		IvfListEntry e;
		float	   *row = dest + (Size) s * d;

		/* a directory page's entries at a time */
		if (i == 0)
		{
			Buffer		dbuf = ivf_read_directory_page(index,
													   meta->dir_blocks[s / g.directory_entries_per_page]);

			ivf_dir_entries_get(BufferGetPage(dbuf), &g, 0,
								Min(meta->nslots - s, g.directory_entries_per_page),
								s, entries);
			UnlockReleaseBuffer(dbuf);
		}
		e = entries[i];
		if (slots != NULL)
			slots[s] = e;
		/* a free slot keeps its row, but nothing reads it */
		if (ivf_entry_free(&e))
		{
			memset(row, 0, d * sizeof(float));
			continue;
		}
		/* centroid pages follow the meta page */
		if (e.cblock == IVF_METAPAGE_BLKNO || !BlockNumberIsValid(e.cblock))
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\": list slot %u names no centroid page (block %u)",
							RelationGetRelationName(index), s, e.cblock)));
		if (g.centroid_rows_per_page == 0)
		{
			/* a row wider than a page: its own chain */
			read_float_chain(index, e.cblock, d, row, "centroid");
			continue;
		}
		if (e.cblock != cur)
		{
			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
			buf = read_centroid_page(index, e.cblock);
			cur = e.cblock;
		}
		if ((Size) (e.crow + 1) * d > IvfPageGetOpaque(BufferGetPage(buf))->nvec)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\": list slot %u names centroid row %u of block %u, which holds %u floats",
							RelationGetRelationName(index), s, e.crow, cur,
							IvfPageGetOpaque(BufferGetPage(buf))->nvec)));
		memcpy(row, (float *) PageGetContents(BufferGetPage(buf)) + (Size) e.crow * d,
			   d * sizeof(float));
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	pfree(entries);

	if (meta->flags & IVF_META_CODES)
	{
		if (!BlockNumberIsValid(meta->codebook[0]))
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\" has codes but no codebook",
							RelationGetRelationName(index))));
		read_float_chain(index, meta->codebook[0], 2 * d,
						 dest + (Size) meta->nslots * d, "codebook");
	}
}

/* codebook 1's lo and step rows (2 x dims floats), which the meta page names */
void
ivf_load_codebook1(Relation index, const IvfMetaPageData *meta, float *dest)
{
	read_float_chain(index, meta->codebook[1], 2 * (Size) meta->dims, dest,
					 "codebook");
}

/*
 * Slots of the recent-buffer hints of a new cache: a power of two, enough
 * for the index's blocks and a quarter more for the groups inserts add
 * (at least 1024), but no more than there are shared buffers (a hint is
 * only of use while its page stays in one) nor 2^18 (2 MB); blocks share a
 * slot beyond that, and the hints are direct-mapped, so a larger index
 * costs hits, not memory.  0 where ReadRecentBuffer() does not exist.
 */
static uint32
ivf_cache_hint_slots(Relation index)
{
#ifdef IVF_HAVE_READ_RECENT_BUFFER
	uint64		want = RelationGetNumberOfBlocks(index);
	uint32		n = 1024;

	want = Min(want + want / 4, (uint64) Max(NBuffers, 1024));
	while (n < want && n < (1U << 18))
		n *= 2;
	return n;
#else
	return 0;
#endif
}

/*
 * Build the cache: one chunk in the index's context, the IvfCache header
 * followed by its arrays, because that chunk is all PostgreSQL frees when
 * it drops rd_amcache (RelationReloadIndexInfo keeps the context of an
 * open index); anything allocated beside it would leak at every reload.
 */
static IvfCache *
ivf_build_cache(Relation index)
{
	IvfMetaPageData meta;
	IvfCache   *cache;
	IvfListEntry *slots;
	float	   *stream;
	char	   *chunk;
	Size		d;
	Size		off_slotc,
				off_centroids,
				off_norms,
				off_maps,
				off_codebook,
				off_ccodes = 0,
				ccode_floats = 0,
				off_recent,
				size;
	bool		ccodes;
	bool		packed;
	float	   *zero = NULL;
	float	   *scratch = NULL;
	float	   *codebook1 = NULL;
	uint32		nlive = 0;
	uint32		nrecent;
	uint32		i;

	/*
	 * The slots first, in this backend's memory: their stamps say which
	 * are live at the meta page's generation (an operation under way has
	 * stamped only generations to come, src/README "Generations and the
	 * directory"), hence the chunk's size.
	 */
	ivf_read_meta(index, &meta);
	d = meta.dims;
	slots = palloc(sizeof(IvfListEntry) * meta.nslots);
	stream = palloc_extended(ivf_centroid_rows(&meta) * d * sizeof(float),
							 MCXT_ALLOC_HUGE);
	ivf_load_slots(index, &meta, stream, slots);
	if ((meta.flags & IVF_META_CODES) && BlockNumberIsValid(meta.codebook[1]))
	{
		codebook1 = palloc(2 * d * sizeof(float));
		ivf_load_codebook1(index, &meta, codebook1);
	}
	for (i = 0; i < meta.nslots; i++)
		if (ivf_entry_live(&slots[i], meta.generation))
			nlive++;
	if (nlive != meta.nlists)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has %u lists live at generation %u, its meta page says %u",
						RelationGetRelationName(index), nlive,
						meta.generation, meta.nlists)));
	/* ranking reads a copy of the live rows unless they are all the slots */
	packed = nlive != meta.nslots;
	ccodes = nlive >= IVF_CENTROID_CODES_MIN_LISTS;
	nrecent = ivf_cache_hint_slots(index);

	/* the layout: each array MAXALIGNed, the hints last */
	off_slotc = MAXALIGN(sizeof(IvfCache));
	off_centroids = off_slotc + MAXALIGN((Size) meta.nslots * d * sizeof(float));
	off_norms = off_centroids + (packed ? MAXALIGN((Size) nlive * d * sizeof(float)) : 0);
	off_maps = off_norms + MAXALIGN((Size) nlive * sizeof(float));
	off_codebook = off_maps + 2 * MAXALIGN((Size) nlive * sizeof(uint32));
	off_recent = off_codebook +
		((meta.flags & IVF_META_CODES) ? MAXALIGN(2 * d * sizeof(float)) : 0) +
		(codebook1 ? MAXALIGN(2 * d * sizeof(float)) : 0);
	if (ccodes)
	{
		/* ccode_lo, ccode_step, ccode_err, ccode_cnorm, then the codes */
		off_ccodes = off_recent;
		ccode_floats = MAXALIGN(sizeof(float) * (2 * d + 2 * (Size) nlive));
		off_recent = off_ccodes + ccode_floats + MAXALIGN((Size) nlive * d);
	}
	size = off_recent + sizeof(IvfRecentBuffer) * (Size) nrecent;
	if (ccodes)
	{
		zero = palloc0(sizeof(float) * d);
		scratch = palloc(sizeof(float) * d);
	}

	/* from here on nothing fails: the chunk is not rd_amcache yet */
	chunk = MemoryContextAllocExtended(index->rd_indexcxt, size,
									   MCXT_ALLOC_HUGE);

	cache = (IvfCache *) chunk;
	memset(cache, 0, sizeof(IvfCache));
	cache->meta = meta;
	ivf_meta_geometry(&meta, &cache->geo);
	cache->nlive = nlive;
	cache->slot_centroids = (float *) (chunk + off_slotc);
	cache->centroids = packed ? (float *) (chunk + off_centroids) : cache->slot_centroids;
	cache->centroid_norms = (float *) (chunk + off_norms);
	cache->live_slot = (uint32 *) (chunk + off_maps);
	cache->live_id = (uint32 *) (chunk + off_maps + MAXALIGN((Size) nlive * sizeof(uint32)));
	memcpy(cache->slot_centroids, stream, (Size) meta.nslots * d * sizeof(float));
	if (meta.flags & IVF_META_CODES)
	{
		cache->sq8_lo = (float *) (chunk + off_codebook);
		cache->sq8_step = cache->sq8_lo + d;
		memcpy(cache->sq8_lo, ivf_stream_sq8_lo(&meta, stream), 2 * d * sizeof(float));
		if (codebook1)
		{
			cache->sq8_lo1 = (float *) (chunk + off_codebook +
										MAXALIGN(2 * d * sizeof(float)));
			cache->sq8_step1 = cache->sq8_lo1 + d;
			memcpy(cache->sq8_lo1, codebook1, 2 * d * sizeof(float));
		}
	}
	nlive = 0;
	for (i = 0; i < meta.nslots; i++)
	{
		if (!ivf_entry_live(&slots[i], meta.generation))
			continue;
		cache->live_slot[nlive] = i;
		cache->live_id[nlive] = ivf_entry_list_id(&slots[i], i);
		if (packed)
			memcpy(cache->centroids + (Size) nlive * d,
				   cache->slot_centroids + (Size) i * d, d * sizeof(float));
		nlive++;
	}
	pfree(stream);
	pfree(slots);
	if (codebook1)
		pfree(codebook1);
	if (ccodes)
	{
		cache->ccode_lo = (float *) (chunk + off_ccodes);
		cache->ccode_step = cache->ccode_lo + d;
		cache->ccode_err = cache->ccode_step + d;
		cache->ccode_cnorm = cache->ccode_err + nlive;
		cache->ccodes = (uint8 *) (chunk + off_ccodes + ccode_floats);
	}
	cache->view_size = off_recent;
	cache->nrecent = nrecent;
	cache->recent = nrecent > 0 ? (IvfRecentBuffer *) (chunk + off_recent) : NULL;
	for (i = 0; i < nrecent; i++)
	{
		cache->recent[i].blkno = InvalidBlockNumber;
		cache->recent[i].buffer = InvalidBuffer;
	}

	ivf_kernels.norm_sq_block(cache->centroids, nlive, d, cache->centroid_norms);
	if (ccodes)
	{
		uint32		l;

		ivf_sq8_train(cache->centroids, nlive, d, cache->ccode_lo,
					  cache->ccode_step);
		for (l = 0; l < nlive; l++)
			cache->ccode_err[l] = ivf_encode_vector(cache->centroids + (Size) l * d,
													zero, cache->ccode_lo,
													cache->ccode_step, d, scratch,
													cache->ccodes + (Size) l * d,
													&cache->ccode_cnorm[l]);
		pfree(zero);
		pfree(scratch);
	}

	return cache;
}

/*
 * The meta page and centroids, cached in rd_amcache (one chunk, see
 * ivf_build_cache), for the view the meta page's generation names now.
 * The generation is read every time (one share lock of block 0): a change
 * of the lists (src/README "Self-balancing lists") advances it without a
 * relcache invalidation, which would not reach a backend that already
 * holds a lock on the index anyway; a cache of another generation is
 * dropped and built again.  Rebuilds (REINDEX, TRUNCATE, VACUUM FULL,
 * CLUSTER, a table rewrite) write a new relfilenode (or, for a table
 * created in the same transaction, may truncate and rebuild in place) and
 * send a relcache invalidation (index_build always does), which drops
 * rd_amcache too.
 */
IvfCache *
ivf_get_cache(Relation index)
{
	IvfCache   *cache = (IvfCache *) index->rd_amcache;

	if (cache != NULL && cache->meta.generation != ivf_read_generation(index))
	{
		index->rd_amcache = NULL;
		pfree(cache);
		cache = NULL;
	}
	if (cache == NULL)
		index->rd_amcache = cache = ivf_build_cache(index);
	return cache;
}

/*
 * A copy of the cache's view in CurrentMemoryContext, without the
 * recent-buffer hints, for a caller that ranks lists across calls of
 * ivf_get_cache (ivf_search's chunks): it stays valid when the cache is
 * rebuilt for another generation or dropped by an invalidation.
 */
IvfCache *
ivf_copy_view(const IvfCache *cache)
{
	char	   *copy = palloc_extended(cache->view_size, MCXT_ALLOC_HUGE);
	IvfCache   *v = (IvfCache *) copy;

	memcpy(copy, cache, cache->view_size);
#define REBASE(field) \
	(v->field = (cache->field == NULL) ? NULL : \
	 (void *) (copy + ((const char *) cache->field - (const char *) cache)))
	REBASE(live_slot);
	REBASE(live_id);
	REBASE(slot_centroids);
	REBASE(centroids);
	REBASE(centroid_norms);
	REBASE(sq8_lo);
	REBASE(sq8_step);
	REBASE(sq8_lo1);
	REBASE(sq8_step1);
	REBASE(ccode_lo);
	REBASE(ccode_step);
	REBASE(ccodes);
	REBASE(ccode_err);
	REBASE(ccode_cnorm);
#undef REBASE
	v->recent = NULL;
	v->nrecent = 0;
	return v;
}

/*
 * ReadBuffer() for the pages a scan reads over and over: list pages.  With
 * a cache (rd_amcache) in place, the buffer that last held the block is
 * tried first with ReadRecentBuffer(), which checks the buffer's tag
 * instead of looking the block up in the shared buffer-mapping table (a
 * cache miss or two per page, the largest cost of scanning short pages).
 * The hints are remembered per backend, in the cache (IvfCache.recent),
 * and dropped with it.
 */
Buffer
ivf_read_buffer(Relation index, BlockNumber blkno)
{
#ifdef IVF_HAVE_READ_RECENT_BUFFER
	IvfCache   *cache = (IvfCache *) index->rd_amcache;
	IvfRecentBuffer *h;
	Buffer		buf;

	if (cache == NULL || cache->nrecent == 0)
		return ReadBuffer(index, blkno);
	h = &cache->recent[blkno & (cache->nrecent - 1)];
	if (h->blkno == blkno && IvfReadRecentBuffer(index, blkno, h->buffer))
		return h->buffer;

	buf = ReadBuffer(index, blkno);
	h->blkno = blkno;
	h->buffer = buf;
	return buf;
#else
	return ReadBuffer(index, blkno);
#endif
}

/* --------------------------------------------------------------- directory */

/* The directory page of list slot 'list', and the entry's index on it. */
BlockNumber
ivf_directory_block(const IvfMetaPageData *meta, const IvfGeometry *g,
					uint32 list, uint32 *slot)
{
	uint32		page = list / g->directory_entries_per_page;

	Assert(page < meta->directory_npages && page < IVF_MAX_DIR_PAGES);
	*slot = list % g->directory_entries_per_page;
	return meta->dir_blocks[page];
}

/*
 * Entry i of a directory page, for the fields every format has at the
 * same offsets (IvfListEntryV3): what inserts and VACUUM change in place.
 */
IvfListEntryV3 *
ivf_dir_entry_ptr(Page page, const IvfGeometry *g, uint32 i)
{
	return (IvfListEntryV3 *) ((char *) PageGetContents(page) +
							   (Size) i * g->directory_entry_size);
}

/*
 * Entry i of a format 4 directory page, whole: for the fields format 4
 * added (the flags), which a format 2-3 entry does not have.
 */
IvfListEntry *
ivf_dir_entry_v4_ptr(Page page, const IvfGeometry *g, uint32 i)
{
	if (g->directory_entry_size != sizeof(IvfListEntry))
		elog(ERROR, "ivf: a format 4 directory entry was asked of an older format");
	return (IvfListEntry *) ((char *) PageGetContents(page) +
							 (Size) i * sizeof(IvfListEntry));
}

/*
 * Copy entries first .. first+n-1 of a directory page to out, the first
 * of them being list slot 'slot'; formats 2 and 3 are converted (born 0,
 * dead never, incarnation 0, the centroid at row 'slot' of the stream).
 */
void
ivf_dir_entries_get(Page page, const IvfGeometry *g, uint32 first, uint32 n,
					uint32 slot, IvfListEntry *out)
{
	uint32		i;

	if (g->directory_entry_size == sizeof(IvfListEntry))
	{
		memcpy(out, (char *) PageGetContents(page) + (Size) first * sizeof(IvfListEntry),
			   (Size) n * sizeof(IvfListEntry));
		return;
	}
	for (i = 0; i < n; i++)
	{
		const IvfListEntryV3 *v3 = ivf_dir_entry_ptr(page, g, first + i);
		IvfListEntry *e = &out[i];

		memset(e, 0, sizeof(*e));
		e->head = v3->head;
		e->tail = v3->tail;
		e->insert = v3->insert;
		e->ngroups = v3->ngroups;
		e->nbuilt = v3->nbuilt;
		e->radius = v3->radius;
		e->born = 0;
		e->dead = IVF_GEN_NEVER;
		e->nlive = v3->nbuilt;
		e->cblock = InvalidBlockNumber;
		e->crow = slot + i;
	}
}

/*
 * A reader of a view (IvfCache) reads only lists live at its generation,
 * and those are not recycled while the view can be in use on the primary
 * (src/README "Recycling").  'entry' was just read from slot 'slot' for
 * list 'id' of the view: if the slot is free or holds a later list, the
 * view is void, which only a standby whose primary recycled the list
 * without knowing of this query can see.  It is reported as a recovery
 * conflict is.
 */
void
ivf_check_view_entry(Relation index, const IvfListEntry *entry, uint32 slot,
					 uint32 id)
{
	if (!ivf_entry_free(entry) && ivf_entry_list_id(entry, slot) == id)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("index \"%s\" was restructured while this query read it",
					RelationGetRelationName(index)),
			 errdetail("List slot %u no longer holds list 0x%08X.", slot, id),
			 RecoveryInProgress() ?
			 errhint("Turn on hot_standby_feedback, so that the primary keeps the lists queries on this standby read.") : 0));
}

/*
 * Take the maintenance or the switch lock of an index (IVF_MAINTENANCE_LOCK,
 * IVF_SWITCH_LOCK); with 'conditional', false when it is not free.  They
 * are locks on the index as a database object (pg_class, its OID, the
 * sub-id), not page locks: PostgreSQL asserts that a backend holding a
 * heavyweight page lock takes no other heavyweight lock but the relation
 * extension lock (page locks are kept out of deadlock detection on that
 * ground), and the maintainer holds both of these, besides the test
 * hook's advisory lock.  Object locks take part in deadlock detection like
 * any other.  Nothing else locks a relation as an object: relations are
 * locked by their own tag.
 */
bool
ivf_lock_index(Relation index, uint16 which, LOCKMODE mode, bool conditional)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, RelationRelationId,
					   RelationGetRelid(index), which);
	return LockAcquire(&tag, mode, false, conditional) != LOCKACQUIRE_NOT_AVAIL;
}

void
ivf_unlock_index(Relation index, uint16 which, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, RelationRelationId,
					   RelationGetRelid(index), which);
	LockRelease(&tag, mode, false);
}

/*
 * The view this backend reads lists of now (src/README "Hot standby"):
 * noted by scans and ivf_search before they read lists, so that a reader
 * deep in a list walk that finds what a recycled list would leave (a page
 * of another list, a deferred candidate gone) can tell, on a standby,
 * whether the primary voided its view.  Keyed by index: another index's
 * note means nothing here.
 */
static Oid	view_relid = InvalidOid;
static uint32 view_generation = 0;

void
ivf_view_reading(Relation index, uint32 generation)
{
	view_relid = RelationGetRelid(index);
	view_generation = generation;
}

/*
 * On a standby, fail as a recovery conflict does (SQLSTATE 40001) when the
 * view noted for this index is older than the meta page's oldest_gen:
 * the primary, not knowing of this query, recycled lists it reads.  Every
 * step of recycling comes after the record raising oldest_gen, so a reader
 * that passes this check after reading read nothing recycled.  On the
 * primary the transaction horizon rules that out, and nothing is read.
 */
void
ivf_view_check(Relation index)
{
	Buffer		buf;
	uint32		oldest;

	if (!RecoveryInProgress() || view_relid != RelationGetRelid(index))
		return;
	buf = ivf_read_buffer(index, IVF_METAPAGE_BLKNO);
	oldest = IvfPageGetMeta(ivf_lock_meta_page(index, buf, BUFFER_LOCK_SHARE))->oldest_gen;
	UnlockReleaseBuffer(buf);
	if (view_generation < oldest)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("index \"%s\" was restructured while this query read it",
						RelationGetRelationName(index)),
				 errdetail("The primary recycled lists of generation %u, which this query read; the oldest generation still readable is %u.",
						   view_generation, oldest),
				 errhint("Turn on hot_standby_feedback, so that the primary keeps the lists queries on this standby read.")));
}

/*
 * Every slot's directory entry (meta->nslots of them) into out, a
 * directory page at a time, each share-locked for its copy only.
 */
void
ivf_read_entries(Relation index, const IvfMetaPageData *meta,
				 const IvfGeometry *g, IvfListEntry *out)
{
	uint32		s;

	for (s = 0; s < meta->nslots; s += g->directory_entries_per_page)
	{
		Buffer		buf = ivf_read_directory_page(index,
												  meta->dir_blocks[s / g->directory_entries_per_page]);

		ivf_dir_entries_get(BufferGetPage(buf), g, 0,
							Min(meta->nslots - s, g->directory_entries_per_page),
							s, out + s);
		UnlockReleaseBuffer(buf);
	}
}

/* Directory page blkno, share-locked, after checking that it is one. */
Buffer
ivf_read_directory_page(Relation index, BlockNumber blkno)
{
	Buffer		buf = ivf_read_buffer(index, blkno);

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	if ((IvfPageGetOpaque(BufferGetPage(buf))->flags & IVF_PAGE_DIRECTORY) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": block %u is not a directory page",
						RelationGetRelationName(index), blkno)));
	return buf;
}

void
ivf_read_list_entry(Relation index, const IvfMetaPageData *meta,
					const IvfGeometry *g, uint32 list, IvfListEntry *entry)
{
	uint32		slot;
	Buffer		buf;

	buf = ivf_read_directory_page(index, ivf_directory_block(meta, g, list, &slot));
	ivf_dir_entries_get(BufferGetPage(buf), g, slot, 1, list, entry);
	UnlockReleaseBuffer(buf);
}
