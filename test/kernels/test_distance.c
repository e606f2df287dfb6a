/*-------------------------------------------------------------------------
 *
 * test_distance.c
 *	  Standalone test of the distance kernels, GEMM kernels, exact k-NN and
 *	  top-k selection (no server needed).
 *
 * In the spirit of Faiss's test_distances_dispatch: every SIMD level that
 * is compiled in and supported by this CPU is compared kernel by kernel
 * against the scalar reference, on integer-valued inputs (sums are exact,
 * so results must be identical) and on random floats (tolerance scaled by
 * the dimension).  Inputs end right before a PROT_NONE page, so a kernel
 * that reads past the end of a vector crashes the test.
 *
 * The SQ8 kernels are compared with double precision instead (relative
 * 1e-5 of the sum of absolute terms), ivf_sq8_train / ivf_sq8_encode against
 * their documented formulas, and the triangle-inequality lower bound the
 * index builds from them is checked on random and adversarial vectors.
 *
 * Set IVF_DATA_DIR (e.g. ../shared/data) to also check exact k-NN on the
 * real siftsmall vectors against brute force and the official ground truth.
 *
 * Prints one line per check group and finally "N passed, M failed"; exits
 * 1 if anything failed.
 *
 *-------------------------------------------------------------------------
 */
#include "distance.h"
#include "topk.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---------------------------------------------------------------------
 * Kernel vs reference
 * ---------------------------------------------------------------------
 */
static const size_t test_dims[] = {
	1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 127, 128, 384, 784, 1024,
	1536, 16000
};
#define N_TEST_DIMS (sizeof(test_dims) / sizeof(test_dims[0]))

static const size_t test_rows[] = {1, 2, 5, 33};
#define N_TEST_ROWS (sizeof(test_rows) / sizeof(test_rows[0]))

/* Double-precision sums of |term| for the float tolerance. */
typedef struct ExactSums
{
	double		l2,
				l2abs,
				dot,
				dotabs,
				l1,
				na,
				nb;
} ExactSums;

static void
exact_sums(const float *a, const float *b, size_t d, ExactSums *s)
{
	size_t		i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < d; i++)
	{
		double		t = (double) a[i] - (double) b[i];
		double		p = (double) a[i] * (double) b[i];

		s->l2 += t * t;
		s->dot += p;
		s->dotabs += fabs(p);
		s->l1 += fabs(t);
		s->na += (double) a[i] * a[i];
		s->nb += (double) b[i] * b[i];
	}
	s->l2abs = s->l2;
}

/*
 * Both the reference and the kernel are within about d * u * S of the exact
 * value, S the sum of absolute terms, whatever their summation order.
 */
static int
close_enough(float got, float ref, double abssum, size_t d)
{
	double		tol = 2.0 * ((double) d + 4.0) * (FLT_EPSILON / 2) * abssum + 1e-30;

	return fabs((double) got - (double) ref) <= tol;
}

static void
test_pair_kernels(const IvfKernels *k, int integer_inputs)
{
	size_t		di;

	group_begin("%s: pair kernels vs reference, %s", ivf_simd_level_name(k->level),
				integer_inputs ? "integer inputs (exact)" : "random floats (tolerance)");
	rng_seed(integer_inputs ? 1001 : 1002);
	for (di = 0; di < N_TEST_DIMS; di++)
	{
		size_t		d = test_dims[di];
		Guarded		ga,
					gb;
		float	   *a,
				   *b;
		float		r1,
					r2,
					r3,
					g1,
					g2,
					g3;
		ExactSums	s;

		guarded_alloc(&ga, d * sizeof(float), 0);
		guarded_alloc(&gb, d * sizeof(float), 0);
		a = ga.p;
		b = gb.p;
		if (integer_inputs)
		{
			/* |a-b| <= 16: 256 * 16000 < 2^24, so every sum is exact */
			fill_int(a, d, -8, 8);
			fill_int(b, d, -8, 8);
		}
		else
		{
			fill_float(a, d, -1.0f, 1.0f);
			fill_float(b, d, -1.0f, 1.0f);
		}
		exact_sums(a, b, d, &s);

#define CMP(name, got, ref, abssum) \
	do { \
		float _g = (got), _r = (ref); \
		if (integer_inputs) \
			check(same_float(_g, _r, 1), "%s d=%zu: got %.9g, reference %.9g", \
				  name, d, _g, _r); \
		else \
			check(close_enough(_g, _r, (abssum), d), \
				  "%s d=%zu: got %.9g, reference %.9g", name, d, _g, _r); \
	} while (0)

		CMP("l2sq", k->l2sq(a, b, d), ivf_ref_l2sq(a, b, d), s.l2abs);
		CMP("dot", k->dot(a, b, d), ivf_ref_dot(a, b, d), s.dotabs);
		CMP("l1", k->l1(a, b, d), ivf_ref_l1(a, b, d), s.l1);
		CMP("norm_sq", k->norm_sq(a, d), ivf_ref_norm_sq(a, d), s.na);
		k->cosine_parts(a, b, d, &g1, &g2, &g3);
		ivf_ref_cosine_parts(a, b, d, &r1, &r2, &r3);
		CMP("cosine_parts.dot", g1, r1, s.dotabs);
		CMP("cosine_parts.na", g2, r2, s.na);
		CMP("cosine_parts.nb", g3, r3, s.nb);
		/* the reference itself against double precision */
		if (!integer_inputs)
		{
			check(close_enough(ivf_ref_l2sq(a, b, d), (float) s.l2, s.l2abs, d),
				  "ref l2sq d=%zu vs double", d);
			check(close_enough(ivf_ref_dot(a, b, d), (float) s.dot, s.dotabs, d),
				  "ref dot d=%zu vs double", d);
		}
#undef CMP
		guarded_free(&ga);
		guarded_free(&gb);
	}
	group_end();
}

static void
test_block_kernels(const IvfKernels *k, int integer_inputs)
{
	size_t		di,
				ri;

	group_begin("%s: block kernels vs reference, %s", ivf_simd_level_name(k->level),
				integer_inputs ? "integer inputs (exact)" : "random floats (tolerance)");
	rng_seed(integer_inputs ? 2001 : 2002);
	for (di = 0; di < N_TEST_DIMS; di++)
	{
		for (ri = 0; ri < N_TEST_ROWS; ri++)
		{
			size_t		d = test_dims[di];
			size_t		n = test_rows[ri];
			Guarded		gq,
						gx;
			float	   *q,
					   *x;
			float	   *got = xmalloc(n * sizeof(float));
			float	   *ref = xmalloc(n * sizeof(float));
			size_t		i;
			int			kind;

			guarded_alloc(&gq, d * sizeof(float), 0);
			guarded_alloc(&gx, n * d * sizeof(float), 0);
			q = gq.p;
			x = gx.p;
			if (integer_inputs)
			{
				fill_int(q, d, -8, 8);
				fill_int(x, n * d, -8, 8);
			}
			else
			{
				fill_float(q, d, -1.0f, 1.0f);
				fill_float(x, n * d, -1.0f, 1.0f);
			}

			for (kind = 0; kind < 3; kind++)
			{
				const char *name = kind == 0 ? "l2sq_block" :
					kind == 1 ? "dot_block" : "norm_sq_block";

				/* sentinel past n must survive */
				if (kind == 0)
				{
					k->l2sq_block(q, x, n, d, got);
					ivf_ref_l2sq_block(q, x, n, d, ref);
				}
				else if (kind == 1)
				{
					k->dot_block(q, x, n, d, got);
					ivf_ref_dot_block(q, x, n, d, ref);
				}
				else
				{
					k->norm_sq_block(x, n, d, got);
					ivf_ref_norm_sq_block(x, n, d, ref);
				}
				for (i = 0; i < n; i++)
				{
					ExactSums	s;
					double		abssum;
					float		pair;

					exact_sums(q, x + i * d, d, &s);
					abssum = kind == 0 ? s.l2abs : kind == 1 ? s.dotabs : s.nb;
					if (integer_inputs)
						check(same_float(got[i], ref[i], 1),
							  "%s d=%zu n=%zu row %zu: got %.9g, reference %.9g",
							  name, d, n, i, got[i], ref[i]);
					else
						check(close_enough(got[i], ref[i], abssum, d),
							  "%s d=%zu n=%zu row %zu: got %.9g, reference %.9g",
							  name, d, n, i, got[i], ref[i]);

					/* within a level, block rows equal the pair kernel bitwise */
					pair = kind == 0 ? k->l2sq(q, x + i * d, d) :
						kind == 1 ? k->dot(q, x + i * d, d) :
						k->norm_sq(x + i * d, d);
					check(same_float(got[i], pair, 1),
						  "%s d=%zu n=%zu row %zu: block %.9g != pair kernel %.9g",
						  name, d, n, i, got[i], pair);
				}
			}
			guarded_free(&gq);
			guarded_free(&gx);
			free(got);
			free(ref);
		}
	}
	group_end();
}

