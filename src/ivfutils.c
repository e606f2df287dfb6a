/*-------------------------------------------------------------------------
 *
 * ivfutils.c
 *	  The ivfflat handler, reloptions, page geometry, meta page and
 *	  centroid cache, directory access and the quantizer (nearest lists).
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "access/reloptions.h"
#include "access/relation.h"
#include "access/table.h"
#include "funcapi.h"
#include "catalog/index.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/rls.h"
#include "utils/lsyscache.h"
#include "catalog/pg_type.h"
#include "commands/vacuum.h"
#include "fmgr.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "distance.h"
#include "ivfflat.h"
#include "ivfformat.h"
#include "ivfmetric.h"
#include "ivfpage.h"
#include "ivfquantizer.h"
#include "ivfsettings.h"
#include "ivfsql.h"
#include "listscan.h"
#include "select.h"
#include "vector.h"

/* the C functions behind the support procedures, to identify the metric */
extern Datum vector_l2_squared_distance(PG_FUNCTION_ARGS);
extern Datum vector_negative_inner_product(PG_FUNCTION_ARGS);

static relopt_kind ivf_relopt_kind;

static relopt_enum_elt_def list_ordering_values[] = {
	{"none", IVF_ORDER_NONE},
	{"residual_norm_asc", IVF_ORDER_RESIDUAL},
	{NULL, 0}
};

/* ---------------------------------------------------------------- handler */

PG_FUNCTION_INFO_V1(ivfflat_handler);
Datum
ivfflat_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *am = makeNode(IndexAmRoutine);

	am->amstrategies = 0;
	am->amsupport = IVF_NPROCS;
	am->amoptsprocnum = 0;
	am->amcanorder = false;
	am->amcanorderbyop = true;
	am->amcanbackward = false;
	am->amcanunique = false;
	am->amcanmulticol = false;
	am->amoptionalkey = true;
	am->amsearcharray = false;
	am->amsearchnulls = false;
	am->amstorage = false;
	am->amclusterable = false;
	am->ampredlocks = false;
	am->amcanparallel = false;
	/* parallel assignment pass; before 17 ivf_build plans it itself */
	IvfSetCanBuildParallel(am);
	am->amcaninclude = false;
	am->amusemaintenanceworkmem = true;
	am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	am->amkeytype = InvalidOid;

	am->ambuild = ivf_build;
	am->ambuildempty = ivf_buildempty;
	am->aminsert = ivf_insert;
	am->ambulkdelete = ivf_bulkdelete;
	am->amvacuumcleanup = ivf_vacuumcleanup;
	am->amcanreturn = NULL;
	am->amcostestimate = ivf_costestimate;
	am->amoptions = ivf_options;
	am->amproperty = NULL;
	am->ambuildphasename = ivf_buildphasename;
	am->amvalidate = ivf_validate;
	am->amadjustmembers = NULL;
	am->ambeginscan = ivf_beginscan;
	am->amrescan = ivf_rescan;
	am->amgettuple = ivf_gettuple;
	am->amgetbitmap = NULL;
	am->amendscan = ivf_endscan;
	am->ammarkpos = NULL;
	am->amrestrpos = NULL;
	am->amestimateparallelscan = NULL;
	am->aminitparallelscan = NULL;
	am->amparallelrescan = NULL;

	PG_RETURN_POINTER(am);
}

/*
 * The checks ivf_open_index makes for a caller (see there); run once before
 * the locks, to fail fast without queueing behind a lock on a table the
 * caller may not use, and again once both relations are locked, when they
 * are authoritative.
 */
