/*-------------------------------------------------------------------------
 *
 * ivfparams.c
 *	  Parameter strings: several search knobs in one "name=value,..." text,
 *	  as Faiss's ParameterSpace::set_index_parameters takes them.
 *
 * The same syntax serves three places:
 *	- the ivf.params setting, for a session;
 *	- an index's params option (ALTER INDEX ... SET (params = '...') or
 *	  ivf_set_params()), its defaults for queries that set nothing;
 *	- the operating points ivf_autotune() reports and applies.
 *
 * Names: nprobe (pgvector's "probes" also accepted), max_codes, profile,
 * candidate_budget, budget_strategy.  Blanks around names and values are
 * ignored, an empty string sets nothing, and a name given twice takes its
 * last value.  An unknown name or a bad value is an error naming it.
 *
 * It also resolves what a search uses (ivf_search_settings and friends):
 * every knob from the settings' values alone, by one fixed precedence, so
 * neither the order of SET commands nor the order in which a process
 * (a backend loading the library, a parallel worker restoring the
 * leader's settings) assigns them can change the result.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "commands/defrem.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "ivfformat.h"
#include "ivfoptions.h"
#include "ivfsettings.h"

/*
 * The search knobs (ivf.c defines them as GUCs).  Each one's default is
 * its "not set" value: ivf.nprobe 0, ivf.max_codes 0, ivf.profile exact,
 * ivf.candidate_budget 0, ivf.budget_strategy uniform, ivf.params '',
 * ivf.iterative_scan off, ivf.max_nprobe 0.
 */
int			ivf_nprobe_setting = 0;
int			ivf_max_codes_setting = 0;
int			ivf_profile_setting = IVF_PROFILE_EXACT;
int			ivf_candidate_budget_setting = 0;
int			ivf_budget_strategy_setting = IVF_BUDGET_UNIFORM;
int			ivf_iterative_setting = IVF_ITERATIVE_OFF;
int			ivf_max_nprobe_setting = 0;
char	   *ivf_params_setting = NULL;
const IvfParamSet *ivf_session_params = NULL;

/* ivf_autotune's experiments: above every setting */
const IvfParamSet *ivf_params_override = NULL;

/* ivf.search_mode: how ivf_search scans (ivfbatch.c) */
int			ivf_search_mode = IVF_SEARCH_AUTO;

/*
 * pgvector's names of three knobs.  pgvector defines them when it is
 * loaded, and a second definition of a name is an error (in whichever
 * library comes second), so ivf never defines them: it reads their text,
 * which is pgvector's value or, without pgvector, a placeholder's.  Not set
 * means absent, empty, 0 as a placeholder (ivf's "unset" of old), or
 * pgvector's default while pgvector defines the name.
 */
#define PGVECTOR_PROBES			"ivfflat.probes"
#define PGVECTOR_ITERATIVE		"ivfflat.iterative_scan"
#define PGVECTOR_MAX_PROBES		"ivfflat.max_probes"
#define PGVECTOR_DEFAULT_PROBES	1
#define PGVECTOR_DEFAULT_MAX_PROBES	32768

static const char *const profile_names[] = {
	[IVF_PROFILE_EXACT] = "exact",
	[IVF_PROFILE_FAST] = "approx_fast",
	[IVF_PROFILE_BALANCED] = "approx_balanced",
	[IVF_PROFILE_QUALITY] = "approx_quality",
};

static const char *const strategy_names[] = {
	[IVF_BUDGET_UNIFORM] = "uniform",
	[IVF_BUDGET_DISTANCE_WEIGHTED] = "distance_weighted",
};

static bool
params_int(const char *s, int lo, int hi, int *out)
{
	char	   *end;
	long		v;

	if (*s == '\0' || isspace((unsigned char) *s))
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return false;
	*out = (int) v;
	return true;
}

static bool
params_name(const char *s, const char *const *names, int n, int *out)
{
	int			i;

	for (i = 0; i < n; i++)
		if (pg_strcasecmp(s, names[i]) == 0)
		{
			*out = i;
			return true;
		}
	return false;
}

