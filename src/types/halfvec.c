/*-------------------------------------------------------------------------
 *
 * halfvec.c
 *	  The halfvec type: I/O, typmod, casts, distances, arithmetic,
 *	  comparison and aggregate support.
 *
 * Interchangeable with pgvector's type of the same name: the same text
 * and binary forms, typmod rules, function and operator names, and the
 * same error messages (with the element's position added as a detail).
 * Every conversion to half precision goes through the dispatched kernels
 * (half.h): round to nearest even, and a result that is not a finite half
 * is an error, never a stored infinity.
 *
 * Arithmetic is done in float and rounded once to half, as pgvector's
 * portable build does; distances widen to float and use the float
 * kernels, so results may differ from pgvector's in the last bits of the
 * float sum, as between pgvector's own builds.
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
#include "halfvec.h"
#include "vector.h"
#include "vector_parse.h"

HalfVector *
InitHalfVector(int dim)
{
	HalfVector *result;
	int			size = HALFVEC_SIZE(dim);

	result = (HalfVector *) palloc0(size);
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
				 errmsg("halfvec must have at least 1 dimension")));
	if (dim > HALFVEC_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("halfvec cannot have more than %d dimensions",
						HALFVEC_MAX_DIM)));
}

static inline void
CheckExpectedDim(int32 typmod, int dim)
{
	if (typmod != -1 && typmod != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", typmod, dim)));
}

static inline void
CheckDims(const HalfVector *a, const HalfVector *b)
{
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different halfvec dimensions %d and %d",
						a->dim, b->dim)));
}

/* A stored pattern must be finite (binary input is checked with this). */
static inline void
CheckElement(uint16 h, int i)
{
	if ((h & 0x7C00) != 0x7C00)
		return;
	if ((h & 0x03FF) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("NaN not allowed in halfvec"),
				 errdetail("Element %d is NaN.", i + 1)));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("infinite value not allowed in halfvec"),
			 errdetail("Element %d is %sInfinity.", i + 1,
					   (h & 0x8000) ? "-" : "")));
}

/*
 * Element i (0-based) with value f could not be made a finite half.
 * valuetext is how the user wrote it, when known.
 */
static void
report_half_error(float f, int i, const char *valuetext)
{
	uint16		h;
	char		buf[FLOAT_SHORTEST_DECIMAL_LEN];

	switch (ivf_float_to_half(f, &h))
	{
		case IVF_HALF_NAN:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("NaN not allowed in halfvec"),
					 errdetail("Element %d is NaN.", i + 1)));
			break;
		case IVF_HALF_INFINITE:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("infinite value not allowed in halfvec"),
					 errdetail("Element %d is %sInfinity.", i + 1,
							   f < 0 ? "-" : "")));
			break;
		case IVF_HALF_OVERFLOW:
			if (valuetext == NULL)
			{
				float_to_shortest_decimal_buf(f, buf);
				valuetext = buf;
			}
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("\"%s\" is out of range for type halfvec", valuetext),
					 errdetail("Element %d does not fit in a 2-byte float (at most %g in magnitude).",
							   i + 1, (double) IVF_HALF_MAX)));
			break;
		case IVF_HALF_OK:
			break;
	}
	elog(ERROR, "element %d of halfvec converted without error", i + 1);
}

HalfVector *
ivf_halfvec_from_floats(const float *x, int dim)
{
	HalfVector *result = InitHalfVector(dim);
	size_t		bad = ivf_kernels.float_to_half(x, result->x, dim);

	if (bad < (size_t) dim)
		report_half_error(x[bad], (int) bad, NULL);
	return result;
}

void
ivf_halfvec_to_floats(const HalfVector *v, float *out)
{
	ivf_kernels.half_to_float(v->x, out, v->dim);
}

/* a palloc'd float copy of v */
static float *
halfvec_floats(const HalfVector *v)
{
	float	   *out = (float *) palloc(sizeof(float) * Max(v->dim, 1));

	ivf_halfvec_to_floats(v, out);
	return out;
}

/* ---------------- text form ---------------- */