static void
ivf_check_caller(Oid heapoid, Oid indexoid, const char *caller, int flags)
{
	Oid			userid = GetUserId();

	if ((flags & IVF_OPEN_OWNER) &&
		!ivf_relation_ownercheck(indexoid, userid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_INDEX, get_rel_name(indexoid));

	if ((flags & IVF_OPEN_READ) == 0)
		return;

	/*
	 * Table-level SELECT, not column privileges: the results name rows by
	 * their tid and count them, which SELECT on a column does not grant.
	 * Table-level SELECT covers every column (key, expression and predicate
	 * columns alike), so no column check can fail after it; the detail only
	 * explains why column privileges are not enough.
	 */
	if (pg_class_aclcheck(heapoid, userid, ACL_SELECT) != ACLCHECK_OK)
	{
		bool		some_columns =
			pg_attribute_aclcheck_all(heapoid, userid, ACL_SELECT,
									  ACLMASK_ANY) == ACLCHECK_OK;

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(heapoid)),
				 some_columns ?
				 errdetail("%s returns what the index holds of every row (tids, distances, vectors or counts), which needs SELECT on the table; SELECT on some of its columns is not enough.",
						   caller) : 0));
	}

	/*
	 * The index holds every row, whatever the table's row-level security
	 * policies hide, and these functions cannot apply the policies to what
	 * they return: refuse wherever the policies would apply to a SELECT by
	 * the caller.  check_enable_rls exempts exactly the roles PostgreSQL
	 * exempts: superusers, BYPASSRLS roles, and the table's owner unless the
	 * table has FORCE ROW LEVEL SECURITY.  With row_security = off, where a
	 * SELECT would fail, this fails too.
	 */
	if (check_enable_rls(heapoid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s cannot apply the row-level security policies of table \"%s\"",
						caller, get_rel_name(heapoid)),
				 errdetail("Row-level security applies to role \"%s\" on this table, and the index holds every row, including those the policies hide.",
						   GetUserNameFromId(userid, false)),
				 errhint("Call %s as the table's owner (without FORCE ROW LEVEL SECURITY), a role with BYPASSRLS or a superuser, or query the table with ORDER BY, whose index scans apply the policies.",
						 caller)));
}

/*
 * Open an ivfflat index and its table (AccessShareLock both, table first,
 * as the executor does) for the SQL-callable function 'caller', checking
 * that it is one and what 'flags' asks:
 *
 *	IVF_OPEN_READ: the function returns rows, tids, distances, vectors or
 *	counts of the table, so the caller must be able to SELECT all of them:
 *	SELECT on the table, and no row-level security applying to the caller.
 *	IVF_OPEN_OWNER: the function changes the index; the caller must own it.
 *
 * As contrib/amcheck does, the table is looked up before the locks and the
 * index's table looked up again once both are locked: a concurrent DROP
 * and re-create of the index could otherwise leave us with an index of
 * another table (whose lock we do not hold).  The checks are made again
 * after the locks too, so a REVOKE or ENABLE ROW LEVEL SECURITY committed
 * while we waited for the lock is obeyed (taking the lock processes the
 * catalog invalidations).
 */
Relation
ivf_open_index(Oid indexoid, Relation *heap, const char *caller, int flags)
{
	Oid			heapoid = IndexGetRelation(indexoid, true);
	Relation	index;

	if (!OidIsValid(heapoid))
	{
		char	   *name = get_rel_name(indexoid);

		if (name == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", indexoid)));
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an index", name)));
	}
	ivf_check_caller(heapoid, indexoid, caller, flags);

	*heap = try_relation_open(heapoid, AccessShareLock);
	index = try_relation_open(indexoid, AccessShareLock);
	if (*heap == NULL || index == NULL ||
		IndexGetRelation(indexoid, true) != heapoid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index with OID %u was dropped or changed while %s waited for its lock",
						indexoid, caller)));
	if (index->rd_rel->relkind == RELKIND_PARTITIONED_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a partitioned index, which holds no rows",
						RelationGetRelationName(index)),
				 errhint("Call %s on the index of each partition.", caller)));
	if (index->rd_rel->relkind != RELKIND_INDEX ||
		index->rd_indam == NULL ||
		index->rd_indam->amgettuple != ivf_gettuple)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an ivfflat index",
						RelationGetRelationName(index))));
	ivf_check_caller(heapoid, indexoid, caller, flags);
	return index;
}

