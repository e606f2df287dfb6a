/*-------------------------------------------------------------------------
 *
 * ivf.c
 *	  Module initialisation of the ivf extension and the definitions of its
 *	  settings (how a search combines them: ivfparams.c).
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <limits.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "distance.h"
#include "gpuclient.h"
#include "ivf.h"
#include "ivfformat.h"
#include "ivfmaintain.h"
#include "ivfoptions.h"
#include "ivfsettings.h"

PG_MODULE_MAGIC;

/* ivf.debug_maintenance_pause: one of the maintainer's steps, or '' */
static bool
check_maintenance_pause(char **newval, void **extra, GucSource source)
{
	static const char *const steps[] = {"", "stamp", "copy", "close", "switch", "retire"};
	int			i;

	for (i = 0; i < lengthof(steps); i++)
		if (strcmp(*newval, steps[i]) == 0)
			return true;
	GUC_check_errdetail("Valid values are '', stamp, copy, close, switch and retire.");
	return false;
}

#define IVF_SIMD_AUTO (-1)

int			ivf_simd_level_setting = IVF_SIMD_AUTO;

int			ivf_kmeans_iterations = 25;
double		ivf_kmeans_tolerance = 0.002;
int			ivf_kmeans_points_per_list = 128;
int			ivf_prefilter_k = 10;
int			ivf_build_format = IVF_FORMAT_VERSION;

static const struct config_enum_entry profile_options[] = {
	{"exact", IVF_PROFILE_EXACT, false},
	{"approx_fast", IVF_PROFILE_FAST, false},
	{"approx_balanced", IVF_PROFILE_BALANCED, false},
	{"approx_quality", IVF_PROFILE_QUALITY, false},
	{NULL, 0, false}
};

static const struct config_enum_entry budget_strategy_options[] = {
	{"uniform", IVF_BUDGET_UNIFORM, false},
	{"distance_weighted", IVF_BUDGET_DISTANCE_WEIGHTED, false},
	{NULL, 0, false}
};

static const struct config_enum_entry search_mode_options[] = {
	{"auto", IVF_SEARCH_AUTO, false},
	{"matrix", IVF_SEARCH_MATRIX, false},
	{"csr", IVF_SEARCH_CSR, false},
	{NULL, 0, false}
};

static const struct config_enum_entry iterative_options[] = {
	{"off", IVF_ITERATIVE_OFF, false},
	{"relaxed_order", IVF_ITERATIVE_RELAXED, false},
	{"strict_order", IVF_ITERATIVE_STRICT, false},
	{NULL, 0, false}
};

