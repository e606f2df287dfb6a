/*-------------------------------------------------------------------------
 *
 * kmeans.c
 *	  Exact nearest-centroid assignment (brute force and blocked GEMM with
 *	  an exact re-rank) and Faiss-style k-means on top of it.
 *
 * No function in this file allocates memory: every scratch array is carved
 * out of the caller's workspace, so a callback that longjmps out of the
 * middle of a run leaves nothing behind.  See kmeans.h for the contract.
 *
 *-------------------------------------------------------------------------
 */
#include "kmeans.h"
#include "distance.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include <cblas.h>

/*
 * GEMM path blocking: IVF_ASSIGN_QB points x IVF_ASSIGN_CB centroids per
 * sgemm call, a 2 MB float block whatever n, k and d are.  Each row of the
 * block (8 kB) is then scanned twice while it sits in L1.
 */
#define IVF_ASSIGN_QB		256
#define IVF_ASSIGN_CB		2048

/*
 * ivf_assign goes straight to the brute force below these sizes: with very
 * few points sgemm degenerates into a matrix-vector product that mostly
 * packs the centroids, and with very few centroids the exact re-rank of the
 * (at least one) survivor per point costs as much as the brute force.
 */
#define IVF_ASSIGN_MIN_N	8
#define IVF_ASSIGN_MIN_K	8

/* The error analysis below assumes d * 2^-24 <= 1/16. */
#define IVF_ASSIGN_MAX_D	((size_t) 1 << 20)

/*
 * Norms (|x|^2, |c|^2) at or above this are "huge": such vectors never
 * tighten the GEMM bound, so every candidate against them is re-ranked
 * exactly.  Below it no intermediate of either computation can overflow
 * (see the bound comment), which the proof needs.
 */
#define IVF_HUGE_NORM		0x1p100f

/* Brute force: points per group, bytes of centroids per cache block. */
#define IVF_BF_QB			32
#define IVF_BF_CBYTES		(256 * 1024)

/* Workspace pieces start on cache-line boundaries. */
#define IVF_WS_ALIGN		((size_t) 64)

/* Faiss's split_clusters perturbation. */
#define IVF_SPLIT_EPS		(1.0 / 1024.0)


/* ---------------------------------------------------------------------
 * Workspace carving
 * ---------------------------------------------------------------------
 */

/* a + b, or SIZE_MAX once anything has overflowed (sticky) */
static size_t
ws_add(size_t a, size_t b)
{
	if (a == SIZE_MAX || b > SIZE_MAX - a)
		return SIZE_MAX;
	return a + b;
}

/* bytes of an array of n items of size sz, rounded up to IVF_WS_ALIGN */
static size_t
ws_array(size_t n, size_t sz)
{
	size_t		b;

	if (n != 0 && sz > (SIZE_MAX - IVF_WS_ALIGN) / n)
		return SIZE_MAX;
	b = n * sz;
	return (b + IVF_WS_ALIGN - 1) & ~(IVF_WS_ALIGN - 1);
}

/* First aligned address of a caller-provided workspace. */
static char *
ws_begin(void *workspace)
{
	uintptr_t	p = (uintptr_t) workspace;

	return (char *) ((p + IVF_WS_ALIGN - 1) & ~(uintptr_t) (IVF_WS_ALIGN - 1));
}

/* Take the next n items of size sz; the size was checked by *_bytes(). */
static void *
ws_take(char **cur, size_t n, size_t sz)
{
	void	   *r = *cur;

	*cur += ws_array(n, sz);
	return r;
}


/* ---------------------------------------------------------------------
 * Exact pair distance, as the brute-force rule defines it
 * ---------------------------------------------------------------------
 */
static inline float
pair_dist(const float *a, const float *b, size_t d, IvfKmMetric metric)
{
	float		v;

	if (metric == IVF_KM_IP)
		v = -ivf_kernels.dot(a, b, d);
	else
		v = ivf_kernels.l2sq(a, b, d);
	/* NaN ranks as +inf (and is reported as +inf) */
	return isnan(v) ? INFINITY : v;
}