/*
 * Set up a materialize-mode set-returning function: check the caller can
 * take a set, and return a tuplestore (with a copy of desc) that lives for
 * the query and is already handed to the executor.
 */
Tuplestorestate *
ivf_srf_materialize(FunctionCallInfo fcinfo, TupleDesc desc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->setDesc = CreateTupleDescCopy(desc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(old);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	return store;
}

/* ------------------------------------------------------------- reloptions */

void
ivf_init_reloptions(void)
{
	ivf_relopt_kind = add_reloption_kind();
	add_int_reloption(ivf_relopt_kind, "lists",
					  "Number of inverted lists (default: chosen from the row count)",
					  -1, IVF_MIN_LISTS, IVF_MAX_LISTS, AccessExclusiveLock);
	add_int_reloption(ivf_relopt_kind, "nprobe",
					  "Lists probed per query when ivf.nprobe is 0 (default: sqrt(lists))",
					  -1, 1, IVF_MAX_LISTS, AccessExclusiveLock);
	add_int_reloption(ivf_relopt_kind, "seed",
					  "Seed of the k-means initialisation",
					  1234, 0, INT_MAX, AccessExclusiveLock);
	add_enum_reloption(ivf_relopt_kind, "list_ordering",
					   "Order of the vectors within each list at build",
					   list_ordering_values, IVF_ORDER_NONE,
					   "Valid values are \"none\" and \"residual_norm_asc\".",
					   AccessExclusiveLock);
	add_bool_reloption(ivf_relopt_kind, "prefilter",
					   "Store an 8-bit code of each vector, from which scans bound distances before reading the vector",
					   true, AccessExclusiveLock);
	add_string_reloption(ivf_relopt_kind, "centroids",
						 "Faiss file whose centroids the index is built around, read at every build (CREATE INDEX, REINDEX)",
						 NULL, ivf_faiss_validate_path, AccessExclusiveLock);
	/* only read by queries, so changing it need not block them */
	add_string_reloption(ivf_relopt_kind, "params",
						 "Search defaults of the index, e.g. 'nprobe=8,max_codes=4096' (see ivf.params)",
						 NULL, ivf_params_validate, ShareUpdateExclusiveLock);
}

bytea *
ivf_options(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"lists", RELOPT_TYPE_INT, offsetof(IvfOptions, lists)},
		{"nprobe", RELOPT_TYPE_INT, offsetof(IvfOptions, nprobe)},
		{"seed", RELOPT_TYPE_INT, offsetof(IvfOptions, seed)},
		{"list_ordering", RELOPT_TYPE_ENUM, offsetof(IvfOptions, list_ordering)},
		{"prefilter", RELOPT_TYPE_BOOL, offsetof(IvfOptions, prefilter)},
		{"centroids", RELOPT_TYPE_STRING, offsetof(IvfOptions, centroids_offset)},
		{"params", RELOPT_TYPE_STRING, offsetof(IvfOptions, params_offset)},
	};

	return (bytea *) build_reloptions(reloptions, validate, ivf_relopt_kind,
									  sizeof(IvfOptions), tab, lengthof(tab));
}

/* The index's options, or the defaults when none were given. */
IvfOptions *
ivf_get_options(Relation index)
{
	IvfOptions *opts = (IvfOptions *) index->rd_options;
	static IvfOptions defaults = {0, -1, -1, 1234, IVF_ORDER_NONE, true};

	return opts ? opts : &defaults;
}

/*
 * The index's default nprobe: nprobe in its params option, else its nprobe
 * option (both read from the relcache, so ALTER INDEX applies at once),
 * else what the meta page records.
 */
uint32
ivf_index_default_nprobe(Relation index, const IvfMetaPageData *meta)
{
	IvfParamSet ps;

	ivf_index_params(index, &ps);
	if (ps.set & IVF_PARAM_NPROBE)
		return Min((uint32) ps.nprobe, meta->nlists);
	return ivf_option_nprobe(index, meta);
}

