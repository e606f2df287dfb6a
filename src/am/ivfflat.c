/*-------------------------------------------------------------------------
 *
 * ivfflat.c
 *	  The ivfflat handler (as bloom's blutils.c and pgvector's ivfflat.c).
 *	  Its reloptions are in core/ivfoptions.c: the settings and the build
 *	  read them, and ivf_open_index, below the access method, recognises an
 *	  ivfflat index by its amoptions function.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "commands/vacuum.h"
#include "fmgr.h"

#include "ivfflat.h"
#include "ivfformat.h"
#include "ivfoptions.h"

/* ---------------------------------------------------------------- handler */

PG_FUNCTION_INFO_V1(ivfflat_handler);
Datum
ivfflat_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *am = makeNode(IndexAmRoutine);

	am->amstrategies = 0;
	am->amsupport = IVF_NPROCS;
	am->amoptsprocnum = 0;
	am->amcanorder = false;
	am->amcanorderbyop = true;
	am->amcanbackward = false;
	am->amcanunique = false;
	am->amcanmulticol = false;
	am->amoptionalkey = true;
	am->amsearcharray = false;
	am->amsearchnulls = false;
	am->amstorage = false;
	am->amclusterable = false;
	am->ampredlocks = false;
	am->amcanparallel = false;
	/* parallel assignment pass; before 17 ivf_build plans it itself */
	IvfSetCanBuildParallel(am);
	am->amcaninclude = false;
	am->amusemaintenanceworkmem = true;
	am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	am->amkeytype = InvalidOid;

	am->ambuild = ivf_build;
	am->ambuildempty = ivf_buildempty;
	am->aminsert = ivf_insert;
	am->ambulkdelete = ivf_bulkdelete;
	am->amvacuumcleanup = ivf_vacuumcleanup;
	am->amcanreturn = NULL;
	am->amcostestimate = ivf_costestimate;
	am->amoptions = ivf_options;
	am->amproperty = NULL;
	am->ambuildphasename = ivf_buildphasename;
	am->amvalidate = ivf_validate;
	am->amadjustmembers = NULL;
	am->ambeginscan = ivf_beginscan;
	am->amrescan = ivf_rescan;
	am->amgettuple = ivf_gettuple;
	am->amgetbitmap = NULL;
	am->amendscan = ivf_endscan;
	am->ammarkpos = NULL;
	am->amrestrpos = NULL;
	am->amestimateparallelscan = NULL;
	am->aminitparallelscan = NULL;
	am->amparallelrescan = NULL;

	PG_RETURN_POINTER(am);
}
