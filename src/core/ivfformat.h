/*-------------------------------------------------------------------------
 *
 * ivfformat.h
 *	  The on-disk format of an ivfflat index and its geometry: what src/README
 *	  describes.  A change of the format touches this header (and
 *	  ivf_geometry() in ivfpage.c) only.
 *
 * This header is the single description of the index's pages; src/README
 * explains them in prose (page types, locking, WAL).  In short:
 *
 *	block 0                 meta page (IvfMetaPageData)
 *	blocks 1 ..             centroid pages, one chain: each list slot's
 *	                        centroid row, whole rows to a page (a row wider
 *	                        than a page: a run of pages), found through the
 *	                        slot's directory entry (cblock, crow)
 *	then (codes)            codebook 0's pages: the lo and step rows
 *	then                    directory pages (the meta page's dir_blocks): one
 *	                        IvfListEntry per list slot
 *	then                    list pages, in "groups": a group is one head page
 *	                        plus nsegments-1 segment pages and stores up to
 *	                        vecs_per_group vectors of one list.  At build the
 *	                        groups of each list are written consecutively.
 *
 * With IVF_META_CODES (the prefilter option) a group is instead one head
 * page holding every slot's TID, error and 8-bit code, and nsegments - 1
 * "float pages" holding the slots' vectors, floats_per_page slots each:
 *
 *	head:        header | float page blocks | TIDs[vpg] | errs[vpg] | cnorms[vpg] | codes[vpg][dims]
 *	float page f: header | floats of slots [f * fpp, (f + 1) * fpp)
 *
 * codes[i] is the 8-bit scalar quantization of slot i's residual
 * x - centroid(list) against the per-dimension lo/step rows (codebook 0,
 * on pages of its own; format 2-3: after the centroids), errs[i] is
 * |residual - decoded residual| and cnorms[i] is |step * codes[i]|^2
 * (which turns the L2 bound into a dot product), so a scan gets a
 * guaranteed lower bound of every distance from the head pages alone
 * (dense codes, streamed like Faiss's lists) and reads a float page only
 * for the few slots that bound does not rule out.
 *
 * The vectors on list pages ("floats" above) are float4, or IEEE half
 * floats for the halfvec operator classes (IvfMetaPageData.elem_type,
 * format 3): every offset and count of the geometry scales with
 * IvfGeometry.elem_size.  Centroids, lo/step rows, errs and cnorms stay
 * float.
 *
 * That is format 4.  Formats 2 and 3 (still read) have the centroids as
 * one row-major stream cut into pages, with codes followed by the lo and
 * step rows, then consecutive directory pages of IvfListEntryV3; readers
 * see them as format 4 through ivf_read_meta (ivf_meta_from_v3),
 * ivf_load_centroids and ivf_dir_entries_get.
 *
 * Every page carries IvfPageOpaqueData in its special space with
 * IVF_PAGE_ID and a page-type flag, so pages identify themselves.  All data
 * lives between the page header and pd_lower (pd_upper == pd_special): the
 * hole that full-page images and log_newpage_range compress away is always
 * unused.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFFORMAT_H
#define IVF_IVFFORMAT_H

#include "compat.h"

#include "storage/block.h"
#include "storage/bufpage.h"
#include "storage/itemptr.h"

#define IVF_MAGIC			0x49564631	/* "IVF1" */
#define IVF_FORMAT_VERSION	4	/* 2: IvfListEntry.radius; 3: elem_type; 4:
								 * directory of list slots (see below) */
#define IVF_FORMAT_VERSION_MIN	2	/* the oldest version still read */
#define IVF_PAGE_ID			0xFF8C
#define IVF_METAPAGE_BLKNO	0

#define IVF_MAX_DIM			16000
#define IVF_MIN_LISTS		1
#define IVF_MAX_LISTS		32768
#define IVF_MAX_SEGMENTS	16

/*
 * Format 4: the directory is an array of list slots on up to
 * IVF_MAX_DIR_PAGES pages named by the meta page (127 entries a page:
 * 50,800 slots, room for IVF_MAX_LISTS live lists and the retired ones
 * waiting to be recycled).  A list id is a slot (low 16 bits) and the
 * slot's incarnation (high 16 bits).
 */
#define IVF_MAX_DIR_PAGES	400
#define IVF_GEN_NEVER		0xFFFFFFFF	/* IvfListEntry.dead of a list not
										 * retired */
#define IVF_CODEBOOKS		2

