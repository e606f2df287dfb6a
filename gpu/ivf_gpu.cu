/*
 * ivf_gpu.cu
 *	  ivf_gpu.so: the GPU library's contract (ivf_gpu.h) on CUDA + cuBLAS
 *	  or ROCm HIP + hipBLAS, one source through gpu_port.h.
 *
 * Search, the torch-ivf "csr" shape: the (query, probed list) pairs of a
 * batch are grouped by list on the host; for each list its queries are
 * gathered into one block and multiplied with the list's vectors in one
 * GEMM (G = X Q^T, the list resident on the device), a block per query
 * selects that list's k nearest from its column (the first `limit' rows
 * only) into a candidate slot, and a last pass merges each query's
 * nprobe x k candidates.  Only ids and distances come back.
 *
 * Selection is a bitonic sort in shared memory over tiles of a column,
 * the best k so far kept at the front of the next tile: exact, any k up
 * to IVF_GPU_MAX_K, in the (distance, id) order of the CPU scan with NaN
 * last; padding (id -1) after everything.  Distances are GEMM-shaped
 * (|x|^2 + |q|^2 - 2 x.q for L2, clamped at 0), so they round differently
 * from the CPU's pair kernels; callers that need the CPU's exact order
 * re-rank (see gpu/NOTES.md).
 *
 * Memory: every device allocation of a context, scratch included, is
 * counted against its limit (0 = the device's size) and fails with
 * IVF_GPU_OUT_OF_MEMORY past it.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <new>
#include <vector>

#include "gpu_port.h"
#include "ivf_gpu.h"

#define IVF_GPU_SELECT_SLOTS 2048	/* shared-memory entries per select */
#define IVF_GPU_MAX_K (IVF_GPU_SELECT_SLOTS / 2)
#define IVF_GPU_THREADS 256
/* floats of GEMM output per step: queries are split to stay within it */
#define IVF_GPU_GEMM_FLOATS ((size_t) 64 * 1024 * 1024)

static thread_local char last_error[512];

static int
set_error(int status, const char *what, const char *detail)
{
	snprintf(last_error, sizeof(last_error), "%s%s%s", what,
			 detail ? ": " : "", detail ? detail : "");
	return status;
}

static int
gpu_fail(gpuError_t err, const char *what)
{
	return set_error(err == gpuErrorMemoryAllocation ? IVF_GPU_OUT_OF_MEMORY :
					 IVF_GPU_RUNTIME_ERROR, what, gpuGetErrorString(err));
}

struct IvfGpuContext
{
	int			device;
	unsigned long long limit;
	unsigned long long used;
	gpuStream_t stream;
	gpublasHandle_t blas;
};

struct DevList
{
	long long	n;
	float	   *vecs;			/* n x dims */
	long long  *ids;
	float	   *norms;			/* |x|^2, L2 only */
};

struct IvfGpuIndex
{
	IvfGpuContext *ctx;
	int			metric;
	int			dims;
	int			nlists;
	float	   *centroids;
	std::vector<DevList> lists;
	unsigned long long bytes;
};

/* ------------------------------------------------------------ memory */

static int
dev_alloc(IvfGpuContext *ctx, size_t bytes, void **p)
{
	gpuError_t	err;

	*p = NULL;
	if (bytes == 0)
		return IVF_GPU_OK;
	if (ctx->used + bytes > ctx->limit)
		return set_error(IVF_GPU_OUT_OF_MEMORY, "device memory limit", NULL);
	err = gpuMalloc(p, bytes);
	if (err != gpuSuccess)
	{
		*p = NULL;
		return gpu_fail(err, "device allocation");
	}
	ctx->used += bytes;
	return IVF_GPU_OK;
}

static void
dev_free(IvfGpuContext *ctx, void *p, size_t bytes)
{
	if (p == NULL)
		return;
	/* a failed free leaves the runtime in error: nothing to undo here */
	(void) gpuFree(p);
	ctx->used -= bytes;
}

/* --------------------------------------------------------------- kernels */

