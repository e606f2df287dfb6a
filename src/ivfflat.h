/*-------------------------------------------------------------------------
 *
 * ivfflat.h
 *	  The ivfflat index access method: on-disk format and internal API.
 *
 * This header is the single description of the index's pages; src/README
 * explains them in prose (page types, locking, WAL).  In short:
 *
 *	block 0                 meta page (IvfMetaPageData)
 *	blocks 1 ..             centroid pages: the nlists x dims centroid matrix
 *	                        as one row-major float stream, split across pages
 *	then                    directory pages: one IvfListEntry per list
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
 * x - centroid(list) against the per-dimension lo/step rows stored after
 * the centroids, errs[i] is |residual - decoded residual| and cnorms[i] is
 * |step * codes[i]|^2 (which turns the L2 bound into a dot product), so a scan
 * gets a guaranteed lower bound of every distance from the head pages
 * alone (dense codes, streamed like Faiss's lists) and reads a float page
 * only for the few slots that bound does not rule out.
 *
 * Every page carries IvfPageOpaqueData in its special space with
 * IVF_PAGE_ID and a page-type flag, so pages identify themselves.  All data
 * lives between the page header and pd_lower (pd_upper == pd_special): the
 * hole that full-page images and log_newpage_range compress away is always
 * unused.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFFLAT_H
#define IVF_IVFFLAT_H

#include "compat.h"

#include "access/amapi.h"
#include "access/genam.h"
#include "access/generic_xlog.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "storage/block.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"
#include "utils/tuplestore.h"

#include "select.h"
#include "topk.h"

#define IVF_MAGIC			0x49564631	/* "IVF1" */
#define IVF_FORMAT_VERSION	2	/* 2: IvfListEntry.radius */
#define IVF_PAGE_ID			0xFF8C
#define IVF_METAPAGE_BLKNO	0

#define IVF_MAX_DIM			16000
#define IVF_MIN_LISTS		1
#define IVF_MAX_LISTS		32768
#define IVF_MAX_SEGMENTS	16

/* lists from which the cache keeps codes of the centroids */
#define IVF_CENTROID_CODES_MIN_LISTS 64

/* page types (IvfPageOpaqueData.flags) */
#define IVF_PAGE_META		0x0001
#define IVF_PAGE_CENTROID	0x0002
#define IVF_PAGE_DIRECTORY	0x0004
#define IVF_PAGE_LIST		0x0008	/* head page of a list group */
#define IVF_PAGE_SEGMENT	0x0010	/* segment page of a list group */

/* metrics, stored in the meta page */
typedef enum IvfMetric
{
	IVF_METRIC_L2 = 1,			/* vector_l2_ops: squared L2 */
	IVF_METRIC_IP = 2,			/* vector_ip_ops: negative inner product */
	IVF_METRIC_COSINE = 3		/* vector_cosine_ops: vectors stored unit
								 * length, 1 - dot */
} IvfMetric;

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
#define IVF_META_KNOWN_FLAGS	(IVF_META_EMPTY_BUILD | IVF_META_ORDERED | IVF_META_CODES)

