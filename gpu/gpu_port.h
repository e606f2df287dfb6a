/*
 * gpu_port.h
 *	  The thin portability layer that lets one source build with nvcc (CUDA)
 *	  or hipcc (ROCm HIP).  Device code uses only the gpu* names below.
 */
#ifndef IVF_GPU_PORT_H
#define IVF_GPU_PORT_H

#ifdef IVF_USE_HIP
#include <hip/hip_runtime.h>
#define IVF_GPU_BACKEND "hip"
#define gpuError_t hipError_t
#define gpuSuccess hipSuccess
#define gpuGetErrorString hipGetErrorString
#define gpuGetDeviceCount hipGetDeviceCount
#define gpuDeviceProp hipDeviceProp_t
#define gpuGetDeviceProperties hipGetDeviceProperties
#else
#include <cuda_runtime.h>
#define IVF_GPU_BACKEND "cuda"
#define gpuError_t cudaError_t
#define gpuSuccess cudaSuccess
#define gpuGetErrorString cudaGetErrorString
#define gpuGetDeviceCount cudaGetDeviceCount
#define gpuDeviceProp cudaDeviceProp
#define gpuGetDeviceProperties cudaGetDeviceProperties
#endif

#endif							/* IVF_GPU_PORT_H */
