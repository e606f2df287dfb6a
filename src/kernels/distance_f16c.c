/*-------------------------------------------------------------------------
 *
 * distance_f16c.c
 *	  F16C (+ AVX2 + FMA) half-float kernels: conversion both ways and a
 *	  float query against half vectors.  Compiled with -mavx2 -mfma -mf16c;
 *	  distance.c installs them in the AVX2 and AVX-512 tables only after
 *	  CPUID says F16C is there too.
 *
 * vcvtph2ps widens 8 halves exactly; vcvtps2ph rounds 8 floats to nearest
 * even (the rounding is given in the instruction, so MXCSR does not
 * matter).  The distances follow distance_avx2.c: 32 elements a step into
 * four accumulators, up to three whole 8-element chunks, then the last
 * 1..7: the query through a masked load, the halves copied into a zeroed
 * 8-lane buffer (there is no 16-bit masked load), so nothing past x + d is
 * read.  For rows under 256 dimensions the block kernels run the pair
 * routine's operations on two rows at a time, in the pair routine's order,
 * so block and pair results are bitwise equal (test_half checks it): the
 * query is loaded once per two rows and eight accumulator chains are in
 * flight.  At d = 128 on rows in L2 that took l2sq_f16_block from 23 to
 * 11.6 ns per row (bench_kernels, AVX2 level), below the float
 * l2sq_block's 13 ns on the same rows; longer rows run the pair routine on
 * each row (see F16_ROWS2_MAX_BYTES).
 *
 *-------------------------------------------------------------------------
 */
#include "distance_isa.h"
#include "half.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#define IVF_ALWAYS_INLINE static inline __attribute__((always_inline))

/*
 * Rows shorter than this many bytes go through the block kernels two at a
 * time; longer ones one at a time.  Two rows are two read streams d halves
 * apart: on 8 kB pages visited in random order from DRAM (a list scan of
 * an index larger than the caches) that was as fast as one row at a time
 * for d = 128 and 200 but 21% slower at 256 and 54% at 384, while in cache
 * two rows were 12-30% faster at every d.  Software prefetch (as the SQ8
 * kernels have) won back part of the loss but cost as much in cache.
 */
#define F16_ROWS2_MAX_BYTES	512

/* 8 all-ones lanes then 8 zero lanes; a window of 8 gives a tail mask */
static const int32_t f16_tail_mask_tab[16] = {
	-1, -1, -1, -1, -1, -1, -1, -1,
	0, 0, 0, 0, 0, 0, 0, 0
};

IVF_ALWAYS_INLINE __m256i
f16_tail_mask(size_t r)
{
	return _mm256_loadu_si256((const __m256i *) (f16_tail_mask_tab + 8 - r));
}

IVF_ALWAYS_INLINE float
f16_hsum256(__m256 v)
{
	__m128		v4 = _mm_add_ps(_mm256_castps256_ps128(v),
								_mm256_extractf128_ps(v, 1));
	__m128		v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
	__m128		v1 = _mm_add_ss(v2, _mm_movehdup_ps(v2));

	return _mm_cvtss_f32(v1);
}

/* 8 halves at p as floats */
IVF_ALWAYS_INLINE __m256
load_h8(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) p));
}

/* the r < 8 halves at p as floats, zero beyond, reading only p[0..r-1] */
IVF_ALWAYS_INLINE __m256
load_h_tail(const uint16_t *p, size_t r)
{
	uint16_t	buf[8] = {0};

	memcpy(buf, p, r * sizeof(uint16_t));
	return load_h8(buf);
}

static void
half_to_float_f16c(const uint16_t *h, float *out, size_t n)
{
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(out + i, load_h8(h + i));
	if (i < n)
		_mm256_maskstore_ps(out + i, f16_tail_mask(n - i),
							load_h_tail(h + i, n - i));
}

/* lanes of 8 halves that are NaN or infinite, one bit per byte pair */
IVF_ALWAYS_INLINE unsigned
nonfinite_mask(__m128i h)
{
	const __m128i e = _mm_set1_epi16(0x7C00);

	return (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, e), e));
}

static size_t
float_to_half_f16c(const float *x, uint16_t *out, size_t n)
{
	size_t		bad = n;
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
	{
		__m128i		h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
										_MM_FROUND_TO_NEAREST_INT);
		unsigned	m;

		_mm_storeu_si128((__m128i *) (out + i), h);
		m = nonfinite_mask(h);
		if (m != 0 && bad == n)
			bad = i + (size_t) (__builtin_ctz(m) / 2);
	}
	if (i < n)
	{
		size_t		r = n - i;
		uint16_t	buf[8];
		__m128i		h;
		unsigned	m;

		h = _mm256_cvtps_ph(_mm256_maskload_ps(x + i, f16_tail_mask(r)),
							_MM_FROUND_TO_NEAREST_INT);
		_mm_storeu_si128((__m128i *) buf, h);
		memcpy(out + i, buf, r * sizeof(uint16_t));
		/* masked-out lanes are +0: they never count */
		m = nonfinite_mask(h);
		if (m != 0 && bad == n)
			bad = i + (size_t) (__builtin_ctz(m) / 2);
	}
	return bad;
}

