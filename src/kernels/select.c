/*-------------------------------------------------------------------------
 *
 * select.c
 *	  Introselect on parallel (dist, id) arrays, and the lazy sorted stream
 *	  an index scan returns its candidates through.
 *
 * ivf_select_smallest() is a partial quicksort: partition the range; a
 * piece lying wholly inside the first k is sorted completely, the piece
 * straddling k is narrowed further, pieces past k are dropped.  That is
 * expected O(n + k log k).  Every partition pass counts against a depth
 * budget of 2 log2 n; a range that exhausts it is finished with heap select
 * + heap sort, so no input costs more than O(n log n).  Ranges of at most
 * SMALL_RANGE entries are insertion sorted.
 *
 * Pivots.  Normally the ninther (median of three medians of three; plain
 * median-of-3 on small ranges), and the range is block partitioned
 * (Edelkamp and Weiss's BlockQuicksort): the comparisons of BLOCK entries
 * from each end only record, branch-free, the offsets of the misplaced
 * ones, which are then swapped in pairs; the few entries left in the
 * middle go through a branchless Lomuto pass.
 *
 * When only a small part of a large range is wanted (the first chunks of a
 * stream: 32 of 10^6), a median pivot would make quickselect read the data
 * about twice.  Instead, as in Floyd and Rivest's SELECT, an evenly spaced
 * sample of the range is moved to its front, the pivot is chosen in the
 * sample at a rank that leaves, with high probability, a little more than
 * the wanted count below it, and one sparse pass moves the few smaller
 * entries to the front.  That pass tests eight dists at once against the
 * pivot's dist (SSE2 / NEON) and reads an id only on a hit, so picking the
 * first few of a stream costs about one read of the dists.  If the sample
 * misleads (too few below the pivot), the loop simply goes on with the
 * rest, and the depth budget still bounds the damage.
 *
 * Comparison.  (d1, i1) < (d2, i2) is d1 < d2, or i1 < i2 when d1 == d2
 * (so -0.0 and +0.0 tie and go by id); the equality test comes first and
 * is almost never true for real distances, which keeps the common path to
 * one float compare.  That is a total order only without NaN, so NaN
 * entries are moved to the end of the array first (a scan that finds none
 * in the common case) and, if some of them are wanted, ordered by id on
 * their own with the heap.
 *
 * Test hook: IVF_SELECT_LESS(d1, i1, d2, i2) may be defined before this
 * file is compiled to replace the key comparison; every comparison of
 * non-NaN keys goes through it, and any additional float test is implied
 * by it.  test_select.c compiles a renamed copy with an adversarial
 * comparison to build quickselect-killer inputs.
 *
 *-------------------------------------------------------------------------
 */
#include "select.h"
#include "simd_baseline.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#if defined(__GNUC__)
#define SEL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SEL_UNLIKELY(x) (x)
#endif

/* (d1, i1) < (d2, i2) for non-NaN d1, d2; 0 or 1 */
#ifdef IVF_SELECT_LESS
#define KEY_LT(d1, i1, d2, i2) IVF_SELECT_LESS(d1, i1, d2, i2)
#define KEY_LT_NB(d1, i1, d2, i2) IVF_SELECT_LESS(d1, i1, d2, i2)
#else
static inline int
key_lt(float d1, int64_t i1, float d2, int64_t i2)
{
	if (SEL_UNLIKELY(d1 == d2))
		return i1 < i2;
	return d1 < d2;
}
#define KEY_LT(d1, i1, d2, i2) key_lt(d1, i1, d2, i2)
/* the same without a branch, for data where ties are frequent */
#define KEY_LT_NB(d1, i1, d2, i2) \
	(((d1) < (d2)) | (((d1) == (d2)) & ((i1) < (i2))))
#endif

/* order of the heap routines: the key, or the id alone (NaN region) */
#define HEAP_LT(idonly, d1, i1, d2, i2) \
	((idonly) ? (i1) < (i2) : KEY_LT(d1, i1, d2, i2))

