/*-------------------------------------------------------------------------
 *
 * test_half.c
 *	  Standalone test of the half-float kernels (half.h, and the entries
 *	  of the dispatch table that use them): conversion both ways and a
 *	  float query against half vectors, every compiled level against the
 *	  scalar reference.
 *
 * The scalar conversion is checked on its own first: all 65,536 half
 * patterns against a formula in double, float to half on the edge cases
 * (subnormals, ties, the largest half, overflow, infinities, NaN) with the
 * expected bits, and on random floats of every exponent by the definition
 * of rounding to nearest even (no half is closer; a tie goes to the even
 * pattern).  Then each level must give the same bits as the scalar
 * conversion, and the same first-bad index; distances must be identical on
 * integer inputs and within the summation tolerance on random ones.  Inputs
 * end right before a PROT_NONE page, so reading past a vector crashes.
 *
 *-------------------------------------------------------------------------
 */
#include "distance.h"
#include "half.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const size_t test_dims[] = {
	1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 127, 128, 384, 784, 1024,
	1536, 16000
};
#define N_TEST_DIMS (sizeof(test_dims) / sizeof(test_dims[0]))

static const size_t test_rows[] = {1, 2, 5, 33};
#define N_TEST_ROWS (sizeof(test_rows) / sizeof(test_rows[0]))

/* the value of a finite half, computed independently in double */
static double
half_value(uint16_t h)
{
	int			e = (h >> 10) & 0x1F;
	int			m = h & 0x3FF;
	double		v = (e == 0) ? ldexp((double) m, -24) : ldexp(1024.0 + m, e - 25);

	return (h & 0x8000) ? -v : v;
}

static void
test_half_to_float_all(void)
{
	uint32_t	h;

	group_begin("scalar: all 65536 halves to float");
	for (h = 0; h <= 0xFFFF; h++)
	{
		float		f = ivf_half_to_float((uint16_t) h);
		int			e = (h >> 10) & 0x1F;
		int			m = h & 0x3FF;

		if (e == 0x1F && m == 0)
			check(isinf(f) && (signbit(f) != 0) == ((h & 0x8000) != 0),
				  "0x%04x should be an infinity", h);
		else if (e == 0x1F)
			check(float_bits(f) == (((h & 0x8000u) << 16) | 0x7FC00000u | ((uint32_t) m << 13)),
				  "0x%04x: NaN 0x%08x, expected quiet with the payload", h, float_bits(f));
		else
			check((double) f == half_value((uint16_t) h) &&
				  (signbit(f) != 0) == ((h & 0x8000) != 0),
				  "0x%04x: %.9g, expected %.9g", h, f, half_value((uint16_t) h));
		/* and back: every finite half is a float that converts to itself */
		if (e != 0x1F)
		{
			uint16_t	back;

			check(ivf_float_to_half(f, &back) == IVF_HALF_OK && back == h,
				  "0x%04x does not round-trip (0x%04x)", h, back);
		}
	}
	group_end();
}

typedef struct EdgeCase
{
	float		f;
	uint16_t	bits;
	IvfHalfStatus status;
} EdgeCase;

static EdgeCase edge_cases[32];
static int	n_edge_cases;

static void
add_edge(float f, uint16_t bits, IvfHalfStatus status)
{
	edge_cases[n_edge_cases].f = f;
	edge_cases[n_edge_cases].bits = bits;
	edge_cases[n_edge_cases].status = status;
	n_edge_cases++;
}