__device__ __forceinline__ bool
entry_less(float d1, long long i1, float d2, long long i2)
{
	bool		n1,
				n2;

	if (i2 < 0)
		return i1 >= 0;			/* padding after everything */
	if (i1 < 0)
		return false;
	n1 = (d1 != d1);
	n2 = (d2 != d2);
	if (n1 || n2)
		return (n1 != n2) ? n2 : i1 < i2;
	if (d1 != d2)
		return d1 < d2;
	return i1 < i2;
}

/* sort the block's shared entries ascending: a bitonic network */
__device__ void
block_sort(float *sd, long long *si)
{
	for (int size = 2; size <= IVF_GPU_SELECT_SLOTS; size <<= 1)
	{
		for (int stride = size >> 1; stride > 0; stride >>= 1)
		{
			for (int t = threadIdx.x; t < IVF_GPU_SELECT_SLOTS / 2; t += blockDim.x)
			{
				int			pos = 2 * t - (t & (stride - 1));
				int			other = pos + stride;
				bool		up = (pos & size) == 0;
				bool		swap = up ?
					entry_less(sd[other], si[other], sd[pos], si[pos]) :
					entry_less(sd[pos], si[pos], sd[other], si[other]);

				if (swap)
				{
					float		td = sd[pos];
					long long	ti = si[pos];

					sd[pos] = sd[other];
					si[pos] = si[other];
					sd[other] = td;
					si[other] = ti;
				}
			}
			__syncthreads();
		}
	}
}

/*
 * The k smallest of n entries given by load(i) -> (distance, id), into
 * out_d/out_i [0, k), ascending, padded.  One block; k <= MAX_K.
 */
template <typename Load>
__device__ void
block_select(long long n, int k, Load load, float *out_d, long long *out_i)
{
	__shared__ float sd[IVF_GPU_SELECT_SLOTS];
	__shared__ long long si[IVF_GPU_SELECT_SLOTS];
	int			tile = IVF_GPU_SELECT_SLOTS - k;

	for (int t = threadIdx.x; t < k; t += blockDim.x)
	{
		sd[t] = INFINITY;
		si[t] = -1;
	}
	for (long long base = 0; base == 0 || base < n; base += tile)
	{
		for (int t = threadIdx.x; t < tile; t += blockDim.x)
		{
			long long	i = base + t;

			if (i < n)
				load(i, &sd[k + t], &si[k + t]);
			else
			{
				sd[k + t] = INFINITY;
				si[k + t] = -1;
			}
		}
		__syncthreads();
		block_sort(sd, si);
	}
	for (int t = threadIdx.x; t < k; t += blockDim.x)
	{
		out_d[t] = sd[t];
		out_i[t] = si[t];
	}
}

__global__ void
norms_kernel(const float *x, long long n, int d, float *out)
{
	long long	i = (long long) blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
	{
		const float *v = x + (size_t) i * d;
		float		s = 0.0f;

		for (int j = 0; j < d; j++)
			s += v[j] * v[j];
		out[i] = s;
	}
}

__global__ void
gather_kernel(const float *q, const int *rows, int m, int d, float *out)
{
	long long	t = (long long) blockIdx.x * blockDim.x + threadIdx.x;

	if (t < (long long) m * d)
	{
		int			j = (int) (t / d);
		int			c = (int) (t % d);

		out[t] = q[(size_t) rows[j] * d + c];
	}
}

__global__ void
fill_kernel(float *d, long long *ids, long long n)
{
	long long	t = (long long) blockIdx.x * blockDim.x + threadIdx.x;

	if (t < n)
	{
		d[t] = INFINITY;
		ids[t] = -1;
	}
}

/*
 * One block per (query, this list) pair j: select from column j of G
 * (n x m, column-major) the k nearest of the first lim[j] rows into the
 * pair's candidate slot.
 */
