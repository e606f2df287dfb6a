/*-------------------------------------------------------------------------
 *
 * ivfsettings.h
 *	  The search settings: the GUCs' values, parameter sets (ivf.params and
 *	  the index's params option), and what a search uses, resolved from
 *	  them and the index's options (ivfparams.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFSETTINGS_H
#define IVF_IVFSETTINGS_H

#include "ivfformat.h"

#include "utils/relcache.h"

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
extern int	ivf_build_format;	/* format version builds write (tests) */
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
extern int	ivf_iterative_scan(Relation index);
extern int	ivf_max_nprobe(Relation index);

/* ivfparams.c */
extern bool ivf_params_parse(const char *str, IvfParamSet *out, char **msg);
extern char *ivf_params_format(const IvfParamSet *ps);
extern void ivf_params_validate(const char *value);
extern void ivf_index_params(Relation index, IvfParamSet *out);

#endif							/* IVF_IVFSETTINGS_H */
