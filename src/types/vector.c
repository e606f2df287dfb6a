/*-------------------------------------------------------------------------
 *
 * vector.c
 *	  The vector type: I/O, typmod, casts, distances, arithmetic,
 *	  comparison and aggregate support.
 *
 * Interchangeable with pgvector's type of the same name: the same text and
 * binary forms, typmod rules, function and operator names, and (for zero
 * vectors) the same NaN cosine distance.  Distances go through the
 * runtime-dispatched kernels in distance.c; results may differ from a
 * strictly sequential float sum in the last bits, as pgvector's own SIMD
 * builds do.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "distance.h"
#include "half.h"
#include "vector.h"
#include "vector_parse.h"

/*
 * Allocate a zero-filled vector of dim dimensions.
 */
Vector *
InitVector(int dim)
{
	Vector	   *result;
	int			size = VECTOR_SIZE(dim);

	result = (Vector *) palloc0(size);
	SET_VARSIZE(result, size);
	result->dim = dim;
	return result;
}

static inline void
CheckDim(int dim)
{
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector must have at least 1 dimension")));
	if (dim > VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector cannot have more than %d dimensions",
						VECTOR_MAX_DIM)));
}

static inline void
CheckExpectedDim(int32 typmod, int dim)
{
	if (typmod != -1 && typmod != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", typmod, dim)));
}

/* Refuse NaN and infinities, which no distance could order. */
static inline void
CheckElement(float value)
{
	if (isnan(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("NaN not allowed in vector")));
	if (isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("infinite value not allowed in vector")));
}

void
ivf_check_vector_dims(const Vector *a, const Vector *b)
{
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d",
						a->dim, b->dim)));
}

/* Arithmetic results must stay finite. */
static inline void
CheckOverflow(float value)
{
	if (isinf(value))
		float_overflow_error();
}

/*
 * The literal as quoted in an error message: whole when short, otherwise
 * its start (a 16000-element literal in a message helps nobody).
 */
char *
ivf_literal_for_error(const char *str)
{
	size_t		len = strlen(str);

	if (len <= IVF_ERROR_QUOTE_MAX)
		return pstrdup(str);
	return psprintf("%.*s...",
					pg_mbcliplen(str, (int) len, IVF_ERROR_QUOTE_MAX),
					str);
}

/* the token at the parser's error position, clipped as the literal is */
char *
ivf_token_for_error(const char *str, const IvfParseResult *r)
{
	int			len = Min(r->errlen, IVF_ERROR_QUOTE_MAX);

	len = pg_mbcliplen(str + r->errpos, r->errlen, len);
	return pnstrdup(str + r->errpos, len);
}

static void
report_parse_error(const char *str, const IvfParseResult *r)
{
	char	   *lit = ivf_literal_for_error(str);

	switch (r->status)
	{
		case IVF_PARSE_NO_OPEN_BRACKET:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("malformed vector literal: \"%s\"", lit),
					 errdetail("Vector contents must start with \"[\".")));
			break;
		case IVF_PARSE_BAD_NUMBER:
			if (r->errlen == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid input syntax for type vector: \"%s\"", lit),
						 errdetail("Element %d is missing.", r->ndim + 1)));
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid input syntax for type vector: \"%s\"", lit),
						 errdetail("Element %d, \"%s\", is not a number.",
								   r->ndim + 1, ivf_token_for_error(str, r))));
			break;
		case IVF_PARSE_BAD_SEPARATOR:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type vector: \"%s\"", lit),
					 errdetail("Expected \",\" or \"]\" after element %d, found \"%c\".",
							   r->ndim, str[r->errpos])));
			break;
		case IVF_PARSE_UNTERMINATED:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("malformed vector literal: \"%s\"", lit),
					 errdetail("Unexpected end of input; vector contents must end with \"]\".")));
			break;
		case IVF_PARSE_JUNK_AFTER:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("malformed vector literal: \"%s\"", lit),
					 errdetail("Junk after closing right bracket.")));
			break;
		case IVF_PARSE_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("vector must have at least 1 dimension")));
			break;
		case IVF_PARSE_TOO_MANY:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("vector cannot have more than %d dimensions",
							VECTOR_MAX_DIM)));
			break;
		case IVF_PARSE_NAN:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("NaN not allowed in vector"),
					 errdetail("Element %d is \"%s\".",
							   r->ndim + 1, ivf_token_for_error(str, r))));
			break;
		case IVF_PARSE_INFINITE:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("infinite value not allowed in vector"),
					 errdetail("Element %d is \"%s\".",
							   r->ndim + 1, ivf_token_for_error(str, r))));
			break;
		case IVF_PARSE_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("\"%s\" is out of range for type vector",
							ivf_token_for_error(str, r)),
					 errdetail("Element %d does not fit in a 4-byte float.",
							   r->ndim + 1)));
			break;
		case IVF_PARSE_OK:
			break;
	}
	elog(ERROR, "unexpected vector parse status %d", (int) r->status);
}

