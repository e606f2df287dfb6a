/*-------------------------------------------------------------------------
 *
 * distance_neon.c
 *	  AArch64 Advanced SIMD (NEON) distance kernels.  NEON is part of the
 *	  AArch64 base architecture, so no flags and no run-time check are needed.
 *
 * 16-float steps with four 4-float accumulators, up to three whole 4-float
 * chunks, then a scalar loop for the last 1..3 floats (NEON has no masked
 * loads, and reading past a + d could cross into an unmapped page).  Block
 * kernels run the pair routine on each row, so block and pair results are
 * bitwise equal within this level.
 *
 * SQ8 widens 16 codes a step to floats (vmovl_u8, vmovl_u16,
 * vcvtq_f32_u32, all exact) into four accumulators; the bounds kernel does
 * the reference's operations four lanes at a time.
 *
 * The half-float kernels use the base-architecture conversions (FCVTL /
 * FCVTN: vcvt_f32_f16, vcvt_f16_f32), so they need no feature check
 * either.  Half to float is exact, and a signalling NaN comes back quiet
 * with its payload, as in half.c; float to half rounds by FPCR's mode,
 * which is round to nearest even unless a program changes it (PostgreSQL
 * does not), as the scalar float arithmetic also assumes.  The distances
 * follow l2sq_row / dot_row: the last 1..3 elements go through zeroed
 * 4-lane buffers, so nothing past q + d or x + d is read.
 *
 *-------------------------------------------------------------------------
 */
#include "distance_isa.h"
#include "half.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <string.h>

#define IVF_ALWAYS_INLINE static inline __attribute__((always_inline))

IVF_ALWAYS_INLINE float
hsum4(float32x4_t s0, float32x4_t s1, float32x4_t s2, float32x4_t s3)
{
	return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}

IVF_ALWAYS_INLINE float
l2sq_row(const float *a, const float *b, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0.0f);
	float32x4_t s1 = vdupq_n_f32(0.0f);
	float32x4_t s2 = vdupq_n_f32(0.0f);
	float32x4_t s3 = vdupq_n_f32(0.0f);
	float32x4_t t0,
				t1,
				t2,
				t3;
	float		tail = 0.0f;
	size_t		i = 0;

	for (; i + 16 <= d; i += 16)
	{
		t0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
		t1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
		t2 = vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
		t3 = vsubq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
		s0 = vfmaq_f32(s0, t0, t0);
		s1 = vfmaq_f32(s1, t1, t1);
		s2 = vfmaq_f32(s2, t2, t2);
		s3 = vfmaq_f32(s3, t3, t3);
	}
	if (i + 4 <= d)
	{
		t0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
		s0 = vfmaq_f32(s0, t0, t0);
		i += 4;
		if (i + 4 <= d)
		{
			t1 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
			s1 = vfmaq_f32(s1, t1, t1);
			i += 4;
			if (i + 4 <= d)
			{
				t2 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
				s2 = vfmaq_f32(s2, t2, t2);
				i += 4;
			}
		}
	}
	for (; i < d; i++)
	{
		float		t = a[i] - b[i];

		tail += t * t;
	}
	return hsum4(s0, s1, s2, s3) + tail;
}

IVF_ALWAYS_INLINE float
dot_row(const float *a, const float *b, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0.0f);
	float32x4_t s1 = vdupq_n_f32(0.0f);
	float32x4_t s2 = vdupq_n_f32(0.0f);
	float32x4_t s3 = vdupq_n_f32(0.0f);
	float		tail = 0.0f;
	size_t		i = 0;

	for (; i + 16 <= d; i += 16)
	{
		s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
		s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
		s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
		s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
	}
	if (i + 4 <= d)
	{
		s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
		i += 4;
		if (i + 4 <= d)
		{
			s1 = vfmaq_f32(s1, vld1q_f32(a + i), vld1q_f32(b + i));
			i += 4;
			if (i + 4 <= d)
			{
				s2 = vfmaq_f32(s2, vld1q_f32(a + i), vld1q_f32(b + i));
				i += 4;
			}
		}
	}
	for (; i < d; i++)
		tail += a[i] * b[i];
	return hsum4(s0, s1, s2, s3) + tail;
}