/* s[0..len) without its leading and trailing blanks, as a new string */
static char *
trimmed(const char *s, size_t len)
{
	while (len > 0 && isspace((unsigned char) *s))
	{
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char) s[len - 1]))
		len--;
	return pnstrdup(s, len);
}

/*
 * Parse str into *out.  On an error returns false with *msg (palloc'd in
 * the current context), an errdetail sentence saying what is wrong and
 * naming the parameter; usable
 * from GUC check hooks, which must not throw.
 */
bool
ivf_params_parse(const char *str, IvfParamSet *out, char **msg)
{
	const char *p = str;

	memset(out, 0, sizeof(*out));
	*msg = NULL;
	if (str == NULL || trimmed(str, strlen(str))[0] == '\0')
		return true;
	while (*p != '\0')
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);
		char	   *item = trimmed(p, len);
		char	   *eq = strchr(item, '=');
		char	   *name;
		char	   *value;
		bool		ok = false;

		p += len + (comma ? 1 : 0);
		if (item[0] == '\0')
		{
			*msg = psprintf("The parameter string \"%s\" has an empty entry.", str);
			return false;
		}
		if (eq == NULL)
		{
			*msg = psprintf("Parameter \"%s\" has no value (expected name=value).", item);
			return false;
		}
		name = trimmed(item, eq - item);
		value = trimmed(eq + 1, strlen(eq + 1));

		if (pg_strcasecmp(name, "nprobe") == 0 || pg_strcasecmp(name, "probes") == 0)
		{
			ok = params_int(value, 1, IVF_MAX_LISTS, &out->nprobe);
			out->set |= IVF_PARAM_NPROBE;
			if (!ok)
				*msg = psprintf("Parameter \"%s\" is \"%s\"; it must be an integer from 1 to %d.",
								name, value, IVF_MAX_LISTS);
		}
		else if (pg_strcasecmp(name, "max_codes") == 0)
		{
			ok = params_int(value, 0, INT_MAX, &out->max_codes);
			out->set |= IVF_PARAM_MAX_CODES;
			if (!ok)
				*msg = psprintf("Parameter \"%s\" is \"%s\"; it must be an integer from 0 to %d (0: no limit).",
								name, value, INT_MAX);
		}
		else if (pg_strcasecmp(name, "candidate_budget") == 0)
		{
			ok = params_int(value, 0, INT_MAX, &out->candidate_budget);
			out->set |= IVF_PARAM_BUDGET;
			if (!ok)
				*msg = psprintf("Parameter \"%s\" is \"%s\"; it must be an integer from 0 to %d (0: the profile's).",
								name, value, INT_MAX);
		}
		else if (pg_strcasecmp(name, "profile") == 0)
		{
			ok = params_name(value, profile_names, lengthof(profile_names), &out->profile);
			out->set |= IVF_PARAM_PROFILE;
			if (!ok)
				*msg = psprintf("Parameter \"%s\" is \"%s\"; it must be exact, approx_fast, approx_balanced or approx_quality.",
								name, value);
		}
		else if (pg_strcasecmp(name, "budget_strategy") == 0)
		{
			ok = params_name(value, strategy_names, lengthof(strategy_names), &out->budget_strategy);
			out->set |= IVF_PARAM_STRATEGY;
			if (!ok)
				*msg = psprintf("Parameter \"%s\" is \"%s\"; it must be uniform or distance_weighted.",
								name, value);
		}
		else
		{
			*msg = psprintf("Parameter \"%s\" is unknown; the parameters are nprobe, max_codes, profile, candidate_budget and budget_strategy.",
							name);
			return false;
		}
		if (!ok)
			return false;
	}
	return true;
}