/*
 * vector_in(cstring, oid, int4)
 */
PG_FUNCTION_INFO_V1(vector_in);
Datum
vector_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			capacity;
	float	   *x;
	IvfParseResult r;
	Vector	   *result;

	/* Every element but the last is followed by a comma. */
	capacity = Min(ivf_vector_count_upper_bound(str), VECTOR_MAX_DIM);
	x = (float *) palloc(sizeof(float) * capacity);

	r = ivf_parse_vector(str, x, capacity, VECTOR_MAX_DIM);
	if (r.status != IVF_PARSE_OK)
		report_parse_error(str, &r);

	CheckExpectedDim(typmod, r.ndim);

	result = InitVector(r.ndim);
	memcpy(result->x, x, sizeof(float) * r.ndim);
	pfree(x);

	PG_RETURN_VECTOR_P(result);
}

/*
 * vector_out(vector): each element in the shortest form that reads back
 * to the same float4, as float4out does.
 */
PG_FUNCTION_INFO_V1(vector_out);
Datum
vector_out(PG_FUNCTION_ARGS)
{
	Vector	   *vector = PG_GETARG_VECTOR_P(0);
	int			dim = vector->dim;
	char	   *buf;
	char	   *ptr;
	int			i;

	/* "[" + dim * (FLOAT_SHORTEST_DECIMAL_LEN - 1 + ",") - "," + "]" + NUL */
	buf = (char *) palloc(FLOAT_SHORTEST_DECIMAL_LEN * dim + 2);
	ptr = buf;
	*ptr++ = '[';
	for (i = 0; i < dim; i++)
	{
		if (i > 0)
			*ptr++ = ',';
		ptr += float_to_shortest_decimal_bufn(vector->x[i], ptr);
	}
	*ptr++ = ']';
	*ptr = '\0';

	PG_FREE_IF_COPY(vector, 0);
	PG_RETURN_CSTRING(buf);
}

/* typmod_in of vector and halfvec (vector.h) */
int32
ivf_dims_typmod_in(ArrayType *ta, const char *type, int max_dim)
{
	int32	   *tl;
	int			n;

	tl = ArrayGetIntegerTypmods(ta, &n);

	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid type modifier"),
				 errdetail("Type %s takes one modifier, the number of dimensions.",
						   type)));
	if (*tl < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type %s must be at least 1", type)));
	if (*tl > max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type %s cannot exceed %d",
						type, max_dim)));
	return *tl;
}

/*
 * vector_typmod_in(cstring[])
 */
PG_FUNCTION_INFO_V1(vector_typmod_in);
Datum
vector_typmod_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(ivf_dims_typmod_in(PG_GETARG_ARRAYTYPE_P(0), "vector",
									   VECTOR_MAX_DIM));
}

/*
 * vector_typmod_out(int4)
 */
PG_FUNCTION_INFO_V1(vector_typmod_out);
Datum
vector_typmod_out(PG_FUNCTION_ARGS)
{
	int32		typmod = PG_GETARG_INT32(0);

	if (typmod != -1)
		PG_RETURN_CSTRING(psprintf("(%d)", typmod));
	PG_RETURN_CSTRING(pstrdup(""));
}

/*
 * vector_recv(internal, oid, int4): int16 dim, int16 unused (must be 0),
 * dim big-endian float4s.
 */
