/*-------------------------------------------------------------------------
 *
 * test_select.c
 *	  Standalone test of select.c: ivf_select_smallest() and the sorted
 *	  stream (no server needed).
 *
 * - Every result is compared with a full qsort of the same entries by the
 *   documented order ((dist, id); NaN after +inf and by id among NaNs;
 *   -0.0 == +0.0, decided by id): the selected prefix must match the
 *   reference bit for bit, and the rest must be the reference's remaining
 *   entries (the arrays stay a permutation of the input).
 * - Draining a stream must give exactly the fully sorted sequence.
 * - Work: the first 10 entries of a 10^6- (and a 20000-) entry stream must
 *   cost O(n) key comparisons (select.c's deterministic counters), far
 *   below a full sort; natural orders (sorted, reverse, organ pipe, few
 *   values) must not need the depth guard.  Timings are printed, not
 *   asserted.
 * - Worst case: inputs built by McIlroy's "killer adversary" against the
 *   very pivot rules of select.c (a renamed copy of select.c compiled below
 *   with an adversarial comparison; the real run must follow the same path,
 *   which the counters confirm) must trip the depth guard and stay
 *   O(n log n), for one selection and for a drained stream.  Musser's
 *   median-of-3 killer must stay O(n log n) too.
 *
 * Prints one line per check group and finally "N passed, M failed"; exits
 * 1 if anything failed.
 *
 *-------------------------------------------------------------------------
 */
#include "select.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

static double
log2n(size_t n)
{
	return n > 1 ? log2((double) n) : 1.0;
}

/* ---------------------------------------------------------------------
 * Reference order: the documented (dist, id) order, then the float's bits
 * so that the reference sort is a total order on entries.
 * ---------------------------------------------------------------------
 */
typedef struct Ent
{
	float		d;
	int64_t		id;
} Ent;

static int
ent_cmp(const void *pa, const void *pb)
{
	const Ent  *a = pa;
	const Ent  *b = pb;
	int			na = isnan(a->d) != 0;
	int			nb = isnan(b->d) != 0;
	uint32_t	ba,
				bb;

	if (na != nb)
		return na ? 1 : -1;
	if (!na)
	{
		/* IEEE comparison: -0.0 == +0.0 */
		if (a->d < b->d)
			return -1;
		if (a->d > b->d)
			return 1;
	}
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	ba = float_bits(a->d);
	bb = float_bits(b->d);
	return ba < bb ? -1 : ba > bb;
}

static int
same_ent(float d, int64_t id, const Ent *e)
{
	return float_bits(d) == float_bits(e->d) && id == e->id;
}

/* ---------------------------------------------------------------------
 * Input distributions
 * ---------------------------------------------------------------------
 */
enum
{
	D_UNIFORM,
	D_DUP3,
	D_ALL_EQUAL,
	D_SORTED,
	D_REVERSE,
	D_ORGAN_PIPE,
	D_SPECIAL,
	D_SIGNED_ZERO,
	D_HALF_NAN,
	D_DUP_PAIRS,
	D_NKINDS
};

static const char *const dist_names[D_NKINDS] = {
	"uniform random",
	"values from {0,1,2}",
	"all equal (ties by id)",
	"sorted",
	"reverse sorted",
	"organ pipe",
	"+-inf, NaNs, +-0, extremes",
	"-0.0 / +0.0 only (ties by id)",
	"half NaN (NaN region needed)",
	"repeated (dist, id) pairs",
};

static float
special_value(void)
{
	switch (rng_int(0, 13))
	{
		case 0:
			return INFINITY;
		case 1:
			return -INFINITY;
		case 2:
			return NAN;
		case 3:
			return bits_float(0xffc00000u);	/* -NaN */
		case 4:
			return bits_float(0x7f800001u);	/* signalling NaN payload */
		case 5:
			return -0.0f;
		case 6:
			return 0.0f;
		case 7:
			return FLT_MAX;
		case 8:
			return -FLT_MAX;
		case 9:
			return FLT_TRUE_MIN;
		case 10:
			return (float) rng_int(-2, 2);
		default:
			return rng_float(-10.0f, 10.0f);
	}
}

/*
 * Fill dist/id with n entries of the given kind.  Ids are a shuffled, sparse
 * set including negative values (unique), except for D_DUP_PAIRS.
 */
