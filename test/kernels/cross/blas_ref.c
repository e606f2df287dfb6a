/*-------------------------------------------------------------------------
 *
 * blas_ref.c
 *	  A plain C cblas_sgemm and openblas_set_num_threads for make
 *	  neon-check's AArch64 cross build, which has no aarch64 OpenBLAS to
 *	  link (cblas.h beside this file says why).  Only the kernels' GEMM
 *	  paths (ivf_gemm_*, the k-means assignment) go through it; the NEON
 *	  kernels under test never do.
 *
 * The form the kernels call (row-major, A as is, B transposed: each
 * element a dot product of two contiguous rows) sums in float in eight
 * lanes, as an optimized sgemm does, whose error bounds the kernel tests
 * allow for; under qemu that is several times faster than one element at
 * a time.  Every other order and transpose is handled too, as the CBLAS
 * definition gives them, summed in double.  beta = 0 means C is not read.
 *
 *-------------------------------------------------------------------------
 */
#include "cblas.h"

#include <stddef.h>

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* single-threaded: any thread count is honoured trivially */
void
openblas_set_num_threads(int num_threads)
{
	(void) num_threads;
}

void
cblas_sgemm(const enum CBLAS_ORDER Order,
			const enum CBLAS_TRANSPOSE TransA,
			const enum CBLAS_TRANSPOSE TransB,
			const int M, const int N, const int K,
			const float alpha, const float *A, const int lda,
			const float *B, const int ldb,
			const float beta, float *C, const int ldc)
{
	int			i,
				j,
				p;

	if (Order == CblasRowMajor && TransA == CblasNoTrans && TransB != CblasNoTrans)
	{
		for (i = 0; i < M; i++)
		{
			const float *a = A + (size_t) i * lda;

			for (j = 0; j < N; j++)
			{
				const float *b = B + (size_t) j * ldb;
				float		s;
				float	   *c = &C[(size_t) i * ldc + j];

				p = 0;
#if defined(__aarch64__)
				{
					float32x4_t s0 = vdupq_n_f32(0.0f);
					float32x4_t s1 = vdupq_n_f32(0.0f);

					for (; p + 8 <= K; p += 8)
					{
						s0 = vfmaq_f32(s0, vld1q_f32(a + p), vld1q_f32(b + p));
						s1 = vfmaq_f32(s1, vld1q_f32(a + p + 4), vld1q_f32(b + p + 4));
					}
					s = vaddvq_f32(vaddq_f32(s0, s1));
				}
#else
				s = 0.0f;
#endif
				for (; p < K; p++)
					s += a[p] * b[p];
				*c = (beta == 0.0f) ? alpha * s : alpha * s + beta * *c;
			}
		}
		return;
	}

	for (i = 0; i < M; i++)
	{
		for (j = 0; j < N; j++)
		{
			double		s = 0.0;
			float	   *c;

			for (p = 0; p < K; p++)
			{
				float		a,
							b;

				/* op(A)[i][p], op(B)[p][j] in the given storage order */
				if (Order == CblasRowMajor)
				{
					a = (TransA == CblasNoTrans) ? A[(size_t) i * lda + p] : A[(size_t) p * lda + i];
					b = (TransB == CblasNoTrans) ? B[(size_t) p * ldb + j] : B[(size_t) j * ldb + p];
				}
				else
				{
					a = (TransA == CblasNoTrans) ? A[(size_t) p * lda + i] : A[(size_t) i * lda + p];
					b = (TransB == CblasNoTrans) ? B[(size_t) j * ldb + p] : B[(size_t) p * ldb + j];
				}
				s += (double) a * (double) b;
			}
			c = (Order == CblasRowMajor) ? &C[(size_t) i * ldc + j] : &C[(size_t) j * ldc + i];
			*c = (beta == 0.0f) ? (float) (alpha * s) : (float) (alpha * s + (double) beta * *c);
		}
	}
}