static void
report_parse_error(const char *str, const IvfParseResult *r)
{
	char	   *lit = ivf_literal_for_error(str);

	switch (r->status)
	{
		case IVF_PARSE_NO_OPEN_BRACKET:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type halfvec: \"%s\"", lit),
					 errdetail("Vector contents must start with \"[\".")));
			break;
		case IVF_PARSE_BAD_NUMBER:
			if (r->errlen == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid input syntax for type halfvec: \"%s\"", lit),
						 errdetail("Element %d is missing.", r->ndim + 1)));
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid input syntax for type halfvec: \"%s\"", lit),
						 errdetail("Element %d, \"%s\", is not a number.",
								   r->ndim + 1, ivf_token_for_error(str, r))));
			break;
		case IVF_PARSE_BAD_SEPARATOR:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type halfvec: \"%s\"", lit),
					 errdetail("Expected \",\" or \"]\" after element %d, found \"%c\".",
							   r->ndim, str[r->errpos])));
			break;
		case IVF_PARSE_UNTERMINATED:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type halfvec: \"%s\"", lit),
					 errdetail("Unexpected end of input; vector contents must end with \"]\".")));
			break;
		case IVF_PARSE_JUNK_AFTER:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type halfvec: \"%s\"", lit),
					 errdetail("Junk after closing right brace.")));
			break;
		case IVF_PARSE_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("halfvec must have at least 1 dimension")));
			break;
		case IVF_PARSE_TOO_MANY:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("halfvec cannot have more than %d dimensions",
							HALFVEC_MAX_DIM)));
			break;
		case IVF_PARSE_NAN:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("NaN not allowed in halfvec"),
					 errdetail("Element %d is \"%s\".",
							   r->ndim + 1, ivf_token_for_error(str, r))));
			break;
		case IVF_PARSE_INFINITE:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("infinite value not allowed in halfvec"),
					 errdetail("Element %d is \"%s\".",
							   r->ndim + 1, ivf_token_for_error(str, r))));
			break;
		case IVF_PARSE_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("\"%s\" is out of range for type halfvec",
							ivf_token_for_error(str, r)),
					 errdetail("Element %d does not fit in a 4-byte float.",
							   r->ndim + 1)));
			break;
		case IVF_PARSE_OK:
			break;
	}
	elog(ERROR, "unexpected halfvec parse status %d", (int) r->status);
}

/*
 * The text of element i (0-based) of a literal that parsed: the number
 * strtof reads there, as ivf_parse_vector read it.  Error path only.
 */
static char *
element_text(const char *str, int i)
{
	const char *pt = str;
	int			k;

	while (*pt != '\0' && *pt != '[')
		pt++;
	if (*pt == '[')
		pt++;
	for (k = 0;; k++)
	{
		char	   *end;

		while (*pt == ' ' || *pt == '\t' || *pt == '\n' || *pt == '\r' ||
			   *pt == '\v' || *pt == '\f')
			pt++;
		(void) strtof(pt, &end);
		if (end == pt)
			return NULL;
		if (k == i)
			return pnstrdup(pt, Min(end - pt, IVF_ERROR_QUOTE_MAX));
		pt = end;
		while (*pt != '\0' && *pt != ',')
			pt++;
		if (*pt == '\0')
			return NULL;
		pt++;
	}
}

/*
 * halfvec_in(cstring, oid, int4): parsed as floats (the vector type's
 * parser), then rounded to half precision.
 */
PG_FUNCTION_INFO_V1(halfvec_in);
Datum
halfvec_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			capacity;
	float	   *x;
	IvfParseResult r;
	HalfVector *result;
	size_t		bad;

	capacity = Min(ivf_vector_count_upper_bound(str), HALFVEC_MAX_DIM);
	x = (float *) palloc(sizeof(float) * capacity);

	r = ivf_parse_vector(str, x, capacity, HALFVEC_MAX_DIM);
	if (r.status != IVF_PARSE_OK)
		report_parse_error(str, &r);

	result = InitHalfVector(r.ndim);
	bad = ivf_kernels.float_to_half(x, result->x, r.ndim);
	if (bad < (size_t) r.ndim)
		report_half_error(x[bad], (int) bad, element_text(str, (int) bad));

	CheckExpectedDim(typmod, r.ndim);
	pfree(x);

	PG_RETURN_HALFVEC_P(result);
}

/*
 * halfvec_out(halfvec): each element as the shortest text that reads back
 * to the same float4 (pgvector prints halves this way too).
 */