IVF_ALWAYS_INLINE float
norm_sq_row(const float *a, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0.0f);
	float32x4_t s1 = vdupq_n_f32(0.0f);
	float32x4_t s2 = vdupq_n_f32(0.0f);
	float32x4_t s3 = vdupq_n_f32(0.0f);
	float32x4_t t0,
				t1,
				t2,
				t3;
	float		tail = 0.0f;
	size_t		i = 0;

	for (; i + 16 <= d; i += 16)
	{
		t0 = vld1q_f32(a + i);
		t1 = vld1q_f32(a + i + 4);
		t2 = vld1q_f32(a + i + 8);
		t3 = vld1q_f32(a + i + 12);
		s0 = vfmaq_f32(s0, t0, t0);
		s1 = vfmaq_f32(s1, t1, t1);
		s2 = vfmaq_f32(s2, t2, t2);
		s3 = vfmaq_f32(s3, t3, t3);
	}
	if (i + 4 <= d)
	{
		t0 = vld1q_f32(a + i);
		s0 = vfmaq_f32(s0, t0, t0);
		i += 4;
		if (i + 4 <= d)
		{
			t1 = vld1q_f32(a + i);
			s1 = vfmaq_f32(s1, t1, t1);
			i += 4;
			if (i + 4 <= d)
			{
				t2 = vld1q_f32(a + i);
				s2 = vfmaq_f32(s2, t2, t2);
				i += 4;
			}
		}
	}
	for (; i < d; i++)
		tail += a[i] * a[i];
	return hsum4(s0, s1, s2, s3) + tail;
}

static float
l2sq_neon(const float *a, const float *b, size_t d)
{
	return l2sq_row(a, b, d);
}

static float
dot_neon(const float *a, const float *b, size_t d)
{
	return dot_row(a, b, d);
}

static float
norm_sq_neon(const float *a, size_t d)
{
	return norm_sq_row(a, d);
}

static float
l1_neon(const float *a, const float *b, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0.0f);
	float32x4_t s1 = vdupq_n_f32(0.0f);
	float32x4_t s2 = vdupq_n_f32(0.0f);
	float32x4_t s3 = vdupq_n_f32(0.0f);
	float		tail = 0.0f;
	size_t		i = 0;

	for (; i + 16 <= d; i += 16)
	{
		s0 = vaddq_f32(s0, vabdq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
		s1 = vaddq_f32(s1, vabdq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4)));
		s2 = vaddq_f32(s2, vabdq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8)));
		s3 = vaddq_f32(s3, vabdq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12)));
	}
	for (; i + 4 <= d; i += 4)
		s0 = vaddq_f32(s0, vabdq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
	for (; i < d; i++)
	{
		float		t = a[i] - b[i];

		tail += t < 0.0f ? -t : t;
	}
	return hsum4(s0, s1, s2, s3) + tail;
}

static void
cosine_parts_neon(const float *a, const float *b, size_t d,
				  float *dot, float *na, float *nb)
{
	float32x4_t sab0 = vdupq_n_f32(0.0f);
	float32x4_t saa0 = vdupq_n_f32(0.0f);
	float32x4_t sbb0 = vdupq_n_f32(0.0f);
	float32x4_t sab1 = vdupq_n_f32(0.0f);
	float32x4_t saa1 = vdupq_n_f32(0.0f);
	float32x4_t sbb1 = vdupq_n_f32(0.0f);
	float32x4_t va,
				vb;
	float		tab = 0.0f,
				taa = 0.0f,
				tbb = 0.0f;
	size_t		i = 0;

	for (; i + 8 <= d; i += 8)
	{
		va = vld1q_f32(a + i);
		vb = vld1q_f32(b + i);
		sab0 = vfmaq_f32(sab0, va, vb);
		saa0 = vfmaq_f32(saa0, va, va);
		sbb0 = vfmaq_f32(sbb0, vb, vb);
		va = vld1q_f32(a + i + 4);
		vb = vld1q_f32(b + i + 4);
		sab1 = vfmaq_f32(sab1, va, vb);
		saa1 = vfmaq_f32(saa1, va, va);
		sbb1 = vfmaq_f32(sbb1, vb, vb);
	}
	if (i + 4 <= d)
	{
		va = vld1q_f32(a + i);
		vb = vld1q_f32(b + i);
		sab0 = vfmaq_f32(sab0, va, vb);
		saa0 = vfmaq_f32(saa0, va, va);
		sbb0 = vfmaq_f32(sbb0, vb, vb);
		i += 4;
	}
	for (; i < d; i++)
	{
		tab += a[i] * b[i];
		taa += a[i] * a[i];
		tbb += b[i] * b[i];
	}
	*dot = vaddvq_f32(vaddq_f32(sab0, sab1)) + tab;
	*na = vaddvq_f32(vaddq_f32(saa0, saa1)) + taa;
	*nb = vaddvq_f32(vaddq_f32(sbb0, sbb1)) + tbb;
}