PG_FUNCTION_INFO_V1(vector_recv);
Datum
vector_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	int16		dim;
	int16		unused;
	Vector	   *result;
	int			i;

	dim = (int16) pq_getmsgint(buf, sizeof(int16));
	unused = (int16) pq_getmsgint(buf, sizeof(int16));

	CheckDim(dim);
	CheckExpectedDim(typmod, dim);
	if (unused != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("expected unused to be 0, not %d", unused)));
	/* Fail before allocating if the message cannot hold dim floats. */
	if (buf->len - buf->cursor < (int) sizeof(float) * dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("insufficient data left in message"),
				 errdetail("A vector of %d dimensions needs %d bytes, %d remain.",
						   dim, (int) sizeof(float) * dim,
						   buf->len - buf->cursor)));

	result = InitVector(dim);
	for (i = 0; i < dim; i++)
	{
		result->x[i] = pq_getmsgfloat4(buf);
		CheckElement(result->x[i]);
	}

	PG_RETURN_VECTOR_P(result);
}

/*
 * vector_send(vector)
 */
PG_FUNCTION_INFO_V1(vector_send);
Datum
vector_send(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	StringInfoData buf;
	int			i;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, vec->dim);
	pq_sendint16(&buf, vec->unused);
	for (i = 0; i < vec->dim; i++)
		pq_sendfloat4(&buf, vec->x[i]);

	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * vector(vector, int4, bool): length coercion for vector(n).
 */
PG_FUNCTION_INFO_V1(vector);
Datum
vector(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	int32		typmod = PG_GETARG_INT32(1);

	CheckExpectedDim(typmod, vec->dim);

	PG_RETURN_VECTOR_P(vec);
}

/*
 * array_to_vector(anyarray of int4/float4/float8/numeric, int4, bool)
 */
PG_FUNCTION_INFO_V1(array_to_vector);
Datum
array_to_vector(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	int32		typmod = PG_GETARG_INT32(1);
	Datum	   *elems;
	int			nelems;
	Vector	   *result;
	int			i;

	elems = ivf_array_elements(array, &nelems);
	CheckDim(nelems);
	CheckExpectedDim(typmod, nelems);

	result = InitVector(nelems);
	for (i = 0; i < nelems; i++)
	{
		result->x[i] = ivf_array_element_float4(elems[i], ARR_ELEMTYPE(array),
												i, false);
		CheckElement(result->x[i]);
	}

	PG_RETURN_VECTOR_P(result);
}

/*
 * What array_to_vector and array_to_halfvec share: the elements of a 1-D
 * array without nulls (*nelems of them; the caller checks the count against
 * its type's limits) ...
 */
Datum *
ivf_array_elements(ArrayType *array, int *nelems)
{
	Oid			elemtype = ARR_ELEMTYPE(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("array must be 1-D"),
				 errdetail("The array has %d dimensions.", ARR_NDIM(array))));

	if (ARR_HASNULL(array) && array_contains_nulls(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("array must not contain nulls")));

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign,
					  &elems, &nulls, nelems);
	return elems;
}

/*
 * ... and element i (0-based) of such an array of int4, float4, float8 or
 * numeric as a float4 (as pgvector converts), for a vector or, with half, a
 * halfvec (which the caller rounds).  NaN and infinities are left to the
 * caller's type to refuse.
 */
float
ivf_array_element_float4(Datum elem, Oid elemtype, int i, bool half)
{
	switch (elemtype)
	{
		case INT4OID:
			return (float) DatumGetInt32(elem);
		case FLOAT8OID:
			{
				double		v = DatumGetFloat8(elem);
				float		f = (float) v;

				/*
				 * A finite double too large for float4 is out of range (and
				 * then beyond half too).
				 */
				if (!isinf(v) && isinf(f))
				{
					if (half)
						ereport(ERROR,
								(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
								 errmsg("\"%g\" is out of range for type halfvec", v),
								 errdetail("Element %d does not fit in a 2-byte float (at most %g in magnitude).",
										   i + 1, (double) IVF_HALF_MAX)));
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("\"%g\" is out of range for type vector", v),
							 errdetail("Element %d does not fit in a 4-byte float.",
									   i + 1)));
				}
				return f;
			}
		case FLOAT4OID:
			return DatumGetFloat4(elem);
		case NUMERICOID:
			/* numeric_float4 reports out-of-range values itself */
			return DatumGetFloat4(DirectFunctionCall1(numeric_float4, elem));
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("unsupported array type %s",
							format_type_be(elemtype))));
	}
	return 0.0f;				/* keep compiler quiet */
}

/*
 * vector_to_float4(vector, int4, bool) -> real[]
 */