static const struct config_enum_entry simd_level_options[] = {
	{"auto", IVF_SIMD_AUTO, false},
	{"scalar", IVF_SIMD_SCALAR, false},
	{"avx2", IVF_SIMD_AVX2, false},
	{"avx512", IVF_SIMD_AVX512, false},
	{"neon", IVF_SIMD_NEON, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/* The kernel levels this CPU and build support, best last. */
static char *
supported_levels_string(void)
{
	StringInfoData buf;
	int			level;

	initStringInfo(&buf);
	for (level = 0; level < IVF_SIMD_NLEVELS; level++)
	{
		if (!ivf_simd_level_supported((IvfSimdLevel) level))
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, ivf_simd_level_name((IvfSimdLevel) level));
	}
	return buf.data;
}

static bool
check_simd_level(int *newval, void **extra, GucSource source)
{
	if (*newval == IVF_SIMD_AUTO)
		return true;
	if (!ivf_simd_level_supported((IvfSimdLevel) *newval))
	{
		GUC_check_errdetail("Kernel level \"%s\" is not available on this CPU or in this build; available: %s.",
							ivf_simd_level_name((IvfSimdLevel) *newval),
							supported_levels_string());
		return false;
	}
	return true;
}

static void
assign_simd_level(int newval, void *extra)
{
	IvfSimdLevel level = (newval == IVF_SIMD_AUTO) ?
		ivf_simd_best_level() : (IvfSimdLevel) newval;

	/* the check hook has vetted it; a failure would leave the table as is */
	(void) ivf_kernels_set_level(level);
}

static bool
check_params(char **newval, void **extra, GucSource source)
{
	IvfParamSet ps;
	IvfParamSet *copy;
	char	   *msg;

	if (!ivf_params_parse(*newval, &ps, &msg))
	{
		GUC_check_errdetail("%s", msg);
		return false;
	}
	/* GUC frees extra with free(): it must come from malloc */
	copy = (IvfParamSet *) malloc(sizeof(IvfParamSet));
	if (copy == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	*copy = ps;
	*extra = copy;
	return true;
}

static void
assign_params(const char *newval, void *extra)
{
	ivf_session_params = (const IvfParamSet *) extra;
}

void
_PG_init(void)
{
	ivf_kernels_init();

	/*
	 * Backends are single-threaded processes sharing the machine with each
	 * other; OpenBLAS's own thread pool would only oversubscribe the cores.
	 */
	ivf_blas_set_threads(1);

	DefineCustomEnumVariable("ivf.simd_level",
							 "Forces the distance kernel instruction set.",
							 "\"auto\" picks the best the CPU supports; the others exist so tests reach every kernel.",
							 &ivf_simd_level_setting,
							 IVF_SIMD_AUTO,
							 simd_level_options,
							 PGC_USERSET,
							 0,
							 check_simd_level,
							 assign_simd_level,
							 NULL);

	DefineCustomIntVariable("ivf.nprobe",
							"Number of lists an ivfflat scan probes.",
							"0 (not set) uses ivf.params, pgvector's ivfflat.probes (ivfflat indexes), the index's params, its nprobe option, sqrt(lists): the first set.",
							&ivf_nprobe_setting,
							0, 0, IVF_MAX_LISTS,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ivf.kmeans_iterations",
							"Most k-means iterations when building an ivfflat index.",
							"Fewer are run once ivf.kmeans_tolerance is reached.",
							&ivf_kmeans_iterations,
							25, 1, 1000,
							PGC_USERSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomRealVariable("ivf.kmeans_tolerance",
							 "k-means stops after an iteration that improves the mean distance by no more than this fraction.",
							 "0 runs all ivf.kmeans_iterations.",
							 &ivf_kmeans_tolerance,
							 0.002, 0.0, 1.0,
							 PGC_USERSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomIntVariable("ivf.kmeans_points_per_list",
							"Training vectors sampled per list when building an ivfflat index.",
							"The sample is this many per list, at least 10000 (all rows when fewer).  Faiss samples up to 256 per centroid and warns below 39.",
							&ivf_kmeans_points_per_list,
							128, 1, 65536,
							PGC_USERSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("ivf.max_codes",
							"Most vectors an ivfflat scan examines per probe round (0: no limit, or the index's params).",
							"Lists are taken nearest first; the list that crosses the limit is cut exactly, as in Faiss.",
							&ivf_max_codes_setting,
							0, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ivf.prefilter_k",
							"Rows an ivfflat scan reads in full while scanning, when the index has codes (0: read every row).",
							"With the prefilter option, a scan reads a row's vector only when the bound from its code may put it among the nearest prefilter_k found so far; rows needed beyond those are read when the query asks for them.  Results are the same for every value; set it near the query's LIMIT.",
							&ivf_prefilter_k,
							10, 0, 100000,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("ivf.profile",
							 "Candidate-budget preset of ivfflat scans.",
							 "exact: no budget; approx_fast / approx_balanced / approx_quality: 32768 / 65536 / 131072 candidates per probe round, shared among the probed lists.",
							 &ivf_profile_setting,
							 IVF_PROFILE_EXACT,
							 profile_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("ivf.candidate_budget",
							"Candidates per probe round, shared among the probed lists (0: the profile's).",
							NULL,
							&ivf_candidate_budget_setting,
							0, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("ivf.budget_strategy",
							 "How a candidate budget is shared among probed lists.",
							 "uniform: ceil(budget/nprobe) each; distance_weighted: in proportion to exp(-3 z), z the list's normalised centroid distance.",
							 &ivf_budget_strategy_setting,
							 IVF_BUDGET_UNIFORM,
							 budget_strategy_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("ivf.params",
							   "Several ivfflat search settings in one string, e.g. 'nprobe=8,max_codes=4096'.",
							   "Names: nprobe, max_codes, profile, candidate_budget, budget_strategy.  Each one given overrides pgvector's ivfflat.probes and the index's params option; an individual setting, when set, overrides it.",
							   &ivf_params_setting,
							   "",
							   PGC_USERSET,
							   0,
							   check_params, assign_params, NULL);

	DefineCustomEnumVariable("ivf.iterative_scan",
							 "Probe further lists when a scan runs out of rows (for filtered queries).",
							 "relaxed_order returns every further candidate; strict_order drops those nearer than a row already returned.  off (not set) uses pgvector's ivfflat.iterative_scan (ivfflat indexes).",
							 &ivf_iterative_setting,
							 IVF_ITERATIVE_OFF,
							 iterative_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("ivf.max_nprobe",
							"Most lists an iterative ivfflat scan probes (0: all).",
							"0 (not set) uses pgvector's ivfflat.max_probes (ivfflat indexes).",
							&ivf_max_nprobe_setting,
							0, 0, IVF_MAX_LISTS,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("ivf.search_mode",
							 "Path of batch search (ivf_search).",
							 "matrix: query by query; csr: list by list, each list read once for all its queries; auto: csr when nq * nprobe >= lists.",
							 &ivf_search_mode,
							 IVF_SEARCH_AUTO,
							 search_mode_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/* older formats stay readable; only the tests need to write them */
	DefineCustomIntVariable("ivf.build_format",
							"Format version of the ivfflat indexes built (for tests).",
							"3 writes the format before list slots, as earlier builds did, so tests can check that such indexes are still read.",
							&ivf_build_format,
							IVF_FORMAT_VERSION, 3, IVF_FORMAT_VERSION,
							PGC_SUSET,
							GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							NULL, NULL, NULL);

	/*
	 * The tests' hook into the maintainer (ivfmaintain.c): at the named
	 * step it waits for a shared advisory lock on IVF_MAINTENANCE_PAUSE_KEY
	 * (1230390864), which a test holds to park it there.
	 */
	DefineCustomStringVariable("ivf.debug_maintenance_pause",
							   "Step at which list maintenance waits for a test (for tests).",
							   "'' (never), stamp, copy, close, switch or retire: the maintainer then takes the shared advisory lock 1230390864 and waits while a test holds it.",
							   &ivf_debug_maintenance_pause,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							   check_maintenance_pause, NULL, NULL);

	ivf_init_reloptions();
	ivf_gpu_init();

	/*
	 * Only "ivf": pgvector's ivfflat.* names are read, never defined (see
	 * ivfparams.c), and reserving "ivfflat" would make them unsettable
	 * without pgvector.
	 */
	IvfReserveGUCPrefix("ivf");
}

/* ivf_simd_levels() -> text, e.g. "scalar,avx2,avx512" */
PG_FUNCTION_INFO_V1(ivf_simd_levels_text);
Datum
ivf_simd_levels_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(supported_levels_string()));
}

/* ivf_simd_level() -> text: the kernel level in use now. */
PG_FUNCTION_INFO_V1(ivf_simd_level_active);
Datum
ivf_simd_level_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ivf_simd_level_name(ivf_kernels.level)));
}