static void
l2sq_block_neon(const float *q, const float *x, size_t n, size_t d,
				float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = l2sq_row(q, x + i * d, d);
}

static void
dot_block_neon(const float *q, const float *x, size_t n, size_t d,
			   float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = dot_row(q, x + i * d, d);
}

static void
norm_sq_block_neon(const float *x, size_t n, size_t d, float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = norm_sq_row(x + i * d, d);
}

static void
add_f64_neon(double *acc, const float *x, size_t d)
{
	size_t		t = 0;

	for (; t + 4 <= d; t += 4)
	{
		float32x4_t v = vld1q_f32(x + t);

		vst1q_f64(acc + t, vaddq_f64(vld1q_f64(acc + t),
									 vcvt_f64_f32(vget_low_f32(v))));
		vst1q_f64(acc + t + 2, vaddq_f64(vld1q_f64(acc + t + 2),
										 vcvt_high_f64_f32(v)));
	}
	for (; t < d; t++)
		acc[t] += (double) x[t];
}

/* ---- SQ8 ---- */

/* 16 codes at p as four float vectors (exact: 0..255) */
IVF_ALWAYS_INLINE void
codes16(const uint8_t *p, float32x4_t *c0, float32x4_t *c1, float32x4_t *c2,
		float32x4_t *c3)
{
	uint8x16_t	v = vld1q_u8(p);
	uint16x8_t	lo = vmovl_u8(vget_low_u8(v));
	uint16x8_t	hi = vmovl_high_u8(v);

	*c0 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)));
	*c1 = vcvtq_f32_u32(vmovl_high_u16(lo));
	*c2 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)));
	*c3 = vcvtq_f32_u32(vmovl_high_u16(hi));
}

/*
 * sum_j w[j] * c[j]: 16 codes a step into four accumulators, then 8, then
 * the last 1..7 (codes and weights copied into zeroed buffers, so nothing
 * past c + d or w + d is read).
 */
IVF_ALWAYS_INLINE float
sq8_dot_row(const float *w, const uint8_t *c, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0.0f);
	float32x4_t s1 = vdupq_n_f32(0.0f);
	float32x4_t s2 = vdupq_n_f32(0.0f);
	float32x4_t s3 = vdupq_n_f32(0.0f);
	float32x4_t c0,
				c1,
				c2,
				c3;
	size_t		i = 0;

	for (; i + 16 <= d; i += 16)
	{
		codes16(c + i, &c0, &c1, &c2, &c3);
		s0 = vfmaq_f32(s0, vld1q_f32(w + i), c0);
		s1 = vfmaq_f32(s1, vld1q_f32(w + i + 4), c1);
		s2 = vfmaq_f32(s2, vld1q_f32(w + i + 8), c2);
		s3 = vfmaq_f32(s3, vld1q_f32(w + i + 12), c3);
	}
	if (i + 8 <= d)
	{
		uint16x8_t	h = vmovl_u8(vld1_u8(c + i));

		s0 = vfmaq_f32(s0, vld1q_f32(w + i), vcvtq_f32_u32(vmovl_u16(vget_low_u16(h))));
		s1 = vfmaq_f32(s1, vld1q_f32(w + i + 4), vcvtq_f32_u32(vmovl_high_u16(h)));
		i += 8;
	}
	if (i < d)
	{
		size_t		r = d - i;
		uint8_t		cb[8] = {0};
		float		wb[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
		uint16x8_t	h;

		memcpy(cb, c + i, r);
		memcpy(wb, w + i, r * sizeof(float));
		h = vmovl_u8(vld1_u8(cb));
		s2 = vfmaq_f32(s2, vld1q_f32(wb), vcvtq_f32_u32(vmovl_u16(vget_low_u16(h))));
		s3 = vfmaq_f32(s3, vld1q_f32(wb + 4), vcvtq_f32_u32(vmovl_high_u16(h)));
	}
	return hsum4(s0, s1, s2, s3);
}

