/*-------------------------------------------------------------------------
 *
 * ivfprobe.c
 *	  Probe planning: what a probe round may read of each of its lists.  The
 *	  index scan and batch search both use it (neither calls the other), so
 *	  their results agree.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "ivfprobe.h"
#include "ivfsettings.h"

/*
 * Per-query slot limits for its ranked lists, exactly as the index scan
 * computes them in one probe round: the list's budget cap, and what is
 * left of ivf.max_codes after the nearer lists.  sizes[i] (slots of the
 * query's i-th list) is needed only when max_codes is set.
 */
void
ivf_query_limits(const IvfSearchSettings *s, const float *pdist,
				 const uint64 *sizes, uint32 nprobe, uint64 *limits)
{
	uint64		remaining = s->max_codes > 0 ? s->max_codes : PG_UINT64_MAX;
	uint32		i;

	if (s->budget > 0)
		ivf_list_budgets(pdist, nprobe, s->budget, s->budget_strategy, limits);
	else
		for (i = 0; i < nprobe; i++)
			limits[i] = PG_UINT64_MAX;

	for (i = 0; i < nprobe; i++)
	{
		if (limits[i] > remaining)
			limits[i] = remaining;
		if (s->max_codes > 0)
			remaining -= Min(limits[i], sizes[i]);
	}
}

/*
 * Per-list candidate caps for one probe round (torch-ivf's per-list
 * budgets): the round's lists, nearest first, with their centroid
 * distances cdist[0..n).  uniform: ceil(budget / n) each.
 * distance_weighted: list i gets a share of the budget in proportion to
 * exp(-3 z_i), z_i = (d_i - d_min) / (d_median - d_min) clamped to [0, 8],
 * rounded up.  A list never yields more than it holds, so caps above its
 * size cost nothing.
 */
void
ivf_list_budgets(const float *cdist, uint32 n, uint64 budget, int strategy,
				 uint64 *caps)
{
	uint32		i;

	if (n == 0)
		return;
	if (strategy == IVF_BUDGET_UNIFORM)
	{
		uint64		each = (budget + n - 1) / n;

		for (i = 0; i < n; i++)
			caps[i] = each;
	}
	else
	{
		double		dmin = cdist[0];
		double		dmed;
		double		span;
		double		sum = 0;
		double	   *w = palloc(sizeof(double) * n);

		/* cdist is ascending, so the median is in the middle */
		dmed = (n % 2) ? cdist[n / 2] : 0.5 * ((double) cdist[n / 2 - 1] + cdist[n / 2]);
		span = dmed - dmin;
		for (i = 0; i < n; i++)
		{
			double		z = (span > 0) ? (cdist[i] - dmin) / span : 0.0;

			if (!(z > 0))		/* also NaN */
				z = 0;
			if (z > 8)
				z = 8;
			w[i] = exp(-3.0 * z);
			sum += w[i];
		}
		for (i = 0; i < n; i++)
			caps[i] = (uint64) ceil((double) budget * w[i] / sum);
		pfree(w);
	}
}