/* ---------------------------------------------------------------------
 * Brute force
 * ---------------------------------------------------------------------
 */
void
ivf_assign_bruteforce(const float *x, size_t n, const float *c,
					  const float *cnorms, size_t k, size_t d,
					  IvfKmMetric metric, int32_t *assign, float *dist,
					  void (*check) (void *), void *check_arg)
{
	float		bd[IVF_BF_QB];
	int32_t		bj[IVF_BF_QB];
	size_t		cb = d == 0 ? k : IVF_BF_CBYTES / (d * sizeof(float));
	size_t		i0,
				c0,
				i,
				j;

	if (cb < 1)
		cb = 1;

	/*
	 * Points in small groups, centroids in cache-sized blocks shared by the
	 * group; each point still sees j in increasing order, so "strictly
	 * smaller wins" keeps the lowest index among ties.
	 */
	for (i0 = 0; i0 < n; i0 += IVF_BF_QB)
	{
		size_t		nq = n - i0 < IVF_BF_QB ? n - i0 : IVF_BF_QB;

		for (i = 0; i < nq; i++)
		{
			bd[i] = INFINITY;
			bj[i] = -1;
		}
		for (c0 = 0; c0 < k; c0 += cb)
		{
			size_t		nc = k - c0 < cb ? k - c0 : cb;

			for (i = 0; i < nq; i++)
			{
				const float *xi = x + (i0 + i) * d;
				float		best = bd[i];
				int32_t		bestj = bj[i];

				for (j = c0; j < c0 + nc; j++)
				{
					float		v = pair_dist(xi, c + j * d, d, metric);

					if (bestj < 0 || v < best)
					{
						best = v;
						bestj = (int32_t) j;
					}
				}
				bd[i] = best;
				bj[i] = bestj;
			}
			if (check != NULL)
				check(check_arg);
		}
		for (i = 0; i < nq; i++)
		{
			assign[i0 + i] = bj[i];
			if (dist != NULL)
				dist[i0 + i] = bd[i];
		}
	}
}


/* ---------------------------------------------------------------------
 * GEMM path
 *
 * Why the shortlist is exact.  Write D_j for the real-number distance of
 * x to c_j, d_j for what the pair kernel returns, and a_j for the GEMM
 * estimate (L2: |x|^2 + |c_j|^2 - 2 x.c_j from float norms and a float
 * sgemm; IP: -x.c_j from sgemm).  If for every j
 *
 *		lo_j <= d_j <= hi_j,	lo_j = a_j - e_j,  hi_j = a_j + e_j,
 *
 * then the brute-force winner j* (smallest (d_j, j)) has
 * lo_j* <= d_j* <= d_m <= hi_m for every m, i.e. lo_j* <= U = min_m hi_m.
 * So re-ranking exactly every j with lo_j <= U, in increasing j, finds
 * j* and its d_j*, bit for bit.  We also skip j once lo_j exceeds the best
 * exact d found so far (it cannot beat it, and is not j*).  The per-row
 * minimum U is taken over a whole block row before its second scan, and
 * carried across the centroid blocks of a point.
 *
 * The bound e_j.  u = 2^-24, g_m = m u / (1 - m u) <= 1.07 m u since
 * d u <= 1/16.  Float summation of m terms in ANY order (so any BLAS
 * blocking, any SIMD lane split, with or without FMA) errs by at most
 * g_m * sum |terms| (Higham, Accuracy and Stability, 3.1 / 4.2).
 *
 * L2, with X = |x|^2, C = |c|^2, G = x.c, D = X + C - 2G <= 2 (X + C):
 *	- kernel: each (x_i - c_i)^2 is off by 2 roundings, the sum by g_d,
 *	  |d - D| <= g_(d+2) D <= 2 g_(d+2) (X + C);
 *	- GEMM: |fl(X) - X| <= g_d X, same for C, |fl(G) - G| <= g_d sum
 *	  |x_i c_i| <= g_d (X + C) / 2, and the two additions forming a add
 *	  about 3 u (X + C);
 *	- total about (2 d + 4 + 2 d + 3) * 1.07 u (X + C) < (4.3 d + 8) u
 *	  (X + C); we use e = (5 d + 64) u (X + C), the slack covering the
 *	  roundings of computing lo/hi themselves (a few u (X + C)), and the
 *	  norms being the computed ones (within 1/15 of the real ones).
 * IP, with |G| <= sum |x_i c_i| <= |x||c| (Cauchy-Schwarz):
 *	- kernel and sgemm each err by at most g_d |x||c|: 2.14 d u |x||c|;
 *	  computed norms and sqrt lose at most a factor 0.93, so we use
 *	  e = (3 d + 64) u |x||c|.
 * Both get an extra absolute eta = (d + 2) 2^-121 = 32 (d + 2) 2^-126 for
 * products that underflow: each loses less than 2^-126 even with
 * flush-to-zero, and a pair involves at most 5 d of them (norms, sgemm
 * doubled by alpha = -2, kernel), so 32 (d + 2) leaves a wide margin.
 *
 * Overflow.  The analysis needs every intermediate finite: X, C < 2^100
 * gives D, |G| < 2^102, far from FLT_MAX.  A point or centroid with a huge
 * (or non-finite) norm gets hi = +inf and lo = -inf, so it tightens
 * nothing and is always re-ranked; NaN estimates likewise never tighten U
 * (min ignores them) and always pass the lo test.  At worst a point is
 * re-ranked against every centroid, i.e. brute force: never wrong.
 * ---------------------------------------------------------------------
 */

