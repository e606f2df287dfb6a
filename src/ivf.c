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
assign_probes_alias(int newval, void *extra)
{
	if (newval > 0)
		probes_stamp = ++stamp_counter;
}

/* The number of lists a scan probes, 1 .. nlists. */
int
ivf_effective_nprobe(int index_default, int nlists)
{
	int			n;

	if (ivf_nprobe_setting > 0 &&
		(ivf_probes_alias_setting <= 0 || nprobe_stamp >= probes_stamp))
		n = ivf_nprobe_setting;
	else if (ivf_probes_alias_setting > 0)
		n = ivf_probes_alias_setting;
	else
		n = index_default;

	return Max(1, Min(n, nlists));
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
							"k-means iterations when building an ivfflat index.",
							NULL,
							&ivf_kmeans_iterations,
							25, 1, 1000,
							PGC_USERSET,
							0,
							NULL,
							NULL,
							NULL);

	ivf_init_reloptions();

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
