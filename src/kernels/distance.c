/*-------------------------------------------------------------------------
 *
 * distance.c
 *	  Scalar reference kernels, run-time ISA dispatch, and the BLAS-backed
 *	  batched kernels (GEMM distances, exact k-NN).
 *
 * The ISA-specific kernels live in distance_<isa>.c, each compiled with its
 * own -m flags; this file is compiled with the baseline flags and only calls
 * into them after CPUID/xgetbv say the CPU and OS support them.
 *
 *-------------------------------------------------------------------------
 */
#include "distance.h"
#include "distance_isa.h"
#include "half.h"
#include "topk.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include <cblas.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <emmintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* OpenBLAS extension; declared here so we do not depend on cblas.h's copy */
extern void openblas_set_num_threads(int num_threads);

/*
 * GEMM blocking: x rows per block and query rows per block.  A 256 x 2048
 * float output block (2 MB) stays in L2/L3 for the norm pass that follows
 * each sgemm, and the norm scratch fits on the stack.
 */
#define IVF_GEMM_XB		2048
#define IVF_GEMM_QB		256

/* gemm_dot has no pass after sgemm: big blocks, only to bound BLAS ints */
#define IVF_GEMM_DOT_XB	65536
#define IVF_GEMM_DOT_QB	4096

/*
 * Below this many multiply-adds (nq * nx * d), or with fewer queries than
 * IVF_GEMM_MIN_NQ, the block kernels win (sgemm with a tiny M mostly packs
 * and re-reads x).
 */
#define IVF_GEMM_MIN_WORK	((double) (1 << 21))
#define IVF_GEMM_MIN_NQ		4

/*
 * k-NN: fewer queries than this are served by the exact blocked scan, which
 * measured as fast as the GEMM shortlist up to about 16 queries.
 */
#define IVF_KNN_GEMM_MIN_NQ	16

/* Exact scans: x rows per block, about 256 kB of vectors (L2-resident). */
#define IVF_SCAN_BYTES		(256 * 1024)
#define IVF_SCAN_MAXROWS	4096
#define IVF_KNN_SCAN_QB		64

/* k-NN GEMM path: cap on the shortlist heaps of one query block. */
#define IVF_KNN_SHORTLIST_BYTES ((size_t) 32 * 1024 * 1024)


/* ---------------------------------------------------------------------
 * Scalar reference kernels: plain loops, one float accumulator, so they
 * are simple to audit and give the same result on every platform (modulo
 * the compiler contracting a*b+c into an FMA where the target has one).
 * ---------------------------------------------------------------------
 */

float
ivf_ref_l2sq(const float *a, const float *b, size_t d)
{
	float		s = 0.0f;
	size_t		i;

	for (i = 0; i < d; i++)
	{
		float		t = a[i] - b[i];

		s += t * t;
	}
	return s;
}

float
ivf_ref_dot(const float *a, const float *b, size_t d)
{
	float		s = 0.0f;
	size_t		i;

	for (i = 0; i < d; i++)
		s += a[i] * b[i];
	return s;
}

float
ivf_ref_l1(const float *a, const float *b, size_t d)
{
	float		s = 0.0f;
	size_t		i;

	for (i = 0; i < d; i++)
		s += fabsf(a[i] - b[i]);
	return s;
}

float
ivf_ref_norm_sq(const float *a, size_t d)
{
	float		s = 0.0f;
	size_t		i;

	for (i = 0; i < d; i++)
		s += a[i] * a[i];
	return s;
}

void
ivf_ref_cosine_parts(const float *a, const float *b, size_t d,
					 float *dot, float *na, float *nb)
{
	float		sab = 0.0f,
				saa = 0.0f,
				sbb = 0.0f;
	size_t		i;

	for (i = 0; i < d; i++)
	{
		sab += a[i] * b[i];
		saa += a[i] * a[i];
		sbb += b[i] * b[i];
	}
	*dot = sab;
	*na = saa;
	*nb = sbb;
}

void
ivf_ref_l2sq_block(const float *q, const float *x, size_t n, size_t d,
				   float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = ivf_ref_l2sq(q, x + i * d, d);
}

void
ivf_ref_dot_block(const float *q, const float *x, size_t n, size_t d,
				  float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = ivf_ref_dot(q, x + i * d, d);
}

