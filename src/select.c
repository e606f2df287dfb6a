/*-------------------------------------------------------------------------
 *
 * select.c
 *	  Introselect on parallel (dist, id) arrays, and the lazy sorted stream
 *	  an index scan returns its candidates through.
 *
 * ivf_select_smallest() is a partial quicksort: partition around a
 * ninther (median-of-3 on small ranges) pivot; a piece lying wholly inside
 * the first k is sorted completely, the piece straddling k is narrowed
 * further, and pieces past k are dropped.  That is expected O(n + k log k).
 * Every partition pass counts against a depth budget of 2 log2 n; when a
 * range exhausts it, the range is finished with heap select + heap sort,
 * so no input costs more than O(n log n).  Ranges of at most SMALL_RANGE
 * entries are insertion sorted.
 *
 * The partition is a branchless Lomuto pass: each entry is moved
 * unconditionally and the boundary advances by the comparison result, so
 * random distances cost no branch mispredictions.  The comparison there is
 * (d < pd) | ((d == pd) & (id < pid)), whose id part only matters when
 * the dists are equal.  It is a total order only without NaN, which is why
 * NaN entries are moved to the end of the range first (a linear scan that
 * finds none in the common case) and, if some of them are wanted, ordered
 * by id on their own.
 *
 * Test hook: IVF_SELECT_LESS may be defined before this file is compiled to
 * replace the key comparison (test_select.c compiles a renamed copy with an
 * adversarial comparison to build a quickselect-killer input).  Every
 * comparison of non-NaN keys goes through it.
 *
 *-------------------------------------------------------------------------
 */
#include "select.h"

#include <string.h>

/* (d1, i1) < (d2, i2) for non-NaN d1, d2; evaluates to 0 or 1 */
#ifndef IVF_SELECT_LESS
#define IVF_SELECT_LESS(d1, i1, d2, i2) \
	(((d1) < (d2)) | (((d1) == (d2)) & ((i1) < (i2))))
#endif

/* order used by the heap routines: full key, or id only (NaN region) */
#define KEY_LESS(idonly, d1, i1, d2, i2) \
	((idonly) ? (i1) < (i2) : IVF_SELECT_LESS(d1, i1, d2, i2))

#define SMALL_RANGE 16			/* insertion sort at or below this */
#define NINTHER_RANGE 128		/* ninther pivot above this */

typedef struct SelCtx
{
	float	   *d;
	int64_t    *id;
	unsigned	limit;			/* depth budget */
	IvfSelectStats st;
} SelCtx;

static inline void
swap_ent(float *d, int64_t *id, size_t a, size_t b)
{
	float		td = d[a];
	int64_t		ti = id[a];

	d[a] = d[b];
	id[a] = id[b];
	d[b] = td;
	id[b] = ti;
}

static inline int
is_nan_bits(float f)
{
	uint32_t	u;

	/* bit test, so it holds even if compiled with -ffast-math */
	memcpy(&u, &f, sizeof(u));
	return (u & 0x7fffffffu) > 0x7f800000u;
}

/*
 * Move the NaN entries of [0, n) to the end; returns the number of others.
 */
static size_t
nans_last(float *d, int64_t *id, size_t n)
{
	size_t		nnan = 0;
	size_t		i;
	size_t		j;

	for (i = 0; i < n; i++)
		nnan += is_nan_bits(d[i]);
	if (nnan == 0)
		return n;

	i = 0;
	j = n;
	for (;;)
	{
		while (i < j && !is_nan_bits(d[i]))
			i++;
		while (i < j && is_nan_bits(d[j - 1]))
			j--;
		if (i >= j)
			break;
		swap_ent(d, id, i, j - 1);
	}
	return i;
}

static void
insertion_sort(SelCtx *c, size_t lo, size_t hi)
{
	float	   *d = c->d;
	int64_t    *id = c->id;
	uint64_t	cmp = 0;
	size_t		i;

	for (i = lo + 1; i < hi; i++)
	{
		float		vd = d[i];
		int64_t		vi = id[i];
		size_t		j = i;

		while (j > lo)
		{
			cmp++;
			if (!IVF_SELECT_LESS(vd, vi, d[j - 1], id[j - 1]))
				break;
			d[j] = d[j - 1];
			id[j] = id[j - 1];
			j--;
		}
		d[j] = vd;
		id[j] = vi;
	}
	c->st.compares += cmp;
}

