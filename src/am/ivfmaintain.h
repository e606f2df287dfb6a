/*-------------------------------------------------------------------------
 *
 * ivfmaintain.h
 *	  The maintainer of an adaptive index's lists (src/README "Self-balancing
 *	  lists"): splits of the lists above the bound, run by amvacuumcleanup
 *	  and ivf_rebalance().
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFMAINTAIN_H
#define IVF_IVFMAINTAIN_H

#include "compat.h"

#include "utils/relcache.h"

#include "ivfformat.h"

/* what one maintenance run did (ivf_rebalance's row) */
typedef struct IvfMaintainStats
{
	uint64		splits;
	uint64		merges;
	uint64		vectors_copied;
	uint64		vectors_reassigned;
	uint64		lists_recycled;
} IvfMaintainStats;

/*
 * The advisory lock key ivf.debug_maintenance_pause blocks on (shared),
 * "IVFP": a test holds it exclusively to park the maintainer at a step.
 */
#define IVF_MAINTENANCE_PAUSE_KEY	INT64CONST(0x49564650)

/* ivf.debug_maintenance_pause: '' or the step to park at (tests) */
extern char *ivf_debug_maintenance_pause;

extern bool ivf_maintenance_enabled(Relation index,
									const IvfMetaPageData *meta);
extern bool ivf_maintain(Relation index, double num_heap_tuples,
						 bool conditional, bool self_idle,
						 IvfMaintainStats *out, int max_ops);

#endif							/* IVF_IVFMAINTAIN_H */
