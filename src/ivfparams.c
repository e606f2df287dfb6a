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
 * last value.  An unknown name or a bad value is an error naming it.  How
 * the three places combine with the individual settings is in ivf.c
 * (ivf_search_settings).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "ivfflat.h"

#include "utils/rel.h"

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
 * the current context) saying what is wrong, naming the parameter; usable
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
			*msg = psprintf("empty entry in parameter string \"%s\"", str);
			return false;
		}
		if (eq == NULL)
		{
			*msg = psprintf("parameter \"%s\" has no value (expected name=value)", item);
			return false;
		}
		name = trimmed(item, eq - item);
		value = trimmed(eq + 1, strlen(eq + 1));

		if (pg_strcasecmp(name, "nprobe") == 0 || pg_strcasecmp(name, "probes") == 0)
		{
			ok = params_int(value, 1, IVF_MAX_LISTS, &out->nprobe);
			out->set |= IVF_PARAM_NPROBE;
			if (!ok)
				*msg = psprintf("invalid value for parameter \"%s\": \"%s\" (an integer from 1 to %d)",
								name, value, IVF_MAX_LISTS);
		}
		else if (pg_strcasecmp(name, "max_codes") == 0)
		{
			ok = params_int(value, 0, INT_MAX, &out->max_codes);
			out->set |= IVF_PARAM_MAX_CODES;
			if (!ok)
				*msg = psprintf("invalid value for parameter \"%s\": \"%s\" (an integer from 0 to %d; 0 = no limit)",
								name, value, INT_MAX);
		}
		else if (pg_strcasecmp(name, "candidate_budget") == 0)
		{
			ok = params_int(value, 0, INT_MAX, &out->candidate_budget);
			out->set |= IVF_PARAM_BUDGET;
			if (!ok)
				*msg = psprintf("invalid value for parameter \"%s\": \"%s\" (an integer from 0 to %d; 0 = the profile's)",
								name, value, INT_MAX);
		}
		else if (pg_strcasecmp(name, "profile") == 0)
		{
			ok = params_name(value, profile_names, lengthof(profile_names), &out->profile);
			out->set |= IVF_PARAM_PROFILE;
			if (!ok)
				*msg = psprintf("invalid value for parameter \"%s\": \"%s\" (exact, approx_fast, approx_balanced or approx_quality)",
								name, value);
		}
		else if (pg_strcasecmp(name, "budget_strategy") == 0)
		{
			ok = params_name(value, strategy_names, lengthof(strategy_names), &out->budget_strategy);
			out->set |= IVF_PARAM_STRATEGY;
			if (!ok)
				*msg = psprintf("invalid value for parameter \"%s\": \"%s\" (uniform or distance_weighted)",
								name, value);
		}
		else
		{
			*msg = psprintf("unknown parameter \"%s\" (valid: nprobe, max_codes, profile, candidate_budget, budget_strategy)",
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
				 errmsg("invalid value for ivfflat option \"params\": %s", msg)));
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
