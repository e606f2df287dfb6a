/*
 * test_ivf_gpu.c
 *	  Standalone test of the GPU library's contract (gpu/ivf_gpu.h), no
 *	  PostgreSQL: the CPU implementation always, and a device library when
 *	  one is named.
 *
 *	  test_ivf_gpu                  the CPU implementation
 *	  test_ivf_gpu gpu/ivf_gpu.so   also that library (dlopen), checked
 *	                                against the CPU one on the same data
 *
 * Random clustered data, every metric, lists of awkward sizes (empty, 1,
 * not a multiple of any block), duplicate vectors (ties broken by id),
 * probes of -1, per-probe limits, k larger than the candidates (padding),
 * list replacement, memory accounting and the memory limit, k-means
 * assignment.  The CPU implementation must match a brute-force reference
 * exactly; a device library must return the same ids in the same order
 * wherever the reference's distances are not within rounding of a tie,
 * and distances within 1e-4 relative.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "ivf_gpu.h"
#include "select.h"
#include "../test/kernels/testutil.h"

#define DIMS_N 3
static const int dims_list[DIMS_N] = {3, 33, 128};

typedef struct Data
{
	int			dims;
	int			nlists;
	float	   *centroids;
	long long  *sizes;			/* per list */
	float	  **vecs;			/* per list */
	long long **ids;
} Data;

static float
ref_pair(int metric, const float *q, const float *x, int d)
{
	if (metric == IVF_GPU_METRIC_L2)
		return ivf_kernels.l2sq(q, x, (size_t) d);
	return -ivf_kernels.dot(q, x, (size_t) d);
}

static Data
make_data(int dims, int nlists, int metric, unsigned seed)
{
	Data		D;
	int			l;
	long long	next_id = 1000;

	rng_seed(seed);
	D.dims = dims;
	D.nlists = nlists;
	D.centroids = xmalloc(sizeof(float) * dims * nlists);
	D.sizes = xmalloc(sizeof(long long) * nlists);
	D.vecs = xmalloc(sizeof(float *) * nlists);
	D.ids = xmalloc(sizeof(long long *) * nlists);
	for (l = 0; l < nlists; l++)
	{
		long long	n = (l == 0) ? 0 : (l == 1) ? 1 : (long long) (rng_next() % 300) + 2;
		long long	i;
		int			j;

		for (j = 0; j < dims; j++)
			D.centroids[(size_t) l * dims + j] = rng_float(-10.0f, 10.0f);
		D.sizes[l] = n;
		D.vecs[l] = xmalloc(sizeof(float) * dims * (n + 1));
		D.ids[l] = xmalloc(sizeof(long long) * (n + 1));
		for (i = 0; i < n; i++)
		{
			float	   *v = D.vecs[l] + (size_t) i * dims;
			float		norm = 0.0f;

			/* every 7th vector repeats the one before: equal distances */
			if (i > 0 && i % 7 == 0)
				memcpy(v, v - dims, sizeof(float) * dims);
			else
				for (j = 0; j < dims; j++)
					v[j] = D.centroids[(size_t) l * dims + j] + rng_float(-2.0f, 2.0f);
			if (metric == IVF_GPU_METRIC_IP)
			{
				for (j = 0; j < dims; j++)
					norm += v[j] * v[j];
				norm = sqrtf(norm);
				for (j = 0; j < dims; j++)
					v[j] /= norm;
			}
			/* ids not in list order, so ties are broken by id, not position */
			D.ids[l][i] = next_id + (long long) ((i * 7919) % (n + 1)) * nlists + l;
			/* a dead slot now and then: counted by limits, never returned */
			if (i % 11 == 5)
				D.ids[l][i] = -1;
		}
		next_id += (n + 1) * nlists;
	}
	return D;
}

static void
free_data(Data *D)
{
	int			l;

	for (l = 0; l < D->nlists; l++)
	{
		free(D->vecs[l]);
		free(D->ids[l]);
	}
	free(D->vecs);
	free(D->ids);
	free(D->sizes);
	free(D->centroids);
}

