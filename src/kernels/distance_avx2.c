/*-------------------------------------------------------------------------
 *
 * distance_avx2.c
 *	  AVX2 + FMA distance kernels.  Compiled with -mavx2 -mfma; only called
 *	  after distance.c has checked CPUID and xgetbv.
 *
 * Same structure as distance_avx512.c with 8-float vectors: 32-float steps
 * with four accumulators, up to three whole 8-float chunks, then one masked
 * load (vmaskmovps, which does not fault on masked-out lanes) for the last
 * 1..7 floats.  Block kernels run the pair routine on each row, so block
 * and pair results are bitwise equal within this level.
 *
 * The SQ8 kernels widen 8 codes at a time (a 64-bit load, vpmovzxbd,
 * vcvtdq2ps: exact for 0..255), 32 codes per step with four accumulators.
 * vmaskmov has no byte granularity, so the last 1..7 codes of a row are
 * reloaded as the row's last 8 bytes (d >= 8) with the float operands of the
 * lanes already summed masked to 0, or copied into a zeroed buffer (d < 8);
 * nothing past the row's last code is read either way.
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

/* 8 all-ones lanes then 8 zero lanes; a window of 8 gives a tail mask */
static const int32_t tail_mask_tab[16] = {
	-1, -1, -1, -1, -1, -1, -1, -1,
	0, 0, 0, 0, 0, 0, 0, 0
};

/* Mask selecting the first r lanes, 0 < r < 8. */
IVF_ALWAYS_INLINE __m256i
tail_mask(size_t r)
{
	return _mm256_loadu_si256((const __m256i *) (tail_mask_tab + 8 - r));
}

/* 8 zero lanes then 8 all-ones lanes; a window of 8 gives a head-skip mask */
static const int32_t last_mask_tab[16] = {
	0, 0, 0, 0, 0, 0, 0, 0,
	-1, -1, -1, -1, -1, -1, -1, -1
};

/* Mask selecting the last r lanes, 0 < r < 8. */
IVF_ALWAYS_INLINE __m256i
last_mask(size_t r)
{
	return _mm256_loadu_si256((const __m256i *) (last_mask_tab + r));
}

/* Horizontal sum in a fixed order. */
IVF_ALWAYS_INLINE float
hsum256(__m256 v)
{
	__m128		v4 = _mm_add_ps(_mm256_castps256_ps128(v),
								_mm256_extractf128_ps(v, 1));
	__m128		v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
	__m128		v1 = _mm_add_ss(v2, _mm_movehdup_ps(v2));

	return _mm_cvtss_f32(v1);
}

IVF_ALWAYS_INLINE __m256
abs256(__m256 v)
{
	return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

IVF_ALWAYS_INLINE float
l2sq_row(const float *a, const float *b, size_t d)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	__m256		s2 = _mm256_setzero_ps();
	__m256		s3 = _mm256_setzero_ps();
	__m256		t0,
				t1,
				t2,
				t3;
	size_t		i = 0;

	for (; i + 32 <= d; i += 32)
	{
		t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
		t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
		t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
		s0 = _mm256_fmadd_ps(t0, t0, s0);
		s1 = _mm256_fmadd_ps(t1, t1, s1);
		s2 = _mm256_fmadd_ps(t2, t2, s2);
		s3 = _mm256_fmadd_ps(t3, t3, s3);
	}
	if (i + 8 <= d)
	{
		t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		s0 = _mm256_fmadd_ps(t0, t0, s0);
		i += 8;
		if (i + 8 <= d)
		{
			t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
			s1 = _mm256_fmadd_ps(t1, t1, s1);
			i += 8;
			if (i + 8 <= d)
			{
				t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
				s2 = _mm256_fmadd_ps(t2, t2, s2);
				i += 8;
			}
		}
	}
	if (i < d)
	{
		__m256i		m = tail_mask(d - i);

		t3 = _mm256_sub_ps(_mm256_maskload_ps(a + i, m),
						   _mm256_maskload_ps(b + i, m));
		s3 = _mm256_fmadd_ps(t3, t3, s3);
	}
	return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

IVF_ALWAYS_INLINE float
dot_row(const float *a, const float *b, size_t d)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	__m256		s2 = _mm256_setzero_ps();
	__m256		s3 = _mm256_setzero_ps();
	size_t		i = 0;

	for (; i + 32 <= d; i += 32)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
	}
	if (i + 8 <= d)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		i += 8;
		if (i + 8 <= d)
		{
			s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s1);
			i += 8;
			if (i + 8 <= d)
			{
				s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s2);
				i += 8;
			}
		}
	}
	if (i < d)
	{
		__m256i		m = tail_mask(d - i);

		s3 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
							 _mm256_maskload_ps(b + i, m), s3);
	}
	return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