PG_FUNCTION_INFO_V1(halfvec_out);
Datum
halfvec_out(PG_FUNCTION_ARGS)
{
	HalfVector *vector = PG_GETARG_HALFVEC_P(0);
	int			dim = vector->dim;
	float	   *x = halfvec_floats(vector);
	char	   *buf;
	char	   *ptr;
	int			i;

	/* dim numbers, dim - 1 commas, "[", "]" and the terminator */
	buf = (char *) palloc((Size) FLOAT_SHORTEST_DECIMAL_LEN * dim + 3);
	ptr = buf;
	*ptr++ = '[';
	for (i = 0; i < dim; i++)
	{
		if (i > 0)
			*ptr++ = ',';
		ptr += float_to_shortest_decimal_bufn(x[i], ptr);
	}
	*ptr++ = ']';
	*ptr = '\0';

	PG_FREE_IF_COPY(vector, 0);
	PG_RETURN_CSTRING(buf);
}

PG_FUNCTION_INFO_V1(halfvec_typmod_in);
Datum
halfvec_typmod_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(ivf_dims_typmod_in(PG_GETARG_ARRAYTYPE_P(0), "halfvec",
									   HALFVEC_MAX_DIM));
}

/*
 * halfvec_recv(internal, oid, int4): int16 dim, int16 unused (must be 0),
 * dim big-endian binary16 patterns, each finite.
 */
PG_FUNCTION_INFO_V1(halfvec_recv);
Datum
halfvec_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	int16		dim;
	int16		unused;
	HalfVector *result;
	int			i;

	dim = (int16) pq_getmsgint(buf, sizeof(int16));
	unused = (int16) pq_getmsgint(buf, sizeof(int16));

	CheckDim(dim);
	CheckExpectedDim(typmod, dim);
	if (unused != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("expected unused to be 0, not %d", unused)));
	/* fail before allocating if the message cannot hold dim halves */
	if (buf->len - buf->cursor < (int) sizeof(uint16) * dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("insufficient data left in message"),
				 errdetail("A halfvec of %d dimensions needs %d bytes, %d remain.",
						   dim, (int) sizeof(uint16) * dim,
						   buf->len - buf->cursor)));

	result = InitHalfVector(dim);
	for (i = 0; i < dim; i++)
	{
		result->x[i] = (uint16) pq_getmsgint(buf, sizeof(uint16));
		CheckElement(result->x[i], i);
	}

	PG_RETURN_HALFVEC_P(result);
}

PG_FUNCTION_INFO_V1(halfvec_send);
Datum
halfvec_send(PG_FUNCTION_ARGS)
{
	HalfVector *vec = PG_GETARG_HALFVEC_P(0);
	StringInfoData buf;
	int			i;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, vec->dim);
	pq_sendint16(&buf, vec->unused);
	for (i = 0; i < vec->dim; i++)
		pq_sendint16(&buf, vec->x[i]);

	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* ---------------- casts ---------------- */

/* halfvec(halfvec, int4, bool): length coercion for halfvec(n) */
PG_FUNCTION_INFO_V1(halfvec);
Datum
halfvec(PG_FUNCTION_ARGS)
{
	HalfVector *vec = PG_GETARG_HALFVEC_P(0);
	int32		typmod = PG_GETARG_INT32(1);

	CheckExpectedDim(typmod, vec->dim);

	PG_RETURN_HALFVEC_P(vec);
}

/*
 * array_to_halfvec(int4[] / float4[] / float8[] / numeric[], int4, bool):
 * each element as a float4 first (as pgvector does), then rounded to half.
 */
PG_FUNCTION_INFO_V1(array_to_halfvec);
Datum
array_to_halfvec(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	int32		typmod = PG_GETARG_INT32(1);
	Datum	   *elems;
	int			nelems;
	float	   *x;
	HalfVector *result;
	int			i;

	elems = ivf_array_elements(array, &nelems);
	CheckDim(nelems);
	CheckExpectedDim(typmod, nelems);

	x = (float *) palloc(sizeof(float) * nelems);
	for (i = 0; i < nelems; i++)
		x[i] = ivf_array_element_float4(elems[i], ARR_ELEMTYPE(array), i, true);

	result = ivf_halfvec_from_floats(x, nelems);
	pfree(x);
	PG_RETURN_HALFVEC_P(result);
}