/* NaN and inf must propagate (top-k ranks NaN last; it must not turn to 0). */
static void
test_special_values(const IvfKernels *k)
{
	size_t		di;

	group_begin("%s: NaN/inf propagate through main loop and tail",
				ivf_simd_level_name(k->level));
	rng_seed(3001);
	for (di = 0; di < N_TEST_DIMS; di++)
	{
		size_t		d = test_dims[di];
		size_t		pos;

		for (pos = 0; pos < 2; pos++)
		{
			Guarded		ga,
						gb;
			float	   *a,
					   *b;
			float		out[2];
			size_t		at = pos == 0 ? 0 : d - 1;

			guarded_alloc(&ga, d * sizeof(float), 0);
			guarded_alloc(&gb, 2 * d * sizeof(float), 0);
			a = ga.p;
			b = gb.p;
			fill_float(a, d, -1.0f, 1.0f);
			fill_float(b, 2 * d, -1.0f, 1.0f);
			a[at] = NAN;
			check(isnan(k->l2sq(a, b, d)), "l2sq NaN at %zu d=%zu", at, d);
			check(isnan(k->dot(a, b, d)), "dot NaN at %zu d=%zu", at, d);
			check(isnan(k->l1(a, b, d)), "l1 NaN at %zu d=%zu", at, d);
			check(isnan(k->norm_sq(a, d)), "norm_sq NaN at %zu d=%zu", at, d);
			k->l2sq_block(a, b, 2, d, out);
			check(isnan(out[0]) && isnan(out[1]), "l2sq_block NaN at %zu d=%zu", at, d);
			a[at] = INFINITY;
			check(isinf(k->l2sq(a, b, d)), "l2sq inf at %zu d=%zu", at, d);
			check(isinf(k->norm_sq(a, d)), "norm_sq inf at %zu d=%zu", at, d);
			guarded_free(&ga);
			guarded_free(&gb);
		}
	}
	/* d = 0 is harmless */
	check(k->l2sq(NULL, NULL, 0) == 0.0f, "l2sq d=0");
	check(k->dot(NULL, NULL, 0) == 0.0f, "dot d=0");
	group_end();
}

/* ---------------------------------------------------------------------
 * SQ8 kernels, training and encoding
 * ---------------------------------------------------------------------
 */

static double l2_double(const float *a, const float *b, size_t d);

/* d = 1..40 (every tail length of every level), then these */
static const size_t sq8_extra_dims[] = {63, 64, 65, 127, 128, 129, 784, 1000, 1601};
#define N_SQ8_DIMS (40 + sizeof(sq8_extra_dims) / sizeof(sq8_extra_dims[0]))

static size_t
sq8_dim(size_t idx)
{
	return idx < 40 ? idx + 1 : sq8_extra_dims[idx - 40];
}

static const size_t sq8_rows[] = {0, 1, 3, 17};
#define N_SQ8_ROWS (sizeof(sq8_rows) / sizeof(sq8_rows[0]))

/* the kernels' contract: within 1e-5 of double, relative to sum |terms| */
#define SQ8_REL_TOL 1e-5

static void
test_sq8_kernels(const IvfKernels *k)
{
	size_t		di,
				ri;

	group_begin("%s: sq8_dot_block vs double, guarded codes",
				ivf_simd_level_name(k->level));
	rng_seed(7001);
	for (di = 0; di < N_SQ8_DIMS; di++)
	{
		for (ri = 0; ri < N_SQ8_ROWS; ri++)
		{
			size_t		d = sq8_dim(di);
			size_t		n = sq8_rows[ri];
			Guarded		ga,
						gs,
						gw,
						gc;
			float	   *a,
					   *step,
					   *w;
			uint8_t    *codes;
			float	   *out = xmalloc((n + 1) * sizeof(float));
			float	   *ref = xmalloc((n + 1) * sizeof(float));
			size_t		i,
						j;

			/*
			 * Every operand ends right before a PROT_NONE page, the codes
			 * exactly n * d bytes: reading one byte past the last row
			 * faults.  The poison (0xFF: NaN floats, code 255) makes a read
			 * before the start show up in the results.
			 */
			guarded_alloc(&ga, d * sizeof(float), 0xFF);
			guarded_alloc(&gs, d * sizeof(float), 0xFF);
			guarded_alloc(&gw, d * sizeof(float), 0xFF);
			guarded_alloc(&gc, n * d, 0xFF);
			a = ga.p;
			step = gs.p;
			w = gw.p;
			codes = gc.p;
			fill_float(a, d, -1.0f, 1.0f);
			fill_float(w, d, -1.0f, 1.0f);
			for (j = 0; j < d; j++)
				step[j] = j % 7 == 3 ? 0.0f : rng_float(0.0f, 2.0f / 255.0f);
			for (i = 0; i < n * d; i++)
				codes[i] = (uint8_t) rng_int(0, 255);
			/* 0 and 255 in every row, at both ends; whole rows of each */
			for (i = 0; i < n; i++)
			{
				codes[i * d] = i % 2 ? 0 : 255;
				codes[i * d + d - 1] = i % 2 ? 255 : 0;
			}
			if (n >= 3)
			{
				memset(codes + 1 * d, 255, d);
				memset(codes + 2 * d, 0, d);
			}

			{
				const char *name = "sq8_dot_block";

				/* sentinel past n must survive (n = 0: nothing written) */
				out[n] = ref[n] = -12345.0f;
				k->sq8_dot_block(w, codes, n, d, out);
				ivf_ref_sq8_dot_block(w, codes, n, d, ref);
				check(out[n] == -12345.0f, "%s d=%zu n=%zu: wrote past out[n-1]",
					  name, d, n);
				for (i = 0; i < n; i++)
				{
					const uint8_t *c = codes + i * d;
					double		exact = 0.0,
								abssum = 0.0,
								tol;

					for (j = 0; j < d; j++)
					{
						double		t = (double) w[j] * c[j];

						exact += t;
						abssum += fabs(t);
					}
					tol = SQ8_REL_TOL * abssum + 1e-30;
					check(fabs((double) out[i] - exact) <= tol,
						  "%s d=%zu n=%zu row %zu: got %.9g, double %.9g",
						  name, d, n, i, out[i], exact);
					check(fabs((double) ref[i] - exact) <= tol,
						  "ref %s d=%zu n=%zu row %zu: got %.9g, double %.9g",
						  name, d, n, i, ref[i], exact);
				}
			}
			guarded_free(&ga);
			guarded_free(&gs);
			guarded_free(&gw);
			guarded_free(&gc);
			free(out);
			free(ref);
		}
	}
	group_end();
}

/* The documented encoding, computed independently in double. */
static uint8_t
sq8_expected_code(float r, float lo, float step)
{
	double		v;

	if (step == 0.0f)
		return 0;
	v = ((double) r - lo) / step;
	v = v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v;
	return (uint8_t) floor(v + 0.5);	/* nearest, halves up (in double) */
}

/* |r - rhat| in double, rhat[j] = lo[j] + step[j] * codes[j]. */
static double
sq8_error_double(const float *r, const float *lo, const float *step,
				 const uint8_t *codes, size_t d)
{
	double		s = 0.0;
	size_t		j;

	for (j = 0; j < d; j++)
	{
		double		t = (double) r[j] - ((double) lo[j] + (double) step[j] * codes[j]);

		s += t * t;
	}
	return sqrt(s);
}

/* The returned error is the double norm rounded up to float. */
static int
sq8_error_ok(float got, double exact)
{
	return (double) got >= exact &&
		got <= nextafterf((float) exact, INFINITY);
}