typedef struct AssignWs
{
	float	   *ch;				/* per centroid: L2 (1+b)C, IP sqrt(C) */
	float	   *cl;				/* per centroid: L2 (1-b)C, IP unused */
	float	   *xh;				/* per point: L2 (1+b)X + eta, IP b sqrt(X) */
	float	   *xl;				/* per point: L2 (1-b)X - eta */
	float	   *u;				/* per point: running min of hi */
	float	   *bd;				/* per point: best exact distance so far */
	int32_t    *bj;				/* per point: its centroid, -1 = none yet */
	uint32_t   *cand;			/* a row's centroids that pass the lo test */
	float	   *blk;			/* QB x min(k, CB) sgemm output */
} AssignWs;

size_t
ivf_assign_workspace_bytes(size_t k, size_t d)
{
	size_t		cb = k < IVF_ASSIGN_CB ? k : IVF_ASSIGN_CB;
	size_t		b = IVF_WS_ALIGN;	/* slack for aligning the start */

	b = ws_add(b, ws_array(k, sizeof(float)));
	b = ws_add(b, ws_array(k, sizeof(float)));
	b = ws_add(b, ws_array(IVF_ASSIGN_QB, sizeof(float)));
	b = ws_add(b, ws_array(IVF_ASSIGN_QB, sizeof(float)));
	b = ws_add(b, ws_array(IVF_ASSIGN_QB, sizeof(float)));
	b = ws_add(b, ws_array(IVF_ASSIGN_QB, sizeof(float)));
	b = ws_add(b, ws_array(IVF_ASSIGN_QB, sizeof(int32_t)));
	b = ws_add(b, ws_array(cb, sizeof(uint32_t)));
	b = ws_add(b, ws_array((size_t) IVF_ASSIGN_QB * cb, sizeof(float)));
	return b == SIZE_MAX ? 0 : b;
}

static void
assign_ws_carve(void *workspace, size_t k, AssignWs *w)
{
	char	   *cur = ws_begin(workspace);
	size_t		cb = k < IVF_ASSIGN_CB ? k : IVF_ASSIGN_CB;

	w->ch = ws_take(&cur, k, sizeof(float));
	w->cl = ws_take(&cur, k, sizeof(float));
	w->xh = ws_take(&cur, IVF_ASSIGN_QB, sizeof(float));
	w->xl = ws_take(&cur, IVF_ASSIGN_QB, sizeof(float));
	w->u = ws_take(&cur, IVF_ASSIGN_QB, sizeof(float));
	w->bd = ws_take(&cur, IVF_ASSIGN_QB, sizeof(float));
	w->bj = ws_take(&cur, IVF_ASSIGN_QB, sizeof(int32_t));
	w->cand = ws_take(&cur, cb, sizeof(uint32_t));
	w->blk = ws_take(&cur, (size_t) IVF_ASSIGN_QB * cb, sizeof(float));
}

