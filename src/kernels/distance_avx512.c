/*-------------------------------------------------------------------------
 *
 * distance_avx512.c
 *	  AVX-512F (+DQ) distance kernels.  Compiled with
 *	  -mavx512f -mavx512dq -mavx2 -mfma; only called after distance.c has
 *	  checked CPUID and xgetbv.
 *
 * Each pair kernel walks the vector in 64-float steps with four independent
 * accumulators (hides FMA latency), then up to three whole 16-float chunks,
 * then one masked chunk for the remaining 1..15 floats, so nothing past
 * a + d is ever read (masked-out lanes do not fault).  Block kernels apply
 * exactly the same row routine to each row, so within this level
 * l2sq_block(q, x, n, d)[i] is bitwise equal to l2sq(q, x + i * d, d), and
 * likewise for dot and norm_sq: an index scan and an exact recheck can never
 * disagree.
 *
 * The SQ8 kernels widen 16 codes at a time (vpmovzxbd + vcvtdq2ps, exact for
 * 0..255) and use the same 64-step / four-accumulator shape.  Byte-granular
 * masked loads need AVX512BW, which neither our flags nor distance.c's CPUID
 * check guarantee, so the last 1..15 codes of a row are reloaded as the
 * row's last 16 bytes (d >= 16) with the lanes already summed masked off in
 * float, or copied into a zeroed buffer (d < 16); nothing past the row's
 * last code is read either way.
 *
 *-------------------------------------------------------------------------
 */
#include "distance_isa.h"

#if defined(__x86_64__)

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define IVF_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Mask with the low r bits set, 0 < r < 16. */
IVF_ALWAYS_INLINE __mmask16
tail_mask(size_t r)
{
	return (__mmask16) ((1u << r) - 1u);
}

/* Horizontal sum in a fixed order. */
IVF_ALWAYS_INLINE float
hsum512(__m512 v)
{
	__m256		v8 = _mm256_add_ps(_mm512_castps512_ps256(v),
								   _mm512_extractf32x8_ps(v, 1));
	__m128		v4 = _mm_add_ps(_mm256_castps256_ps128(v8),
								_mm256_extractf128_ps(v8, 1));
	__m128		v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
	__m128		v1 = _mm_add_ss(v2, _mm_movehdup_ps(v2));

	return _mm_cvtss_f32(v1);
}

IVF_ALWAYS_INLINE float
l2sq_row(const float *a, const float *b, size_t d)
{
	__m512		s0 = _mm512_setzero_ps();
	__m512		s1 = _mm512_setzero_ps();
	__m512		s2 = _mm512_setzero_ps();
	__m512		s3 = _mm512_setzero_ps();
	__m512		t0,
				t1,
				t2,
				t3;
	size_t		i = 0;

	for (; i + 64 <= d; i += 64)
	{
		t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
		t2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
		t3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
		s0 = _mm512_fmadd_ps(t0, t0, s0);
		s1 = _mm512_fmadd_ps(t1, t1, s1);
		s2 = _mm512_fmadd_ps(t2, t2, s2);
		s3 = _mm512_fmadd_ps(t3, t3, s3);
	}
	if (i + 16 <= d)
	{
		t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		s0 = _mm512_fmadd_ps(t0, t0, s0);
		i += 16;
		if (i + 16 <= d)
		{
			t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
			s1 = _mm512_fmadd_ps(t1, t1, s1);
			i += 16;
			if (i + 16 <= d)
			{
				t2 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
				s2 = _mm512_fmadd_ps(t2, t2, s2);
				i += 16;
			}
		}
	}
	if (i < d)
	{
		__mmask16	m = tail_mask(d - i);

		t3 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
						   _mm512_maskz_loadu_ps(m, b + i));
		s3 = _mm512_fmadd_ps(t3, t3, s3);
	}
	return hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

IVF_ALWAYS_INLINE float
dot_row(const float *a, const float *b, size_t d)
{
	__m512		s0 = _mm512_setzero_ps();
	__m512		s1 = _mm512_setzero_ps();
	__m512		s2 = _mm512_setzero_ps();
	__m512		s3 = _mm512_setzero_ps();
	size_t		i = 0;

	for (; i + 64 <= d; i += 64)
	{
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
	}
	if (i + 16 <= d)
	{
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		i += 16;
		if (i + 16 <= d)
		{
			s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s1);
			i += 16;
			if (i + 16 <= d)
			{
				s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s2);
				i += 16;
			}
		}
	}
	if (i < d)
	{
		__mmask16	m = tail_mask(d - i);

		s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
							 _mm512_maskz_loadu_ps(m, b + i), s3);
	}
	return hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

