/*-------------------------------------------------------------------------
 *
 * ivfmetric.c
 *	  The index's metric (from its operator class's support procedures), the
 *	  values of its ordering operators, and the float form the index stores
 *	  for a column value.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>

#include "access/genam.h"
#include "fmgr.h"
#include "utils/rel.h"

#include "distance.h"
#include "ivfformat.h"
#include "half.h"
#include "halfvec.h"
#include "ivfmetric.h"
#include "vector.h"

/*
 * The C functions behind the support procedures, to identify the metric
 * and the element type (vector: float, halfvec: half)
 */
extern Datum vector_l2_squared_distance(PG_FUNCTION_ARGS);
extern Datum vector_negative_inner_product(PG_FUNCTION_ARGS);
extern Datum halfvec_l2_squared_distance(PG_FUNCTION_ARGS);
extern Datum halfvec_negative_inner_product(PG_FUNCTION_ARGS);
/* ------------------------------------------------------------------ metric */

IvfMetric
ivf_index_metric(Relation index)
{
	FmgrInfo   *dist = index_getprocinfo(index, 1, IVF_DISTANCE_PROC);
	bool		has_norm = OidIsValid(index_getprocid(index, 1, IVF_NORM_PROC));

	if (dist->fn_addr == vector_l2_squared_distance ||
		dist->fn_addr == halfvec_l2_squared_distance)
		return IVF_METRIC_L2;
	if (dist->fn_addr == vector_negative_inner_product ||
		dist->fn_addr == halfvec_negative_inner_product)
		return has_norm ? IVF_METRIC_COSINE : IVF_METRIC_IP;

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("operator class of index \"%s\" has an unsupported distance function",
					RelationGetRelationName(index)),
			 errhint("Use vector_l2_ops, vector_ip_ops, vector_cosine_ops or their halfvec_* forms.")));
	return IVF_METRIC_L2;		/* keep compiler quiet */
}

/*
 * The element type the operator class indexes: half for the halfvec
 * classes (their distance function is ivf.so's halfvec one), else float.
 * ivf_index_metric has already refused any other function.
 */
IvfElemType
ivf_index_elem(Relation index)
{
	FmgrInfo   *dist = index_getprocinfo(index, 1, IVF_DISTANCE_PROC);

	if (dist->fn_addr == halfvec_l2_squared_distance ||
		dist->fn_addr == halfvec_negative_inner_product)
		return IVF_ELEM_HALF;
	return IVF_ELEM_FLOAT;
}

const char *
ivf_elem_name(IvfElemType elem)
{
	return elem == IVF_ELEM_HALF ? "halfvec" : "vector";
}

/*
 * The value of the ORDER BY operator (<->, <#>, <=>) for an internal
 * distance: squared L2 for l2, -dot otherwise (vectors unit length for
 * cosine).
 */
double
ivf_distance_value(IvfMetric metric, float d)
{
	switch (metric)
	{
		case IVF_METRIC_L2:
			return sqrt((double) d);
		case IVF_METRIC_IP:
			return (double) d;
		case IVF_METRIC_COSINE:
			return 1.0 + (double) d;
	}
	return (double) d;
}

const char *
ivf_metric_name(IvfMetric metric)
{
	switch (metric)
	{
		case IVF_METRIC_L2:
			return "l2";
		case IVF_METRIC_IP:
			return "inner_product";
		case IVF_METRIC_COSINE:
			return "cosine";
	}
	return "unknown";
}

/* ------------------------------------------------------------- vectors */

/*
 * The float form of a column value: checked against the index's
 * dimensions and, for cosine, normalised.  'elem' is the type of the datum
 * (a halfvec is widened, exactly).  *skip is set for values that are not
 * indexed (cosine: zero vectors, which have no direction).  Returns a
 * palloc'd copy.
 */
float *
ivf_prepare_datum(Relation index, IvfMetric metric, IvfElemType elem,
				  uint32 dims, Datum value, bool *skip)
{
	float	   *out;
	int			dim;
	Pointer		detoasted;

	*skip = false;
	if (elem == IVF_ELEM_HALF)
	{
		HalfVector *h = DatumGetHalfVector(value);

		detoasted = (Pointer) h;
		dim = h->dim;
	}
	else
	{
		Vector	   *v = DatumGetVector(value);

		detoasted = (Pointer) v;
		dim = v->dim;
	}
	if (dim != (int) dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %u dimensions, not %d", dims, dim),
				 errdetail("Index \"%s\" stores %u-dimensional vectors.",
						   RelationGetRelationName(index), dims)));

	out = palloc(sizeof(float) * dims);
	if (elem == IVF_ELEM_HALF)
		ivf_halfvec_to_floats((HalfVector *) detoasted, out);
	else
		memcpy(out, ((Vector *) detoasted)->x, sizeof(float) * dims);

	if (metric == IVF_METRIC_COSINE)
	{
		double		norm = 0.0;
		uint32		i;

		for (i = 0; i < dims; i++)
			norm += (double) out[i] * (double) out[i];
		norm = sqrt(norm);
		if (norm == 0.0)
		{
			*skip = true;
			return out;
		}
		for (i = 0; i < dims; i++)
			out[i] = (float) ((double) out[i] / norm);
	}
	if (detoasted != DatumGetPointer(value))
		pfree(detoasted);
	return out;
}

/*
 * Round a prepared vector to what a half index stores (in place), so that
 * everything computed from it -- its list, radius and code -- describes
 * the stored vector.  Unit vectors (cosine) and halfvec values are always
 * in the half range.
 */
void
ivf_round_to_elem(IvfElemType elem, float *x, uint32 dims)
{
	uint16	   *h;

	if (elem != IVF_ELEM_HALF)
		return;
	h = palloc(sizeof(uint16) * dims);
	if (ivf_kernels.float_to_half(x, h, dims) != dims)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("value out of range: overflow")));
	ivf_kernels.half_to_float(h, x, dims);
	pfree(h);
}

/* distance of q to x in the scan's convention: squared L2, or -dot */
float
ivf_pair_distance(IvfMetric metric, const float *q, const float *x,
				  uint32 d)
{
	if (metric == IVF_METRIC_L2)
		return ivf_kernels.l2sq(q, x, d);
	return -ivf_kernels.dot(q, x, d);
}

/* store n elements of a float vector as elements 'elem' at dst */
void
ivf_store_elems(IvfElemType elem, void *dst, const float *src, size_t n)
{
	if (elem == IVF_ELEM_HALF)
		(void) ivf_kernels.float_to_half(src, (uint16_t *) dst, n);
	else
		memcpy(dst, src, sizeof(float) * n);
}

/* read n stored elements 'elem' at src as floats */
void
ivf_load_elems(IvfElemType elem, float *dst, const void *src, size_t n)
{
	if (elem == IVF_ELEM_HALF)
		ivf_kernels.half_to_float((const uint16_t *) src, dst, n);
	else
		memcpy(dst, src, sizeof(float) * n);
}