/* brute force over the probed (limited) lists, (distance, id) order */
static void
reference_search(const Data *D, int metric, int nq, const float *q, int nprobe,
				 const int *probes, const long long *limits, int k,
				 float *dist, long long *ids)
{
	int			qi;

	for (qi = 0; qi < nq; qi++)
	{
		size_t		n = 0;
		size_t		cap = 16;
		float	   *cd = xmalloc(sizeof(float) * cap);
		int64_t    *cid = xmalloc(sizeof(int64_t) * cap);
		size_t		m;
		int			p;

		for (p = 0; p < nprobe; p++)
		{
			int			l = probes[qi * nprobe + p];
			long long	lim;
			long long	i;

			if (l < 0)
				continue;
			lim = D->sizes[l];
			if (limits && limits[qi * nprobe + p] < lim)
				lim = limits[qi * nprobe + p];
			for (i = 0; i < lim; i++)
			{
				if (D->ids[l][i] < 0)
					continue;
				if (n == cap)
				{
					cap *= 2;
					cd = realloc(cd, sizeof(float) * cap);
					cid = realloc(cid, sizeof(int64_t) * cap);
				}
				cd[n] = ref_pair(metric, q + (size_t) qi * D->dims,
								 D->vecs[l] + (size_t) i * D->dims, D->dims);
				cid[n] = D->ids[l][i];
				n++;
			}
		}
		m = ivf_select_smallest(cd, cid, n, (size_t) k);
		for (p = 0; p < k; p++)
		{
			dist[qi * k + p] = (size_t) p < m ? cd[p] : INFINITY;
			ids[qi * k + p] = (size_t) p < m ? cid[p] : -1;
		}
		free(cd);
		free(cid);
	}
}

/*
 * exact: results must be identical.  Otherwise (a device): the same ids
 * in the same order, except where the reference has a near-tie (within
 * 1e-4 relative), and distances within 1e-4 relative.
 */
static int
same_results(int nq, int k, const float *wd, const long long *wi,
			 const float *gd, const long long *gi, int exact)
{
	int			i;

	for (i = 0; i < nq * k; i++)
	{
		float		tol = 1e-4f * (fabsf(wd[i]) + 1.0f);

		if (exact)
		{
			if (wi[i] != gi[i] || !(wd[i] == gd[i] || (isinf(wd[i]) && isinf(gd[i]))))
				return 0;
			continue;
		}
		if (wi[i] == -1 || gi[i] == -1)
		{
			if (wi[i] != gi[i])
				return 0;
			continue;
		}
		if (!(fabsf(wd[i] - gd[i]) <= tol))
			return 0;
		if (wi[i] != gi[i])
		{
			/* allowed only inside a near-tie of the reference */
			int			r = i % k;
			int			tie = (r > 0 && fabsf(wd[i] - wd[i - 1]) <= tol) ||
				(r + 1 < k && fabsf(wd[i + 1] - wd[i]) <= tol);

			if (!tie)
				return 0;
		}
	}
	return 1;
}

