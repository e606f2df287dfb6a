/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every PG_VERSION_NUM conditional of ivf lives here.  Built and tested
 *	  against PostgreSQL 15; written to compile on 13 through 17.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_COMPAT_H
#define IVF_COMPAT_H

#include "postgres.h"
#include "utils/guc.h"

#if PG_VERSION_NUM < 130000
#error "ivf requires PostgreSQL 13 or later"
#endif

/* PostgreSQL 15 renamed the function that reserves a GUC prefix. */
#if PG_VERSION_NUM >= 150000
#define IvfReserveGUCPrefix(prefix) MarkGUCPrefixReserved(prefix)
#else
#define IvfReserveGUCPrefix(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/* PostgreSQL 16 moved varlena macros out of postgres.h into varatt.h. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/* PostgreSQL 15 replaced tuplesort's randomAccess flag with option bits. */
#if PG_VERSION_NUM >= 150000
#define IVF_TUPLESORT_NONE TUPLESORT_NONE
#else
#define IVF_TUPLESORT_NONE false
#endif

#endif							/* IVF_COMPAT_H */