__global__ void
list_select_kernel(const float *G, long long n, const float *xnorm,
				   const float *qnorm, const long long *ids, int metric,
				   const int *rows, const int *slots, const long long *lim,
				   int nprobe, int k, float *cand_d, long long *cand_i)
{
	int			j = blockIdx.x;
	int			q = rows[j];
	long long	m = lim[j] < n ? lim[j] : n;
	const float *col = G + (size_t) j * n;
	float		qn = (metric == IVF_GPU_METRIC_L2) ? qnorm[q] : 0.0f;
	size_t		off = ((size_t) q * nprobe + slots[j]) * k;

	block_select(m, k,
				 [=] __device__ (long long i, float *d, long long *id)
				 {
					 float		g = col[i];

					 if (metric == IVF_GPU_METRIC_L2)
					 {
						 float		v = (xnorm[i] + qn) - 2.0f * g;

						 *d = v > 0.0f ? v : (v == v ? 0.0f : v);
					 }
					 else
						 *d = -g;
					 *id = ids[i];
					 /* a dead slot: padding, never selected before a live one */
					 if (*id < 0)
						 *d = INFINITY;
				 },
				 cand_d + off, cand_i + off);
}

/* One block per query: its nprobe x k candidates down to k. */
__global__ void
merge_kernel(const float *cand_d, const long long *cand_i, int nprobe, int k,
			 float *out_d, long long *out_i)
{
	int			q = blockIdx.x;
	size_t		off = (size_t) q * nprobe * k;

	block_select((long long) nprobe * k, k,
				 [=] __device__ (long long i, float *d, long long *id)
				 {
					 *d = cand_d[off + i];
					 *id = cand_i[off + i];
				 },
				 out_d + (size_t) q * k, out_i + (size_t) q * k);
}

/* nearest centroid per point (ties to the lower number, NaN ignored) */
__global__ void
argmin_kernel(const float *G, long long n, int k, const float *xnorm,
			  const float *cnorm, int metric, int *assign, float *dist)
{
	long long	i = (long long) blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
	{
		float		best = INFINITY;
		int			bj = 0;

		for (int j = 0; j < k; j++)
		{
			float		g = G[(size_t) j * n + i];
			float		v;

			if (metric == IVF_GPU_METRIC_L2)
			{
				v = (xnorm[i] + cnorm[j]) - 2.0f * g;
				v = v > 0.0f ? v : (v == v ? 0.0f : v);
			}
			else
				v = -g;
			if (v < best)
			{
				best = v;
				bj = j;
			}
		}
		assign[i] = bj;
		dist[i] = best;
	}
}

static unsigned int
blocks_for(long long n)
{
	return (unsigned int) ((n + IVF_GPU_THREADS - 1) / IVF_GPU_THREADS);
}

/* ------------------------------------------------------------ devices */

static int
dev_count(void)
{
	int			n = 0;
	gpuError_t	err = gpuGetDeviceCount(&n);

	if (err != gpuSuccess)
	{
		gpu_fail(err, "device count");
		return 0;
	}
	return n;
}

static int
dev_info(int device, IvfGpuDeviceInfo *info)
{
	gpuDeviceProp prop;
	gpuError_t	err;

	if (info == NULL || device < 0 || device >= dev_count())
		return set_error(IVF_GPU_BAD_ARGUMENT, "no such device", NULL);
	err = gpuGetDeviceProperties(&prop, device);
	if (err != gpuSuccess)
		return gpu_fail(err, "device properties");
	memset(info, 0, sizeof(*info));
	strncpy(info->name, prop.name, sizeof(info->name) - 1);
	info->total_memory = (unsigned long long) prop.totalGlobalMem;
	info->compute_major = prop.major;
	info->compute_minor = prop.minor;
	info->multiprocessors = prop.multiProcessorCount;
	return IVF_GPU_OK;
}

static const char *
get_last_error(void)
{
	return last_error;
}

/* ------------------------------------------------------------ contexts */

