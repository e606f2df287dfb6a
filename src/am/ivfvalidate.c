/*-------------------------------------------------------------------------
 *
 * ivfvalidate.c
 *	  amvalidate for ivfflat operator classes: the members must be what
 *	  the access method can use, reported with INFO like the built-in AMs.
 *
 * An ivfflat opclass has exactly one operator, strategy 1, an ordering
 * operator (FOR ORDER BY) over (type, type) returning float8; support
 * function 1, the distance (type, type) -> float8, whose C implementation
 * identifies the metric; and optionally support function 2, a norm
 * (type) -> float8, whose presence means vectors are normalised (cosine).
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/amvalidate.h"
#include "access/htup_details.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "ivfflat.h"
#include "ivfformat.h"

bool
ivf_validate(Oid opclassoid)
{
	bool		result = true;
	HeapTuple	classtup;
	Form_pg_opclass classform;
	Oid			opfamilyoid;
	Oid			opcintype;
	char	   *opclassname;
	char	   *amname;			/* ivfflat or ivf, for the messages */
	HeapTuple	familytup;
	Form_pg_opfamily familyform;
	char	   *opfamilyname;
	CatCList   *proclist;
	CatCList   *oprlist;
	bool		has_distance = false;
	bool		has_orderby = false;
	int			i;

	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);
	opfamilyoid = classform->opcfamily;
	opcintype = classform->opcintype;
	opclassname = NameStr(classform->opcname);
	amname = get_am_name(classform->opcmethod);
	if (amname == NULL)
		amname = "ivf";

	familytup = SearchSysCache1(OPFAMILYOID, ObjectIdGetDatum(opfamilyoid));
	if (!HeapTupleIsValid(familytup))
		elog(ERROR, "cache lookup failed for operator family %u", opfamilyoid);
	familyform = (Form_pg_opfamily) GETSTRUCT(familytup);
	opfamilyname = NameStr(familyform->opfname);

	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));
	for (i = 0; i < proclist->n_members; i++)
	{
		HeapTuple	proctup = &proclist->members[i]->tuple;
		Form_pg_amproc procform = (Form_pg_amproc) GETSTRUCT(proctup);
		bool		ok;

		if (procform->amproclefttype != procform->amprocrighttype)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("%s operator family \"%s\" contains support function %s with different left and right input types",
							amname, opfamilyname,
							format_procedure(procform->amproc))));
			result = false;
			continue;
		}
		if (procform->amproclefttype != opcintype)
			continue;			/* belongs to another opclass of the family */

		switch (procform->amprocnum)
		{
			case IVF_DISTANCE_PROC:
				ok = check_amproc_signature(procform->amproc, FLOAT8OID, true,
											2, 2, opcintype, opcintype);
				has_distance = true;
				break;
			case IVF_NORM_PROC:
				ok = check_amproc_signature(procform->amproc, FLOAT8OID, true,
											1, 1, opcintype);
				break;
			default:
				ereport(INFO,
						(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
						 errmsg("%s operator family \"%s\" contains function %s with invalid support number %d",
								amname, opfamilyname,
								format_procedure(procform->amproc),
								procform->amprocnum)));
				result = false;
				continue;
		}
		if (!ok)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("%s operator family \"%s\" contains function %s with wrong signature for support number %d",
							amname, opfamilyname,
							format_procedure(procform->amproc),
							procform->amprocnum)));
			result = false;
		}
	}

	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
	for (i = 0; i < oprlist->n_members; i++)
	{
		HeapTuple	oprtup = &oprlist->members[i]->tuple;
		Form_pg_amop oprform = (Form_pg_amop) GETSTRUCT(oprtup);

		if (oprform->amoplefttype != opcintype)
			continue;

		if (oprform->amopstrategy != IVF_ORDERBY_STRATEGY)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("%s operator family \"%s\" contains operator %s with invalid strategy number %d",
							amname, opfamilyname,
							format_operator(oprform->amopopr),
							oprform->amopstrategy)));
			result = false;
			continue;
		}
		if (oprform->amoppurpose != AMOP_ORDER ||
			!OidIsValid(oprform->amopsortfamily))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("%s operator family \"%s\" contains operator %s that is not an ordering operator",
							amname, opfamilyname,
							format_operator(oprform->amopopr)),
					 errhint("Declare it FOR ORDER BY float_ops.")));
			result = false;
			continue;
		}
		if (!check_amop_signature(oprform->amopopr, FLOAT8OID,
								  oprform->amoplefttype,
								  oprform->amoprighttype))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("%s operator family \"%s\" contains operator %s with wrong signature",
							amname, opfamilyname,
							format_operator(oprform->amopopr))));
			result = false;
			continue;
		}
		has_orderby = true;
	}

	if (!has_distance)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("%s operator class \"%s\" is missing support function %d",
						amname, opclassname, IVF_DISTANCE_PROC)));
		result = false;
	}
	if (!has_orderby)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("%s operator class \"%s\" has no ordering operator",
						amname, opclassname)));
		result = false;
	}

	ReleaseCatCacheList(proclist);
	ReleaseCatCacheList(oprlist);
	ReleaseSysCache(familytup);
	ReleaseSysCache(classtup);

	return result;
}