void
ivf_ref_add_f64(double *acc, const float *x, size_t d)
{
	size_t		t;

	for (t = 0; t < d; t++)
		acc[t] += (double) x[t];
}

void
ivf_ref_norm_sq_block(const float *x, size_t n, size_t d, float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = ivf_ref_norm_sq(x + i * d, d);
}

float
ivf_ref_row_min_hi(const float *row, const float *q, float p, size_t n,
				   float m)
{
	size_t		j;

	for (j = 0; j < n; j++)
	{
		float		h = (p + q[j]) + row[j];

		if (h < m)
			m = h;
	}
	return m;
}

float
ivf_ref_row_min_hi_ip(const float *row, const float *q, float p, float e,
					  size_t n, float m)
{
	size_t		j;

	for (j = 0; j < n; j++)
	{
		float		t = p * q[j];
		float		h = row[j] + (t + e);

		if (h < m)
			m = h;
	}
	return m;
}

size_t
ivf_ref_row_lo_pass(const float *row, const float *q, float p, float e,
					int ip, size_t n, float thr, uint32_t *idx)
{
	size_t		j;
	size_t		c = 0;

	for (j = 0; j < n; j++)
		if (!(ivf_row_lo(row[j], q[j], p, e, ip) > thr))
			idx[c++] = (uint32_t) j;
	return c;
}

void
ivf_ref_sq8_l2_bounds(float *raw, const float *err, const float *cn,
					  size_t n, float asq, float g, float k, float mag)
{
	float		g1 = 1.0f - g;
	float		g2 = 1.0f + g;
	float		g3 = 1.0f - 2.0f * g;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		float		dd = raw[i];
		float		r;
		float		s;
		float		e = err[i];
		float		b;

		/* the SIMD levels evaluate these operations, in this order */
		r = ((asq - 2.0f * dd) + cn[i]) - g * ((asq + 2.0f * fabsf(dd)) + cn[i]);
		r = (r > 0.0f) ? r : 0.0f;	/* NaN -> 0 */
		s = sqrtf(r);
		b = ((s * g1) - (e * g2)) - (k * ((mag + s) + e));
		b = (b > 0.0f) ? b : 0.0f;	/* NaN -> 0 */
		raw[i] = (b * b) * g3;
	}
}

void
ivf_ref_sq8_dot_block(const float *w, const uint8_t *codes, size_t n,
					  size_t d, float *out)
{
	size_t		i,
				j;

	for (i = 0; i < n; i++)
	{
		const uint8_t *c = codes + i * d;
		float		s = 0.0f;

		for (j = 0; j < d; j++)
			s += w[j] * (float) c[j];
		out[i] = s;
	}
}


/* ---------------------------------------------------------------------
 * 8-bit scalar quantizer: training and encoding (build / insert time,
 * once per vector, so plain scalar code)
 * ---------------------------------------------------------------------
 */

void
ivf_sq8_train(const float *x, size_t n, size_t d, float *lo, float *step)
{
	size_t		i,
				j;

	if (n == 0)
	{
		/* nothing to learn from: an all-zero quantizer (every code 0) */
		for (j = 0; j < d; j++)
			lo[j] = step[j] = 0.0f;
		return;
	}

	/* step holds the running max until the end: no scratch memory needed */
	for (j = 0; j < d; j++)
		lo[j] = step[j] = x[j];
	/* row by row, so x is read sequentially whatever n and d */
	for (i = 1; i < n; i++)
	{
		const float *row = x + i * d;

		for (j = 0; j < d; j++)
		{
			float		v = row[j];

			if (v < lo[j])
				lo[j] = v;
			if (v > step[j])
				step[j] = v;
		}
	}
	/* in double: max - min of finite floats can overflow float */
	for (j = 0; j < d; j++)
		step[j] = (float) (((double) step[j] - (double) lo[j]) / 255.0);
}