/* The index's nprobe option when set, else what the meta page records. */
uint32
ivf_option_nprobe(Relation index, const IvfMetaPageData *meta)
{
	IvfOptions *opts = ivf_get_options(index);

	if (opts->nprobe > 0)
		return Min((uint32) opts->nprobe, meta->nlists);
	return meta->default_nprobe;
}

/* --------------------------------------------------------------- geometry */

/*
 * Lay out list groups for vectors of 'dims' floats.  A group holds the same
 * vector slots on every one of its pages; page s holds dims
 * [s*seg_dims, ...) of each vector, so distances (sums over dimensions) are
 * computed page by page and added.  Up to ~2000 dims a group is one page.
 * With 'codes', the code layout instead (ivfflat.h): a head page with
 * every slot's TID, error and code, and float pages with the vectors;
 * when a vector does not fit a page (above 2036 dims) the group gets no
 * codes, which g->codes reports.
 */
void
ivf_geometry(uint32 dims, bool codes, IvfGeometry *g)
{
	uint32		avail_floats;
	uint32		s;

	Assert(dims >= 1 && dims <= IVF_MAX_DIM);
	memset(g, 0, sizeof(*g));
	g->dims = dims;

	if (codes)
	{
		uint32		seg_floats_off = TYPEALIGN(IVF_FLOAT_ALIGN, IVF_PAGE_DATA_OFF);
		uint32		fpp = (IVF_PAGE_SPECIAL_OFF - seg_floats_off) / (dims * sizeof(float));
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
		for (cap = (IVF_PAGE_SPECIAL_OFF - tids_off) / (seg_dims * sizeof(float) + sizeof(ItemPointerData));
			 cap > 0; cap--)
		{
			uint32		floats_off = TYPEALIGN(IVF_FLOAT_ALIGN, tids_off + cap * sizeof(ItemPointerData));

			if (floats_off + (Size) cap * seg_dims * sizeof(float) <= IVF_PAGE_SPECIAL_OFF)
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
	g->directory_entries_per_page = (IVF_PAGE_SPECIAL_OFF - IVF_PAGE_DATA_OFF) / sizeof(IvfListEntry);
}

/* ------------------------------------------------------------------ metric */

IvfMetric
ivf_index_metric(Relation index)
{
	FmgrInfo   *dist = index_getprocinfo(index, 1, IVF_DISTANCE_PROC);
	bool		has_norm = OidIsValid(index_getprocid(index, 1, IVF_NORM_PROC));

	if (dist->fn_addr == vector_l2_squared_distance)
		return IVF_METRIC_L2;
	if (dist->fn_addr == vector_negative_inner_product)
		return has_norm ? IVF_METRIC_COSINE : IVF_METRIC_IP;

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("operator class of index \"%s\" has an unsupported distance function",
					RelationGetRelationName(index)),
			 errhint("Use vector_l2_ops, vector_ip_ops or vector_cosine_ops.")));
	return IVF_METRIC_L2;		/* keep compiler quiet */
}

/*
 * The value of the ORDER BY operator (<->, <#>, <=>) for an internal
 * distance: squared L2 for l2, -dot otherwise (vectors unit length for
 * cosine).
 */
double
ivf_distance_value(IvfMetric metric, float d)
{
	switch (metric)
	{
		case IVF_METRIC_L2:
			return sqrt((double) d);
		case IVF_METRIC_IP:
			return (double) d;
		case IVF_METRIC_COSINE:
			return 1.0 + (double) d;
	}
	return (double) d;
}

