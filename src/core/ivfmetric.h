/*-------------------------------------------------------------------------
 *
 * ivfmetric.h
 *	  The index's metric (from its operator class), the values of its
 *	  ordering operators, and the float form of a column value.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFMETRIC_H
#define IVF_IVFMETRIC_H

#include "distance.h"
#include "ivfformat.h"

#include "utils/relcache.h"

extern IvfMetric ivf_index_metric(Relation index);
extern IvfElemType ivf_index_elem(Relation index);
extern const char *ivf_elem_name(IvfElemType elem);
extern const char *ivf_metric_name(IvfMetric metric);
extern double ivf_distance_value(IvfMetric metric, float d);
extern float ivf_pair_distance(IvfMetric metric, const float *q,
							   const float *x, uint32 d);
extern void ivf_store_elems(IvfElemType elem, void *dst, const float *src,
							size_t n);
extern void ivf_load_elems(IvfElemType elem, float *dst, const void *src,
						   size_t n);
extern float *ivf_prepare_datum(Relation index, IvfMetric metric,
								IvfElemType elem, uint32 dims, Datum value,
								bool *skip);
extern void ivf_round_to_elem(IvfElemType elem, float *x, uint32 dims);

/* ivf_pair_distance against a stored vector x of elements elem */
static inline float
ivf_pair_distance_elem(IvfMetric metric, IvfElemType elem, const float *q,
					   const void *x, uint32 d)
{
	if (elem == IVF_ELEM_FLOAT)
		return ivf_pair_distance(metric, q, (const float *) x, d);
	if (metric == IVF_METRIC_L2)
		return ivf_kernels.l2sq_f16(q, (const uint16_t *) x, d);
	return -ivf_kernels.dot_f16(q, (const uint16_t *) x, d);
}

/*
 * Distances of q to the n rows of a block of stored vectors (row i at
 * x + i * d elements): squared L2 for l2, dot otherwise (the caller
 * negates), as the block kernels return them.
 */
static inline void
ivf_block_distances(IvfMetric metric, IvfElemType elem, const float *q,
					const void *x, size_t n, size_t d, float *out)
{
	if (elem == IVF_ELEM_HALF)
	{
		if (metric == IVF_METRIC_L2)
			ivf_kernels.l2sq_f16_block(q, (const uint16_t *) x, n, d, out);
		else
			ivf_kernels.dot_f16_block(q, (const uint16_t *) x, n, d, out);
	}
	else if (metric == IVF_METRIC_L2)
		ivf_kernels.l2sq_block(q, (const float *) x, n, d, out);
	else
		ivf_kernels.dot_block(q, (const float *) x, n, d, out);
}

#endif							/* IVF_IVFMETRIC_H */
