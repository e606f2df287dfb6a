/*
 * ivf_gpu.h
 *	  The C interface of ivf_gpu.so, the optional GPU library.
 *
 * ivf.so never links CUDA or ROCm: the GPU worker (a later step) dlopen()s
 * ivf_gpu.so and resolves these symbols, so the extension loads and works on
 * a machine without any GPU runtime.  Everything here is plain C; no
 * function ever calls back into PostgreSQL or raises an error other than by
 * return code.
 *
 * Step 1 provides only the ABI handshake and device discovery; contexts,
 * index upload, batched search and k-means are added in Step 4.
 */
#ifndef IVF_GPU_H
#define IVF_GPU_H

#ifdef __cplusplus
extern "C"
{
#endif

/* Bumped whenever a signature below changes; checked after dlopen(). */
#define IVF_GPU_ABI_VERSION 1

typedef enum IvfGpuStatus
{
	IVF_GPU_OK = 0,
	IVF_GPU_NO_DEVICE = 1,
	IVF_GPU_RUNTIME_ERROR = 2,
	IVF_GPU_BAD_ARGUMENT = 3
} IvfGpuStatus;

typedef struct IvfGpuDeviceInfo
{
	char		name[256];
	unsigned long long total_memory;	/* bytes */
	int			compute_major;
	int			compute_minor;
	int			multiprocessors;
} IvfGpuDeviceInfo;

/* IVF_GPU_ABI_VERSION of the library as built. */
int			ivf_gpu_abi_version(void);

/* "cuda" or "hip". */
const char *ivf_gpu_backend_name(void);

/* Number of usable devices (0 when there is no driver or device). */
int			ivf_gpu_device_count(void);

/* Describe device `device`; returns an IvfGpuStatus. */
int			ivf_gpu_device_info(int device, IvfGpuDeviceInfo *info);

/* Text of the last error in this thread ("" if none). */
const char *ivf_gpu_last_error(void);

#ifdef __cplusplus
}
#endif

#endif							/* IVF_GPU_H */