IVF_ALWAYS_INLINE float
norm_sq_row(const float *a, size_t d)
{
	__m512		s0 = _mm512_setzero_ps();
	__m512		s1 = _mm512_setzero_ps();
	__m512		s2 = _mm512_setzero_ps();
	__m512		s3 = _mm512_setzero_ps();
	__m512		t0,
				t1,
				t2,
				t3;
	size_t		i = 0;

	for (; i + 64 <= d; i += 64)
	{
		t0 = _mm512_loadu_ps(a + i);
		t1 = _mm512_loadu_ps(a + i + 16);
		t2 = _mm512_loadu_ps(a + i + 32);
		t3 = _mm512_loadu_ps(a + i + 48);
		s0 = _mm512_fmadd_ps(t0, t0, s0);
		s1 = _mm512_fmadd_ps(t1, t1, s1);
		s2 = _mm512_fmadd_ps(t2, t2, s2);
		s3 = _mm512_fmadd_ps(t3, t3, s3);
	}
	if (i + 16 <= d)
	{
		t0 = _mm512_loadu_ps(a + i);
		s0 = _mm512_fmadd_ps(t0, t0, s0);
		i += 16;
		if (i + 16 <= d)
		{
			t1 = _mm512_loadu_ps(a + i);
			s1 = _mm512_fmadd_ps(t1, t1, s1);
			i += 16;
			if (i + 16 <= d)
			{
				t2 = _mm512_loadu_ps(a + i);
				s2 = _mm512_fmadd_ps(t2, t2, s2);
				i += 16;
			}
		}
	}
	if (i < d)
	{
		t3 = _mm512_maskz_loadu_ps(tail_mask(d - i), a + i);
		s3 = _mm512_fmadd_ps(t3, t3, s3);
	}
	return hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* 16 codes at p (any alignment) as floats. */
IVF_ALWAYS_INLINE __m512
codes16_ps(const uint8_t *p)
{
	return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) p)));
}

/*
 * The r < 16 codes at p as floats, zero beyond, reading only p[0..r-1].  For
 * rows shorter than 16 codes only; the store-to-load forwarding stall is
 * paid once per row.
 */
IVF_ALWAYS_INLINE __m512
codes_short_ps(const uint8_t *p, size_t r)
{
	uint8_t		buf[16] = {0};

	memcpy(buf, p, r);
	return codes16_ps(buf);
}

IVF_ALWAYS_INLINE float
sq8_dot_row(const float *w, const uint8_t *c, size_t d)
{
	__m512		s0 = _mm512_setzero_ps();
	__m512		s1 = _mm512_setzero_ps();
	__m512		s2 = _mm512_setzero_ps();
	__m512		s3 = _mm512_setzero_ps();
	size_t		i = 0;

	for (; i + 64 <= d; i += 64)
	{
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), codes16_ps(c + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), codes16_ps(c + i + 16), s1);
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), codes16_ps(c + i + 32), s2);
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), codes16_ps(c + i + 48), s3);
	}
	if (i + 16 <= d)
	{
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), codes16_ps(c + i), s0);
		i += 16;
		if (i + 16 <= d)
		{
			s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), codes16_ps(c + i), s1);
			i += 16;
			if (i + 16 <= d)
			{
				s2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), codes16_ps(c + i), s2);
				i += 16;
			}
		}
	}
	if (i < d)
	{
		size_t		r = d - i;

		if (d >= 16)
		{
			/* the row's last 16 codes; w = 0 in the lanes already summed */
			size_t		j = d - 16;

			s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps((__mmask16) ~tail_mask(16 - r),
													   w + j),
								 codes16_ps(c + j), s3);
		}
		else
			s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(r), w + i),
								 codes_short_ps(c + i, r), s3);
	}
	return hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static float
l2sq_avx512(const float *a, const float *b, size_t d)
{
	return l2sq_row(a, b, d);
}

static float
dot_avx512(const float *a, const float *b, size_t d)
{
	return dot_row(a, b, d);
}

static float
norm_sq_avx512(const float *a, size_t d)
{
	return norm_sq_row(a, d);
}