static inline uint32
ivf_list_id(uint32 slot, uint32 incarnation)
{
	return (incarnation << 16) | slot;
}

static inline uint32
ivf_list_id_slot(uint32 id)
{
	return id & 0xFFFF;
}

/* page types (IvfPageOpaqueData.flags) */
#define IVF_PAGE_META		0x0001
#define IVF_PAGE_CENTROID	0x0002
#define IVF_PAGE_DIRECTORY	0x0004
#define IVF_PAGE_LIST		0x0008	/* head page of a list group */
#define IVF_PAGE_SEGMENT	0x0010	/* segment page of a list group */

/*
 * Page states (src/README "Split, step by step", "Recycling").  FROZEN is
 * set on a group's head beside IVF_PAGE_LIST once maintenance copied the
 * group into a list under construction: no insert may add to it.  DELETED
 * alone (no type bit) marks a page of a recycled list, free for reuse.
 */
#define IVF_PAGE_FROZEN		0x0100
#define IVF_PAGE_DELETED	0x0200

/*
 * The heavyweight locks of list restructuring (ivf_lock_index in
 * ivfpage.c): the maintenance lock, held by the one backend restructuring
 * the lists (and by ambulkdelete), and the switch lock, held exclusively
 * by the maintainer from its stamps to the switch record and in share mode
 * by an insert that finds a closed list (src/README "Inserts", "Locking
 * order").  Object locks on the index, told apart by these sub-ids.
 */
#define IVF_MAINTENANCE_LOCK	1
#define IVF_SWITCH_LOCK			2

/* metrics, stored in the meta page */
typedef enum IvfMetric
{
	IVF_METRIC_L2 = 1,			/* vector_l2_ops: squared L2 */
	IVF_METRIC_IP = 2,			/* vector_ip_ops: negative inner product */
	IVF_METRIC_COSINE = 3		/* vector_cosine_ops: vectors stored unit
								 * length, 1 - dot */
} IvfMetric;

/*
 * The element type of the list pages' vectors, stored in the meta page
 * (format 3).  Version-2 meta pages hold zero there (PageInit zeroes the
 * page), which is IVF_ELEM_FLOAT: they are read unchanged.  Centroids are
 * always float.
 */
typedef enum IvfElemType
{
	IVF_ELEM_FLOAT = 0,			/* float4: the vector classes */
	IVF_ELEM_HALF = 1			/* IEEE binary16: the halfvec classes */
} IvfElemType;

/* bytes of one element */
static inline uint32
ivf_elem_size(IvfElemType elem)
{
	return elem == IVF_ELEM_HALF ? sizeof(uint16) : sizeof(float);
}

/* support procedure numbers of the operator classes */
#define IVF_DISTANCE_PROC	1	/* (vector, vector) -> float8, the metric */
#define IVF_NORM_PROC		2	/* optional (vector) -> float8: normalize */
#define IVF_NPROCS			2

/* the ordering operator */
#define IVF_ORDERBY_STRATEGY 1

/* meta flags */
#define IVF_META_EMPTY_BUILD	0x0001	/* built from no rows: one list */
#define IVF_META_ORDERED		0x0002	/* lists written nearest-to-centroid
										 * first (list_ordering) */
#define IVF_META_CODES			0x0008	/* the code layout of groups; the
										 * centroid stream ends with the
										 * codes' lo and step rows */
#define IVF_META_ADAPTIVE		0x0010	/* format 4: the adaptive option was on
										 * at build (maintenance may change
										 * the lists) */
#define IVF_META_KNOWN_FLAGS	(IVF_META_EMPTY_BUILD | IVF_META_ORDERED | IVF_META_CODES | IVF_META_ADAPTIVE)

typedef struct IvfPageOpaqueData
{
	BlockNumber next;			/* list head: next group's head page; centroid
								 * and directory pages: next page; else
								 * InvalidBlockNumber */
	uint32		list;			/* list id (list pages; format 2-3: the list
								 * number, which is the id of slot list,
								 * incarnation 0), else 0 */
	uint16		nvec;			/* list head: slots in use (dead ones
								 * included); centroid page: floats; directory
								 * page: entries */
	uint16		flags;			/* IVF_PAGE_* */
	uint16		unused;
	uint16		page_id;		/* IVF_PAGE_ID */
} IvfPageOpaqueData;

typedef IvfPageOpaqueData *IvfPageOpaque;

#define IvfPageGetOpaque(page) ((IvfPageOpaque) PageGetSpecialPointer(page))

