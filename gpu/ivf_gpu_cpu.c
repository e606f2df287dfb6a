/*
 * ivf_gpu_cpu.c
 *	  The GPU library's contract (ivf_gpu.h) implemented on the CPU.
 *
 * The GPU worker runs on this when no ivf_gpu.so is loaded (ivf.gpu_backend
 * = cpu), so CI exercises the worker's batching, residency, coherence and
 * fallback without a device; the standalone test checks the device
 * kernels against it.  "Device memory" is malloc'd here and counted the
 * same way, so memory limits and eviction behave as on a device.
 *
 * Distances come from the same dispatched kernels as the index scan
 * (src/kernels/distance.h), one pair at a time, and candidates are selected with
 * the scan's (distance, id) order: a search here returns what the plain
 * CPU scan of the same lists returns, bit for bit.  Plain C with no
 * PostgreSQL headers (malloc, not palloc), like the kernels it calls.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "ivf_gpu.h"
#include "select.h"

struct IvfGpuContext
{
	unsigned long long limit;	/* bytes; 0 = none */
	unsigned long long used;
};

typedef struct CpuList
{
	long long	n;
	float	   *vectors;		/* n x dims */
	long long  *ids;
} CpuList;

struct IvfGpuIndex
{
	IvfGpuContext *ctx;
	int			metric;
	int			dims;
	int			nlists;
	float	   *centroids;
	CpuList    *lists;
	unsigned long long bytes;	/* counted in ctx->used */
};

static __thread char last_error[256];

static int
fail(int status, const char *what)
{
	snprintf(last_error, sizeof(last_error), "%s", what);
	return status;
}

static int
cpu_device_count(void)
{
	return 1;
}

static int
cpu_device_info(int device, IvfGpuDeviceInfo *info)
{
	if (device != 0 || info == NULL)
		return fail(IVF_GPU_BAD_ARGUMENT, "no such device");
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "CPU (%s kernels)",
			 ivf_simd_level_name(ivf_kernels.level));
	return IVF_GPU_OK;
}

static const char *
cpu_last_error(void)
{
	return last_error;
}

/* Take bytes from the context's budget, as a device allocation would. */
static void *
ctx_alloc(IvfGpuContext *ctx, size_t bytes)
{
	void	   *p;

	if (ctx->limit > 0 && ctx->used + bytes > ctx->limit)
		return NULL;
	p = malloc(bytes > 0 ? bytes : 1);
	if (p != NULL)
		ctx->used += bytes;
	return p;
}

static void
ctx_free(IvfGpuContext *ctx, void *p, size_t bytes)
{
	if (p == NULL)
		return;
	free(p);
	ctx->used -= bytes;
}

static int
cpu_context_create(int device, unsigned long long memory_limit,
				   IvfGpuContext **ctx)
{
	IvfGpuContext *c;

	if (device != 0 || ctx == NULL)
		return fail(IVF_GPU_BAD_ARGUMENT, "no such device");
	c = calloc(1, sizeof(IvfGpuContext));
	if (c == NULL)
		return fail(IVF_GPU_OUT_OF_MEMORY, "out of host memory");
	c->limit = memory_limit;
	*ctx = c;
	return IVF_GPU_OK;
}

static void
cpu_context_destroy(IvfGpuContext *ctx)
{
	free(ctx);
}

static unsigned long long
cpu_memory_used(const IvfGpuContext *ctx)
{
	return ctx->used;
}

static size_t
list_bytes(const IvfGpuIndex *index, long long n)
{
	return (size_t) n * ((size_t) index->dims * sizeof(float) + sizeof(long long));
}