float
ivf_sq8_encode(const float *r, const float *lo, const float *step, size_t d,
			   uint8_t *codes, float *cnorm)
{
	double		err = 0.0;
	double		c = 0.0;
	float		e;
	size_t		j;

	/*
	 * Codes first, in float and branch-free so the compiler vectorises the
	 * loop (it runs for every vector a build writes).  r - lo may overflow
	 * and the quotient be huge (tiny step): both saturate to 255 by the
	 * clamp, before the conversion, which would be undefined out of range;
	 * a NaN fails both comparisons and becomes code 0.  Any code is a valid
	 * one, since the error returned below is that of the code chosen.
	 */
	for (j = 0; j < d; j++)
	{
		float		v = (step[j] != 0.0f) ? (r[j] - lo[j]) / step[j] : 0.0f;

		v = (v > 0.0f) ? v : 0.0f;
		v = (v < 255.0f) ? v : 255.0f;
		codes[j] = (uint8_t) (int32_t) (v + 0.5f);
	}

	/*
	 * The error in double: step * code (24 x 8 bits) is exact there.  With
	 * |step * code|^2 in the same loop, two independent sums share the
	 * latency of one (each still adds in index order).
	 */
	if (cnorm == NULL)
	{
		for (j = 0; j < d; j++)
		{
			double		t = (double) r[j] - ((double) lo[j] + (double) step[j] * codes[j]);

			err += t * t;
		}
	}
	else
	{
		for (j = 0; j < d; j++)
		{
			double		sc = (double) step[j] * codes[j];
			double		t = (double) r[j] - ((double) lo[j] + sc);

			err += t * t;
			c += sc * sc;
		}
		*cnorm = (float) c;
	}

	/*
	 * Round up, not to nearest: the caller subtracts this from a distance
	 * to get a lower bound, so it must not understate the error.
	 */
	err = sqrt(err);
	e = (float) err;
	if ((double) e < err)
		e = nextafterf(e, INFINITY);
	return e;
}


/* ---------------------------------------------------------------------
 * Dispatch
 * ---------------------------------------------------------------------
 */

#define IVF_SCALAR_TABLE \
	{ \
		IVF_SIMD_SCALAR, \
		ivf_ref_l2sq, \
		ivf_ref_dot, \
		ivf_ref_l1, \
		ivf_ref_norm_sq, \
		ivf_ref_cosine_parts, \
		ivf_ref_l2sq_block, \
		ivf_ref_dot_block, \
		ivf_ref_norm_sq_block, \
		ivf_ref_sq8_dot_block, \
		ivf_ref_sq8_l2_bounds, \
		ivf_ref_row_min_hi, \
		ivf_ref_row_min_hi_ip, \
		ivf_ref_row_lo_pass, \
		ivf_ref_add_f64, \
		ivf_ref_half_to_float, \
		ivf_ref_float_to_half, \
		ivf_ref_l2sq_f16, \
		ivf_ref_dot_f16, \
		ivf_ref_l2sq_f16_block, \
		ivf_ref_dot_f16_block \
	}

/* Scalar until ivf_kernels_init(), so no caller ever sees a NULL pointer. */
IvfKernels	ivf_kernels = IVF_SCALAR_TABLE;

static const IvfKernels ivf_kernels_scalar = IVF_SCALAR_TABLE;

static const char *const ivf_simd_level_names[IVF_SIMD_NLEVELS] = {
	"scalar", "avx2", "avx512", "neon"
};

#if defined(__x86_64__)

/* CPUID.1:ECX */
#define IVF_CPUID1_ECX_FMA		(1u << 12)
#define IVF_CPUID1_ECX_OSXSAVE	(1u << 27)
#define IVF_CPUID1_ECX_AVX		(1u << 28)
#define IVF_CPUID1_ECX_F16C		(1u << 29)
/* CPUID.(7,0):EBX */
#define IVF_CPUID7_EBX_AVX2		(1u << 5)
#define IVF_CPUID7_EBX_AVX512F	(1u << 16)
#define IVF_CPUID7_EBX_AVX512DQ (1u << 17)
/* XCR0: SSE and AVX state; plus opmask, ZMM_Hi256, Hi16_ZMM for AVX-512 */
#define IVF_XCR0_AVX			0x06u
#define IVF_XCR0_AVX512			0xE6u

static uint64_t
ivf_xgetbv0(void)
{
	uint32_t	eax,
				edx;

	/* raw opcode-free asm: _xgetbv() would need -mxsave on this file */
	__asm__ volatile ("xgetbv" : "=a" (eax), "=d" (edx) : "c" (0));
	return ((uint64_t) edx << 32) | eax;
}