static void
sq8_dot_block_neon(const float *w, const uint8_t *codes, size_t n, size_t d,
				   float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = sq8_dot_row(w, codes + i * d, d);
}

/* x > 0 ? x : 0, NaN giving 0 (the compare is false for NaN) */
IVF_ALWAYS_INLINE float32x4_t
keep_positive(float32x4_t x)
{
	return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(x),
										   vcgtq_f32(x, vdupq_n_f32(0.0f))));
}

/*
 * ivf_ref_sq8_l2_bounds, 4 at a time (the tail with the reference): the
 * same operations in the same order, never fused (-ffp-contract=off, see
 * the Makefile).
 */
static void
sq8_l2_bounds_neon(float *raw, const float *err, const float *cn, size_t n,
				   float asq, float g, float k, float mag)
{
	const float32x4_t aa = vdupq_n_f32(asq);
	const float32x4_t two = vdupq_n_f32(2.0f);
	const float32x4_t gg = vdupq_n_f32(g);
	const float32x4_t g1 = vdupq_n_f32(1.0f - g);
	const float32x4_t g2 = vdupq_n_f32(1.0f + g);
	const float32x4_t g3 = vdupq_n_f32(1.0f - 2.0f * g);
	const float32x4_t kk = vdupq_n_f32(k);
	const float32x4_t mm = vdupq_n_f32(mag);
	size_t		i = 0;

	for (; i + 4 <= n; i += 4)
	{
		float32x4_t dd = vld1q_f32(raw + i);
		float32x4_t c = vld1q_f32(cn + i);
		float32x4_t e = vld1q_f32(err + i);
		float32x4_t r;
		float32x4_t t;
		float32x4_t s;
		float32x4_t b;

		/* h = ((asq - 2 D) + cn) - g ((asq + 2 |D|) + cn) */
		r = vaddq_f32(vsubq_f32(aa, vmulq_f32(two, dd)), c);
		t = vaddq_f32(vaddq_f32(aa, vmulq_f32(two, vabsq_f32(dd))), c);
		r = keep_positive(vsubq_f32(r, vmulq_f32(gg, t)));
		s = vsqrtq_f32(r);
		b = vsubq_f32(vsubq_f32(vmulq_f32(s, g1), vmulq_f32(e, g2)),
					  vmulq_f32(kk, vaddq_f32(vaddq_f32(mm, s), e)));
		b = keep_positive(b);
		vst1q_f32(raw + i, vmulq_f32(vmulq_f32(b, b), g3));
	}
	ivf_ref_sq8_l2_bounds(raw + i, err + i, cn + i, n - i, asq, g, k, mag);
}

/* ---- half floats ---- */

/* 4 halves at p as floats (exact) */
IVF_ALWAYS_INLINE float32x4_t
load_h4(const uint16_t *p)
{
	return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

/* the r < 4 halves at p as floats, zero beyond, reading only p[0..r-1] */
IVF_ALWAYS_INLINE float32x4_t
load_h_tail(const uint16_t *p, size_t r)
{
	uint16_t	buf[4] = {0};

	memcpy(buf, p, r * sizeof(uint16_t));
	return load_h4(buf);
}

/* the r < 4 floats at p, zero beyond, reading only p[0..r-1] */
IVF_ALWAYS_INLINE float32x4_t
load_f_tail(const float *p, size_t r)
{
	float		buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};

	memcpy(buf, p, r * sizeof(float));
	return vld1q_f32(buf);
}

