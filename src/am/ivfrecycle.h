/*-------------------------------------------------------------------------
 *
 * ivfrecycle.h
 *	  Rolling back an abandoned list operation and recycling retired lists
 *	  (ivfrecycle.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFRECYCLE_H
#define IVF_IVFRECYCLE_H

#include "utils/relcache.h"

extern uint32 ivf_rollback_abandoned(Relation index);
extern uint32 ivf_recycle_retired(Relation index, bool self_idle);

#endif							/* IVF_IVFRECYCLE_H */