/* The canonical text of a parameter set: fixed order, no blanks. */
char *
ivf_params_format(const IvfParamSet *ps)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (ps->set & IVF_PARAM_NPROBE)
		appendStringInfo(&buf, "nprobe=%d,", ps->nprobe);
	if (ps->set & IVF_PARAM_MAX_CODES)
		appendStringInfo(&buf, "max_codes=%d,", ps->max_codes);
	if (ps->set & IVF_PARAM_PROFILE)
		appendStringInfo(&buf, "profile=%s,", profile_names[ps->profile]);
	if (ps->set & IVF_PARAM_BUDGET)
		appendStringInfo(&buf, "candidate_budget=%d,", ps->candidate_budget);
	if (ps->set & IVF_PARAM_STRATEGY)
		appendStringInfo(&buf, "budget_strategy=%s,", strategy_names[ps->budget_strategy]);
	if (buf.len > 0)
		buf.data[--buf.len] = '\0';
	return buf.data;
}

/* Reloption validator of the params option: an error names the problem. */
void
ivf_params_validate(const char *value)
{
	IvfParamSet ps;
	char	   *msg;

	if (!ivf_params_parse(value, &ps, &msg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for ivf option \"params\": \"%s\"",
						value),
				 errdetail("%s", msg)));
}

/*
 * The index's params option, parsed (nothing set when it has none).  The
 * option was validated when it was set, so a failure here means a catalog
 * from another version of the extension: treat it as unset.
 */
void
ivf_index_params(Relation index, IvfParamSet *out)
{
	IvfOptions *opts = (IvfOptions *) index->rd_options;
	char	   *msg;

	memset(out, 0, sizeof(*out));
	if (opts == NULL || opts->params_offset == 0)
		return;
	if (!ivf_params_parse((const char *) opts + opts->params_offset, out, &msg))
		memset(out, 0, sizeof(*out));
}

/* The text of a pgvector setting, or NULL when it has none. */
static const char *
pgvector_setting(const char *name, bool *defined)
{
	const char *value = GetConfigOption(name, true, false);

	if (value == NULL || value[0] == '\0')
		return NULL;
	*defined = !IvfGucIsPlaceholder(name);
	return value;
}

/*
 * An integer pgvector setting: false when not set, else its value in
 * [1, IVF_MAX_LISTS].  A placeholder's text was never checked, so a bad one
 * is an error here, naming it.
 */
static bool
pgvector_int(const char *name, int pgvector_default, int *out)
{
	bool		defined = false;
	const char *text = pgvector_setting(name, &defined);
	int			v;

	if (text == NULL)
		return false;
	if (!parse_int(text, &v, 0, NULL) || v < 0 || v > IVF_MAX_LISTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"%s\": \"%s\"", name, text),
				 errhint("ivf reads it as an integer from 1 to %d, 0 meaning not set.",
						 IVF_MAX_LISTS)));
	if (v == 0 || (defined && v == pgvector_default))
		return false;
	*out = v;
	return true;
}

/* pgvector_aliases' answer for access method aliases_am (InvalidOid: none) */
static Oid	aliases_am = InvalidOid;
static bool aliases_result = false;
static bool aliases_callback_registered = false;

static void
aliases_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	aliases_am = InvalidOid;
}

/*
 * Whether pgvector's ivfflat.* settings count for this index: only when its
 * access method is named ivfflat (the standalone extension, where they let
 * SQL written for pgvector run unchanged).  Under ivf_pgvector the index's
 * access method is ivf and ivfflat is pgvector's own, whose settings must
 * not tune an ivf index beside it.
 */
static bool
pgvector_aliases(Relation index)
{
	Oid			am = index->rd_rel->relam;
	char	   *amname;

	/*
	 * Every rescan asks, up to three times: remember the answer for the last
	 * access method seen (one catalog lookup per backend, not per query),
	 * forgotten when pg_am changes.
	 */
	if (!aliases_callback_registered)
	{
		CacheRegisterSyscacheCallback(AMOID, aliases_invalidate, (Datum) 0);
		aliases_callback_registered = true;
	}
	if (OidIsValid(aliases_am) && aliases_am == am)
		return aliases_result;

	amname = get_am_name(am);
	aliases_result = amname != NULL && strcmp(amname, "ivfflat") == 0;
	aliases_am = am;
	if (amname)
		pfree(amname);
	return aliases_result;
}