static void
half_to_float_neon(const uint16_t *h, float *out, size_t n)
{
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
	{
		float16x8_t v = vreinterpretq_f16_u16(vld1q_u16(h + i));

		vst1q_f32(out + i, vcvt_f32_f16(vget_low_f16(v)));
		vst1q_f32(out + i + 4, vcvt_high_f32_f16(v));
	}
	for (; i + 4 <= n; i += 4)
		vst1q_f32(out + i, load_h4(h + i));
	if (i < n)
	{
		float		buf[4];

		vst1q_f32(buf, load_h_tail(h + i, n - i));
		memcpy(out + i, buf, (n - i) * sizeof(float));
	}
}

/* 4 floats rounded to halves; *bad gets i + the first lane that is not finite */
IVF_ALWAYS_INLINE uint16x4_t
cvt_h4(float32x4_t v, size_t i, size_t *bad, size_t n)
{
	const uint16x4_t e = vdup_n_u16(0x7C00);
	uint16x4_t	h = vreinterpret_u16_f16(vcvt_f16_f32(v));
	uint16x4_t	nf = vceq_u16(vand_u16(h, e), e);

	/* rare: find the lane only when some lane is NaN or infinite */
	if (vmaxv_u16(nf) != 0 && *bad == n)
	{
		uint16_t	lanes[4];
		size_t		j = 0;

		vst1_u16(lanes, nf);
		while (lanes[j] == 0)
			j++;
		*bad = i + j;
	}
	return h;
}

static size_t
float_to_half_neon(const float *x, uint16_t *out, size_t n)
{
	size_t		bad = n;
	size_t		i = 0;

	for (; i + 4 <= n; i += 4)
		vst1_u16(out + i, cvt_h4(vld1q_f32(x + i), i, &bad, n));
	if (i < n)
	{
		uint16_t	buf[4];

		/* the zero lanes are +0: they never count as bad */
		vst1_u16(buf, cvt_h4(load_f_tail(x + i, n - i), i, &bad, n));
		memcpy(out + i, buf, (n - i) * sizeof(uint16_t));
	}
	return bad;
}

/* l2sq_row with the rows as halves */
IVF_ALWAYS_INLINE float
l2sq_f16_row(const float *q, const uint16_t *x, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0.0f);
	float32x4_t s1 = vdupq_n_f32(0.0f);
	float32x4_t s2 = vdupq_n_f32(0.0f);
	float32x4_t s3 = vdupq_n_f32(0.0f);
	float32x4_t t0,
				t1,
				t2,
				t3;
	size_t		i = 0;

	for (; i + 16 <= d; i += 16)
	{
		float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(x + i));
		float16x8_t h1 = vreinterpretq_f16_u16(vld1q_u16(x + i + 8));

		t0 = vsubq_f32(vld1q_f32(q + i), vcvt_f32_f16(vget_low_f16(h0)));
		t1 = vsubq_f32(vld1q_f32(q + i + 4), vcvt_high_f32_f16(h0));
		t2 = vsubq_f32(vld1q_f32(q + i + 8), vcvt_f32_f16(vget_low_f16(h1)));
		t3 = vsubq_f32(vld1q_f32(q + i + 12), vcvt_high_f32_f16(h1));
		s0 = vfmaq_f32(s0, t0, t0);
		s1 = vfmaq_f32(s1, t1, t1);
		s2 = vfmaq_f32(s2, t2, t2);
		s3 = vfmaq_f32(s3, t3, t3);
	}
	if (i + 4 <= d)
	{
		t0 = vsubq_f32(vld1q_f32(q + i), load_h4(x + i));
		s0 = vfmaq_f32(s0, t0, t0);
		i += 4;
		if (i + 4 <= d)
		{
			t1 = vsubq_f32(vld1q_f32(q + i), load_h4(x + i));
			s1 = vfmaq_f32(s1, t1, t1);
			i += 4;
			if (i + 4 <= d)
			{
				t2 = vsubq_f32(vld1q_f32(q + i), load_h4(x + i));
				s2 = vfmaq_f32(s2, t2, t2);
				i += 4;
			}
		}
	}
	if (i < d)
	{
		t3 = vsubq_f32(load_f_tail(q + i, d - i), load_h_tail(x + i, d - i));
		s3 = vfmaq_f32(s3, t3, t3);
	}
	return hsum4(s0, s1, s2, s3);
}

