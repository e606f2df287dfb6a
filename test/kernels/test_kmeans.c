/*-------------------------------------------------------------------------
 *
 * test_kmeans.c
 *	  Standalone test of the nearest-centroid assignment and k-means
 *	  (no server needed).
 *
 * The central property: ivf_assign (GEMM shortlist + exact re-rank) gives
 * exactly what ivf_assign_bruteforce gives, ids and distances bit for bit,
 * because inserts use the brute-force rule and the build must agree with
 * them.  It is checked on random, integer-valued (many exact ties), real
 * (siftsmall) and adversarial data, for both metrics and every SIMD level.
 *
 * Every workspace ends right before a PROT_NONE page (an overrun crashes
 * the test) and is poisoned with NaN bytes first; runs on a second poison
 * must agree bit for bit, so nothing depends on uninitialised contents.
 *
 * Set IVF_DATA_DIR (e.g. ../shared/data) for the siftsmall checks (exact
 * assignment on real data, k-means quality against Faiss).
 *
 * Prints one line per check group and finally "N passed, M failed"; exits
 * 1 if anything failed.
 *
 *-------------------------------------------------------------------------
 */
#include "distance.h"
#include "kmeans.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

static const char *
metric_name(IvfKmMetric m)
{
	return m == IVF_KM_IP ? "ip" : "l2";
}

/* ---------------------------------------------------------------------
 * ivf_assign vs brute force
 * ---------------------------------------------------------------------
 */

/*
 * Run the GEMM path (forced), the dispatcher and the brute force; all must
 * agree bit for bit.  The GEMM path runs on two differently poisoned
 * workspaces, with and without caller-provided norms.  Returns the number
 * of points whose result differed (0 = good).
 */
static size_t
assign_compare(const char *what, const float *x, size_t n, const float *c,
			   size_t k, size_t d, IvfKmMetric metric)
{
	size_t		wsb = ivf_assign_workspace_bytes(k, d);
	int32_t    *ab = xmalloc(n * sizeof(int32_t));
	int32_t    *ag = xmalloc(n * sizeof(int32_t));
	float	   *db = xmalloc(n * sizeof(float));
	float	   *dg = xmalloc(n * sizeof(float));
	float	   *cn = xmalloc(k * sizeof(float));
	size_t		bad = 0;
	size_t		i;
	int			pass;

	ivf_kernels.norm_sq_block(c, k, d, cn);
	ivf_assign_bruteforce(x, n, c, NULL, k, d, metric, ab, db, NULL, NULL);
	check(wsb > 0, "%s: workspace size 0", what);

	for (pass = 0; pass < 3; pass++)
	{
		Guarded		g;
		size_t		nbad = 0;
		size_t		first = 0;

		guarded_alloc(&g, wsb, pass == 1 ? 0x00 : 0xFF);
		memset(ag, 0x55, n * sizeof(int32_t));
		memset(dg, 0x55, n * sizeof(float));
		if (pass == 2)
			ivf_assign(x, n, c, cn, k, d, metric, g.p, ag, dg, NULL, NULL);
		else
			ivf_assign_gemm(x, n, c, pass == 0 ? cn : NULL, k, d, metric,
							g.p, ag, dg, NULL, NULL);
		guarded_free(&g);
		for (i = 0; i < n; i++)
			if (ag[i] != ab[i] || !same_float(dg[i], db[i], 0))
			{
				if (nbad++ == 0)
					first = i;
			}
		check(nbad == 0,
			  "%s %s n=%zu k=%zu d=%zu %s: %zu points differ, first %zu: "
			  "%d (%.9g) vs brute %d (%.9g)",
			  what, metric_name(metric), n, k, d,
			  pass == 2 ? "ivf_assign" : pass == 1 ? "gemm, no norms" : "gemm",
			  nbad, first, ag[first], dg[first], ab[first], db[first]);
		bad += nbad;
	}

	/* the brute force itself: ids in range, dist = pair kernel, minimal */
	for (i = 0; i < n; i++)
	{
		int32_t		j = ab[i];
		float		v;

		if (!check(j >= 0 && (size_t) j < k, "%s: brute id %d out of range", what, j))
			break;
		v = metric == IVF_KM_IP ? -ivf_kernels.dot(x + i * d, c + (size_t) j * d, d) :
			ivf_kernels.l2sq(x + i * d, c + (size_t) j * d, d);
		if (isnan(v))
			v = INFINITY;
		if (!check(same_float(v, db[i], 0), "%s: brute dist of point %zu", what, i))
			break;
	}
	/* a few full verifications of minimality and the tie rule */
	for (i = 0; i < n && i < 16; i++)
	{
		size_t		j;

		for (j = 0; j < k; j++)
		{
			float		v = metric == IVF_KM_IP ? -ivf_kernels.dot(x + i * d, c + j * d, d) :
				ivf_kernels.l2sq(x + i * d, c + j * d, d);

			if (isnan(v))
				v = INFINITY;
			if (!check(v > db[i] || (v == db[i] && j >= (size_t) ab[i]),
					   "%s: point %zu: centroid %zu (%.9g) beats brute %d (%.9g)",
					   what, i, j, v, ab[i], db[i]))
				break;
		}
	}

	free(ab);
	free(ag);
	free(db);
	free(dg);
	free(cn);
	return bad;
}