const char *
ivf_metric_name(IvfMetric metric)
{
	switch (metric)
	{
		case IVF_METRIC_L2:
			return "l2";
		case IVF_METRIC_IP:
			return "inner_product";
		case IVF_METRIC_COSINE:
			return "cosine";
	}
	return "unknown";
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
 * The code (dims bytes into 'code'), error and |step * code|^2 (*cnorm)
 * of vector vec stored in the list with centroid 'centroid': the one place
 * the residual is computed, so build, insert and ivf_check agree bit for
 * bit.  scratch holds dims floats.
 */
float
ivf_encode_vector(const float *vec, const float *centroid, const float *lo,
				  const float *step, uint32 dims, float *scratch, uint8 *code,
				  float *cnorm)
{
	uint32		j;

	for (j = 0; j < dims; j++)
		scratch[j] = vec[j] - centroid[j];
	return ivf_sq8_encode(scratch, lo, step, dims, code, cnorm);
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
			if (IvfPageGetOpaque(BufferGetPage(buffer))->flags == 0)
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

/* --------------------------------------------------------------- meta page */

void
ivf_check_meta(Relation index, const IvfMetaPageData *meta)
{
	IvfGeometry g;

	if (meta->magic != IVF_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not an ivfflat index of this extension",
						RelationGetRelationName(index)),
				 errdetail("Magic number is 0x%08X, expected 0x%08X.",
						   meta->magic, IVF_MAGIC)));
	if (meta->version != IVF_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has format version %u, this build reads version %d",
						RelationGetRelationName(index), meta->version,
						IVF_FORMAT_VERSION),
				 errhint("REINDEX the index.")));
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

	ivf_meta_geometry(meta, &g);
	if (g.nsegments != meta->nsegments || g.seg_dims != meta->seg_dims ||
		g.vecs_per_group != meta->vecs_per_group ||
		g.codes != ((meta->flags & IVF_META_CODES) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" was built with a different page layout",
						RelationGetRelationName(index)),
				 errhint("REINDEX the index.")));
}

void
ivf_read_meta(Relation index, IvfMetaPageData *meta)
{
	Buffer		buf;
	Page		page;

	buf = ReadBuffer(index, IVF_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (PageIsNew(page) ||
		(IvfPageGetOpaque(page)->flags & IVF_PAGE_META) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has no valid meta page",
						RelationGetRelationName(index))));
	memcpy(meta, IvfPageGetMeta(page), sizeof(IvfMetaPageData));
	UnlockReleaseBuffer(buf);

	ivf_check_meta(index, meta);
}

/*
 * Copy the centroid stream (ivf_centroid_rows() x dims floats: the
 * centroids, then with codes the lo and step rows) into dest.
 */