/* dot_row with the rows as halves */
IVF_ALWAYS_INLINE float
dot_f16_row(const float *q, const uint16_t *x, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0.0f);
	float32x4_t s1 = vdupq_n_f32(0.0f);
	float32x4_t s2 = vdupq_n_f32(0.0f);
	float32x4_t s3 = vdupq_n_f32(0.0f);
	size_t		i = 0;

	for (; i + 16 <= d; i += 16)
	{
		float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(x + i));
		float16x8_t h1 = vreinterpretq_f16_u16(vld1q_u16(x + i + 8));

		s0 = vfmaq_f32(s0, vld1q_f32(q + i), vcvt_f32_f16(vget_low_f16(h0)));
		s1 = vfmaq_f32(s1, vld1q_f32(q + i + 4), vcvt_high_f32_f16(h0));
		s2 = vfmaq_f32(s2, vld1q_f32(q + i + 8), vcvt_f32_f16(vget_low_f16(h1)));
		s3 = vfmaq_f32(s3, vld1q_f32(q + i + 12), vcvt_high_f32_f16(h1));
	}
	if (i + 4 <= d)
	{
		s0 = vfmaq_f32(s0, vld1q_f32(q + i), load_h4(x + i));
		i += 4;
		if (i + 4 <= d)
		{
			s1 = vfmaq_f32(s1, vld1q_f32(q + i), load_h4(x + i));
			i += 4;
			if (i + 4 <= d)
			{
				s2 = vfmaq_f32(s2, vld1q_f32(q + i), load_h4(x + i));
				i += 4;
			}
		}
	}
	if (i < d)
		s3 = vfmaq_f32(s3, load_f_tail(q + i, d - i), load_h_tail(x + i, d - i));
	return hsum4(s0, s1, s2, s3);
}

static float
l2sq_f16_neon(const float *q, const uint16_t *x, size_t d)
{
	return l2sq_f16_row(q, x, d);
}

static float
dot_f16_neon(const float *q, const uint16_t *x, size_t d)
{
	return dot_f16_row(q, x, d);
}

/*
 * The pair routine on each row, so block and pair results are bitwise
 * equal.  F16C's two-rows-per-pass form is not copied: whether it pays
 * here needs an ARM machine to measure on.
 */
static void
l2sq_f16_block_neon(const float *q, const uint16_t *x, size_t n, size_t d,
					float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = l2sq_f16_row(q, x + i * d, d);
}

static void
dot_f16_block_neon(const float *q, const uint16_t *x, size_t n, size_t d,
				   float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = dot_f16_row(q, x + i * d, d);
}

void
ivf_kernels_fill_neon(IvfKernels *k)
{
	k->level = IVF_SIMD_NEON;
	k->l2sq = l2sq_neon;
	k->dot = dot_neon;
	k->l1 = l1_neon;
	k->norm_sq = norm_sq_neon;
	k->cosine_parts = cosine_parts_neon;
	k->l2sq_block = l2sq_block_neon;
	k->dot_block = dot_block_neon;
	k->norm_sq_block = norm_sq_block_neon;

	k->sq8_dot_block = sq8_dot_block_neon;
	k->sq8_l2_bounds = sq8_l2_bounds_neon;

	/*
	 * The assignment's row scans: the references still.  They promise the
	 * same bits at every level; a NEON version is for when there is an ARM
	 * machine to see whether it is any faster.
	 */
	k->row_min_hi = ivf_ref_row_min_hi;
	k->row_min_hi_ip = ivf_ref_row_min_hi_ip;
	k->row_lo_pass = ivf_ref_row_lo_pass;
	k->add_f64 = add_f64_neon;

	/* tested under qemu-user (make neon-check) as the other entries are */
	k->half_to_float = half_to_float_neon;
	k->float_to_half = float_to_half_neon;
	k->l2sq_f16 = l2sq_f16_neon;
	k->dot_f16 = dot_f16_neon;
	k->l2sq_f16_block = l2sq_f16_block_neon;
	k->dot_f16_block = dot_f16_block_neon;
}

#else

/* keep the translation unit non-empty on other architectures */
typedef int ivf_distance_neon_unused;

#endif							/* __aarch64__ */
