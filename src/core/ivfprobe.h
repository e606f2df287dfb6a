/*-------------------------------------------------------------------------
 *
 * ivfprobe.h
 *	  Probe planning: per-list limits and budgets of a probe round, shared
 *	  by the index scan and batch search.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFPROBE_H
#define IVF_IVFPROBE_H

#include "ivfsettings.h"

/*
 * What a probe round may read of each of its lists: per-list candidate
 * budgets and the per-query limits that the index scan and batch search
 * compute alike.
 */
extern void ivf_query_limits(const IvfSearchSettings *s, const float *pdist,
							 const uint64 *sizes, uint32 nprobe,
							 uint64 *limits);
extern void ivf_list_budgets(const float *cdist, uint32 n, uint64 budget,
							 int strategy, uint64 *caps);

#endif							/* IVF_IVFPROBE_H */
