/*-------------------------------------------------------------------------
 *
 * ivfgpu.c
 *	  The GPU worker: a background worker that owns the GPU library (or its
 *	  CPU implementation) on behalf of every backend.
 *
 * Registered by _PG_init when ivf is in shared_preload_libraries and
 * ivf.gpu_worker = on.  At start the worker picks its implementation
 * (ivf.gpu_backend): "device" dlopen()s ivf.gpu_library (never linked
 * into ivf.so, so the extension works without any GPU runtime), checks
 * its ABI version and that it sees a device; "cpu" uses the same
 * contract implemented on the CPU (gpu/ivf_gpu_cpu.c), which lets the
 * whole worker run and be tested without a GPU; "auto" tries the device
 * and settles for the CPU with a LOG line.  It then creates its context
 * under ivf.gpu_memory_limit and publishes its state in shared memory,
 * where ivf_gpu_stats() reads it.  The postmaster restarts a worker that
 * exits or dies (after bgw_restart_time); its state starts over.
 *
 * Serving requests (batched search from backends, residency, coherence,
 * fallback) is built on this in the next step; see gpu/NOTES.md.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <dlfcn.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "distance.h"
#include "ivf_gpu.h"
#include "ivfflat.h"

#ifndef DLSUFFIX
#define DLSUFFIX ".so"
#endif

typedef enum IvfGpuBackendChoice
{
	IVF_GPU_BACKEND_AUTO,
	IVF_GPU_BACKEND_DEVICE,
	IVF_GPU_BACKEND_CPU
} IvfGpuBackendChoice;

static const struct config_enum_entry gpu_backend_options[] = {
	{"auto", IVF_GPU_BACKEND_AUTO, false},
	{"device", IVF_GPU_BACKEND_DEVICE, false},
	{"cpu", IVF_GPU_BACKEND_CPU, false},
	{NULL, 0, false}
};

/* what the worker publishes; read by ivf_gpu_stats() */
typedef enum IvfGpuState
{
	IVF_GPU_STATE_STOPPED = 0,	/* not started yet, or exited */
	IVF_GPU_STATE_STARTING,
	IVF_GPU_STATE_READY,
	IVF_GPU_STATE_FAILED		/* no usable implementation: serves nothing */
} IvfGpuState;

static const char *const gpu_state_names[] = {
	"stopped", "starting", "ready", "failed"
};

typedef struct IvfGpuShared
{
	slock_t		mutex;
	pid_t		worker_pid;
	IvfGpuState state;
	int			starts;			/* worker starts since the server started */
	char		backend[16];
	char		device[256];
	char		detail[256];	/* why "failed", or how the choice was made */
	uint64		device_memory;
	uint64		memory_limit;
	uint64		memory_used;
	int			indexes_resident;
	uint64		batches;
	uint64		queries;
	uint64		fallbacks;
} IvfGpuShared;

bool		ivf_gpu_worker_enabled = false;
static int	ivf_gpu_backend_choice = IVF_GPU_BACKEND_AUTO;
static char *ivf_gpu_library = NULL;
static int	ivf_gpu_device = 0;
static int	ivf_gpu_memory_limit_mb = 0;

static IvfGpuShared *gpu_shared = NULL;
static bool gpu_preloaded = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PGDLLEXPORT void ivf_gpu_worker_main(Datum arg);

static Size
gpu_shmem_size(void)
{
	return MAXALIGN(sizeof(IvfGpuShared));
}

#if PG_VERSION_NUM >= 150000
static void
gpu_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(gpu_shmem_size());
}
#endif

