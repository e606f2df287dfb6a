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

/*
 * ReadRecentBuffer() (PostgreSQL 14) pins a buffer whose id we remember
 * without a buffer-mapping lookup; 16 keys it by RelFileLocator.
 */
#if PG_VERSION_NUM >= 160000
#define IVF_HAVE_READ_RECENT_BUFFER 1
#define IvfReadRecentBuffer(rel, blkno, buf) \
	ReadRecentBuffer((rel)->rd_locator, MAIN_FORKNUM, (blkno), (buf))
#elif PG_VERSION_NUM >= 140000
#define IVF_HAVE_READ_RECENT_BUFFER 1
#define IvfReadRecentBuffer(rel, blkno, buf) \
	ReadRecentBuffer((rel)->rd_node, MAIN_FORKNUM, (blkno), (buf))
#endif

/* PostgreSQL 16 folded the per-class ownership checks into one. */
#include "catalog/pg_class.h"
#include "utils/acl.h"
#if PG_VERSION_NUM >= 160000
#define ivf_relation_ownercheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define ivf_relation_ownercheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif

/* a read prefetch hint; a no-op where the compiler has none */
#if defined(__GNUC__) || defined(__clang__)
#define ivf_prefetch(addr) __builtin_prefetch((addr), 0, 3)
#else
#define ivf_prefetch(addr) ((void) (addr))
#endif

/*
 * The build writes list pages straight to the relation file, as nbtree's
 * sorted build does: the SMgrRelation accessor (15; RelationOpenSmgr
 * before) and log_newpages' relation key (RelFileLocator from 16).
 */
#include "storage/smgr.h"
#include "utils/rel.h"
#if PG_VERSION_NUM >= 150000
#define IvfRelationGetSmgr(rel) RelationGetSmgr(rel)
#else
static inline SMgrRelation
IvfRelationGetSmgr(Relation rel)
{
	RelationOpenSmgr(rel);
	return rel->rd_smgr;
}
#endif
#if PG_VERSION_NUM >= 160000
#define IvfRelFileKey(rel) (&(rel)->rd_locator)
#define IvfRelFileNumber(rel) ((rel)->rd_locator.relNumber)
#define IvfRelTablespace(rel) ((rel)->rd_locator.spcOid)
#else
#define IvfRelFileKey(rel) (&(rel)->rd_node)
#define IvfRelFileNumber(rel) ((rel)->rd_node.relNode)
#define IvfRelTablespace(rel) ((rel)->rd_node.spcNode)
#endif

/* PostgreSQL 17 moved a PGPROC's local transaction id into its vxid. */
#if PG_VERSION_NUM >= 170000
#define IvfProcLocalXid(proc) ((proc)->vxid.lxid)
#else
#define IvfProcLocalXid(proc) ((proc)->lxid)
#endif

/*
 * The predefined roles that may read and write server files (14 renamed
 * their OIDs' symbols from DEFAULT_ROLE_*); needs catalog/pg_authid.h.
 */
#if PG_VERSION_NUM >= 140000
#define IVF_ROLE_READ_SERVER_FILES ROLE_PG_READ_SERVER_FILES
#define IVF_ROLE_WRITE_SERVER_FILES ROLE_PG_WRITE_SERVER_FILES
#else
#define IVF_ROLE_READ_SERVER_FILES DEFAULT_ROLE_READ_SERVER_FILES
#define IVF_ROLE_WRITE_SERVER_FILES DEFAULT_ROLE_WRITE_SERVER_FILES
#endif

/*
 * Workers for the build's parallel assignment pass: from 17 index_build
 * plans them for an AM with amcanbuildparallel; before, it does so for
 * btree only and the AM asks the planner itself (needs optimizer/plancat.h).
 * shm_mq_sendv() gained force_flush in 15.
 */
#if PG_VERSION_NUM >= 170000
#define IvfIndexBuildWorkers(heap, index, indexInfo) \
	((indexInfo)->ii_ParallelWorkers)
#else
#define IvfIndexBuildWorkers(heap, index, indexInfo) \
	plan_create_index_workers(RelationGetRelid(heap), RelationGetRelid(index))