/* Returns 1 for AVX2+FMA, 2 for AVX-512F+DQ (which implies 1), else 0. */
static int
ivf_x86_simd(void)
{
	unsigned int eax,
				ebx,
				ecx,
				edx;
	unsigned int ecx1;
	uint64_t	xcr0;
	int			result = 0;

	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return 0;
	ecx1 = ecx;
	/* the OS must have enabled XSAVE before xgetbv may be executed */
	if ((ecx1 & IVF_CPUID1_ECX_OSXSAVE) == 0 ||
		(ecx1 & IVF_CPUID1_ECX_AVX) == 0 ||
		(ecx1 & IVF_CPUID1_ECX_FMA) == 0)
		return 0;
	xcr0 = ivf_xgetbv0();
	if ((xcr0 & IVF_XCR0_AVX) != IVF_XCR0_AVX)
		return 0;
	if (__get_cpuid_max(0, NULL) < 7)
		return 0;
	__cpuid_count(7, 0, eax, ebx, ecx, edx);
	if ((ebx & IVF_CPUID7_EBX_AVX2) == 0)
		return 0;
	result = 1;
	if ((ebx & IVF_CPUID7_EBX_AVX512F) != 0 &&
		(ebx & IVF_CPUID7_EBX_AVX512DQ) != 0 &&
		(xcr0 & IVF_XCR0_AVX512) == IVF_XCR0_AVX512)
		result = 2;
	return result;
}

/*
 * F16C, checked apart from the levels: every AVX2 processor made has it,
 * but a hypervisor may hide it, and the levels must not depend on it.
 * Its registers are the AVX state ivf_x86_simd() has already checked.
 */
static int
ivf_x86_f16c(void)
{
	unsigned int eax,
				ebx,
				ecx,
				edx;

	if (ivf_x86_simd() < 1)
		return 0;
	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return 0;
	return (ecx & IVF_CPUID1_ECX_F16C) != 0;
}

#endif							/* __x86_64__ */

int
ivf_simd_level_has_f16c(IvfSimdLevel level)
{
#if defined(__x86_64__)
	if ((level == IVF_SIMD_AVX2 || level == IVF_SIMD_AVX512) &&
		ivf_simd_level_supported(level))
		return ivf_x86_f16c();
#endif
	return 0;
}

int
ivf_simd_level_supported(IvfSimdLevel level)
{
	switch (level)
	{
		case IVF_SIMD_SCALAR:
			return 1;
#if defined(__x86_64__)
		case IVF_SIMD_AVX2:
			return ivf_x86_simd() >= 1;
		case IVF_SIMD_AVX512:
			return ivf_x86_simd() >= 2;
#endif
#if defined(__aarch64__)
		case IVF_SIMD_NEON:
			/* Advanced SIMD is mandatory in AArch64 */
			return 1;
#endif
		default:
			return 0;
	}
}

IvfSimdLevel
ivf_simd_best_level(void)
{
#if defined(__x86_64__)
	int			x = ivf_x86_simd();

	if (x >= 2)
		return IVF_SIMD_AVX512;
	if (x >= 1)
		return IVF_SIMD_AVX2;
#endif
#if defined(__aarch64__)
	return IVF_SIMD_NEON;
#endif
	return IVF_SIMD_SCALAR;
}

int
ivf_kernels_get(IvfSimdLevel level, IvfKernels *k)
{
	if (!ivf_simd_level_supported(level))
		return -1;
	/* entries a level does not fill keep the scalar references */
	*k = ivf_kernels_scalar;
	switch (level)
	{
		case IVF_SIMD_SCALAR:
			return 0;
#if defined(__x86_64__)
		case IVF_SIMD_AVX2:
			ivf_kernels_fill_avx2(k);
			if (ivf_x86_f16c())
				ivf_kernels_fill_f16c(k);
			return 0;
		case IVF_SIMD_AVX512:
			ivf_kernels_fill_avx512(k);
			if (ivf_x86_f16c())
				ivf_kernels_fill_f16c(k);
			return 0;
#endif
#if defined(__aarch64__)
		case IVF_SIMD_NEON:
			ivf_kernels_fill_neon(k);
			return 0;
#endif
		default:
			return -1;
	}
}