void
ivf_load_centroids(Relation index, const IvfMetaPageData *meta, float *dest)
{
	Size		total = ivf_centroid_rows(meta) * meta->dims;
	Size		done = 0;
	BlockNumber blkno = meta->centroid_start;
	uint32		i;

	for (i = 0; i < meta->centroid_npages && done < total; i++, blkno++)
	{
		Buffer		buf = ReadBuffer(index, blkno);
		Page		page;
		IvfPageOpaque opaque;
		Size		n;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		opaque = IvfPageGetOpaque(page);
		if ((opaque->flags & IVF_PAGE_CENTROID) == 0 ||
			opaque->page_id != IVF_PAGE_ID)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\": block %u is not a centroid page",
							RelationGetRelationName(index), blkno)));
		n = Min((Size) opaque->nvec, total - done);
		memcpy(dest + done, PageGetContents(page), n * sizeof(float));
		done += n;
		UnlockReleaseBuffer(buf);
	}
	if (done != total)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\": centroid pages hold %zu of %zu floats",
						RelationGetRelationName(index), (size_t) done,
						(size_t) total)));
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
	char	   *chunk;
	Size		nfloats;
	Size		off_centroids,
				off_norms,
				off_ccodes = 0,
				ccode_floats = 0,
				off_recent,
				size;
	bool		ccodes;
	uint32		d;
	uint32		nrecent;
	uint32		i;

	ivf_read_meta(index, &meta);
	d = meta.dims;
	nfloats = ivf_centroid_rows(&meta) * d;
	ccodes = meta.nlists >= IVF_CENTROID_CODES_MIN_LISTS;
	nrecent = ivf_cache_hint_slots(index);

	/* the layout: each array MAXALIGNed, the hints last */
	off_centroids = MAXALIGN(sizeof(IvfCache));
	off_norms = off_centroids + MAXALIGN(nfloats * sizeof(float));
	off_recent = off_norms + MAXALIGN((Size) meta.nlists * sizeof(float));
	if (ccodes)
	{
		/* ccode_lo, ccode_step, ccode_err, ccode_cnorm, then the codes */
		off_ccodes = off_recent;
		ccode_floats = MAXALIGN(sizeof(float) * (2 * (Size) d + 2 * (Size) meta.nlists));
		off_recent = off_ccodes + ccode_floats + MAXALIGN((Size) meta.nlists * d);
	}
	size = off_recent + sizeof(IvfRecentBuffer) * (Size) nrecent;

	chunk = MemoryContextAllocExtended(index->rd_indexcxt, size,
									   MCXT_ALLOC_HUGE);

	cache = (IvfCache *) chunk;
	memset(cache, 0, sizeof(IvfCache));
	cache->meta = meta;
	ivf_meta_geometry(&meta, &cache->geo);
	cache->centroids = (float *) (chunk + off_centroids);
	cache->centroid_norms = (float *) (chunk + off_norms);
	if (meta.flags & IVF_META_CODES)
	{
		cache->sq8_lo = ivf_stream_sq8_lo(&meta, cache->centroids);
		cache->sq8_step = cache->sq8_lo + d;
	}
	if (ccodes)
	{
		cache->ccode_lo = (float *) (chunk + off_ccodes);
		cache->ccode_step = cache->ccode_lo + d;
		cache->ccode_err = cache->ccode_step + d;
		cache->ccode_cnorm = cache->ccode_err + meta.nlists;
		cache->ccodes = (uint8 *) (chunk + off_ccodes + ccode_floats);
	}
	cache->nrecent = nrecent;
	cache->recent = nrecent > 0 ? (IvfRecentBuffer *) (chunk + off_recent) : NULL;
	for (i = 0; i < nrecent; i++)
	{
		cache->recent[i].blkno = InvalidBlockNumber;
		cache->recent[i].buffer = InvalidBuffer;
	}

	/* the chunk is not rd_amcache yet: free it if reading fails */
	PG_TRY();
	{
		ivf_load_centroids(index, &meta, cache->centroids);
		ivf_kernels.norm_sq_block(cache->centroids, meta.nlists, d,
								  cache->centroid_norms);
		if (ccodes)
		{
			float	   *zero = palloc0(sizeof(float) * d);
			float	   *scratch = palloc(sizeof(float) * d);
			uint32		l;

			ivf_sq8_train(cache->centroids, meta.nlists, d, cache->ccode_lo,
						  cache->ccode_step);
			for (l = 0; l < meta.nlists; l++)
				cache->ccode_err[l] = ivf_encode_vector(cache->centroids + (Size) l * d,
														zero, cache->ccode_lo,
														cache->ccode_step, d, scratch,
														cache->ccodes + (Size) l * d,
														&cache->ccode_cnorm[l]);
			pfree(zero);
			pfree(scratch);
		}
	}
	PG_CATCH();
	{
		pfree(chunk);
		PG_RE_THROW();
	}
	PG_END_TRY();

	return cache;
}

/*
 * The meta page and centroids, cached in rd_amcache (one chunk, see
 * ivf_build_cache).  Nothing the cache holds changes in place: the meta
 * page and the centroid pages are written by the build only.  Every
 * rebuild (REINDEX, TRUNCATE, VACUUM FULL, CLUSTER, a table rewrite) holds
 * AccessExclusiveLock, writes a new relfilenode (or, for a table created
 * in the same transaction, may truncate and rebuild in place) and sends a
 * relcache invalidation (index_build always does), which a backend
 * processes, dropping rd_amcache, when it next locks the index or, for
 * its own changes, at the end of the command.  So the cache is served
 * without reading the meta page again.
 */