/* Gaussian-ish: sum of three uniforms */
static float
rng_gauss(void)
{
	return rng_float(-1.0f, 1.0f) + rng_float(-1.0f, 1.0f) + rng_float(-1.0f, 1.0f);
}

/*
 * Points drawn around the centroids (so nearest and second nearest are
 * often close), plus pure noise points.
 */
static void
make_clustered(float *x, size_t n, const float *c, size_t k, size_t d,
			   float noise)
{
	size_t		i,
				t;

	for (i = 0; i < n; i++)
	{
		if (i % 5 == 4 || k == 0)
		{
			for (t = 0; t < d; t++)
				x[i * d + t] = rng_gauss();
			continue;
		}
		else
		{
			size_t		j = (size_t) rng_int(0, (int) k - 1);

			for (t = 0; t < d; t++)
				x[i * d + t] = c[j * d + t] + noise * rng_gauss();
		}
	}
}

static void
test_assign_random(void)
{
	static const size_t dims[] = {1, 3, 17, 128, 784, 1536};
	static const size_t ks[] = {1, 2, 7, 1000, 5000};
	int			m;

	for (m = 0; m < 2; m++)
	{
		IvfKmMetric metric = (IvfKmMetric) m;
		size_t		di,
					ki;

		group_begin("%s %s: assign == brute force, random data, d x k grid",
					ivf_simd_level_name(ivf_kernels.level), metric_name(metric));
		rng_seed(100 + m);
		for (di = 0; di < sizeof(dims) / sizeof(dims[0]); di++)
			for (ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++)
			{
				size_t		d = dims[di];
				size_t		k = ks[ki];
				double		budget = 6e7 / ((double) k * (double) d);
				size_t		n = budget < 300 ? 300 : budget > 2000 ? 2000 : (size_t) budget;
				float	   *c = xmalloc(k * d * sizeof(float));
				float	   *x = xmalloc(n * d * sizeof(float));
				size_t		j;
				char		what[64];

				for (j = 0; j < k * d; j++)
					c[j] = rng_gauss();
				make_clustered(x, n, c, k, d, 0.05f);
				snprintf(what, sizeof(what), "gauss");
				assign_compare(what, x, n, c, k, d, metric);

				/* small integers: masses of exact ties */
				fill_int(c, k * d, 0, 2);
				fill_int(x, n * d, 0, 2);
				snprintf(what, sizeof(what), "ints");
				assign_compare(what, x, n, c, k, d, metric);
				free(c);
				free(x);
			}
		group_end();
	}
}

static void
test_assign_big_d(void)
{
	size_t		d = 16000,
				n = 40,
				k = 60;
	float	   *c = xmalloc(k * d * sizeof(float));
	float	   *x = xmalloc(n * d * sizeof(float));
	int			m;

	group_begin("assign == brute force, d=16000");
	rng_seed(7);
	fill_float(c, k * d, -1.0f, 1.0f);
	make_clustered(x, n, c, k, d, 0.01f);
	for (m = 0; m < 2; m++)
		assign_compare("d16000", x, n, c, k, d, (IvfKmMetric) m);
	free(c);
	free(x);
	group_end();
}