static float
l1_avx512(const float *a, const float *b, size_t d)
{
	__m512		s0 = _mm512_setzero_ps();
	__m512		s1 = _mm512_setzero_ps();
	__m512		s2 = _mm512_setzero_ps();
	__m512		s3 = _mm512_setzero_ps();
	size_t		i = 0;

	for (; i + 64 <= d; i += 64)
	{
		s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i),
														   _mm512_loadu_ps(b + i))));
		s1 = _mm512_add_ps(s1, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i + 16),
														   _mm512_loadu_ps(b + i + 16))));
		s2 = _mm512_add_ps(s2, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i + 32),
														   _mm512_loadu_ps(b + i + 32))));
		s3 = _mm512_add_ps(s3, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i + 48),
														   _mm512_loadu_ps(b + i + 48))));
	}
	for (; i + 16 <= d; i += 16)
		s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i),
														   _mm512_loadu_ps(b + i))));
	if (i < d)
	{
		__mmask16	m = tail_mask(d - i);

		s1 = _mm512_add_ps(s1, _mm512_abs_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
														   _mm512_maskz_loadu_ps(m, b + i))));
	}
	return hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static void
cosine_parts_avx512(const float *a, const float *b, size_t d,
					float *dot, float *na, float *nb)
{
	__m512		sab0 = _mm512_setzero_ps();
	__m512		saa0 = _mm512_setzero_ps();
	__m512		sbb0 = _mm512_setzero_ps();
	__m512		sab1 = _mm512_setzero_ps();
	__m512		saa1 = _mm512_setzero_ps();
	__m512		sbb1 = _mm512_setzero_ps();
	__m512		va,
				vb;
	size_t		i = 0;

	/* three products per load pair, so two accumulator sets are enough */
	for (; i + 32 <= d; i += 32)
	{
		va = _mm512_loadu_ps(a + i);
		vb = _mm512_loadu_ps(b + i);
		sab0 = _mm512_fmadd_ps(va, vb, sab0);
		saa0 = _mm512_fmadd_ps(va, va, saa0);
		sbb0 = _mm512_fmadd_ps(vb, vb, sbb0);
		va = _mm512_loadu_ps(a + i + 16);
		vb = _mm512_loadu_ps(b + i + 16);
		sab1 = _mm512_fmadd_ps(va, vb, sab1);
		saa1 = _mm512_fmadd_ps(va, va, saa1);
		sbb1 = _mm512_fmadd_ps(vb, vb, sbb1);
	}
	if (i + 16 <= d)
	{
		va = _mm512_loadu_ps(a + i);
		vb = _mm512_loadu_ps(b + i);
		sab0 = _mm512_fmadd_ps(va, vb, sab0);
		saa0 = _mm512_fmadd_ps(va, va, saa0);
		sbb0 = _mm512_fmadd_ps(vb, vb, sbb0);
		i += 16;
	}
	if (i < d)
	{
		__mmask16	m = tail_mask(d - i);

		va = _mm512_maskz_loadu_ps(m, a + i);
		vb = _mm512_maskz_loadu_ps(m, b + i);
		sab1 = _mm512_fmadd_ps(va, vb, sab1);
		saa1 = _mm512_fmadd_ps(va, va, saa1);
		sbb1 = _mm512_fmadd_ps(vb, vb, sbb1);
	}
	*dot = hsum512(_mm512_add_ps(sab0, sab1));
	*na = hsum512(_mm512_add_ps(saa0, saa1));
	*nb = hsum512(_mm512_add_ps(sbb0, sbb1));
}

static void
l2sq_block_avx512(const float *q, const float *x, size_t n, size_t d,
				  float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = l2sq_row(q, x + i * d, d);
}

static void
dot_block_avx512(const float *q, const float *x, size_t n, size_t d,
				 float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = dot_row(q, x + i * d, d);
}

static void
add_f64_avx512(double *acc, const float *x, size_t d)
{
	size_t		t = 0;

	for (; t + 16 <= d; t += 16)
	{
		__m512		v = _mm512_loadu_ps(x + t);

		_mm512_storeu_pd(acc + t,
						 _mm512_add_pd(_mm512_loadu_pd(acc + t),
									   _mm512_cvtps_pd(_mm512_castps512_ps256(v))));
		_mm512_storeu_pd(acc + t + 8,
						 _mm512_add_pd(_mm512_loadu_pd(acc + t + 8),
									   _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))));
	}
	for (; t < d; t++)
		acc[t] += (double) x[t];
}

static void
norm_sq_block_avx512(const float *x, size_t n, size_t d, float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = norm_sq_row(x + i * d, d);
}