static void
gen_input(int kind, size_t n, float *dist, int64_t *id, uint64_t seed)
{
	size_t		i;

	rng_seed(seed);
	for (i = 0; i < n; i++)
	{
		float		v;

		switch (kind)
		{
			case D_UNIFORM:
				v = rng_float(0.0f, 100.0f);
				break;
			case D_DUP3:
			case D_DUP_PAIRS:
				v = (float) rng_int(0, 2);
				break;
			case D_ALL_EQUAL:
				v = 1.5f;
				break;
			case D_SORTED:
				v = (float) i * 0.25f;
				break;
			case D_REVERSE:
				v = (float) (n - i);
				break;
			case D_ORGAN_PIPE:
				v = (float) (i < n / 2 ? i : n - i);
				break;
			case D_SPECIAL:
				v = special_value();
				break;
			case D_SIGNED_ZERO:
				v = rng_int(0, 1) ? -0.0f : 0.0f;
				break;
			case D_HALF_NAN:
				v = rng_int(0, 1) ? rng_float(0.0f, 1.0f) :
					rng_int(0, 1) ? NAN : bits_float(0xffc00001u);
				break;
			default:
				v = 0.0f;
				break;
		}
		dist[i] = v;
		if (kind == D_DUP_PAIRS)
			id[i] = rng_int(0, 3);
		else
			id[i] = (int64_t) i * 7919 - (int64_t) n * 3000;
	}
	if (kind != D_DUP_PAIRS)
	{
		/* shuffle the ids */
		for (i = n; i > 1; i--)
		{
			size_t		j = rng_next() % i;
			int64_t		t = id[i - 1];

			id[i - 1] = id[j];
			id[j] = t;
		}
	}
}

static Ent *
sorted_reference(const float *dist, const int64_t *id, size_t n)
{
	Ent		   *ref = xmalloc(n * sizeof(Ent));
	size_t		i;

	for (i = 0; i < n; i++)
	{
		ref[i].d = dist[i];
		ref[i].id = id[i];
	}
	qsort(ref, n, sizeof(Ent), ent_cmp);
	return ref;
}

/*
 * Check that dist/id hold, at [0, k), exactly ref[0, k) and at [k, n) (in
 * any order) exactly ref[k, n).  Returns 1 if all is well.
 */
static int
check_selected(const float *dist, const int64_t *id, size_t n, size_t k,
			   const Ent *ref, const char *what)
{
	Ent		   *tail;
	size_t		i;
	int			ok = 1;

	for (i = 0; i < k && ok; i++)
		ok = check(same_ent(dist[i], id[i], &ref[i]),
				   "%s: position %zu is (%g, %lld), expected (%g, %lld)",
				   what, i, dist[i], (long long) id[i], ref[i].d,
				   (long long) ref[i].id);
	if (!ok)
		return 0;

	tail = xmalloc((n - k) * sizeof(Ent));
	for (i = k; i < n; i++)
	{
		tail[i - k].d = dist[i];
		tail[i - k].id = id[i];
	}
	qsort(tail, n - k, sizeof(Ent), ent_cmp);
	for (i = k; i < n && ok; i++)
		ok = same_ent(tail[i - k].d, tail[i - k].id, &ref[i]);
	check(ok, "%s: the unselected rest is not the reference's rest "
		  "(entries lost or duplicated)", what);
	free(tail);
	return ok;
}

static const size_t test_ns[] = {0, 1, 2, 3, 10, 17, 100, 1000, 4099, 100000};
#define N_TEST_NS (sizeof(test_ns) / sizeof(test_ns[0]))

/* ---------------------------------------------------------------------
 * ivf_select_smallest vs full sort
 * ---------------------------------------------------------------------
 */