static void
test_assign_adversarial(void)
{
	size_t		d,
				i,
				j,
				t;
	int			m;

	group_begin("%s: assign == brute force, adversarial near-ties",
				ivf_simd_level_name(ivf_kernels.level));
	rng_seed(11);
	for (m = 0; m < 2; m++)
	{
		IvfKmMetric metric = (IvfKmMetric) m;

		/* duplicated centroids: the lowest copy must win */
		for (d = 3; d <= 131; d += 64)
		{
			size_t		base = 100,
						k = 3 * base,
						n = 700;
			float	   *c = xmalloc(k * d * sizeof(float));
			float	   *x = xmalloc(n * d * sizeof(float));
			int32_t    *a = xmalloc(n * sizeof(int32_t));

			for (t = 0; t < base * d; t++)
				c[t] = rng_gauss();
			memcpy(c + base * d, c, base * d * sizeof(float));
			memcpy(c + 2 * base * d, c, base * d * sizeof(float));
			make_clustered(x, n, c, base, d, 0.1f);
			assign_compare("duplicates", x, n, c, k, d, metric);
			ivf_assign_bruteforce(x, n, c, NULL, k, d, metric, a, NULL, NULL, NULL);
			for (i = 0; i < n; i++)
				check(a[i] < (int32_t) base, "duplicates: point %zu went to copy %d",
					  i, a[i]);
			free(c);
			free(x);
			free(a);
		}

		/* points exactly halfway between two centroids (even integers) */
		for (d = 1; d <= 65; d += 16)
		{
			size_t		k = 64,
						n = 500;
			float	   *c = xmalloc(k * d * sizeof(float));
			float	   *x = xmalloc(n * d * sizeof(float));

			for (t = 0; t < k * d; t++)
				c[t] = (float) (2 * rng_int(-50, 50));
			for (i = 0; i < n; i++)
			{
				size_t		a = (size_t) rng_int(0, (int) k - 1);
				size_t		b = (size_t) rng_int(0, (int) k - 1);

				for (t = 0; t < d; t++)
					x[i * d + t] = (c[a * d + t] + c[b * d + t]) / 2;
			}
			assign_compare("halfway", x, n, c, k, d, metric);
			free(c);
			free(x);
		}

		/* huge norms close together: GEMM cancellation swamps everything */
		for (d = 8; d <= 520; d += 256)
		{
			size_t		k = 300,
						n = 400;
			float	   *c = xmalloc(k * d * sizeof(float));
			float	   *x = xmalloc(n * d * sizeof(float));
			float	   *center = xmalloc(d * sizeof(float));

			for (t = 0; t < d; t++)
				center[t] = 1e4f * rng_gauss();
			for (j = 0; j < k; j++)
				for (t = 0; t < d; t++)
					c[j * d + t] = center[t] + 0.01f * rng_gauss();
			for (i = 0; i < n; i++)
				for (t = 0; t < d; t++)
					x[i * d + t] = center[t] + 0.01f * rng_gauss();
			assign_compare("huge norms", x, n, c, k, d, metric);
			free(c);
			free(x);
			free(center);
		}

		/* all-zero points, and all-zero centroids */
		{
			size_t		k = 50,
						n = 300;

			d = 24;
			{
				float	   *c = xmalloc(k * d * sizeof(float));
				float	   *x = calloc(n * d, sizeof(float));

				fill_float(c, k * d, -1.0f, 1.0f);
				assign_compare("zero points", x, n, c, k, d, metric);
				memset(c, 0, k * d * sizeof(float));
				fill_float(x, n * d, -1.0f, 1.0f);
				assign_compare("zero centroids", x, n, c, k, d, metric);
				free(c);
				free(x);
			}
		}

		/* finite inputs whose distances overflow to inf, tiny values */
		d = 24;
		{
			size_t		k = 40,
						n = 100;
			float	   *c = xmalloc(k * d * sizeof(float));
			float	   *x = xmalloc(n * d * sizeof(float));

			fill_float(c, k * d, -3e19f, 3e19f);
			fill_float(x, n * d, -3e19f, 3e19f);
			for (j = 0; j < 10; j++)
				for (t = 0; t < d; t++)
					c[j * d + t] *= 1e-19f;
			assign_compare("overflow", x, n, c, k, d, metric);
			fill_float(c, k * d, -1e-20f, 1e-20f);
			fill_float(x, n * d, -1e-20f, 1e-20f);
			assign_compare("underflow", x, n, c, k, d, metric);
			free(c);
			free(x);
		}
	}
	group_end();
}

/* ---------------------------------------------------------------------
 * Real data
 * ---------------------------------------------------------------------
 */

static float *
load_siftsmall(const char *dir, size_t *n, size_t *d)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/siftsmall-128/siftsmall_base.fvecs", dir);
	return read_vecs(path, n, d);
}

/* nb points of base (all at the best level, fewer at the slower ones) */
static void
test_assign_sift(const char *name, const float *base, size_t nb, size_t d)
{
	size_t		k = 1000;
	float	   *c = xmalloc(k * d * sizeof(float));
	size_t		j,
				t;
	int			m;

	group_begin("%s: assign == brute force, %s %zu x %zu",
				ivf_simd_level_name(ivf_kernels.level), name, nb, d);
	rng_seed(21);
	for (m = 0; m < 2; m++)
	{
		/* centroids that are data points: distance 0 and exact duplicates */
		for (j = 0; j < k; j++)
			memcpy(c + j * d, base + (j * 10 % nb) * d, d * sizeof(float));
		assign_compare("sift rows", base, nb, c, k, d, (IvfKmMetric) m);
		/* midpoints of random pairs of points */
		for (j = 0; j < k; j++)
		{
			size_t		a = (size_t) rng_int(0, (int) nb - 1);
			size_t		b = (size_t) rng_int(0, (int) nb - 1);

			for (t = 0; t < d; t++)
				c[j * d + t] = (base[a * d + t] + base[b * d + t]) * 0.5f;
		}
		assign_compare("sift midpoints", base, nb, c, k, d, (IvfKmMetric) m);
	}
	free(c);
	group_end();
}