/*
 * Max-heap of n entries at [base, base + n): put (vd, vi) into the hole at
 * pos, moving it down.
 */
static void
sift_down(SelCtx *c, size_t base, size_t n, size_t pos, float vd, int64_t vi,
		  int idonly)
{
	float	   *d = c->d + base;
	int64_t    *id = c->id + base;
	uint64_t	cmp = 0;

	for (;;)
	{
		size_t		ch = 2 * pos + 1;

		if (ch >= n)
			break;
		if (ch + 1 < n)
		{
			cmp++;
			if (KEY_LESS(idonly, d[ch], id[ch], d[ch + 1], id[ch + 1]))
				ch++;
		}
		cmp++;
		if (!KEY_LESS(idonly, vd, vi, d[ch], id[ch]))
			break;
		d[pos] = d[ch];
		id[pos] = id[ch];
		pos = ch;
	}
	d[pos] = vd;
	id[pos] = vi;
	c->st.compares += cmp;
}

/*
 * Make [lo, lo + m) the m smallest entries of [lo, hi), sorted; the rest of
 * the range is left in arbitrary order.  O((hi - lo) log m).
 */
static void
heap_partial_sort(SelCtx *c, size_t lo, size_t hi, size_t m, int idonly)
{
	float	   *d = c->d;
	int64_t    *id = c->id;
	size_t		len = hi - lo;
	size_t		i;

	if (m > len)
		m = len;
	if (m == 0)
		return;
	/* wanting most of the range, sort all of it */
	if (m > len / 2)
		m = len;

	for (i = m / 2; i-- > 0;)
		sift_down(c, lo, m, i, d[lo + i], id[lo + i], idonly);

	/* the heap root is the worst kept entry; better ones replace it */
	for (i = lo + m; i < hi; i++)
	{
		c->st.compares++;
		if (KEY_LESS(idonly, d[i], id[i], d[lo], id[lo]))
		{
			float		vd = d[i];
			int64_t		vi = id[i];

			d[i] = d[lo];
			id[i] = id[lo];
			sift_down(c, lo, m, 0, vd, vi, idonly);
		}
	}

	/* heap sort the kept entries: move the worst to the end, repeat */
	for (i = m; i > 1; i--)
	{
		float		vd = d[lo + i - 1];
		int64_t		vi = id[lo + i - 1];

		d[lo + i - 1] = d[lo];
		id[lo + i - 1] = id[lo];
		sift_down(c, lo, i - 1, 0, vd, vi, idonly);
	}
}

/* index of the median of entries a, b, e */
static inline size_t
median3(SelCtx *c, size_t a, size_t b, size_t e)
{
	float	   *d = c->d;
	int64_t    *id = c->id;

	c->st.compares += 3;
	if (IVF_SELECT_LESS(d[b], id[b], d[a], id[a]))
	{
		size_t		t = a;

		a = b;
		b = t;
	}
	/* now a <= b */
	if (IVF_SELECT_LESS(d[e], id[e], d[b], id[b]))
		return IVF_SELECT_LESS(d[e], id[e], d[a], id[a]) ? a : e;
	return b;
}

static inline size_t
choose_pivot(SelCtx *c, size_t lo, size_t hi)
{
	size_t		len = hi - lo;
	size_t		mid = lo + len / 2;

	if (len > NINTHER_RANGE)
	{
		size_t		s = len / 8;

		return median3(c,
					   median3(c, lo, lo + s, lo + 2 * s),
					   median3(c, mid - s, mid, mid + s),
					   median3(c, hi - 1 - 2 * s, hi - 1 - s, hi - 1));
	}
	return median3(c, lo, mid, hi - 1);
}

/*
 * Partition [lo, hi) (at least 2 entries) around a chosen pivot; returns its
 * final index p, with [lo, p) < pivot < (p, hi) in key order (entries equal
 * to the pivot key, possible only with repeated ids, may go either side).
 */
