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
 *-------------------------------------------------------------------------
 */
#include "distance_isa.h"

#if defined(__aarch64__)

#include <arm_neon.h>

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

	/*
	 * SQ8: the scalar references for now.  A NEON version (vmovl_u8 /
	 * vmovl_u16 / vcvtq_f32_u32) is straightforward, but there is no ARM
	 * machine to test it on, and an untested kernel feeding a lower bound
	 * could silently drop true neighbours.
	 */
	k->sq8_dot_block = ivf_ref_sq8_dot_block;
	k->sq8_l2_bounds = ivf_ref_sq8_l2_bounds;
	/* the assignment's row scans: the references, for the same reason */
	k->row_min_hi = ivf_ref_row_min_hi;
	k->row_min_hi_ip = ivf_ref_row_min_hi_ip;
	k->row_lo_pass = ivf_ref_row_lo_pass;
	k->add_f64 = add_f64_neon;

	/*
	 * The half-float entries keep the scalar references that
	 * ivf_kernels_get put in the table, for the same reason: vcvt_f32_f16 /
	 * vcvt_f16_f32 would do, untested they could store a wrong half.
	 */
}

#else

/* keep the translation unit non-empty on other architectures */
typedef int ivf_distance_neon_unused;

#endif							/* __aarch64__ */