/* ---------------------------------------------------------------------
 * k-means
 * ---------------------------------------------------------------------
 */

typedef struct ProgressLog
{
	int			calls;
	int			checks;			/* iter == -1 calls */
	int			last_iter;
	int			in_order;
	double		obj[64];
	int			jump_after_checks;	/* > 0: longjmp at that check */
	jmp_buf    *jb;
} ProgressLog;

static void
progress_cb(void *arg, int iter, int niter, double objective)
{
	ProgressLog *log = (ProgressLog *) arg;

	log->calls++;
	if (iter == -1)
	{
		log->checks++;
		if (log->jump_after_checks > 0 && log->checks == log->jump_after_checks)
			longjmp(*log->jb, 1);
		return;
	}
	if (iter != log->last_iter + 1 || iter > niter)
		log->in_order = 0;
	log->last_iter = iter;
	if (iter >= 1 && iter < 64)
		log->obj[iter] = objective;
}

/* k-means with a guarded, poisoned workspace. */
static int
run_kmeans(const float *x, size_t n, size_t d, size_t k,
		   const IvfKmeansParams *p, int poison, float *cent,
		   IvfKmeansStats *st)
{
	size_t		wsb = ivf_kmeans_workspace_bytes(n, d, k);
	Guarded		g;
	int			rc;

	if (wsb == 0)
		return -2;
	guarded_alloc(&g, wsb, poison);
	rc = ivf_kmeans(x, n, d, k, p, g.p, cent, st);
	guarded_free(&g);
	return rc;
}

static void
default_params(IvfKmeansParams *p)
{
	memset(p, 0, sizeof(*p));
	p->niter = 25;
	p->seed = 1234;
	p->metric = IVF_KM_L2;
}

static void
test_kmeans_determinism(void)
{
	size_t		n = 4000,
				d = 32,
				k = 64;
	float	   *c0 = xmalloc(k * d * sizeof(float));
	float	   *x = xmalloc(n * d * sizeof(float));
	float	   *a = xmalloc(k * d * sizeof(float));
	float	   *b = xmalloc(k * d * sizeof(float));
	IvfKmeansParams p;
	IvfKmeansStats sa,
				sb;
	int			m;

	group_begin("kmeans: deterministic per seed, seed matters");
	rng_seed(31);
	fill_float(c0, k * d, -1.0f, 1.0f);
	make_clustered(x, n, c0, k, d, 0.3f);
	for (m = 0; m < 2; m++)
	{
		default_params(&p);
		p.metric = (IvfKmMetric) m;
		p.spherical = m;
		p.niter = 10;
		check(run_kmeans(x, n, d, k, &p, 0xFF, a, &sa) == 0, "run 1");
		check(run_kmeans(x, n, d, k, &p, 0x00, b, &sb) == 0, "run 2");
		check(memcmp(a, b, k * d * sizeof(float)) == 0,
			  "%s: same seed, different centroids", metric_name(p.metric));
		check(sa.objective == sb.objective && sa.splits == sb.splits,
			  "%s: same seed, different stats", metric_name(p.metric));
		/* the per-cluster update (huge k x d) must give the same bits */
		{
			size_t		saved = ivf_kmeans_stream_max_bytes;

			ivf_kmeans_stream_max_bytes = 0;
			check(run_kmeans(x, n, d, k, &p, 0xFF, b, &sb) == 0, "run 2b");
			ivf_kmeans_stream_max_bytes = saved;
			check(memcmp(a, b, k * d * sizeof(float)) == 0 &&
				  sa.objective == sb.objective && sa.splits == sb.splits,
				  "%s: streamed and per-cluster updates differ",
				  metric_name(p.metric));
		}
		p.seed = 1235;
		check(run_kmeans(x, n, d, k, &p, 0xFF, b, &sb) == 0, "run 3");
		check(memcmp(a, b, k * d * sizeof(float)) != 0,
			  "%s: different seed, same centroids", metric_name(p.metric));
	}
	free(c0);
	free(x);
	free(a);
	free(b);
	group_end();
}

/*
 * assign_out holds round niter's assignment: exactly the brute-force
 * assignment to the centroids a run of niter - 1 rounds ends with (runs are
 * deterministic per seed); the identity when k == n; -1 with no round.
 */