IVF_ALWAYS_INLINE float
l2sq_f16_row(const float *q, const uint16_t *x, size_t d)
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
		t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), load_h8(x + i));
		t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), load_h8(x + i + 8));
		t2 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 16), load_h8(x + i + 16));
		t3 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 24), load_h8(x + i + 24));
		s0 = _mm256_fmadd_ps(t0, t0, s0);
		s1 = _mm256_fmadd_ps(t1, t1, s1);
		s2 = _mm256_fmadd_ps(t2, t2, s2);
		s3 = _mm256_fmadd_ps(t3, t3, s3);
	}
	if (i + 8 <= d)
	{
		t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), load_h8(x + i));
		s0 = _mm256_fmadd_ps(t0, t0, s0);
		i += 8;
		if (i + 8 <= d)
		{
			t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i), load_h8(x + i));
			s1 = _mm256_fmadd_ps(t1, t1, s1);
			i += 8;
			if (i + 8 <= d)
			{
				t2 = _mm256_sub_ps(_mm256_loadu_ps(q + i), load_h8(x + i));
				s2 = _mm256_fmadd_ps(t2, t2, s2);
				i += 8;
			}
		}
	}
	if (i < d)
	{
		t3 = _mm256_sub_ps(_mm256_maskload_ps(q + i, f16_tail_mask(d - i)),
						   load_h_tail(x + i, d - i));
		s3 = _mm256_fmadd_ps(t3, t3, s3);
	}
	return f16_hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

IVF_ALWAYS_INLINE float
dot_f16_row(const float *q, const uint16_t *x, size_t d)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	__m256		s2 = _mm256_setzero_ps();
	__m256		s3 = _mm256_setzero_ps();
	size_t		i = 0;

	for (; i + 32 <= d; i += 32)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_h8(x + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load_h8(x + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), load_h8(x + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), load_h8(x + i + 24), s3);
	}
	if (i + 8 <= d)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_h8(x + i), s0);
		i += 8;
		if (i + 8 <= d)
		{
			s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_h8(x + i), s1);
			i += 8;
			if (i + 8 <= d)
			{
				s2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_h8(x + i), s2);
				i += 8;
			}
		}
	}
	if (i < d)
		s3 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, f16_tail_mask(d - i)),
							 load_h_tail(x + i, d - i), s3);
	return f16_hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static float
l2sq_f16_f16c(const float *q, const uint16_t *x, size_t d)
{
	return l2sq_f16_row(q, x, d);
}

static float
dot_f16_f16c(const float *q, const uint16_t *x, size_t d)
{
	return dot_f16_row(q, x, d);
}

/*
 * Two rows at a time: the same operations as l2sq_f16_row on each row, in
 * the same order (so block and pair results stay bitwise equal), with the
 * query loaded once for both rows and eight independent accumulator
 * chains instead of four.  Three rows would need twelve accumulators and
 * the temporaries, more than the sixteen ymm registers.
 */
IVF_ALWAYS_INLINE void
l2sq_f16_rows2(const float *q, const uint16_t *x, const uint16_t *y, size_t d,
			   float *out)
{
	__m256		a0 = _mm256_setzero_ps(),
				a1 = _mm256_setzero_ps(),
				a2 = _mm256_setzero_ps(),
				a3 = _mm256_setzero_ps();
	__m256		b0 = _mm256_setzero_ps(),
				b1 = _mm256_setzero_ps(),
				b2 = _mm256_setzero_ps(),
				b3 = _mm256_setzero_ps();
	__m256		qv,
				t;
	size_t		i = 0;

#define L2_STEP(acc_a, acc_b, off) \
	do { \
		qv = _mm256_loadu_ps(q + (off)); \
		t = _mm256_sub_ps(qv, load_h8(x + (off))); \
		acc_a = _mm256_fmadd_ps(t, t, acc_a); \
		t = _mm256_sub_ps(qv, load_h8(y + (off))); \
		acc_b = _mm256_fmadd_ps(t, t, acc_b); \
	} while (0)

	for (; i + 32 <= d; i += 32)
	{
		L2_STEP(a0, b0, i);
		L2_STEP(a1, b1, i + 8);
		L2_STEP(a2, b2, i + 16);
		L2_STEP(a3, b3, i + 24);
	}
	if (i + 8 <= d)
	{
		L2_STEP(a0, b0, i);
		i += 8;
		if (i + 8 <= d)
		{
			L2_STEP(a1, b1, i);
			i += 8;
			if (i + 8 <= d)
			{
				L2_STEP(a2, b2, i);
				i += 8;
			}
		}
	}
#undef L2_STEP
	if (i < d)
	{
		qv = _mm256_maskload_ps(q + i, f16_tail_mask(d - i));
		t = _mm256_sub_ps(qv, load_h_tail(x + i, d - i));
		a3 = _mm256_fmadd_ps(t, t, a3);
		t = _mm256_sub_ps(qv, load_h_tail(y + i, d - i));
		b3 = _mm256_fmadd_ps(t, t, b3);
	}
	out[0] = f16_hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	out[1] = f16_hsum256(_mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3)));
}

