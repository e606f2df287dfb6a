/*
 * ivf_gpu.h
 *	  The C interface of the GPU search library, ivf_gpu.so, and of its CPU
 *	  stand-in.
 *
 * ivf.so never links CUDA or ROCm: the GPU worker dlopen()s ivf_gpu.so and
 * asks it for its operations table (ivf_gpu_ops), so the extension loads
 * and works on a machine without any GPU runtime.  The same table is
 * implemented on the CPU (gpu/ivf_gpu_cpu.c, built into ivf.so and into
 * the standalone test), so the worker's protocol -- batching, residency,
 * coherence, fallback -- runs and is tested where there is no GPU, and the
 * device kernels are checked against it on random data.
 *
 * Everything here is plain C.  No function calls back into PostgreSQL,
 * allocates with palloc or raises an error other than by return code
 * (IvfGpuStatus; ops->last_error() says more, per thread).  A context is
 * used by one thread at a time.
 *
 * Distances follow the index scan's convention: squared L2, or the
 * negated inner product (cosine indexes store unit vectors and use the
 * inner product), smaller is nearer.  Results are ordered by (distance,
 * id), NaN last, as ivf_dist_id_less orders them, and padded with
 * (+inf, -1) when fewer than k candidates exist.
 */
#ifndef IVF_GPU_H
#define IVF_GPU_H

#ifdef __cplusplus
extern "C"
{
#endif

/* Bumped whenever IvfGpuOps or a signature below changes. */
#define IVF_GPU_ABI_VERSION 2

typedef enum IvfGpuStatus
{
	IVF_GPU_OK = 0,
	IVF_GPU_NO_DEVICE = 1,
	IVF_GPU_RUNTIME_ERROR = 2,
	IVF_GPU_BAD_ARGUMENT = 3,
	IVF_GPU_OUT_OF_MEMORY = 4
} IvfGpuStatus;

typedef enum IvfGpuMetric
{
	IVF_GPU_METRIC_L2 = 0,		/* squared Euclidean distance */
	IVF_GPU_METRIC_IP = 1		/* -(q . x) */
} IvfGpuMetric;

typedef struct IvfGpuDeviceInfo
{
	char		name[256];
	unsigned long long total_memory;	/* bytes */
	int			compute_major;
	int			compute_minor;
	int			multiprocessors;
} IvfGpuDeviceInfo;

typedef struct IvfGpuContext IvfGpuContext;
typedef struct IvfGpuIndex IvfGpuIndex;

typedef struct IvfGpuOps
{
	int			abi_version;	/* IVF_GPU_ABI_VERSION as built */
	const char *backend;		/* "cuda", "hip" or "cpu" */
	int			max_k;			/* search's largest k (0 = any) */

	/* Number of usable devices (0 when there is no driver or device). */
	int			(*device_count) (void);
	int			(*device_info) (int device, IvfGpuDeviceInfo *info);
	/* Text of this thread's last error ("" if none). */
	const char *(*last_error) (void);

	/*
	 * A context owns one device and everything uploaded to it.
	 * memory_limit (bytes, 0 = the device's) bounds the context's own
	 * allocations: an upload past it fails with IVF_GPU_OUT_OF_MEMORY.
	 */
	int			(*context_create) (int device, unsigned long long memory_limit,
								   IvfGpuContext **ctx);
	void		(*context_destroy) (IvfGpuContext *ctx);
	unsigned long long (*memory_used) (const IvfGpuContext *ctx);

	/*
	 * An index on the device: its centroids (nlists x dims, row-major,
	 * copied) and, per list, a packed block of vectors with their ids
	 * (set_list replaces a list's contents; n = 0 empties it).  Lists are
	 * uploaded one by one so that a change to one list re-sends only it.
	 * An id below 0 marks a dead slot: it counts against a probe's limit
	 * (limits count slots, as the index scan does) but is never returned.
	 */
	int			(*index_create) (IvfGpuContext *ctx, int metric, int dims,
								 int nlists, const float *centroids,
								 IvfGpuIndex **index);
	int			(*index_set_list) (IvfGpuIndex *index, int list, long long n,
								   const float *vectors, const long long *ids);
	unsigned long long (*index_bytes) (const IvfGpuIndex *index);
	void		(*index_free) (IvfGpuIndex *index);

	/*
	 * Batched search.  queries: nq x dims.  probes: nq x nprobe list
	 * numbers chosen by the caller (the centroid ranking stays with the
	 * caller, so GPU and CPU scans probe the same lists); -1 skips a slot.
	 * limits: nq x nprobe, the most vectors to examine in that probed list
	 * (its first ones, as max_codes and the candidate budgets cut a list),
	 * or NULL for all.  Out: nq x k distances and ids.  k above max_k is
	 * IVF_GPU_BAD_ARGUMENT (the caller searches on the CPU instead).
	 */
	int			(*search) (IvfGpuIndex *index, int nq, const float *queries,
						   int nprobe, const int *probes,
						   const long long *limits, int k, float *distances,
						   long long *ids);

	/*
	 * One assignment step of k-means: the nearest of k centroids (ties to
	 * the lower number) for each of n points, and its distance.
	 */
	int			(*kmeans_assign) (IvfGpuContext *ctx, int metric, long long n,
								  int dims, const float *points, int k,
								  const float *centroids, int *assign,
								  float *distances);
} IvfGpuOps;

/* The entry point ivf_gpu.so exports (looked up by name after dlopen). */
const IvfGpuOps *ivf_gpu_ops(void);

/* The CPU implementation (gpu/ivf_gpu_cpu.c), same contract. */
const IvfGpuOps *ivf_gpu_cpu_ops(void);

#ifdef __cplusplus
}
#endif

#endif							/* IVF_GPU_H */