int
ivf_kernels_set_level(IvfSimdLevel level)
{
	IvfKernels	k;

	if (ivf_kernels_get(level, &k) != 0)
		return -1;
	ivf_kernels = k;
	return 0;
}

void
ivf_kernels_init(void)
{
	/* the best level is always supported; fall back to scalar regardless */
	if (ivf_kernels_set_level(ivf_simd_best_level()) != 0)
		ivf_kernels = ivf_kernels_scalar;
}

const char *
ivf_simd_level_name(IvfSimdLevel level)
{
	if ((int) level < 0 || level >= IVF_SIMD_NLEVELS)
		return "unknown";
	return ivf_simd_level_names[level];
}

int
ivf_simd_level_from_name(const char *name)
{
	int			level;

	if (name == NULL)
		return -1;
	for (level = 0; level < IVF_SIMD_NLEVELS; level++)
	{
		const char *s = name;
		const char *t = ivf_simd_level_names[level];

		/* ASCII case-insensitive, independent of the locale */
		while (*s != '\0' && *t != '\0')
		{
			char		c = *s;

			if (c >= 'A' && c <= 'Z')
				c = (char) (c - 'A' + 'a');
			if (c != *t)
				break;
			s++;
			t++;
		}
		if (*s == '\0' && *t == '\0')
			return level;
	}
	return -1;
}

void
ivf_blas_set_threads(int n)
{
	openblas_set_num_threads(n < 1 ? 1 : n);
}


/* ---------------------------------------------------------------------
 * Batched kernels through BLAS
 * ---------------------------------------------------------------------
 */

/* Is the problem big enough for sgemm, and do its sizes fit BLAS ints? */
static int
ivf_gemm_worthwhile(size_t nq, size_t nx, size_t d)
{
	if (d == 0 || d > INT_MAX || nx > INT_MAX || nq < IVF_GEMM_MIN_NQ)
		return 0;
	return (double) nq * (double) nx * (double) d >= IVF_GEMM_MIN_WORK;
}

/* Rows of x per exact-scan block. */
static size_t
ivf_scan_rows(size_t d)
{
	size_t		rows = IVF_SCAN_BYTES / (d * sizeof(float) + 1);

	if (rows < 1)
		rows = 1;
	if (rows > IVF_SCAN_MAXROWS)
		rows = IVF_SCAN_MAXROWS;
	return rows;
}

/*
 * Small-problem path of the GEMM functions: block kernels, with x walked in
 * cache-sized blocks shared by all queries so it streams from memory once.
 */
static void
ivf_gemm_by_blocks(const float *q, size_t nq, const float *x, size_t nx,
				   size_t d, int l2, float *out)
{
	size_t		xb = ivf_scan_rows(d);
	size_t		x0,
				i;

	for (x0 = 0; x0 < nx; x0 += xb)
	{
		size_t		nb = nx - x0 < xb ? nx - x0 : xb;

		for (i = 0; i < nq; i++)
		{
			if (l2)
				ivf_kernels.l2sq_block(q + i * d, x + x0 * d, nb, d,
									   out + i * nx + x0);
			else
				ivf_kernels.dot_block(q + i * d, x + x0 * d, nb, d,
									  out + i * nx + x0);
		}
	}
}

/*
 * row[j] = max(0, (qn + xn[j]) + row[j]), where row holds -2 q.x.  v <= 0
 * maps -0 to +0 and leaves NaN alone (NaN must not become a distance of 0).
 * SSE2 / NEON are baseline on their architectures, so no dispatch is
 * needed; this file is built without -O3, hence no reliance on the
 * auto-vectorizer for this pass over every GEMM output.
 */