static void
sq8_dot_block_avx512(const float *w, const uint8_t *codes, size_t n,
					 size_t d, float *out)
{
	size_t		pf = IVF_SQ8_PREFETCH_BYTES;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		pf = sq8_prefetch(codes, pf, (i + 1) * d + IVF_SQ8_PREFETCH_BYTES,
						  n * d);
		out[i] = sq8_dot_row(w, codes + i * d, d);
	}
}

/*
 * ivf_ref_sq8_l2_bounds, 16 at a time: the same operations in the same
 * order.
 */
static void
sq8_l2_bounds_avx512(float *raw, const float *err, const float *cn, size_t n,
					 float asq, float g, float k, float mag)
{
	const __m512 zero = _mm512_setzero_ps();
	const __m512 aa = _mm512_set1_ps(asq);
	const __m512 two = _mm512_set1_ps(2.0f);
	const __m512 gg = _mm512_set1_ps(g);
	const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
	const __m512 g1 = _mm512_set1_ps(1.0f - g);
	const __m512 g2 = _mm512_set1_ps(1.0f + g);
	const __m512 g3 = _mm512_set1_ps(1.0f - 2.0f * g);
	const __m512 kk = _mm512_set1_ps(k);
	const __m512 mm = _mm512_set1_ps(mag);
	size_t		i;

	for (i = 0; i < n; i += 16)
	{
		__mmask16	m = (n - i >= 16) ? (__mmask16) 0xFFFF : tail_mask(n - i);
		__m512		dd = _mm512_maskz_loadu_ps(m, raw + i);
		__m512		c = _mm512_maskz_loadu_ps(m, cn + i);
		__m512		e = _mm512_maskz_loadu_ps(m, err + i);
		__m512		r;
		__m512		t;
		__m512		s;
		__m512		b;

		/* h = ((asq - 2 D) + cn) - g ((asq + 2 |D|) + cn) */
		r = _mm512_add_ps(_mm512_sub_ps(aa, _mm512_mul_ps(two, dd)), c);
		t = _mm512_add_ps(_mm512_add_ps(aa, _mm512_mul_ps(two, _mm512_and_ps(dd, absmask))), c);
		r = _mm512_sub_ps(r, _mm512_mul_ps(gg, t));
		/* r > 0 ? r : 0 (ordered compare: NaN -> 0) */
		r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, zero, _CMP_GT_OQ), r);
		s = _mm512_sqrt_ps(r);
		b = _mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(s, g1), _mm512_mul_ps(e, g2)),
						  _mm512_mul_ps(kk, _mm512_add_ps(_mm512_add_ps(mm, s), e)));
		b = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(b, zero, _CMP_GT_OQ), b);
		b = _mm512_mul_ps(_mm512_mul_ps(b, b), g3);
		_mm512_mask_storeu_ps(raw + i, m, b);
	}
}

/*
 * The assignment's row scans: ivf_ref_row_min_hi, _ip and ivf_ref_row_lo_pass,
 * 16 lanes at a time with masked tails; the same operations in the same
 * order (intrinsics are never fused).  minps keeps its second operand when
 * either is NaN, as the reference's "h < m" does.
 */
IVF_ALWAYS_INLINE float
min_lanes512(__m512 v, float m)
{
	float		t[16];
	int			i;

	_mm512_storeu_ps(t, v);
	for (i = 0; i < 16; i++)
		if (t[i] < m)
			m = t[i];
	return m;
}

static float
row_min_hi_avx512(const float *row, const float *q, float p, size_t n,
				  float m)
{
	const __m512 vp = _mm512_set1_ps(p);
	__m512		m0 = _mm512_set1_ps(m);
	__m512		m1 = m0;
	size_t		j = 0;

	for (; j + 32 <= n; j += 32)
	{
		__m512		h0 = _mm512_add_ps(_mm512_add_ps(vp, _mm512_loadu_ps(q + j)),
									   _mm512_loadu_ps(row + j));
		__m512		h1 = _mm512_add_ps(_mm512_add_ps(vp, _mm512_loadu_ps(q + j + 16)),
									   _mm512_loadu_ps(row + j + 16));

		m0 = _mm512_min_ps(h0, m0);
		m1 = _mm512_min_ps(h1, m1);
	}
	for (; j < n; j += 16)
	{
		__mmask16	k = (n - j >= 16) ? (__mmask16) 0xFFFF : tail_mask(n - j);
		__m512		h = _mm512_add_ps(_mm512_add_ps(vp, _mm512_maskz_loadu_ps(k, q + j)),
									  _mm512_maskz_loadu_ps(k, row + j));

		m0 = _mm512_mask_min_ps(m0, k, h, m0);
	}
	return min_lanes512(_mm512_min_ps(m0, m1), m);
}

