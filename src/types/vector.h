/*-------------------------------------------------------------------------
 *
 * vector.h
 *	  The vector type: a pgvector-compatible float4 array.
 *
 * On disk and in memory: varlena header, int16 dim, int16 unused (always
 * 0), float4 x[dim] -- byte for byte the layout pgvector uses, so the binary
 * wire format (int16 dim, int16 0, big-endian float4s) and text form match.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_VECTOR_H
#define IVF_VECTOR_H

#include "fmgr.h"

#define VECTOR_MAX_DIM 16000

typedef struct Vector
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int16		dim;			/* number of dimensions */
	int16		unused;			/* reserved for future use, always zero */
	float		x[FLEXIBLE_ARRAY_MEMBER];
} Vector;

#define VECTOR_SIZE(_dim)		(offsetof(Vector, x) + sizeof(float) * (_dim))
#define DatumGetVector(x)		((Vector *) PG_DETOAST_DATUM(x))
#define PG_GETARG_VECTOR_P(x)	DatumGetVector(PG_GETARG_DATUM(x))
#define PG_RETURN_VECTOR_P(x)	PG_RETURN_POINTER(x)

extern Vector *InitVector(int dim);
extern void ivf_check_vector_dims(const Vector *a, const Vector *b);

/*
 * Error texts of the vector and halfvec literals: how much of an offending
 * literal a message quotes, the literal so clipped, and the token that
 * stopped the parser.
 */
#define IVF_ERROR_QUOTE_MAX 120
struct IvfParseResult;
extern char *ivf_literal_for_error(const char *str);
extern char *ivf_token_for_error(const char *str,
								 const struct IvfParseResult *r);

/*
 * What vector and halfvec share (type names their messages; max_dim the
 * type's limit): the typmod_in of a dimensions modifier, and subvector()'s
 * range -- 1-based start and count clipped to dim elements like substr,
 * returned as the 0-based first element and the count; an empty range is
 * an error.
 */
struct ArrayType;
extern int32 ivf_dims_typmod_in(struct ArrayType *ta, const char *type,
								int max_dim);
extern int	ivf_subvector_range(const char *type, int dim, int32 start,
								int32 count, int *first);

/*
 * array_to_vector's and array_to_halfvec's conversion: a 1-D array without
 * nulls, and its element i of int4, float4, float8 or numeric as float4
 * (half: for a halfvec, which names the type in the out-of-range error).
 */
extern Datum *ivf_array_elements(struct ArrayType *array, int *nelems);
extern float ivf_array_element_float4(Datum elem, Oid elemtype, int i,
									  bool half);

#endif							/* IVF_VECTOR_H */