static void
test_sq8_train_encode(void)
{
	size_t		n = 50,
				d = 37;
	float	   *x = xmalloc(n * d * sizeof(float));
	float	   *lo = xmalloc(d * sizeof(float));
	float	   *step = xmalloc(d * sizeof(float));
	float	   *r = xmalloc(d * sizeof(float));
	uint8_t    *codes = xmalloc(d);
	size_t		i,
				j;
	float		err;

	group_begin("sq8: train (min, step, constant dims), encode (range, clamping, error)");
	rng_seed(7101);
	fill_float(x, n * d, -3.0f, 2.0f);
	for (i = 0; i < n; i++)
	{
		x[i * d + 5] = 1.25f;	/* constant: step 0 */
		x[i * d + 6] = i % 2 ? -1e30f : 1e30f;	/* wide but finite */
		x[i * d + 7] = i % 2 ? -3e38f : 3e38f;	/* max - min overflows float */
	}
	ivf_sq8_train(x, n, d, lo, step);
	for (j = 0; j < d; j++)
	{
		float		mn = x[j],
					mx = x[j];

		for (i = 1; i < n; i++)
		{
			mn = x[i * d + j] < mn ? x[i * d + j] : mn;
			mx = x[i * d + j] > mx ? x[i * d + j] : mx;
		}
		check(lo[j] == mn, "train dim %zu: lo %.9g, min %.9g", j, lo[j], mn);
		check(step[j] == (float) (((double) mx - mn) / 255.0) && isfinite(step[j]),
			  "train dim %zu: step %.9g, want %.9g", j, step[j],
			  (float) (((double) mx - mn) / 255.0));
	}
	check(step[5] == 0.0f, "constant dimension: step %.9g", step[5]);

	/* the training rows: codes as documented, min -> 0, max -> 255, small error */
	for (i = 0; i < n; i++)
	{
		const float *row = x + i * d;
		double		bound = 0.0;
		int			ok = 1;

		err = ivf_sq8_encode(row, lo, step, d, codes, NULL);
		for (j = 0; j < d; j++)
		{
			ok &= codes[j] == sq8_expected_code(row[j], lo[j], step[j]);
			if (row[j] == lo[j])
				ok &= codes[j] == 0;
			if (step[j] > 0.0f && row[j] == lo[j] + 255.0f * step[j])
				ok &= codes[j] == 255;
			/* in range: at most half a step off (plus rounding of rhat) */
			bound += ((double) step[j] * 0.5 * (1.0 + 1e-6)) *
				((double) step[j] * 0.5 * (1.0 + 1e-6));
		}
		check(ok, "row %zu: codes differ from the documented formula", i);
		check(sq8_error_ok(err, sq8_error_double(row, lo, step, codes, d)),
			  "row %zu: error %.9g, double %.17g", i, err,
			  sq8_error_double(row, lo, step, codes, d));
		check((double) err <= sqrt(bound) * (1.0 + 1e-6),
			  "row %zu: error %.9g above half a step per dim %.9g", i, err, sqrt(bound));
	}
	/* each extreme of the wide dimensions maps to 0 / 255 exactly */
	ivf_sq8_encode(x, lo, step, d, codes, NULL);
	check(codes[6] == 255 && codes[7] == 255, "row 0 wide dims: %d %d", codes[6], codes[7]);
	ivf_sq8_encode(x + d, lo, step, d, codes, NULL);
	check(codes[6] == 0 && codes[7] == 0, "row 1 wide dims: %d %d", codes[6], codes[7]);

	/* clamping: below lo, above lo + 255 step, far out; step-0 dims give 0 */
	for (i = 0; i < 6; i++)
	{
		int			ok = 1;

		for (j = 0; j < d; j++)
		{
			float		top = lo[j] + 255.0f * step[j];

			switch (i)
			{
				case 0:
					r[j] = lo[j] - 10.0f * step[j] - 0.5f;
					break;
				case 1:
					r[j] = top + 10.0f * step[j] + 0.5f;
					break;
				case 2:
					r[j] = -3.4e38f;
					break;
				case 3:
					r[j] = 3.4e38f;
					break;
				case 4:
					/* alternate below / above */
					r[j] = j % 2 ? -1e20f : 1e20f;
					break;
				default:
					r[j] = rng_float(-100.0f, 100.0f);
					break;
			}
		}
		err = ivf_sq8_encode(r, lo, step, d, codes, NULL);
		{
			/* with cnorm: the same codes and error, and |step * code|^2 */
			uint8_t    *codes2 = xmalloc(d + 1);
			float		cn;
			double		c = 0.0;

			check(ivf_sq8_encode(r, lo, step, d, codes2, &cn) == err &&
				  memcmp(codes, codes2, d) == 0, "clamp case %zu: cnorm changed the codes", i);
			for (j = 0; j < d; j++)
			{
				double		t = (double) step[j] * codes[j];

				c += t * t;
			}
			check(cn == (float) c, "clamp case %zu: cnorm %.9g, want %.9g", i,
				  (double) cn, c);
			free(codes2);
		}
		for (j = 0; j < d; j++)
		{
			uint8_t		want = sq8_expected_code(r[j], lo[j], step[j]);

			ok &= codes[j] == want;
			if (step[j] == 0.0f)
				ok &= codes[j] == 0;
			else if (r[j] < lo[j])
				ok &= codes[j] == 0;
			else if ((double) r[j] > (double) lo[j] + 255.0 * step[j] * (1.0 + 1e-6))
				ok &= codes[j] == 255;
		}
		check(ok, "clamp case %zu: wrong codes", i);
		check(sq8_error_ok(err, sq8_error_double(r, lo, step, codes, d)),
			  "clamp case %zu: error %.9g, double %.17g", i, err,
			  sq8_error_double(r, lo, step, codes, d));
	}

	/*
	 * Tiny steps make huge quotients: must clamp, not overflow the
	 * conversion.  (|r| small enough that the error itself stays finite; an
	 * error beyond FLT_MAX comes back as +inf, which is still an upper
	 * bound.)
	 */
	for (j = 0; j < d; j++)
	{
		lo[j] = 0.0f;
		step[j] = j % 3 == 0 ? 1e-45f : j % 3 == 1 ? 1e-30f : 0.0f;
		r[j] = j % 2 ? 1e37f : -1e37f;
	}
	err = ivf_sq8_encode(r, lo, step, d, codes, NULL);
	{
		int			ok = 1;

		for (j = 0; j < d; j++)
			ok &= codes[j] == (step[j] == 0.0f || r[j] < 0.0f ? 0 : 255);
		check(ok, "tiny steps: wrong codes");
	}
	check(sq8_error_ok(err, sq8_error_double(r, lo, step, codes, d)) && isfinite(err),
		  "tiny steps: error %.9g", err);

	/* one row: lo is the row, every step 0, the row encodes with error 0 */
	ivf_sq8_train(x, 1, d, lo, step);
	{
		int			ok = 1;

		for (j = 0; j < d; j++)
			ok &= lo[j] == x[j] && step[j] == 0.0f;
		check(ok, "n = 1: lo must be the row and every step 0");
	}
	err = ivf_sq8_encode(x, lo, step, d, codes, NULL);
	check(err == 0.0f, "n = 1: error of the row itself %.9g", err);
	check(ivf_sq8_encode(x, lo, step, 0, codes, NULL) == 0.0f, "d = 0");

	free(x);
	free(lo);
	free(step);
	free(r);
	free(codes);
	group_end();
}

/*
 * sq8_l2_bounds against the scalar reference, every length up to 70 and
 * a few longer (the tails), with special values: NaN and +inf dot
 * products and code norms, zeros, infinite errors; results must agree
 * within 1e-5 of the terms' size (fused multiply-adds may differ in the
 * last bits) and never be NaN or negative.
 */
static void
test_sq8_l2_bounds(const IvfKernels *k)
{
	static const size_t extra[] = {127, 128, 129, 1000};
	size_t		ni;

	group_begin("%s: sq8_l2_bounds vs reference", ivf_simd_level_name(k->level));
	rng_seed(9302);
	for (ni = 0; ni < 71 + sizeof(extra) / sizeof(extra[0]); ni++)
	{
		size_t		n = (ni < 71) ? ni : extra[ni - 71];
		float	   *raw = xmalloc((n + 1) * sizeof(float));
		float	   *want = xmalloc((n + 1) * sizeof(float));
		float	   *err = xmalloc((n + 1) * sizeof(float));
		float	   *cn = xmalloc((n + 1) * sizeof(float));
		float	   *in_raw = xmalloc((n + 1) * sizeof(float));
		float		asq = rng_float(0.0f, 2e5f);
		size_t		i;

		for (i = 0; i < n; i++)
		{
			raw[i] = rng_float(-1e5f, 1e5f);
			cn[i] = rng_float(0.0f, 3e5f);
			err[i] = rng_float(0.0f, 60.0f);
			switch (i % 11)
			{
				case 3:
					raw[i] = NAN;
					break;
				case 5:
					raw[i] = INFINITY;
					break;
				case 6:
					cn[i] = INFINITY;
					break;
				case 7:
					raw[i] = 0.0f;
					cn[i] = 0.0f;
					break;
				case 9:
					err[i] = INFINITY;
					break;
			}
		}
		raw[n] = 12345.0f;		/* sentinel: never written */
		memcpy(want, raw, (n + 1) * sizeof(float));
		memcpy(in_raw, raw, (n + 1) * sizeof(float));
		ivf_ref_sq8_l2_bounds(want, err, cn, n, asq, 1e-4f, 4.8e-7f, 3000.0f);
		k->sq8_l2_bounds(raw, err, cn, n, asq, 1e-4f, 4.8e-7f, 3000.0f);
		for (i = 0; i < n; i++)
		{
			/* h is a difference: its rounding scales with the terms' size */
			double		t = (double) asq + 2 * fabs((double) in_raw[i]) + cn[i];
			double		e = err[i];
			int			same = (raw[i] == want[i]) ||
				(isfinite(t) && isfinite(e) &&
				 fabs((double) raw[i] - want[i]) <= 1e-5 * (t + e * e + 1));

			check(same && raw[i] >= 0.0f, "n %zu i %zu: %g, reference %g", n, i,
				  (double) raw[i], (double) want[i]);
		}
		check(raw[n] == 12345.0f, "n %zu: wrote past the end", n);
		free(raw);
		free(want);
		free(err);
		free(cn);
		free(in_raw);
	}
	group_end();
}

