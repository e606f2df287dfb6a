/*-------------------------------------------------------------------------
 *
 * cblas.h
 *	  The subset of the CBLAS interface src/kernels uses (cblas_sgemm with
 *	  its enums, values as in the reference CBLAS), for make neon-check
 *	  only: the AArch64 cross build has no aarch64 OpenBLAS (Debian ships
 *	  no cross package of it), so this folder is on that build's include
 *	  path and blas_ref.c supplies the functions.  The real builds use the
 *	  installed OpenBLAS header and library.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_CROSS_CBLAS_H
#define IVF_CROSS_CBLAS_H

typedef enum CBLAS_ORDER
{
	CblasRowMajor = 101,
	CblasColMajor = 102
} CBLAS_ORDER;

typedef enum CBLAS_TRANSPOSE
{
	CblasNoTrans = 111,
	CblasTrans = 112,
	CblasConjTrans = 113
} CBLAS_TRANSPOSE;

extern void cblas_sgemm(const enum CBLAS_ORDER Order,
						const enum CBLAS_TRANSPOSE TransA,
						const enum CBLAS_TRANSPOSE TransB,
						const int M, const int N, const int K,
						const float alpha, const float *A, const int lda,
						const float *B, const int ldb,
						const float beta, float *C, const int ldc);

#endif							/* IVF_CROSS_CBLAS_H */