/* Can sgemm take this shape at all (BLAS ints, error analysis)? */
static int
assign_gemm_possible(size_t k, size_t d)
{
	return k >= 1 && d >= 1 && d < IVF_ASSIGN_MAX_D && k <= INT_MAX;
}

/*
 * Second scan of a block row: re-rank exactly every centroid whose lower
 * bound lo_j is not above min(U, best exact so far).  A NaN lo_j passes.
 * c0 is the block's first centroid index.  The kernel lists the centroids
 * that pass against the threshold at the start; the threshold only drops
 * as exact distances come in, so each is tested again before its re-rank
 * (the same expression, so the same float), and the re-ranked set is
 * exactly that of a scalar scan testing each in turn.
 */
static void
row_rerank(const float *row, const float *ch, const float *cl, float xh,
		   float xl, float eta, float u, const float *xi, const float *c,
		   size_t c0, size_t nc, size_t d, IvfKmMetric metric,
		   uint32_t *cand, float *bd_io, int32_t *bj_io)
{
	float		bd = *bd_io;
	int32_t		bj = *bj_io;
	float		thr = bd < u ? bd : u;
	int			ip = (metric == IVF_KM_IP);
	size_t		ncand;
	size_t		i;

	if (ip)
		ncand = ivf_kernels.row_lo_pass(row, ch, xh, eta, 1, nc, thr, cand);
	else
		ncand = ivf_kernels.row_lo_pass(row, cl, xl, 0.0f, 0, nc, thr, cand);
	for (i = 0; i < ncand; i++)
	{
		size_t		j = cand[i];
		float		v;

		if (ip ? ivf_row_lo(row[j], ch[j], xh, eta, 1) > thr :
			ivf_row_lo(row[j], cl[j], xl, 0.0f, 0) > thr)
			continue;
		v = pair_dist(xi, c + (c0 + j) * d, d, metric);
		if (bj < 0 || v < bd)
		{
			bd = v;
			bj = (int32_t) (c0 + j);
			thr = bd < u ? bd : u;
		}
	}
	*bd_io = bd;
	*bj_io = bj;
}