static int
cpu_index_create(IvfGpuContext *ctx, int metric, int dims, int nlists,
				 const float *centroids, IvfGpuIndex **out)
{
	IvfGpuIndex *index;
	size_t		cbytes;

	if (ctx == NULL || out == NULL || centroids == NULL || dims < 1 ||
		nlists < 1 || (metric != IVF_GPU_METRIC_L2 && metric != IVF_GPU_METRIC_IP))
		return fail(IVF_GPU_BAD_ARGUMENT, "bad index parameters");
	cbytes = (size_t) nlists * dims * sizeof(float);
	index = calloc(1, sizeof(IvfGpuIndex));
	if (index == NULL)
		return fail(IVF_GPU_OUT_OF_MEMORY, "out of host memory");
	index->ctx = ctx;
	index->metric = metric;
	index->dims = dims;
	index->nlists = nlists;
	index->lists = calloc((size_t) nlists, sizeof(CpuList));
	index->centroids = ctx_alloc(ctx, cbytes);
	if (index->lists == NULL || index->centroids == NULL)
	{
		free(index->lists);
		ctx_free(ctx, index->centroids, cbytes);
		free(index);
		return fail(IVF_GPU_OUT_OF_MEMORY, "centroids do not fit the memory limit");
	}
	memcpy(index->centroids, centroids, cbytes);
	index->bytes = cbytes;
	*out = index;
	return IVF_GPU_OK;
}

static void
drop_list(IvfGpuIndex *index, CpuList *l)
{
	size_t		bytes = list_bytes(index, l->n);

	ctx_free(index->ctx, l->vectors, (size_t) l->n * index->dims * sizeof(float));
	ctx_free(index->ctx, l->ids, (size_t) l->n * sizeof(long long));
	index->bytes -= bytes;
	l->vectors = NULL;
	l->ids = NULL;
	l->n = 0;
}

static int
cpu_index_set_list(IvfGpuIndex *index, int list, long long n,
				   const float *vectors, const long long *ids)
{
	CpuList    *l;
	size_t		vbytes;
	float	   *v;
	long long  *id;

	if (index == NULL || list < 0 || list >= index->nlists || n < 0 ||
		(n > 0 && (vectors == NULL || ids == NULL)))
		return fail(IVF_GPU_BAD_ARGUMENT, "bad list");
	l = &index->lists[list];
	drop_list(index, l);
	if (n == 0)
		return IVF_GPU_OK;
	vbytes = (size_t) n * index->dims * sizeof(float);
	v = ctx_alloc(index->ctx, vbytes);
	id = v ? ctx_alloc(index->ctx, (size_t) n * sizeof(long long)) : NULL;
	if (id == NULL)
	{
		ctx_free(index->ctx, v, vbytes);
		return fail(IVF_GPU_OUT_OF_MEMORY, "list does not fit the memory limit");
	}
	memcpy(v, vectors, vbytes);
	memcpy(id, ids, (size_t) n * sizeof(long long));
	l->vectors = v;
	l->ids = id;
	l->n = n;
	index->bytes += list_bytes(index, n);
	return IVF_GPU_OK;
}

static unsigned long long
cpu_index_bytes(const IvfGpuIndex *index)
{
	return index->bytes;
}

static void
cpu_index_free(IvfGpuIndex *index)
{
	int			i;

	if (index == NULL)
		return;
	for (i = 0; i < index->nlists; i++)
		drop_list(index, &index->lists[i]);
	ctx_free(index->ctx, index->centroids,
			 (size_t) index->nlists * index->dims * sizeof(float));
	free(index->lists);
	free(index);
}

static float
pair(int metric, const float *q, const float *x, int d)
{
	if (metric == IVF_GPU_METRIC_L2)
		return ivf_kernels.l2sq(q, x, (size_t) d);
	return -ivf_kernels.dot(q, x, (size_t) d);
}

