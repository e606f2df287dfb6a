/*-------------------------------------------------------------------------
 *
 * ivfquantizer.c
 *	  The coarse quantizer and the codes: the 8-bit code of a vector's
 *	  residual, the lower bounds of distances that codes give (the
 *	  prefilter), and the nearest lists of a query, from the centroids or
 *	  from their own codes.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <float.h>
#include <math.h>

#include "distance.h"
#include "ivfformat.h"
#include "ivfmetric.h"
#include "ivfpage.h"
#include "ivfquantizer.h"
#include "ivfsettings.h"
#include "select.h"

/* ------------------------------------------------------------------ codes */

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

/* ------------------------------------------------------------- prefilter */

/*
 * Lower bounds from codes.  A slot's vector is x = c + r (c its list's
 * centroid, r the residual); the group stores the code of r, decoded as
 * rhat = lo + step * code, and err = |r - rhat|.  Then
 *
 *	L2:  |q - x| >= |(q - c) - rhat| - err          (triangle inequality)
 *	ip:  -q.x    >= -q.c - q.lo - (q * step).code - |q| err   (Cauchy-Schwarz)
 *
 * where |(q - c) - rhat|^2 = |a|^2 - 2 (a * step).code + |step * code|^2
 * with a = (q - c) - lo: both metrics cost one dot product of the codes
 * (sq8_dot_block), |step * code|^2 being stored with each slot.  All of it
 * runs in float, so each bound is loosened by more than any rounding can
 * account for: a relative slack gamma of (dims + 16) float epsilons (a sum
 * of n products is off by at most about n epsilons of the sum of
 * magnitudes) on every sum -- for L2 applied to |a|^2 + 2 |w.code| +
 * |step * code|^2, which covers the cancellation of the expansion -- and
 * an absolute slack proportional to the magnitudes involved (|q|, |c|,
 * |lo|, rmax).
 * The exact distance the scan returns is computed by the same float kernel
 * as without the prefilter, so a slot is skipped only when the bound is
 * above what that kernel could return for it.  The slack is of order 1e-4
 * of the distances, far below the gaps the bound has to clear.
 */
void
ivf_prefilter_init(IvfPrefilter *pf, IvfMetric metric, uint32 dims,
				   const float *q, const float *lo, const float *step)
{
	uint32		j;

	memset(pf, 0, sizeof(*pf));
	pf->metric = metric;
	pf->dims = dims;
	pf->lo = lo;
	pf->step = step;
	pf->qnorm = sqrtf(ivf_kernels.norm_sq(q, dims));
	pf->lonorm = sqrtf(ivf_kernels.norm_sq(lo, dims));
	pf->rmax = pf->lonorm + 255.0f * sqrtf(ivf_kernels.norm_sq(step, dims));
	pf->gamma = (float) (dims + 16) * FLT_EPSILON;
	pf->a = palloc(sizeof(float) * dims);
	pf->w = palloc(sizeof(float) * dims);
	if (metric != IVF_METRIC_L2)
	{
		for (j = 0; j < dims; j++)
			pf->w[j] = q[j] * step[j];
		pf->qlo = ivf_kernels.dot(q, lo, dims);
	}
}

/*
 * Prepare the query side for a list with centroid c (NULL: the origin, for
 * codes of the centroids themselves).  For L2, a = (q - c) - lo and the
 * kernel's weights w = a * step: |a - step * code|^2 = |a|^2 - 2 w.code +
 * |step * code|^2, the last term stored per slot.
 */
void
ivf_prefilter_list(IvfPrefilter *pf, const float *q, const float *c)
{
	uint32		j;

	pf->cnorm = c ? sqrtf(ivf_kernels.norm_sq(c, pf->dims)) : 0.0f;
	if (pf->metric == IVF_METRIC_L2)
	{
		for (j = 0; j < pf->dims; j++)
		{
			pf->a[j] = (q[j] - (c ? c[j] : 0.0f)) - pf->lo[j];
			pf->w[j] = pf->a[j] * pf->step[j];
		}
		pf->asq = ivf_kernels.norm_sq(pf->a, pf->dims);
	}
	else
		pf->qc = c ? ivf_kernels.dot(q, c, pf->dims) : 0.0f;
}

/*
 * Lower bounds of the distances (in the scan's convention: squared L2, or
 * -dot) of the n slots whose code-kernel results are raw[] and errors
 * err[], into raw[] itself; where the inputs overflowed the bound is -inf
 * or 0, which rules nothing out.  Plain float arithmetic
 * (the L2 one a SIMD kernel, for its square roots): its own rounding, a
 * few epsilons, is far inside the slack gamma >= 17 epsilons.
 */
void
ivf_prefilter_bounds(const IvfPrefilter *pf, float *restrict raw,
					 const float *restrict err, const float *restrict cnorm,
					 uint32 n)
{
	float		g = pf->gamma;
	float		k = 4 * FLT_EPSILON;
	float		mag = pf->qnorm + pf->cnorm + pf->lonorm + pf->rmax;
	uint32		i;

	if (pf->metric == IVF_METRIC_L2)
		ivf_kernels.sq8_l2_bounds(raw, err, cnorm, n, pf->asq, g, k, mag);
	else
	{
		float		base = -pf->qc - pf->qlo;
		float		qn = pf->qnorm;

		for (i = 0; i < n; i++)
		{
			float		e = err[i];
			float		b = base - raw[i] - qn * e - 4 * g * qn * (mag + e);

			raw[i] = (b == b && fabsf(raw[i]) <= FLT_MAX) ? b : -INFINITY;
		}
	}
}

/* -------------------------------------------------------------- quantizer */

/* ivf_nearest_lists by computing every centroid distance */
static void
nearest_lists_exact(const IvfCache *cache, const float *q, uint32 nprobe,
					int32 *lists, float *dists)
{
	uint32		nlists = cache->nlive;
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
	uint32		nlists = cache->nlive;
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
 * The nprobe lists of the cache's view whose centroids are nearest to q,
 * nearest first, as positions (IvfCache.live_slot and live_id name them);
 * ties go to the lower position, which is the lower slot.  Inserts use
 * nprobe = 1, so a vector is stored in exactly the list a query probes
 * first.  dists (may be NULL) receives the metric's distance: squared L2
 * or -dot.  From the centroids' codes when there are many lists and few
 * are wanted (the result is the same).
 */
void
ivf_nearest_lists(const IvfCache *cache, const float *q, uint32 nprobe,
				  int32 *lists, float *dists)
{
	nprobe = Min(nprobe, cache->nlive);
	if (cache->ccodes != NULL && ivf_prefilter_k > 0 &&
		(Size) nprobe * 8 <= cache->nlive)
		nearest_lists_codes(cache, q, nprobe, lists, dists);
	else
		nearest_lists_exact(cache, q, nprobe, lists, dists);
}
