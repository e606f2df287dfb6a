/*-------------------------------------------------------------------------
 *
 * ivf.c
 *	  Module initialisation and settings of the ivf extension.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "distance.h"
#include "ivf.h"
#include "ivfflat.h"

PG_MODULE_MAGIC;

#define IVF_SIMD_AUTO (-1)

int			ivf_simd_level_setting = IVF_SIMD_AUTO;

/*
 * ivf.nprobe and its pgvector alias ivfflat.probes.  0 means "not set";
 * when both are set, the one assigned last wins.  Assign hooks also run
 * when a SET LOCAL or a function's SET clause is undone, which counts as
 * setting the restored value.
 */
int			ivf_nprobe_setting = 0;
int			ivf_probes_alias_setting = 0;
static uint64 nprobe_stamp = 0;
static uint64 probes_stamp = 0;
static uint64 stamp_counter = 0;

int			ivf_kmeans_iterations = 25;
double		ivf_kmeans_tolerance = 0.002;
int			ivf_kmeans_points_per_list = 128;

/* search knobs (see ivfflat.h); the iterative ones also have pgvector aliases */
int			ivf_prefilter_k = 10;
/* read through ivf_search_settings() only, which weighs them against the rest */
static int	ivf_max_codes = 0;
static int	ivf_profile = IVF_PROFILE_EXACT;
static int	ivf_candidate_budget = 0;
static int	ivf_budget_strategy = IVF_BUDGET_UNIFORM;
static uint64 max_codes_stamp = 0;
static uint64 profile_stamp = 0;
static uint64 budget_stamp = 0;
static uint64 strategy_stamp = 0;

/* ivf.params: the text, and its parse (the GUC's extra) */
static char *ivf_params_setting = NULL;
static const IvfParamSet *session_params = NULL;
static uint64 params_stamp = 0;

const IvfParamSet *ivf_params_override = NULL;
static int	ivf_iterative_setting = IVF_ITERATIVE_OFF;
static int	ivf_iterative_alias_setting = IVF_ITERATIVE_OFF;
static int	ivf_max_nprobe_setting = 0;
static int	ivf_max_probes_alias_setting = 0;
static uint64 iterative_stamp = 0;
static uint64 iterative_alias_stamp = 0;
static uint64 max_nprobe_stamp = 0;
static uint64 max_probes_alias_stamp = 0;

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

static void
assign_nprobe(int newval, void *extra)
{
	if (newval > 0)
		nprobe_stamp = ++stamp_counter;
}

static void
assign_max_codes(int newval, void *extra)
{
	if (newval != 0)
		max_codes_stamp = ++stamp_counter;
}

static void
assign_profile(int newval, void *extra)
{
	if (newval != IVF_PROFILE_EXACT)
		profile_stamp = ++stamp_counter;
}

static void
assign_candidate_budget(int newval, void *extra)
{
	if (newval != 0)
		budget_stamp = ++stamp_counter;
}

static void
assign_budget_strategy(int newval, void *extra)
{
	if (newval != IVF_BUDGET_UNIFORM)
		strategy_stamp = ++stamp_counter;
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
	session_params = (const IvfParamSet *) extra;
	if (session_params != NULL && session_params->set != 0)
		params_stamp = ++stamp_counter;
}

static void
assign_probes_alias(int newval, void *extra)
{
	if (newval > 0)
		probes_stamp = ++stamp_counter;
}

static void
assign_iterative(int newval, void *extra)
{
	if (newval != IVF_ITERATIVE_OFF)
		iterative_stamp = ++stamp_counter;
}

static void
assign_iterative_alias(int newval, void *extra)
{
	if (newval != IVF_ITERATIVE_OFF)
		iterative_alias_stamp = ++stamp_counter;
}

static void
assign_max_nprobe(int newval, void *extra)
{
	if (newval > 0)
		max_nprobe_stamp = ++stamp_counter;
}

static void
assign_max_probes_alias(int newval, void *extra)
{
	if (newval > 0)
		max_probes_alias_stamp = ++stamp_counter;
}

/*
 * The value of a setting that has a pgvector alias: whichever of the two
 * was set (to a non-default value) last.
 */
