/*
 * ivf_gpu.cu
 *	  ivf_gpu.so: device discovery and (from Step 4) batched IVF search.
 *	  One source for CUDA and HIP through gpu_port.h.
 */
#include <stdio.h>
#include <string.h>

#include "gpu_port.h"
#include "ivf_gpu.h"

static thread_local char last_error[512];

static int
set_error(gpuError_t err, const char *what)
{
	snprintf(last_error, sizeof(last_error), "%s: %s", what,
			 gpuGetErrorString(err));
	return IVF_GPU_RUNTIME_ERROR;
}

extern "C" int
ivf_gpu_abi_version(void)
{
	return IVF_GPU_ABI_VERSION;
}

extern "C" const char *
ivf_gpu_backend_name(void)
{
	return IVF_GPU_BACKEND;
}

extern "C" int
ivf_gpu_device_count(void)
{
	int			n = 0;
	gpuError_t	err = gpuGetDeviceCount(&n);

	if (err != gpuSuccess)
	{
		set_error(err, "device count");
		return 0;
	}
	return n;
}

extern "C" int
ivf_gpu_device_info(int device, IvfGpuDeviceInfo *info)
{
	gpuDeviceProp prop;
	gpuError_t	err;

	if (info == NULL || device < 0 || device >= ivf_gpu_device_count())
		return IVF_GPU_BAD_ARGUMENT;
	err = gpuGetDeviceProperties(&prop, device);
	if (err != gpuSuccess)
		return set_error(err, "device properties");

	memset(info, 0, sizeof(*info));
	strncpy(info->name, prop.name, sizeof(info->name) - 1);
	info->total_memory = (unsigned long long) prop.totalGlobalMem;
	info->compute_major = prop.major;
	info->compute_minor = prop.minor;
	info->multiprocessors = prop.multiProcessorCount;
	return IVF_GPU_OK;
}

extern "C" const char *
ivf_gpu_last_error(void)
{
	return last_error;
}