static void
test_kmeans_assign_out(void)
{
	size_t		n = 3000,
				d = 24,
				k = 40;
	float	   *c0 = xmalloc(k * d * sizeof(float));
	float	   *x = xmalloc(n * d * sizeof(float));
	float	   *prev = xmalloc(n * d * sizeof(float));
	float	   *cent = xmalloc(n * d * sizeof(float));
	int32_t    *got = xmalloc(n * sizeof(int32_t));
	int32_t    *want = xmalloc(n * sizeof(int32_t));
	IvfKmeansParams p;
	IvfKmeansStats st;
	size_t		i;
	int			m;

	group_begin("kmeans: assign_out is the last round's assignment");
	rng_seed(77);
	fill_float(c0, k * d, -1.0f, 1.0f);
	make_clustered(x, n, c0, k, d, 0.4f);
	for (m = 0; m < 2; m++)
	{
		default_params(&p);
		p.metric = (IvfKmMetric) m;
		p.spherical = m;
		p.niter = 6;
		check(run_kmeans(x, n, d, k, &p, 0xFF, prev, &st) == 0, "run niter 6");
		p.niter = 7;
		p.assign_out = got;
		check(run_kmeans(x, n, d, k, &p, 0x00, cent, &st) == 0, "run niter 7");
		ivf_assign_bruteforce(x, n, prev, NULL, k, d, p.metric, want, NULL,
							  NULL, NULL);
		check(memcmp(got, want, n * sizeof(int32_t)) == 0,
			  "%s: assign_out differs from the assignment to round 6's centroids",
			  metric_name(p.metric));
	}

	default_params(&p);
	p.assign_out = got;
	check(run_kmeans(x, 50, d, 50, &p, 0xFF, cent, &st) == 0, "run k == n");
	for (i = 0; i < 50; i++)
		check(got[i] == (int32_t) i, "k == n: point %zu assigned %d", i, got[i]);
	p.niter = 0;
	check(run_kmeans(x, n, d, k, &p, 0xFF, cent, &st) == 0, "run niter 0");
	for (i = 0; i < n; i++)
		check(got[i] == -1, "niter 0: point %zu assigned %d", i, got[i]);

	free(c0);
	free(x);
	free(prev);
	free(cent);
	free(got);
	free(want);
	group_end();
}

/* Mean squared L2 from each point to its nearest centroid, in double. */
static double
objective_l2(const float *x, size_t n, const float *c, size_t k, size_t d,
			 int32_t *assign_out)
{
	int32_t    *a = xmalloc(n * sizeof(int32_t));
	double		s = 0.0;
	size_t		i,
				t;

	ivf_assign_bruteforce(x, n, c, NULL, k, d, IVF_KM_L2, a, NULL, NULL, NULL);
	for (i = 0; i < n; i++)
		for (t = 0; t < d; t++)
		{
			double		v = (double) x[i * d + t] - c[(size_t) a[i] * d + t];

			s += v * v;
		}
	if (assign_out != NULL)
		memcpy(assign_out, a, n * sizeof(int32_t));
	free(a);
	return s / (double) n;
}

/*
 * Reference: Faiss 1.15.1 (faiss-cpu wheel), faiss.Kmeans(128, 100,
 * niter=25, seed=s).train(siftsmall_base) gives a final obj / n of
 * 61103.2, 60907.5, 60990.9, 61118.2, 60942.4 for s = 1234, 1, 2, 3, 4
 * (mean 61012.4); its first-iteration objective is about 97,000-98,600.
 */
#define FAISS_SIFT_K100_OBJ		61012.4

/*
 * Reference: Faiss 1.7.3 (Debian's python3-faiss), the same training on the
 * first 10,000 Fashion-MNIST training images (784 dims, pixels 0..255):
 * final obj / n 1310005.1, 1310241.6, 1312328.4, 1312258.0, 1307632.5 for
 * s = 1234, 1, 2, 3, 4 (mean 1310493.1); first iteration 2.17M-2.27M.
 */
#define FAISS_FMNIST_K100_OBJ	1310493.1