IVF_ALWAYS_INLINE float
norm_sq_row(const float *a, size_t d)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	__m256		s2 = _mm256_setzero_ps();
	__m256		s3 = _mm256_setzero_ps();
	__m256		t0,
				t1,
				t2,
				t3;
	size_t		i = 0;

	for (; i + 32 <= d; i += 32)
	{
		t0 = _mm256_loadu_ps(a + i);
		t1 = _mm256_loadu_ps(a + i + 8);
		t2 = _mm256_loadu_ps(a + i + 16);
		t3 = _mm256_loadu_ps(a + i + 24);
		s0 = _mm256_fmadd_ps(t0, t0, s0);
		s1 = _mm256_fmadd_ps(t1, t1, s1);
		s2 = _mm256_fmadd_ps(t2, t2, s2);
		s3 = _mm256_fmadd_ps(t3, t3, s3);
	}
	if (i + 8 <= d)
	{
		t0 = _mm256_loadu_ps(a + i);
		s0 = _mm256_fmadd_ps(t0, t0, s0);
		i += 8;
		if (i + 8 <= d)
		{
			t1 = _mm256_loadu_ps(a + i);
			s1 = _mm256_fmadd_ps(t1, t1, s1);
			i += 8;
			if (i + 8 <= d)
			{
				t2 = _mm256_loadu_ps(a + i);
				s2 = _mm256_fmadd_ps(t2, t2, s2);
				i += 8;
			}
		}
	}
	if (i < d)
	{
		t3 = _mm256_maskload_ps(a + i, tail_mask(d - i));
		s3 = _mm256_fmadd_ps(t3, t3, s3);
	}
	return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* 8 codes at p (any alignment) as floats. */
IVF_ALWAYS_INLINE __m256
codes8_ps(const uint8_t *p)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *) p)));
}

/*
 * The r < 8 codes at p as floats, zero beyond, reading only p[0..r-1].  For
 * rows shorter than 8 codes only; the store-to-load forwarding stall is paid
 * once per row.
 */
IVF_ALWAYS_INLINE __m256
codes_short_ps(const uint8_t *p, size_t r)
{
	uint8_t		buf[8] = {0};

	memcpy(buf, p, r);
	return codes8_ps(buf);
}

IVF_ALWAYS_INLINE float
sq8_dot_row(const float *w, const uint8_t *c, size_t d)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	__m256		s2 = _mm256_setzero_ps();
	__m256		s3 = _mm256_setzero_ps();
	size_t		i = 0;

	for (; i + 32 <= d; i += 32)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), codes8_ps(c + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), codes8_ps(c + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), codes8_ps(c + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), codes8_ps(c + i + 24), s3);
	}
	if (i + 8 <= d)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), codes8_ps(c + i), s0);
		i += 8;
		if (i + 8 <= d)
		{
			s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), codes8_ps(c + i), s1);
			i += 8;
			if (i + 8 <= d)
			{
				s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), codes8_ps(c + i), s2);
				i += 8;
			}
		}
	}
	if (i < d)
	{
		size_t		r = d - i;

		if (d >= 8)
		{
			/* the row's last 8 codes; w = 0 in the lanes already summed */
			size_t		j = d - 8;

			s3 = _mm256_fmadd_ps(_mm256_maskload_ps(w + j, last_mask(r)),
								 codes8_ps(c + j), s3);
		}
		else
			s3 = _mm256_fmadd_ps(_mm256_maskload_ps(w + i, tail_mask(r)),
								 codes_short_ps(c + i, r), s3);
	}
	return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static float
l2sq_avx2(const float *a, const float *b, size_t d)
{
	return l2sq_row(a, b, d);
}

static float
dot_avx2(const float *a, const float *b, size_t d)
{
	return dot_row(a, b, d);
}

static float
norm_sq_avx2(const float *a, size_t d)
{
	return norm_sq_row(a, d);
}

