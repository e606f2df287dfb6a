/*-------------------------------------------------------------------------
 *
 * ivfsql.c
 *	  Helpers of the SQL functions: ivf_open_index (an index and its table,
 *	  opened for a caller with its privilege and row-level security checks)
 *	  and materialize-mode set-returning functions.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/amapi.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "commands/defrem.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "ivfoptions.h"
#include "ivfsql.h"

/*
 * The checks ivf_open_index makes for a caller (see there); run once before
 * the locks, to fail fast without queueing behind a lock on a table the
 * caller may not use, and again once both relations are locked, when they
 * are authoritative.
 */
static void
ivf_check_caller(Oid heapoid, Oid indexoid, const char *caller, int flags)
{
	Oid			userid = GetUserId();

	if ((flags & IVF_OPEN_OWNER) &&
		!ivf_relation_ownercheck(indexoid, userid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_INDEX, get_rel_name(indexoid));

	if ((flags & IVF_OPEN_READ) == 0)
		return;

	/*
	 * Table-level SELECT, not column privileges: the results name rows by
	 * their tid and count them, which SELECT on a column does not grant.
	 * Table-level SELECT covers every column (key, expression and predicate
	 * columns alike), so no column check can fail after it; the detail only
	 * explains why column privileges are not enough.
	 */
	if (pg_class_aclcheck(heapoid, userid, ACL_SELECT) != ACLCHECK_OK)
	{
		bool		some_columns =
			pg_attribute_aclcheck_all(heapoid, userid, ACL_SELECT,
									  ACLMASK_ANY) == ACLCHECK_OK;

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(heapoid)),
				 some_columns ?
				 errdetail("%s returns what the index holds of every row (tids, distances, vectors or counts), which needs SELECT on the table; SELECT on some of its columns is not enough.",
						   caller) : 0));
	}

	/*
	 * The index holds every row, whatever the table's row-level security
	 * policies hide, and these functions cannot apply the policies to what
	 * they return: refuse wherever the policies would apply to a SELECT by
	 * the caller.  check_enable_rls exempts exactly the roles PostgreSQL
	 * exempts: superusers, BYPASSRLS roles, and the table's owner unless the
	 * table has FORCE ROW LEVEL SECURITY.  With row_security = off, where a
	 * SELECT would fail, this fails too.
	 */
	if (check_enable_rls(heapoid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s cannot apply the row-level security policies of table \"%s\"",
						caller, get_rel_name(heapoid)),
				 errdetail("Row-level security applies to role \"%s\" on this table, and the index holds every row, including those the policies hide.",
						   GetUserNameFromId(userid, false)),
				 errhint("Call %s as the table's owner (without FORCE ROW LEVEL SECURITY), a role with BYPASSRLS or a superuser, or query the table with ORDER BY, whose index scans apply the policies.",
						 caller)));
}

/*
 * Open an ivfflat index and its table (AccessShareLock both, table first,
 * as the executor does) for the SQL-callable function 'caller', checking
 * that it is one and what 'flags' asks:
 *
 *	IVF_OPEN_READ: the function returns rows, tids, distances, vectors or
 *	counts of the table, so the caller must be able to SELECT all of them:
 *	SELECT on the table, and no row-level security applying to the caller.
 *	IVF_OPEN_OWNER: the function changes the index; the caller must own it.
 *
 * As contrib/amcheck does, the table is looked up before the locks and the
 * index's table looked up again once both are locked: a concurrent DROP
 * and re-create of the index could otherwise leave us with an index of
 * another table (whose lock we do not hold).  The checks are made again
 * after the locks too, so a REVOKE or ENABLE ROW LEVEL SECURITY committed
 * while we waited for the lock is obeyed (taking the lock processes the
 * catalog invalidations).
 */
Relation
ivf_open_index(Oid indexoid, Relation *heap, const char *caller, int flags)
{
	Oid			heapoid = IndexGetRelation(indexoid, true);
	Relation	index;

	if (!OidIsValid(heapoid))
	{
		char	   *name = get_rel_name(indexoid);

		if (name == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", indexoid)));
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an index", name)));
	}
	ivf_check_caller(heapoid, indexoid, caller, flags);

	*heap = try_relation_open(heapoid, AccessShareLock);
	index = try_relation_open(indexoid, AccessShareLock);
	if (*heap == NULL || index == NULL ||
		IndexGetRelation(indexoid, true) != heapoid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index with OID %u was dropped or changed while %s waited for its lock",
						indexoid, caller)));
	if (index->rd_rel->relkind == RELKIND_PARTITIONED_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a partitioned index, which holds no rows",
						RelationGetRelationName(index)),
				 errhint("Call %s on the index of each partition.", caller)));
	if (index->rd_rel->relkind != RELKIND_INDEX ||
		index->rd_indam == NULL ||
		index->rd_indam->amoptions != ivf_options)
	{
		/*
		 * Neutral "ivf": under ivf_pgvector an "ivfflat" index is
		 * pgvector's, which these functions do not take.
		 */
		char	   *am = index->rd_rel->relkind == RELKIND_INDEX ?
			get_am_name(index->rd_rel->relam) : NULL;

		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an ivf index",
						RelationGetRelationName(index)),
				 am != NULL ? errdetail("Its access method is %s.", am) : 0));
	}
	ivf_check_caller(heapoid, indexoid, caller, flags);
	return index;
}

/*
 * Set up a materialize-mode set-returning function: check the caller can
 * take a set, and return a tuplestore (with a copy of desc) that lives for
 * the query and is already handed to the executor.
 */
Tuplestorestate *
ivf_srf_materialize(FunctionCallInfo fcinfo, TupleDesc desc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->setDesc = CreateTupleDescCopy(desc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(old);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	return store;
}
