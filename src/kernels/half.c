/*-------------------------------------------------------------------------
 *
 * half.c
 *	  Scalar IEEE binary16 conversion and the scalar references of the
 *	  float-query-against-half distance kernels (half.h).
 *
 * Bit manipulation only, so the results do not depend on the compiler's
 * _Float16 support or on the floating-point environment.
 *
 *-------------------------------------------------------------------------
 */
#include "half.h"

#include <string.h>

float
ivf_half_to_float(uint16_t h)
{
	uint32_t	sign = (uint32_t) (h & 0x8000) << 16;
	uint32_t	e = (h >> 10) & 0x1F;
	uint32_t	m = h & 0x3FF;
	uint32_t	bits;
	float		f;

	if (e == 0x1F)
	{
		/* infinity, or NaN made quiet with its payload kept */
		bits = sign | 0x7F800000 | (m != 0 ? 0x400000 | (m << 13) : 0);
	}
	else if (e == 0)
	{
		/* zero or subnormal: m * 2^-24, exact in float */
		f = (float) m * (1.0f / 16777216.0f);
		memcpy(&bits, &f, sizeof(bits));
		bits |= sign;
	}
	else
		bits = sign | ((e + 112) << 23) | (m << 13);

	memcpy(&f, &bits, sizeof(f));
	return f;
}

IvfHalfStatus
ivf_float_to_half(float f, uint16_t *out)
{
	uint32_t	x;
	uint32_t	absx;
	uint16_t	sign;
	uint32_t	e;
	uint32_t	v;
	uint32_t	rem;

	memcpy(&x, &f, sizeof(x));
	sign = (uint16_t) ((x >> 16) & 0x8000);
	absx = x & 0x7FFFFFFF;

	if (absx >= 0x7F800000)
	{
		if (absx > 0x7F800000)
		{
			*out = (uint16_t) (sign | 0x7E00 | ((absx >> 13) & 0x3FF));
			return IVF_HALF_NAN;
		}
		*out = (uint16_t) (sign | 0x7C00);
		return IVF_HALF_INFINITE;
	}

	/* 65520 is halfway between 65504 and 65536 and rounds to even: up */
	if (absx >= 0x477FF000)
	{
		*out = (uint16_t) (sign | 0x7C00);
		return IVF_HALF_OVERFLOW;
	}

	e = absx >> 23;
	if (e >= 113)
	{
		/* normal half: rebias the exponent, round away 13 bits */
		v = absx - (112u << 23);
		rem = v & 0x1FFF;
		v >>= 13;
		if (rem > 0x1000 || (rem == 0x1000 && (v & 1)))
			v++;				/* a carry moves into the exponent */
		*out = (uint16_t) (sign | v);
		return IVF_HALF_OK;
	}

	/* below 2^-25 (and float subnormals): rounds to zero */
	if (e < 102)
	{
		*out = sign;
		return IVF_HALF_OK;
	}

	/* subnormal half m * 2^-24, m = mant * 2^(e - 126) rounded */
	{
		uint32_t	mant = (absx & 0x7FFFFF) | 0x800000;
		uint32_t	shift = 126 - e;	/* 14..24 */
		uint32_t	halfway = 1u << (shift - 1);

		v = mant >> shift;
		rem = mant & ((1u << shift) - 1);
		if (rem > halfway || (rem == halfway && (v & 1)))
			v++;				/* 0x400 is the smallest normal: right */
		*out = (uint16_t) (sign | v);
	}
	return IVF_HALF_OK;
}

void
ivf_ref_half_to_float(const uint16_t *h, float *out, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = ivf_half_to_float(h[i]);
}

size_t
ivf_ref_float_to_half(const float *x, uint16_t *out, size_t n)
{
	size_t		bad = n;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		if (ivf_float_to_half(x[i], &out[i]) != IVF_HALF_OK && bad == n)
			bad = i;
	}
	return bad;
}

float
ivf_ref_l2sq_f16(const float *q, const uint16_t *x, size_t d)
{
	float		s = 0.0f;
	size_t		i;

	for (i = 0; i < d; i++)
	{
		float		t = q[i] - ivf_half_to_float(x[i]);

		s += t * t;
	}
	return s;
}

float
ivf_ref_dot_f16(const float *q, const uint16_t *x, size_t d)
{
	float		s = 0.0f;
	size_t		i;

	for (i = 0; i < d; i++)
		s += q[i] * ivf_half_to_float(x[i]);
	return s;
}

void
ivf_ref_l2sq_f16_block(const float *q, const uint16_t *x, size_t n,
					   size_t d, float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = ivf_ref_l2sq_f16(q, x + i * d, d);
}

void
ivf_ref_dot_f16_block(const float *q, const uint16_t *x, size_t n,
					  size_t d, float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = ivf_ref_dot_f16(q, x + i * d, d);
}
