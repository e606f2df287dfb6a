/*-------------------------------------------------------------------------
 *
 * select.h
 *	  Selection of the smallest (dist, id) entries of parallel arrays, and an
 *	  incremental "sorted stream" built on it.
 *
 * An index scan gathers n candidates (possibly 10^5..10^6) but is not told
 * the query's LIMIT, so it hands them out in ascending order lazily: it
 * selects and sorts a small chunk of the smallest, returns those, and only
 * when they run out selects the next chunk from the rest (chunk size
 * doubling).  LIMIT 10 then costs O(n) and draining everything O(n log n).
 *
 * Order.  Entries are ordered lexicographically by (dist, id):
 *	 - ascending dist by IEEE comparison, so -inf < finite < +inf, and
 *	   -0.0 and +0.0 compare equal (their relative order is decided by id);
 *	 - NaN (any sign or payload) comes after +inf; NaN entries are ordered
 *	   among themselves by id alone;
 *	 - equal dists (including all NaNs) are ordered by the smaller id first
 *	   (signed int64 comparison).
 * Entries equal in this order (same id and equal dist) keep an unspecified
 * relative order; with unique ids, as a scan has, the order is total and the
 * result is fully deterministic.
 *
 * The arrays are structure-of-arrays (dist[i] goes with id[i]) and entries
 * are always moved as pairs.  Nothing here allocates, uses randomness or
 * depends on the server: plain C, like distance.c and topk.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_SELECT_H
#define IVF_SELECT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Optional work counters (for tests and benchmarks).  The *_stats entry
 * points add to them, so zero the struct before the calls to be measured.
 */
typedef struct IvfSelectStats
{
	uint64_t	calls;			/* selections that did any work (k > 0) */
	uint64_t	compares;		/* key comparisons, counted per partition pass
								 * (one per element) and exactly elsewhere */
	uint64_t	partitions;		/* quickselect partition passes */
	uint64_t	fallbacks;		/* depth limit hits: heap select/sort used */
	uint64_t	max_depth;		/* deepest partition nesting seen */
} IvfSelectStats;

/* a < b in the order above (NaN last, equal dists by id) */
static inline int
ivf_dist_id_less(float d1, int64_t i1, float d2, int64_t i2)
{
	int			n1 = (d1 != d1);
	int			n2 = (d2 != d2);

	if (n1 || n2)
		return (n1 != n2) ? n2 : i1 < i2;
	if (d1 != d2)
		return d1 < d2;
	return i1 < i2;
}

/*
 * Rearrange dist[0..n) / id[0..n) so that the min(k, n) smallest entries in
 * (dist, id) order occupy [0, min(k, n)) in ascending order; the rest,
 * [min(k, n), n), is left in unspecified order.  The arrays stay a
 * permutation of the input (pairs are never split).  Returns min(k, n).
 *
 * Introselect: a partial quicksort (ninther pivot, block partition; a
 * sampled pivot and one sparse pass when only a small share of a large
 * range is wanted) that fully sorts only the pieces inside the first k and
 * keeps narrowing the one straddling k.  Expected O(n + k log k); when the
 * partition nesting exceeds 2 log2 n the range is finished with heap
 * select + heap sort, so the worst case is O(n log n).  NaN entries are
 * first moved to the end (one scan, which finds none in the common case)
 * and, when they are needed, ordered by id with a heap.  Deterministic: no
 * randomness, no allocation.
 */
extern size_t ivf_select_smallest(float *dist, int64_t *id, size_t n,
								  size_t k);

/* The same, adding its work to *stats (which may be NULL). */
extern size_t ivf_select_smallest_stats(float *dist, int64_t *id, size_t n,
										size_t k, IvfSelectStats *stats);

/*
 * Sorted stream over caller-owned arrays.
 *
 * After ivf_select_stream_init() the arrays belong to the stream until it
 * is exhausted (or abandoned): the stream reorders them in place, and the
 * caller must neither modify nor rely on their contents meanwhile.  Once
 * exhausted, the first n entries are sorted in (dist, id) order.
 *
 * Invariant: [0, next) has been returned; [next, ready) is sorted and holds
 * the smallest entries not yet returned; [ready, n) is in arbitrary order
 * and no entry there is smaller than any in [0, ready).  When [next, ready)
 * runs out, the next chunk entries are selected from [ready, n) and chunk
 * doubles (saturating at SIZE_MAX, so it never overflows).
 *
 * Cost: returning the first m entries costs O(n + m log m) expected, e.g.
 * O(n) for a LIMIT 10, and draining all of them O(n log n).  Each
 * selection's comparisons are charged to budget (2 n (log2 n + 1) at
 * init); once it is spent, the next selection sorts all the rest, so even
 * inputs that defeat every pivot cost O(n log n) in all.
 *
 * stats is NULL after init; set it to count the stream's selection work.
 */
typedef struct IvfSelectStream
{
	float	   *dist;
	int64_t    *id;
	size_t		n;				/* entries */
	size_t		next;			/* next entry to return */
	size_t		ready;			/* end of the sorted, selected prefix */
	size_t		chunk;			/* size of the next selection */
	uint64_t	budget;			/* comparisons left before sorting the rest */
	IvfSelectStats *stats;		/* optional work counters, or NULL */
} IvfSelectStream;

/* first_chunk 0 is taken as 1. */
extern void ivf_select_stream_init(IvfSelectStream *s, float *dist,
								   int64_t *id, size_t n, size_t first_chunk);

/*
 * Return 1 and the next entry in (dist, id) order through *dist and *id, or
 * 0 once every entry has been returned.
 */
extern int	ivf_select_stream_next(IvfSelectStream *s, float *dist,
								   int64_t *id);

#endif							/* IVF_SELECT_H */