static void
gpu_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	gpu_shared = ShmemInitStruct("ivf gpu worker", gpu_shmem_size(), &found);
	if (!found)
	{
		memset(gpu_shared, 0, sizeof(IvfGpuShared));
		SpinLockInit(&gpu_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * From _PG_init, when loaded by shared_preload_libraries: the worker's
 * settings, its shared memory and the worker (none can be added later).
 */
void
ivf_gpu_init(void)
{
	/*
	 * Server-start settings can only be defined then: without the preload
	 * there is no worker, and the settings do not exist.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;
	gpu_preloaded = true;

	DefineCustomBoolVariable("ivf.gpu_worker",
							 "Starts the GPU worker (needs ivf in shared_preload_libraries).",
							 NULL,
							 &ivf_gpu_worker_enabled,
							 false,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);
	DefineCustomEnumVariable("ivf.gpu_backend",
							 "What the GPU worker computes with.",
							 "device: the GPU library (ivf.gpu_library) on a device; cpu: the same operations on the CPU; auto: the device if there is one, else the CPU.",
							 &ivf_gpu_backend_choice,
							 IVF_GPU_BACKEND_AUTO,
							 gpu_backend_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("ivf.gpu_library",
							   "The GPU library the worker loads ($libdir/ivf_gpu: built with make WITH_CUDA=1 or WITH_HIP=1).",
							   NULL,
							   &ivf_gpu_library,
							   "$libdir/ivf_gpu",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("ivf.gpu_device",
							"Device number the GPU worker uses.",
							NULL,
							&ivf_gpu_device,
							0, 0, 64,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ivf.gpu_memory_limit",
							"Device memory the GPU worker may use for indexes and scratch (0: all of it).",
							NULL,
							&ivf_gpu_memory_limit_mb,
							0, 0, INT_MAX,
							PGC_POSTMASTER,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = gpu_shmem_request;
#else
	RequestAddinShmemSpace(gpu_shmem_size());
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = gpu_shmem_startup;

	if (ivf_gpu_worker_enabled)
	{
		BackgroundWorker worker;

		memset(&worker, 0, sizeof(worker));
		/*
		 * A connection to no database: a PGPROC in the proc array, so the
		 * worker shows in pg_stat_activity and pg_terminate_backend reaches
		 * it; ready once the server is consistent (standbys included).
		 */
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_ConsistentState;
		worker.bgw_restart_time = 1;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "ivf");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "ivf_gpu_worker_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "ivf gpu worker");
		snprintf(worker.bgw_type, BGW_MAXLEN, "ivf gpu worker");
		RegisterBackgroundWorker(&worker);
	}
}

/* ------------------------------------------------------------ the worker */

/* "$libdir/name" -> the full path, ".so" added when the name has none */
static char *
library_path(const char *name)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (strncmp(name, "$libdir", 7) == 0)
	{
		appendStringInfoString(&buf, pkglib_path);
		appendStringInfoString(&buf, name + 7);
	}
	else
		appendStringInfoString(&buf, name);
	if (strchr(last_dir_separator(buf.data) ? last_dir_separator(buf.data) : buf.data, '.') == NULL)
		appendStringInfoString(&buf, DLSUFFIX);
	return buf.data;
}

/*
 * The device library's operations, or NULL with *why set.  Kept loaded
 * for the worker's life (the postmaster's restart gives a fresh process).
 */
static const IvfGpuOps *
load_device_library(char **why)
{
	char	   *path = library_path(ivf_gpu_library);
	void	   *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	const IvfGpuOps *(*entry) (void);
	const IvfGpuOps *ops;

	if (handle == NULL)
	{
		*why = psprintf("cannot load \"%s\": %s", path, dlerror());
		return NULL;
	}
	entry = (const IvfGpuOps *(*) (void)) dlsym(handle, "ivf_gpu_ops");
	if (entry == NULL || (ops = entry()) == NULL)
	{
		*why = psprintf("\"%s\" has no ivf_gpu_ops", path);
		return NULL;
	}
	if (ops->abi_version != IVF_GPU_ABI_VERSION)
	{
		*why = psprintf("\"%s\" has ABI version %d, this ivf needs %d: rebuild it with this ivf",
						path, ops->abi_version, IVF_GPU_ABI_VERSION);
		return NULL;
	}
	if (ops->device_count() <= ivf_gpu_device)
	{
		*why = psprintf("%s library \"%s\" sees no device %d (%s)", ops->backend, path,
						ivf_gpu_device, ops->last_error());
		return NULL;
	}
	return ops;
}

static void
publish_failure(const char *detail)
{
	SpinLockAcquire(&gpu_shared->mutex);
	gpu_shared->state = IVF_GPU_STATE_FAILED;
	strlcpy(gpu_shared->detail, detail, sizeof(gpu_shared->detail));
	SpinLockRelease(&gpu_shared->mutex);
}