static int
ctx_create(int device, unsigned long long memory_limit, IvfGpuContext **out)
{
	IvfGpuDeviceInfo info;
	IvfGpuContext *ctx;
	gpuError_t	err;
	int			rc;

	if (out == NULL)
		return set_error(IVF_GPU_BAD_ARGUMENT, "no output", NULL);
	if ((rc = dev_info(device, &info)) != IVF_GPU_OK)
		return rc;
	if ((err = gpuSetDevice(device)) != gpuSuccess)
		return gpu_fail(err, "set device");
	ctx = new (std::nothrow) IvfGpuContext();
	if (ctx == NULL)
		return set_error(IVF_GPU_OUT_OF_MEMORY, "out of host memory", NULL);
	ctx->device = device;
	ctx->limit = (memory_limit > 0 && memory_limit < info.total_memory) ?
		memory_limit : info.total_memory;
	if ((err = gpuStreamCreate(&ctx->stream)) != gpuSuccess)
	{
		delete ctx;
		return gpu_fail(err, "stream");
	}
	if (gpublasCreate(&ctx->blas) != GPUBLAS_STATUS_SUCCESS)
	{
		(void) gpuStreamDestroy(ctx->stream);
		delete ctx;
		return set_error(IVF_GPU_RUNTIME_ERROR, "BLAS handle", NULL);
	}
	/* GEMMs on another stream would race the kernels around them */
	if (gpublasSetStream(ctx->blas, ctx->stream) != GPUBLAS_STATUS_SUCCESS)
	{
		gpublasDestroy(ctx->blas);
		(void) gpuStreamDestroy(ctx->stream);
		delete ctx;
		return set_error(IVF_GPU_RUNTIME_ERROR, "BLAS stream", NULL);
	}
	*out = ctx;
	return IVF_GPU_OK;
}

static void
ctx_destroy(IvfGpuContext *ctx)
{
	if (ctx == NULL)
		return;
	/* nothing to report to: release what can be released */
	(void) gpuSetDevice(ctx->device);
	gpublasDestroy(ctx->blas);
	(void) gpuStreamDestroy(ctx->stream);
	delete ctx;
}

static unsigned long long
ctx_memory_used(const IvfGpuContext *ctx)
{
	return ctx->used;
}

/* -------------------------------------------------------------- indexes */

static size_t
list_bytes(const IvfGpuIndex *index, long long n)
{
	size_t		per = (size_t) index->dims * sizeof(float) + sizeof(long long);

	if (index->metric == IVF_GPU_METRIC_L2)
		per += sizeof(float);
	return (size_t) n * per;
}

static void
drop_list(IvfGpuIndex *index, DevList *l)
{
	IvfGpuContext *ctx = index->ctx;

	dev_free(ctx, l->vecs, (size_t) l->n * index->dims * sizeof(float));
	dev_free(ctx, l->ids, (size_t) l->n * sizeof(long long));
	if (l->norms)
		dev_free(ctx, l->norms, (size_t) l->n * sizeof(float));
	index->bytes -= list_bytes(index, l->n);
	l->vecs = NULL;
	l->ids = NULL;
	l->norms = NULL;
	l->n = 0;
}

static int
idx_create(IvfGpuContext *ctx, int metric, int dims, int nlists,
		   const float *centroids, IvfGpuIndex **out)
{
	IvfGpuIndex *index;
	size_t		cbytes;
	gpuError_t	err;
	int			rc;

	if (ctx == NULL || out == NULL || centroids == NULL || dims < 1 ||
		nlists < 1 || (metric != IVF_GPU_METRIC_L2 && metric != IVF_GPU_METRIC_IP))
		return set_error(IVF_GPU_BAD_ARGUMENT, "bad index parameters", NULL);
	if ((err = gpuSetDevice(ctx->device)) != gpuSuccess)
		return gpu_fail(err, "set device");
	index = new (std::nothrow) IvfGpuIndex();
	if (index == NULL)
		return set_error(IVF_GPU_OUT_OF_MEMORY, "out of host memory", NULL);
	index->ctx = ctx;
	index->metric = metric;
	index->dims = dims;
	index->nlists = nlists;
	index->lists.assign((size_t) nlists, DevList {0, NULL, NULL, NULL});
	cbytes = (size_t) nlists * dims * sizeof(float);
	if ((rc = dev_alloc(ctx, cbytes, (void **) &index->centroids)) != IVF_GPU_OK)
	{
		delete index;
		return rc;
	}
	err = gpuMemcpyAsync(index->centroids, centroids, cbytes, gpuMemcpyHostToDevice,
						 ctx->stream);
	if (err == gpuSuccess)
		err = gpuStreamSynchronize(ctx->stream);
	if (err != gpuSuccess)
	{
		dev_free(ctx, index->centroids, cbytes);
		delete index;
		return gpu_fail(err, "centroid upload");
	}
	index->bytes = cbytes;
	*out = index;
	return IVF_GPU_OK;
}