/*
 * The k-means sum kernel against the reference: same bits at every length
 * up to 70 and a few longer, from any alignment, nothing written past d.
 */
static void
test_add_f64(const IvfKernels *k)
{
	static const size_t extra[] = {127, 128, 784, 1000, 1536};
	size_t		ni;

	group_begin("%s: add_f64 vs reference", ivf_simd_level_name(k->level));
	rng_seed(9127);
	for (ni = 0; ni < 71 + sizeof(extra) / sizeof(extra[0]); ni++)
	{
		size_t		d = (ni < 71) ? ni : extra[ni - 71];
		float	   *x = xmalloc((d + 2) * sizeof(float));
		double	   *got = xmalloc((d + 2) * sizeof(double));
		double	   *want = xmalloc((d + 2) * sizeof(double));
		size_t		off,
					t;

		for (off = 0; off < 2; off++)
		{
			for (t = 0; t < d + 2; t++)
			{
				x[t] = rng_float(-1e4f, 1e4f) * (t % 3 == 0 ? 1e-6f : 1.0f);
				got[t] = want[t] = (double) rng_float(-1e6f, 1e6f) / 7.0;
			}
			k->add_f64(got + off, x + off, d);
			ivf_ref_add_f64(want + off, x + off, d);
			check(memcmp(got, want, (d + 2) * sizeof(double)) == 0,
				  "d %zu offset %zu: sums differ from the reference", d, off);
		}
		free(x);
		free(got);
		free(want);
	}
	group_end();
}

/*
 * The GEMM assignment's row scans against the scalar references: the
 * levels must agree bit for bit (same operations, no fused multiply-add),
 * at every length up to 70 and a few longer, with NaN and infinite terms,
 * thresholds that pass nothing, some, or everything, and the candidates
 * listed ascending with nothing written past their count.
 */
static void
test_row_kernels(const IvfKernels *k)
{
	static const size_t extra[] = {127, 128, 129, 1000, 2048};
	size_t		ni;

	group_begin("%s: assignment row scans vs reference", ivf_simd_level_name(k->level));
	rng_seed(4417);
	for (ni = 0; ni < 71 + sizeof(extra) / sizeof(extra[0]); ni++)
	{
		size_t		n = (ni < 71) ? ni : extra[ni - 71];
		float	   *row = xmalloc((n + 1) * sizeof(float));
		float	   *q = xmalloc((n + 1) * sizeof(float));
		uint32_t   *idx = xmalloc((n + 1) * sizeof(uint32_t));
		uint32_t   *want = xmalloc((n + 1) * sizeof(uint32_t));
		int			special;

		for (special = 0; special < 2; special++)
		{
			float		p = rng_float(0.0f, 500.0f);
			float		e = rng_float(0.0f, 1e-3f);
			size_t		i;
			int			ip;

			for (i = 0; i < n; i++)
			{
				row[i] = rng_float(-1000.0f, 0.0f);
				q[i] = rng_float(0.0f, 600.0f);
				if (special && i % 13 == 4)
					row[i] = NAN;
				if (special && i % 17 == 6)
					q[i] = INFINITY;
				if (special && i % 19 == 8)
					row[i] = -INFINITY;
			}
			for (ip = 0; ip < 2; ip++)
			{
				float		m = ip ? k->row_min_hi_ip(row, q, p, e, n, INFINITY) :
					k->row_min_hi(row, q, p, n, INFINITY);
				float		mr = ip ? ivf_ref_row_min_hi_ip(row, q, p, e, n, INFINITY) :
					ivf_ref_row_min_hi(row, q, p, n, INFINITY);
				float		m2 = ip ? k->row_min_hi_ip(row, q, p, e, n, -5000.0f) :
					k->row_min_hi(row, q, p, n, -5000.0f);
				float		thrs[4];
				int			t;

				check(m == mr || (isnan(m) && isnan(mr)),
					  "n %zu ip %d special %d: min %.9g, reference %.9g", n, ip, special,
					  (double) m, (double) mr);
				check(m2 == -5000.0f || (n > 0 && m2 < -5000.0f),
					  "n %zu ip %d: min below the carried m %.9g", n, ip, (double) m2);
				thrs[0] = -INFINITY;
				thrs[1] = mr;
				thrs[2] = rng_float(-800.0f, 200.0f);
				thrs[3] = INFINITY;
				for (t = 0; t < 4; t++)
				{
					size_t		c;
					size_t		cr;

					idx[n] = 0xDEADBEEF;
					c = k->row_lo_pass(row, q, p, e, ip, n, thrs[t], idx);
					cr = ivf_ref_row_lo_pass(row, q, p, e, ip, n, thrs[t], want);
					check(c == cr && memcmp(idx, want, c * sizeof(uint32_t)) == 0,
						  "n %zu ip %d special %d thr %d: %zu candidates, reference %zu",
						  n, ip, special, t, c, cr);
					check(c == n || idx[c] != 0xDEADBEEF || c < n,
						  "n %zu: count", n);
					check(c < n + 1 && (c == n || idx[n] == 0xDEADBEEF),
						  "n %zu thr %d: wrote past the count", n, t);
					if (t == 3 && !special)
						check(c == n, "n %zu: +inf threshold passes all (%zu)", n, c);
				}
			}
		}
		free(row);
		free(q);
		free(idx);
		free(want);
	}
	group_end();
}

/*
 * The bound the index relies on: with lo/step trained on residuals x - c,
 * codes and err from encoding r = x - c, and a = (q - c) - lo, the kernel
 * gives |q - c - rhat|^2, and |q - x| >= |q - c - rhat| - err.
 */