static void
test_select_vs_reference(int kind)
{
	size_t		ni;

	group_begin("select: %s", dist_names[kind]);
	for (ni = 0; ni < N_TEST_NS; ni++)
	{
		size_t		n = test_ns[ni];
		size_t		ks[9];
		size_t		nk = 0;
		size_t		ki;
		float	   *d0 = xmalloc(n * sizeof(float));
		int64_t    *i0 = xmalloc(n * sizeof(int64_t));
		float	   *d = xmalloc(n * sizeof(float));
		int64_t    *id = xmalloc(n * sizeof(int64_t));
		Ent		   *ref;

		gen_input(kind, n, d0, i0, 1000 + 17 * kind + n);
		ref = sorted_reference(d0, i0, n);

		ks[nk++] = 0;
		ks[nk++] = 1;
		ks[nk++] = 2;
		ks[nk++] = 10;
		ks[nk++] = n / 2;
		if (n > 0)
			ks[nk++] = n - 1;
		ks[nk++] = n;
		ks[nk++] = n + 5;
		ks[nk++] = SIZE_MAX;

		for (ki = 0; ki < nk; ki++)
		{
			size_t		k = ks[ki];
			size_t		expect = k < n ? k : n;
			size_t		r;
			char		what[96];

			memcpy(d, d0, n * sizeof(float));
			memcpy(id, i0, n * sizeof(int64_t));
			r = ivf_select_smallest(d, id, n, k);
			snprintf(what, sizeof(what), "n=%zu k=%zu", n, k);
			check(r == expect, "%s: returned %zu, expected %zu", what, r,
				  expect);
			check_selected(d, id, n, expect, ref, what);
		}
		free(d0);
		free(i0);
		free(d);
		free(id);
		free(ref);
	}
	group_end();
}

/* ---------------------------------------------------------------------
 * Stream drained vs full sort
 * ---------------------------------------------------------------------
 */
static void
test_stream_vs_reference(int kind)
{
	static const size_t chunks[] = {0, 1, 3, 32};
	size_t		ni,
				ci;

	group_begin("stream drain: %s", dist_names[kind]);
	for (ni = 0; ni < N_TEST_NS; ni++)
	{
		size_t		n = test_ns[ni];
		float	   *d0 = xmalloc(n * sizeof(float));
		int64_t    *i0 = xmalloc(n * sizeof(int64_t));
		float	   *d = xmalloc(n * sizeof(float));
		int64_t    *id = xmalloc(n * sizeof(int64_t));
		Ent		   *ref;

		gen_input(kind, n, d0, i0, 5000 + 17 * kind + n);
		ref = sorted_reference(d0, i0, n);

		for (ci = 0; ci < sizeof(chunks) / sizeof(chunks[0]); ci++)
		{
			IvfSelectStream s;
			size_t		got = 0;
			float		od;
			int64_t		oid;
			int			ok = 1;

			memcpy(d, d0, n * sizeof(float));
			memcpy(id, i0, n * sizeof(int64_t));
			ivf_select_stream_init(&s, d, id, n, chunks[ci]);
			while (ivf_select_stream_next(&s, &od, &oid))
			{
				if (got >= n)
				{
					ok = 0;
					break;
				}
				if (ok && !same_ent(od, oid, &ref[got]))
				{
					check(0, "n=%zu chunk=%zu: entry %zu is (%g, %lld), "
						  "expected (%g, %lld)", n, chunks[ci], got, od,
						  (long long) oid, ref[got].d,
						  (long long) ref[got].id);
					ok = 0;
				}
				got++;
			}
			check(ok, "n=%zu chunk=%zu: wrong sequence", n, chunks[ci]);
			check(got == n, "n=%zu chunk=%zu: %zu entries, expected %zu",
				  n, chunks[ci], got, n);
			check(ivf_select_stream_next(&s, &od, &oid) == 0,
				  "n=%zu chunk=%zu: entries after exhaustion", n, chunks[ci]);
			/* exhausted: the arrays themselves are sorted */
			check_selected(d, id, n, n, ref, "arrays after drain");
		}
		free(d0);
		free(i0);
		free(d);
		free(id);
		free(ref);
	}
	group_end();
}

/* Chunk doubling saturates instead of overflowing. */
static void
test_stream_chunk_cap(void)
{
	IvfSelectStream s;
	float		d[3] = {3.0f, 1.0f, 2.0f};
	int64_t		id[3] = {30, 10, 20};
	float		od;
	int64_t		oid;
	int			i;

	group_begin("stream: huge first chunk saturates, never overflows");
	ivf_select_stream_init(&s, d, id, 3, SIZE_MAX / 2 + 7);
	for (i = 1; i <= 3; i++)
	{
		check(ivf_select_stream_next(&s, &od, &oid) == 1 && od == (float) i &&
			  oid == 10 * i, "entry %d", i);
		check(s.chunk == SIZE_MAX, "chunk is %zu after the first select",
			  s.chunk);
	}
	check(ivf_select_stream_next(&s, &od, &oid) == 0, "exhausted");
	group_end();
}