void
ivf_assign_gemm(const float *x, size_t n, const float *c,
				const float *cnorms, size_t k, size_t d,
				IvfKmMetric metric, void *workspace, int32_t *assign,
				float *dist, void (*check) (void *), void *check_arg)
{
	AssignWs	w;
	const double u24 = ldexp(1.0, -24);
	double		beta;
	float		eta;
	size_t		cb = k < IVF_ASSIGN_CB ? k : IVF_ASSIGN_CB;
	size_t		q0,
				c0,
				i,
				j;

	if (n == 0)
		return;
	if (!assign_gemm_possible(k, d))
	{
		ivf_assign_bruteforce(x, n, c, cnorms, k, d, metric, assign, dist,
							  check, check_arg);
		return;
	}

	assign_ws_carve(workspace, k, &w);
	beta = (metric == IVF_KM_IP ? 3.0 * (double) d + 64.0 :
			5.0 * (double) d + 64.0) * u24;
	eta = (float) ((double) (d + 2) * ldexp(1.0, -121));

	/* per-centroid bound terms, computed once */
	if (cnorms != NULL)
		memcpy(w.ch, cnorms, k * sizeof(float));
	else
		ivf_kernels.norm_sq_block(c, k, d, w.ch);
	for (j = 0; j < k; j++)
	{
		float		cn = w.ch[j];
		int			ok = cn >= 0.0f && cn < IVF_HUGE_NORM;

		if (metric == IVF_KM_IP)
		{
			w.ch[j] = ok ? sqrtf(cn) : INFINITY;
			w.cl[j] = 0.0f;
		}
		else
		{
			w.ch[j] = ok ? (float) ((double) cn * (1.0 + beta)) : INFINITY;
			w.cl[j] = ok ? (float) ((double) cn * (1.0 - beta)) : -INFINITY;
		}
	}

	for (q0 = 0; q0 < n; q0 += IVF_ASSIGN_QB)
	{
		size_t		nq = n - q0 < IVF_ASSIGN_QB ? n - q0 : IVF_ASSIGN_QB;
		const float *xq = x + q0 * d;

		ivf_kernels.norm_sq_block(xq, nq, d, w.xh);
		for (i = 0; i < nq; i++)
		{
			float		xn = w.xh[i];
			int			ok = xn >= 0.0f && xn < IVF_HUGE_NORM;

			if (metric == IVF_KM_IP)
			{
				w.xh[i] = ok ? (float) (beta * sqrt((double) xn)) : INFINITY;
				w.xl[i] = 0.0f;
			}
			else
			{
				w.xh[i] = ok ? (float) ((double) xn * (1.0 + beta) + eta) : INFINITY;
				w.xl[i] = ok ? (float) ((double) xn * (1.0 - beta) - eta) : -INFINITY;
			}
			w.u[i] = INFINITY;
			w.bd[i] = INFINITY;
			w.bj[i] = -1;
		}

		for (c0 = 0; c0 < k; c0 += cb)
		{
			size_t		nc = k - c0 < cb ? k - c0 : cb;

			/* L2: -2 x.c (the norms are added in the scans); IP: -x.c */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
						(int) nq, (int) nc, (int) d,
						metric == IVF_KM_IP ? -1.0f : -2.0f,
						xq, (int) d, c + c0 * d, (int) d,
						0.0f, w.blk, (int) nc);

			for (i = 0; i < nq; i++)
			{
				const float *row = w.blk + i * nc;

				if (metric == IVF_KM_IP)
					w.u[i] = ivf_kernels.row_min_hi_ip(row, w.ch + c0, w.xh[i],
													   eta, nc, w.u[i]);
				else
					w.u[i] = ivf_kernels.row_min_hi(row, w.ch + c0, w.xh[i],
													nc, w.u[i]);
				row_rerank(row, w.ch + c0, w.cl + c0, w.xh[i], w.xl[i], eta,
						   w.u[i], xq + i * d, c, c0, nc, d, metric,
						   w.cand, &w.bd[i], &w.bj[i]);
			}
			if (check != NULL)
				check(check_arg);
		}

		for (i = 0; i < nq; i++)
		{
			assign[q0 + i] = w.bj[i];
			if (dist != NULL)
				dist[q0 + i] = w.bd[i];
		}
	}
}

void
ivf_assign(const float *x, size_t n, const float *c, const float *cnorms,
		   size_t k, size_t d, IvfKmMetric metric, void *workspace,
		   int32_t *assign, float *dist, void (*check) (void *),
		   void *check_arg)
{
	if (n < IVF_ASSIGN_MIN_N || k < IVF_ASSIGN_MIN_K ||
		!assign_gemm_possible(k, d))
		ivf_assign_bruteforce(x, n, c, cnorms, k, d, metric, assign, dist,
							  check, check_arg);
	else
		ivf_assign_gemm(x, n, c, cnorms, k, d, metric, workspace, assign,
						dist, check, check_arg);
}


/* uniform integer in [0, m), m >= 1, without modulo bias */
static uint64_t
km_rng_below(uint64_t *s, uint64_t m)
{
	uint64_t	lim = UINT64_MAX - UINT64_MAX % m;
	uint64_t	r;

	do
	{
		r = ivf_splitmix64(s);
	} while (r >= lim);
	return r % m;
}

/* uniform double in [0, 1) */
static double
km_rng_double(uint64_t *s)
{
	return (double) (ivf_splitmix64(s) >> 11) * ldexp(1.0, -53);
}


/* ---------------------------------------------------------------------
 * k-means
 * ---------------------------------------------------------------------
 */

