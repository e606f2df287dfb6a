/*-------------------------------------------------------------------------
 *
 * topk.c
 *	  Bounded top-k selection with a binary max-heap of (dist, id).
 *
 * Order is lexicographic on (dist, id), so results are deterministic when
 * distances tie.  NaN is replaced by +inf on entry, which keeps every
 * comparison inside the heap a total order.
 *
 *-------------------------------------------------------------------------
 */
#include "topk.h"

#include "simd_baseline.h"

/* Does (d1, i1) rank after (d2, i2)?  Neither distance may be NaN. */
#define TOPK_WORSE(d1, i1, d2, i2) \
	((d1) > (d2) || ((d1) == (d2) && (i1) > (i2)))

/* Put (d, x) into the hole at pos of a heap of n entries, moving down. */
static inline void
sift_down(float *dist, int64_t *id, size_t n, size_t pos, float d, int64_t x)
{
	for (;;)
	{
		size_t		c = 2 * pos + 1;

		if (c >= n)
			break;
		if (c + 1 < n && TOPK_WORSE(dist[c + 1], id[c + 1], dist[c], id[c]))
			c++;
		if (!TOPK_WORSE(dist[c], id[c], d, x))
			break;
		dist[pos] = dist[c];
		id[pos] = id[c];
		pos = c;
	}
	dist[pos] = d;
	id[pos] = x;
}

/* Put (d, x) into the hole at pos, moving up. */
static inline void
sift_up(float *dist, int64_t *id, size_t pos, float d, int64_t x)
{
	while (pos > 0)
	{
		size_t		p = (pos - 1) / 2;

		if (!TOPK_WORSE(d, x, dist[p], id[p]))
			break;
		dist[pos] = dist[p];
		id[pos] = id[p];
		pos = p;
	}
	dist[pos] = d;
	id[pos] = x;
}

void
ivf_topk_init(IvfTopK *h, size_t k, float *dist_buf, int64_t *id_buf)
{
	h->k = k;
	h->n = 0;
	h->dist = dist_buf;
	h->id = id_buf;
}

void
ivf_topk_reset(IvfTopK *h)
{
	h->n = 0;
}

int
ivf_topk_push(IvfTopK *h, float dist, int64_t id)
{
	if (isnan(dist))
		dist = INFINITY;
	if (h->n < h->k)
	{
		sift_up(h->dist, h->id, h->n, dist, id);
		h->n++;
		return 1;
	}
	if (h->k == 0 || !TOPK_WORSE(h->dist[0], h->id[0], dist, id))
		return 0;
	sift_down(h->dist, h->id, h->n, 0, dist, id);
	return 1;
}

void
ivf_topk_push_block(IvfTopK *h, const float *dists, size_t n,
					int64_t first_id)
{
	size_t		i = 0;
	float		worst;
	int64_t		worst_id;

	for (; i < n && h->n < h->k; i++)
		ivf_topk_push(h, dists[i], first_id + (int64_t) i);
	if (i == n || h->k == 0)
		return;

	worst = h->dist[0];
	worst_id = h->id[0];
	while (i < n)
	{
		size_t		end = n;

		/*
		 * With +inf at the top a NaN (= +inf) with a smaller id must still
		 * get in, which the NaN-rejecting compares below would miss.
		 */
		if (worst == INFINITY)
		{
			ivf_topk_push(h, dists[i], first_id + (int64_t) i);
			worst = h->dist[0];
			worst_id = h->id[0];
			i++;
			continue;
		}
		if (n - i >= 8)
		{
			if (!ivf_any_le8(dists + i, worst))
			{
				i += 8;
				continue;
			}
			end = i + 8;
		}
		for (; i < end; i++)
		{
			float		d = dists[i];
			int64_t		x;

			/* also rejects NaN */
			if (!(d <= worst))
				continue;
			x = first_id + (int64_t) i;
			if (d == worst && x >= worst_id)
				continue;
			sift_down(h->dist, h->id, h->n, 0, d, x);
			worst = h->dist[0];
			worst_id = h->id[0];
		}
	}
}

void
ivf_topk_push_block_ids(IvfTopK *h, const float *dists, const int64_t *ids,
						size_t n)
{
	size_t		i = 0;
	float		worst;
	int64_t		worst_id;

	for (; i < n && h->n < h->k; i++)
		ivf_topk_push(h, dists[i], ids[i]);
	if (i == n || h->k == 0)
		return;

	worst = h->dist[0];
	worst_id = h->id[0];
	while (i < n)
	{
		size_t		end = n;

		/* see ivf_topk_push_block */
		if (worst == INFINITY)
		{
			ivf_topk_push(h, dists[i], ids[i]);
			worst = h->dist[0];
			worst_id = h->id[0];
			i++;
			continue;
		}
		if (n - i >= 8)
		{
			if (!ivf_any_le8(dists + i, worst))
			{
				i += 8;
				continue;
			}
			end = i + 8;
		}
		for (; i < end; i++)
		{
			float		d = dists[i];

			if (!(d <= worst))
				continue;
			if (d == worst && ids[i] >= worst_id)
				continue;
			sift_down(h->dist, h->id, h->n, 0, d, ids[i]);
			worst = h->dist[0];
			worst_id = h->id[0];
		}
	}
}

size_t
ivf_topk_sort(IvfTopK *h)
{
	size_t		end;

	/* heapsort: move the current worst to the end, shrink, repeat */
	for (end = h->n; end > 1; end--)
	{
		float		d = h->dist[end - 1];
		int64_t		x = h->id[end - 1];

		h->dist[end - 1] = h->dist[0];
		h->id[end - 1] = h->id[0];
		sift_down(h->dist, h->id, end - 1, 0, d, x);
	}
	return h->n;
}
