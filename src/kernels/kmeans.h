/*-------------------------------------------------------------------------
 *
 * kmeans.h
 *	  k-means training of the IVF centroids, and exact nearest-centroid
 *	  assignment through blocked GEMM.
 *
 * The algorithm is Faiss's Clustering::train (no subsampling: the caller
 * has already sampled the training set): seeded random choice of k of the
 * n points as initial centroids, then niter rounds of assign / recompute
 * means / split empty clusters (Faiss's split_clusters) / optionally
 * normalise.
 *
 * Nothing here allocates memory.  The caller passes a workspace of the size
 * returned by the *_workspace_bytes() functions (any alignment), so a
 * progress or interrupt callback that never returns (ereport(ERROR) inside
 * PostgreSQL longjmps out) leaks nothing and needs no cleanup.
 *
 * Results are deterministic: the same inputs, seed and SIMD level give
 * bit-identical centroids (own PRNG; every reduction in a fixed order).
 * They do not depend on the BLAS library, its version or thread count,
 * since GEMM only ever narrows the candidates of the exact assignment.
 *
 * Plain C with no PostgreSQL dependency, like distance.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_KMEANS_H
#define IVF_KMEANS_H

#include <stddef.h>
#include <stdint.h>

/*
 * splitmix64: tiny state, good enough for sampling, and the same sequence
 * on every platform.  k-means, the build's reservoir sample and
 * ivf_autotune's query sample all draw from it.
 */