/* ivfflat.iterative_scan: IVF_ITERATIVE_OFF when not set */
static int
pgvector_iterative(void)
{
	bool		defined = false;
	const char *text = pgvector_setting(PGVECTOR_ITERATIVE, &defined);

	if (text == NULL || pg_strcasecmp(text, "off") == 0)
		return IVF_ITERATIVE_OFF;
	if (pg_strcasecmp(text, "relaxed_order") == 0)
		return IVF_ITERATIVE_RELAXED;
	if (pg_strcasecmp(text, "strict_order") == 0)
		return IVF_ITERATIVE_STRICT;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for parameter \"%s\": \"%s\"",
					PGVECTOR_ITERATIVE, text),
			 errhint("Available values: off, relaxed_order, strict_order.")));
	return IVF_ITERATIVE_OFF;	/* keep the compiler quiet */
}

/*
 * ivf.iterative_scan if set (not off), else ivfflat.iterative_scan (for an
 * access method named ivfflat)
 */
int
ivf_iterative_scan(Relation index)
{
	if (ivf_iterative_setting != IVF_ITERATIVE_OFF)
		return ivf_iterative_setting;
	if (!pgvector_aliases(index))
		return IVF_ITERATIVE_OFF;
	return pgvector_iterative();
}

/*
 * ivf.max_nprobe if set (not 0), else ivfflat.max_probes (for an access
 * method named ivfflat), else 0 (all)
 */
int
ivf_max_nprobe(Relation index)
{
	int			v;

	if (ivf_max_nprobe_setting > 0)
		return ivf_max_nprobe_setting;
	if (pgvector_aliases(index) &&
		pgvector_int(PGVECTOR_MAX_PROBES, PGVECTOR_DEFAULT_MAX_PROBES, &v))
		return v;
	return 0;
}

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

/*
 * One knob of a search, the first that is set of: ivf_autotune's override,
 * the knob's own setting (set = other than its default), its entry in
 * ivf.params, pgvector's alias (nprobe only), the index's params option.
 * False when none is.
 */
static bool
pick(uint32 bit, const IvfParamSet *index_ps, bool knob_set, int knob,
	 bool alias_set, int alias, int *out)
{
	if (ivf_params_override != NULL && (ivf_params_override->set & bit))
		*out = param_value(ivf_params_override, bit);
	else if (knob_set)
		*out = knob;
	else if (ivf_session_params != NULL && (ivf_session_params->set & bit))
		*out = param_value(ivf_session_params, bit);
	else if (alias_set)
		*out = alias;
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
	int			probes = 0;
	bool		probes_set;
	int			nprobe;
	int			max_codes = 0;
	int			profile = IVF_PROFILE_EXACT;
	int			budget = 0;
	int			strategy = IVF_BUDGET_UNIFORM;

	ivf_index_params(index, &ips);
	probes_set = pgvector_aliases(index) &&
		pgvector_int(PGVECTOR_PROBES, PGVECTOR_DEFAULT_PROBES, &probes);

	/* ips has no nprobe if this falls through: the option, or the build's */
	if (!pick(IVF_PARAM_NPROBE, &ips, ivf_nprobe_setting > 0,
			  ivf_nprobe_setting, probes_set, probes, &nprobe))
		nprobe = (int) ivf_option_nprobe(index, meta);
	s->nprobe = (uint32) Max(1, Min(nprobe, (int) meta->nlists));

	(void) pick(IVF_PARAM_MAX_CODES, &ips, ivf_max_codes_setting != 0,
				ivf_max_codes_setting, false, 0, &max_codes);
	(void) pick(IVF_PARAM_PROFILE, &ips,
				ivf_profile_setting != IVF_PROFILE_EXACT,
				ivf_profile_setting, false, 0, &profile);
	(void) pick(IVF_PARAM_BUDGET, &ips, ivf_candidate_budget_setting != 0,
				ivf_candidate_budget_setting, false, 0, &budget);
	(void) pick(IVF_PARAM_STRATEGY, &ips,
				ivf_budget_strategy_setting != IVF_BUDGET_UNIFORM,
				ivf_budget_strategy_setting, false, 0, &strategy);

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