static int
idx_set_list(IvfGpuIndex *index, int list, long long n, const float *vectors,
			 const long long *ids)
{
	IvfGpuContext *ctx;
	DevList		l = {0, NULL, NULL, NULL};
	size_t		vbytes;
	gpuError_t	err;
	int			rc;

	if (index == NULL || list < 0 || list >= index->nlists || n < 0 ||
		(n > 0 && (vectors == NULL || ids == NULL)))
		return set_error(IVF_GPU_BAD_ARGUMENT, "bad list", NULL);
	ctx = index->ctx;
	if ((err = gpuSetDevice(ctx->device)) != gpuSuccess)
		return gpu_fail(err, "set device");
	drop_list(index, &index->lists[list]);
	if (n == 0)
		return IVF_GPU_OK;
	vbytes = (size_t) n * index->dims * sizeof(float);
	l.n = n;
	if ((rc = dev_alloc(ctx, vbytes, (void **) &l.vecs)) != IVF_GPU_OK ||
		(rc = dev_alloc(ctx, (size_t) n * sizeof(long long), (void **) &l.ids)) != IVF_GPU_OK ||
		(index->metric == IVF_GPU_METRIC_L2 &&
		 (rc = dev_alloc(ctx, (size_t) n * sizeof(float), (void **) &l.norms)) != IVF_GPU_OK))
	{
		dev_free(ctx, l.vecs, vbytes);
		dev_free(ctx, l.ids, (size_t) n * sizeof(long long));
		return rc;
	}
	err = gpuMemcpyAsync(l.vecs, vectors, vbytes, gpuMemcpyHostToDevice, ctx->stream);
	if (err == gpuSuccess)
		err = gpuMemcpyAsync(l.ids, ids, (size_t) n * sizeof(long long),
							 gpuMemcpyHostToDevice, ctx->stream);
	if (err == gpuSuccess && l.norms)
	{
		norms_kernel<<<blocks_for(n), IVF_GPU_THREADS, 0, ctx->stream>>>(l.vecs, n, index->dims,
																		  l.norms);
		err = gpuGetLastError();
	}
	if (err == gpuSuccess)
		err = gpuStreamSynchronize(ctx->stream);
	if (err != gpuSuccess)
	{
		dev_free(ctx, l.vecs, vbytes);
		dev_free(ctx, l.ids, (size_t) n * sizeof(long long));
		dev_free(ctx, l.norms, (size_t) n * sizeof(float));
		return gpu_fail(err, "list upload");
	}
	index->lists[list] = l;
	index->bytes += list_bytes(index, n);
	return IVF_GPU_OK;
}

static unsigned long long
idx_bytes(const IvfGpuIndex *index)
{
	return index->bytes;
}

static void
idx_free(IvfGpuIndex *index)
{
	if (index == NULL)
		return;
	(void) gpuSetDevice(index->ctx->device);
	for (DevList &l : index->lists)
		drop_list(index, &l);
	dev_free(index->ctx, index->centroids,
			 (size_t) index->nlists * index->dims * sizeof(float));
	delete index;
}

/* ------------------------------------------------------------- search */

/* scratch of one call, freed (and uncounted) at its end */
struct Scratch
{
	IvfGpuContext *ctx;
	std::vector<std::pair<void *, size_t>> held;

	explicit Scratch(IvfGpuContext *c) : ctx(c) {}
	int			get(size_t bytes, void **p)
	{
		int			rc = dev_alloc(ctx, bytes, p);

		if (rc == IVF_GPU_OK && *p != NULL)
			held.push_back(std::make_pair(*p, bytes));
		return rc;
	}
	~Scratch()
	{
		/* the call's kernels are done (or the stream is in error) */
		(void) gpuStreamSynchronize(ctx->stream);
		for (auto &h : held)
			dev_free(ctx, h.first, h.second);
	}
};