PG_FUNCTION_INFO_V1(halfvec_to_float4);
Datum
halfvec_to_float4(PG_FUNCTION_ARGS)
{
	HalfVector *vec = PG_GETARG_HALFVEC_P(0);
	float	   *x = halfvec_floats(vec);
	Datum	   *datums = (Datum *) palloc(sizeof(Datum) * vec->dim);
	ArrayType  *result;
	int			i;

	for (i = 0; i < vec->dim; i++)
		datums[i] = Float4GetDatum(x[i]);
	result = construct_array(datums, vec->dim, FLOAT4OID, sizeof(float4),
							 true, TYPALIGN_INT);

	PG_RETURN_POINTER(result);
}

PG_FUNCTION_INFO_V1(halfvec_to_vector);
Datum
halfvec_to_vector(PG_FUNCTION_ARGS)
{
	HalfVector *vec = PG_GETARG_HALFVEC_P(0);
	int32		typmod = PG_GETARG_INT32(1);
	Vector	   *result;

	CheckDim(vec->dim);
	CheckExpectedDim(typmod, vec->dim);

	result = InitVector(vec->dim);
	ivf_halfvec_to_floats(vec, result->x);

	PG_RETURN_VECTOR_P(result);
}

PG_FUNCTION_INFO_V1(vector_to_halfvec);
Datum
vector_to_halfvec(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	int32		typmod = PG_GETARG_INT32(1);

	CheckDim(vec->dim);
	CheckExpectedDim(typmod, vec->dim);

	PG_RETURN_HALFVEC_P(ivf_halfvec_from_floats(vec->x, vec->dim));
}

/* ---------------- distances ---------------- */

PG_FUNCTION_INFO_V1(halfvec_l2_distance);
Datum
halfvec_l2_distance(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);

	CheckDims(a, b);
	PG_RETURN_FLOAT8(sqrt((double) ivf_kernels.l2sq_f16(halfvec_floats(a),
														b->x, a->dim)));
}

PG_FUNCTION_INFO_V1(halfvec_l2_squared_distance);
Datum
halfvec_l2_squared_distance(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);

	CheckDims(a, b);
	PG_RETURN_FLOAT8((double) ivf_kernels.l2sq_f16(halfvec_floats(a),
												   b->x, a->dim));
}

PG_FUNCTION_INFO_V1(halfvec_inner_product);
Datum
halfvec_inner_product(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);

	CheckDims(a, b);
	PG_RETURN_FLOAT8((double) ivf_kernels.dot_f16(halfvec_floats(a),
												  b->x, a->dim));
}

PG_FUNCTION_INFO_V1(halfvec_negative_inner_product);
Datum
halfvec_negative_inner_product(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);

	CheckDims(a, b);
	PG_RETURN_FLOAT8((double) -ivf_kernels.dot_f16(halfvec_floats(a),
												   b->x, a->dim));
}

/* 1 - cos(a, b); NaN for a zero vector, as for vector and in pgvector */
PG_FUNCTION_INFO_V1(halfvec_cosine_distance);
Datum
halfvec_cosine_distance(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);
	float		dot;
	float		na;
	float		nb;
	double		similarity;

	CheckDims(a, b);
	ivf_kernels.cosine_parts(halfvec_floats(a), halfvec_floats(b), a->dim,
							 &dot, &na, &nb);

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

/* angular distance in [0, 1], for unit vectors (as vector's) */
PG_FUNCTION_INFO_V1(halfvec_spherical_distance);
Datum
halfvec_spherical_distance(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);
	double		dot;

	CheckDims(a, b);
	dot = (double) ivf_kernels.dot_f16(halfvec_floats(a), b->x, a->dim);

	if (dot > 1.0)
		dot = 1.0;
	else if (dot < -1.0)
		dot = -1.0;

	PG_RETURN_FLOAT8(acos(dot) / M_PI);
}

PG_FUNCTION_INFO_V1(halfvec_l1_distance);
Datum
halfvec_l1_distance(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);

	CheckDims(a, b);
	PG_RETURN_FLOAT8((double) ivf_kernels.l1(halfvec_floats(a),
											 halfvec_floats(b), a->dim));
}

PG_FUNCTION_INFO_V1(halfvec_vector_dims);
Datum
halfvec_vector_dims(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);

	PG_RETURN_INT32(a->dim);
}

/* accumulated in double, as pgvector does */
static double
halfvec_norm(const float *x, int dim)
{
	double		norm = 0.0;
	int			i;

	for (i = 0; i < dim; i++)
		norm += (double) x[i] * (double) x[i];
	return sqrt(norm);
}