IvfCache *
ivf_get_cache(Relation index)
{
	if (index->rd_amcache == NULL)
		index->rd_amcache = ivf_build_cache(index);
	return (IvfCache *) index->rd_amcache;
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

BlockNumber
ivf_directory_block(const IvfMetaPageData *meta, const IvfGeometry *g,
					uint32 list, uint32 *slot)
{
	*slot = list % g->directory_entries_per_page;
	return meta->directory_start + list / g->directory_entries_per_page;
}

IvfListEntry *
ivf_directory_entries(Page page)
{
	return (IvfListEntry *) PageGetContents(page);
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
	*entry = ivf_directory_entries(BufferGetPage(buf))[slot];
	UnlockReleaseBuffer(buf);
}

/* ------------------------------------------------------------- vectors */

/*
 * The float form the index stores for a column value: checked against the
 * index's dimensions and, for cosine, normalised.  *skip is set for values
 * that are not indexed (cosine: zero vectors, which have no direction).
 * Returns a palloc'd copy.
 */
float *
ivf_prepare_vector(Relation index, IvfMetric metric, uint32 dims,
				   Datum value, bool *skip)
{
	Vector	   *v = DatumGetVector(value);
	float	   *out;

	*skip = false;
	if (v->dim != (int) dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %u dimensions, not %d", dims, v->dim),
				 errdetail("Index \"%s\" stores %u-dimensional vectors.",
						   RelationGetRelationName(index), dims)));

	out = palloc(sizeof(float) * dims);
	memcpy(out, v->x, sizeof(float) * dims);

	if (metric == IVF_METRIC_COSINE)
	{
		double		norm = 0.0;
		uint32		i;

		for (i = 0; i < dims; i++)
			norm += (double) out[i] * (double) out[i];
		norm = sqrt(norm);
		if (norm == 0.0)
		{
			*skip = true;
			return out;
		}
		for (i = 0; i < dims; i++)
			out[i] = (float) ((double) out[i] / norm);
	}
	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return out;
}

/* -------------------------------------------------------------- quantizer */

/* ivf_nearest_lists by computing every centroid distance */
static void
nearest_lists_exact(const IvfCache *cache, const float *q, uint32 nprobe,
					int32 *lists, float *dists)
{
	uint32		nlists = cache->meta.nlists;
	uint32		dims = cache->meta.dims;
	float	   *d = palloc(sizeof(float) * nlists);
	int64	   *ids;
	uint32		i;

	if (cache->meta.metric == IVF_METRIC_L2)
		ivf_kernels.l2sq_block(q, cache->centroids, nlists, dims, d);
	else
	{
		ivf_kernels.dot_block(q, cache->centroids, nlists, dims, d);
		for (i = 0; i < nlists; i++)
			d[i] = -d[i];
	}

	nprobe = Min(nprobe, nlists);
	if (nprobe == 1)
	{
		uint32		best = 0;

		/* strict '<' keeps the lowest list among equals; NaN never wins */
		for (i = 1; i < nlists; i++)
			if (d[i] < d[best] || (isnan(d[best]) && !isnan(d[i])))
				best = i;
		lists[0] = best;
		if (dists)
			dists[0] = d[best];
	}
	else
	{
		ids = palloc(sizeof(int64) * nlists);
		for (i = 0; i < nlists; i++)
			ids[i] = i;
		ivf_select_smallest(d, ids, nlists, nprobe);
		for (i = 0; i < nprobe; i++)
		{
			lists[i] = (int32) ids[i];
			if (dists)
				dists[i] = d[i];
		}
		pfree(ids);
	}
	pfree(d);
}

/*
 * The same lists as nearest_lists_exact, from the centroids' codes: lower
 * bounds of every centroid distance (as a list scan bounds vector
 * distances, with the centroid as its own residual), then exact distances
 * in bound order until no remaining bound can beat the nprobe-th nearest
 * found.  Reads a quarter of the centroid bytes plus a few centroids.
 */