/*
 * Largest k x d sum matrix (in doubles' bytes) for which the centroid
 * update streams over the points in their own order, adding each to its
 * cluster's row; larger ones gather each cluster's points in turn.  Both
 * add a cluster's points in increasing point order, so they give the same
 * bits; streaming reads the sample sequentially instead of gathering
 * rows scattered over it, which left the update waiting on memory (a
 * quarter of Fashion-MNIST's k-means time).  Not static so the kernel test
 * can move it.
 */
size_t		ivf_kmeans_stream_max_bytes = (size_t) 16 << 20;

static inline int
km_stream_update(size_t d, size_t k)
{
	return d <= ivf_kmeans_stream_max_bytes / sizeof(double) / k;
}

typedef struct KmeansWs
{
	int32_t    *assign;			/* n: cluster of each point */
	float	   *dist;			/* n: its distance; reused as perm */
	float	   *cnorms;			/* k: |c_j|^2 for ivf_assign */
	size_t	   *offs;			/* k + 1: cluster offsets in perm */
	double	   *hassign;		/* k: cluster sizes, halved by splits */
	double	   *acc;			/* d, or k x d when km_stream_update(): sums */
	void	   *assign_ws;		/* ivf_assign's workspace */
} KmeansWs;

size_t
ivf_kmeans_workspace_bytes(size_t n, size_t d, size_t k)
{
	size_t		b = IVF_WS_ALIGN;
	size_t		a = ivf_assign_workspace_bytes(k, d);

	if (a == 0 || k == SIZE_MAX)
		return 0;
	b = ws_add(b, ws_array(n, sizeof(int32_t)));
	b = ws_add(b, ws_array(n, sizeof(float)));
	b = ws_add(b, ws_array(k, sizeof(float)));
	b = ws_add(b, ws_array(k + 1, sizeof(size_t)));
	b = ws_add(b, ws_array(k, sizeof(double)));
	b = ws_add(b, ws_array(km_stream_update(d, k) ? k * d : d, sizeof(double)));
	b = ws_add(b, a);
	return b == SIZE_MAX ? 0 : b;
}

static void
kmeans_ws_carve(void *workspace, size_t n, size_t d, size_t k, KmeansWs *w)
{
	char	   *cur = ws_begin(workspace);

	w->assign = ws_take(&cur, n, sizeof(int32_t));
	w->dist = ws_take(&cur, n, sizeof(float));
	w->cnorms = ws_take(&cur, k, sizeof(float));
	w->offs = ws_take(&cur, k + 1, sizeof(size_t));
	w->hassign = ws_take(&cur, k, sizeof(double));
	w->acc = ws_take(&cur, km_stream_update(d, k) ? k * d : d, sizeof(double));
	/* ivf_assign aligns its own start again; that slack is in its size */
	w->assign_ws = cur;
}

/* Scale each centroid to unit norm (in double); zero ones stay zero. */
static void
kmeans_normalize(float *cent, size_t k, size_t d)
{
	size_t		j,
				t;

	for (j = 0; j < k; j++)
	{
		float	   *cj = cent + j * d;
		double		s = 0.0;

		for (t = 0; t < d; t++)
			s += (double) cj[t] * (double) cj[t];
		if (s > 0.0 && isfinite(s))
		{
			double		inv = 1.0 / sqrt(s);

			for (t = 0; t < d; t++)
				cj[t] = (float) ((double) cj[t] * inv);
		}
	}
}

/* The interrupt check ivf_assign calls between blocks. */
static void
kmeans_check(void *arg)
{
	const IvfKmeansParams *p = (const IvfKmeansParams *) arg;

	p->progress(p->progress_arg, -1, p->niter, 0.0);
}

/*
 * Centroids as the means of their points, summed in double in increasing
 * point order, so the result does not depend on anything but the inputs.
 * Empty clusters get a zero centroid and hassign 0; split_clusters then
 * re-seeds them.
 */