static int
aliased(int value, uint64 stamp, int alias_value, uint64 alias_stamp,
		int unset)
{
	if (value != unset && (alias_value == unset || stamp >= alias_stamp))
		return value;
	if (alias_value != unset)
		return alias_value;
	return unset;
}

int
ivf_iterative_scan(void)
{
	return aliased(ivf_iterative_setting, iterative_stamp,
				   ivf_iterative_alias_setting, iterative_alias_stamp,
				   IVF_ITERATIVE_OFF);
}

int
ivf_max_nprobe(void)
{
	return aliased(ivf_max_nprobe_setting, max_nprobe_stamp,
				   ivf_max_probes_alias_setting, max_probes_alias_stamp, 0);
}

/*
 * One knob of a search.  The session's own setting (GUC, set to other than
 * its default) and its ivf.params string compete by which was set last;
 * with neither, the index's params option; then the default.  The
 * override (ivf_autotune's experiments) comes first of all.
 */
static int
param_value(const IvfParamSet *ps, uint32 bit)
{
	switch (bit)
	{
		case IVF_PARAM_NPROBE:
			return ps->nprobe;
		case IVF_PARAM_MAX_CODES:
			return ps->max_codes;
		case IVF_PARAM_PROFILE:
			return ps->profile;
		case IVF_PARAM_BUDGET:
			return ps->candidate_budget;
		default:
			Assert(bit == IVF_PARAM_STRATEGY);
			return ps->budget_strategy;
	}
}

static bool
pick(uint32 bit, const IvfParamSet *index_ps, bool guc_set, uint64 guc_stamp,
	 int guc_value, int *out)
{
	if (ivf_params_override != NULL && (ivf_params_override->set & bit))
		*out = param_value(ivf_params_override, bit);
	else if (session_params != NULL && (session_params->set & bit) &&
			 (!guc_set || params_stamp > guc_stamp))
		*out = param_value(session_params, bit);
	else if (guc_set)
		*out = guc_value;
	else if (index_ps->set & bit)
		*out = param_value(index_ps, bit);
	else
		return false;
	return true;
}

/*
 * The settings a search of this index uses.  nprobe falls back to the
 * index's nprobe option and then to what the build chose; the others to
 * "no limit" and the uniform strategy.
 */
