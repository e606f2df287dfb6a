/*-------------------------------------------------------------------------
 *
 * ivfgpu_sql.c
 *	  The GPU worker's SQL functions: ivf_gpu_load() and ivf_gpu_stats().
 *
 * IDENTIFICATION
 *	  src/gpuclient/ivfgpu_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "access/genam.h"
#include "access/table.h"
#include "fmgr.h"
#include "funcapi.h"
#include "storage/spin.h"
#include "utils/builtins.h"

#include "gpuclient.h"
#include "ivfformat.h"
#include "ivfpage.h"
#include "ivfsql.h"
#include "ivfgpu_proto.h"

/* -------------------------------------------------------------- SQL */

/* IvfGpuState's names, in its order */
static const char *const gpu_state_names[] = {
	"stopped", "starting", "ready", "failed"
};

/*
 * ivf_gpu_load(index): upload the index to the GPU worker now (else the
 * first search does).  True when the worker holds it at its current
 * version; false, with a NOTICE saying why, when it could not.
 */
PG_FUNCTION_INFO_V1(ivf_gpu_load);
Datum
ivf_gpu_load(PG_FUNCTION_ARGS)
{
	Relation	heap;
	Relation	index = ivf_open_for_user(PG_GETARG_OID(0), &heap);
	IvfCache   *cache = ivf_get_cache(index);
	IvfMetaPageData meta = cache->meta;
	IvfGeometry g = cache->geo;
	const char *why = NULL;
	bool		ok = false;

	if (ivf_gpu_shared == NULL || !ivf_gpu_worker_enabled)
		why = "there is no GPU worker (ivf in shared_preload_libraries and ivf.gpu_worker = on start one)";
	else
		ok = ivf_gpu_upload(index, &meta, &g, &why);
	if (!ok)
		ereport(NOTICE,
				(errmsg("index \"%s\" was not loaded to the GPU worker: %s",
						RelationGetRelationName(index), why ? why : "unknown reason")));
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	PG_RETURN_BOOL(ok);
}



/*
 * ivf_gpu_stats(): one row, the worker as it published itself.  Without
 * ivf in shared_preload_libraries there is no worker and the state says
 * so.
 */
PG_FUNCTION_INFO_V1(ivf_gpu_stats);
Datum
ivf_gpu_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[17];
	bool		nulls[17];
	IvfGpuShared snap;
	const char *state;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(nulls, 0, sizeof(nulls));
	memset(&snap, 0, sizeof(snap));

	if (!ivf_gpu_preloaded || ivf_gpu_shared == NULL)
		state = "not loaded";
	else
	{
		SpinLockAcquire(&ivf_gpu_shared->mutex);
		memcpy(&snap, ivf_gpu_shared, sizeof(snap));
		SpinLockRelease(&ivf_gpu_shared->mutex);
		if (!ivf_gpu_worker_enabled)
			state = "off";
		else
			state = gpu_state_names[snap.state];
	}

	values[0] = CStringGetTextDatum(state);
	values[1] = Int32GetDatum(snap.worker_pid);
	nulls[1] = (snap.worker_pid == 0 || snap.state == IVF_GPU_STATE_STOPPED);
	values[2] = CStringGetTextDatum(snap.backend);
	nulls[2] = (snap.backend[0] == '\0');
	values[3] = CStringGetTextDatum(snap.device);
	nulls[3] = (snap.device[0] == '\0');
	values[4] = Int64GetDatum((int64) snap.device_memory);
	nulls[4] = (snap.device_memory == 0);
	values[5] = Int64GetDatum((int64) snap.memory_limit);
	nulls[5] = (snap.memory_limit == 0);
	values[6] = Int64GetDatum((int64) snap.memory_used);
	values[7] = Int32GetDatum(snap.indexes_resident);
	values[8] = Int64GetDatum((int64) snap.batches);
	values[9] = Float8GetDatum(snap.batches > 0 ? (double) snap.queries / snap.batches : 0.0);
	values[10] = Int64GetDatum((int64) snap.queries);
	values[11] = Int64GetDatum((int64) snap.fallbacks);
	values[12] = Int32GetDatum(snap.starts);
	values[14] = Int64GetDatum((int64) snap.kmeans_rounds);
	values[15] = Int64GetDatum((int64) snap.assigned_points);
	values[16] = Int64GetDatum((int64) snap.refreshed_lists);
	values[13] = CStringGetTextDatum(snap.detail);
	nulls[13] = (snap.detail[0] == '\0');

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