static void
make_edge_cases(void)
{
	n_edge_cases = 0;
	add_edge(0.0f, 0x0000, IVF_HALF_OK);
	add_edge(-0.0f, 0x8000, IVF_HALF_OK);
	add_edge(1.0f, 0x3C00, IVF_HALF_OK);
	add_edge(-2.0f, 0xC000, IVF_HALF_OK);
	add_edge(65504.0f, 0x7BFF, IVF_HALF_OK);	/* largest half */
	add_edge(-65504.0f, 0xFBFF, IVF_HALF_OK);
	add_edge(65519.996f, 0x7BFF, IVF_HALF_OK);	/* just below the tie */
	add_edge(65520.0f, 0x7C00, IVF_HALF_OVERFLOW);	/* tie rounds to even: up */
	add_edge(-65520.0f, 0xFC00, IVF_HALF_OVERFLOW);
	add_edge(65536.0f, 0x7C00, IVF_HALF_OVERFLOW);
	add_edge(1e10f, 0x7C00, IVF_HALF_OVERFLOW);
	add_edge(FLT_MAX, 0x7C00, IVF_HALF_OVERFLOW);
	add_edge(INFINITY, 0x7C00, IVF_HALF_INFINITE);
	add_edge(-INFINITY, 0xFC00, IVF_HALF_INFINITE);
	add_edge(ldexpf(1.0f, -24), 0x0001, IVF_HALF_OK);	/* smallest subnormal */
	add_edge(ldexpf(1.0f, -25), 0x0000, IVF_HALF_OK);	/* tie to even: 0 */
	add_edge(-ldexpf(1.0f, -25), 0x8000, IVF_HALF_OK);
	add_edge(ldexpf(1.5f, -25), 0x0001, IVF_HALF_OK);	/* above the tie */
	add_edge(ldexpf(3.0f, -25), 0x0002, IVF_HALF_OK);	/* 1.5 ulp: tie, even 2 */
	add_edge(ldexpf(5.0f, -25), 0x0002, IVF_HALF_OK);	/* 2.5 ulp: tie, even 2 */
	add_edge(ldexpf(1023.0f, -24), 0x03FF, IVF_HALF_OK);	/* largest subnormal */
	add_edge(ldexpf(2047.0f, -25), 0x0400, IVF_HALF_OK);	/* tie: up to normal */
	add_edge(ldexpf(1.0f, -14), 0x0400, IVF_HALF_OK);	/* smallest normal */
	add_edge(1.0f + ldexpf(1.0f, -11), 0x3C00, IVF_HALF_OK);	/* tie: even */
	add_edge(1.0f + ldexpf(3.0f, -11), 0x3C02, IVF_HALF_OK);	/* tie: even */
	add_edge(2049.0f, 0x6800, IVF_HALF_OK);	/* tie between 2048 and 2050 */
	add_edge(2051.0f, 0x6802, IVF_HALF_OK);	/* tie between 2050 and 2052 */
	add_edge(bits_float(0x00000001), 0x0000, IVF_HALF_OK);	/* float subnormal */
	add_edge(bits_float(0x80000001), 0x8000, IVF_HALF_OK);
	add_edge(NAN, 0x7E00, IVF_HALF_NAN);
}