static void
test_kmeans_sift(const char *name, const float *base, size_t nb, size_t d,
				 double faiss_obj)
{
	size_t		k = 100;
	float	   *cent = xmalloc(k * d * sizeof(float));
	IvfKmeansParams p;
	IvfKmeansStats st;
	ProgressLog log;
	double		t0,
				t1,
				recomputed;
	int			i,
				rc,
				mono = 1;

	group_begin("kmeans: %s k=100, 25 iters, vs Faiss", name);
	memset(&log, 0, sizeof(log));
	log.in_order = 1;
	default_params(&p);
	p.progress = progress_cb;
	p.progress_arg = &log;
	t0 = now_sec();
	rc = run_kmeans(base, nb, d, k, &p, 0xFF, cent, &st);
	t1 = now_sec();
	check(rc == 0, "kmeans failed");
	check(st.iterations == 25 && log.last_iter == 25 && log.in_order,
		  "progress: %d iterations, last %d, in order %d", st.iterations,
		  log.last_iter, log.in_order);
	check(log.checks > 0, "no interrupt checks between blocks");
	check(log.obj[1] == st.objective_first && log.obj[25] == st.objective,
		  "stats objective != progress objective");
	for (i = 2; i <= 25; i++)
		if (log.obj[i] > log.obj[i - 1] * (1 + 1e-6))
			mono = 0;
	check(mono, "objective not non-increasing");
	check(st.objective < 0.7 * st.objective_first,
		  "objective %.1f not well below first %.1f", st.objective,
		  st.objective_first);
	check(st.objective < faiss_obj * 1.03 &&
		  st.objective > faiss_obj * 0.9,
		  "objective %.1f not within 3%% of Faiss %.1f", st.objective,
		  faiss_obj);
	/* the reported objective is the assignment distance, in float sums */
	recomputed = objective_l2(base, nb, cent, k, d, NULL);
	check(recomputed <= st.objective * 1.001,
		  "objective with final centroids %.1f above last round %.1f",
		  recomputed, st.objective);
	printf("      %s k=100: objective first %.1f, last %.1f, final "
		   "centroids %.1f (Faiss %.1f), %d splits, %.2f s\n",
		   name, st.objective_first, st.objective, recomputed, faiss_obj,
		   (int) st.splits, t1 - t0);
	free(cent);
	group_end();
}

static void
test_kmeans_edges(void)
{
	IvfKmeansParams p;
	IvfKmeansStats st;
	size_t		i,
				t;

	group_begin("kmeans: k == n, k == 1, duplicates/splits, spherical, args");
	rng_seed(41);

	/* k == n: the points themselves, objective 0 */
	{
		size_t		n = 300,
					d = 16;
		float	   *x = xmalloc(n * d * sizeof(float));
		float	   *c = xmalloc(n * d * sizeof(float));

		fill_float(x, n * d, -1.0f, 1.0f);
		default_params(&p);
		check(run_kmeans(x, n, d, n, &p, 0xFF, c, &st) == 0, "k == n failed");
		check(memcmp(x, c, n * d * sizeof(float)) == 0, "k == n: centroids != points");
		check(st.objective == 0.0 && st.iterations == 0, "k == n: objective %g",
			  st.objective);
		check(objective_l2(x, n, c, n, d, NULL) == 0.0, "k == n: real objective");
		free(x);
		free(c);
	}

	/* k == 1: the mean (summed in double, in order) */
	{
		size_t		n = 1001,
					d = 7;
		float	   *x = xmalloc(n * d * sizeof(float));
		float		c[7];
		double		s[7];
		int			ok = 1;

		fill_float(x, n * d, -5.0f, 3.0f);
		default_params(&p);
		check(run_kmeans(x, n, d, 1, &p, 0xFF, c, &st) == 0, "k == 1 failed");
		for (t = 0; t < d; t++)
		{
			s[t] = 0.0;
			for (i = 0; i < n; i++)
				s[t] += x[i * d + t];
			ok &= c[t] == (float) (s[t] / (double) n);
		}
		check(ok, "k == 1: centroid is not the mean");
		check(st.splits == 0, "k == 1: splits");
		free(x);
	}

	/* many duplicates: empty clusters get split, none stays empty */
	{
		size_t		distinct = 100,
					n = 1000,
					d = 8,
					k = 50;
		float	   *u = xmalloc(distinct * d * sizeof(float));
		float	   *x = xmalloc(n * d * sizeof(float));
		float	   *c = xmalloc(k * d * sizeof(float));
		int32_t    *a = xmalloc(n * sizeof(int32_t));
		size_t	   *cnt = calloc(k, sizeof(size_t));
		size_t		nempty = 0;

		fill_float(u, distinct * d, -1.0f, 1.0f);
		for (i = 0; i < n; i++)
			memcpy(x + i * d, u + (i % distinct) * d, d * sizeof(float));
		default_params(&p);
		check(run_kmeans(x, n, d, k, &p, 0xFF, c, &st) == 0, "duplicates failed");
		check(st.splits > 0, "duplicates: no split counted");
		objective_l2(x, n, c, k, d, a);
		for (i = 0; i < n; i++)
			cnt[a[i]]++;
		for (i = 0; i < k; i++)
			nempty += cnt[i] == 0;
		check(nempty == 0, "duplicates: %zu clusters empty at the end", nempty);
		for (i = 0; i < k * d; i++)
			if (!check(isfinite(c[i]), "duplicates: non-finite centroid"))
				break;

		/* only 10 distinct points for 50 clusters: splits every round */
		for (i = 0; i < n; i++)
			memcpy(x + i * d, u + (i % 10) * d, d * sizeof(float));
		check(run_kmeans(x, n, d, k, &p, 0xFF, c, &st) == 0, "10 distinct failed");
		check(st.splits >= 40 * 25, "10 distinct: only %lld splits",
			  (long long) st.splits);
		check(st.objective < 1e-6, "10 distinct: objective %g", st.objective);
		free(u);
		free(x);
		free(c);
		free(a);
		free(cnt);
	}

	/* spherical: unit norm centroids, for both metrics */
	{
		size_t		n = 3000,
					d = 48,
					k = 40;
		float	   *x = xmalloc(n * d * sizeof(float));
		float	   *c0 = xmalloc(k * d * sizeof(float));
		float	   *c = xmalloc(k * d * sizeof(float));
		int			m;

		fill_float(c0, k * d, -1.0f, 1.0f);
		make_clustered(x, n, c0, k, d, 0.5f);
		for (m = 0; m < 2; m++)
		{
			double		worst = 0.0;

			default_params(&p);
			p.spherical = 1;
			p.metric = (IvfKmMetric) m;
			p.niter = 10;
			check(run_kmeans(x, n, d, k, &p, 0xFF, c, &st) == 0, "spherical failed");
			for (i = 0; i < k; i++)
			{
				double		s = 0.0;

				for (t = 0; t < d; t++)
					s += (double) c[i * d + t] * c[i * d + t];
				if (fabs(sqrt(s) - 1.0) > worst)
					worst = fabs(sqrt(s) - 1.0);
			}
			check(worst <= 1e-5, "spherical %s: norm off by %g",
				  metric_name(p.metric), worst);
			if (m == 1)
				check(st.objective < st.objective_first,
					  "spherical ip: objective %g not below first %g",
					  st.objective, st.objective_first);
		}
		free(x);
		free(c0);
		free(c);
	}

	/* argument checks */
	{
		float		x[8] = {0};
		float		c[8];
		char		ws[65536];

		default_params(&p);
		check(ivf_kmeans(x, 4, 2, 0, &p, ws, c, NULL) == -1, "k = 0 accepted");
		check(ivf_kmeans(x, 4, 2, 5, &p, ws, c, NULL) == -1, "k > n accepted");
		check(ivf_kmeans(x, 4, 0, 2, &p, ws, c, NULL) == -1, "d = 0 accepted");
		p.niter = -1;
		check(ivf_kmeans(x, 4, 2, 2, &p, ws, c, NULL) == -1, "niter < 0 accepted");
		p.niter = 0;
		check(sizeof(ws) >= ivf_kmeans_workspace_bytes(4, 2, 2), "tiny ws");
		check(ivf_kmeans(x, 4, 2, 2, &p, ws, c, &st) == 0 && st.iterations == 0,
			  "niter = 0");
		check(ivf_kmeans_workspace_bytes(SIZE_MAX / 2, 4, 4) == 0,
			  "overflowing workspace size not 0");
		check(ivf_assign_workspace_bytes(SIZE_MAX / 2, 4) == 0,
			  "overflowing assign workspace size not 0");
	}
	group_end();
}