#define SMALL_RANGE 16			/* insertion sort at or below this */
#define NINTHER_RANGE 128		/* ninther pivot above this */
#define BLOCK 64				/* block partition unit (offsets fit a byte) */
#define SAMPLE_MIN_RANGE 2048	/* sampled pivot: range at least this, */
#define SAMPLE_SKEW 16			/* wanting at most 1/SAMPLE_SKEW of it */

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

static void
add_stats(IvfSelectStats *dst, const IvfSelectStats *src)
{
	dst->calls += src->calls;
	dst->compares += src->compares;
	dst->partitions += src->partitions;
	dst->fallbacks += src->fallbacks;
	if (src->max_depth > dst->max_depth)
		dst->max_depth = src->max_depth;
}

/* ---------------------------------------------------------------------
 * NaN
 * ---------------------------------------------------------------------
 */
static inline int
is_nan_bits(float f)
{
	uint32_t	u;

	/* a bit test, which holds even under -ffast-math */
	memcpy(&u, &f, sizeof(u));
	return (u & 0x7fffffffu) > 0x7f800000u;
}

/* Is any of p[0..7] NaN? */
static inline int
any_nan8(const float *p)
{
#if defined(__x86_64__)
	__m128		a = _mm_loadu_ps(p);
	__m128		b = _mm_loadu_ps(p + 4);

	return _mm_movemask_ps(_mm_or_ps(_mm_cmpunord_ps(a, a),
									 _mm_cmpunord_ps(b, b))) != 0;
#elif defined(__aarch64__)
	float32x4_t a = vld1q_f32(p);
	float32x4_t b = vld1q_f32(p + 4);

	/* x == x is false only for NaN */
	return vminvq_u32(vandq_u32(vceqq_f32(a, a), vceqq_f32(b, b))) == 0;
#else
	int			i,
				r = 0;

	for (i = 0; i < 8; i++)
		r |= is_nan_bits(p[i]);
	return r;
#endif
}

/*
 * Move the NaN entries of [0, n) to the end; returns the number of others.
 */
static size_t
nans_last(float *d, int64_t *id, size_t n)
{
	size_t		i = 0;
	size_t		j = n;

	/* find the first NaN, eight at a time */
	while (n - i >= 8 && !any_nan8(d + i))
		i += 8;
	while (i < n && !is_nan_bits(d[i]))
		i++;
	if (i == n)
		return n;

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

/* ---------------------------------------------------------------------
 * Small ranges and the heap fallback
 * ---------------------------------------------------------------------
 */
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
			if (!KEY_LT(vd, vi, d[j - 1], id[j - 1]))
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
			if (HEAP_LT(idonly, d[ch], id[ch], d[ch + 1], id[ch + 1]))
				ch++;
		}
		cmp++;
		if (!HEAP_LT(idonly, vd, vi, d[ch], id[ch]))
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
		if (HEAP_LT(idonly, d[i], id[i], d[lo], id[lo]))
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

/* ---------------------------------------------------------------------
 * Partitioning
 * ---------------------------------------------------------------------
 */

/* index of the median of entries a, b, e */
static inline size_t
median3(SelCtx *c, size_t a, size_t b, size_t e)
{
	float	   *d = c->d;
	int64_t    *id = c->id;

	c->st.compares += 3;
	if (KEY_LT(d[b], id[b], d[a], id[a]))
	{
		size_t		t = a;

		a = b;
		b = t;
	}
	/* now a <= b */
	if (KEY_LT(d[e], id[e], d[b], id[b]))
		return KEY_LT(d[e], id[e], d[a], id[a]) ? a : e;
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
	/*
	 * Not the ends: partitioning leaves the left part's largest entry at
	 * its start, which would make a sorted run pick its own maximum.
	 */
	return median3(c, lo + len / 4, mid, hi - 1 - len / 4);
}

/*
 * With the pivot (pd, pid) parked at lo and [lo + 1, b) below it, partition
 * [from, hi) and put the pivot between the parts; returns its index.
 * Branchless Lomuto: every entry is moved, the boundary advances by the
 * comparison result.
 */