static void
test_sq8_bound(const IvfKernels *k)
{
	static const size_t dims[] = {16, 128, 784};
	size_t		di;

	group_begin("%s: sq8 lower bounds <= |q - x| (triangle inequality, dot-form kernels)",
				ivf_simd_level_name(k->level));
	rng_seed(7201);
	for (di = 0; di < sizeof(dims) / sizeof(dims[0]); di++)
	{
		size_t		d = dims[di];
		size_t		ns = 200,
					nx = 48,
					nq = 5;
		float	   *c = xmalloc(d * sizeof(float));
		float	   *spread = xmalloc(d * sizeof(float));
		float	   *sample = xmalloc(ns * d * sizeof(float));
		float	   *lo = xmalloc(d * sizeof(float));
		float	   *step = xmalloc(d * sizeof(float));
		float	   *q = xmalloc(d * sizeof(float));
		float	   *a = xmalloc(d * sizeof(float));
		float	   *x = xmalloc(nx * d * sizeof(float));
		float	   *r = xmalloc(d * sizeof(float));
		float	   *err = xmalloc(nx * sizeof(float));
		float	   *out = xmalloc(nx * sizeof(float));
		Guarded		gc;
		uint8_t    *codes;
		size_t		qi,
					i,
					j;

		guarded_alloc(&gc, nx * d, 0xFF);
		codes = gc.p;
		fill_float(c, d, -1.0f, 1.0f);
		/* per-dimension spreads, so steps differ; dimension 3 constant */
		fill_float(spread, d, 0.05f, 0.5f);
		spread[3] = 0.0f;
		for (i = 0; i < ns; i++)
		{
			for (j = 0; j < d; j++)
			{
				float		xs = c[j] + rng_float(-spread[j], spread[j]);

				sample[i * d + j] = xs - c[j];
			}
		}
		ivf_sq8_train(sample, ns, d, lo, step);

		for (qi = 0; qi < nq; qi++)
		{
			for (j = 0; j < d; j++)
				q[j] = c[j] + rng_float(-spread[j], spread[j]);
			for (i = 0; i < nx; i++)
			{
				float	   *xi = x + i * d;

				for (j = 0; j < d; j++)
				{
					switch (i % 8)
					{
						case 0:
							/* x == q */
							xi[j] = q[j];
							break;
						case 1:
							/* x very close to q */
							xi[j] = q[j] + rng_float(-1e-6f, 1e-6f);
							break;
						case 2:
							/* q moved by a third of a step in one dimension */
							xi[j] = q[j] + (j == i % d ? step[j] / 3.0f : 0.0f);
							break;
						case 3:
							/* outside the trained range: clamped codes */
							xi[j] = c[j] + rng_float(-3.0f * spread[j] - 0.1f,
													 3.0f * spread[j] + 0.1f);
							break;
						case 4:
							/* the centroid itself */
							xi[j] = c[j];
							break;
						default:
							/* in range, independent of q */
							xi[j] = c[j] + rng_float(-spread[j], spread[j]);
							break;
					}
				}
				for (j = 0; j < d; j++)
					r[j] = xi[j] - c[j];
				err[i] = ivf_sq8_encode(r, lo, step, d, codes + i * d, NULL);
			}
			/* what a caller does once per (query, list) */
			for (j = 0; j < d; j++)
				a[j] = (q[j] - c[j]) - lo[j];
			/* |a - step * code|^2, in double: the claim, without kernels */
			for (i = 0; i < nx; i++)
			{
				double		t2 = 0;

				for (j = 0; j < d; j++)
				{
					double		t = (double) a[j] - (double) step[j] * codes[i * d + j];

					t2 += t * t;
				}
				out[i] = (float) t2;
			}

			for (i = 0; i < nx; i++)
			{
				double		exact = sqrt(l2_double(q, x + i * d, d));
				double		lb = sqrt((double) out[i]) - err[i];

				check(lb <= exact * (1.0 + 1e-4) + 1e-4,
					  "d=%zu query %zu x %zu (kind %zu): bound %.9g > distance %.9g",
					  d, qi, i, i % 8, lb, exact);
				/* and not vacuous for independent in-range vectors */
				if (i % 8 >= 5)
					check(lb >= 0.9 * exact,
						  "d=%zu query %zu x %zu: bound %.9g too loose for distance %.9g",
						  d, qi, i, lb, exact);
			}

			/*
			 * The form the index uses: the dot kernel, stored code norms,
			 * sq8_l2_bounds with the index's slack; the bound must never
			 * exceed the squared distance the pair kernel computes.
			 */
			{
				float		g = (float) (d + 16) * FLT_EPSILON;
				float		qn = sqrtf(k->norm_sq(q, d));
				float		cnm = sqrtf(k->norm_sq(c, d));
				float		lon = sqrtf(k->norm_sq(lo, d));
				float		rmax = lon + 255.0f * sqrtf(k->norm_sq(step, d));
				float	   *w = xmalloc(d * sizeof(float));
				float	   *cn = xmalloc(nx * sizeof(float));

				for (j = 0; j < d; j++)
					w[j] = a[j] * step[j];
				for (i = 0; i < nx; i++)
				{
					double		t = 0;

					for (j = 0; j < d; j++)
						t += ((double) step[j] * codes[i * d + j]) *
							((double) step[j] * codes[i * d + j]);
					cn[i] = (float) t;
				}
				k->sq8_dot_block(w, codes, nx, d, out);
				k->sq8_l2_bounds(out, err, cn, nx, k->norm_sq(a, d), g,
								 4 * FLT_EPSILON, qn + cnm + lon + rmax);
				for (i = 0; i < nx; i++)
				{
					float		exact = k->l2sq(q, x + i * d, d);

					check(out[i] <= exact,
						  "d=%zu query %zu x %zu (kind %zu): dot-form bound %.9g > l2sq %.9g",
						  d, qi, i, i % 8, (double) out[i], (double) exact);
					if (i % 8 >= 5)
						check(out[i] >= 0.8f * exact,
							  "d=%zu query %zu x %zu: dot-form bound %.9g too loose for %.9g",
							  d, qi, i, (double) out[i], (double) exact);
				}
				free(w);
				free(cn);
			}
		}
		guarded_free(&gc);
		free(c);
		free(spread);
		free(sample);
		free(lo);
		free(step);
		free(q);
		free(a);
		free(x);
		free(r);
		free(err);
		free(out);
	}
	group_end();
}

/* ---------------------------------------------------------------------
 * GEMM kernels
 * ---------------------------------------------------------------------
 */
typedef struct GemmShape
{
	size_t		nq,
				nx,
				d;
} GemmShape;

static const GemmShape gemm_shapes[] = {
	{1, 1, 1}, {3, 5, 7}, {17, 33, 128}, {64, 300, 128}, {300, 4500, 33},
	{5, 4200, 784}, {260, 100, 17}, {8, 9000, 1}, {270, 2100, 64}, {4, 66000, 8}
};
#define N_GEMM_SHAPES (sizeof(gemm_shapes) / sizeof(gemm_shapes[0]))

static void
test_gemm(void)
{
	size_t		si;

	group_begin("%s: gemm_dot / gemm_l2sq vs reference (tolerance, >= 0)",
				ivf_simd_level_name(ivf_kernels.level));
	rng_seed(4001);
	for (si = 0; si < N_GEMM_SHAPES; si++)
	{
		size_t		nq = gemm_shapes[si].nq;
		size_t		nx = gemm_shapes[si].nx;
		size_t		d = gemm_shapes[si].d;
		float	   *q = xmalloc(nq * d * sizeof(float));
		float	   *x = xmalloc(nx * d * sizeof(float));
		float	   *out = xmalloc(nq * nx * sizeof(float));
		float	   *qn = xmalloc(nq * sizeof(float));
		float	   *xn = xmalloc(nx * sizeof(float));
		int			variant;
		size_t		i,
					j;
		int			bad_dot = 0,
					bad_l2 = 0,
					neg = 0;

		fill_float(q, nq * d, -1.0f, 1.0f);
		fill_float(x, nx * d, -1.0f, 1.0f);
		ivf_ref_norm_sq_block(q, nq, d, qn);
		ivf_ref_norm_sq_block(x, nx, d, xn);

		ivf_gemm_dot(q, nq, x, nx, d, out);
		for (i = 0; i < nq; i++)
			for (j = 0; j < nx; j++)
			{
				ExactSums	s;
				float		ref = ivf_ref_dot(q + i * d, x + j * d, d);

				exact_sums(q + i * d, x + j * d, d, &s);
				if (!close_enough(out[i * nx + j], ref, s.dotabs, d))
				{
					if (bad_dot++ < 3)
						check(0, "gemm_dot %zux%zux%zu [%zu,%zu]: %.9g vs %.9g",
							  nq, nx, d, i, j, out[i * nx + j], ref);
				}
			}
		check(bad_dot == 0, "gemm_dot %zux%zux%zu: %d bad entries", nq, nx, d, bad_dot);

		/* norms: both internal, both given, one given */
		for (variant = 0; variant < 3; variant++)
		{
			ivf_gemm_l2sq(q, nq, x, nx, d,
						  variant == 1 ? qn : NULL,
						  variant >= 1 ? xn : NULL, out);
			for (i = 0; i < nq; i++)
				for (j = 0; j < nx; j++)
				{
					float		ref = ivf_ref_l2sq(q + i * d, x + j * d, d);
					float		g = out[i * nx + j];
					double		tol = (4.0 * d + 32.0) * (FLT_EPSILON / 2) *
						((double) qn[i] + xn[j]) * 1.01;

					if (g < 0.0f || signbit(g))
						neg++;
					if (!(fabs((double) g - ref) <= tol))
					{
						if (bad_l2++ < 3)
							check(0, "gemm_l2sq %zux%zux%zu [%zu,%zu]: %.9g vs %.9g",
								  nq, nx, d, i, j, g, ref);
					}
				}
		}
		check(bad_l2 == 0, "gemm_l2sq %zux%zux%zu: %d bad entries", nq, nx, d, bad_l2);
		check(neg == 0, "gemm_l2sq %zux%zux%zu: %d negative entries", nq, nx, d, neg);
		free(q);
		free(x);
		free(out);
		free(qn);
		free(xn);
	}
	group_end();
}

/*
 * Many near-identical vectors of large norm: |q|^2 + |x|^2 - 2 q.x cancels
 * catastrophically, so raw GEMM values go negative; the API must clamp.
 */
static void
make_cancellation_data(float *v, size_t n, size_t d)
{
	float	   *base = xmalloc(d * sizeof(float));
	size_t		i,
				j;

	fill_float(base, d, 1000.0f, 2000.0f);
	for (i = 0; i < n; i++)
		for (j = 0; j < d; j++)
			v[i * d + j] = base[j] + (rng_next() % 4 == 0 ? rng_float(-1e-3f, 1e-3f) * base[j] * 1e-3f : 0.0f);
	free(base);
}