static void
test_backend(const IvfGpuOps *ops, int exact)
{
	int			di;
	int			metric;

	for (di = 0; di < DIMS_N; di++)
	{
		for (metric = IVF_GPU_METRIC_L2; metric <= IVF_GPU_METRIC_IP; metric++)
		{
			int			dims = dims_list[di];
			int			nlists = 24;
			Data		D = make_data(dims, nlists, metric, 17 + di * 3 + metric);
			IvfGpuContext *ctx = NULL;
			IvfGpuIndex *index = NULL;
			int			nq = 37;
			int			nprobe = 5;
			int			k;
			float	   *q = xmalloc(sizeof(float) * nq * dims);
			int		   *probes = xmalloc(sizeof(int) * nq * nprobe);
			long long  *limits = xmalloc(sizeof(long long) * nq * nprobe);
			int			i;
			int			l;
			unsigned long long before;

			group_begin("%s: search d=%d %s vs brute force", ops->backend, dims,
						metric == IVF_GPU_METRIC_L2 ? "l2" : "ip");
			check(ops->abi_version == IVF_GPU_ABI_VERSION, "abi %d", ops->abi_version);
			check(ops->context_create(0, 0, &ctx) == IVF_GPU_OK, "context: %s",
				  ops->last_error());
			check(ops->index_create(ctx, metric, dims, nlists, D.centroids, &index) == IVF_GPU_OK,
				  "index: %s", ops->last_error());
			for (l = 0; l < nlists; l++)
				check(ops->index_set_list(index, l, D.sizes[l], D.vecs[l], D.ids[l]) == IVF_GPU_OK,
					  "list %d: %s", l, ops->last_error());
			before = ops->memory_used(ctx);
			check(ops->index_bytes(index) > 0 && before >= ops->index_bytes(index),
				  "memory accounting: index %llu, context %llu",
				  ops->index_bytes(index), before);

			for (i = 0; i < nq * dims; i++)
				q[i] = rng_float(-12.0f, 12.0f);
			for (i = 0; i < nq * nprobe; i++)
			{
				/* a repeated probe, a skipped slot, the empty list */
				probes[i] = (i % 11 == 4) ? -1 : (i % 13 == 6) ? 0 : (int) (rng_next() % nlists);
				limits[i] = (i % 3 == 0) ? (long long) (rng_next() % 50) : 1000000;
			}
			for (k = 1; k <= 1100; k = (k < 10) ? k + 9 : k * 10 + 1)
			{
				if (ops->max_k > 0 && k > ops->max_k)
				{
					float		d1[1];
					long long	i1[1];

					check(ops->search(index, 0, q, nprobe, probes, NULL, k, d1, i1) ==
						  IVF_GPU_BAD_ARGUMENT, "k %d above max_k %d accepted", k, ops->max_k);
					continue;
				}
				float	   *wd = xmalloc(sizeof(float) * nq * k);
				long long  *wi = xmalloc(sizeof(long long) * nq * k);
				float	   *gd = xmalloc(sizeof(float) * nq * k);
				long long  *gi = xmalloc(sizeof(long long) * nq * k);
				int			lim;

				for (lim = 0; lim < 2; lim++)
				{
					const long long *lp = lim ? limits : NULL;

					reference_search(&D, metric, nq, q, nprobe, probes, lp, k, wd, wi);
					check(ops->search(index, nq, q, nprobe, probes, lp, k, gd, gi) == IVF_GPU_OK,
						  "search: %s", ops->last_error());
					check(same_results(nq, k, wd, wi, gd, gi, exact),
						  "k %d limits %d: results differ from brute force", k, lim);
				}
				free(wd);
				free(wi);
				free(gd);
				free(gi);
			}

			/* replacing a list: the old vectors are gone, memory returns */
			{
				float	   *wd = xmalloc(sizeof(float) * nq * 10);
				long long  *wi = xmalloc(sizeof(long long) * nq * 10);
				float	   *gd = xmalloc(sizeof(float) * nq * 10);
				long long  *gi = xmalloc(sizeof(long long) * nq * 10);
				long long	n3 = D.sizes[3];

				D.sizes[3] = n3 / 2;
				check(ops->index_set_list(index, 3, D.sizes[3], D.vecs[3], D.ids[3]) == IVF_GPU_OK,
					  "shrink list 3: %s", ops->last_error());
				check(ops->memory_used(ctx) < before, "memory after shrinking a list");
				for (i = 0; i < nq * nprobe; i++)
					if (i % 2 == 0)
						probes[i] = 3;
				reference_search(&D, metric, nq, q, nprobe, probes, NULL, 10, wd, wi);
				check(ops->search(index, nq, q, nprobe, probes, NULL, 10, gd, gi) == IVF_GPU_OK,
					  "search: %s", ops->last_error());
				check(same_results(nq, 10, wd, wi, gd, gi, exact), "after replacing list 3");
				D.sizes[3] = n3;
				free(wd);
				free(wi);
				free(gd);
				free(gi);
			}

			/* bad arguments are errors, not crashes */
			check(ops->index_set_list(index, nlists, 1, D.vecs[2], D.ids[2]) == IVF_GPU_BAD_ARGUMENT,
				  "list out of range");
			probes[0] = nlists;
			{
				float		d1[3];
				long long	i1[3];

				check(ops->search(index, 1, q, nprobe, probes, NULL, 3, d1, i1) == IVF_GPU_BAD_ARGUMENT,
					  "probe out of range");
			}
			ops->index_free(index);
			check(ops->memory_used(ctx) == 0, "memory after freeing the index: %llu",
				  ops->memory_used(ctx));
			ops->context_destroy(ctx);
			group_end();
			free(q);
			free(probes);
			free(limits);
			free_data(&D);
		}
	}

	/* the memory limit */
	{
		Data		D = make_data(64, 8, IVF_GPU_METRIC_L2, 99);
		IvfGpuContext *ctx = NULL;
		IvfGpuIndex *index = NULL;
		int			l;
		int			failed = 0;

		group_begin("%s: memory limit", ops->backend);
		check(ops->context_create(0, 64 * 1024, &ctx) == IVF_GPU_OK, "context");
		check(ops->index_create(ctx, IVF_GPU_METRIC_L2, 64, 8, D.centroids, &index) == IVF_GPU_OK,
			  "index");
		for (l = 0; l < 8; l++)
		{
			int			rc = ops->index_set_list(index, l, D.sizes[l], D.vecs[l], D.ids[l]);

			check(rc == IVF_GPU_OK || rc == IVF_GPU_OUT_OF_MEMORY, "list %d: %d", l, rc);
			failed |= (rc == IVF_GPU_OUT_OF_MEMORY);
			check(ops->memory_used(ctx) <= 64 * 1024, "over the limit: %llu",
				  ops->memory_used(ctx));
		}
		check(failed, "8 lists of up to 300 x 64 floats fit in 64 kB");
		ops->index_free(index);
		check(ops->memory_used(ctx) == 0, "memory after free");
		ops->context_destroy(ctx);
		free_data(&D);
		group_end();
	}

	/* k-means assignment */
	{
		int			metric2;

		group_begin("%s: k-means assignment vs brute force", ops->backend);
		for (metric2 = IVF_GPU_METRIC_L2; metric2 <= IVF_GPU_METRIC_IP; metric2++)
		{
			int			d = 40;
			int			k = 50;
			long long	n = 3001;
			float	   *x = xmalloc(sizeof(float) * n * d);
			float	   *c = xmalloc(sizeof(float) * k * d);
			int		   *a = xmalloc(sizeof(int) * n);
			float	   *dist = xmalloc(sizeof(float) * n);
			IvfGpuContext *ctx = NULL;
			long long	i;
			int			bad = 0;

			rng_seed(5 + metric2);
			for (i = 0; i < n * d; i++)
				x[i] = rng_float(-5.0f, 5.0f);
			for (i = 0; i < (long long) k * d; i++)
				c[i] = rng_float(-5.0f, 5.0f);
			check(ops->context_create(0, 0, &ctx) == IVF_GPU_OK, "context");
			check(ops->kmeans_assign(ctx, metric2, n, d, x, k, c, a, dist) == IVF_GPU_OK,
				  "assign: %s", ops->last_error());
			for (i = 0; i < n; i++)
			{
				float		best = INFINITY;
				float		tol;
				int			j;

				for (j = 0; j < k; j++)
				{
					float		v = ref_pair(metric2, x + i * d, c + (size_t) j * d, d);

					if (v < best)
						best = v;
				}
				tol = exact ? 0.0f : 1e-4f * (fabsf(best) + 1.0f);
				/* the chosen centroid is (within rounding) a nearest one */
				if (!(a[i] >= 0 && a[i] < k &&
					  ref_pair(metric2, x + i * d, c + (size_t) a[i] * d, d) <= best + tol &&
					  fabsf(dist[i] - best) <= tol))
					bad++;
			}
			check(bad == 0, "metric %d: %d of %lld points not at a nearest centroid", metric2,
				  bad, n);
			ops->context_destroy(ctx);
			free(x);
			free(c);
			free(a);
			free(dist);
		}
		group_end();
	}
}