static void
kmeans_update(const float *x, size_t n, size_t d, size_t k, KmeansWs *w,
			  float *cent)
{
	double	   *acc = w->acc;
	double	   *cnt = w->hassign;
	size_t		i,
				j,
				t;

	if (km_stream_update(d, k))
	{
		memset(acc, 0, k * d * sizeof(double));
		memset(cnt, 0, k * sizeof(double));
		for (i = 0; i < n; i++)
		{
			cnt[w->assign[i]] += 1.0;
			ivf_kernels.add_f64(acc + (size_t) w->assign[i] * d, x + i * d, d);
		}
		for (j = 0; j < k; j++)
		{
			float	   *cj = cent + j * d;
			const double *sj = acc + j * d;

			for (t = 0; t < d; t++)
				cj[t] = cnt[j] > 0.0 ? (float) (sj[t] / cnt[j]) : 0.0f;
		}
		return;
	}

	{
		/* one cluster at a time: a stable counting sort lists its points */
		int32_t    *perm = (int32_t *) w->dist;

		memset(w->offs, 0, (k + 1) * sizeof(size_t));
		for (i = 0; i < n; i++)
			w->offs[(size_t) w->assign[i] + 1]++;
		for (j = 0; j < k; j++)
			w->offs[j + 1] += w->offs[j];
		/* after this loop offs[j] is the end of cluster j, the start of j + 1 */
		for (i = 0; i < n; i++)
			perm[w->offs[w->assign[i]]++] = (int32_t) i;

		for (j = 0; j < k; j++)
		{
			size_t		start = j == 0 ? 0 : w->offs[j - 1];
			size_t		end = w->offs[j];
			float	   *cj = cent + j * d;

			cnt[j] = (double) (end - start);
			if (end == start)
			{
				memset(cj, 0, d * sizeof(float));
				continue;
			}
			memset(acc, 0, d * sizeof(double));
			for (i = start; i < end; i++)
				ivf_kernels.add_f64(acc, x + (size_t) perm[i] * d, d);
			for (t = 0; t < d; t++)
				cj[t] = (float) (acc[t] / (double) (end - start));
		}
	}
}

/*
 * Faiss's split_clusters: each empty cluster ci takes over half of a
 * cluster cj chosen by walking the clusters cyclically from 0 and
 * accepting cj with probability (size_j - 1) / (n - k); both centroids are
 * cj's, pushed apart by a relative 1/1024 (even dimensions one way, odd the
 * other).  Sizes are halved as if the points split evenly.  n > k here, so
 * the sizes above 1 sum to more than n - k and each lap accepts with
 * probability > 1 - 1/e; the lap cap is only a guarantee of termination.
 */
static int64_t
kmeans_split(size_t n, size_t d, size_t k, double *hassign, float *cent,
			 uint64_t *rng)
{
	int64_t		nsplit = 0;
	size_t		ci,
				t;

	for (ci = 0; ci < k; ci++)
	{
		size_t		cj = 0;
		size_t		steps;
		float	   *a;
		float	   *b;

		if (hassign[ci] != 0.0)
			continue;

		for (steps = 0;; steps++)
		{
			double		p;

			if (steps >= 64 * k)
			{
				/* practically unreachable: take the largest cluster */
				size_t		m;

				cj = 0;
				for (m = 1; m < k; m++)
					if (hassign[m] > hassign[cj])
						cj = m;
				break;
			}
			p = (hassign[cj] - 1.0) / (double) (n - k);
			if (km_rng_double(rng) < p)
				break;
			cj = cj + 1 == k ? 0 : cj + 1;
		}

		a = cent + ci * d;
		b = cent + cj * d;
		memcpy(a, b, d * sizeof(float));
		for (t = 0; t < d; t++)
		{
			if (t % 2 == 0)
			{
				a[t] = (float) ((double) a[t] * (1.0 + IVF_SPLIT_EPS));
				b[t] = (float) ((double) b[t] * (1.0 - IVF_SPLIT_EPS));
			}
			else
			{
				a[t] = (float) ((double) a[t] * (1.0 - IVF_SPLIT_EPS));
				b[t] = (float) ((double) b[t] * (1.0 + IVF_SPLIT_EPS));
			}
		}
		hassign[ci] = hassign[cj] / 2.0;
		hassign[cj] -= hassign[ci];
		nsplit++;
	}
	return nsplit;
}