PG_FUNCTION_INFO_V1(halfvec_l2_norm);
Datum
halfvec_l2_norm(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);

	PG_RETURN_FLOAT8(halfvec_norm(halfvec_floats(a), a->dim));
}

/* A zero vector stays zero: it has no direction to keep. */
PG_FUNCTION_INFO_V1(halfvec_l2_normalize);
Datum
halfvec_l2_normalize(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	float	   *x = halfvec_floats(a);
	double		norm = halfvec_norm(x, a->dim);
	HalfVector *result;
	int			i;

	if (norm == 0)
		PG_RETURN_HALFVEC_P(InitHalfVector(a->dim));

	for (i = 0; i < a->dim; i++)
		x[i] = (float) ((double) x[i] / norm);
	result = InitHalfVector(a->dim);
	/* a subnormal input can make its unit vector overflow */
	if (ivf_kernels.float_to_half(x, result->x, a->dim) < (size_t) a->dim)
		float_overflow_error();

	PG_RETURN_HALFVEC_P(result);
}

/* ---------------- arithmetic ---------------- */

typedef enum HalfvecOp
{
	HALFVEC_ADD,
	HALFVEC_SUB,
	HALFVEC_MUL
} HalfvecOp;

/*
 * Element by element in float, each result rounded once to half (so the
 * same bits as pgvector's portable build); a result beyond the half range
 * is an overflow, a nonzero product that rounds to zero an underflow.
 */
static HalfVector *
halfvec_arith(HalfVector *a, HalfVector *b, HalfvecOp op)
{
	float	   *x = halfvec_floats(a);
	float	   *y = halfvec_floats(b);
	HalfVector *result;
	int			i;

	CheckDims(a, b);
	for (i = 0; i < a->dim; i++)
	{
		switch (op)
		{
			case HALFVEC_ADD:
				x[i] = x[i] + y[i];
				break;
			case HALFVEC_SUB:
				x[i] = x[i] - y[i];
				break;
			case HALFVEC_MUL:
				x[i] = x[i] * y[i];
				break;
		}
	}
	result = InitHalfVector(a->dim);
	if (ivf_kernels.float_to_half(x, result->x, a->dim) < (size_t) a->dim)
		float_overflow_error();
	if (op == HALFVEC_MUL)
	{
		for (i = 0; i < a->dim; i++)
		{
			if ((result->x[i] & 0x7FFF) == 0 && x[i] != 0)
				float_underflow_error();
		}
	}
	return result;
}

PG_FUNCTION_INFO_V1(halfvec_add);
Datum
halfvec_add(PG_FUNCTION_ARGS)
{
	PG_RETURN_HALFVEC_P(halfvec_arith(PG_GETARG_HALFVEC_P(0),
									  PG_GETARG_HALFVEC_P(1), HALFVEC_ADD));
}

PG_FUNCTION_INFO_V1(halfvec_sub);
Datum
halfvec_sub(PG_FUNCTION_ARGS)
{
	PG_RETURN_HALFVEC_P(halfvec_arith(PG_GETARG_HALFVEC_P(0),
									  PG_GETARG_HALFVEC_P(1), HALFVEC_SUB));
}

PG_FUNCTION_INFO_V1(halfvec_mul);
Datum
halfvec_mul(PG_FUNCTION_ARGS)
{
	PG_RETURN_HALFVEC_P(halfvec_arith(PG_GETARG_HALFVEC_P(0),
									  PG_GETARG_HALFVEC_P(1), HALFVEC_MUL));
}

PG_FUNCTION_INFO_V1(halfvec_concat);
Datum
halfvec_concat(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);
	HalfVector *result;

	CheckDim(a->dim + b->dim);
	result = InitHalfVector(a->dim + b->dim);
	memcpy(result->x, a->x, sizeof(uint16) * a->dim);
	memcpy(result->x + a->dim, b->x, sizeof(uint16) * b->dim);
	PG_RETURN_HALFVEC_P(result);
}