static int
cpu_search(IvfGpuIndex *index, int nq, const float *queries, int nprobe,
		   const int *probes, const long long *limits, int k,
		   float *distances, long long *ids)
{
	float	   *cd = NULL;
	int64_t    *cid = NULL;
	size_t		cap = 0;
	int			qi;

	if (index == NULL || nq < 0 || nprobe < 0 || k < 1 ||
		(nq > 0 && (queries == NULL || distances == NULL || ids == NULL ||
					(nprobe > 0 && probes == NULL))))
		return fail(IVF_GPU_BAD_ARGUMENT, "bad search arguments");
	for (qi = 0; qi < nq; qi++)
	{
		const float *q = queries + (size_t) qi * index->dims;
		size_t		n = 0;
		size_t		m;
		int			p;

		for (p = 0; p < nprobe; p++)
		{
			int			list = probes[(size_t) qi * nprobe + p];
			const CpuList *l;
			long long	lim;
			long long	i;

			if (list < 0)
				continue;
			if (list >= index->nlists)
			{
				free(cd);
				free(cid);
				return fail(IVF_GPU_BAD_ARGUMENT, "probe names no list");
			}
			l = &index->lists[list];
			lim = l->n;
			if (limits != NULL && limits[(size_t) qi * nprobe + p] < lim)
				lim = limits[(size_t) qi * nprobe + p];
			if (n + (size_t) lim > cap)
			{
				size_t		ncap = cap ? cap : 1024;
				float	   *nd;
				int64_t    *ni;

				while (ncap < n + (size_t) lim)
					ncap *= 2;
				nd = realloc(cd, ncap * sizeof(float));
				if (nd != NULL)
					cd = nd;
				ni = nd ? realloc(cid, ncap * sizeof(int64_t)) : NULL;
				if (ni == NULL)
				{
					free(cd);
					free(cid);
					return fail(IVF_GPU_OUT_OF_MEMORY, "out of host memory");
				}
				cid = ni;
				cap = ncap;
			}
			for (i = 0; i < lim; i++)
			{
				/* a dead slot: counted in the limit, never a candidate */
				if (l->ids[i] < 0)
					continue;
				cd[n] = pair(index->metric, q, l->vectors + (size_t) i * index->dims,
							 index->dims);
				cid[n] = (int64_t) l->ids[i];
				n++;
			}
		}
		m = ivf_select_smallest(cd, cid, n, (size_t) k);
		for (p = 0; p < k; p++)
		{
			distances[(size_t) qi * k + p] = (size_t) p < m ? cd[p] : INFINITY;
			ids[(size_t) qi * k + p] = (size_t) p < m ? (long long) cid[p] : -1;
		}
	}
	free(cd);
	free(cid);
	return IVF_GPU_OK;
}

static int
cpu_kmeans_assign(IvfGpuContext *ctx, int metric, long long n, int dims,
				  const float *points, int k, const float *centroids,
				  int *assign, float *distances)
{
	long long	i;

	if (ctx == NULL || n < 0 || dims < 1 || k < 1 ||
		(n > 0 && (points == NULL || centroids == NULL || assign == NULL)))
		return fail(IVF_GPU_BAD_ARGUMENT, "bad k-means arguments");
	for (i = 0; i < n; i++)
	{
		const float *x = points + (size_t) i * dims;
		float		best = INFINITY;
		int			bj = 0;
		int			j;

		for (j = 0; j < k; j++)
		{
			float		d = pair(metric, x, centroids + (size_t) j * dims, dims);

			if (d < best)
			{
				best = d;
				bj = j;
			}
		}
		assign[i] = bj;
		if (distances != NULL)
			distances[i] = best;
	}
	return IVF_GPU_OK;
}

static const IvfGpuOps cpu_ops = {
	IVF_GPU_ABI_VERSION,
	"cpu",
	0,
	cpu_device_count,
	cpu_device_info,
	cpu_last_error,
	cpu_context_create,
	cpu_context_destroy,
	cpu_memory_used,
	cpu_index_create,
	cpu_index_set_list,
	cpu_index_bytes,
	cpu_index_free,
	cpu_search,
	cpu_kmeans_assign
};

const IvfGpuOps *
ivf_gpu_cpu_ops(void)
{
	return &cpu_ops;
}