PG_FUNCTION_INFO_V1(vector_to_float4);
Datum
vector_to_float4(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	Datum	   *datums;
	ArrayType  *result;
	int			i;

	datums = (Datum *) palloc(sizeof(Datum) * vec->dim);
	for (i = 0; i < vec->dim; i++)
		datums[i] = Float4GetDatum(vec->x[i]);

	result = construct_array(datums, vec->dim, FLOAT4OID,
							 sizeof(float4), true, TYPALIGN_INT);

	pfree(datums);
	PG_FREE_IF_COPY(vec, 0);
	PG_RETURN_POINTER(result);
}

/* ---------------- distances ---------------- */

PG_FUNCTION_INFO_V1(l2_distance);
Datum
l2_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	ivf_check_vector_dims(a, b);
	PG_RETURN_FLOAT8(sqrt((double) ivf_kernels.l2sq(a->x, b->x, a->dim)));
}

/* Squared L2: the index orders by it and takes the root only for output. */
PG_FUNCTION_INFO_V1(vector_l2_squared_distance);
Datum
vector_l2_squared_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	ivf_check_vector_dims(a, b);
	PG_RETURN_FLOAT8((double) ivf_kernels.l2sq(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(inner_product);
Datum
inner_product(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	ivf_check_vector_dims(a, b);
	PG_RETURN_FLOAT8((double) ivf_kernels.dot(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(vector_negative_inner_product);
Datum
vector_negative_inner_product(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	ivf_check_vector_dims(a, b);
	PG_RETURN_FLOAT8(-(double) ivf_kernels.dot(a->x, b->x, a->dim));
}

/*
 * 1 - cos(a, b).  A zero vector has no direction: 0/0 gives NaN, which is
 * what pgvector returns too, and NaN sorts after every number.
 */
PG_FUNCTION_INFO_V1(cosine_distance);
Datum
cosine_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	float		dot;
	float		na;
	float		nb;
	double		similarity;

	ivf_check_vector_dims(a, b);
	ivf_kernels.cosine_parts(a->x, b->x, a->dim, &dot, &na, &nb);

	similarity = (double) dot / sqrt((double) na * (double) nb);
	if (isnan(similarity))
		PG_RETURN_FLOAT8(get_float8_nan());

	/* rounding can push |cos| a hair past 1 */
	if (similarity > 1.0)
		similarity = 1.0;
	else if (similarity < -1.0)
		similarity = -1.0;

	PG_RETURN_FLOAT8(1.0 - similarity);
}

/*
 * Angular distance in [0, 1] for vectors of any length; used by the cosine
 * and inner-product opclasses of the index to compare with centroids.
 */
PG_FUNCTION_INFO_V1(vector_spherical_distance);
Datum
vector_spherical_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	double		dot;

	ivf_check_vector_dims(a, b);
	dot = (double) ivf_kernels.dot(a->x, b->x, a->dim);

	if (dot > 1.0)
		dot = 1.0;
	else if (dot < -1.0)
		dot = -1.0;

	PG_RETURN_FLOAT8(acos(dot) / M_PI);
}

PG_FUNCTION_INFO_V1(l1_distance);
Datum
l1_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	ivf_check_vector_dims(a, b);
	PG_RETURN_FLOAT8((double) ivf_kernels.l1(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(vector_dims);
Datum
vector_dims(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);

	PG_RETURN_INT32(a->dim);
}

/* Accumulated in double: a norm is not a hot path and users compare it. */
PG_FUNCTION_INFO_V1(vector_norm);
Datum
vector_norm(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	double		norm = 0.0;
	int			i;

	for (i = 0; i < a->dim; i++)
		norm += (double) a->x[i] * (double) a->x[i];

	PG_RETURN_FLOAT8(sqrt(norm));
}

/* A zero vector stays zero: it has no direction to keep. */
PG_FUNCTION_INFO_V1(l2_normalize);
Datum
l2_normalize(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *result = InitVector(a->dim);
	double		norm = 0.0;
	int			i;

	for (i = 0; i < a->dim; i++)
		norm += (double) a->x[i] * (double) a->x[i];
	norm = sqrt(norm);

	if (norm > 0)
	{
		for (i = 0; i < a->dim; i++)
			result->x[i] = (float) ((double) a->x[i] / norm);
	}

	PG_RETURN_VECTOR_P(result);
}

/* ---------------- arithmetic ---------------- */

PG_FUNCTION_INFO_V1(vector_add);
Datum
vector_add(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;
	int			i;

	ivf_check_vector_dims(a, b);
	result = InitVector(a->dim);
	for (i = 0; i < a->dim; i++)
	{
		result->x[i] = a->x[i] + b->x[i];
		CheckOverflow(result->x[i]);
	}
	PG_RETURN_VECTOR_P(result);
}

PG_FUNCTION_INFO_V1(vector_sub);
Datum
vector_sub(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;
	int			i;

	ivf_check_vector_dims(a, b);
	result = InitVector(a->dim);
	for (i = 0; i < a->dim; i++)
	{
		result->x[i] = a->x[i] - b->x[i];
		CheckOverflow(result->x[i]);
	}
	PG_RETURN_VECTOR_P(result);
}

PG_FUNCTION_INFO_V1(vector_mul);
Datum
vector_mul(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;
	int			i;

	ivf_check_vector_dims(a, b);
	result = InitVector(a->dim);
	for (i = 0; i < a->dim; i++)
	{
		result->x[i] = a->x[i] * b->x[i];
		CheckOverflow(result->x[i]);
		/* a nonzero product that rounds to zero has lost all its value */
		if (result->x[i] == 0 && !(a->x[i] == 0 || b->x[i] == 0))
			float_underflow_error();
	}
	PG_RETURN_VECTOR_P(result);
}

PG_FUNCTION_INFO_V1(vector_concat);
Datum
vector_concat(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;

	CheckDim(a->dim + b->dim);
	result = InitVector(a->dim + b->dim);
	memcpy(result->x, a->x, sizeof(float) * a->dim);
	memcpy(result->x + a->dim, b->x, sizeof(float) * b->dim);
	PG_RETURN_VECTOR_P(result);
}

/* subvector()'s range, for vector and halfvec (vector.h) */
int
ivf_subvector_range(const char *type, int dim, int32 start, int32 count,
					int *first)
{
	int64		end = (int64) start + count;

	if (count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must have at least 1 dimension", type),
				 errdetail("subvector() was asked for %d elements.", count)));

	if (start < 1)
		start = 1;
	if (end > (int64) dim + 1)
		end = (int64) dim + 1;
	if (end - start < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must have at least 1 dimension", type),
				 errdetail("The range lies outside the %s's %d dimensions.",
						   type, dim)));
	*first = start - 1;
	return (int) (end - start);
}

/* subvector(v, start, count): 1-based, clipped to the vector like substr */
PG_FUNCTION_INFO_V1(subvector);
Datum
subvector(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	int			first;
	int			n = ivf_subvector_range("vector", a->dim, PG_GETARG_INT32(1),
										PG_GETARG_INT32(2), &first);
	Vector	   *result = InitVector(n);

	memcpy(result->x, a->x + first, sizeof(float) * n);
	PG_RETURN_VECTOR_P(result);
}

/* ---------------- comparison (btree) ---------------- */

/* Element by element, then the shorter vector first. */
static int
vector_cmp_internal(const Vector *a, const Vector *b)
{
	int			n = Min(a->dim, b->dim);
	int			i;

	for (i = 0; i < n; i++)
	{
		if (a->x[i] < b->x[i])
			return -1;
		if (a->x[i] > b->x[i])
			return 1;
	}
	if (a->dim < b->dim)
		return -1;
	if (a->dim > b->dim)
		return 1;
	return 0;
}

#define VECTOR_CMP_FUNC(name, expr) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	Vector	   *a = PG_GETARG_VECTOR_P(0); \
	Vector	   *b = PG_GETARG_VECTOR_P(1); \
	int			c = vector_cmp_internal(a, b); \
\
	PG_FREE_IF_COPY(a, 0); \
	PG_FREE_IF_COPY(b, 1); \
	expr; \
}

VECTOR_CMP_FUNC(vector_lt, PG_RETURN_BOOL(c < 0))
VECTOR_CMP_FUNC(vector_le, PG_RETURN_BOOL(c <= 0))
VECTOR_CMP_FUNC(vector_eq, PG_RETURN_BOOL(c == 0))
VECTOR_CMP_FUNC(vector_ne, PG_RETURN_BOOL(c != 0))
VECTOR_CMP_FUNC(vector_ge, PG_RETURN_BOOL(c >= 0))
VECTOR_CMP_FUNC(vector_gt, PG_RETURN_BOOL(c > 0))
VECTOR_CMP_FUNC(vector_cmp, PG_RETURN_INT32(c))

/* ---------------- aggregates ---------------- */

/*
 * avg(vector) keeps a float8[] state {n, sum_1, ..., sum_dim}; the initial
 * state {0} learns its dimension from the first vector.  float8 sums keep
 * the mean of many float4 values accurate.
 */
static float8 *
CheckStateArray(ArrayType *statearray, const char *caller)
{
	if (ARR_NDIM(statearray) != 1 ||
		ARR_DIMS(statearray)[0] < 1 ||
		ARR_HASNULL(statearray) ||
		ARR_ELEMTYPE(statearray) != FLOAT8OID)
		elog(ERROR, "%s: expected state array", caller);
	return (float8 *) ARR_DATA_PTR(statearray);
}

static ArrayType *
make_state_array(float8 *values, int n)
{
	Datum	   *datums = (Datum *) palloc(sizeof(Datum) * n);
	int			i;

	for (i = 0; i < n; i++)
		datums[i] = Float8GetDatum(values[i]);
	return construct_array(datums, n, FLOAT8OID, sizeof(float8),
						   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

PG_FUNCTION_INFO_V1(vector_accum);
Datum
vector_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *statearray = PG_GETARG_ARRAYTYPE_P(0);
	Vector	   *newval = PG_GETARG_VECTOR_P(1);
	float8	   *statevalues = CheckStateArray(statearray, "vector_accum");
	int			statelen = ARR_DIMS(statearray)[0];
	int			dim = newval->dim;
	float8	   *result;
	int			i;

	if (statelen != 1 && statelen != dim + 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d",
						statelen - 1, dim)));

	result = (float8 *) palloc0(sizeof(float8) * (dim + 1));
	result[0] = statevalues[0] + 1.0;
	for (i = 0; i < dim; i++)
	{
		double		prev = (statelen == 1) ? 0.0 : statevalues[i + 1];

		result[i + 1] = prev + (double) newval->x[i];
		if (isinf(result[i + 1]))
			float_overflow_error();
	}

	PG_RETURN_POINTER(make_state_array(result, dim + 1));
}