/* subvector(v, start, count): 1-based, clipped to the vector like substr */
PG_FUNCTION_INFO_V1(halfvec_subvector);
Datum
halfvec_subvector(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	int			first;
	int			n = ivf_subvector_range("halfvec", a->dim, PG_GETARG_INT32(1),
										PG_GETARG_INT32(2), &first);
	HalfVector *result = InitHalfVector(n);

	memcpy(result->x, a->x + first, sizeof(uint16) * n);
	PG_RETURN_HALFVEC_P(result);
}

/* ---------------- comparison (btree) ---------------- */

/* By value (so -0 = 0), element by element, then the shorter first. */
static int
halfvec_cmp_internal(const HalfVector *a, const HalfVector *b)
{
	int			n = Min(a->dim, b->dim);
	int			i;

	for (i = 0; i < n; i++)
	{
		float		x = ivf_half_to_float(a->x[i]);
		float		y = ivf_half_to_float(b->x[i]);

		if (x < y)
			return -1;
		if (x > y)
			return 1;
	}
	if (a->dim < b->dim)
		return -1;
	if (a->dim > b->dim)
		return 1;
	return 0;
}

#define HALFVEC_CMP_FUNC(name, expr) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	HalfVector *a = PG_GETARG_HALFVEC_P(0); \
	HalfVector *b = PG_GETARG_HALFVEC_P(1); \
	int			c = halfvec_cmp_internal(a, b); \
\
	PG_FREE_IF_COPY(a, 0); \
	PG_FREE_IF_COPY(b, 1); \
	expr; \
}

HALFVEC_CMP_FUNC(halfvec_lt, PG_RETURN_BOOL(c < 0))
HALFVEC_CMP_FUNC(halfvec_le, PG_RETURN_BOOL(c <= 0))
HALFVEC_CMP_FUNC(halfvec_eq, PG_RETURN_BOOL(c == 0))
HALFVEC_CMP_FUNC(halfvec_ne, PG_RETURN_BOOL(c != 0))
HALFVEC_CMP_FUNC(halfvec_ge, PG_RETURN_BOOL(c >= 0))
HALFVEC_CMP_FUNC(halfvec_gt, PG_RETURN_BOOL(c > 0))
HALFVEC_CMP_FUNC(halfvec_cmp, PG_RETURN_INT32(c))

/* ---------------- aggregates ---------------- */

/*
 * avg(halfvec) keeps the same float8[] state as avg(vector), {n, sum_1,
 * ..., sum_dim}, and shares its combine function (vector_combine).
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

PG_FUNCTION_INFO_V1(halfvec_accum);
Datum
halfvec_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *statearray = PG_GETARG_ARRAYTYPE_P(0);
	HalfVector *newval = PG_GETARG_HALFVEC_P(1);
	float8	   *statevalues = CheckStateArray(statearray, "halfvec_accum");
	int			statelen = ARR_DIMS(statearray)[0];
	int			dim = newval->dim;
	float	   *x = halfvec_floats(newval);
	Datum	   *datums;
	int			i;

	if (statelen != 1)
		CheckExpectedDim(statelen - 1, dim);

	datums = (Datum *) palloc(sizeof(Datum) * (dim + 1));
	datums[0] = Float8GetDatum(statevalues[0] + 1.0);
	for (i = 0; i < dim; i++)
	{
		double		v = ((statelen == 1) ? 0.0 : statevalues[i + 1]) + (double) x[i];

		if (isinf(v))
			float_overflow_error();
		datums[i + 1] = Float8GetDatum(v);
	}

	PG_RETURN_ARRAYTYPE_P(construct_array(datums, dim + 1, FLOAT8OID,
										  sizeof(float8), FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}

PG_FUNCTION_INFO_V1(halfvec_avg);
Datum
halfvec_avg(PG_FUNCTION_ARGS)
{
	ArrayType  *statearray = PG_GETARG_ARRAYTYPE_P(0);
	float8	   *statevalues = CheckStateArray(statearray, "halfvec_avg");
	int			statelen = ARR_DIMS(statearray)[0];
	float8		n = statevalues[0];
	float	   *x;
	int			i;

	/* SQL says the average of no rows is NULL */
	if (n == 0.0 || statelen < 2)
		PG_RETURN_NULL();

	CheckDim(statelen - 1);
	x = (float *) palloc(sizeof(float) * (statelen - 1));
	for (i = 0; i < statelen - 1; i++)
		x[i] = (float) (statevalues[i + 1] / n);

	PG_RETURN_HALFVEC_P(ivf_halfvec_from_floats(x, statelen - 1));
}
