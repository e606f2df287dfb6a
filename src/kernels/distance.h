/*-------------------------------------------------------------------------
 *
 * distance.h
 *	  Distance kernels for ivf: one pair, one query against a contiguous
 *	  block of vectors, and query-block x vector-block through BLAS.
 *
 * This header and the kernel sources are plain C with no PostgreSQL
 * dependency, so the standalone kernel test, the micro-benchmark and (later)
 * the GPU library's CPU reference link them without a server.
 *
 * Every kernel exists as a portable scalar reference (ivf_ref_*) and as
 * per-ISA versions compiled in their own translation units with their own
 * flags.  ivf_kernels_init() picks the best level the CPU (and OS, via
 * xgetbv) supports; ivf_kernels_set_level() forces one so tests reach every
 * path.  Callers use the IVF_* dispatch macros / ivf_kernels table.
 *
 * Vectors are float32, row-major, contiguous: a block of n vectors of
 * dimension d is n*d floats with row i at x + i*d.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_DISTANCE_H
#define IVF_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

typedef enum IvfSimdLevel
{
	IVF_SIMD_SCALAR = 0,
	IVF_SIMD_AVX2,				/* AVX2 + FMA */
	IVF_SIMD_AVX512,			/* AVX-512F (+DQ) */
	IVF_SIMD_NEON,				/* AArch64 Advanced SIMD */
	IVF_SIMD_NLEVELS
} IvfSimdLevel;

typedef struct IvfKernels
{
	IvfSimdLevel level;
	/* one pair */
	float		(*l2sq) (const float *a, const float *b, size_t d);
	float		(*dot) (const float *a, const float *b, size_t d);
	float		(*l1) (const float *a, const float *b, size_t d);
	float		(*norm_sq) (const float *a, size_t d);
	/* dot(a,b), |a|^2, |b|^2 in one pass (cosine distance) */
	void		(*cosine_parts) (const float *a, const float *b, size_t d,
								 float *dot, float *na, float *nb);
	/* one query against a block of n contiguous vectors: out[i] */
	void		(*l2sq_block) (const float *q, const float *x, size_t n,
							   size_t d, float *out);
	void		(*dot_block) (const float *q, const float *x, size_t n,
							  size_t d, float *out);
	/* out[i] = |x_i|^2 for a block */
	void		(*norm_sq_block) (const float *x, size_t n, size_t d,
								  float *out);

	/*
	 * 8-bit codes: row i of a block is codes + i * d (bytes, no alignment).
	 * sq8_dot_block: out[i] = sum_j w[j] * codes[i*d + j]
	 *
	 * With codes from ivf_sq8_encode(x - c) (x a vector, c its list's
	 * centroid), this one dot product per vector gives lower bounds of both
	 * metrics (see sq8_l2_bounds, and listscan.c for inner products): a
	 * cheap filter from 1 byte per dimension.  Nothing past codes + n * d
	 * is read, whatever d.
	 */
	void		(*sq8_dot_block) (const float *w, const uint8_t *codes,
								  size_t n, size_t d, float *out);

	/*
	 * Squared-L2 lower bounds in place, from raw[i] = D = sq8_dot_block
	 * with w = a * step, asq = |a|^2 and cn[i] = |step * code_i|^2, so that
	 * |a - step * code_i|^2 = asq - 2 D + cn[i].  For i < n, with e = err[i]:
	 *   h = ((asq - 2 D) + cn[i]) - g * ((asq + 2 |D|) + cn[i])
	 *   s = sqrt(h > 0 ? h : 0)
	 *   b = s * (1 - g) - e * (1 + g) - k * (mag + s + e)
	 *   raw[i] = (b > 0 ? b * b * (1 - 2 g) : 0)
	 * (NaN anywhere gives 0.)  Levels agree to a few float roundings (a
	 * compiler may fuse a multiply and an add); callers' slack g is far
	 * larger.
	 */
	void		(*sq8_l2_bounds) (float *raw, const float *err,
								  const float *cn, size_t n, float asq,
								  float g, float k, float mag);

	/*
	 * The GEMM assignment's row scans (kmeans.c), over a block row
	 * row[j] = -2 x.c_j (L2) or -x.c_j (inner product) and per-centroid
	 * terms q[j]:
	 *   row_min_hi:    min(m, min_j (p + q[j]) + row[j])
	 *   row_min_hi_ip: min(m, min_j row[j] + (p * q[j] + e))
	 * NaN terms are ignored.  row_lo_pass writes to idx, ascending, every j
	 * whose lower bound is not above thr (NaN passes) and returns how many:
	 *   ip = 0: lo_j = (p + q[j]) + row[j];  ip = 1: lo_j = row[j] - (p * q[j] + e)
	 * Every level evaluates these expressions in this order, without fused
	 * multiply-adds, so the results are the same bit for bit.
	 */
	float		(*row_min_hi) (const float *row, const float *q, float p,
							   size_t n, float m);
	float		(*row_min_hi_ip) (const float *row, const float *q, float p,
								  float e, size_t n, float m);
	size_t		(*row_lo_pass) (const float *row, const float *q, float p,
								float e, int ip, size_t n, float thr,
								uint32_t *idx);

	/*
	 * acc[t] += (double) x[t] for t < d: the k-means centroid sums.  Each
	 * is one exact conversion and one rounded double addition, so every
	 * level gives the same bits.
	 */
	void		(*add_f64) (double *acc, const float *x, size_t d);

	/*
	 * Half floats (IEEE binary16 bit patterns, half.h has the scalar
	 * references and the rules): conversion of n elements both ways, and a
	 * float query against half vectors, one (d halves) or a block of n rows
	 * (row i at x + i * d).  float_to_half writes all n results and returns
	 * the index of the first that is not a finite half (NaN, infinite, or
	 * beyond 65504 after rounding), or n.  The x86 levels use F16C where
	 * CPUID reports it, the scalar references otherwise; NEON uses the
	 * base architecture's conversions (FCVTL / FCVTN).
	 */
	void		(*half_to_float) (const uint16_t *h, float *out, size_t n);
	size_t		(*float_to_half) (const float *x, uint16_t *out, size_t n);
	float		(*l2sq_f16) (const float *q, const uint16_t *x, size_t d);
	float		(*dot_f16) (const float *q, const uint16_t *x, size_t d);
	void		(*l2sq_f16_block) (const float *q, const uint16_t *x,
								   size_t n, size_t d, float *out);
	void		(*dot_f16_block) (const float *q, const uint16_t *x,
								  size_t n, size_t d, float *out);
} IvfKernels;