PG_FUNCTION_INFO_V1(vector_combine);
Datum
vector_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *a1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *a2 = PG_GETARG_ARRAYTYPE_P(1);
	float8	   *v1 = CheckStateArray(a1, "vector_combine");
	float8	   *v2 = CheckStateArray(a2, "vector_combine");
	int			n1 = ARR_DIMS(a1)[0];
	int			n2 = ARR_DIMS(a2)[0];
	float8	   *result;
	int			i;

	/* an empty state ({0} or n = 0) contributes nothing */
	if (n1 == 1 || v1[0] == 0)
		PG_RETURN_POINTER(make_state_array(v2, n2));
	if (n2 == 1 || v2[0] == 0)
		PG_RETURN_POINTER(make_state_array(v1, n1));
	if (n1 != n2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d",
						n1 - 1, n2 - 1)));

	result = (float8 *) palloc(sizeof(float8) * n1);
	for (i = 0; i < n1; i++)
	{
		result[i] = v1[i] + v2[i];
		if (isinf(result[i]))
			float_overflow_error();
	}
	PG_RETURN_POINTER(make_state_array(result, n1));
}

PG_FUNCTION_INFO_V1(vector_avg);
Datum
vector_avg(PG_FUNCTION_ARGS)
{
	ArrayType  *statearray = PG_GETARG_ARRAYTYPE_P(0);
	float8	   *statevalues = CheckStateArray(statearray, "vector_avg");
	int			statelen = ARR_DIMS(statearray)[0];
	float8		n = statevalues[0];
	Vector	   *result;
	int			i;

	/* SQL says the average of no rows is NULL */
	if (n == 0.0 || statelen < 2)
		PG_RETURN_NULL();

	CheckDim(statelen - 1);
	result = InitVector(statelen - 1);
	for (i = 0; i < result->dim; i++)
	{
		result->x[i] = (float) (statevalues[i + 1] / n);
		CheckOverflow(result->x[i]);
	}
	PG_RETURN_VECTOR_P(result);
}
