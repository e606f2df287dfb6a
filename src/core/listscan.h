/*-------------------------------------------------------------------------
 *
 * listscan.h
 *	  The list scanner: distances of a query to every vector of a list.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_LISTSCAN_H
#define IVF_LISTSCAN_H

#include "ivfformat.h"
#include "ivfquantizer.h"
#include "topk.h"

#include "utils/relcache.h"

typedef struct IvfCandidates
{
	/* candidates with their exact distance */
	float	   *dist;
	int64	   *id;				/* ItemPointer packed by ivf_tid_to_id */
	size_t		n;
	size_t		cap;
	MemoryContext cxt;

	/*
	 * Prefilter (codes): slots whose floats were not read because a lower
	 * bound of their distance, lb[i], already ruled them out of the k0
	 * nearest seen so far.  loc[i] = block << 16 | slot, where the vector
	 * was (VACUUM may move it within its group: found again by TID).
	 */
	float	   *lb;
	int64	   *lb_id;
	int64	   *loc;
	size_t		nlb;
	size_t		lbcap;
	float		lbmin;			/* smallest lb[i] (+inf when none) */
	bool		lbnan;			/* some lb[i] is NaN */
	/* the k0 nearest exact candidates so far: the prefilter's bar */
	IvfTopK		kbest;
} IvfCandidates;

extern void ivf_candidates_init(IvfCandidates *c, MemoryContext cxt,
								size_t initial);
extern void ivf_candidates_reset(IvfCandidates *c, int k0);
extern uint64 ivf_list_size(Relation index, const IvfMetaPageData *meta,
							const IvfGeometry *g, uint32 list);
extern int	ivf_cmp_int64(const void *a, const void *b);
extern void ivf_export_list(Relation index, const IvfGeometry *g,
							BlockNumber head, uint32 list, float **vecs,
							int64 **ids, int64 *n);
extern void ivf_prefetch_list_head(Relation index, const IvfGeometry *g,
								   BlockNumber head, bool codes);
extern uint64 ivf_scan_list(Relation index, const IvfGeometry *g,
							IvfMetric metric, BlockNumber head, uint32 list,
							const float *q, uint64 limit, IvfPrefilter *pf,
							IvfCandidates *out);
extern float ivf_member_radius(const float *x, const float *centroid,
							   uint32 d);
extern void ivf_candidates_carry(IvfCandidates *c, const float *dist,
								 const int64 *id, size_t n, const float *lb,
								 const int64 *lb_id, const int64 *loc,
								 size_t nlb);
extern bool ivf_refine_slot(Relation index, const IvfGeometry *g,
							IvfMetric metric, const float *q, int64 loc,
							int64 id, float *dist);
extern void ivf_scan_list_multi(Relation index, const IvfGeometry *g,
								IvfMetric metric, BlockNumber head,
								uint32 list, const float *queries,
								const int32 *qidx, const uint64 *limits,
								uint32 nq, IvfTopK *heaps);
extern uint64 ivf_list_slots(Relation index, BlockNumber head);

#endif							/* IVF_LISTSCAN_H */