static void
test_kmeans_interrupt(void)
{
	size_t		n = 3000,
				d = 16,
				k = 300;
	float	   *x = xmalloc(n * d * sizeof(float));
	float	   *c = xmalloc(k * d * sizeof(float));
	IvfKmeansParams p;
	ProgressLog log;
	jmp_buf		jb;
	volatile int jumped = 0;
	size_t		wsb = ivf_kmeans_workspace_bytes(n, d, k);
	Guarded		g;

	group_begin("kmeans: progress callback may longjmp out");
	rng_seed(51);
	fill_float(x, n * d, -1.0f, 1.0f);
	memset(&log, 0, sizeof(log));
	log.in_order = 1;
	log.jump_after_checks = 7;
	log.jb = &jb;
	default_params(&p);
	p.progress = progress_cb;
	p.progress_arg = &log;
	guarded_alloc(&g, wsb, 0xFF);
	if (setjmp(jb) == 0)
		ivf_kmeans(x, n, d, k, &p, g.p, c, NULL);
	else
		jumped = 1;
	check(jumped && log.checks == 7, "did not jump out (checks %d)", log.checks);
	/* the same workspace is simply reused afterwards */
	log.jump_after_checks = 0;
	log.last_iter = 0;
	check(ivf_kmeans(x, n, d, k, &p, g.p, c, NULL) == 0 && log.last_iter == 25,
		  "rerun after longjmp");
	guarded_free(&g);
	free(x);
	free(c);
	group_end();
}

/* ---------------------------------------------------------------------
 * Timing (printed, not asserted)
 * ---------------------------------------------------------------------
 */