void
ivf_gpu_worker_main(Datum arg)
{
	const IvfGpuOps *ops = NULL;
	IvfGpuContext *ctx = NULL;
	IvfGpuDeviceInfo info;
	char	   *why = NULL;
	char	   *detail;
	int			device = ivf_gpu_device;
	int			rc;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("ivf gpu worker");

	SpinLockAcquire(&gpu_shared->mutex);
	gpu_shared->worker_pid = MyProcPid;
	gpu_shared->state = IVF_GPU_STATE_STARTING;
	gpu_shared->starts++;
	gpu_shared->backend[0] = '\0';
	gpu_shared->device[0] = '\0';
	gpu_shared->detail[0] = '\0';
	gpu_shared->memory_used = 0;
	gpu_shared->indexes_resident = 0;
	SpinLockRelease(&gpu_shared->mutex);

	/* one BLAS thread: the worker must not fight the backends for cores */
	ivf_blas_set_threads(1);

	if (ivf_gpu_backend_choice != IVF_GPU_BACKEND_CPU)
	{
		ops = load_device_library(&why);
		if (ops == NULL && ivf_gpu_backend_choice == IVF_GPU_BACKEND_DEVICE)
		{
			ereport(LOG,
					(errmsg("ivf gpu worker: no device, serving nothing: %s", why),
					 errhint("Set ivf.gpu_backend = auto or cpu to use the CPU instead.")));
			publish_failure(why);
		}
		else if (ops == NULL)
			ereport(LOG,
					(errmsg("ivf gpu worker: no device, using the CPU: %s", why)));
	}
	if (ops == NULL && ivf_gpu_backend_choice != IVF_GPU_BACKEND_DEVICE)
	{
		ops = ivf_gpu_cpu_ops();
		device = 0;
	}

	if (ops != NULL)
	{
		rc = ops->context_create(device,
								 (unsigned long long) ivf_gpu_memory_limit_mb * 1024 * 1024,
								 &ctx);
		if (rc != IVF_GPU_OK)
		{
			detail = psprintf("%s context on device %d: %s", ops->backend, device,
							  ops->last_error());
			ereport(LOG, (errmsg("ivf gpu worker: %s", detail)));
			publish_failure(detail);
			ops = NULL;
		}
	}

	if (ops != NULL)
	{
		if (ops->device_info(device, &info) != IVF_GPU_OK)
			memset(&info, 0, sizeof(info));
		SpinLockAcquire(&gpu_shared->mutex);
		gpu_shared->state = IVF_GPU_STATE_READY;
		strlcpy(gpu_shared->backend, ops->backend, sizeof(gpu_shared->backend));
		strlcpy(gpu_shared->device, info.name, sizeof(gpu_shared->device));
		if (why != NULL)
			strlcpy(gpu_shared->detail, why, sizeof(gpu_shared->detail));
		gpu_shared->device_memory = info.total_memory;
		gpu_shared->memory_limit = (uint64) ivf_gpu_memory_limit_mb * 1024 * 1024;
		gpu_shared->memory_used = ops->memory_used(ctx);
		SpinLockRelease(&gpu_shared->mutex);
		ereport(LOG,
				(errmsg("ivf gpu worker ready: %s, %s", ops->backend,
						info.name[0] ? info.name : "no device name")));
	}

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (ops != NULL)
		{
			SpinLockAcquire(&gpu_shared->mutex);
			gpu_shared->memory_used = ops->memory_used(ctx);
			SpinLockRelease(&gpu_shared->mutex);
		}
	}
}

/* -------------------------------------------------------------- SQL */

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
	Datum		values[14];
	bool		nulls[14];
	IvfGpuShared snap;
	const char *state;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(nulls, 0, sizeof(nulls));
	memset(&snap, 0, sizeof(snap));

	if (!gpu_preloaded || gpu_shared == NULL)
		state = "not loaded";
	else
	{
		SpinLockAcquire(&gpu_shared->mutex);
		memcpy(&snap, gpu_shared, sizeof(snap));
		SpinLockRelease(&gpu_shared->mutex);
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
	values[13] = CStringGetTextDatum(snap.detail);
	nulls[13] = (snap.detail[0] == '\0');

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
