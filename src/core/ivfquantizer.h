/*-------------------------------------------------------------------------
 *
 * ivfquantizer.h
 *	  The coarse quantizer and the codes: nearest lists of a query (from the
 *	  centroids or from their codes), a vector's 8-bit code, and the lower
 *	  bounds of distances that codes give (the prefilter).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFQUANTIZER_H
#define IVF_IVFQUANTIZER_H

#include "ivfpage.h"

/*
 * What a list scan needs to use a group's codes: the quantizer rows and
 * the query in the forms the code kernels take (see ivf_prefilter_list).
 */
typedef struct IvfPrefilter
{
	IvfMetric	metric;
	uint32		dims;
	const float *lo;
	const float *step;
	float		qnorm;			/* |q| */
	float		lonorm;			/* |lo| */
	float		rmax;			/* |lo| + 255 |step|: no decoded residual is
								 * longer */
	float	   *w;				/* ip/cosine: q * step, per query; L2: a *
								 * step, per list */
	float		qlo;			/* ip/cosine: q . lo */
	/* per list, set by ivf_prefilter_list() */
	float	   *a;				/* L2: (q - c) - lo */
	float		asq;			/* L2: |a|^2 */
	float		cnorm;			/* |c| */
	float		qc;				/* ip/cosine: q . c */
	float		gamma;			/* relative rounding slack, see ivfquantizer.c */
} IvfPrefilter;

extern float ivf_encode_vector(const float *vec, const float *centroid,
							   const float *lo, const float *step,
							   uint32 dims, float *scratch, uint8 *code,
							   float *cnorm);
extern void ivf_prefilter_init(IvfPrefilter *pf, IvfMetric metric,
							   uint32 dims, const float *q, const float *lo,
							   const float *step);
extern void ivf_prefilter_list(IvfPrefilter *pf, const float *q,
							   const float *centroid);
extern void ivf_prefilter_bounds(const IvfPrefilter *pf, float *raw,
								 const float *err, const float *cnorm,
								 uint32 n);
extern void ivf_nearest_lists(const IvfCache *cache, const float *q,
							  uint32 nprobe, int32 *lists, float *dists);

#endif							/* IVF_IVFQUANTIZER_H */
