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

#include "ivfformat.h"

#include "utils/relcache.h"

extern IvfMetric ivf_index_metric(Relation index);
extern const char *ivf_metric_name(IvfMetric metric);
extern double ivf_distance_value(IvfMetric metric, float d);
extern float ivf_pair_distance(IvfMetric metric, const float *q,
							   const float *x, uint32 d);
extern float *ivf_prepare_vector(Relation index, IvfMetric metric,
								 uint32 dims, Datum value, bool *skip);

#endif							/* IVF_IVFMETRIC_H */
