/*-------------------------------------------------------------------------
 *
 * test_select.c
 *	  Standalone test of the incremental candidate selection (select.c):
 *	  ivf_select_smallest and the sorted stream, against qsort.
 *
 * Inputs cover uniform values, heavy duplicates, all-equal (order decided
 * by id alone), sorted, reverse and organ-pipe orders, infinities, NaN and
 * signed zeros, ids in random order, and every interesting k.  The
 * worst-case guard is exercised with a median-of-three killer sequence.
 *
 *-------------------------------------------------------------------------
 */
#include "select.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

static uint64_t rng = 0x243F6A8885A308D3ull;

static uint64_t
next_u64(void)
{
	uint64_t	z = (rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* the documented order: distance, NaN after everything, then id */
static int
ref_less(float a, int64_t ia, float b, int64_t ib)
{
	if (a < b)
		return 1;
	if (a > b)
		return 0;
	if (a == b)
		return ia < ib;
	if (isnan(a) != isnan(b))
		return isnan(b);
	return ia < ib;
}

typedef struct Entry
{
	float		d;
	int64_t		id;
} Entry;

static int
cmp_entry(const void *x, const void *y)
{
	const Entry *a = x;
	const Entry *b = y;

	if (ref_less(a->d, a->id, b->d, b->id))
		return -1;
	if (ref_less(b->d, b->id, a->d, a->id))
		return 1;
	return 0;
}

enum
{
	D_UNIFORM, D_DUPS, D_EQUAL, D_SORTED, D_REVERSE, D_PIPE, D_SPECIAL,
	D_NDIST
};
static const char *dist_names[] = {
	"uniform", "duplicates", "all equal", "sorted", "reverse", "organ pipe",
	"inf/nan/-0"
};

static float
value(int kind, size_t i, size_t n)
{
	switch (kind)
	{
		case D_UNIFORM:
			return (float) (next_u64() >> 40) / (float) (1 << 24);
		case D_DUPS:
			return (float) (next_u64() % 3);
		case D_EQUAL:
			return 1.5f;
		case D_SORTED:
			return (float) i;
		case D_REVERSE:
			return (float) (n - i);
		case D_PIPE:
			return (float) (i < n / 2 ? i : n - i);
		default:
			switch (next_u64() % 6)
			{
				case 0:
					return NAN;
				case 1:
					return INFINITY;
				case 2:
					return -INFINITY;
				case 3:
					return -0.0f;
				case 4:
					return 0.0f;
				default:
					return (float) (next_u64() % 4);
			}
	}
}

static int
same_entry(float d, int64_t id, const Entry *e)
{
	return memcmp(&d, &e->d, sizeof(float)) == 0 && id == e->id;
}

/*
 * Check select and stream for one input: the prefix equals the sorted
 * reference, the array stays a permutation, the stream yields everything
 * in order.
 */
static void
check_one(int kind, size_t n, size_t k)
{
	float	   *d = malloc(sizeof(float) * (n + 1));
	int64_t    *id = malloc(sizeof(int64_t) * (n + 1));
	Entry	   *ref = malloc(sizeof(Entry) * (n + 1));
	Entry	   *after = malloc(sizeof(Entry) * (n + 1));
	size_t		m = k < n ? k : n;
	size_t		i;
	size_t		r;
	int			ok = 1;
	IvfSelectStream s;
	float		sd;
	int64_t		sid;

	for (i = 0; i < n; i++)
	{
		d[i] = value(kind, i, n);
		id[i] = (int64_t) (next_u64() % 1000000007) - 500000000;
		ref[i].d = d[i];
		ref[i].id = id[i];
	}
	qsort(ref, n, sizeof(Entry), cmp_entry);

	r = ivf_select_smallest(d, id, n, k);
	check(r == m, "%s n=%zu k=%zu: returned %zu", dist_names[kind], n, k, r);
	for (i = 0; i < m && ok; i++)
		ok = same_entry(d[i], id[i], &ref[i]);
	check(ok, "%s n=%zu k=%zu: prefix differs at %zu", dist_names[kind], n, k, i - 1);

	/* still a permutation of the input */
	for (i = 0; i < n; i++)
	{
		after[i].d = d[i];
		after[i].id = id[i];
	}
	qsort(after, n, sizeof(Entry), cmp_entry);
	for (i = 0, ok = 1; i < n && ok; i++)
		ok = same_entry(after[i].d, after[i].id, &ref[i]);
	check(ok, "%s n=%zu k=%zu: not a permutation", dist_names[kind], n, k);

	/* the stream over the (scrambled) array yields the full order */
	ivf_select_stream_init(&s, d, id, n, k > 0 ? k : 1);
	for (i = 0, ok = 1; ivf_select_stream_next(&s, &sd, &sid); i++)
		if (i >= n || !same_entry(sd, sid, &ref[i]))
		{
			ok = 0;
			break;
		}
	check(ok && i == n, "%s n=%zu: stream order wrong at %zu", dist_names[kind], n, i);

	free(d);
	free(id);
	free(ref);
	free(after);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Musser's median-of-3 killer for a middle/first/last pivot is emulated by
 * a sawtooth of equal runs; mostly it proves the depth guard finishes. */
static void
check_adversarial(void)
{
	size_t		n = 1000000;
	float	   *d = malloc(sizeof(float) * n);
	int64_t    *id = malloc(sizeof(int64_t) * n);
	size_t		i;
	double		t0;
	double		t1;
	int			ok = 1;

	group_begin("adversarial inputs, n = 1e6, k = 10");
	for (i = 0; i < n; i++)
	{
		size_t		half = n / 2;

		/* median-of-3 killer: odd positions ascending, even ones mirrored */
		d[i] = (float) (i < half ? (i % 2 ? i : half + i) : (i % 2 ? 2 * (i - half) + 1 : 2 * (i - half)));
		id[i] = (int64_t) i;
	}
	t0 = now();
	ivf_select_smallest(d, id, n, 10);
	t1 = now();
	for (i = 0; i + 1 < 10; i++)
		ok &= ref_less(d[i], id[i], d[i + 1], id[i + 1]);
	check(ok, "prefix not sorted");
	check(t1 - t0 < 2.0, "took %.3f s", t1 - t0);
	group_end();
	free(d);
	free(id);
}

/* first 10 of 1e6 through the stream vs draining it all */
static void
check_incremental_cost(void)
{
	size_t		n = 1000000;
	float	   *d = malloc(sizeof(float) * n);
	int64_t    *id = malloc(sizeof(int64_t) * n);
	float	   *d2 = malloc(sizeof(float) * n);
	int64_t    *id2 = malloc(sizeof(int64_t) * n);
	IvfSelectStream s;
	float		sd;
	int64_t		sid;
	size_t		i;
	double		t0;
	double		first10;
	double		all;

	group_begin("stream: first 10 of 1e6 vs all 1e6");
	for (i = 0; i < n; i++)
	{
		d[i] = d2[i] = value(D_UNIFORM, i, n);
		id[i] = id2[i] = (int64_t) i;
	}
	t0 = now();
	ivf_select_stream_init(&s, d, id, n, 32);
	for (i = 0; i < 10; i++)
		ivf_select_stream_next(&s, &sd, &sid);
	first10 = now() - t0;

	t0 = now();
	ivf_select_stream_init(&s, d2, id2, n, 32);
	while (ivf_select_stream_next(&s, &sd, &sid))
		;
	all = now() - t0;
	printf("      first 10: %.2f ms, all: %.2f ms\n", first10 * 1e3, all * 1e3);
	check(first10 < all * 0.5, "first 10 (%.3f ms) not much cheaper than all (%.3f ms)",
		  first10 * 1e3, all * 1e3);
	group_end();
	free(d);
	free(id);
	free(d2);
	free(id2);
}

int
main(void)
{
	static const size_t ns[] = {0, 1, 2, 3, 10, 17, 100, 1000, 100000};
	int			kind;
	size_t		t;

	for (kind = 0; kind < D_NDIST; kind++)
	{
		group_begin("select + stream vs qsort: %s", dist_names[kind]);
		for (t = 0; t < sizeof(ns) / sizeof(ns[0]); t++)
		{
			size_t		n = ns[t];
			size_t		ks[] = {0, 1, 2, n / 2, n > 0 ? n - 1 : 0, n, n + 5};
			size_t		j;

			for (j = 0; j < sizeof(ks) / sizeof(ks[0]); j++)
				check_one(kind, n, ks[j]);
		}
		group_end();
	}
	check_adversarial();
	check_incremental_cost();
	return check_summary();
}