/* dot_f16_row on two rows, as l2sq_f16_rows2 */
IVF_ALWAYS_INLINE void
dot_f16_rows2(const float *q, const uint16_t *x, const uint16_t *y, size_t d,
			  float *out)
{
	__m256		a0 = _mm256_setzero_ps(),
				a1 = _mm256_setzero_ps(),
				a2 = _mm256_setzero_ps(),
				a3 = _mm256_setzero_ps();
	__m256		b0 = _mm256_setzero_ps(),
				b1 = _mm256_setzero_ps(),
				b2 = _mm256_setzero_ps(),
				b3 = _mm256_setzero_ps();
	__m256		qv;
	size_t		i = 0;

#define DOT_STEP(acc_a, acc_b, off) \
	do { \
		qv = _mm256_loadu_ps(q + (off)); \
		acc_a = _mm256_fmadd_ps(qv, load_h8(x + (off)), acc_a); \
		acc_b = _mm256_fmadd_ps(qv, load_h8(y + (off)), acc_b); \
	} while (0)

	for (; i + 32 <= d; i += 32)
	{
		DOT_STEP(a0, b0, i);
		DOT_STEP(a1, b1, i + 8);
		DOT_STEP(a2, b2, i + 16);
		DOT_STEP(a3, b3, i + 24);
	}
	if (i + 8 <= d)
	{
		DOT_STEP(a0, b0, i);
		i += 8;
		if (i + 8 <= d)
		{
			DOT_STEP(a1, b1, i);
			i += 8;
			if (i + 8 <= d)
			{
				DOT_STEP(a2, b2, i);
				i += 8;
			}
		}
	}
#undef DOT_STEP
	if (i < d)
	{
		qv = _mm256_maskload_ps(q + i, f16_tail_mask(d - i));
		a3 = _mm256_fmadd_ps(qv, load_h_tail(x + i, d - i), a3);
		b3 = _mm256_fmadd_ps(qv, load_h_tail(y + i, d - i), b3);
	}
	out[0] = f16_hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	out[1] = f16_hsum256(_mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3)));
}

static void
l2sq_f16_block_f16c(const float *q, const uint16_t *x, size_t n, size_t d,
					float *out)
{
	size_t		i = 0;

	if (d * sizeof(uint16_t) < F16_ROWS2_MAX_BYTES)
		for (; i + 2 <= n; i += 2)
			l2sq_f16_rows2(q, x + i * d, x + (i + 1) * d, d, out + i);
	for (; i < n; i++)
		out[i] = l2sq_f16_row(q, x + i * d, d);
}

static void
dot_f16_block_f16c(const float *q, const uint16_t *x, size_t n, size_t d,
				   float *out)
{
	size_t		i = 0;

	if (d * sizeof(uint16_t) < F16_ROWS2_MAX_BYTES)
		for (; i + 2 <= n; i += 2)
			dot_f16_rows2(q, x + i * d, x + (i + 1) * d, d, out + i);
	for (; i < n; i++)
		out[i] = dot_f16_row(q, x + i * d, d);
}

void
ivf_kernels_fill_f16c(IvfKernels *k)
{
	k->half_to_float = half_to_float_f16c;
	k->float_to_half = float_to_half_f16c;
	k->l2sq_f16 = l2sq_f16_f16c;
	k->dot_f16 = dot_f16_f16c;
	k->l2sq_f16_block = l2sq_f16_block_f16c;
	k->dot_f16_block = dot_f16_block_f16c;
}

#else

/* keep the translation unit non-empty on other architectures */
typedef int ivf_distance_f16c_unused;

#endif							/* __x86_64__ */
