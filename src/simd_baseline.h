/*-------------------------------------------------------------------------
 *
 * simd_baseline.h
 *	  Small helpers using only the baseline vector instructions of each
 *	  architecture (SSE2 on x86-64, NEON on AArch64), so they need no
 *	  run-time dispatch.  Plain C, no PostgreSQL dependency.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_SIMD_BASELINE_H
#define IVF_SIMD_BASELINE_H

#include <stddef.h>

#if defined(__x86_64__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/*
 * Is any of p[0..7] <= w?  (False for NaN.)  Selection code rejects most
 * candidates; testing eight at a time with one branch is what keeps that
 * cheap.
 */
static inline int
ivf_any_le8(const float *p, float w)
{
#if defined(__x86_64__)
	__m128		vw = _mm_set1_ps(w);

	return _mm_movemask_ps(_mm_or_ps(_mm_cmple_ps(_mm_loadu_ps(p), vw),
									 _mm_cmple_ps(_mm_loadu_ps(p + 4), vw))) != 0;
#elif defined(__aarch64__)
	float32x4_t vw = vdupq_n_f32(w);

	return vmaxvq_u32(vorrq_u32(vcleq_f32(vld1q_f32(p), vw),
								vcleq_f32(vld1q_f32(p + 4), vw))) != 0;
#else
	return (p[0] <= w) | (p[1] <= w) | (p[2] <= w) | (p[3] <= w) |
		(p[4] <= w) | (p[5] <= w) | (p[6] <= w) | (p[7] <= w);
#endif
}

/*
 * acc[t] += (double) x[t] for t < d.  Each element is one independent
 * addition, so the vector version gives bit-identical sums; it exists
 * because with -fno-strict-aliasing the compiler cannot prove acc and x
 * apart and leaves the loop scalar (k-means' update step, 15% of a build).
 */
static inline void
ivf_accumulate_f64(double *acc, const float *x, size_t d)
{
	size_t		t = 0;

#if defined(__x86_64__)
	for (; t + 4 <= d; t += 4)
	{
		__m128		v = _mm_loadu_ps(x + t);

		_mm_storeu_pd(acc + t, _mm_add_pd(_mm_loadu_pd(acc + t),
										  _mm_cvtps_pd(v)));
		_mm_storeu_pd(acc + t + 2,
					  _mm_add_pd(_mm_loadu_pd(acc + t + 2),
								 _mm_cvtps_pd(_mm_movehl_ps(v, v))));
	}
#elif defined(__aarch64__)
	for (; t + 4 <= d; t += 4)
	{
		float32x4_t v = vld1q_f32(x + t);

		vst1q_f64(acc + t, vaddq_f64(vld1q_f64(acc + t),
									 vcvt_f64_f32(vget_low_f32(v))));
		vst1q_f64(acc + t + 2, vaddq_f64(vld1q_f64(acc + t + 2),
										 vcvt_high_f64_f32(v)));
	}
#endif
	for (; t < d; t++)
		acc[t] += (double) x[t];
}

#endif							/* IVF_SIMD_BASELINE_H */