static inline uint64_t
ivf_splitmix64(uint64_t *s)
{
	uint64_t	z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/*
 * Reservoir sampling (Algorithm R): the slot among want that the row
 * numbered seen (counting from 0) takes, or -1 when it is not kept.  The
 * first want rows fill the slots in order; later ones draw from rng.
 */
static inline int64_t
ivf_reservoir_slot(uint64_t seen, uint64_t want, uint64_t *rng)
{
	uint64_t	j;

	if (seen < want)
		return (int64_t) seen;
	j = ivf_splitmix64(rng) % (seen + 1);
	return j < want ? (int64_t) j : -1;
}

typedef enum IvfKmMetric
{
	/* nearest = smallest squared L2 distance, ivf_kernels.l2sq() */
	IVF_KM_L2 = 0,
	/* nearest = largest dot product, i.e. smallest -ivf_kernels.dot() */
	IVF_KM_IP = 1
} IvfKmMetric;

typedef struct IvfKmeansParams
{
	/* number of assign/update rounds (Faiss default 25); 0 = init only */
	int			niter;
	/*
	 * Stop early, after the round whose assignment improved the objective
	 * (see IvfKmeansStats) by no more than tol times the previous round's
	 * |objective|; 0 runs all niter rounds.
	 */
	double		tol;
	/* seed of the PRNG that picks the initial centroids and split donors */
	uint64_t	seed;
	/*
	 * Nonzero: scale every centroid to unit L2 norm after each update (and
	 * after init), as Faiss's spherical k-means; use for cosine and inner
	 * product.  A zero centroid stays zero.
	 */
	int			spherical;
	/* distance used to assign points to centroids */
	IvfKmMetric metric;
	/*
	 * Optional (may be NULL).  Called with iter = 1..niter after each round,
	 * objective being that round's mean distance (see IvfKmeansStats), and
	 * with iter = -1, objective 0, between GEMM blocks of the assignment as
	 * an interrupt check.  It may longjmp out: nothing is left to free.
	 */
	void		(*progress) (void *arg, int iter, int niter, double objective);
	/* passed through to progress */
	void	   *progress_arg;
	/*
	 * Optional (may be NULL): n entries receiving each point's cluster in
	 * the last round's assignment (made before that round's update, so a
	 * point may since be nearer another centroid); the identity when
	 * k == n; -1 everywhere when niter is 0.  Free: the rounds compute it.
	 */
	int32_t    *assign_out;
	/*
	 * Optional (may be NULL): an assignment step done elsewhere (the GPU
	 * worker), filling assign and dist for all n points against the k
	 * centroids as ivf_assign would: the nearest, ties to the lower number,
	 * and its distance.  A nonzero return means it could not: that round
	 * is assigned here instead.
	 */
	int			(*assign_fn) (void *arg, const float *centroids, size_t k,
							  int32_t *assign, float *dist);
	void	   *assign_arg;
} IvfKmeansParams;

typedef struct IvfKmeansStats
{
	/*
	 * Rounds run: niter, fewer when tol stopped them, 0 when k == n (the
	 * points are the centroids).
	 */
	int			iterations;
	/*
	 * Mean over the n points of the distance to the assigned centroid, as
	 * measured by the assignment step of the first and the last round
	 * (squared L2 for IVF_KM_L2, -dot for IVF_KM_IP), i.e. before that
	 * round's update, as in Faiss's iteration_stats (which hold the sum).
	 * With no round run: the identity assignment for k == n, else 0.
	 */
	double		objective_first;
	double		objective;
	/* empty clusters re-seeded by splitting a large one, over all rounds */
	int64_t		splits;
} IvfKmeansStats;

/*
 * Bytes of a k x d matrix of double sums up to which the centroid update
 * streams over the points (else it gathers one cluster at a time; same
 * result).  Default 16 MB; tests lower it to reach both ways.
 */
extern size_t ivf_kmeans_stream_max_bytes;

/*
 * Workspace for ivf_kmeans(n, d, k): about 8 n + 20 k + 8 d bytes (8 k d
 * up to ivf_kmeans_stream_max_bytes instead of 8 d) plus
 * ivf_assign_workspace_bytes(k, d).  0 if the size would overflow.
 */
extern size_t ivf_kmeans_workspace_bytes(size_t n, size_t d, size_t k);

/*
 * Train k centroids (k x d floats, written to centroids) on the n x d
 * points x.  Requires 1 <= k <= n, d >= 1, n < 2^31, niter >= 0 and
 * workspace of at least ivf_kmeans_workspace_bytes(n, d, k) bytes; returns
 * -1 (touching nothing) otherwise, 0 on success.  stats may be NULL.
 *
 * k == n returns the points themselves (like Faiss; normalised if
 * spherical) without iterating.
 */
extern int	ivf_kmeans(const float *x, size_t n, size_t d, size_t k,
					   const IvfKmeansParams *params, void *workspace,
					   float *centroids, IvfKmeansStats *stats);

/*
 * Workspace for ivf_assign() with k centroids: about 8 k bytes plus a
 * fixed 2 MB distance block (less when k is small), independent of n and d.
 */
extern size_t ivf_assign_workspace_bytes(size_t k, size_t d);

/*
 * Nearest centroid of each of the n points x (n x d) among c (k x d):
 * assign[i] = j minimising dist(x_i, c_j), ties to the lowest j, where
 * dist is ivf_kernels.l2sq (IVF_KM_L2) or -ivf_kernels.dot (IVF_KM_IP) and a
 * NaN distance counts as +inf.  dist (may be NULL) receives that distance.
 *
 * The result is exactly the one ivf_assign_bruteforce() gives (bit for
 * bit, distances included) for the active SIMD level: GEMM only narrows
 * the candidates, with a rigorous error bound, and the survivors are ranked
 * with the pair kernel.
 *
 * cnorms: |c_j|^2 (k floats, e.g. from ivf_kernels.norm_sq_block), or NULL
 * to compute them here; any value works for correctness as long as it is
 * the norm computed by some float summation of c_j.  check (may be NULL)
 * is called with check_arg between blocks (never from inside BLAS), and may
 * longjmp out.  With n < 8 or k < 8 this simply is the brute force.
 */
extern void ivf_assign(const float *x, size_t n, const float *c,
					   const float *cnorms, size_t k, size_t d,
					   IvfKmMetric metric, void *workspace, int32_t *assign,
					   float *dist, void (*check) (void *), void *check_arg);

/* Like ivf_assign, but always through GEMM (tests, benchmarks). */
extern void ivf_assign_gemm(const float *x, size_t n, const float *c,
							const float *cnorms, size_t k, size_t d,
							IvfKmMetric metric, void *workspace,
							int32_t *assign, float *dist,
							void (*check) (void *), void *check_arg);

/*
 * The reference rule: every pair through the pair kernel, lowest index
 * wins ties.  Needs no workspace; cnorms is ignored (kept for symmetry).
 * Used by ivf_assign for small problems and by single-vector inserts.
 */
extern void ivf_assign_bruteforce(const float *x, size_t n, const float *c,
								  const float *cnorms, size_t k, size_t d,
								  IvfKmMetric metric, int32_t *assign,
								  float *dist, void (*check) (void *),
								  void *check_arg);

#endif							/* IVF_KMEANS_H */