static void
ivf_l2sq_finish_row(float *restrict row, const float *restrict xn, float qn,
					size_t n)
{
	size_t		j = 0;

#if defined(__x86_64__)
	__m128		vq = _mm_set1_ps(qn);
	__m128		zero = _mm_setzero_ps();

	for (; j + 4 <= n; j += 4)
	{
		__m128		v = _mm_add_ps(_mm_add_ps(vq, _mm_loadu_ps(xn + j)),
								   _mm_loadu_ps(row + j));

		_mm_storeu_ps(row + j, _mm_andnot_ps(_mm_cmple_ps(v, zero), v));
	}
#elif defined(__aarch64__)
	float32x4_t vq = vdupq_n_f32(qn);
	float32x4_t zero = vdupq_n_f32(0.0f);

	for (; j + 4 <= n; j += 4)
	{
		float32x4_t v = vaddq_f32(vaddq_f32(vq, vld1q_f32(xn + j)),
								  vld1q_f32(row + j));
		uint32x4_t	le = vcleq_f32(v, zero);

		vst1q_f32(row + j,
				  vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(v), le)));
	}
#endif
	for (; j < n; j++)
	{
		float		v = (qn + xn[j]) + row[j];

		row[j] = v <= 0.0f ? 0.0f : v;
	}
}

/* out[i, j] = q_i . x_j for a block; ldo is the row stride of out. */
static void
ivf_sgemm_block(const float *q, size_t nq, const float *x, size_t nx,
				size_t d, float alpha, float *out, size_t ldo)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				(int) nq, (int) nx, (int) d,
				alpha, q, (int) d, x, (int) d,
				0.0f, out, (int) ldo);
}

void
ivf_gemm_dot(const float *q, size_t nq, const float *x, size_t nx,
			 size_t d, float *out)
{
	size_t		x0,
				q0;

	if (nq == 0 || nx == 0)
		return;
	if (!ivf_gemm_worthwhile(nq, nx, d))
	{
		ivf_gemm_by_blocks(q, nq, x, nx, d, 0, out);
		return;
	}
	/* sgemm writes straight into out, no temporaries */
	for (x0 = 0; x0 < nx; x0 += IVF_GEMM_DOT_XB)
	{
		size_t		nb = nx - x0 < IVF_GEMM_DOT_XB ? nx - x0 : IVF_GEMM_DOT_XB;

		for (q0 = 0; q0 < nq; q0 += IVF_GEMM_DOT_QB)
		{
			size_t		nqb = nq - q0 < IVF_GEMM_DOT_QB ? nq - q0 : IVF_GEMM_DOT_QB;

			ivf_sgemm_block(q + q0 * d, nqb, x + x0 * d, nb, d, 1.0f,
							out + q0 * nx + x0, nx);
		}
	}
}

void
ivf_gemm_l2sq(const float *q, size_t nq, const float *x, size_t nx,
			  size_t d, const float *qnorms, const float *xnorms,
			  float *out)
{
	float		qn_buf[IVF_GEMM_QB];
	float		xn_buf[IVF_GEMM_XB];
	size_t		i,
				x0,
				q0;

	if (nq == 0 || nx == 0)
		return;
	if (!ivf_gemm_worthwhile(nq, nx, d))
	{
		/* direct differences: more accurate, and never negative */
		ivf_gemm_by_blocks(q, nq, x, nx, d, 1, out);
		return;
	}

	for (x0 = 0; x0 < nx; x0 += IVF_GEMM_XB)
	{
		size_t		nb = nx - x0 < IVF_GEMM_XB ? nx - x0 : IVF_GEMM_XB;
		const float *xn;

		if (xnorms != NULL)
			xn = xnorms + x0;
		else
		{
			ivf_kernels.norm_sq_block(x + x0 * d, nb, d, xn_buf);
			xn = xn_buf;
		}

		for (q0 = 0; q0 < nq; q0 += IVF_GEMM_QB)
		{
			size_t		nqb = nq - q0 < IVF_GEMM_QB ? nq - q0 : IVF_GEMM_QB;
			const float *qn;

			if (qnorms != NULL)
				qn = qnorms + q0;
			else
			{
				ivf_kernels.norm_sq_block(q + q0 * d, nqb, d, qn_buf);
				qn = qn_buf;
			}

			/* -2 q.x, then add the norms while the block is in cache */
			ivf_sgemm_block(q + q0 * d, nqb, x + x0 * d, nb, d, -2.0f,
							out + q0 * nx + x0, nx);
			for (i = 0; i < nqb; i++)
				ivf_l2sq_finish_row(out + (q0 + i) * nx + x0, xn, qn[i], nb);
		}
	}
}