typedef struct IvfPageOpaqueData
{
	BlockNumber next;			/* list head: next group's head page; centroid
								 * and directory pages: next page; else
								 * InvalidBlockNumber */
	uint32		list;			/* list number (list pages), else 0 */
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
 * The meta page.  Written at build and never changed in place, so backends
 * cache it with the centroids (IvfCache) and do not read it again.
 * 'generation' is always 1 and read by nothing: a future change of the
 * meta page or the centroids in place (a split or merge of lists) must bump
 * it, send a relcache invalidation, and make ivf_get_cache check it.
 */
typedef struct IvfMetaPageData
{
	uint32		magic;
	uint32		version;
	uint32		generation;		/* 1; see above */
	uint16		metric;			/* IvfMetric */
	uint16		flags;			/* IVF_META_* */
	uint32		dims;
	uint32		nlists;			/* lists actually built */
	uint32		lists_requested;	/* the reloption, 0 when chosen from rows */
	uint32		default_nprobe; /* nprobe when neither ivf.nprobe nor the
								 * index's nprobe option is set */
	uint64		seed;			/* k-means seed */
	uint64		ntrain;			/* vectors the centroids were trained on */
	uint64		nbuilt;			/* vectors written at build */
	/* geometry of the other pages; checked against ivf_geometry() on read */
	BlockNumber centroid_start;
	uint32		centroid_npages;
	BlockNumber directory_start;
	uint32		directory_npages;
	uint32		nsegments;		/* pages per list group */
	uint32		seg_dims;		/* dims stored per segment (last: rest) */
	uint32		vecs_per_group; /* vector slots per group */
} IvfMetaPageData;

typedef IvfMetaPageData *IvfMetaPage;

#define IvfPageGetMeta(page) ((IvfMetaPage) PageGetContents(page))

/*
 * One list in the directory.  head/tail change when the list gets its first
 * group or a new one; 'insert' is a hint: a group of this list at or before
 * which no group has a free slot.  Groups never leave their list, so any of
 * these stays a valid page of the list forever.
 *
 * 'radius' is at least |x - centroid| (Euclidean, of the stored vector,
 * whatever the metric) for every vector ever put in the list: set by the
 * build, raised by an insert in the WAL record that publishes its vector,
 * never lowered until REINDEX.  strict_order scans bound unprobed lists
 * with it (ivfscan.c).
 */
typedef struct IvfListEntry
{
	BlockNumber head;			/* first group's head page, or invalid */
	BlockNumber tail;			/* last group's head page, or invalid */
	BlockNumber insert;			/* insertion hint, or invalid */
	uint32		ngroups;		/* groups in the chain */
	uint32		nbuilt;			/* vectors placed here at build */
	float4		radius;			/* max distance of a member to the centroid */
} IvfListEntry;

/*
 * Geometry derived from dims and BLCKSZ: where things are on a page.
 */
typedef struct IvfGeometry
{
	uint32		dims;
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
	return g->head_floats_off + nvec * g->seg_dims * sizeof(float);
}

/* code layout: index among the float pages of the one holding slot i */
static inline uint32
ivf_slot_fpage(const IvfGeometry *g, uint32 i)
{
	Assert(g->codes);
	return i / g->floats_per_page;
}

/* code layout: slot i's floats, on its float page */
static inline float *
ivf_slot_floats(Page fpage, const IvfGeometry *g, uint32 i)
{
	Assert(g->codes);
	return (float *) ((char *) fpage + g->seg_floats_off) +
		(Size) (i % g->floats_per_page) * g->dims;
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

/* rows of the centroid stream: the centroids, then lo and step with codes */
static inline Size
ivf_centroid_rows(const IvfMetaPageData *meta)
{
	return (Size) meta->nlists + ((meta->flags & IVF_META_CODES) ? 2 : 0);
}

/* with codes: the lo row in a centroid stream, the step row after it */
static inline float *
ivf_stream_sq8_lo(const IvfMetaPageData *meta, float *stream)
{
	Assert(meta->flags & IVF_META_CODES);
	return stream + (Size) meta->nlists * meta->dims;
}

static inline float *
ivf_page_floats(Page page, const IvfGeometry *g, bool head)
{
	return (float *) ((char *) page +
					  (head ? g->head_floats_off : g->seg_floats_off));
}

/* a recent-buffer hint (IvfCache.recent) */
typedef struct IvfRecentBuffer
{
	BlockNumber blkno;			/* InvalidBlockNumber: empty slot */
	Buffer		buffer;
} IvfRecentBuffer;

/*
 * Per-index state cached in rd_amcache: the meta page and the centroids.
 * One palloc chunk: the arrays below point into it, after the header
 * (PostgreSQL frees just that chunk when it drops rd_amcache).  Never hold
 * a pointer to it across anything that may process relcache invalidations
 * (lock acquisition): copy what is needed.
 */
typedef struct IvfCache
{
	IvfMetaPageData meta;
	IvfGeometry geo;
	float	   *centroids;		/* nlists x dims */
	float	   *centroid_norms; /* |c|^2 per list */
	float	   *sq8_lo;			/* codes: per-dimension lo, else NULL */
	float	   *sq8_step;		/* codes: per-dimension step, else NULL */

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
} IvfCache;

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

/* reloptions */
typedef struct IvfOptions
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int			lists;			/* -1: choose from the row count */
	int			nprobe;			/* -1: sqrt(lists) */
	int			seed;
	int			list_ordering;	/* IVF_ORDER_* */
	bool		prefilter;		/* store codes (IVF_META_CODES) */
	int			centroids_offset;	/* the centroids option: offset of the
									 * path from the struct, 0 when unset */
	int			params_offset;	/* the params option (search defaults, see
								 * ivfparams.c): offset of the text, 0 when
								 * unset */
} IvfOptions;

/* list_ordering option */
#define IVF_ORDER_NONE			0
#define IVF_ORDER_RESIDUAL		1	/* ascending distance to the centroid */

/* build phases for pg_stat_progress_create_index */
#define IVF_PHASE_SAMPLE	2
#define IVF_PHASE_KMEANS	3
#define IVF_PHASE_ASSIGN	4
#define IVF_PHASE_WRITE		5

/* search settings (defined in ivf.c, resolved in ivfparams.c) */
#define IVF_PROFILE_EXACT		0
#define IVF_PROFILE_FAST		1
#define IVF_PROFILE_BALANCED	2
#define IVF_PROFILE_QUALITY		3

#define IVF_BUDGET_UNIFORM				0
#define IVF_BUDGET_DISTANCE_WEIGHTED	1

#define IVF_ITERATIVE_OFF		0
#define IVF_ITERATIVE_RELAXED	1
#define IVF_ITERATIVE_STRICT	2

#define IVF_SEARCH_AUTO			0
#define IVF_SEARCH_MATRIX		1
#define IVF_SEARCH_CSR			2

extern int	ivf_kmeans_iterations;
extern double ivf_kmeans_tolerance;
extern int	ivf_kmeans_points_per_list;
extern int	ivf_prefilter_k;
extern int	ivf_search_mode;
/* a parsed parameter string (ivfparams.c); set says which are given */
#define IVF_PARAM_NPROBE		0x01
#define IVF_PARAM_MAX_CODES		0x02
#define IVF_PARAM_PROFILE		0x04
#define IVF_PARAM_BUDGET		0x08
#define IVF_PARAM_STRATEGY		0x10

typedef struct IvfParamSet
{
	uint32		set;
	int			nprobe;
	int			max_codes;
	int			profile;
	int			candidate_budget;
	int			budget_strategy;
} IvfParamSet;

/*
 * The search knobs' settings (ivfparams.c; ivf.c defines them as GUCs).
 * Each one's default means "not set" (see ivf_search_settings).
 * pgvector's ivfflat.* names are never defined here, only read.
 */
extern int	ivf_nprobe_setting;
extern int	ivf_max_codes_setting;
extern int	ivf_profile_setting;
extern int	ivf_candidate_budget_setting;
extern int	ivf_budget_strategy_setting;
extern int	ivf_iterative_setting;
extern int	ivf_max_nprobe_setting;
extern char *ivf_params_setting;
extern const IvfParamSet *ivf_session_params;	/* ivf.params, parsed */

/* what a search uses, resolved from settings and the index (ivfparams.c) */
typedef struct IvfSearchSettings
{
	uint32		nprobe;			/* lists probed, 1 .. nlists */
	uint64		max_codes;		/* 0: no limit */
	uint64		budget;			/* candidates per probe round, 0: none */
	int			budget_strategy;
} IvfSearchSettings;

/* ivf_autotune's experiments: takes precedence over everything else */
extern const IvfParamSet *ivf_params_override;

extern void ivf_search_settings(Relation index, const IvfMetaPageData *meta,
								IvfSearchSettings *s);
extern void ivf_query_limits(const IvfSearchSettings *s, const float *pdist,
							 const uint64 *sizes, uint32 nprobe,
							 uint64 *limits);
extern int	ivf_iterative_scan(void);
extern int	ivf_max_nprobe(void);

/* ivfutils.c */
/* what ivf_open_index checks of its caller */
#define IVF_OPEN_READ	0x01	/* SELECT on the table, no row-level security */
#define IVF_OPEN_OWNER	0x02	/* owns the index */
extern Relation ivf_open_index(Oid indexoid, Relation *heap,
							   const char *caller, int flags);
/* for a function named as its SQL function that returns what rows hold */
#define ivf_open_for_user(indexoid, heap) \
	ivf_open_index((indexoid), (heap), __func__, IVF_OPEN_READ)
extern Tuplestorestate *ivf_srf_materialize(FunctionCallInfo fcinfo,
											TupleDesc desc);
extern void ivf_init_reloptions(void);
extern bytea *ivf_options(Datum reloptions, bool validate);
extern IvfOptions *ivf_get_options(Relation index);
extern uint32 ivf_index_default_nprobe(Relation index,
									   const IvfMetaPageData *meta);
extern uint32 ivf_option_nprobe(Relation index, const IvfMetaPageData *meta);
extern void ivf_geometry(uint32 dims, bool codes, IvfGeometry *g);
extern float ivf_encode_vector(const float *vec, const float *centroid,
							   const float *lo, const float *step,
							   uint32 dims, float *scratch, uint8 *code,
							   float *cnorm);
extern IvfMetric ivf_index_metric(Relation index);

/* ivfparams.c */
extern bool ivf_params_parse(const char *str, IvfParamSet *out, char **msg);
extern char *ivf_params_format(const IvfParamSet *ps);
extern void ivf_params_validate(const char *value);
extern void ivf_index_params(Relation index, IvfParamSet *out);

/* the geometry an index's meta page describes */
static inline void
ivf_meta_geometry(const IvfMetaPageData *meta, IvfGeometry *g)
{
	ivf_geometry(meta->dims, (meta->flags & IVF_META_CODES) != 0, g);
}

extern void ivf_init_page(Page page, uint16 flags, uint32 list);
extern Buffer ivf_new_buffer(Relation index);
extern void ivf_read_meta(Relation index, IvfMetaPageData *meta);
extern void ivf_check_meta(Relation index, const IvfMetaPageData *meta);
extern IvfCache *ivf_get_cache(Relation index);
extern Buffer ivf_read_buffer(Relation index, BlockNumber blkno);
extern void ivf_load_centroids(Relation index, const IvfMetaPageData *meta,
							   float *dest);
extern Buffer ivf_read_directory_page(Relation index, BlockNumber blkno);
extern void ivf_read_list_entry(Relation index, const IvfMetaPageData *meta,
								const IvfGeometry *g, uint32 list,
								IvfListEntry *entry);
extern BlockNumber ivf_directory_block(const IvfMetaPageData *meta,
									   const IvfGeometry *g, uint32 list,
									   uint32 *slot);
extern IvfListEntry *ivf_directory_entries(Page page);
extern float *ivf_prepare_vector(Relation index, IvfMetric metric,
								 uint32 dims, Datum value, bool *skip);
extern void ivf_nearest_lists(const IvfCache *cache, const float *q,
							  uint32 nprobe, int32 *lists, float *dists);
extern const char *ivf_metric_name(IvfMetric metric);
extern double ivf_distance_value(IvfMetric metric, float d);

/* ivfbuild.c */
extern IndexBuildResult *ivf_build(Relation heap, Relation index,
								   IndexInfo *indexInfo);
extern void ivf_buildempty(Relation index);
extern char *ivf_buildphasename(int64 phasenum);

/* ivffaiss.c: Faiss interop */
extern float *ivf_faiss_read_centroids(const char *path, uint32 dims,
									   IvfMetric metric, uint32 *nlists);
extern float *ivf_faiss_index_centroids(Relation index, uint32 dims,
										IvfMetric metric, uint32 *nlists);
extern void ivf_faiss_validate_path(const char *value);

/* ivfinsert.c */
extern uint32 ivf_insert_vector(Relation index, const IvfCache *cache,
							  const float *vec, ItemPointer tid);
extern bool ivf_insert(IVF_AMINSERT_PARAMS);

/* ivfscan.c */
extern IndexScanDesc ivf_beginscan(Relation index, int nkeys, int norderbys);
extern void ivf_rescan(IndexScanDesc scan, ScanKey keys, int nkeys,
					   ScanKey orderbys, int norderbys);
extern bool ivf_gettuple(IndexScanDesc scan, ScanDirection dir);
extern void ivf_endscan(IndexScanDesc scan);

/* listscan.c: distances of a query to every vector of a list */
typedef struct IvfCandidates
{
	/* candidates with their exact distance */
	float	   *dist;
	int64	   *id;				/* ItemPointer packed by ivf_tid_to_id */
	size_t		n;
	size_t		cap;
	MemoryContext cxt;

	/*
	 * Prefilter (codes): slots whose floats were not read because a lower
	 * bound of their distance, lb[i], already ruled them out of the k0
	 * nearest seen so far.  loc[i] = block << 16 | slot, where the vector
	 * was (VACUUM may move it within its group: found again by TID).
	 */
	float	   *lb;
	int64	   *lb_id;
	int64	   *loc;
	size_t		nlb;
	size_t		lbcap;
	float		lbmin;			/* smallest lb[i] (+inf when none) */
	bool		lbnan;			/* some lb[i] is NaN */
	/* the k0 nearest exact candidates so far: the prefilter's bar */
	IvfTopK		kbest;
} IvfCandidates;

/*
 * What a list scan needs to use a group's codes: the quantizer rows and
 * the query in the forms the code kernels take (see ivf_prefilter_list).
 */
typedef struct IvfPrefilter
{
	IvfMetric	metric;
	uint32		dims;
	const float *lo;
	const float *step;
	float		qnorm;			/* |q| */
	float		lonorm;			/* |lo| */
	float		rmax;			/* |lo| + 255 |step|: no decoded residual is
								 * longer */
	float	   *w;				/* ip/cosine: q * step, per query; L2: a *
								 * step, per list */
	float		qlo;			/* ip/cosine: q . lo */
	/* per list, set by ivf_prefilter_list() */
	float	   *a;				/* L2: (q - c) - lo */
	float		asq;			/* L2: |a|^2 */
	float		cnorm;			/* |c| */
	float		qc;				/* ip/cosine: q . c */
	float		gamma;			/* relative rounding slack, see listscan.c */
} IvfPrefilter;

extern void ivf_candidates_init(IvfCandidates *c, MemoryContext cxt,
								size_t initial);
extern void ivf_candidates_reset(IvfCandidates *c, int k0);
extern void ivf_prefilter_init(IvfPrefilter *pf, IvfMetric metric,
							   uint32 dims, const float *q, const float *lo,
							   const float *step);
extern void ivf_prefilter_list(IvfPrefilter *pf, const float *q,
							   const float *centroid);
extern void ivf_prefilter_bounds(const IvfPrefilter *pf, float *raw,
								 const float *err, const float *cnorm,
								 uint32 n);
extern uint64 ivf_list_size(Relation index, const IvfMetaPageData *meta,
							const IvfGeometry *g, uint32 list);
extern int	ivf_cmp_int64(const void *a, const void *b);
extern void ivf_export_list(Relation index, const IvfGeometry *g,
							BlockNumber head, uint32 list, float **vecs,
							int64 **ids, int64 *n);

/* ivfgpu.c: the GPU worker */
extern bool ivf_gpu_worker_enabled;
extern void ivf_gpu_init(void);
extern void ivf_gpu_list_changed(Relation index, uint32 list);
extern int	ivf_gpu_scan_k;
extern bool ivf_gpu_for_scans(void);
typedef struct IvfGpuKmeans IvfGpuKmeans;
extern IvfGpuKmeans *ivf_gpu_kmeans_begin(const float *x, size_t n, size_t d,
										  int metric);
extern int	ivf_gpu_kmeans_assign(void *arg, const float *centroids, size_t k,
								  int32 *assign, float *dist);
extern bool ivf_gpu_assign_centroids(IvfGpuKmeans *km, const float *centroids,
									 size_t k);
extern int	ivf_gpu_assign_points(IvfGpuKmeans *km, const float *x, size_t n,
								  int32 *assign, float *dist);
extern void ivf_gpu_kmeans_end(IvfGpuKmeans *km);
extern bool ivf_gpu_search(Relation index, const IvfMetaPageData *meta,
						   const IvfGeometry *g,
						   int nq, const float *queries, int nprobe,
						   const int32 *probes, const uint64 *limits, int k,
						   float *dist, int64 *ids);

extern void ivf_prefetch_list_head(Relation index, const IvfGeometry *g,
								   BlockNumber head, bool codes);
extern uint64 ivf_scan_list(Relation index, const IvfGeometry *g,
							IvfMetric metric, BlockNumber head, uint32 list,
							const float *q, uint64 limit, IvfPrefilter *pf,
							IvfCandidates *out);
extern float ivf_pair_distance(IvfMetric metric, const float *q,
							   const float *x, uint32 d);
extern float ivf_member_radius(const float *x, const float *centroid,
							   uint32 d);
extern void ivf_candidates_carry(IvfCandidates *c, const float *dist,
								 const int64 *id, size_t n, const float *lb,
								 const int64 *lb_id, const int64 *loc,
								 size_t nlb);
extern bool ivf_refine_slot(Relation index, const IvfGeometry *g,
							IvfMetric metric, const float *q, int64 loc,
							int64 id, float *dist);
extern void ivf_list_budgets(const float *cdist, uint32 n, uint64 budget,
							 int strategy, uint64 *caps);
extern void ivf_scan_list_multi(Relation index, const IvfGeometry *g,
								IvfMetric metric, BlockNumber head,
								uint32 list, const float *queries,
								const int32 *qidx, const uint64 *limits,
								uint32 nq, IvfTopK *heaps);
extern uint64 ivf_list_slots(Relation index, BlockNumber head);

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

/* ivfvacuum.c */
extern IndexBulkDeleteResult *ivf_bulkdelete(IndexVacuumInfo *info,
											 IndexBulkDeleteResult *stats,
											 IndexBulkDeleteCallback callback,
											 void *callback_state);
extern IndexBulkDeleteResult *ivf_vacuumcleanup(IndexVacuumInfo *info,
												IndexBulkDeleteResult *stats);

/* ivfcost.c */
extern void ivf_costestimate(PlannerInfo *root, IndexPath *path,
							 double loop_count, Cost *indexStartupCost,
							 Cost *indexTotalCost,
							 Selectivity *indexSelectivity,
							 double *indexCorrelation, double *indexPages);

/* ivfvalidate.c */
extern bool ivf_validate(Oid opclassoid);

#endif							/* IVF_IVFFLAT_H */