#endif
#if PG_VERSION_NUM >= 150000
#define IvfShmMqSendv(mqh, iov, iovcnt) shm_mq_sendv((mqh), (iov), (iovcnt), false, true)
#else
#define IvfShmMqSendv(mqh, iov, iovcnt) shm_mq_sendv((mqh), (iov), (iovcnt), false)
#endif

/*
 * PostgreSQL 14 gave aminsert an indexUnchanged hint; ivf ignores it.
 * IVF_AMINSERT_PARAMS is ivf_insert's parameter list for the version.
 */
#if PG_VERSION_NUM >= 140000
#define IVF_AMINSERT_PARAMS \
	Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, \
	Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged, \
	IndexInfo *indexInfo
#else
#define IVF_AMINSERT_PARAMS \
	Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, \
	Relation heap, IndexUniqueCheck checkUnique, IndexInfo *indexInfo
#endif

/*
 * From 17 an AM says it can build in parallel (amcanbuildparallel) and
 * index_build plans the workers; before, ivf_build plans them itself.
 */
#if PG_VERSION_NUM >= 170000
#define IvfSetCanBuildParallel(am) ((am)->amcanbuildparallel = true)
#else
#define IvfSetCanBuildParallel(am) ((void) (am))
#endif

/*
 * PostgreSQL 15 added shmem_request_hook, where shared memory must be
 * requested; before, _PG_init requests it directly.
 */
#if PG_VERSION_NUM >= 150000
#define IVF_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/*
 * Whether a custom setting exists only as a placeholder, that is no loaded
 * library has defined it (ivf reads pgvector's ivfflat.* settings either
 * way).  GetConfigOptionFlags() is 15's; before, look the name up in the
 * table of settings.  The setting is known to exist.
 */
#if PG_VERSION_NUM >= 150000
static inline bool
IvfGucIsPlaceholder(const char *name)
{
	return (GetConfigOptionFlags(name, true) & GUC_CUSTOM_PLACEHOLDER) != 0;
}
#else
#include "utils/guc_tables.h"
static inline bool
IvfGucIsPlaceholder(const char *name)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			i;

	for (i = 0; i < n; i++)
		if (pg_strcasecmp(vars[i]->name, name) == 0)
			return (vars[i]->flags & GUC_CUSTOM_PLACEHOLDER) != 0;
	return true;
}
#endif

/*
 * Whether every transaction that is running or may still start holds an
 * xmin after xid, so that nothing that saw the index before xid was
 * assigned can still be reading it: nbtree's test for recycling a deleted
 * page (BTPageIsRecyclable), which ivf applies to a retired list's
 * retire_xid (src/README "Recycling").  From 14 GlobalVis with no relation
 * (the shared horizon, the most conservative one); 13 compares with
 * RecentGlobalXmin as its _bt_page_recyclable does, widened to a full
 * transaction id against the next one (the horizon is never 2^31
 * transactions behind it).  Either needs a snapshot taken in this
 * transaction: a stale RecentGlobalXmin is older, so it only says "not
 * yet" more often.
 */
#include "access/transam.h"
#include "utils/snapmgr.h"
#if PG_VERSION_NUM >= 140000
static inline bool
ivf_full_xid_recyclable(FullTransactionId xid)
{
	return GlobalVisCheckRemovableFullXid(NULL, xid);
}
#else
static inline bool
ivf_full_xid_recyclable(FullTransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	TransactionId horizon = RecentGlobalXmin;
	uint32		epoch = EpochFromFullTransactionId(next);

	/* no snapshot yet: nothing is known to be past every xmin */
	if (!TransactionIdIsNormal(horizon))
		return false;
	/* the horizon precedes next; past next's low half it is of the epoch before */
	if (horizon > XidFromFullTransactionId(next))
	{
		if (epoch == 0)
			return false;
		epoch--;
	}
	return FullTransactionIdPrecedes(xid,
									 FullTransactionIdFromEpochAndXid(epoch, horizon));
}
#endif

/*
 * The xmin of PGPROC number i (ProcGlobal->allProcs), read under
 * ProcArrayLock: in PGPROC from 14, in its PGXACT on 13.
 */
#include "storage/proc.h"
static inline TransactionId
ivf_proc_xmin(int i)
{
#if PG_VERSION_NUM >= 140000
	return ProcGlobal->allProcs[i].xmin;
#else
	return ProcGlobal->allPgXact[i].xmin;
#endif
}

#endif							/* IVF_COMPAT_H */