/* The active table; valid after ivf_kernels_init(). */
extern IvfKernels ivf_kernels;

/* Pick the best supported level (idempotent). */
extern void ivf_kernels_init(void);

/* Best level this CPU/OS supports among those compiled in. */
extern IvfSimdLevel ivf_simd_best_level(void);

/* Do this level's half-float kernels use F16C?  (NEON's are always its own.) */
extern int	ivf_simd_level_has_f16c(IvfSimdLevel level);

/* Is this level compiled in and supported by the running CPU/OS? */
extern int	ivf_simd_level_supported(IvfSimdLevel level);

/* Force a level; returns 0 on success, -1 if unsupported (table unchanged). */
extern int	ivf_kernels_set_level(IvfSimdLevel level);

/* Fill *k with the table for a level without activating it (tests). */
extern int	ivf_kernels_get(IvfSimdLevel level, IvfKernels *k);

extern const char *ivf_simd_level_name(IvfSimdLevel level);

/* Parse "scalar"/"avx2"/"avx512"/"neon"; returns -1 if unknown. */
extern int	ivf_simd_level_from_name(const char *name);

/* Portable scalar references (always available). */
extern float ivf_ref_l2sq(const float *a, const float *b, size_t d);
extern float ivf_ref_dot(const float *a, const float *b, size_t d);
extern float ivf_ref_l1(const float *a, const float *b, size_t d);
extern float ivf_ref_norm_sq(const float *a, size_t d);
extern void ivf_ref_cosine_parts(const float *a, const float *b, size_t d,
								 float *dot, float *na, float *nb);