static void
time_assign(const float *base, size_t nb, size_t d0)
{
	size_t		n = 10000,
				k = 1000,
				d = 128;
	float	   *x = xmalloc(n * d * sizeof(float));
	float	   *c = xmalloc(k * d * sizeof(float));
	int32_t    *a1 = xmalloc(n * sizeof(int32_t));
	int32_t    *a2 = xmalloc(n * sizeof(int32_t));
	float	   *cn = xmalloc(k * sizeof(float));
	size_t		wsb = ivf_assign_workspace_bytes(k, d);
	Guarded		g;
	double		t0,
				t1,
				t2;
	size_t		j;
	int			m;

	if (base != NULL && nb >= n && d0 == d)
		memcpy(x, base, n * d * sizeof(float));
	else
	{
		rng_seed(61);
		fill_float(x, n * d, 0.0f, 100.0f);
	}
	for (j = 0; j < k; j++)
		memcpy(c + j * d, x + (j * 7 + 3) * d, d * sizeof(float));
	ivf_kernels.norm_sq_block(c, k, d, cn);
	guarded_alloc(&g, wsb, 0xFF);
	for (m = 0; m < 2; m++)
	{
		t0 = now_sec();
		ivf_assign(x, n, c, cn, k, d, (IvfKmMetric) m, g.p, a1, NULL, NULL, NULL);
		t1 = now_sec();
		ivf_assign_bruteforce(x, n, c, NULL, k, d, (IvfKmMetric) m, a2, NULL,
							  NULL, NULL);
		t2 = now_sec();
		printf("time  ivf_assign %s n=%zu k=%zu d=%zu (%s, %s): gemm %.1f ms, "
			   "brute force %.1f ms, x%.1f%s\n",
			   metric_name((IvfKmMetric) m), n, k, d,
			   base != NULL && d0 == d ? "siftsmall" : "random",
			   ivf_simd_level_name(ivf_kernels.level),
			   (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t2 - t1) / (t1 - t0),
			   memcmp(a1, a2, n * sizeof(int32_t)) == 0 ? "" : " MISMATCH");
	}
	printf("      workspace: assign(k=%zu, d=%zu) %zu bytes; assign(k=32768, "
		   "d=1536) %zu; kmeans(n=8388608, d=1536, k=32768) %zu\n", k, d, wsb,
		   ivf_assign_workspace_bytes(32768, 1536),
		   ivf_kmeans_workspace_bytes(8388608, 1536, 32768));
	guarded_free(&g);
	free(x);
	free(c);
	free(a1);
	free(a2);
	free(cn);
}

int
main(void)
{
	const char *data_dir = getenv("IVF_DATA_DIR");
	float	   *sift = NULL;
	size_t		nsift = 0,
				dsift = 0;
	const char *real = "siftsmall";
	double		faiss_obj = FAISS_SIFT_K100_OBJ;
	size_t		nassign = 10000;	/* rows for the assign checks at the best level */
	int			lvl;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ivf_blas_set_threads(1);
	ivf_kernels_init();

	if (data_dir != NULL && data_dir[0] != '\0')
	{
		sift = load_siftsmall(data_dir, &nsift, &dsift);
		group_begin("siftsmall-128 readable under IVF_DATA_DIR");
		check(sift != NULL && nsift == 10000 && dsift == 128,
			  "cannot read %s/siftsmall-128/siftsmall_base.fvecs", data_dir);
		group_end();
		if (sift != NULL && (nsift != 10000 || dsift != 128))
		{
			free(sift);
			sift = NULL;
		}
	}
	else
	{
		/* no shared data sets: the real data every machine can install */
		real = "Fashion-MNIST";
		faiss_obj = FAISS_FMNIST_K100_OBJ;
		nassign = 2000;			/* 784 dims: about siftsmall's work */
		sift = read_fashion_mnist("train", 10000, &nsift, &dsift);
		group_begin("Fashion-MNIST readable (dataset-fashion-mnist)");
		check(sift != NULL && nsift == 10000 && dsift == 784,
			  "cannot read Fashion-MNIST (install dataset-fashion-mnist)");
		group_end();
		if (sift != NULL && (nsift != 10000 || dsift != 784))
		{
			free(sift);
			sift = NULL;
		}
	}

	/* the full grid at the best level, a cheaper cross-check at the others */
	test_assign_random();
	test_assign_big_d();
	for (lvl = 0; lvl < IVF_SIMD_NLEVELS; lvl++)
	{
		if (ivf_kernels_set_level((IvfSimdLevel) lvl) != 0)
			continue;
		test_assign_adversarial();
		if (sift != NULL)
			test_assign_sift(real, sift, lvl == (int) ivf_simd_best_level() ?
							 nassign : nassign / 4, dsift);
	}
	ivf_kernels_init();

	test_kmeans_determinism();
	test_kmeans_assign_out();
	test_kmeans_edges();
	test_kmeans_interrupt();
	if (sift != NULL)
		test_kmeans_sift(real, sift, nsift, dsift, faiss_obj);

	time_assign(sift, nsift, dsift);

	free(sift);
	return check_summary();
}