static float
row_min_hi_ip_avx512(const float *row, const float *q, float p, float e,
					 size_t n, float m)
{
	const __m512 vp = _mm512_set1_ps(p);
	const __m512 ve = _mm512_set1_ps(e);
	__m512		m0 = _mm512_set1_ps(m);
	__m512		m1 = m0;
	size_t		j = 0;

	for (; j + 32 <= n; j += 32)
	{
		__m512		h0 = _mm512_add_ps(_mm512_loadu_ps(row + j),
									   _mm512_add_ps(_mm512_mul_ps(vp, _mm512_loadu_ps(q + j)), ve));
		__m512		h1 = _mm512_add_ps(_mm512_loadu_ps(row + j + 16),
									   _mm512_add_ps(_mm512_mul_ps(vp, _mm512_loadu_ps(q + j + 16)), ve));

		m0 = _mm512_min_ps(h0, m0);
		m1 = _mm512_min_ps(h1, m1);
	}
	for (; j < n; j += 16)
	{
		__mmask16	k = (n - j >= 16) ? (__mmask16) 0xFFFF : tail_mask(n - j);
		__m512		h = _mm512_add_ps(_mm512_maskz_loadu_ps(k, row + j),
									  _mm512_add_ps(_mm512_mul_ps(vp, _mm512_maskz_loadu_ps(k, q + j)), ve));

		m0 = _mm512_mask_min_ps(m0, k, h, m0);
	}
	return min_lanes512(_mm512_min_ps(m0, m1), m);
}

static size_t
row_lo_pass_avx512(const float *row, const float *q, float p, float e,
				   int ip, size_t n, float thr, uint32_t *idx)
{
	const __m512 vp = _mm512_set1_ps(p);
	const __m512 ve = _mm512_set1_ps(e);
	const __m512 vt = _mm512_set1_ps(thr);
	const __m512i step = _mm512_set1_epi32(16);
	__m512i		iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
										 12, 13, 14, 15);
	size_t		c = 0;
	size_t		j;

	for (j = 0; j < n; j += 16)
	{
		__mmask16	k = (n - j >= 16) ? (__mmask16) 0xFFFF : tail_mask(n - j);
		__m512		r = _mm512_maskz_loadu_ps(k, row + j);
		__m512		qq = _mm512_maskz_loadu_ps(k, q + j);
		__m512		lo;
		__mmask16	pass;

		if (ip)
			lo = _mm512_sub_ps(r, _mm512_add_ps(_mm512_mul_ps(vp, qq), ve));
		else
			lo = _mm512_add_ps(_mm512_add_ps(vp, qq), r);
		/* not greater, unordered: NaN passes */
		pass = _mm512_mask_cmp_ps_mask(k, lo, vt, _CMP_NGT_UQ);
		if (pass)
		{
			_mm512_mask_compressstoreu_epi32(idx + c, pass, iota);
			c += (size_t) __builtin_popcount((unsigned) pass);
		}
		iota = _mm512_add_epi32(iota, step);
	}
	return c;
}

void
ivf_kernels_fill_avx512(IvfKernels *k)
{
	k->level = IVF_SIMD_AVX512;
	k->l2sq = l2sq_avx512;
	k->dot = dot_avx512;
	k->l1 = l1_avx512;
	k->norm_sq = norm_sq_avx512;
	k->cosine_parts = cosine_parts_avx512;
	k->l2sq_block = l2sq_block_avx512;
	k->dot_block = dot_block_avx512;
	k->norm_sq_block = norm_sq_block_avx512;
	k->sq8_dot_block = sq8_dot_block_avx512;
	k->sq8_l2_bounds = sq8_l2_bounds_avx512;
	k->row_min_hi = row_min_hi_avx512;
	k->row_min_hi_ip = row_min_hi_ip_avx512;
	k->row_lo_pass = row_lo_pass_avx512;
	k->add_f64 = add_f64_avx512;
}

#else

/* keep the translation unit non-empty on other architectures */
typedef int ivf_distance_avx512_unused;

#endif							/* __x86_64__ */