static size_t
partition(SelCtx *c, size_t lo, size_t hi)
{
	float	   *d = c->d;
	int64_t    *id = c->id;
	size_t		piv = choose_pivot(c, lo, hi);
	float		pd;
	int64_t		pid;
	size_t		b;
	size_t		i;

	swap_ent(d, id, lo, piv);
	pd = d[lo];
	pid = id[lo];

	/* branchless Lomuto: [lo + 1, b) < pivot <= [b, i) */
	b = lo + 1;
	for (i = lo + 1; i < hi; i++)
	{
		float		x = d[i];
		int64_t		y = id[i];
		size_t		lt = (size_t) IVF_SELECT_LESS(x, y, pd, pid);

		d[i] = d[b];
		id[i] = id[b];
		d[b] = x;
		id[b] = y;
		b += lt;
	}

	/* the pivot goes between the two parts */
	b--;
	d[lo] = d[b];
	id[lo] = id[b];
	d[b] = pd;
	id[b] = pid;

	c->st.partitions++;
	c->st.compares += hi - lo - 1;
	return b;
}

/*
 * Put the min(k, hi) - lo smallest entries of [lo, hi), sorted, at the
 * start of the range (all of it sorted when k >= hi).  depth is the
 * partition nesting so far.
 */
static void
partial_quicksort(SelCtx *c, size_t lo, size_t hi, size_t k, unsigned depth)
{
	while (lo < k && hi - lo > 1)
	{
		size_t		p;

		if (hi - lo <= SMALL_RANGE)
		{
			insertion_sort(c, lo, hi);
			return;
		}
		if (depth >= c->limit)
		{
			c->st.fallbacks++;
			heap_partial_sort(c, lo, hi, (k < hi ? k : hi) - lo, 0);
			return;
		}
		depth++;
		if (depth > c->st.max_depth)
			c->st.max_depth = depth;

		p = partition(c, lo, hi);
		if (k <= p)
			hi = p;				/* everything wanted is left of the pivot */
		else
		{
			/* the left part and the pivot are all wanted */
			partial_quicksort(c, lo, p, p, depth);
			lo = p + 1;
		}
	}
}

static unsigned
depth_limit(size_t n)
{
	unsigned	l = 0;

	while (n > 1)
	{
		n >>= 1;
		l++;
	}
	return 2 * l;
}

size_t
ivf_select_smallest_stats(float *dist, int64_t *id, size_t n, size_t k,
						  IvfSelectStats *stats)
{
	SelCtx		c;
	size_t		m;

	if (k > n)
		k = n;
	if (k == 0)
		return 0;

	memset(&c, 0, sizeof(c));
	c.d = dist;
	c.id = id;
	c.st.calls = 1;

	m = nans_last(dist, id, n);
	if (m > 0)
	{
		c.limit = depth_limit(m);
		partial_quicksort(&c, 0, m, k, 0);
	}
	/* NaN entries come after every number, by id among themselves */
	if (k > m)
		heap_partial_sort(&c, m, n, k - m, 1);

	if (stats != NULL)
	{
		stats->calls += c.st.calls;
		stats->compares += c.st.compares;
		stats->partitions += c.st.partitions;
		stats->fallbacks += c.st.fallbacks;
		if (c.st.max_depth > stats->max_depth)
			stats->max_depth = c.st.max_depth;
	}
	return k;
}

size_t
ivf_select_smallest(float *dist, int64_t *id, size_t n, size_t k)
{
	return ivf_select_smallest_stats(dist, id, n, k, NULL);
}

void
ivf_select_stream_init(IvfSelectStream *s, float *dist, int64_t *id,
					   size_t n, size_t first_chunk)
{
	s->dist = dist;
	s->id = id;
	s->n = n;
	s->next = 0;
	s->ready = 0;
	s->chunk = first_chunk > 0 ? first_chunk : 1;
	s->stats = NULL;
}

int
ivf_select_stream_next(IvfSelectStream *s, float *dist, int64_t *id)
{
	if (s->next >= s->ready)
	{
		if (s->ready >= s->n)
			return 0;
		s->ready += ivf_select_smallest_stats(s->dist + s->ready,
											  s->id + s->ready,
											  s->n - s->ready, s->chunk,
											  s->stats);
		s->chunk = s->chunk <= SIZE_MAX / 2 ? s->chunk * 2 : SIZE_MAX;
	}
	*dist = s->dist[s->next];
	*id = s->id[s->next];
	s->next++;
	return 1;
}
