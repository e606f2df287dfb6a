/*-------------------------------------------------------------------------
 *
 * halfvec.h
 *	  The halfvec type: a pgvector-compatible array of IEEE half floats.
 *
 * On disk and in memory: varlena header, int16 dim, int16 unused (always
 * 0), then dim binary16 bit patterns -- byte for byte pgvector's halfvec,
 * so its binary wire form (int16 dim, int16 0, big-endian uint16 each) and
 * its text form match too.  Elements are always finite.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_HALFVEC_H
#define IVF_HALFVEC_H

#include "fmgr.h"

#define HALFVEC_MAX_DIM 16000

typedef struct HalfVector
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int16		dim;			/* number of dimensions */
	int16		unused;			/* reserved for future use, always zero */
	uint16		x[FLEXIBLE_ARRAY_MEMBER];	/* binary16 bit patterns */
} HalfVector;

#define HALFVEC_SIZE(_dim)		(offsetof(HalfVector, x) + sizeof(uint16) * (_dim))
#define DatumGetHalfVector(x)	((HalfVector *) PG_DETOAST_DATUM(x))
#define PG_GETARG_HALFVEC_P(x)	DatumGetHalfVector(PG_GETARG_DATUM(x))
#define PG_RETURN_HALFVEC_P(x)	PG_RETURN_POINTER(x)

extern HalfVector *InitHalfVector(int dim);

/*
 * x[0..dim-1] rounded to half precision into a new halfvec; a NaN, an
 * infinity or a value beyond 65504 raises pgvector's error for it, with
 * the element's position in the detail.
 */
extern HalfVector *ivf_halfvec_from_floats(const float *x, int dim);

/* The elements widened to float (exact) into out[0..dim-1]. */
extern void ivf_halfvec_to_floats(const HalfVector *v, float *out);

#endif							/* IVF_HALFVEC_H */