static void
test_gemm_cancellation(void)
{
	size_t		nq = 64,
				nx = 2000,
				d = 128;
	float	   *q = xmalloc(nq * d * sizeof(float));
	float	   *x = xmalloc(nx * d * sizeof(float));
	float	   *out = xmalloc(nq * nx * sizeof(float));
	size_t		i,
				neg = 0,
				nonzero = 0,
				clamped = 0;

	group_begin("%s: gemm_l2sq never negative under cancellation",
				ivf_simd_level_name(ivf_kernels.level));
	rng_seed(4101);
	make_cancellation_data(x, nx, d);
	/* queries: copies of base vectors (distance 0 to themselves) */
	memcpy(q, x, nq * d * sizeof(float));
	ivf_gemm_l2sq(q, nq, x, nx, d, NULL, NULL, out);
	for (i = 0; i < nq * nx; i++)
	{
		if (out[i] < 0.0f || signbit(out[i]) || isnan(out[i]))
			neg++;
		if (out[i] != 0.0f)
			nonzero++;
		if (out[i] == 0.0f &&
			ivf_ref_l2sq(q + (i / nx) * d, x + (i % nx) * d, d) > 0.0f)
			clamped++;
	}
	check(neg == 0, "%zu negative/NaN entries", neg);
	/* make sure the case really cancels: noise both ways, some clamped */
	check(nonzero > 0, "all entries zero");
	check(clamped > 0, "no entry needed clamping");
	free(q);
	free(x);
	free(out);
	group_end();
}

/* ---------------------------------------------------------------------
 * Exact k-NN
 * ---------------------------------------------------------------------
 */
typedef struct DistId
{
	double		d;
	int64_t		id;
} DistId;

static int
cmp_distid(const void *pa, const void *pb)
{
	const DistId *a = pa;
	const DistId *b = pb;

	if (a->d < b->d)
		return -1;
	if (a->d > b->d)
		return 1;
	return (a->id > b->id) - (a->id < b->id);
}

/*
 * Brute force with the given distance (NULL: double precision), sorted by
 * (dist, id) with NaN as +inf; pads with -1 / +inf like ivf_knn_l2sq.
 */
static void
brute_knn(const float *q, size_t nq, const float *x, size_t nx, size_t d,
		  size_t k, float (*dist) (const float *, const float *, size_t),
		  int64_t *ids, double *dists)
{
	DistId	   *all = xmalloc(nx * sizeof(DistId));
	size_t		i,
				j;

	for (i = 0; i < nq; i++)
	{
		for (j = 0; j < nx; j++)
		{
			double		v;

			if (dist != NULL)
				v = dist(q + i * d, x + j * d, d);
			else
			{
				size_t		t;

				v = 0.0;
				for (t = 0; t < d; t++)
				{
					double		df = (double) q[i * d + t] - x[j * d + t];

					v += df * df;
				}
			}
			all[j].d = isnan(v) ? INFINITY : v;
			all[j].id = (int64_t) j;
		}
		qsort(all, nx, sizeof(DistId), cmp_distid);
		for (j = 0; j < k; j++)
		{
			ids[i * k + j] = j < nx ? all[j].id : -1;
			dists[i * k + j] = j < nx ? all[j].d : INFINITY;
		}
	}
	free(all);
}

/* Run ivf_knn_l2sq and compare ids and distances to brute force. */
static void
knn_compare(const char *what, const float *q, size_t nq, const float *x,
			size_t nx, size_t d, size_t k)
{
	int64_t    *ids = xmalloc(nq * k * sizeof(int64_t));
	float	   *dists = xmalloc(nq * k * sizeof(float));
	int64_t    *bids = xmalloc(nq * k * sizeof(int64_t));
	double	   *bd = xmalloc(nq * k * sizeof(double));
	size_t		i,
				bad = 0;
	int			rc;

	rc = ivf_knn_l2sq(q, nq, x, nx, d, k, ids, dists);
	check(rc == 0, "%s: ivf_knn_l2sq returned %d", what, rc);
	brute_knn(q, nq, x, nx, d, k, ivf_kernels.l2sq, bids, bd);
	for (i = 0; i < nq * k; i++)
	{
		if (ids[i] != bids[i] || !((double) dists[i] == bd[i]))
		{
			if (bad++ < 3)
				check(0, "%s nq=%zu nx=%zu d=%zu k=%zu: query %zu rank %zu: id %lld (%.9g) vs brute %lld (%.9g)",
					  what, nq, nx, d, k, i / k, i % k, (long long) ids[i],
					  dists[i], (long long) bids[i], bd[i]);
		}
	}
	check(bad == 0, "%s nq=%zu nx=%zu d=%zu k=%zu: %zu mismatches", what, nq, nx, d, k, bad);
	free(ids);
	free(dists);
	free(bids);
	free(bd);
}

static void
test_knn(void)
{
	static const size_t ks[] = {1, 10, 100};
	size_t		ki;
	size_t		nq = 50,
				nx = 5000;
	float	   *q,
			   *x;

	group_begin("%s: ivf_knn_l2sq == brute force (ids, dists, ties)",
				ivf_simd_level_name(ivf_kernels.level));
	rng_seed(5001);

	/* random floats, GEMM path (nq >= 8) and exact path (nq < 8) */
	q = xmalloc(nq * 128 * sizeof(float));
	x = xmalloc(nx * 128 * sizeof(float));
	fill_float(q, nq * 128, 0.0f, 1.0f);
	fill_float(x, nx * 128, 0.0f, 1.0f);
	for (ki = 0; ki < 3; ki++)
	{
		knn_compare("random d=128", q, nq, x, nx, 128, ks[ki]);
		knn_compare("random d=33", q, nq, x, nx, 33, ks[ki]);
		knn_compare("random d=128, 3 queries", q, 3, x, nx, 128, ks[ki]);
	}

	/* many exact ties: tiny integer alphabet */
	fill_int(q, nq * 8, 0, 2);
	fill_int(x, nx * 8, 0, 2);
	knn_compare("ties d=8", q, nq, x, nx, 8, 10);
	knn_compare("ties d=8", q, nq, x, nx, 8, 100);
	fill_int(q, nq * 64, 0, 1);
	fill_int(x, nx * 64, 0, 1);
	knn_compare("ties d=64", q, nq, x, nx, 64, 50);

	/* duplicate rows: equal distances must come out by id */
	fill_float(x, 100 * 32, 0.0f, 1.0f);
	for (ki = 100; ki < nx; ki++)
		memcpy(x + ki * 32, x + (ki % 100) * 32, 32 * sizeof(float));
	fill_float(q, nq * 32, 0.0f, 1.0f);
	knn_compare("duplicate rows d=32", q, nq, x, nx, 32, 30);

	/* fewer vectors than k: padded with -1 / +inf */
	knn_compare("nx < k", q, nq, x, 7, 32, 10);
	knn_compare("nx < k, 1 query", q, 1, x, 3, 32, 5);
	free(q);
	free(x);

	/* heavy cancellation: shortlist cannot be proven, must fall back */
	nq = 16;
	nx = 3000;
	q = xmalloc(nq * 128 * sizeof(float));
	x = xmalloc(nx * 128 * sizeof(float));
	make_cancellation_data(x, nx, 128);
	memcpy(q, x + 100 * 128, nq * 128 * sizeof(float));
	q[0] += 0.5f;
	knn_compare("near-identical large-norm vectors", q, nq, x, nx, 128, 10);

	/* NaN in data ranks last and never crashes */
	fill_float(x, nx * 128, 0.0f, 1.0f);
	fill_float(q, nq * 128, 0.0f, 1.0f);
	x[5 * 128 + 3] = NAN;
	x[77 * 128] = NAN;
	knn_compare("NaN rows", q, nq, x, nx, 128, 10);
	knn_compare("NaN rows, all", q, nq, x, 100, 128, 100);
	free(q);
	free(x);
	group_end();
}

/* ---------------------------------------------------------------------
 * Real data: siftsmall
 * ---------------------------------------------------------------------
 */

static double
l2_double(const float *a, const float *b, size_t d)
{
	double		s = 0.0;
	size_t		i;

	for (i = 0; i < d; i++)
	{
		double		t = (double) a[i] - b[i];

		s += t * t;
	}
	return s;
}

/*
 * ivf_knn_l2sq at every compiled level, all queries at once (GEMM path) and
 * one by one (exact scan), against the double brute force (bids, bd).  With
 * ties, an id may differ from the brute force's where the distances tie
 * (integer data): the id found must then be at that exact distance.
 */
