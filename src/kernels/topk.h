/*-------------------------------------------------------------------------
 *
 * topk.h
 *	  Bounded top-k selection: keeps the k smallest (dist, id) pairs seen,
 *	  ordered by distance with ties broken by the smaller id.
 *
 * The entries live in caller-provided arrays (dist_buf, id_buf; k slots
 * each) arranged as a binary max-heap, so the worst kept entry is at index 0
 * and a candidate that cannot enter is rejected with one comparison.  A NaN
 * distance is treated as +inf (stored as +inf), so it can never break the
 * heap order.  Plain C, no PostgreSQL dependency.
 *
 * Usage: ivf_topk_init(), any number of ivf_topk_push*(), then
 * ivf_topk_sort(), which leaves the kept entries in ascending order at the
 * start of the buffers.  After sorting the arrays are no longer a heap: call
 * ivf_topk_reset() (or init) before pushing again.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_TOPK_H
#define IVF_TOPK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct IvfTopK
{
	size_t		k;				/* capacity */
	size_t		n;				/* entries held, <= k */
	float	   *dist;			/* k slots: max-heap by (dist, id) */
	int64_t    *id;				/* k slots, parallel to dist */
} IvfTopK;

extern void ivf_topk_init(IvfTopK *h, size_t k, float *dist_buf,
						  int64_t *id_buf);
extern void ivf_topk_reset(IvfTopK *h);

/* Offer one candidate; returns 1 if it was kept, 0 if rejected. */
extern int	ivf_topk_push(IvfTopK *h, float dist, int64_t id);

/* Offer dists[i] with id first_id + i, for i in [0, n). */
extern void ivf_topk_push_block(IvfTopK *h, const float *dists, size_t n,
								int64_t first_id);

/* Offer dists[i] with id ids[i], for i in [0, n). */
extern void ivf_topk_push_block_ids(IvfTopK *h, const float *dists,
									const int64_t *ids, size_t n);

/* Sort the kept entries ascending by (dist, id); returns their count. */
extern size_t ivf_topk_sort(IvfTopK *h);

static inline int
ivf_topk_full(const IvfTopK *h)
{
	return h->n == h->k;
}

/*
 * Distance of the worst kept entry once full (a candidate must be <= this
 * to have a chance); +inf while not full, -inf if k is 0.
 */
static inline float
ivf_topk_worst(const IvfTopK *h)
{
	if (h->k == 0)
		return -INFINITY;
	return h->n == h->k ? h->dist[0] : INFINITY;
}

#endif							/* IVF_TOPK_H */