static void
nearest_lists_codes(const IvfCache *cache, const float *q, uint32 nprobe,
					int32 *lists, float *dists)
{
	uint32		nlists = cache->meta.nlists;
	uint32		dims = cache->meta.dims;
	IvfMetric	metric = (IvfMetric) cache->meta.metric;
	IvfPrefilter pf;
	float	   *lb = palloc(sizeof(float) * nlists);
	int64	   *ids = palloc(sizeof(int64) * nlists);
	float	   *hd = palloc(sizeof(float) * nprobe);	/* max-heap of the best */
	int64	   *hid = palloc(sizeof(int64) * nprobe);
	uint32		nh = 0;
	IvfSelectStream stream;
	float		b;
	int64		id;
	uint32		i;

	ivf_prefilter_init(&pf, metric, dims, q, cache->ccode_lo, cache->ccode_step);
	/* the centroid is its own residual: the "list centroid" is 0 */
	ivf_prefilter_list(&pf, q, NULL);
	ivf_kernels.sq8_dot_block(pf.w, cache->ccodes, nlists, dims, lb);
	ivf_prefilter_bounds(&pf, lb, cache->ccode_err, cache->ccode_cnorm, nlists);
	for (i = 0; i < nlists; i++)
		ids[i] = i;

	ivf_select_stream_init(&stream, lb, ids, nlists, Max(nprobe, 8));
	while (ivf_select_stream_next(&stream, &b, &id))
	{
		const float *c = cache->centroids + (Size) id * dims;
		float		d;
		uint32		j;

		/* a bound equal to the worst kept may still tie it with a lower id */
		if (nh == nprobe && b > hd[0])
			break;
		d = ivf_pair_distance(metric, q, c, dims);
		if (nh == nprobe)
		{
			if (!ivf_dist_id_less(d, id, hd[0], hid[0]))
				continue;
			/* replace the worst, sift down */
			j = 0;
			for (;;)
			{
				uint32		l = 2 * j + 1;
				uint32		m;

				if (l >= nh)
					break;
				m = (l + 1 < nh && ivf_dist_id_less(hd[l], hid[l], hd[l + 1], hid[l + 1])) ? l + 1 : l;
				if (!ivf_dist_id_less(d, id, hd[m], hid[m]))
					break;
				hd[j] = hd[m];
				hid[j] = hid[m];
				j = m;
			}
		}
		else
		{
			/* sift up */
			j = nh++;
			while (j > 0 && ivf_dist_id_less(hd[(j - 1) / 2], hid[(j - 1) / 2], d, id))
			{
				hd[j] = hd[(j - 1) / 2];
				hid[j] = hid[(j - 1) / 2];
				j = (j - 1) / 2;
			}
		}
		hd[j] = d;
		hid[j] = id;
	}

	/* the kept ones, nearest first, in the order select.h defines */
	ivf_select_smallest(hd, hid, nh, nh);
	for (i = 0; i < nh; i++)
	{
		lists[i] = (int32) hid[i];
		if (dists)
			dists[i] = hd[i];
	}

	pfree(pf.a);
	pfree(pf.w);
	pfree(lb);
	pfree(ids);
	pfree(hd);
	pfree(hid);
}

/*
 * The nprobe lists whose centroids are nearest to q, nearest first; ties
 * go to the lower list number.  Inserts use nprobe = 1, so a vector is
 * stored in exactly the list a query probes first.  dists (may be NULL)
 * receives the metric's distance: squared L2 or -dot.  From the
 * centroids' codes when there are many lists and few are wanted (the
 * result is the same).
 */
void
ivf_nearest_lists(const IvfCache *cache, const float *q, uint32 nprobe,
				  int32 *lists, float *dists)
{
	nprobe = Min(nprobe, cache->meta.nlists);
	if (cache->ccodes != NULL && ivf_prefilter_k > 0 &&
		(Size) nprobe * 8 <= cache->meta.nlists)
		nearest_lists_codes(cache, q, nprobe, lists, dists);
	else
		nearest_lists_exact(cache, q, nprobe, lists, dists);
}

/* qsort/bsearch comparator for int64 (packed TIDs) */
int
ivf_cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}