extern void ivf_ref_l2sq_block(const float *q, const float *x, size_t n,
							   size_t d, float *out);
extern void ivf_ref_dot_block(const float *q, const float *x, size_t n,
							  size_t d, float *out);
extern void ivf_ref_norm_sq_block(const float *x, size_t n, size_t d,
								  float *out);
extern void ivf_ref_sq8_l2_bounds(float *raw, const float *err,
								  const float *cn, size_t n, float asq,
								  float g, float k, float mag);
/*
 * The lower bound row_lo_pass tests, in the one order every level
 * evaluates it (callers re-testing a candidate use this too, so that they
 * round alike).
 */
static inline float
ivf_row_lo(float row_j, float q_j, float p, float e, int ip)
{
	if (ip)
	{
		float		t = p * q_j;

		return row_j - (t + e);
	}
	return (p + q_j) + row_j;
}

extern float ivf_ref_row_min_hi(const float *row, const float *q, float p,
								size_t n, float m);
extern float ivf_ref_row_min_hi_ip(const float *row, const float *q, float p,
								   float e, size_t n, float m);
extern void ivf_ref_add_f64(double *acc, const float *x, size_t d);
extern size_t ivf_ref_row_lo_pass(const float *row, const float *q, float p,
								  float e, int ip, size_t n, float thr,
								  uint32_t *idx);
extern void ivf_ref_sq8_dot_block(const float *w, const uint8_t *codes,
								  size_t n, size_t d, float *out);

/*
 * 8-bit scalar quantizer (SQ8), plain scalar code (build / insert time, not
 * dispatched).
 *
 * ivf_sq8_train: per-dimension min (lo) and step = (max - min) / 255 over the
 * n rows of x (n >= 1); step is 0 for a constant dimension.
 *
 * ivf_sq8_encode: codes[j] = the nearest integer (halves up) to
 * clamp((r[j] - lo[j]) / step[j], 0, 255) (0 when step[j] == 0).  Returns
 * |r - rhat|, rhat[j] = lo[j] + step[j] * codes[j], accumulated in double
 * and rounded up to float: callers use it as the quantization error in a
 * triangle-inequality bound, so it must not come out smaller than the true
 * error.  cnorm, if not NULL, gets |rhat - lo|^2 = sum (step[j] codes[j])^2,
 * summed in double in index order and rounded to float.
 */
extern void ivf_sq8_train(const float *x, size_t n, size_t d, float *lo,
						  float *step);
extern float ivf_sq8_encode(const float *r, const float *lo, const float *step,
							size_t d, uint8_t *codes, float *cnorm);

/*
 * Batched kernels through BLAS (cblas_sgemm), blocked so temporary memory is
 * bounded.  q: nq x d, x: nx x d, out: nq x nx (row-major, row stride nx).
 *
 * ivf_gemm_l2sq uses |q|^2 + |x|^2 - 2 q.x; qnorms / xnorms may be NULL (then
 * computed internally).  Results are clamped at 0, so they are never
 * negative; they carry cancellation error of order eps * (|q|^2 + |x|^2), so
 * callers that need exact ordering re-rank (ivf_knn_l2sq does).
 */
extern void ivf_gemm_dot(const float *q, size_t nq, const float *x, size_t nx,
						 size_t d, float *out);
extern void ivf_gemm_l2sq(const float *q, size_t nq, const float *x, size_t nx,
						  size_t d, const float *qnorms, const float *xnorms,
						  float *out);

/*
 * Exact k nearest neighbours by squared L2 of each query among x, via GEMM
 * for a candidate shortlist, then exact re-ranking with the pair kernel so
 * the returned order matches exact L2 (ties by smaller index).  ids/dists:
 * nq x k; when nx < k the tail is filled with id -1, dist +inf.
 * Returns 0, or -1 if memory could not be allocated.
 */
extern int	ivf_knn_l2sq(const float *q, size_t nq, const float *x, size_t nx,
						 size_t d, size_t k, int64_t *ids, float *dists);

/* Tell OpenBLAS how many threads to use (1 inside PostgreSQL backends). */
extern void ivf_blas_set_threads(int n);

#endif							/* IVF_DISTANCE_H */
