/*-------------------------------------------------------------------------
 *
 * ivfoptions.h
 *	  The index's options (reloptions): lists, nprobe, seed, list_ordering,
 *	  prefilter, centroids, params (ivfoptions.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFOPTIONS_H
#define IVF_IVFOPTIONS_H

#include "ivfformat.h"

#include "utils/relcache.h"

/* reloptions */
typedef struct IvfOptions
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int			lists;			/* -1: choose from the row count */
	int			nprobe;			/* -1: sqrt(lists) */
	int			seed;
	int			list_ordering;	/* IVF_ORDER_* */
	int			prefilter;		/* IVF_PREFILTER_*: store codes
								 * (IVF_META_CODES)? */
	int			centroids_offset;	/* the centroids option: offset of the
									 * path from the struct, 0 when unset */
	int			params_offset;	/* the params option (search defaults, see
								 * ivfparams.c): offset of the text, 0 when
								 * unset */
	bool		adaptive;		/* lists split and merged as the table
								 * changes (IVF_META_ADAPTIVE) */
} IvfOptions;

/* prefilter option */
#define IVF_PREFILTER_AUTO		0	/* vector: on; halfvec: by dimensions */
#define IVF_PREFILTER_ON		1
#define IVF_PREFILTER_OFF		2
/* auto gives a halfvec index codes from this many dimensions up */
#define IVF_PREFILTER_HALF_MIN_DIMS	256

/* list_ordering option */
#define IVF_ORDER_NONE			0
#define IVF_ORDER_RESIDUAL		1	/* ascending distance to the centroid */

extern void ivf_init_reloptions(void);
extern bytea *ivf_options(Datum reloptions, bool validate);
extern IvfOptions *ivf_get_options(Relation index);
extern bool ivf_prefilter_wanted(const IvfOptions *opts, IvfElemType elem,
								 uint32 dims);
extern uint32 ivf_index_default_nprobe(Relation index,
									   const IvfMetaPageData *meta);
extern uint32 ivf_option_nprobe(Relation index, const IvfMetaPageData *meta);
extern void ivf_faiss_validate_path(const char *value);

#endif							/* IVF_IVFOPTIONS_H */