/* ---------------------------------------------------------------------
 * Exact k-NN
 * ---------------------------------------------------------------------
 */

/* Sort a finished heap into its output slots and pad to k. */
static void
ivf_knn_finish(IvfTopK *h, size_t k)
{
	size_t		m = ivf_topk_sort(h);

	for (; m < k; m++)
	{
		h->dist[m] = INFINITY;
		h->id[m] = -1;
	}
}

/*
 * Exact scan of all of x for queries [0, nq): x is walked in cache-sized
 * blocks and each block is used by a group of queries before moving on, so
 * x streams from memory once per query group.  Needs no heap memory.
 */
static void
ivf_knn_exact(const float *q, size_t nq, const float *x, size_t nx,
			  size_t d, size_t k, int64_t *ids, float *dists)
{
	float		tmp[IVF_SCAN_MAXROWS];
	IvfTopK		heaps[IVF_KNN_SCAN_QB];
	size_t		xb = ivf_scan_rows(d);
	size_t		q0,
				x0,
				i;

	for (q0 = 0; q0 < nq; q0 += IVF_KNN_SCAN_QB)
	{
		size_t		nqb = nq - q0 < IVF_KNN_SCAN_QB ? nq - q0 : IVF_KNN_SCAN_QB;

		for (i = 0; i < nqb; i++)
			ivf_topk_init(&heaps[i], k, dists + (q0 + i) * k,
						  ids + (q0 + i) * k);
		for (x0 = 0; x0 < nx; x0 += xb)
		{
			size_t		nb = nx - x0 < xb ? nx - x0 : xb;

			for (i = 0; i < nqb; i++)
			{
				ivf_kernels.l2sq_block(q + (q0 + i) * d, x + x0 * d, nb, d, tmp);
				ivf_topk_push_block(&heaps[i], tmp, nb, (int64_t) x0);
			}
		}
		for (i = 0; i < nqb; i++)
			ivf_knn_finish(&heaps[i], k);
	}
}

/*
 * GEMM distances a(x) = |q|^2 + |x|^2 - 2 q.x differ from the re-rank
 * distances r(x) = ivf_kernels.l2sq(q, x) by less than
 * beta * (|q|^2 + |x|^2), beta = (5d + 64) * 2^-24: each of the three
 * d-term sums (|q|^2, |x|^2, q.x) is off by at most about d*u times its
 * absolute terms, |q.x| <= (|q|^2 + |x|^2) / 2, r itself is off by about
 * (d + 2) u |q-x|^2 <= (d + 2) u * 2 (|q|^2 + |x|^2); that is 4d u plus a
 * few roundings, and the rest is slack for the second-order terms (d < 2^20
 * here).  The bound holds for any summation order, so for any BLAS.
 *
 * So L(x) = max(0, (1 - beta) (|q|^2 + |x|^2) - 2 q.x) <= r(x): that is
 * just ivf_gemm_l2sq with norms scaled by (1 - beta).  Per query we keep the
 * kp smallest L in a heap, re-rank those with the pair kernel and take the k
 * best by (r, id).  If the largest kept L is above the k-th r, every vector
 * outside the shortlist has r > that k-th r, so the answer is exactly the
 * one a full scan would give, ties included.  Otherwise (heavy cancellation,
 * e.g. tiny distances between vectors of huge norm, or masses of ties) that
 * query falls back to the exact scan.
 */
