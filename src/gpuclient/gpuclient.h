/*-------------------------------------------------------------------------
 *
 * gpuclient.h
 *	  The GPU client API: what the access method and batch search call of
 *	  the GPU worker (searches, list invalidation) and what the build calls
 *	  of its k-means client.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_GPUCLIENT_H
#define IVF_GPUCLIENT_H

#include "ivfformat.h"

#include "utils/relcache.h"

extern bool ivf_gpu_worker_enabled;
extern void ivf_gpu_init(void);
extern void ivf_gpu_list_changed(Relation index, uint32 list);
extern int	ivf_gpu_scan_k;
extern bool ivf_gpu_for_scans(void);
typedef struct IvfGpuKmeans IvfGpuKmeans;
extern IvfGpuKmeans *ivf_gpu_kmeans_begin(const float *x, size_t n, size_t d,
										  int metric);
extern int	ivf_gpu_kmeans_assign(void *arg, const float *centroids, size_t k,
								  int32 *assign, float *dist);
extern bool ivf_gpu_assign_centroids(IvfGpuKmeans *km, const float *centroids,
									 size_t k);
extern int	ivf_gpu_assign_points(IvfGpuKmeans *km, const float *x, size_t n,
								  int32 *assign, float *dist);
extern void ivf_gpu_kmeans_end(IvfGpuKmeans *km);
extern bool ivf_gpu_search(Relation index, const IvfMetaPageData *meta,
						   const IvfGeometry *g,
						   int nq, const float *queries, int nprobe,
						   const int32 *probes, const uint64 *limits, int k,
						   float *dist, int64 *ids);

#endif							/* IVF_GPUCLIENT_H */
