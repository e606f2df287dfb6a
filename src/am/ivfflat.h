/*-------------------------------------------------------------------------
 *
 * ivfflat.h
 *	  The ivfflat index access method: its callbacks (as contrib/bloom's
 *	  bloom.h).  The format is in ivfformat.h, what the callbacks share with
 *	  batch search in the other headers of src/core (see src/README).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFFLAT_H
#define IVF_IVFFLAT_H

#include "compat.h"

#include "access/amapi.h"
#include "access/genam.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"

#include "ivfpage.h"

/* build phases for pg_stat_progress_create_index */
#define IVF_PHASE_SAMPLE	2
#define IVF_PHASE_KMEANS	3
#define IVF_PHASE_ASSIGN	4
#define IVF_PHASE_WRITE		5

/* ivfbuild.c */
extern IndexBuildResult *ivf_build(Relation heap, Relation index,
								   IndexInfo *indexInfo);
extern void ivf_buildempty(Relation index);
extern char *ivf_buildphasename(int64 phasenum);
extern uint32 ivf_lists_for_rows(double rows);

/* ivfcentroidfile.c: the centroids option, read from a Faiss file */
extern float *ivf_faiss_read_centroids(const char *path, uint32 dims,
									   IvfMetric metric, uint32 *nlists);
extern float *ivf_faiss_index_centroids(Relation index, uint32 dims,
										IvfMetric metric, uint32 *nlists);
extern void ivf_refuse_non_regular(const char *path, mode_t mode,
								   const char *why);

/* ivfinsert.c */
extern bool ivf_insert_vector(Relation index, const IvfCache *cache,
							  const float *vec, ItemPointer tid, uint32 *listid);
extern bool ivf_insert(IVF_AMINSERT_PARAMS);

/* ivfscan.c */
extern IndexScanDesc ivf_beginscan(Relation index, int nkeys, int norderbys);
extern void ivf_rescan(IndexScanDesc scan, ScanKey keys, int nkeys,
					   ScanKey orderbys, int norderbys);
extern bool ivf_gettuple(IndexScanDesc scan, ScanDirection dir);
extern void ivf_endscan(IndexScanDesc scan);

/* ivfvacuum.c */
extern IndexBulkDeleteResult *ivf_bulkdelete(IndexVacuumInfo *info,
											 IndexBulkDeleteResult *stats,
											 IndexBulkDeleteCallback callback,
											 void *callback_state);
extern IndexBulkDeleteResult *ivf_vacuumcleanup(IndexVacuumInfo *info,
												IndexBulkDeleteResult *stats);

/* ivfcost.c */
extern void ivf_costestimate(PlannerInfo *root, IndexPath *path,
							 double loop_count, Cost *indexStartupCost,
							 Cost *indexTotalCost,
							 Selectivity *indexSelectivity,
							 double *indexCorrelation, double *indexPages);

/* ivfvalidate.c */
extern bool ivf_validate(Oid opclassoid);

#endif							/* IVF_IVFFLAT_H */
