/*-------------------------------------------------------------------------
 *
 * ivfsql.h
 *	  Helpers of the SQL functions: opening an index for a caller with its
 *	  privilege and row-level security checks, set-returning functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVFSQL_H
#define IVF_IVFSQL_H

#include "compat.h"

#include "fmgr.h"
#include "access/tupdesc.h"
#include "utils/relcache.h"
#include "utils/tuplestore.h"

/* what ivf_open_index checks of its caller */
#define IVF_OPEN_READ	0x01	/* SELECT on the table, no row-level security */
#define IVF_OPEN_OWNER	0x02	/* owns the index */
extern Relation ivf_open_index(Oid indexoid, Relation *heap,
							   const char *caller, int flags);
/* for a function named as its SQL function that returns what rows hold */
#define ivf_open_for_user(indexoid, heap) \
	ivf_open_index((indexoid), (heap), __func__, IVF_OPEN_READ)
extern Tuplestorestate *ivf_srf_materialize(FunctionCallInfo fcinfo,
											TupleDesc desc);

#endif							/* IVF_IVFSQL_H */