/* ---------------------------------------------------------------------
 * Work and timing at n = 10^6
 * ---------------------------------------------------------------------
 */
#define BIG_N 1000000

static void
test_work_and_timing(void)
{
	size_t		n = BIG_N;
	float	   *d0 = xmalloc(n * sizeof(float));
	int64_t    *i0 = xmalloc(n * sizeof(int64_t));
	float	   *d = xmalloc(n * sizeof(float));
	int64_t    *id = xmalloc(n * sizeof(int64_t));
	Ent		   *ref;
	IvfSelectStats st_first,
				st_full,
				st_drain,
				st_k10;
	double		t_first = 1e30,
				t_full = 1e30,
				t_drain = 1e30,
				t_k10 = 1e30,
				t_qsort,
				t0;
	int			rep;
	int			ok;
	size_t		i;

	group_begin("work: first 10 of a 10^6 stream is O(n), full sort is not");
	gen_input(D_UNIFORM, n, d0, i0, 777);
	t0 = now_sec();
	ref = sorted_reference(d0, i0, n);
	t_qsort = now_sec() - t0;

	for (rep = 0; rep < 3; rep++)
	{
		IvfSelectStream s;
		float		od;
		int64_t		oid;
		double		t;

		/* first 10 through a stream (first chunk 32, as the scan does) */
		memcpy(d, d0, n * sizeof(float));
		memcpy(id, i0, n * sizeof(int64_t));
		memset(&st_first, 0, sizeof(st_first));
		ok = 1;
		t0 = now_sec();
		ivf_select_stream_init(&s, d, id, n, 32);
		s.stats = &st_first;
		for (i = 0; i < 10; i++)
		{
			ok &= ivf_select_stream_next(&s, &od, &oid);
			ok &= same_ent(od, oid, &ref[i]);
		}
		t = now_sec() - t0;
		if (t < t_first)
			t_first = t;
		if (rep == 0)
			check(ok, "first 10 of the stream differ from the reference");

		/* k = 10 directly */
		memcpy(d, d0, n * sizeof(float));
		memcpy(id, i0, n * sizeof(int64_t));
		memset(&st_k10, 0, sizeof(st_k10));
		t0 = now_sec();
		ivf_select_smallest_stats(d, id, n, 10, &st_k10);
		t = now_sec() - t0;
		if (t < t_k10)
			t_k10 = t;

		/* full sort */
		memcpy(d, d0, n * sizeof(float));
		memcpy(id, i0, n * sizeof(int64_t));
		memset(&st_full, 0, sizeof(st_full));
		t0 = now_sec();
		ivf_select_smallest_stats(d, id, n, n, &st_full);
		t = now_sec() - t0;
		if (t < t_full)
			t_full = t;
		if (rep == 0)
			check_selected(d, id, n, n, ref, "full sort");

		/* draining the stream */
		memcpy(d, d0, n * sizeof(float));
		memcpy(id, i0, n * sizeof(int64_t));
		memset(&st_drain, 0, sizeof(st_drain));
		ok = 1;
		i = 0;
		t0 = now_sec();
		ivf_select_stream_init(&s, d, id, n, 32);
		s.stats = &st_drain;
		while (ivf_select_stream_next(&s, &od, &oid))
			i++;
		t = now_sec() - t0;
		if (t < t_drain)
			t_drain = t;
		if (rep == 0)
		{
			check(i == n, "drained %zu of %zu", i, n);
			check_selected(d, id, n, n, ref, "drained stream");
		}
	}

	/* deterministic bounds on the work counters */
	check(st_first.compares <= 2 * (uint64_t) n,
		  "first 10 of stream: %llu compares > 2n",
		  (unsigned long long) st_first.compares);
	check(st_k10.compares <= 2 * (uint64_t) n,
		  "k = 10: %llu compares > 2n", (unsigned long long) st_k10.compares);
	check(st_full.compares >= 10 * (uint64_t) n,
		  "full sort: only %llu compares (expected ~n log2 n)",
		  (unsigned long long) st_full.compares);
	check(st_full.compares <= 3 * (uint64_t) (n * log2n(n)),
		  "full sort: %llu compares > 3 n log2 n",
		  (unsigned long long) st_full.compares);
	check(st_drain.compares <= 4 * (uint64_t) (n * log2n(n)),
		  "drain: %llu compares > 4 n log2 n",
		  (unsigned long long) st_drain.compares);
	check(st_first.compares * 4 < st_full.compares,
		  "first 10 (%llu compares) not far below full sort (%llu)",
		  (unsigned long long) st_first.compares,
		  (unsigned long long) st_full.compares);
	check(st_first.fallbacks == 0 && st_full.fallbacks == 0 &&
		  st_drain.fallbacks == 0 && st_k10.fallbacks == 0,
		  "depth guard tripped on random input");
	group_end();

	printf("      n=%d uniform: first 10 via stream %.2f ms (%.2f compares/n), "
		   "k=10 %.2f ms (%.2f/n)\n", BIG_N, t_first * 1e3,
		   (double) st_first.compares / n, t_k10 * 1e3,
		   (double) st_k10.compares / n);
	printf("      full sort %.2f ms (%.2f compares/n, depth %llu), "
		   "drain %.2f ms (%.2f/n, %llu selects), qsort %.2f ms\n",
		   t_full * 1e3, (double) st_full.compares / n,
		   (unsigned long long) st_full.max_depth, t_drain * 1e3,
		   (double) st_drain.compares / n,
		   (unsigned long long) st_drain.calls, t_qsort * 1e3);
	printf("      first-10 / full-sort time ratio %.4f\n", t_first / t_full);

	/* the typical case: LIMIT 10 over 20000 candidates */
	{
		size_t		m = 20000;
		IvfSelectStream s;
		IvfSelectStats st;
		float		od;
		int64_t		oid;
		double		t,
					tbest = 1e30;

		group_begin("work: first 10 of a 20000 stream is O(n)");
		for (rep = 0; rep < 5; rep++)
		{
			gen_input(D_UNIFORM, m, d, id, 778);
			memset(&st, 0, sizeof(st));
			t0 = now_sec();
			ivf_select_stream_init(&s, d, id, m, 32);
			s.stats = &st;
			for (i = 0; i < 10; i++)
				ivf_select_stream_next(&s, &od, &oid);
			t = now_sec() - t0;
			if (t < tbest)
				tbest = t;
		}
		check(st.compares <= 2 * (uint64_t) m,
			  "first 10 of 20000: %llu compares > 2n",
			  (unsigned long long) st.compares);
		group_end();
		printf("      n=20000 uniform: first 10 via stream %.1f us "
			   "(%.2f compares/n)\n", tbest * 1e6,
			   (double) st.compares / m);
	}

	free(d0);
	free(i0);
	free(d);
	free(id);
	free(ref);
}