static int
ivf_knn_gemm(const float *q, size_t nq, const float *x, size_t nx,
			 size_t d, size_t k, int64_t *ids, float *dists)
{
	IvfTopK		sl[IVF_GEMM_QB];
	float		qn[IVF_GEMM_QB];
	size_t		kp = k + (k > 16 ? k : 16);
	size_t		xb = nx < IVF_GEMM_XB ? nx : IVF_GEMM_XB;
	size_t		qb = nq < IVF_GEMM_QB ? nq : IVF_GEMM_QB;
	size_t		sb = ivf_scan_rows(d);
	float		scale = (float) (1.0 - (5.0 * (double) d + 64.0) * ldexp(1.0, -24));
	size_t		tmp_len;
	size_t		nbytes;
	char	   *mem;
	int64_t    *sl_id;
	float	   *sl_dist;
	float	   *xn;
	float	   *tmp;
	size_t		q0,
				x0,
				i;

	/* keep the shortlist heaps of one query block bounded */
	while (qb > 1 && qb * kp * (sizeof(float) + sizeof(int64_t)) >
		   IVF_KNN_SHORTLIST_BYTES)
		qb /= 2;

	/* tmp doubles as the exact-scan buffer in the fallback */
	tmp_len = qb * xb;
	if (tmp_len < sb)
		tmp_len = sb;

	if (kp > SIZE_MAX / 64 / qb || nx > SIZE_MAX / 64 || tmp_len > SIZE_MAX / 64)
		return -1;
	nbytes = qb * kp * (sizeof(int64_t) + sizeof(float)) +
		(nx + tmp_len) * sizeof(float);
	mem = malloc(nbytes);
	if (mem == NULL)
		return -1;
	sl_id = (int64_t *) mem;
	sl_dist = (float *) (sl_id + qb * kp);
	xn = sl_dist + qb * kp;
	tmp = xn + nx;

	ivf_kernels.norm_sq_block(x, nx, d, xn);
	for (i = 0; i < nx; i++)
		xn[i] *= scale;

	for (q0 = 0; q0 < nq; q0 += qb)
	{
		size_t		nqb = nq - q0 < qb ? nq - q0 : qb;
		const float *qblk = q + q0 * d;

		ivf_kernels.norm_sq_block(qblk, nqb, d, qn);
		for (i = 0; i < nqb; i++)
		{
			qn[i] *= scale;
			ivf_topk_init(&sl[i], kp, sl_dist + i * kp, sl_id + i * kp);
		}

		/* pass 1: shortlist by the lower bound L */
		for (x0 = 0; x0 < nx; x0 += xb)
		{
			size_t		nb = nx - x0 < xb ? nx - x0 : xb;

			ivf_gemm_l2sq(qblk, nqb, x + x0 * d, nb, d, qn, xn + x0, tmp);
			for (i = 0; i < nqb; i++)
				ivf_topk_push_block(&sl[i], tmp + i * nb, nb, (int64_t) x0);
		}

		/* pass 2: exact re-rank of each shortlist, verify, else rescan */
		for (i = 0; i < nqb; i++)
		{
			const float *qi = qblk + i * d;
			IvfTopK		h;
			size_t		e;
			int			complete;

			ivf_topk_init(&h, k, dists + (q0 + i) * k, ids + (q0 + i) * k);
			for (e = 0; e < sl[i].n; e++)
			{
				int64_t		id = sl[i].id[e];

				ivf_topk_push(&h, ivf_kernels.l2sq(qi, x + (size_t) id * d, d),
							  id);
			}

			/* sl[i].dist[0] is the largest kept L (still a heap) */
			complete = sl[i].n < kp ||
				(h.n == k && sl[i].dist[0] > h.dist[0]);
			if (!complete)
			{
				ivf_topk_reset(&h);
				for (x0 = 0; x0 < nx; x0 += sb)
				{
					size_t		nb = nx - x0 < sb ? nx - x0 : sb;

					ivf_kernels.l2sq_block(qi, x + x0 * d, nb, d, tmp);
					ivf_topk_push_block(&h, tmp, nb, (int64_t) x0);
				}
			}
			ivf_knn_finish(&h, k);
		}
	}

	free(mem);
	return 0;
}

int
ivf_knn_l2sq(const float *q, size_t nq, const float *x, size_t nx,
			 size_t d, size_t k, int64_t *ids, float *dists)
{
	if (nq == 0 || k == 0)
		return 0;

	/*
	 * The GEMM shortlist only pays off with enough queries to amortise the
	 * norms pass and when it is much smaller than x.  (k < nx <= INT_MAX
	 * here, so the shortlist size cannot overflow.)
	 */
	if (nq >= IVF_KNN_GEMM_MIN_NQ && k < nx && d < ((size_t) 1 << 20) &&
		ivf_gemm_worthwhile(nq, nx, d) &&
		nx > k + (k > 16 ? k : 16))
		return ivf_knn_gemm(q, nq, x, nx, d, k, ids, dists);

	ivf_knn_exact(q, nq, x, nx, d, k, ids, dists);
	return 0;
}
