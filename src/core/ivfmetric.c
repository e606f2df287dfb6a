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
#include "ivfmetric.h"
#include "vector.h"

/* the C functions behind the support procedures, to identify the metric */
extern Datum vector_l2_squared_distance(PG_FUNCTION_ARGS);
extern Datum vector_negative_inner_product(PG_FUNCTION_ARGS);
/* ------------------------------------------------------------------ metric */

IvfMetric
ivf_index_metric(Relation index)
{
	FmgrInfo   *dist = index_getprocinfo(index, 1, IVF_DISTANCE_PROC);
	bool		has_norm = OidIsValid(index_getprocid(index, 1, IVF_NORM_PROC));

	if (dist->fn_addr == vector_l2_squared_distance)
		return IVF_METRIC_L2;
	if (dist->fn_addr == vector_negative_inner_product)
		return has_norm ? IVF_METRIC_COSINE : IVF_METRIC_IP;

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("operator class of index \"%s\" has an unsupported distance function",
					RelationGetRelationName(index)),
			 errhint("Use vector_l2_ops, vector_ip_ops or vector_cosine_ops.")));
	return IVF_METRIC_L2;		/* keep compiler quiet */
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
 * The float form the index stores for a column value: checked against the
 * index's dimensions and, for cosine, normalised.  *skip is set for values
 * that are not indexed (cosine: zero vectors, which have no direction).
 * Returns a palloc'd copy.
 */
float *
ivf_prepare_vector(Relation index, IvfMetric metric, uint32 dims,
				   Datum value, bool *skip)
{
	Vector	   *v = DatumGetVector(value);
	float	   *out;

	*skip = false;
	if (v->dim != (int) dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %u dimensions, not %d", dims, v->dim),
				 errdetail("Index \"%s\" stores %u-dimensional vectors.",
						   RelationGetRelationName(index), dims)));

	out = palloc(sizeof(float) * dims);
	memcpy(out, v->x, sizeof(float) * dims);

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
	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return out;
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