/*
 * Natural orders at n = 10^6 (sorted, reverse, organ pipe, few values,
 * all equal): the pivots must cope without the depth guard, and a full sort
 * stay near n log2 n comparisons.  Sortedness is checked in one pass; the
 * permutation property is covered by the reference tests above.
 */
static void
test_patterns_big(void)
{
	static const int kinds[] = {D_SORTED, D_REVERSE, D_ORGAN_PIPE, D_DUP3,
	D_ALL_EQUAL};
	size_t		n = BIG_N;
	float	   *d = xmalloc(n * sizeof(float));
	int64_t    *id = xmalloc(n * sizeof(int64_t));
	size_t		ki;

	group_begin("patterns at n=10^6: no depth-guard trips, ~n log2 n work");
	for (ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++)
	{
		int			kind = kinds[ki];
		IvfSelectStats st10,
					stn;
		double		t0,
					t10,
					tn;
		size_t		i;
		int			ok = 1;

		gen_input(kind, n, d, id, 9000 + kind);
		memset(&st10, 0, sizeof(st10));
		t0 = now_sec();
		ivf_select_smallest_stats(d, id, n, 10, &st10);
		t10 = now_sec() - t0;

		gen_input(kind, n, d, id, 9000 + kind);
		memset(&stn, 0, sizeof(stn));
		t0 = now_sec();
		ivf_select_smallest_stats(d, id, n, n, &stn);
		tn = now_sec() - t0;
		for (i = 1; i < n && ok; i++)
		{
			Ent			a = {d[i - 1], id[i - 1]};
			Ent			b = {d[i], id[i]};

			ok = ent_cmp(&a, &b) < 0;
		}
		check(ok, "%s: full sort out of order at %zu", dist_names[kind], i);
		check(st10.compares <= 2 * (uint64_t) n && st10.fallbacks == 0,
			  "%s: k=10 took %llu compares, %llu fallbacks",
			  dist_names[kind], (unsigned long long) st10.compares,
			  (unsigned long long) st10.fallbacks);
		check(stn.fallbacks == 0, "%s: full sort tripped the depth guard "
			  "%llu times", dist_names[kind],
			  (unsigned long long) stn.fallbacks);
		check((double) stn.compares <= 1.5 * (double) n * log2n(n),
			  "%s: full sort took %llu compares > 1.5 n log2 n",
			  dist_names[kind], (unsigned long long) stn.compares);
		printf("      %-30s k=10 %6.2f ms (%.2f compares/n) | full sort "
			   "%6.2f ms (%5.2f/n, depth %llu)\n", dist_names[kind],
			   t10 * 1e3, (double) st10.compares / n, tn * 1e3,
			   (double) stn.compares / n,
			   (unsigned long long) stn.max_depth);
	}
	group_end();
	free(d);
	free(id);
}