/*
 * The same where it is read for every page of a scan: ivf_init_page puts
 * the special space at IVF_PAGE_SPECIAL_OFF on every page, and reading it
 * there saves loading pd_special, a cache miss of its own on a page that
 * was just pinned.
 */
#define IvfPageGetOpaqueAt(page) \
	((IvfPageOpaque) ((char *) (page) + IVF_PAGE_SPECIAL_OFF))

/*
 * The meta page.  The fields up to elem_type are formats 2 and 3's at the
 * same offsets; format 4 appends the rest (zero on an older page, which
 * ivf_read_meta fills in as a fixed index of its layout would have them).
 *
 * 'generation' counts switches of the set of live lists (src/README
 * "Generations and the directory"): 1 at build.  Every scan and insert
 * reads it (ivf_read_generation) and rebuilds its cache when it moved.
 * 'nlists' is the number of lists live at 'generation', 'nslots' the
 * directory slots in use (live, retired or under construction).
 */
typedef struct IvfMetaPageData
{
	uint32		magic;
	uint32		version;
	uint32		generation;		/* switches; 1 at build */
	uint16		metric;			/* IvfMetric */
	uint16		flags;			/* IVF_META_* */
	uint32		dims;
	uint32		nlists;			/* lists live at generation */
	uint32		lists_requested;	/* the reloption, 0 when chosen from rows */
	uint32		default_nprobe; /* nprobe when neither ivf.nprobe nor the
								 * index's nprobe option is set */
	uint64		seed;			/* k-means seed */
	uint64		ntrain;			/* vectors the centroids were trained on */
	uint64		nbuilt;			/* vectors written at build */
	/* geometry of the other pages; checked against ivf_geometry() on read */
	BlockNumber centroid_start; /* first centroid page */
	uint32		centroid_npages;	/* format 2-3: the stream's pages */
	BlockNumber directory_start;	/* = dir_blocks[0] */
	uint32		directory_npages;	/* = the elements of dir_blocks in use */
	uint32		nsegments;		/* pages per list group */
	uint32		seg_dims;		/* dims stored per segment (last: rest) */
	uint32		vecs_per_group; /* vector slots per group */
	uint32		elem_type;		/* IvfElemType (format 3; 0 before) */

	/* format 4 */
	uint32		nslots;			/* directory slots in use */
	uint32		oldest_gen;		/* views older than this are void */
	BlockNumber centroid_tail;	/* the centroid page new rows go to */
	BlockNumber codebook[IVF_CODEBOOKS];	/* codes: first page of each
											 * codebook (lo row, step row),
											 * or invalid */
	uint32		target_size;	/* vectors per list maintenance aims at */
	uint32		split_bound;	/* a list above it is split */
	uint32		merge_bound;	/* a list below it is merged */
	uint64		nsplits;		/* counters, for ivf_index_info */
	uint64		nmerges;
	uint64		vectors_copied;
	uint64		vectors_reassigned;
	uint64		lists_recycled;
	BlockNumber dir_blocks[IVF_MAX_DIR_PAGES];	/* slot s: entry s % per
												 * page of dir_blocks[s /
												 * per page] */
} IvfMetaPageData;

/* the bytes of the meta page formats 2 and 3 wrote */
#define IVF_META_V3_SIZE	offsetof(IvfMetaPageData, nslots)

typedef IvfMetaPageData *IvfMetaPage;

#define IvfPageGetMeta(page) ((IvfMetaPage) PageGetContents(page))

/*
 * One list slot in the directory (format 4; 64 bytes, 127 to a page).
 * head/tail change when the list gets its first group or a new one;
 * 'insert' is a hint: a group of this list at or before which no group
 * has a free slot.  Groups never leave their list, so any of these stays a
 * valid page of the list for as long as the list is not recycled.
 *
 * 'radius' is at least |x - centroid| (Euclidean, of the stored vector,
 * whatever the metric) for every vector ever put in the list: set by the
 * build, raised by an insert in the WAL record that publishes its vector,
 * never lowered.  strict_order scans bound unprobed lists with it
 * (ivfscan.c).
 *
 * The list is live at generation g when born <= g < dead.  Its centroid
 * is row crow of centroid page cblock (a row wider than a page: the chain
 * of pages from cblock, crow 0).  src/README "Generations and the
 * directory" says who writes the rest.
 */