static int
idx_search(IvfGpuIndex *index, int nq, const float *queries, int nprobe,
		   const int *probes, const long long *limits, int k, float *distances,
		   long long *ids)
{
	IvfGpuContext *ctx;
	int			d;
	size_t		npairs;
	std::vector<long long> start;
	std::vector<int> rows;
	std::vector<int> slots;
	std::vector<long long> lims;
	float	   *dq,
			   *dqn = NULL,
			   *dG,
			   *dQg,
			   *dcand_d,
			   *dout_d;
	long long  *dcand_i,
			   *dout_i,
			   *dlim;
	int		   *drows,
			   *dslots;
	long long	max_n = 1;
	size_t		gemm_cols;
	gpuError_t	err;
	int			rc;

	if (index == NULL || nq < 0 || nprobe < 0 || k < 1 ||
		(nq > 0 && (queries == NULL || distances == NULL || ids == NULL ||
					(nprobe > 0 && probes == NULL))))
		return set_error(IVF_GPU_BAD_ARGUMENT, "bad search arguments", NULL);
	if (k > IVF_GPU_MAX_K)
		return set_error(IVF_GPU_BAD_ARGUMENT, "k above the device's limit of 1024", NULL);
	if (nq == 0)
		return IVF_GPU_OK;
	ctx = index->ctx;
	d = index->dims;
	if ((err = gpuSetDevice(ctx->device)) != gpuSuccess)
		return gpu_fail(err, "set device");

	/* group the (query, slot) pairs by list: a counting sort on the host */
	start.assign((size_t) index->nlists + 1, 0);
	npairs = (size_t) nq * nprobe;
	for (size_t t = 0; t < npairs; t++)
	{
		int			l = probes[t];

		if (l >= index->nlists)
			return set_error(IVF_GPU_BAD_ARGUMENT, "probe names no list", NULL);
		if (l >= 0)
			start[(size_t) l + 1]++;
	}
	for (int l = 0; l < index->nlists; l++)
	{
		start[(size_t) l + 1] += start[l];
		if (start[(size_t) l + 1] > start[l] && index->lists[l].n > max_n)
			max_n = index->lists[l].n;
	}
	rows.resize((size_t) start[index->nlists] + 1);
	slots.resize(rows.size());
	lims.resize(rows.size());
	{
		std::vector<long long> at(start.begin(), start.end() - 1);

		for (size_t t = 0; t < npairs; t++)
		{
			int			l = probes[t];
			long long	pos;

			if (l < 0)
				continue;
			pos = at[l]++;
			rows[pos] = (int) (t / nprobe);
			slots[pos] = (int) (t % nprobe);
			lims[pos] = limits ? limits[t] : LLONG_MAX;
		}
	}

	Scratch		s(ctx);

	gemm_cols = std::max<size_t>(1, IVF_GPU_GEMM_FLOATS / (size_t) max_n);
	gemm_cols = std::min<size_t>(gemm_cols, (size_t) nq);
	if ((rc = s.get((size_t) nq * d * sizeof(float), (void **) &dq)) != IVF_GPU_OK ||
		(index->metric == IVF_GPU_METRIC_L2 &&
		 (rc = s.get((size_t) nq * sizeof(float), (void **) &dqn)) != IVF_GPU_OK) ||
		(rc = s.get(rows.size() * sizeof(int), (void **) &drows)) != IVF_GPU_OK ||
		(rc = s.get(rows.size() * sizeof(int), (void **) &dslots)) != IVF_GPU_OK ||
		(rc = s.get(rows.size() * sizeof(long long), (void **) &dlim)) != IVF_GPU_OK ||
		(rc = s.get(gemm_cols * d * sizeof(float), (void **) &dQg)) != IVF_GPU_OK ||
		(rc = s.get(gemm_cols * (size_t) max_n * sizeof(float), (void **) &dG)) != IVF_GPU_OK ||
		(rc = s.get(npairs * k * sizeof(float) + sizeof(float), (void **) &dcand_d)) != IVF_GPU_OK ||
		(rc = s.get(npairs * k * sizeof(long long) + sizeof(long long), (void **) &dcand_i)) != IVF_GPU_OK ||
		(rc = s.get((size_t) nq * k * sizeof(float), (void **) &dout_d)) != IVF_GPU_OK ||
		(rc = s.get((size_t) nq * k * sizeof(long long), (void **) &dout_i)) != IVF_GPU_OK)
		return rc;

	err = gpuMemcpyAsync(dq, queries, (size_t) nq * d * sizeof(float),
						 gpuMemcpyHostToDevice, ctx->stream);
	if (err == gpuSuccess)
		err = gpuMemcpyAsync(drows, rows.data(), rows.size() * sizeof(int),
							 gpuMemcpyHostToDevice, ctx->stream);
	if (err == gpuSuccess)
		err = gpuMemcpyAsync(dslots, slots.data(), slots.size() * sizeof(int),
							 gpuMemcpyHostToDevice, ctx->stream);
	if (err == gpuSuccess)
		err = gpuMemcpyAsync(dlim, lims.data(), lims.size() * sizeof(long long),
							 gpuMemcpyHostToDevice, ctx->stream);
	if (err != gpuSuccess)
		return gpu_fail(err, "query upload");
	if (dqn)
		norms_kernel<<<blocks_for(nq), IVF_GPU_THREADS, 0, ctx->stream>>>(dq, nq, d, dqn);
	if (npairs > 0)
		fill_kernel<<<blocks_for((long long) npairs * k), IVF_GPU_THREADS, 0,
			ctx->stream>>>(dcand_d, dcand_i, (long long) npairs * k);

	for (int l = 0; l < index->nlists; l++)
	{
		const DevList &L = index->lists[l];

		if (L.n == 0)
			continue;
		for (long long p0 = start[l]; p0 < start[(size_t) l + 1]; p0 += (long long) gemm_cols)
		{
			int			m = (int) std::min<long long>((long long) gemm_cols,
													  start[(size_t) l + 1] - p0);
			const float alpha = 1.0f;
			const float beta = 0.0f;

			gather_kernel<<<blocks_for((long long) m * d), IVF_GPU_THREADS, 0,
				ctx->stream>>>(dq, drows + p0, m, d, dQg);
			/* G (n x m, column-major) = X^T Q: X is d x n, Q is d x m */
			if (gpublasSgemm(ctx->blas, GPUBLAS_OP_T, GPUBLAS_OP_N, (int) L.n, m, d,
							 &alpha, L.vecs, d, dQg, d, &beta, dG, (int) L.n) !=
				GPUBLAS_STATUS_SUCCESS)
				return set_error(IVF_GPU_RUNTIME_ERROR, "GEMM failed", NULL);
			list_select_kernel<<<m, IVF_GPU_THREADS, 0, ctx->stream>>>(dG, L.n, L.norms, dqn,
																		L.ids, index->metric,
																		drows + p0, dslots + p0,
																		dlim + p0, nprobe, k,
																		dcand_d, dcand_i);
		}
	}
	if (nprobe > 0)
		merge_kernel<<<nq, IVF_GPU_THREADS, 0, ctx->stream>>>(dcand_d, dcand_i, nprobe, k,
															   dout_d, dout_i);
	else
		fill_kernel<<<blocks_for((long long) nq * k), IVF_GPU_THREADS, 0,
			ctx->stream>>>(dout_d, dout_i, (long long) nq * k);
	err = gpuGetLastError();
	if (err == gpuSuccess)
		err = gpuMemcpyAsync(distances, dout_d, (size_t) nq * k * sizeof(float),
							 gpuMemcpyDeviceToHost, ctx->stream);
	if (err == gpuSuccess)
		err = gpuMemcpyAsync(ids, dout_i, (size_t) nq * k * sizeof(long long),
							 gpuMemcpyDeviceToHost, ctx->stream);
	if (err == gpuSuccess)
		err = gpuStreamSynchronize(ctx->stream);
	if (err != gpuSuccess)
		return gpu_fail(err, "search");
	return IVF_GPU_OK;
}