/* ---------------------------------------------------------------------
 * Adversarial inputs
 *
 * McIlroy, "A Killer Adversary for Quicksort" (1999): run the algorithm
 * with a comparison that decides values lazily.  All items start as "gas"
 * (greater than every solid value); when two gas items meet, one is frozen
 * to the next solid value, the one most likely to be the pivot.  The
 * values decided at the end form a concrete input that drives the same
 * deterministic algorithm down the same path.  The items are the ids, so
 * the renamed copy of select.c below compares ids through the adversary.
 * ---------------------------------------------------------------------
 */
static int32_t *adv_val;
static int32_t adv_gas;
static int32_t adv_nsolid;
static int64_t adv_candidate;

static inline int
adv_less(int64_t x, int64_t y)
{
	if (adv_val[x] == adv_gas && adv_val[y] == adv_gas)
	{
		if (x == adv_candidate)
			adv_val[x] = adv_nsolid++;
		else
			adv_val[y] = adv_nsolid++;
	}
	if (adv_val[x] == adv_gas)
		adv_candidate = x;
	else if (adv_val[y] == adv_gas)
		adv_candidate = y;
	return adv_val[x] < adv_val[y];
}

#define IVF_SELECT_LESS(d1, i1, d2, i2) ((void) (d1), (void) (d2), adv_less((i1), (i2)))
#define ivf_select_smallest adv_select_smallest
#define ivf_select_smallest_stats adv_select_smallest_stats
#define ivf_select_stream_init adv_select_stream_init
#define ivf_select_stream_next adv_select_stream_next
#include "select.c"
#undef ivf_select_smallest
#undef ivf_select_smallest_stats
#undef ivf_select_stream_init
#undef ivf_select_stream_next
#undef IVF_SELECT_LESS

/*
 * Build the adversarial input of size n for selecting k (k == 0: for
 * draining a stream with first chunk 32) into dist (ids are 0..n-1).
 */
static void
make_killer(size_t n, size_t k, float *dist, int64_t *id,
			IvfSelectStats *adv_st)
{
	float	   *d = xmalloc(n * sizeof(float));
	size_t		i;

	adv_val = xmalloc(n * sizeof(int32_t));
	adv_gas = (int32_t) n;
	adv_nsolid = 0;
	adv_candidate = -1;
	for (i = 0; i < n; i++)
	{
		adv_val[i] = adv_gas;
		d[i] = 0.0f;
		id[i] = (int64_t) i;
	}
	memset(adv_st, 0, sizeof(*adv_st));
	if (k > 0)
		adv_select_smallest_stats(d, id, n, k, adv_st);
	else
	{
		IvfSelectStream s;
		float		od;
		int64_t		oid;

		adv_select_stream_init(&s, d, id, n, 32);
		s.stats = adv_st;
		while (adv_select_stream_next(&s, &od, &oid))
			;
	}
	/* items never frozen are larger than every solid; any order will do */
	for (i = 0; i < n; i++)
	{
		if (adv_val[i] == adv_gas)
			adv_val[i] = adv_nsolid++;
		dist[i] = (float) adv_val[i];	/* exact: n < 2^24 */
		id[i] = (int64_t) i;
	}
	free(adv_val);
	free(d);
}

