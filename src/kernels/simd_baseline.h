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

#endif							/* IVF_SIMD_BASELINE_H */
