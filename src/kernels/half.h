/*-------------------------------------------------------------------------
 *
 * half.h
 *	  IEEE 754 binary16 ("half") conversion and the float-query-against-
 *	  half-vectors distance references.
 *
 * Plain C with no PostgreSQL dependency.  A half is kept as its bit
 * pattern in a uint16_t, the layout of pgvector's halfvec elements.
 *
 * Half to float is exact for every one of the 65,536 patterns (a
 * signalling NaN comes back quiet, its payload kept, as the F16C
 * instruction does).  Float to half rounds to nearest, ties to even; a
 * result that is not a finite half is reported to the caller: IEEE
 * arithmetic would quietly give infinity for 65520 and above, and NaN
 * for NaN, neither of which a halfvec may hold.
 *
 * The dispatched array forms live in the kernel table (distance.h):
 * ivf_kernels.half_to_float, .float_to_half, .l2sq_f16, .dot_f16 and the
 * block forms; the functions here are their scalar references.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_HALF_H
#define IVF_HALF_H

#include <stddef.h>
#include <stdint.h>

/* largest finite half, 65504, and its bit pattern */
#define IVF_HALF_MAX		65504.0f
#define IVF_HALF_MAX_BITS	0x7BFF

typedef enum IvfHalfStatus
{
	IVF_HALF_OK = 0,			/* a finite half (possibly rounded to 0) */
	IVF_HALF_OVERFLOW,			/* finite float beyond the half range */
	IVF_HALF_INFINITE,			/* the float was infinite */
	IVF_HALF_NAN				/* the float was NaN */
} IvfHalfStatus;

/* Is this half pattern NaN or infinite? */
static inline int
ivf_half_is_finite(uint16_t h)
{
	return (h & 0x7C00) != 0x7C00;
}

/* Exact; see above for NaN. */
extern float ivf_half_to_float(uint16_t h);

/*
 * Round f to the nearest half, ties to even.  *out always gets the IEEE
 * result (infinity on overflow, a quiet NaN for NaN); the status says
 * whether that is a finite half.
 */
extern IvfHalfStatus ivf_float_to_half(float f, uint16_t *out);

/*
 * Array forms (scalar references of the dispatched kernels).
 * float_to_half writes all n results and returns the index of the first
 * element whose result is not a finite half, or n when all are.
 */
extern void ivf_ref_half_to_float(const uint16_t *h, float *out, size_t n);
extern size_t ivf_ref_float_to_half(const float *x, uint16_t *out, size_t n);

/*
 * A float query q against half vectors: x is d halves (pair) or n rows of
 * d halves, row i at x + i * d (block).  Squared L2 and inner product in
 * float, as the float kernels compute them.
 */
extern float ivf_ref_l2sq_f16(const float *q, const uint16_t *x, size_t d);
extern float ivf_ref_dot_f16(const float *q, const uint16_t *x, size_t d);
extern void ivf_ref_l2sq_f16_block(const float *q, const uint16_t *x,
								   size_t n, size_t d, float *out);
extern void ivf_ref_dot_f16_block(const float *q, const uint16_t *x,
								  size_t n, size_t d, float *out);

#endif							/* IVF_HALF_H */