static void
knn_every_level(const float *query, size_t nqr, const float *base, size_t nb,
				size_t d, size_t k, const int64_t *bids, const double *bd,
				int ties)
{
	int64_t    *ids = xmalloc(nqr * k * sizeof(int64_t));
	float	   *dists = xmalloc(nqr * k * sizeof(float));
	IvfKernels	saved = ivf_kernels;
	size_t		i,
				lvl;

	for (lvl = 0; lvl < IVF_SIMD_NLEVELS; lvl++)
	{
		size_t		pass;

		if (ivf_kernels_set_level((IvfSimdLevel) lvl) != 0)
			continue;
		for (pass = 0; pass < 2; pass++)
		{
			int			rc = 0;

			if (pass == 0)
				rc = ivf_knn_l2sq(query, nqr, base, nb, d, k, ids, dists);
			else
				for (i = 0; i < nqr && rc == 0; i++)
					rc = ivf_knn_l2sq(query + i * d, 1, base, nb, d, k,
									  ids + i * k, dists + i * k);
			check(rc == 0, "%s: ivf_knn_l2sq failed", ivf_simd_level_name(lvl));
			for (i = 0; i < nqr * k; i++)
			{
				if (!ties)
					check(ids[i] == bids[i] && (double) dists[i] == bd[i],
						  "%s %s: query %zu rank %zu: id %lld (%.1f) vs exact %lld (%.1f)",
						  ivf_simd_level_name(lvl), pass == 0 ? "batch" : "single",
						  i / k, i % k, (long long) ids[i], dists[i],
						  (long long) bids[i], bd[i]);
				else
				{
					double		mine = l2_double(query + (i / k) * d,
												 base + (size_t) ids[i] * d, d);

					check((double) dists[i] == bd[i] && mine == bd[i],
						  "%s %s: query %zu rank %zu: id %lld (%.1f, exact %.1f) vs exact %lld (%.1f)",
						  ivf_simd_level_name(lvl), pass == 0 ? "batch" : "single",
						  i / k, i % k, (long long) ids[i], dists[i], mine,
						  (long long) bids[i], bd[i]);
				}
			}
		}
	}
	ivf_kernels = saved;
	free(ids);
	free(dists);
}

static void
test_siftsmall(const char *dir)
{
	char		path[4096];
	float	   *base,
			   *query;
	int32_t    *gt;
	size_t		nb,
				nqr,
				ngt,
				d,
				dq,
				dgt;
	size_t		k = 10;
	int64_t    *bids;
	double	   *bd;
	size_t		i,
				j;

	group_begin("siftsmall-128: knn top-10 == double brute force == ground truth");
	snprintf(path, sizeof(path), "%s/siftsmall-128/siftsmall_base.fvecs", dir);
	base = read_vecs(path, &nb, &d);
	snprintf(path, sizeof(path), "%s/siftsmall-128/siftsmall_query.fvecs", dir);
	query = read_vecs(path, &nqr, &dq);
	snprintf(path, sizeof(path), "%s/siftsmall-128/siftsmall_groundtruth.ivecs", dir);
	gt = read_vecs(path, &ngt, &dgt);
	if (!check(base != NULL && query != NULL && gt != NULL,
			   "cannot read siftsmall files under %s", dir))
	{
		group_end();
		return;
	}
	check(d == 128 && dq == 128 && nb == 10000 && nqr == 100 && ngt == 100 &&
		  dgt >= k, "unexpected siftsmall shapes");

	bids = xmalloc(nqr * k * sizeof(int64_t));
	bd = xmalloc(nqr * k * sizeof(double));
	brute_knn(query, nqr, base, nb, d, k, NULL, bids, bd);

	/* the official ground truth may order exact ties differently */
	for (i = 0; i < nqr; i++)
		for (j = 0; j < k; j++)
		{
			int32_t		g = gt[i * dgt + j];
			double		gd = l2_double(query + i * d, base + (size_t) g * d, d);

			check(g == bids[i * k + j] || gd == bd[i * k + j],
				  "query %zu rank %zu: ground truth %d (%.1f) vs brute %lld (%.1f)",
				  i, j, g, gd, (long long) bids[i * k + j], bd[i * k + j]);
		}

	knn_every_level(query, nqr, base, nb, d, k, bids, bd, 0);
	free(bids);
	free(bd);
	free(base);
	free(query);
	free(gt);
	group_end();
}

/*
 * Without siftsmall: Fashion-MNIST (10,000 training images as base, 100
 * test images as queries, 784 dims).  Pixels are integers, so squared
 * distances are exact integers and ties are common: an id may differ from
 * the double brute force's only where the distances tie.
 */
static void
test_fashion_mnist(void)
{
	float	   *base,
			   *query;
	size_t		nb = 0,
				nqr = 0,
				d = 0,
				dq = 0;
	size_t		k = 10;
	int64_t    *bids;
	double	   *bd;

	group_begin("Fashion-MNIST 10000 x 784: knn top-10 == double brute force");
	base = read_fashion_mnist("train", 10000, &nb, &d);
	query = read_fashion_mnist("t10k", 100, &nqr, &dq);
	if (!check(base != NULL && query != NULL && d == 784 && dq == 784 &&
			   nb == 10000 && nqr == 100,
			   "cannot read Fashion-MNIST (install dataset-fashion-mnist)"))
	{
		free(base);
		free(query);
		group_end();
		return;
	}
	bids = xmalloc(nqr * k * sizeof(int64_t));
	bd = xmalloc(nqr * k * sizeof(double));
	brute_knn(query, nqr, base, nb, d, k, NULL, bids, bd);

	knn_every_level(query, nqr, base, nb, d, k, bids, bd, 1);
	free(bids);
	free(bd);
	free(base);
	free(query);
	group_end();
}

/* ---------------------------------------------------------------------
 * Top-k
 * ---------------------------------------------------------------------
 */
static void
topk_expected(const float *v, const int64_t *idv, size_t n, size_t k,
			  DistId *sorted)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		sorted[i].d = isnan(v[i]) ? INFINITY : v[i];
		sorted[i].id = idv[i];
	}
	qsort(sorted, n, sizeof(DistId), cmp_distid);
	(void) k;
}