static void
test_float_to_half_edges(void)
{
	int			i;

	group_begin("scalar: float to half on edge cases");
	make_edge_cases();
	for (i = 0; i < n_edge_cases; i++)
	{
		uint16_t	h = 0;
		IvfHalfStatus st = ivf_float_to_half(edge_cases[i].f, &h);

		check(st == edge_cases[i].status, "%.9g: status %d, expected %d",
			  edge_cases[i].f, (int) st, (int) edge_cases[i].status);
		if (edge_cases[i].status == IVF_HALF_NAN)
			check((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0,
				  "NaN gave 0x%04x", h);
		else
			check(h == edge_cases[i].bits, "%.9g: 0x%04x, expected 0x%04x",
				  edge_cases[i].f, h, edge_cases[i].bits);
	}
	group_end();
}

/*
 * Round to nearest even by definition: for a finite result h of f, no
 * finite neighbour of h is closer, and at a tie h is even.
 */
static void
test_float_to_half_random(void)
{
	int			i;

	group_begin("scalar: float to half on random floats (nearest, ties to even)");
	rng_seed(1601);
	for (i = 0; i < 2000000; i++)
	{
		/* a random exponent across the half range and a little beyond */
		float		f = ldexpf(rng_float(1.0f, 2.0f), rng_int(-27, 16));
		uint16_t	h;
		IvfHalfStatus st;

		if (rng_next() & 1)
			f = -f;
		if (i % 7 == 0)
		{
			/* exactly halfway between two halves, often */
			uint16_t	a = (uint16_t) rng_int(0, 0x7BFE);

			f = (float) ((half_value(a) + half_value((uint16_t) (a + 1))) / 2);
		}
		st = ivf_float_to_half(f, &h);
		if (fabsf(f) >= 65520.0f)
		{
			check(st == IVF_HALF_OVERFLOW, "%.9g should overflow", f);
			continue;
		}
		if (!check(st == IVF_HALF_OK, "%.9g: status %d", f, (int) st))
			continue;
		{
			double		err = fabs((double) f - half_value(h));
			uint16_t	mag = h & 0x7FFF;
			uint16_t	sgn = h & 0x8000;
			double		lo = (mag > 0) ? fabs((double) f - half_value((uint16_t) (sgn | (mag - 1)))) : INFINITY;
			double		hi = (mag < 0x7BFF) ? fabs((double) f - half_value((uint16_t) (sgn | (mag + 1)))) : INFINITY;

			check(err <= lo && err <= hi, "%.9g -> 0x%04x is not nearest", f, h);
			if (err == lo || err == hi)
				check((h & 1) == 0, "%.9g -> 0x%04x: a tie should go to even", f, h);
		}
	}
	group_end();
}

static void
test_conversion_level(const IvfKernels *k)
{
	uint16_t   *all = xmalloc(65536 * sizeof(uint16_t));
	float	   *ref = xmalloc(65536 * sizeof(float));
	float	   *got = xmalloc(65536 * sizeof(float));
	uint16_t   *href = xmalloc(65536 * sizeof(uint16_t));
	uint16_t   *hgot = xmalloc(65536 * sizeof(uint16_t));
	size_t		i;
	size_t		n;

	group_begin("%s: conversion vs scalar (all halves, edge cases, random, first bad)",
				ivf_simd_level_name(k->level));
	for (i = 0; i < 65536; i++)
		all[i] = (uint16_t) i;
	ivf_ref_half_to_float(all, ref, 65536);
	/* every length 0..40 from every start offset, then all at once */
	for (n = 0; n <= 40; n++)
	{
		Guarded		gh,
					gf;

		guarded_alloc(&gh, n * sizeof(uint16_t), 0);
		guarded_alloc(&gf, n * sizeof(float), 0);
		memcpy(gh.p, all + 0x7BF0, n * sizeof(uint16_t));
		k->half_to_float(gh.p, gf.p, n);
		for (i = 0; i < n; i++)
			check(same_float(((float *) gf.p)[i], ref[0x7BF0 + i], 0),
				  "half_to_float n=%zu [%zu]", n, i);
		guarded_free(&gh);
		guarded_free(&gf);
	}
	k->half_to_float(all, got, 65536);
	for (i = 0; i < 65536; i++)
		check(same_float(got[i], ref[i], 0), "half_to_float 0x%04zx: 0x%08x, expected 0x%08x",
			  i, float_bits(got[i]), float_bits(ref[i]));

	/* the floats of all halves convert back to themselves (NaNs: first bad) */
	check(k->float_to_half(ref, hgot, 0x7C00) == 0x7C00, "finite halves are all finite");
	for (i = 0; i < 0x7C00; i++)
		check(hgot[i] == i, "float_to_half(half 0x%04zx) = 0x%04x", i, hgot[i]);

	/* edge cases, one at a time and all together */
	make_edge_cases();
	{
		float		ef[32];
		uint16_t	eh[32];
		uint16_t	er[32];
		size_t		bad_ref;
		size_t		bad_got;
		int			j;

		for (j = 0; j < n_edge_cases; j++)
			ef[j] = edge_cases[j].f;
		bad_ref = ivf_ref_float_to_half(ef, er, n_edge_cases);
		bad_got = k->float_to_half(ef, eh, n_edge_cases);
		check(bad_ref == bad_got, "edge cases: first bad %zu, expected %zu", bad_got, bad_ref);
		for (j = 0; j < n_edge_cases; j++)
		{
			if (edge_cases[j].status == IVF_HALF_NAN)
				check((eh[j] & 0x7C00) == 0x7C00 && (eh[j] & 0x3FF) != 0,
					  "edge NaN gave 0x%04x", eh[j]);
			else
				check(eh[j] == er[j], "edge %.9g: 0x%04x, expected 0x%04x",
					  ef[j], eh[j], er[j]);
		}
	}

	/* random floats over the whole half range */
	rng_seed(1602);
	{
		size_t		rn = 65521;	/* fits the buffers above */
		float	   *rf = xmalloc(rn * sizeof(float));

		for (i = 0; i < rn; i++)
			rf[i] = ldexpf(rng_float(-2.0f, 2.0f), rng_int(-26, 15));
		check(ivf_ref_float_to_half(rf, href, rn) == rn &&
			  k->float_to_half(rf, hgot, rn) == rn, "random in range: all finite");
		for (i = 0; i < rn; i++)
			check(hgot[i] == href[i], "random %.9g: 0x%04x, expected 0x%04x",
				  rf[i], hgot[i], href[i]);
		free(rf);
	}

	/* the first bad element is found wherever it is, whatever follows it */
	for (n = 1; n <= 40; n++)
	{
		size_t		p;

		for (p = 0; p < n; p++)
		{
			Guarded		gf,
						gh;
			float	   *x;
			size_t		got_bad;

			guarded_alloc(&gf, n * sizeof(float), 0);
			guarded_alloc(&gh, n * sizeof(uint16_t), 0);
			x = gf.p;
			for (i = 0; i < n; i++)
				x[i] = (float) i - 3.5f;
			x[p] = (p % 3 == 0) ? 70000.0f : (p % 3 == 1) ? NAN : -INFINITY;
			if (p + 2 < n)
				x[p + 2] = NAN;
			got_bad = k->float_to_half(x, gh.p, n);
			check(got_bad == p, "n=%zu: first bad %zu, expected %zu", n, got_bad, p);
			for (i = 0; i < n; i++)
				if (i != p && i != p + 2)
					check(((uint16_t *) gh.p)[i] != 0 || x[i] == 0.0f,
						  "n=%zu: element %zu not written", n, i);
			guarded_free(&gf);
			guarded_free(&gh);
		}
	}
	group_end();
	free(all);
	free(ref);
	free(got);
	free(href);
	free(hgot);
}

static void
test_distances_level(const IvfKernels *k, int integer_inputs)
{
	size_t		di,
				ri;

	group_begin("%s: float query vs half vectors vs reference, %s",
				ivf_simd_level_name(k->level),
				integer_inputs ? "integer inputs (exact)" : "random (tolerance)");
	rng_seed(integer_inputs ? 1603 : 1604);
	for (di = 0; di < N_TEST_DIMS; di++)
	{
		for (ri = 0; ri < N_TEST_ROWS; ri++)
		{
			size_t		d = test_dims[di];
			size_t		n = test_rows[ri];
			Guarded		gq,
						gx;
			float	   *q;
			uint16_t   *x;
			float	   *xf = xmalloc(n * d * sizeof(float));
			float	   *got = xmalloc(n * sizeof(float));
			float	   *ref = xmalloc(n * sizeof(float));
			size_t		i;
			int			kind;

			guarded_alloc(&gq, d * sizeof(float), 0);
			guarded_alloc(&gx, n * d * sizeof(uint16_t), 0);
			q = gq.p;
			x = gx.p;
			if (integer_inputs)
			{
				fill_int(q, d, -8, 8);
				fill_int(xf, n * d, -8, 8);
			}
			else
			{
				fill_float(q, d, -1.0f, 1.0f);
				fill_float(xf, n * d, -1.0f, 1.0f);
			}
			check(ivf_ref_float_to_half(xf, x, n * d) == n * d, "inputs finite");
			ivf_ref_half_to_float(x, xf, n * d);

			for (kind = 0; kind < 2; kind++)
			{
				if (kind == 0)
				{
					k->l2sq_f16_block(q, x, n, d, got);
					ivf_ref_l2sq_f16_block(q, x, n, d, ref);
				}
				else
				{
					k->dot_f16_block(q, x, n, d, got);
					ivf_ref_dot_f16_block(q, x, n, d, ref);
				}
				for (i = 0; i < n; i++)
				{
					float		pair = (kind == 0) ? k->l2sq_f16(q, x + i * d, d)
						: k->dot_f16(q, x + i * d, d);
					/* the float kernels on the widened rows: the same sums */
					float		viaf = (kind == 0) ? ivf_ref_l2sq(q, xf + i * d, d)
						: ivf_ref_dot(q, xf + i * d, d);
					double		abssum = 0;
					size_t		j;

					for (j = 0; j < d; j++)
					{
						double		t = (kind == 0) ? (double) q[j] - xf[i * d + j]
							: (double) q[j] * xf[i * d + j];

						abssum += (kind == 0) ? t * t : fabs(t);
					}
					check(same_float(pair, got[i], 0), "%s d=%zu row %zu: pair %.9g, block %.9g",
						  kind ? "dot" : "l2sq", d, i, pair, got[i]);
					check(same_float(viaf, ref[i], 0), "%s d=%zu: reference differs from float reference",
						  kind ? "dot" : "l2sq", d);
					if (integer_inputs)
						check(got[i] == ref[i], "%s d=%zu row %zu: %.9g, expected %.9g",
							  kind ? "dot" : "l2sq", d, i, got[i], ref[i]);
					else
						check(fabs((double) got[i] - ref[i]) <=
							  2.0 * ((double) d + 4.0) * (FLT_EPSILON / 2) * abssum + 1e-30,
							  "%s d=%zu row %zu: %.9g, expected %.9g",
							  kind ? "dot" : "l2sq", d, i, got[i], ref[i]);
				}
			}
			guarded_free(&gq);
			guarded_free(&gx);
			free(xf);
			free(got);
			free(ref);
		}
	}
	group_end();
}

int
main(void)
{
	IvfKernels	k;
	int			lvl;

	setvbuf(stdout, NULL, _IOLBF, 0);

	test_half_to_float_all();
	test_float_to_half_edges();
	test_float_to_half_random();

	printf("half-float levels:");
	for (lvl = 0; lvl < IVF_SIMD_NLEVELS; lvl++)
		if (ivf_simd_level_supported(lvl))
			printf(" %s%s", ivf_simd_level_name(lvl),
				   ivf_simd_level_has_f16c(lvl) ? "(f16c)" :
				   lvl == IVF_SIMD_NEON ? "(fcvt)" : "");
	printf("\n");

	for (lvl = 0; lvl < IVF_SIMD_NLEVELS; lvl++)
	{
		if (ivf_kernels_get((IvfSimdLevel) lvl, &k) != 0)
			continue;
		test_conversion_level(&k);
		test_distances_level(&k, 1);
		test_distances_level(&k, 0);
	}
	return check_summary();
}
