/*-------------------------------------------------------------------------
 *
 * ivfoptions.c
 *	  The index's options (reloptions): their definitions, parsing and
 *	  validators, and reading them.  Below the access method: the search
 *	  settings (ivfparams.c) and the build read them, and ivf_open_index
 *	  recognises an ivfflat index by its amoptions function.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "access/reloptions.h"
#include "utils/rel.h"

#include "ivfformat.h"
#include "ivfoptions.h"
#include "ivfsettings.h"

static relopt_kind ivf_relopt_kind;

static relopt_enum_elt_def list_ordering_values[] = {
	{"none", IVF_ORDER_NONE},
	{"residual_norm_asc", IVF_ORDER_RESIDUAL},
	{NULL, 0}
};

/*
 * prefilter is a boolean with a third value, auto (the default), so that
 * "not set" can depend on the element type and width.  Every spelling a boolean
 * option took is kept, so WITH clauses and dumps written for the boolean
 * still restore.
 */
static relopt_enum_elt_def prefilter_values[] = {
	{"auto", IVF_PREFILTER_AUTO},
	{"on", IVF_PREFILTER_ON},
	{"off", IVF_PREFILTER_OFF},
	{"true", IVF_PREFILTER_ON},
	{"false", IVF_PREFILTER_OFF},
	{"yes", IVF_PREFILTER_ON},
	{"no", IVF_PREFILTER_OFF},
	{"t", IVF_PREFILTER_ON},
	{"f", IVF_PREFILTER_OFF},
	{"y", IVF_PREFILTER_ON},
	{"n", IVF_PREFILTER_OFF},
	{"1", IVF_PREFILTER_ON},
	{"0", IVF_PREFILTER_OFF},
	{NULL, 0}
};

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
	add_enum_reloption(ivf_relopt_kind, "prefilter",
					   "Store an 8-bit code of each vector, from which scans bound distances before reading the vector (auto: for vector, not for halfvec)",
					   prefilter_values, IVF_PREFILTER_AUTO,
					   "Valid values are \"auto\", \"on\" and \"off\" (or another boolean spelling).",
					   AccessExclusiveLock);
	add_string_reloption(ivf_relopt_kind, "centroids",
						 "Faiss file whose centroids the index is built around, read at every build (CREATE INDEX, REINDEX)",
						 NULL, ivf_faiss_validate_path, AccessExclusiveLock);
	/* gates maintenance only (src/README "Maintenance: when and who") */
	add_bool_reloption(ivf_relopt_kind, "adaptive",
					   "Split and merge lists as the table grows and changes, instead of keeping the lists built",
					   true, ShareUpdateExclusiveLock);
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
		{"prefilter", RELOPT_TYPE_ENUM, offsetof(IvfOptions, prefilter)},
		{"centroids", RELOPT_TYPE_STRING, offsetof(IvfOptions, centroids_offset)},
		{"params", RELOPT_TYPE_STRING, offsetof(IvfOptions, params_offset)},
		{"adaptive", RELOPT_TYPE_BOOL, offsetof(IvfOptions, adaptive)},
	};

	return (bytea *) build_reloptions(reloptions, validate, ivf_relopt_kind,
									  sizeof(IvfOptions), tab, lengthof(tab));
}

/* ------------------------------------------------------- index options */

/* The index's options, or the defaults when none were given. */
IvfOptions *
ivf_get_options(Relation index)
{
	IvfOptions *opts = (IvfOptions *) index->rd_options;
	static IvfOptions defaults = {0, -1, -1, 1234, IVF_ORDER_NONE,
	IVF_PREFILTER_AUTO, 0, 0, true};

	return opts ? opts : &defaults;
}

/*
 * Whether a build stores the prefilter's codes.  auto: always for float
 * elements; for half floats only from IVF_PREFILTER_HALF_MIN_DIMS up.  A
 * code is one byte an element whatever the element, so beside half floats
 * it at most halves the bytes a scan reads, while bounding costs about as
 * much per vector as reading a short half vector.  Measured against a
 * vector index with codes (bench/): at 128 dimensions (BIGANN) a halfvec
 * index without codes ran 1.07-1.24x its QPS, one with codes 0.99-1.07x
 * (SIFT, busy machine); at 784 (Fashion-MNIST) without codes 0.68-0.98x,
 * with codes 0.92-1.21x.  Where in between they cross is not measured.
 */
bool
ivf_prefilter_wanted(const IvfOptions *opts, IvfElemType elem, uint32 dims)
{
	if (opts->prefilter == IVF_PREFILTER_AUTO)
		return elem == IVF_ELEM_FLOAT || dims >= IVF_PREFILTER_HALF_MIN_DIMS;
	return opts->prefilter == IVF_PREFILTER_ON;
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

/*
 * The index's nprobe option when set, else for an adaptive index
 * round(sqrt(live lists)) of the meta page's view (its lists change), else
 * what the meta page records from the build.
 */
uint32
ivf_option_nprobe(Relation index, const IvfMetaPageData *meta)
{
	IvfOptions *opts = ivf_get_options(index);

	if (opts->nprobe > 0)
		return Min((uint32) opts->nprobe, meta->nlists);
	if (meta->flags & IVF_META_ADAPTIVE)
		return Max(1, (uint32) rint(sqrt((double) meta->nlists)));
	return meta->default_nprobe;
}

/* the centroids option's validator: an absolute path (or nothing) */
void
ivf_faiss_validate_path(const char *value)
{
	if (value != NULL && !is_absolute_path(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("centroids must be an absolute path, not \"%s\"", value)));
}