typedef struct IvfListEntry
{
	BlockNumber head;			/* first group's head page, or invalid */
	BlockNumber tail;			/* last group's head page, or invalid */
	BlockNumber insert;			/* insertion hint, or invalid */
	uint32		ngroups;		/* groups in the chain */
	uint32		nbuilt;			/* vectors placed here at build */
	float4		radius;			/* max distance of a member to the centroid */
	/* format 4 */
	uint32		born;			/* first generation the list is live at */
	uint32		dead;			/* first generation it is not, or
								 * IVF_GEN_NEVER */
	uint64		retire_xid;		/* FullTransactionId after the switch that
								 * retired it, or 0 */
	uint32		nlive;			/* live vectors, as last counted */
	BlockNumber cblock;			/* centroid page */
	uint32		crow;			/* row on it */
	uint16		incarnation;	/* the slot's reuse count: the id's high half */
	uint16		flags;			/* IVF_LIST_* */
	uint32		unused[2];
} IvfListEntry;

#define IVF_LIST_OVERFULL	0x0001	/* an insert found it above split_bound */
#define IVF_LIST_CODEBOOK1	0x0002	/* its codes use codebook 1 */

/*
 * Formats 2 and 3's directory entry: the first six fields of
 * IvfListEntry, at the same offsets, which are what inserts and VACUUM
 * change in place (ivf_dir_entry_ptr); ivf_read_list_entry and the
 * directory walks convert the rest (born 0, dead never, incarnation 0, the
 * centroid at row 'list' of the stream).
 */
typedef struct IvfListEntryV3
{
	BlockNumber head;
	BlockNumber tail;
	BlockNumber insert;
	uint32		ngroups;
	uint32		nbuilt;
	float4		radius;
} IvfListEntryV3;

StaticAssertDecl(sizeof(IvfListEntry) == 64, "IvfListEntry is 64 bytes");
StaticAssertDecl(offsetof(IvfListEntry, radius) == offsetof(IvfListEntryV3, radius) &&
				 offsetof(IvfListEntry, nbuilt) == offsetof(IvfListEntryV3, nbuilt) &&
				 offsetof(IvfListEntry, ngroups) == offsetof(IvfListEntryV3, ngroups) &&
				 offsetof(IvfListEntry, insert) == offsetof(IvfListEntryV3, insert),
				 "format 4 directory entries begin with format 3's");

/* the list's id, from its entry and slot */
static inline uint32
ivf_entry_list_id(const IvfListEntry *e, uint32 slot)
{
	return ivf_list_id(slot, e->incarnation);
}

/*
 * A free slot (never used, recycled, or rolled back) is never live: born
 * is IVF_GEN_NEVER.  It keeps its incarnation and its centroid row.
 */
static inline bool
ivf_entry_free(const IvfListEntry *e)
{
	return e->born == IVF_GEN_NEVER;
}

/* live at generation g */
static inline bool
ivf_entry_live(const IvfListEntry *e, uint32 g)
{
	return e->born <= g && g < e->dead;
}

/*
 * Geometry derived from dims and BLCKSZ: where things are on a page.
 */
typedef struct IvfGeometry
{
	uint32		dims;
	IvfElemType elem;			/* the stored elements' type */
	uint32		elem_size;		/* bytes per stored element: 4 or 2 */
	uint32		nsegments;
	uint32		seg_dims;
	uint32		vecs_per_group;
	bool		codes;			/* the code layout (see above) */
	uint32		floats_per_page;	/* code layout: slots per float page */
	uint32		head_tids_off;	/* offset of the TID array on a head page */
	uint32		head_errs_off;	/* offset of the errs array (codes only) */
	uint32		head_cnorms_off;	/* offset of the cnorms array (codes) */
	uint32		head_codes_off; /* offset of the code block (codes only) */
	uint32		head_floats_off;	/* offset of the float block, head page */
	uint32		seg_floats_off; /* offset of the float block, segment pages */
	uint32		centroid_floats_per_page;
	uint32		centroid_rows_per_page; /* format 4: whole rows on a page, or 0
										 * when a row spans pages */
	uint32		centroid_pages_per_row; /* format 4: 1, or the pages of a row */
	uint32		directory_entry_size;	/* sizeof(IvfListEntry), format 2-3:
										 * sizeof(IvfListEntryV3) */
	uint32		directory_entries_per_page;
} IvfGeometry;

#define IVF_PAGE_DATA_OFF	MAXALIGN(SizeOfPageHeaderData)
#define IVF_PAGE_SPECIAL_OFF (BLCKSZ - MAXALIGN(sizeof(IvfPageOpaqueData)))
#define IVF_FLOAT_ALIGN		32