static void
test_topk(void)
{
	static const size_t ns[] = {0, 1, 7, 100, 1000, 5000};
	static const size_t ks[] = {0, 1, 2, 5, 64, 100, 1000, 1500};
	size_t		ni,
				ki;
	int			dist_kind;

	group_begin("topk: push / push_block / push_block_ids vs full sort (ties, NaN)");
	rng_seed(6001);
	/* dist_kind 1: mostly NaN / +inf, so the k-th entry is often +inf */
	for (dist_kind = 0; dist_kind < 2; dist_kind++)
	for (ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++)
	{
		for (ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++)
		{
			size_t		n = ns[ni];
			size_t		k = ks[ki];
			float	   *v = xmalloc(n * sizeof(float));
			int64_t    *idv = xmalloc(n * sizeof(int64_t));
			int64_t    *perm = xmalloc(n * sizeof(int64_t));
			DistId	   *sorted = xmalloc(n * sizeof(DistId));
			float	   *hd = xmalloc(k * sizeof(float));
			int64_t    *hi = xmalloc(k * sizeof(int64_t));
			size_t		i,
						mode;

			/* few distinct values -> many ties; some NaN and infinities */
			for (i = 0; i < n; i++)
			{
				int			r = rng_int(0, 99);

				if (dist_kind == 1)
					r = r < 60 ? r / 12 : r;
				v[i] = r < 5 ? NAN : r < 8 ? INFINITY : r < 10 ? -INFINITY :
					(float) rng_int(0, 20) * 0.5f;
				idv[i] = (int64_t) i;
				perm[i] = (int64_t) i;
			}
			/* a shuffled, sparse id set for push_block_ids */
			for (i = n; i > 1; i--)
			{
				size_t		j = rng_next() % i;
				int64_t		t = perm[i - 1];

				perm[i - 1] = perm[j];
				perm[j] = t;
			}
			for (i = 0; i < n; i++)
				perm[i] = perm[i] * 3 + 1000000007LL;

			for (mode = 0; mode < 4; mode++)
			{
				IvfTopK		h;
				size_t		m,
							expect = n < k ? n : k;
				const int64_t *idsrc = mode == 3 ? perm : idv;
				int			ok = 1;

				topk_expected(v, idsrc, n, k, sorted);
				ivf_topk_init(&h, k, hd, hi);
				if (mode == 0)
					for (i = 0; i < n; i++)
						ivf_topk_push(&h, v[i], idv[i]);
				else if (mode == 1)
					ivf_topk_push_block(&h, v, n, 0);
				else if (mode == 2)
				{
					/* uneven chunks, as an index scan would push */
					for (i = 0; i < n;)
					{
						size_t		c = (size_t) rng_int(1, 37);

						if (c > n - i)
							c = n - i;
						ivf_topk_push_block(&h, v + i, c, (int64_t) i);
						i += c;
					}
				}
				else
					ivf_topk_push_block_ids(&h, v, perm, n);

				m = ivf_topk_sort(&h);
				ok = m == expect;
				for (i = 0; ok && i < m; i++)
					ok = hi[i] == sorted[i].id &&
						(double) hd[i] == sorted[i].d && !isnan(hd[i]);
				check(ok, "topk n=%zu k=%zu mode=%zu: wrong result (count %zu, want %zu)",
					  n, k, mode, m, expect);
			}
			free(v);
			free(idv);
			free(perm);
			free(sorted);
			free(hd);
			free(hi);
		}
	}

	/* worst / full helpers, and reset */
	{
		float		hd[3];
		int64_t		hi[3];
		IvfTopK		h;

		ivf_topk_init(&h, 3, hd, hi);
		check(isinf(ivf_topk_worst(&h)) && ivf_topk_worst(&h) > 0, "worst of empty heap");
		ivf_topk_push(&h, 5.0f, 1);
		ivf_topk_push(&h, 2.0f, 2);
		check(!ivf_topk_full(&h), "not full after 2 of 3");
		ivf_topk_push(&h, 9.0f, 3);
		check(ivf_topk_full(&h) && ivf_topk_worst(&h) == 9.0f, "worst after fill");
		check(ivf_topk_push(&h, 9.0f, 4) == 0, "tie with larger id rejected");
		check(ivf_topk_push(&h, 9.0f, 0) == 1, "tie with smaller id accepted");
		check(ivf_topk_push(&h, NAN, 0) == 0, "NaN rejected when full");
		ivf_topk_reset(&h);
		check(h.n == 0, "reset");
		ivf_topk_init(&h, 0, NULL, NULL);
		check(ivf_topk_push(&h, 1.0f, 1) == 0 && ivf_topk_sort(&h) == 0, "k = 0");
		ivf_topk_push_block(&h, hd, 0, 0);
		check(h.n == 0, "k = 0, empty block");
	}

	/* +inf at the top: a NaN with a smaller id still gets in, in any order */
	{
		float		hd[3];
		int64_t		hi[3];
		float		nans[9];
		int64_t		nan_ids[9] = {50, 1, 60, 2, 70, 80, 90, 95, 99};
		IvfTopK		h;
		int			mode;

		for (mode = 0; mode < 2; mode++)
		{
			size_t		i;

			for (i = 0; i < 9; i++)
				nans[i] = NAN;
			ivf_topk_init(&h, 3, hd, hi);
			ivf_topk_push(&h, INFINITY, 10);
			ivf_topk_push(&h, INFINITY, 11);
			ivf_topk_push(&h, 4.0f, 12);
			if (mode == 0)
				ivf_topk_push_block(&h, nans, 9, 0);
			else
				ivf_topk_push_block_ids(&h, nans, nan_ids, 9);
			ivf_topk_sort(&h);
			check(hi[0] == 12 && hd[0] == 4.0f && isinf(hd[1]) && isinf(hd[2]) &&
				  hi[1] == (mode == 0 ? 0 : 1) && hi[2] == (mode == 0 ? 1 : 2),
				  "NaN vs +inf by id, mode %d: got %lld %lld %lld", mode,
				  (long long) hi[0], (long long) hi[1], (long long) hi[2]);
		}
	}
	group_end();
}

/* ---------------------------------------------------------------------
 * Dispatch
 * ---------------------------------------------------------------------
 */
static void
test_dispatch_before_init(void)
{
	group_begin("dispatch: table is scalar and complete before init");
	check(ivf_kernels.level == IVF_SIMD_SCALAR, "level before init");
	check(ivf_kernels.l2sq != NULL && ivf_kernels.dot != NULL &&
		  ivf_kernels.l1 != NULL && ivf_kernels.norm_sq != NULL &&
		  ivf_kernels.cosine_parts != NULL && ivf_kernels.l2sq_block != NULL &&
		  ivf_kernels.dot_block != NULL && ivf_kernels.norm_sq_block != NULL &&
		  ivf_kernels.sq8_dot_block != NULL && ivf_kernels.sq8_l2_bounds != NULL,
		  "NULL pointer before init");
	group_end();
}

static void
test_dispatch(void)
{
	IvfSimdLevel best = ivf_simd_best_level();
	int			lvl;
	IvfKernels	k;

	group_begin("dispatch: init, set_level, get, level names");
	ivf_kernels_init();
	ivf_kernels_init();
	check(ivf_kernels.level == best, "init picks best level");
	check(ivf_simd_level_supported(IVF_SIMD_SCALAR), "scalar supported");
	check(ivf_simd_level_supported(best), "best level supported");
	for (lvl = 0; lvl < IVF_SIMD_NLEVELS; lvl++)
	{
		int			sup = ivf_simd_level_supported((IvfSimdLevel) lvl);
		IvfSimdLevel before = ivf_kernels.level;
		int			rc = ivf_kernels_set_level((IvfSimdLevel) lvl);

		if (sup)
			check(rc == 0 && ivf_kernels.level == (IvfSimdLevel) lvl,
				  "set_level(%s) should succeed", ivf_simd_level_name(lvl));
		else
			check(rc == -1 && ivf_kernels.level == before,
				  "set_level(%s) should be rejected", ivf_simd_level_name(lvl));
		check((ivf_kernels_get((IvfSimdLevel) lvl, &k) == 0) == sup &&
			  (!sup || k.level == (IvfSimdLevel) lvl),
			  "get(%s)", ivf_simd_level_name(lvl));
		check(!sup || lvl <= (int) best || lvl == IVF_SIMD_NEON,
			  "best level is not the best supported");
		check(ivf_simd_level_from_name(ivf_simd_level_name(lvl)) == lvl,
			  "name round trip %d", lvl);
	}
#if defined(__x86_64__)
	check(!ivf_simd_level_supported(IVF_SIMD_NEON), "neon on x86");
	check(ivf_kernels_set_level(IVF_SIMD_NEON) == -1, "set neon on x86");
#endif
	check(ivf_kernels_set_level(IVF_SIMD_NLEVELS) == -1, "set NLEVELS");
	check(ivf_kernels_set_level((IvfSimdLevel) -1) == -1, "set -1");
	check(ivf_kernels_set_level((IvfSimdLevel) 1000) == -1, "set 1000");
	check(strcmp(ivf_simd_level_name(IVF_SIMD_NLEVELS), "unknown") == 0, "name of NLEVELS");
	check(ivf_simd_level_from_name("scalar") == IVF_SIMD_SCALAR, "parse scalar");
	check(ivf_simd_level_from_name("avx2") == IVF_SIMD_AVX2, "parse avx2");
	check(ivf_simd_level_from_name("AVX512") == IVF_SIMD_AVX512, "parse AVX512");
	check(ivf_simd_level_from_name("Neon") == IVF_SIMD_NEON, "parse Neon");
	check(ivf_simd_level_from_name("") == -1, "parse empty");
	check(ivf_simd_level_from_name(NULL) == -1, "parse NULL");
	check(ivf_simd_level_from_name("avx") == -1, "parse avx");
	check(ivf_simd_level_from_name("avx5120") == -1, "parse avx5120");
	check(ivf_simd_level_from_name("sse2") == -1, "parse sse2");
	ivf_kernels_init();
	check(ivf_kernels.level == best, "init again restores best");
	group_end();
}

int
main(void)
{
	const char *data_dir = getenv("IVF_DATA_DIR");
	IvfKernels	k;
	int			lvl;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ivf_blas_set_threads(1);

	test_dispatch_before_init();
	test_dispatch();

	printf("levels:");
	for (lvl = 0; lvl < IVF_SIMD_NLEVELS; lvl++)
		printf(" %s=%s", ivf_simd_level_name(lvl),
			   ivf_simd_level_supported(lvl) ? "yes" : "no");
	printf("; best %s\n", ivf_simd_level_name(ivf_simd_best_level()));

	for (lvl = 0; lvl < IVF_SIMD_NLEVELS; lvl++)
	{
		if (ivf_kernels_get((IvfSimdLevel) lvl, &k) != 0)
			continue;
		test_pair_kernels(&k, 1);
		test_pair_kernels(&k, 0);
		test_block_kernels(&k, 1);
		test_block_kernels(&k, 0);
		test_special_values(&k);
		test_sq8_kernels(&k);
		test_sq8_l2_bounds(&k);
		test_row_kernels(&k);
		test_add_f64(&k);
		test_sq8_bound(&k);

		ivf_kernels_set_level((IvfSimdLevel) lvl);
		test_gemm();
		test_gemm_cancellation();
		test_knn();
	}
	ivf_kernels_init();

	test_sq8_train_encode();
	test_topk();

	/* siftsmall from IVF_DATA_DIR when it is there, else Fashion-MNIST */
	if (data_dir != NULL && data_dir[0] != '\0')
		test_siftsmall(data_dir);
	else
		test_fashion_mnist();

	return check_summary();
}