/* ------------------------------------------------------------- k-means */

static int
kmeans_assign(IvfGpuContext *ctx, int metric, long long n, int dims,
			  const float *points, int k, const float *centroids, int *assign,
			  float *distances)
{
	float	   *dx,
			   *dc,
			   *dxn = NULL,
			   *dcn = NULL,
			   *dG,
			   *dd;
	int		   *da;
	long long	chunk;
	gpuError_t	err = gpuSuccess;
	int			rc;

	if (ctx == NULL || n < 0 || dims < 1 || k < 1 ||
		(metric != IVF_GPU_METRIC_L2 && metric != IVF_GPU_METRIC_IP) ||
		(n > 0 && (points == NULL || centroids == NULL || assign == NULL)))
		return set_error(IVF_GPU_BAD_ARGUMENT, "bad k-means arguments", NULL);
	if (n == 0)
		return IVF_GPU_OK;
	if ((err = gpuSetDevice(ctx->device)) != gpuSuccess)
		return gpu_fail(err, "set device");
	chunk = (long long) std::max<size_t>(1, IVF_GPU_GEMM_FLOATS / (size_t) k);
	chunk = std::min(chunk, n);

	Scratch		s(ctx);

	if ((rc = s.get((size_t) chunk * dims * sizeof(float), (void **) &dx)) != IVF_GPU_OK ||
		(rc = s.get((size_t) k * dims * sizeof(float), (void **) &dc)) != IVF_GPU_OK ||
		(rc = s.get((size_t) chunk * k * sizeof(float), (void **) &dG)) != IVF_GPU_OK ||
		(rc = s.get((size_t) chunk * sizeof(float), (void **) &dd)) != IVF_GPU_OK ||
		(rc = s.get((size_t) chunk * sizeof(int), (void **) &da)) != IVF_GPU_OK ||
		(metric == IVF_GPU_METRIC_L2 &&
		 ((rc = s.get((size_t) chunk * sizeof(float), (void **) &dxn)) != IVF_GPU_OK ||
		  (rc = s.get((size_t) k * sizeof(float), (void **) &dcn)) != IVF_GPU_OK)))
		return rc;
	err = gpuMemcpyAsync(dc, centroids, (size_t) k * dims * sizeof(float),
						 gpuMemcpyHostToDevice, ctx->stream);
	if (err == gpuSuccess && dcn)
		norms_kernel<<<blocks_for(k), IVF_GPU_THREADS, 0, ctx->stream>>>(dc, k, dims, dcn);
	for (long long i0 = 0; err == gpuSuccess && i0 < n; i0 += chunk)
	{
		long long	m = std::min(chunk, n - i0);
		const float alpha = 1.0f;
		const float beta = 0.0f;

		err = gpuMemcpyAsync(dx, points + (size_t) i0 * dims, (size_t) m * dims * sizeof(float),
							 gpuMemcpyHostToDevice, ctx->stream);
		if (err != gpuSuccess)
			break;
		if (dxn)
			norms_kernel<<<blocks_for(m), IVF_GPU_THREADS, 0, ctx->stream>>>(dx, m, dims, dxn);
		/* G (m x k, column-major) = X^T C */
		if (gpublasSgemm(ctx->blas, GPUBLAS_OP_T, GPUBLAS_OP_N, (int) m, k, dims, &alpha,
						 dx, dims, dc, dims, &beta, dG, (int) m) != GPUBLAS_STATUS_SUCCESS)
			return set_error(IVF_GPU_RUNTIME_ERROR, "GEMM failed", NULL);
		argmin_kernel<<<blocks_for(m), IVF_GPU_THREADS, 0, ctx->stream>>>(dG, m, k, dxn, dcn,
																		   metric, da, dd);
		err = gpuGetLastError();
		if (err == gpuSuccess)
			err = gpuMemcpyAsync(assign + i0, da, (size_t) m * sizeof(int),
								 gpuMemcpyDeviceToHost, ctx->stream);
		if (err == gpuSuccess && distances != NULL)
			err = gpuMemcpyAsync(distances + i0, dd, (size_t) m * sizeof(float),
								 gpuMemcpyDeviceToHost, ctx->stream);
		if (err == gpuSuccess)
			err = gpuStreamSynchronize(ctx->stream);
	}
	if (err != gpuSuccess)
		return gpu_fail(err, "k-means assignment");
	return IVF_GPU_OK;
}

/* ------------------------------------------------------------- the table */

static const IvfGpuOps gpu_ops = {
	IVF_GPU_ABI_VERSION,
	IVF_GPU_BACKEND,
	IVF_GPU_MAX_K,
	dev_count,
	dev_info,
	get_last_error,
	ctx_create,
	ctx_destroy,
	ctx_memory_used,
	idx_create,
	idx_set_list,
	idx_bytes,
	idx_free,
	idx_search,
	kmeans_assign
};

extern "C" const IvfGpuOps *
ivf_gpu_ops(void)
{
	return &gpu_ops;
}