static float
l1_avx2(const float *a, const float *b, size_t d)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	__m256		s2 = _mm256_setzero_ps();
	__m256		s3 = _mm256_setzero_ps();
	size_t		i = 0;

	for (; i + 32 <= d; i += 32)
	{
		s0 = _mm256_add_ps(s0, abs256(_mm256_sub_ps(_mm256_loadu_ps(a + i),
													_mm256_loadu_ps(b + i))));
		s1 = _mm256_add_ps(s1, abs256(_mm256_sub_ps(_mm256_loadu_ps(a + i + 8),
													_mm256_loadu_ps(b + i + 8))));
		s2 = _mm256_add_ps(s2, abs256(_mm256_sub_ps(_mm256_loadu_ps(a + i + 16),
													_mm256_loadu_ps(b + i + 16))));
		s3 = _mm256_add_ps(s3, abs256(_mm256_sub_ps(_mm256_loadu_ps(a + i + 24),
													_mm256_loadu_ps(b + i + 24))));
	}
	for (; i + 8 <= d; i += 8)
		s0 = _mm256_add_ps(s0, abs256(_mm256_sub_ps(_mm256_loadu_ps(a + i),
													_mm256_loadu_ps(b + i))));
	if (i < d)
	{
		__m256i		m = tail_mask(d - i);

		s1 = _mm256_add_ps(s1, abs256(_mm256_sub_ps(_mm256_maskload_ps(a + i, m),
													_mm256_maskload_ps(b + i, m))));
	}
	return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static void
cosine_parts_avx2(const float *a, const float *b, size_t d,
				  float *dot, float *na, float *nb)
{
	__m256		sab0 = _mm256_setzero_ps();
	__m256		saa0 = _mm256_setzero_ps();
	__m256		sbb0 = _mm256_setzero_ps();
	__m256		sab1 = _mm256_setzero_ps();
	__m256		saa1 = _mm256_setzero_ps();
	__m256		sbb1 = _mm256_setzero_ps();
	__m256		va,
				vb;
	size_t		i = 0;

	/* three products per load pair, so two accumulator sets are enough */
	for (; i + 16 <= d; i += 16)
	{
		va = _mm256_loadu_ps(a + i);
		vb = _mm256_loadu_ps(b + i);
		sab0 = _mm256_fmadd_ps(va, vb, sab0);
		saa0 = _mm256_fmadd_ps(va, va, saa0);
		sbb0 = _mm256_fmadd_ps(vb, vb, sbb0);
		va = _mm256_loadu_ps(a + i + 8);
		vb = _mm256_loadu_ps(b + i + 8);
		sab1 = _mm256_fmadd_ps(va, vb, sab1);
		saa1 = _mm256_fmadd_ps(va, va, saa1);
		sbb1 = _mm256_fmadd_ps(vb, vb, sbb1);
	}
	if (i + 8 <= d)
	{
		va = _mm256_loadu_ps(a + i);
		vb = _mm256_loadu_ps(b + i);
		sab0 = _mm256_fmadd_ps(va, vb, sab0);
		saa0 = _mm256_fmadd_ps(va, va, saa0);
		sbb0 = _mm256_fmadd_ps(vb, vb, sbb0);
		i += 8;
	}
	if (i < d)
	{
		__m256i		m = tail_mask(d - i);

		va = _mm256_maskload_ps(a + i, m);
		vb = _mm256_maskload_ps(b + i, m);
		sab1 = _mm256_fmadd_ps(va, vb, sab1);
		saa1 = _mm256_fmadd_ps(va, va, saa1);
		sbb1 = _mm256_fmadd_ps(vb, vb, sbb1);
	}
	*dot = hsum256(_mm256_add_ps(sab0, sab1));
	*na = hsum256(_mm256_add_ps(saa0, saa1));
	*nb = hsum256(_mm256_add_ps(sbb0, sbb1));
}

static void
l2sq_block_avx2(const float *q, const float *x, size_t n, size_t d,
				float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = l2sq_row(q, x + i * d, d);
}

static void
dot_block_avx2(const float *q, const float *x, size_t n, size_t d,
			   float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = dot_row(q, x + i * d, d);
}