int
ivf_kmeans(const float *x, size_t n, size_t d, size_t k,
		   const IvfKmeansParams *params, void *workspace, float *centroids,
		   IvfKmeansStats *stats)
{
	KmeansWs	w;
	uint64_t	rng;
	int32_t    *perm;
	void		(*check) (void *) = NULL;
	IvfKmeansStats st;
	int			iter;
	int			converged = 0;
	size_t		i;

	if (params == NULL || workspace == NULL || x == NULL ||
		centroids == NULL || k < 1 || k > n || d < 1 ||
		n > (size_t) INT32_MAX || params->niter < 0 || !(params->tol >= 0.0) ||
		(params->metric != IVF_KM_L2 && params->metric != IVF_KM_IP) ||
		d > SIZE_MAX / sizeof(float) / n ||
		ivf_kmeans_workspace_bytes(n, d, k) == 0)
		return -1;

	kmeans_ws_carve(workspace, n, d, k, &w);
	memset(&st, 0, sizeof(st));
	rng = params->seed;
	if (params->progress != NULL)
		check = kmeans_check;

	if (k == n)
	{
		/* as Faiss: every point is a centroid, nothing to iterate */
		double		sum = 0.0;

		memcpy(centroids, x, n * d * sizeof(float));
		if (params->spherical)
			kmeans_normalize(centroids, k, d);
		for (i = 0; i < n; i++)
			sum += pair_dist(x + i * d, centroids + i * d, d, params->metric);
		st.objective = st.objective_first = sum / (double) n;
		if (params->assign_out != NULL)
			for (i = 0; i < n; i++)
				params->assign_out[i] = (int32_t) i;
		if (stats != NULL)
			*stats = st;
		return 0;
	}

	/*
	 * Init: the first k of a seeded uniform random permutation of the
	 * points (Faiss's default); a partial Fisher-Yates shuffle draws just
	 * those k.
	 */
	perm = (int32_t *) w.dist;
	for (i = 0; i < n; i++)
		perm[i] = (int32_t) i;
	for (i = 0; i < k; i++)
	{
		size_t		j = i + (size_t) km_rng_below(&rng, (uint64_t) (n - i));
		int32_t		tmp = perm[i];

		perm[i] = perm[j];
		perm[j] = tmp;
		memcpy(centroids + i * d, x + (size_t) perm[i] * d, d * sizeof(float));
	}
	/* unlike Faiss, also normalise the initial centroids: IP needs it */
	if (params->spherical)
		kmeans_normalize(centroids, k, d);

	for (iter = 1; iter <= params->niter; iter++)
	{
		double		sum = 0.0;
		double		obj;

		if (params->assign_fn == NULL ||
			params->assign_fn(params->assign_arg, centroids, k, w.assign, w.dist) != 0)
		{
			ivf_kernels.norm_sq_block(centroids, k, d, w.cnorms);
			ivf_assign(x, n, centroids, w.cnorms, k, d, params->metric,
					   w.assign_ws, w.assign, w.dist, check, (void *) params);
		}
		for (i = 0; i < n; i++)
			sum += (double) w.dist[i];
		obj = sum / (double) n;
		if (iter == 1)
			st.objective_first = obj;
		else if (params->tol > 0.0 &&
				 st.objective - obj <= params->tol * fabs(st.objective))
			converged = 1;
		st.objective = obj;

		kmeans_update(x, n, d, k, &w, centroids);
		st.splits += kmeans_split(n, d, k, w.hassign, centroids, &rng);
		if (params->spherical)
			kmeans_normalize(centroids, k, d);
		st.iterations = iter;

		if (params->progress != NULL)
			params->progress(params->progress_arg, iter, params->niter, obj);
		/* this round's update is done, so assign_out stays its assignment */
		if (converged)
			break;
	}

	if (params->assign_out != NULL)
	{
		if (st.iterations > 0)
			memcpy(params->assign_out, w.assign, n * sizeof(int32_t));
		else
			for (i = 0; i < n; i++)
				params->assign_out[i] = -1;
	}
	if (stats != NULL)
		*stats = st;
	return 0;
}