/* dims of segment s */
static inline uint32
ivf_seg_dims(const IvfGeometry *g, uint32 s)
{
	return (s + 1 < g->nsegments) ? g->seg_dims : g->dims - s * g->seg_dims;
}

static inline BlockNumber *
ivf_head_segblocks(Page page)
{
	return (BlockNumber *) ((char *) page + IVF_PAGE_DATA_OFF);
}

static inline ItemPointerData *
ivf_head_tids(Page page, const IvfGeometry *g)
{
	return (ItemPointerData *) ((char *) page + g->head_tids_off);
}

/* pd_lower of a head page with nvec slots in use */
static inline uint16
ivf_head_lower(const IvfGeometry *g, uint32 nvec)
{
	if (g->codes)
		return g->head_codes_off + nvec * g->dims;
	return g->head_floats_off + nvec * g->seg_dims * g->elem_size;
}

/* code layout: index among the float pages of the one holding slot i */
static inline uint32
ivf_slot_fpage(const IvfGeometry *g, uint32 i)
{
	Assert(g->codes);
	return i / g->floats_per_page;
}

/*
 * code layout: slot i's vector (dims elements of elem_size bytes), on its
 * float page
 */
static inline char *
ivf_slot_elems(Page fpage, const IvfGeometry *g, uint32 i)
{
	Assert(g->codes);
	return (char *) fpage + g->seg_floats_off +
		(Size) (i % g->floats_per_page) * g->dims * g->elem_size;
}

static inline float *
ivf_head_errs(Page page, const IvfGeometry *g)
{
	Assert(g->codes);
	return (float *) ((char *) page + g->head_errs_off);
}

/* |step * code|^2 of each slot, for the L2 bound as a dot product */
static inline float *
ivf_head_cnorms(Page page, const IvfGeometry *g)
{
	Assert(g->codes);
	return (float *) ((char *) page + g->head_cnorms_off);
}

static inline uint8 *
ivf_head_codes(Page page, const IvfGeometry *g)
{
	Assert(g->codes);
	return (uint8 *) ((char *) page + g->head_codes_off);
}

/*
 * Rows of the centroids as ivf_load_centroids returns them: each list
 * slot's centroid, then with codes codebook 0's lo and step rows (formats
 * 2 and 3 stored exactly this stream on their centroid pages)
 */
static inline Size
ivf_centroid_rows(const IvfMetaPageData *meta)
{
	return (Size) meta->nslots + ((meta->flags & IVF_META_CODES) ? 2 : 0);
}

/* with codes: the lo row in a centroid stream, the step row after it */
static inline float *
ivf_stream_sq8_lo(const IvfMetaPageData *meta, float *stream)
{
	Assert(meta->flags & IVF_META_CODES);
	return stream + (Size) meta->nslots * meta->dims;
}

/*
 * Without codes: the element block of a head (head) or segment page, and
 * slot i's row in it (seg_dims elements of elem_size bytes; the last
 * segment's rows are as long, only their first ivf_seg_dims are used).
 */
static inline char *
ivf_page_elems(Page page, const IvfGeometry *g, bool head)
{
	return (char *) page + (head ? g->head_floats_off : g->seg_floats_off);
}

static inline char *
ivf_page_row(Page page, const IvfGeometry *g, bool head, uint32 i)
{
	return ivf_page_elems(page, g, head) + (Size) i * g->seg_dims * g->elem_size;
}

/* lay out list groups for vectors of dims elements (ivfpage.c) */
extern void ivf_geometry(uint32 dims, bool codes, IvfElemType elem,
						 IvfGeometry *g);

/* format 2-3's directory entries in a geometry */
extern void ivf_geometry_v3_directory(IvfGeometry *g);

/* the geometry an index's meta page describes */
static inline void
ivf_meta_geometry(const IvfMetaPageData *meta, IvfGeometry *g)
{
	ivf_geometry(meta->dims, (meta->flags & IVF_META_CODES) != 0,
				 (IvfElemType) meta->elem_type, g);
	if (meta->version < 4)
		ivf_geometry_v3_directory(g);
}

static inline int64
ivf_tid_to_id(ItemPointer tid)
{
	return ((int64) ItemPointerGetBlockNumberNoCheck(tid) << 16) |
		ItemPointerGetOffsetNumberNoCheck(tid);
}

static inline void
ivf_id_to_tid(int64 id, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (id >> 16), (OffsetNumber) (id & 0xFFFF));
}

#endif							/* IVF_IVFFORMAT_H */