void
ivf_search_settings(Relation index, const IvfMetaPageData *meta,
					IvfSearchSettings *s)
{
	IvfParamSet ips;
	int			nprobe_guc;
	uint64		nprobe_stamp_latest;
	int			nprobe;
	int			max_codes = 0;
	int			profile = IVF_PROFILE_EXACT;
	int			budget = 0;
	int			strategy = IVF_BUDGET_UNIFORM;

	ivf_index_params(index, &ips);

	nprobe_guc = aliased(ivf_nprobe_setting, nprobe_stamp,
						 ivf_probes_alias_setting, probes_stamp, 0);
	nprobe_stamp_latest = Max(ivf_nprobe_setting > 0 ? nprobe_stamp : 0,
							  ivf_probes_alias_setting > 0 ? probes_stamp : 0);
	/* ips has no nprobe if this falls through: the option, or the build's */
	if (!pick(IVF_PARAM_NPROBE, &ips, nprobe_guc > 0, nprobe_stamp_latest,
			  nprobe_guc, &nprobe))
		nprobe = (int) ivf_option_nprobe(index, meta);
	s->nprobe = (uint32) Max(1, Min(nprobe, (int) meta->nlists));

	(void) pick(IVF_PARAM_MAX_CODES, &ips, ivf_max_codes != 0,
				max_codes_stamp, ivf_max_codes, &max_codes);
	(void) pick(IVF_PARAM_PROFILE, &ips, ivf_profile != IVF_PROFILE_EXACT,
				profile_stamp, ivf_profile, &profile);
	(void) pick(IVF_PARAM_BUDGET, &ips, ivf_candidate_budget != 0,
				budget_stamp, ivf_candidate_budget, &budget);
	(void) pick(IVF_PARAM_STRATEGY, &ips,
				ivf_budget_strategy != IVF_BUDGET_UNIFORM, strategy_stamp,
				ivf_budget_strategy, &strategy);

	s->max_codes = (uint64) Max(max_codes, 0);
	s->budget_strategy = strategy;
	if (budget > 0)
		s->budget = (uint64) budget;
	else
		switch (profile)
		{
			case IVF_PROFILE_FAST:
				s->budget = 32768;
				break;
			case IVF_PROFILE_BALANCED:
				s->budget = 65536;
				break;
			case IVF_PROFILE_QUALITY:
				s->budget = 131072;
				break;
			default:
				s->budget = 0;
		}
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
							"0 uses the index's default (its nprobe option, or sqrt(lists)).",
							&ivf_nprobe_setting,
							0, 0, IVF_MAX_LISTS,
							PGC_USERSET,
							0,
							NULL,
							assign_nprobe,
							NULL);

	DefineCustomIntVariable("ivfflat.probes",
							"Alias of ivf.nprobe accepted for pgvector compatibility.",
							"0 means not set; when both are set, the one set last wins.",
							&ivf_probes_alias_setting,
							0, 0, IVF_MAX_LISTS,
							PGC_USERSET,
							0,
							NULL,
							assign_probes_alias,
							NULL);

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
							&ivf_max_codes,
							0, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, assign_max_codes, NULL);

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
							 &ivf_profile,
							 IVF_PROFILE_EXACT,
							 profile_options,
							 PGC_USERSET,
							 0,
							 NULL, assign_profile, NULL);

	DefineCustomIntVariable("ivf.candidate_budget",
							"Candidates per probe round, shared among the probed lists (0: the profile's).",
							NULL,
							&ivf_candidate_budget,
							0, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, assign_candidate_budget, NULL);

	DefineCustomEnumVariable("ivf.budget_strategy",
							 "How a candidate budget is shared among probed lists.",
							 "uniform: ceil(budget/nprobe) each; distance_weighted: in proportion to exp(-3 z), z the list's normalised centroid distance.",
							 &ivf_budget_strategy,
							 IVF_BUDGET_UNIFORM,
							 budget_strategy_options,
							 PGC_USERSET,
							 0,
							 NULL, assign_budget_strategy, NULL);

	DefineCustomStringVariable("ivf.params",
							   "Several ivfflat search settings in one string, e.g. 'nprobe=8,max_codes=4096'.",
							   "Names: nprobe, max_codes, profile, candidate_budget, budget_strategy.  Each one given overrides the index's params option; between this string and the individual setting, the one set last counts.",
							   &ivf_params_setting,
							   "",
							   PGC_USERSET,
							   0,
							   check_params, assign_params, NULL);

	DefineCustomEnumVariable("ivf.iterative_scan",
							 "Probe further lists when a scan runs out of rows (for filtered queries).",
							 "relaxed_order returns every further candidate; strict_order drops those nearer than a row already returned.",
							 &ivf_iterative_setting,
							 IVF_ITERATIVE_OFF,
							 iterative_options,
							 PGC_USERSET,
							 0,
							 NULL, assign_iterative, NULL);

	DefineCustomEnumVariable("ivfflat.iterative_scan",
							 "Alias of ivf.iterative_scan accepted for pgvector compatibility.",
							 NULL,
							 &ivf_iterative_alias_setting,
							 IVF_ITERATIVE_OFF,
							 iterative_options,
							 PGC_USERSET,
							 0,
							 NULL, assign_iterative_alias, NULL);

	DefineCustomIntVariable("ivf.max_nprobe",
							"Most lists an iterative ivfflat scan probes (0: all).",
							NULL,
							&ivf_max_nprobe_setting,
							0, 0, IVF_MAX_LISTS,
							PGC_USERSET,
							0,
							NULL, assign_max_nprobe, NULL);

	DefineCustomIntVariable("ivfflat.max_probes",
							"Alias of ivf.max_nprobe accepted for pgvector compatibility.",
							"0 means not set.",
							&ivf_max_probes_alias_setting,
							0, 0, IVF_MAX_LISTS,
							PGC_USERSET,
							0,
							NULL, assign_max_probes_alias, NULL);

	DefineCustomEnumVariable("ivf.search_mode",
							 "Path of batch search (ivf_search).",
							 "matrix: query by query; csr: list by list, each list read once for all its queries; auto: csr when nq * nprobe >= lists.",
							 &ivf_search_mode,
							 IVF_SEARCH_AUTO,
							 search_mode_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	ivf_init_reloptions();
	ivf_gpu_init();

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