/* Musser's median-of-3 killer permutation of 1..n (n a multiple of 4). */
static void
make_musser(size_t n, float *dist, int64_t *id)
{
	size_t		k = n / 2;
	size_t		i;

	for (i = 1; i <= k; i++)
	{
		if (i % 2 == 1)
		{
			dist[i - 1] = (float) i;
			dist[i] = (float) (k + i);
		}
		dist[k + i - 1] = (float) (2 * i);
	}
	for (i = 0; i < n; i++)
		id[i] = (int64_t) (n - i);
}

static void
test_adversarial(void)
{
	size_t		n = BIG_N;
	float	   *d0 = xmalloc(n * sizeof(float));
	int64_t    *i0 = xmalloc(n * sizeof(int64_t));
	float	   *d = xmalloc(n * sizeof(float));
	int64_t    *id = xmalloc(n * sizeof(int64_t));
	double		nlogn = (double) n * log2n(n);
	int			trial;

	group_begin("worst case: McIlroy adversary / Musser killer, n=10^6");
	for (trial = 0; trial < 7; trial++)
	{
		/* trials 0-3: adversary for k; 4: adversary for a drained stream */
		static const size_t adv_ks[] = {BIG_N / 2, 10, 1000, BIG_N};
		int			musser = trial >= 5;
		int			stream = trial == 4;
		size_t		k = musser ? (trial == 5 ? n / 2 : n) :
			stream ? n : adv_ks[trial];
		IvfSelectStats st,
					adv_st;
		Ent		   *ref;
		double		t0,
					t;
		char		what[96];

		if (musser)
			make_musser(n, d0, i0);
		else
			make_killer(n, stream ? 0 : k, d0, i0, &adv_st);
		ref = sorted_reference(d0, i0, n);

		memcpy(d, d0, n * sizeof(float));
		memcpy(id, i0, n * sizeof(int64_t));
		memset(&st, 0, sizeof(st));
		t0 = now_sec();
		if (stream)
		{
			IvfSelectStream s;
			float		od;
			int64_t		oid;

			ivf_select_stream_init(&s, d, id, n, 32);
			s.stats = &st;
			while (ivf_select_stream_next(&s, &od, &oid))
				;
		}
		else
			ivf_select_smallest_stats(d, id, n, k, &st);
		t = now_sec() - t0;

		snprintf(what, sizeof(what), "%s%s k=%zu",
				 musser ? "musser" : "adversary", stream ? " stream" : "", k);
		check_selected(d, id, n, k, ref, what);
		check(st.max_depth <= 2 * 20,
			  "%s: partition depth %llu beyond the 2 log2 n guard", what,
			  (unsigned long long) st.max_depth);
		check((double) st.compares <= (stream ? 10.0 : 8.0) * nlogn,
			  "%s: %llu compares > %d n log2 n", what,
			  (unsigned long long) st.compares, stream ? 10 : 8);
		/*
		 * The concrete input must drive the real code down the adversary's
		 * path (same decisions, so the same counters), and the adversary
		 * must really defeat the pivots: the guard trips.
		 */
		if (!musser)
			check(st.compares == adv_st.compares &&
				  st.partitions == adv_st.partitions &&
				  st.fallbacks == adv_st.fallbacks &&
				  st.max_depth == adv_st.max_depth,
				  "%s: the real run left the adversary's path (%llu vs %llu "
				  "compares)", what, (unsigned long long) st.compares,
				  (unsigned long long) adv_st.compares);
		if (!musser && k >= 1000)
			check(st.fallbacks > 0, "%s: depth guard never tripped", what);
		printf("      %-28s %8.2f ms, %6.2f compares/n, depth %llu, "
			   "fallbacks %llu\n", what, t * 1e3,
			   (double) st.compares / n, (unsigned long long) st.max_depth,
			   (unsigned long long) st.fallbacks);
		free(ref);
	}
	group_end();
	free(d0);
	free(i0);
	free(d);
	free(id);
}

int
main(void)
{
	int			kind;

	setvbuf(stdout, NULL, _IOLBF, 0);

	for (kind = 0; kind < D_NKINDS; kind++)
		test_select_vs_reference(kind);
	for (kind = 0; kind < D_NKINDS; kind++)
		test_stream_vs_reference(kind);
	test_stream_chunk_cap();
	test_work_and_timing();
	test_patterns_big();
	test_adversarial();

	return check_summary();
}