static size_t
finish_lomuto(SelCtx *c, size_t lo, size_t from, size_t hi, size_t b,
			  float pd, int64_t pid)
{
	float	   *d = c->d;
	int64_t    *id = c->id;
	size_t		i;

	for (i = from; i < hi; i++)
	{
		float		x = d[i];
		int64_t		y = id[i];
		size_t		lt = (size_t) KEY_LT(x, y, pd, pid);

		d[i] = d[b];
		id[i] = id[b];
		d[b] = x;
		id[b] = y;
		b += lt;
	}
	b--;
	d[lo] = d[b];
	id[lo] = id[b];
	d[b] = pd;
	id[b] = pid;
	return b;
}

/*
 * Partition [lo, hi) (at least 2 entries) around its ninther; returns the
 * pivot's final index p, with [lo, p) < pivot < (p, hi) in key order
 * (entries equal to the pivot's key, possible only with repeated ids, may
 * go either side).
 */
static size_t
partition(SelCtx *c, size_t lo, size_t hi)
{
	float	   *d = c->d;
	int64_t    *id = c->id;
	size_t		piv = choose_pivot(c, lo, hi);
	float		pd;
	int64_t		pid;
	size_t		l = lo + 1;
	size_t		r = hi;

	swap_ent(d, id, lo, piv);
	pd = d[lo];
	pid = id[lo];

	if (r - l > 4 * BLOCK)
	{
		unsigned char off_l[BLOCK];
		unsigned char off_r[BLOCK];
		size_t		num_l = 0,
					num_r = 0,
					start_l = 0,
					start_r = 0;

		/* invariant: [lo + 1, l) < pivot <= [r, hi) */
		while (r - l > 2 * BLOCK)
		{
			size_t		num,
						j;

			if (num_l == 0)
			{
				start_l = 0;
				for (j = 0; j < BLOCK; j++)
				{
					off_l[num_l] = (unsigned char) j;
					num_l += !KEY_LT(d[l + j], id[l + j], pd, pid);
				}
			}
			if (num_r == 0)
			{
				start_r = 0;
				for (j = 0; j < BLOCK; j++)
				{
					off_r[num_r] = (unsigned char) j;
					num_r += KEY_LT(d[r - 1 - j], id[r - 1 - j], pd, pid);
				}
			}
			num = num_l < num_r ? num_l : num_r;
			for (j = 0; j < num; j++)
				swap_ent(d, id, l + off_l[start_l + j],
						 r - 1 - off_r[start_r + j]);
			num_l -= num;
			num_r -= num;
			start_l += num;
			start_r += num;
			if (num_l == 0)
				l += BLOCK;
			if (num_r == 0)
				r -= BLOCK;
		}
		/* a half-settled block is just partitioned again below */
	}

	c->st.partitions++;
	c->st.compares += hi - lo - 1;
	return finish_lomuto(c, lo, l, r, l, pd, pid);
}

static void partial_quicksort(SelCtx *c, size_t lo, size_t hi, size_t k,
							  unsigned depth);

/*
 * Partition [lo, hi) when only want (> 0) entries of it, a small share, are
 * needed: pivot from an evenly spaced sample, at a rank that leaves a few
 * more than want below it with high probability, then one sparse pass.
 * Returns the pivot's final index, as partition() does.
 */