static void
add_f64_avx2(double *acc, const float *x, size_t d)
{
	size_t		t = 0;

	for (; t + 8 <= d; t += 8)
	{
		__m256		v = _mm256_loadu_ps(x + t);

		_mm256_storeu_pd(acc + t,
						 _mm256_add_pd(_mm256_loadu_pd(acc + t),
									   _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
		_mm256_storeu_pd(acc + t + 4,
						 _mm256_add_pd(_mm256_loadu_pd(acc + t + 4),
									   _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
	}
	for (; t < d; t++)
		acc[t] += (double) x[t];
}

static void
norm_sq_block_avx2(const float *x, size_t n, size_t d, float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = norm_sq_row(x + i * d, d);
}

static void
sq8_dot_block_avx2(const float *w, const uint8_t *codes, size_t n, size_t d,
				   float *out)
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
 * ivf_ref_sq8_l2_bounds, 8 at a time (the tail with the reference): the
 * same operations in the same order.
 */
static void
sq8_l2_bounds_avx2(float *raw, const float *err, const float *cn, size_t n,
				   float asq, float g, float k, float mag)
{
	const __m256 zero = _mm256_setzero_ps();
	const __m256 aa = _mm256_set1_ps(asq);
	const __m256 two = _mm256_set1_ps(2.0f);
	const __m256 gg = _mm256_set1_ps(g);
	const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
	const __m256 g1 = _mm256_set1_ps(1.0f - g);
	const __m256 g2 = _mm256_set1_ps(1.0f + g);
	const __m256 g3 = _mm256_set1_ps(1.0f - 2.0f * g);
	const __m256 kk = _mm256_set1_ps(k);
	const __m256 mm = _mm256_set1_ps(mag);
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
	{
		__m256		dd = _mm256_loadu_ps(raw + i);
		__m256		c = _mm256_loadu_ps(cn + i);
		__m256		e = _mm256_loadu_ps(err + i);
		__m256		r;
		__m256		t;
		__m256		s;
		__m256		b;

		/* h = ((asq - 2 D) + cn) - g ((asq + 2 |D|) + cn) */
		r = _mm256_add_ps(_mm256_sub_ps(aa, _mm256_mul_ps(two, dd)), c);
		t = _mm256_add_ps(_mm256_add_ps(aa, _mm256_mul_ps(two, _mm256_and_ps(dd, absmask))), c);
		r = _mm256_sub_ps(r, _mm256_mul_ps(gg, t));
		r = _mm256_and_ps(r, _mm256_cmp_ps(r, zero, _CMP_GT_OQ));
		s = _mm256_sqrt_ps(r);
		b = _mm256_sub_ps(_mm256_sub_ps(_mm256_mul_ps(s, g1), _mm256_mul_ps(e, g2)),
						  _mm256_mul_ps(kk, _mm256_add_ps(_mm256_add_ps(mm, s), e)));
		b = _mm256_and_ps(b, _mm256_cmp_ps(b, zero, _CMP_GT_OQ));
		b = _mm256_mul_ps(_mm256_mul_ps(b, b), g3);
		_mm256_storeu_ps(raw + i, b);
	}
	ivf_ref_sq8_l2_bounds(raw + i, err + i, cn + i, n - i, asq, g, k, mag);
}

/*
 * The assignment's row scans: ivf_ref_row_min_hi, _ip and ivf_ref_row_lo_pass,
 * 8 lanes at a time; a tail is copied into padded lanes (NaN rows, ignored
 * by minps, which keeps its second operand as the reference's "h < m"
 * does; masked off in the pass).  Same operations, same order, never
 * fused.
 */
IVF_ALWAYS_INLINE float
min_lanes256(__m256 v, float m)
{
	float		t[8];
	int			i;

	_mm256_storeu_ps(t, v);
	for (i = 0; i < 8; i++)
		if (t[i] < m)
			m = t[i];
	return m;
}

/* the last n - j < 8 entries of row and q in 8 lanes: row NaN, q 0 beyond */
IVF_ALWAYS_INLINE void
row_tail256(const float *row, const float *q, size_t j, size_t n,
			__m256 *r, __m256 *qq)
{
	float		rb[8];
	float		qb[8];
	size_t		i;

	for (i = 0; i < 8; i++)
	{
		rb[i] = (j + i < n) ? row[j + i] : NAN;
		qb[i] = (j + i < n) ? q[j + i] : 0.0f;
	}
	*r = _mm256_loadu_ps(rb);
	*qq = _mm256_loadu_ps(qb);
}

static float
row_min_hi_avx2(const float *row, const float *q, float p, size_t n, float m)
{
	const __m256 vp = _mm256_set1_ps(p);
	__m256		m0 = _mm256_set1_ps(m);
	__m256		m1 = m0;
	size_t		j = 0;

	for (; j + 16 <= n; j += 16)
	{
		__m256		h0 = _mm256_add_ps(_mm256_add_ps(vp, _mm256_loadu_ps(q + j)),
									   _mm256_loadu_ps(row + j));
		__m256		h1 = _mm256_add_ps(_mm256_add_ps(vp, _mm256_loadu_ps(q + j + 8)),
									   _mm256_loadu_ps(row + j + 8));

		m0 = _mm256_min_ps(h0, m0);
		m1 = _mm256_min_ps(h1, m1);
	}
	for (; j < n; j += 8)
	{
		__m256		r;
		__m256		qq;

		if (n - j >= 8)
		{
			r = _mm256_loadu_ps(row + j);
			qq = _mm256_loadu_ps(q + j);
		}
		else
			row_tail256(row, q, j, n, &r, &qq);
		m0 = _mm256_min_ps(_mm256_add_ps(_mm256_add_ps(vp, qq), r), m0);
	}
	return min_lanes256(_mm256_min_ps(m0, m1), m);
}

static float
row_min_hi_ip_avx2(const float *row, const float *q, float p, float e,
				   size_t n, float m)
{
	const __m256 vp = _mm256_set1_ps(p);
	const __m256 ve = _mm256_set1_ps(e);
	__m256		m0 = _mm256_set1_ps(m);
	__m256		m1 = m0;
	size_t		j = 0;

	for (; j + 16 <= n; j += 16)
	{
		__m256		h0 = _mm256_add_ps(_mm256_loadu_ps(row + j),
									   _mm256_add_ps(_mm256_mul_ps(vp, _mm256_loadu_ps(q + j)), ve));
		__m256		h1 = _mm256_add_ps(_mm256_loadu_ps(row + j + 8),
									   _mm256_add_ps(_mm256_mul_ps(vp, _mm256_loadu_ps(q + j + 8)), ve));

		m0 = _mm256_min_ps(h0, m0);
		m1 = _mm256_min_ps(h1, m1);
	}
	for (; j < n; j += 8)
	{
		__m256		r;
		__m256		qq;

		if (n - j >= 8)
		{
			r = _mm256_loadu_ps(row + j);
			qq = _mm256_loadu_ps(q + j);
		}
		else
			row_tail256(row, q, j, n, &r, &qq);
		m0 = _mm256_min_ps(_mm256_add_ps(r, _mm256_add_ps(_mm256_mul_ps(vp, qq), ve)), m0);
	}
	return min_lanes256(_mm256_min_ps(m0, m1), m);
}

static size_t
row_lo_pass_avx2(const float *row, const float *q, float p, float e, int ip,
				 size_t n, float thr, uint32_t *idx)
{
	const __m256 vp = _mm256_set1_ps(p);
	const __m256 ve = _mm256_set1_ps(e);
	const __m256 vt = _mm256_set1_ps(thr);
	size_t		c = 0;
	size_t		j;

	for (j = 0; j < n; j += 8)
	{
		__m256		r;
		__m256		qq;
		__m256		lo;
		unsigned	pass;

		if (n - j >= 8)
		{
			r = _mm256_loadu_ps(row + j);
			qq = _mm256_loadu_ps(q + j);
		}
		else
			row_tail256(row, q, j, n, &r, &qq);
		if (ip)
			lo = _mm256_sub_ps(r, _mm256_add_ps(_mm256_mul_ps(vp, qq), ve));
		else
			lo = _mm256_add_ps(_mm256_add_ps(vp, qq), r);
		/* not greater, unordered: NaN passes */
		pass = (unsigned) _mm256_movemask_ps(_mm256_cmp_ps(lo, vt, _CMP_NGT_UQ));
		if (n - j < 8)
			pass &= (1u << (n - j)) - 1;
		while (pass != 0)
		{
			idx[c++] = (uint32_t) (j + __builtin_ctz(pass));
			pass &= pass - 1;
		}
	}
	return c;
}

void
ivf_kernels_fill_avx2(IvfKernels *k)
{
	k->level = IVF_SIMD_AVX2;
	k->l2sq = l2sq_avx2;
	k->dot = dot_avx2;
	k->l1 = l1_avx2;
	k->norm_sq = norm_sq_avx2;
	k->cosine_parts = cosine_parts_avx2;
	k->l2sq_block = l2sq_block_avx2;
	k->dot_block = dot_block_avx2;
	k->norm_sq_block = norm_sq_block_avx2;
	k->sq8_dot_block = sq8_dot_block_avx2;
	k->sq8_l2_bounds = sq8_l2_bounds_avx2;
	k->row_min_hi = row_min_hi_avx2;
	k->row_min_hi_ip = row_min_hi_ip_avx2;
	k->row_lo_pass = row_lo_pass_avx2;
	k->add_f64 = add_f64_avx2;
}

#else

/* keep the translation unit non-empty on other architectures */
typedef int ivf_distance_avx2_unused;

#endif							/* __x86_64__ */
