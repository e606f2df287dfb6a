/*
 * hipblas_decls/hipblas/hipblas.h
 *	  The subset of hipBLAS 5.x's API that gpu/ivf_gpu.cu uses (through
 *	  gpu_port.h), declared with hipBLAS 5.x's types, names and values, so
 *	  that `make hip-check` can compile the HIP half of the GPU library with
 *	  Debian's hipcc: Debian ships the HIP runtime (libamdhip64-dev) but not
 *	  hipBLAS.
 *
 * Only `make hip-check` puts this folder on the include path, and it only
 * compiles (-c); nothing is ever linked against these declarations.  A
 * real build (make WITH_HIP=1) uses the installed hipBLAS's own header.
 * When ivf_gpu.cu starts to use another hipBLAS name, hip-check fails
 * until it is declared here, exactly as hipBLAS declares it.
 */
#ifndef IVF_HIPBLAS_DECLS_H
#define IVF_HIPBLAS_DECLS_H

#include <hip/hip_runtime_api.h>

typedef void *hipblasHandle_t;

typedef enum
{
	HIPBLAS_STATUS_SUCCESS = 0,
	HIPBLAS_STATUS_NOT_INITIALIZED = 1,
	HIPBLAS_STATUS_ALLOC_FAILED = 2,
	HIPBLAS_STATUS_INVALID_VALUE = 3,
	HIPBLAS_STATUS_MAPPING_ERROR = 4,
	HIPBLAS_STATUS_EXECUTION_FAILED = 5,
	HIPBLAS_STATUS_INTERNAL_ERROR = 6,
	HIPBLAS_STATUS_NOT_SUPPORTED = 7,
	HIPBLAS_STATUS_ARCH_MISMATCH = 8,
	HIPBLAS_STATUS_HANDLE_IS_NULLPTR = 9,
	HIPBLAS_STATUS_INVALID_ENUM = 10,
	HIPBLAS_STATUS_UNKNOWN = 11
} hipblasStatus_t;

/* the values of cblas's CblasNoTrans / CblasTrans / CblasConjTrans */
typedef enum
{
	HIPBLAS_OP_N = 111,
	HIPBLAS_OP_T = 112,
	HIPBLAS_OP_C = 113
} hipblasOperation_t;

#ifdef __cplusplus
extern "C"
{
#endif

hipblasStatus_t hipblasCreate(hipblasHandle_t *handle);
hipblasStatus_t hipblasDestroy(hipblasHandle_t handle);
hipblasStatus_t hipblasSetStream(hipblasHandle_t handle, hipStream_t streamId);
hipblasStatus_t hipblasSgemm(hipblasHandle_t handle,
							 hipblasOperation_t transa, hipblasOperation_t transb,
							 int m, int n, int k,
							 const float *alpha, const float *AP, int lda,
							 const float *BP, int ldb,
							 const float *beta, float *CP, int ldc);

#ifdef __cplusplus
}
#endif

#endif							/* IVF_HIPBLAS_DECLS_H */