static size_t
partition_sampled(SelCtx *c, size_t lo, size_t hi, size_t want,
				  unsigned depth)
{
	float	   *d = c->d;
	int64_t    *id = c->id;
	size_t		len = hi - lo;
	unsigned	lg = 0;
	size_t		s,
				stride,
				r,
				b,
				i,
				j;
	double		mu;
	float		pd;
	int64_t		pid;

	/* sample size about len^(2/3) */
	for (i = len; i > 1; i >>= 1)
		lg++;
	s = (size_t) 1 << (2 * lg / 3);
	if (s > len / 4)
		s = len / 4;
	stride = len / s;

	/*
	 * Expect mu = want * s / len sample entries among the wanted ones; the
	 * pivot is the r-th smallest of the sample (0-based), mu plus three
	 * standard deviations plus two.
	 */
	mu = (double) want * (double) s / (double) len;
	r = (size_t) (mu + 3.0 * sqrt(mu) + 2.0);
	if (r > s - 1)
		r = s - 1;

	/* gather the sample at the front: lo + j * stride -> lo + j */
	for (j = 1; j < s; j++)
		swap_ent(d, id, lo + j, lo + j * stride);
	partial_quicksort(c, lo, lo + s, lo + r + 1, depth);

	/* pivot to lo; the r sample entries below it follow */
	swap_ent(d, id, lo, lo + r);
	pd = d[lo];
	pid = id[lo];
	b = lo + r + 1;

	/* sparse pass over the rest: eight dists against pd at a time */
	i = lo + s;
	while (i < hi)
	{
		size_t		end = hi;

		if (hi - i >= 8)
		{
			if (!ivf_any_le8(d + i, pd))
			{
				i += 8;
				continue;
			}
			end = i + 8;
		}
		/*
		 * A block with a candidate: branch-free conditional swaps.  Only a
		 * smaller entry moves, so skipping a block and scanning it are the
		 * same to the data (which the adversary test relies on).
		 */
		for (; i < end; i++)
		{
			float		x = d[i];
			int64_t		y = id[i];
			float		xb = d[b];
			int64_t		yb = id[b];
			size_t		lt = (size_t) KEY_LT_NB(x, y, pd, pid);

			d[b] = lt ? x : xb;
			id[b] = lt ? y : yb;
			d[i] = lt ? xb : x;
			id[i] = lt ? yb : y;
			b += lt;
		}
	}

	b--;
	swap_ent(d, id, lo, b);
	c->st.partitions++;
	c->st.compares += len - s;
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
		size_t		len = hi - lo;
		size_t		p;

		if (len <= SMALL_RANGE)
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

		if (len >= SAMPLE_MIN_RANGE && k - lo <= len / SAMPLE_SKEW)
			p = partition_sampled(c, lo, hi, k - lo, depth);
		else
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
log2_floor(size_t n)
{
	unsigned	l = 0;

	while (n > 1)
	{
		n >>= 1;
		l++;
	}
	return l;
}

/* ---------------------------------------------------------------------
 * Entry points
 * ---------------------------------------------------------------------
 */
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
		c.limit = 2 * log2_floor(m);
		partial_quicksort(&c, 0, m, k, 0);
	}
	/* NaN entries come after every number, by id among themselves */
	if (k > m)
		heap_partial_sort(&c, m, n, k - m, 1);

	if (stats != NULL)
		add_stats(stats, &c.st);
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
	s->budget = (uint64_t) n * (2 * (uint64_t) log2_floor(n) + 2);
	if (n > UINT64_MAX / 256)
		s->budget = UINT64_MAX; /* cannot happen in practice; no overflow */
	s->stats = NULL;
}

int
ivf_select_stream_next(IvfSelectStream *s, float *dist, int64_t *id)
{
	if (s->next >= s->ready)
	{
		IvfSelectStats st;

		if (s->ready >= s->n)
			return 0;
		memset(&st, 0, sizeof(st));
		s->ready += ivf_select_smallest_stats(s->dist + s->ready,
											  s->id + s->ready,
											  s->n - s->ready, s->chunk, &st);
		if (s->stats != NULL)
			add_stats(s->stats, &st);

		if (st.compares >= s->budget)
		{
			/* budget spent: sort all the rest next time */
			s->budget = 0;
			s->chunk = SIZE_MAX;
		}
		else
		{
			s->budget -= st.compares;
			s->chunk = s->chunk <= SIZE_MAX / 2 ? s->chunk * 2 : SIZE_MAX;
		}
	}
	*dist = s->dist[s->next];
	*id = s->id[s->next];
	s->next++;
	return 1;
}