int
main(int argc, char **argv)
{
	ivf_kernels_init();
	test_backend(ivf_gpu_cpu_ops(), 1);

	if (argc > 1)
	{
		void	   *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		const IvfGpuOps *(*entry) (void);
		const IvfGpuOps *ops;

		if (h == NULL)
		{
			fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
			return 2;
		}
		entry = (const IvfGpuOps *(*) (void)) dlsym(h, "ivf_gpu_ops");
		if (entry == NULL || (ops = entry()) == NULL)
		{
			fprintf(stderr, "%s has no ivf_gpu_ops\n", argv[1]);
			return 2;
		}
		group_begin("%s: library loads, ABI %d", ops->backend, IVF_GPU_ABI_VERSION);
		check(ops->abi_version == IVF_GPU_ABI_VERSION, "library ABI %d", ops->abi_version);
		check(ops->search != NULL && ops->kmeans_assign != NULL && ops->index_set_list != NULL,
			  "operations missing");
		group_end();
		if (ops->abi_version != IVF_GPU_ABI_VERSION)
			return check_summary();
		if (ops->device_count() < 1)
		{
			printf("skip  %s: no device (%s)\n", ops->backend, ops->last_error());
			return check_summary();
		}
		{
			IvfGpuDeviceInfo info;

			if (ops->device_info(0, &info) == IVF_GPU_OK)
				printf("device 0: %s, %.1f GiB, compute %d.%d, %d SMs\n", info.name,
					   info.total_memory / 1073741824.0, info.compute_major,
					   info.compute_minor, info.multiprocessors);
		}
		test_backend(ops, 0);
	}
	return check_summary();
}
