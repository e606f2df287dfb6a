/*-------------------------------------------------------------------------
 *
 * ivfgpu_worker.c
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
 * This file also holds ivf_gpu_init, which _PG_init calls: the ivf.gpu*
 * settings and, at preload, the worker's shared memory (ivfgpu_proto.h
 * describes it and the messages) and the worker.  The worker takes the
 * submitted requests from the slots and answers each in place: uploads
 * make or refresh index copies, k-means sessions keep a build's training
 * points for its rounds, searches are answered from a copy that holds
 * their lists at the versions they read.
 *
 * Batching.  Searches that arrive within ivf.gpu_batch_window of each
 * other, from any backend, are answered by one search per index copy.
 *
 * IDENTIFICATION
 *	  src/gpuclient/ivfgpu_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include "common/relpath.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "distance.h"
#include "ivf_gpu.h"
#include "gpuclient.h"
#include "ivfgpu_proto.h"

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

static const struct config_enum_entry gpu_mode_options[] = {
	{"off", IVF_GPU_OFF, false},
	{"on", IVF_GPU_ON, false},
	{"auto", IVF_GPU_AUTO, false},
	{"false", IVF_GPU_OFF, true},
	{"true", IVF_GPU_ON, true},
	{NULL, 0, false}
};

int			ivf_gpu_mode = IVF_GPU_OFF;
int			ivf_gpu_scan_k = 100;
bool		ivf_gpu_build = false;
bool		ivf_gpu_worker_enabled = false;
static int	ivf_gpu_backend_choice = IVF_GPU_BACKEND_AUTO;
static char *ivf_gpu_library = NULL;
static int	ivf_gpu_device = 0;
static int	ivf_gpu_memory_limit_mb = 0;
static int	ivf_gpu_batch_window = 100;	/* microseconds */
static int	ivf_gpu_max_batch = 4096;	/* queries */

IvfGpuShared *ivf_gpu_shared = NULL;
bool		ivf_gpu_preloaded = false;

#ifdef IVF_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PGDLLEXPORT void ivf_gpu_worker_main(Datum arg);

static Size
gpu_shmem_size(void)
{
	return MAXALIGN(sizeof(IvfGpuShared)) + (Size) IVF_GPU_SLOTS * IVF_GPU_SLOT_BYTES;
}

#ifdef IVF_HAVE_SHMEM_REQUEST_HOOK
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
	ivf_gpu_shared = ShmemInitStruct("ivf gpu worker", gpu_shmem_size(), &found);
	if (!found)
	{
		int			i;

		memset(ivf_gpu_shared, 0, sizeof(IvfGpuShared));
		SpinLockInit(&ivf_gpu_shared->mutex);
		ivf_gpu_shared->worker_procno = -1;
		for (i = 0; i < IVF_GPU_VERSIONS; i++)
			pg_atomic_init_u64(&ivf_gpu_shared->versions[i], 0);
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
	DefineCustomEnumVariable("ivf.gpu",
							 "Whether searches go to the GPU worker.",
							 "on: batch search (ivf_search) and index scans, when the worker is up; auto: batches of at least 64 queries; off: never.  Without a usable worker the CPU answers.",
							 &ivf_gpu_mode,
							 IVF_GPU_OFF,
							 gpu_mode_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("ivf.gpu_scan_k",
							"Rows an index scan asks the GPU worker for.",
							"With ivf.gpu = on an index scan's first round asks the worker for this many nearest rows; a scan that needs more goes on with the CPU.",
							&ivf_gpu_scan_k,
							100, 1, 1024,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("ivf.gpu_build",
							 "Whether CREATE INDEX runs its k-means assignment steps on the GPU worker.",
							 "Without a usable worker the CPU runs them.",
							 &ivf_gpu_build,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/*
	 * Server-start settings can only be defined then: without the preload
	 * there is no worker, and the settings do not exist.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;
	ivf_gpu_preloaded = true;

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
	DefineCustomIntVariable("ivf.gpu_batch_window",
							"How long the GPU worker waits for more searches to merge into one batch.",
							"Searches from any backend that arrive within this many microseconds of the first, up to ivf.gpu_max_batch queries, are answered by one search on the device.",
							&ivf_gpu_batch_window,
							100, 0, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ivf.gpu_max_batch",
							"Queries after which the GPU worker stops waiting for more to batch.",
							NULL,
							&ivf_gpu_max_batch,
							4096, 1, INT_MAX,
							PGC_SIGHUP,
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

#ifdef IVF_HAVE_SHMEM_REQUEST_HOOK
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
	SpinLockAcquire(&ivf_gpu_shared->mutex);
	ivf_gpu_shared->state = IVF_GPU_STATE_FAILED;
	strlcpy(ivf_gpu_shared->detail, detail, sizeof(ivf_gpu_shared->detail));
	SpinLockRelease(&ivf_gpu_shared->mutex);
}

/* ------------------------------------------------- the worker's service */

/* an index copy on the device */
typedef struct Resident
{
	bool		used;
	bool		complete;		/* every list uploaded once */
	Oid			db;
	Oid			relfile;
	Oid			spc;
	int			relbackend;
	uint64		token;
	uint64		last_used;
	int			metric;
	int			dims;
	int			nlists;
	uint32		generation;		/* the view its lists are numbered in */
	uint64	   *list_versions;	/* each list's version as uploaded */
	IvfGpuIndex *index;
} Resident;

#define IVF_GPU_MAX_RESIDENT 64

static Resident resident[IVF_GPU_MAX_RESIDENT];
static uint64 use_clock = 0;
static uint64 token_clock = 0;
static const IvfGpuOps *w_ops = NULL;
static IvfGpuContext *w_ctx = NULL;

static Resident *
find_resident(Oid db, Oid relfile)
{
	int			i;

	for (i = 0; i < IVF_GPU_MAX_RESIDENT; i++)
		if (resident[i].used && resident[i].db == db && resident[i].relfile == relfile)
			return &resident[i];
	return NULL;
}

static void
drop_resident(Resident *r)
{
	if (r->index)
		w_ops->index_free(r->index);
	if (r->list_versions)
		pfree(r->list_versions);
	memset(r, 0, sizeof(Resident));
}

/*
 * Whether the index file a copy was made from is gone: REINDEX, TRUNCATE,
 * VACUUM FULL, SET TABLESPACE and DROP give an index a new file or none,
 * and the old one is unlinked or (until the next checkpoint) truncated to
 * nothing at commit.  The first segment of a live ivfflat index always
 * holds at least its meta page.
 */
static bool
relation_file_gone(const Resident *r)
{
	char	   *path = GetRelationPath(r->db, r->spc, r->relfile, r->relbackend,
									   MAIN_FORKNUM);
	struct stat st;
	bool		gone;

	if (stat(path, &st) == 0)
		gone = (st.st_size == 0);
	else
		gone = (errno == ENOENT);
	pfree(path);
	return gone;
}

/* Drop the copies of index files that are gone; true if there were any. */
static bool
drop_dropped_copies(void)
{
	bool		any = false;
	int			i;

	for (i = 0; i < IVF_GPU_MAX_RESIDENT; i++)
		if (resident[i].used && relation_file_gone(&resident[i]))
		{
			elog(DEBUG1, "ivf gpu worker: index %u/%u is gone, its copy too",
				 resident[i].db, resident[i].relfile);
			drop_resident(&resident[i]);
			any = true;
		}
	return any;
}

/* evict the least recently used copy other than keep; false if none */
static bool
evict_one(Resident *keep)
{
	Resident   *victim = NULL;
	int			i;

	for (i = 0; i < IVF_GPU_MAX_RESIDENT; i++)
		if (resident[i].used && &resident[i] != keep &&
			(victim == NULL || resident[i].last_used < victim->last_used))
			victim = &resident[i];
	if (victim == NULL)
		return false;
	elog(DEBUG1, "ivf gpu worker: evicting index %u/%u", victim->db, victim->relfile);
	drop_resident(victim);
	return true;
}

static void
count_resident(void)
{
	int			i,
				n = 0;

	for (i = 0; i < IVF_GPU_MAX_RESIDENT; i++)
		n += resident[i].used && resident[i].complete;
	SpinLockAcquire(&ivf_gpu_shared->mutex);
	ivf_gpu_shared->indexes_resident = n;
	ivf_gpu_shared->memory_used = w_ops->memory_used(w_ctx);
	SpinLockRelease(&ivf_gpu_shared->mutex);
}

static IvfGpuReply
msg_error(IvfGpuMsg *m, const char *fmt,...) pg_attribute_printf(2, 3);

static IvfGpuReply
msg_error(IvfGpuMsg *m, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(m->error, sizeof(m->error), fmt, ap);
	va_end(ap);
	return REPLY_ERROR;
}

static IvfGpuReply
serve_upload_begin(IvfGpuMsg *m)
{
	Resident   *r = find_resident(m->db, m->relfile);
	int			rc;
	int			i;

	/* the old copy goes first; its entry is then free for the new one */
	if (r != NULL)
		drop_resident(r);
	/* a REINDEX's new file comes with its old file gone: free that copy */
	(void) drop_dropped_copies();
	for (i = 0; r == NULL && i < IVF_GPU_MAX_RESIDENT; i++)
		if (!resident[i].used)
			r = &resident[i];
	if (r == NULL)
	{
		(void) evict_one(NULL);
		for (i = 0; r == NULL && i < IVF_GPU_MAX_RESIDENT; i++)
			if (!resident[i].used)
				r = &resident[i];
	}
	for (;;)
	{
		IvfGpuIndex *index = NULL;

		rc = w_ops->index_create(w_ctx, m->metric, m->dims, m->nlists,
								 (const float *) MSG_PAYLOAD(m), &index);
		if (rc == IVF_GPU_OK)
		{
			r->list_versions = MemoryContextAllocZero(TopMemoryContext,
													  sizeof(uint64) * m->nlists);
			r->used = true;
			r->complete = false;
			r->db = m->db;
			r->relfile = m->relfile;
			r->spc = m->spc;
			r->relbackend = m->relbackend;
			r->token = ++token_clock;
			r->last_used = ++use_clock;
			r->metric = m->metric;
			r->dims = m->dims;
			r->nlists = m->nlists;
			r->generation = m->generation;
			r->index = index;
			m->token = r->token;
			return REPLY_OK;
		}
		if (rc != IVF_GPU_OUT_OF_MEMORY || !evict_one(r))
			return msg_error(m, "index create: %s", w_ops->last_error());
	}
}

static IvfGpuReply
serve_upload_lists(IvfGpuMsg *m)
{
	Resident   *r = find_resident(m->db, m->relfile);
	const int32 *lists = (const int32 *) MSG_PAYLOAD(m);
	const int64 *counts;
	const float *vecs;
	const int64 *ids;
	const uint64 *versions;
	int64		total = 0;
	int			b;

	if (r == NULL || r->token != m->token)
		return msg_error(m, "upload superseded");
	counts = (const int64 *) ALIGN8((Size) (lists + m->nbatch));
	for (b = 0; b < m->nbatch; b++)
	{
		if (lists[b] < 0 || lists[b] >= r->nlists)
			return msg_error(m, "list %d out of range", lists[b]);
		total += counts[b];
	}
	versions = (const uint64 *) ALIGN8((Size) (counts + m->nbatch));
	vecs = (const float *) ALIGN8((Size) (versions + m->nbatch));
	ids = (const int64 *) ALIGN8((Size) (vecs + (Size) total * r->dims));
	for (b = 0; b < m->nbatch; b++)
	{
		for (;;)
		{
			int			rc = w_ops->index_set_list(r->index, lists[b], counts[b],
												   vecs, (const long long *) ids);

			if (rc == IVF_GPU_OK)
				break;
			if (rc != IVF_GPU_OUT_OF_MEMORY || !evict_one(r))
			{
				IvfGpuReply reply = msg_error(m, "list %d: %s", lists[b], w_ops->last_error());

				drop_resident(r);
				return reply;
			}
		}
		r->list_versions[lists[b]] = versions[b];
		vecs += (Size) counts[b] * r->dims;
		ids += counts[b];
	}
	return REPLY_OK;
}

static IvfGpuReply
serve_upload_end(IvfGpuMsg *m)
{
	Resident   *r = find_resident(m->db, m->relfile);

	if (r == NULL || r->token != m->token)
		return msg_error(m, "upload superseded");
	r->complete = true;
	return REPLY_OK;
}

/* k-means sessions: a build's training points, kept for its rounds */
typedef struct KmSession
{
	uint64		token;
	int			pid;			/* the backend that opened it */
	uint32		lxid;			/* in this transaction (its build's) */
	int			metric;
	int			dims;
	int64		n;
	float	   *points;
	int			k;				/* the build's final centroids, if sent */
	float	   *centroids;
} KmSession;

#define IVF_GPU_MAX_KMEANS 4

static KmSession km_sessions[IVF_GPU_MAX_KMEANS];
static MemoryContext km_cxt = NULL;

static KmSession *
find_km(uint64 token)
{
	int			i;

	for (i = 0; i < IVF_GPU_MAX_KMEANS; i++)
		if (km_sessions[i].token == token && km_sessions[i].points != NULL)
			return &km_sessions[i];
	return NULL;
}

static void
drop_km(KmSession *ks)
{
	pfree(ks->points);
	if (ks->centroids)
		pfree(ks->centroids);
	memset(ks, 0, sizeof(KmSession));
}

/*
 * Drop the sessions whose build is over without having ended them: their
 * backend exited, or left the transaction that opened the session (a
 * cancelled or failed CREATE INDEX, whose backend sits idle).  A build
 * runs in one transaction, and a PGPROC's local transaction id changes
 * only when its transaction ends.
 */
static void
drop_orphaned_km(void)
{
	int			i;

	for (i = 0; i < IVF_GPU_MAX_KMEANS; i++)
	{
		KmSession  *ks = &km_sessions[i];
		PGPROC	   *proc;

		if (ks->points == NULL)
			continue;
		proc = BackendPidGetProc(ks->pid);
		if (proc == NULL || IvfProcLocalXid(proc) != ks->lxid)
		{
			elog(DEBUG1, "ivf gpu worker: dropping the k-means session of process %d, whose build is over",
				 ks->pid);
			drop_km(ks);
		}
	}
}

static IvfGpuReply
serve_kmeans(IvfGpuMsg *m)
{
	KmSession  *ks;
	int			i;

	switch (m->kind)
	{
		case MSG_KMEANS_BEGIN:

			/*
			 * A backend has one session at a time, and sessions whose build
			 * is over (backend gone, or out of the build's transaction) are
			 * dropped.
			 */
			for (i = 0; i < IVF_GPU_MAX_KMEANS; i++)
				if (km_sessions[i].points != NULL && km_sessions[i].pid == m->pid)
					drop_km(&km_sessions[i]);
			drop_orphaned_km();
			ks = NULL;
			for (i = 0; ks == NULL && i < IVF_GPU_MAX_KMEANS; i++)
				if (km_sessions[i].points == NULL)
					ks = &km_sessions[i];
			if (ks == NULL)
				return msg_error(m, "%d k-means sessions are open already", IVF_GPU_MAX_KMEANS);
			if (km_cxt == NULL)
				km_cxt = AllocSetContextCreate(TopMemoryContext, "ivf gpu k-means",
											   ALLOCSET_DEFAULT_SIZES);
			ks->points = MemoryContextAllocExtended(km_cxt,
													sizeof(float) * (Size) m->nq * m->dims,
													MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
			if (ks->points == NULL)
				return msg_error(m, "out of memory for %d training points", m->nq);
			ks->token = ++token_clock;
			ks->pid = m->pid;
			ks->lxid = m->lxid;
			ks->metric = m->metric;
			ks->dims = m->dims;
			ks->n = m->nq;
			m->token = ks->token;
			return REPLY_OK;
		case MSG_KMEANS_POINTS:
			ks = find_km(m->token);
			if (ks == NULL || m->nprobe < 0 || m->nbatch < 0 ||
				(int64) m->nprobe + m->nbatch > ks->n)
				return msg_error(m, "no such k-means session, or points out of range");
			memcpy(ks->points + (Size) m->nprobe * ks->dims, MSG_PAYLOAD(m),
				   sizeof(float) * (Size) m->nbatch * ks->dims);
			return REPLY_OK;
		case MSG_KMEANS_ASSIGN:
			{
				const float *c = (const float *) MSG_PAYLOAD(m);
				int32	   *assign;
				float	   *dist;
				int			rc;

				ks = find_km(m->token);
				if (ks == NULL)
					return msg_error(m, "no such k-means session");
				assign = (int32 *) ALIGN8((Size) (c + (Size) m->k * ks->dims));
				dist = (float *) ALIGN8((Size) (assign + ks->n));
				rc = w_ops->kmeans_assign(w_ctx, ks->metric, ks->n, ks->dims, ks->points,
										  m->k, c, (int *) assign, dist);
				if (rc != IVF_GPU_OK)
					return msg_error(m, "k-means assignment: %s", w_ops->last_error());
				SpinLockAcquire(&ivf_gpu_shared->mutex);
				ivf_gpu_shared->kmeans_rounds++;
				SpinLockRelease(&ivf_gpu_shared->mutex);
				return REPLY_OK;
			}
		case MSG_ASSIGN_CENTROIDS:
			ks = find_km(m->token);
			if (ks == NULL || m->k < 1)
				return msg_error(m, "no such k-means session");
			if (ks->centroids)
				pfree(ks->centroids);
			ks->centroids = MemoryContextAllocExtended(km_cxt,
													   sizeof(float) * (Size) m->k * ks->dims,
													   MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
			if (ks->centroids == NULL)
				return msg_error(m, "out of memory for %d centroids", m->k);
			memcpy(ks->centroids, MSG_PAYLOAD(m), sizeof(float) * (Size) m->k * ks->dims);
			ks->k = m->k;
			return REPLY_OK;
		case MSG_ASSIGN_POINTS:
			{
				const float *x = (const float *) MSG_PAYLOAD(m);
				int32	   *assign;
				float	   *dist;
				int			rc;

				ks = find_km(m->token);
				if (ks == NULL || ks->centroids == NULL || m->nbatch < 0)
					return msg_error(m, "no such k-means session, or no centroids");
				assign = (int32 *) ALIGN8((Size) (x + (Size) m->nbatch * ks->dims));
				dist = (float *) ALIGN8((Size) (assign + m->nbatch));
				rc = w_ops->kmeans_assign(w_ctx, ks->metric, m->nbatch, ks->dims, x,
										  ks->k, ks->centroids, (int *) assign, dist);
				if (rc != IVF_GPU_OK)
					return msg_error(m, "assignment: %s", w_ops->last_error());
				SpinLockAcquire(&ivf_gpu_shared->mutex);
				ivf_gpu_shared->assigned_points += m->nbatch;
				SpinLockRelease(&ivf_gpu_shared->mutex);
				return REPLY_OK;
			}
		case MSG_KMEANS_END:
			ks = find_km(m->token);
			if (ks != NULL)
				drop_km(ks);
			return REPLY_OK;
		default:
			return msg_error(m, "unknown request %d", (int) m->kind);
	}
}

/* a request taken from its slot, its segment mapped */
typedef struct Pending
{
	int			slot;
	dsm_segment *seg;			/* NULL: the backend is gone */
	IvfGpuMsg  *m;
	IvfGpuReply reply;
	bool		answered;
} Pending;

/* Take every submitted request; returns the queries among them. */
static int
take_submitted(Pending *pend, int *np)
{
	int			queries = 0;
	int			i;

	for (i = 0; i < IVF_GPU_SLOTS; i++)
	{
		IvfGpuSlot *slot = &ivf_gpu_shared->slots[i];
		dsm_handle	handle;
		bool		in_slot;
		int			owner_pid;
		Pending    *p;

		SpinLockAcquire(&ivf_gpu_shared->mutex);
		if (slot->state != SLOT_SUBMITTED)
		{
			SpinLockRelease(&ivf_gpu_shared->mutex);
			continue;
		}
		slot->state = SLOT_RUNNING;
		handle = slot->handle;
		in_slot = slot->in_slot;
		owner_pid = slot->owner_pid;
		SpinLockRelease(&ivf_gpu_shared->mutex);

		p = &pend[(*np)++];
		memset(p, 0, sizeof(Pending));
		p->slot = i;
		if (in_slot)
			p->m = (IvfGpuMsg *) SLOT_AREA(i);
		else
		{
			p->seg = dsm_attach(handle);

			/*
			 * A backend that gave up the request (cancel) may have detached
			 * its segment already: then it is gone, or (handles are drawn
			 * at random) the handle names some other segment, which must
			 * not be written to.  Requests name their backend.
			 */
			if (p->seg != NULL &&
				(dsm_segment_map_length(p->seg) < sizeof(IvfGpuMsg) ||
				 ((IvfGpuMsg *) dsm_segment_address(p->seg))->pid != owner_pid))
			{
				dsm_detach(p->seg);
				p->seg = NULL;
			}
			if (p->seg == NULL)
			{
				p->reply = REPLY_ERROR;
				p->answered = true;
				continue;
			}
			p->m = (IvfGpuMsg *) dsm_segment_address(p->seg);
		}
		p->m->error[0] = '\0';
		if (p->m->kind == MSG_SEARCH)
			queries += p->m->nq;
	}
	return queries;
}

/*
 * Flag the probes of search m whose list the copy holds at another version
 * than m read; true if there are any.
 */
static bool
flag_stale_lists(const Resident *r, IvfGpuMsg *m)
{
	SearchLayout l = search_layout(m->nq, m->dims, m->nprobe, m->k);
	const int32 *probes = (const int32 *) ((char *) m + l.probes);
	const uint64 *versions = (const uint64 *) ((char *) m + l.versions);
	uint8	   *stale = (uint8 *) m + l.stale;
	Size		n = (Size) m->nq * m->nprobe;
	bool		any = false;
	Size		i;

	for (i = 0; i < n; i++)
	{
		stale[i] = (probes[i] >= 0 && probes[i] < r->nlists &&
					r->list_versions[probes[i]] != versions[i]);
		any |= stale[i];
	}
	return any;
}

/*
 * One search for several requests on the same copy: their queries
 * concatenated, probes padded with -1 to the widest, k the largest (each
 * request keeps the first k of its rows: the same rows, in order).
 */
static void
serve_search_group(Resident *r, Pending **group, int ng)
{
	int			nq = 0,
				nprobe = 0,
				k = 0;
	int			g;
	float	   *q;
	int		   *probes;
	long long  *limits;
	float	   *dist;
	long long  *ids;
	int			at = 0;
	int			rc;

	for (g = 0; g < ng; g++)
	{
		nq += group[g]->m->nq;
		nprobe = Max(nprobe, group[g]->m->nprobe);
		k = Max(k, group[g]->m->k);
	}
	q = palloc_extended(sizeof(float) * (Size) nq * r->dims, MCXT_ALLOC_HUGE);
	probes = palloc_extended(sizeof(int) * (Size) nq * Max(nprobe, 1), MCXT_ALLOC_HUGE);
	limits = palloc_extended(sizeof(long long) * (Size) nq * Max(nprobe, 1), MCXT_ALLOC_HUGE);
	dist = palloc_extended(sizeof(float) * (Size) nq * k, MCXT_ALLOC_HUGE);
	ids = palloc_extended(sizeof(long long) * (Size) nq * k, MCXT_ALLOC_HUGE);
	for (g = 0; g < ng; g++)
	{
		IvfGpuMsg  *m = group[g]->m;
		SearchLayout l = search_layout(m->nq, m->dims, m->nprobe, m->k);
		int			i,
					j;

		memcpy(q + (Size) at * r->dims, (char *) m + l.queries,
			   sizeof(float) * (Size) m->nq * m->dims);
		for (i = 0; i < m->nq; i++)
			for (j = 0; j < nprobe; j++)
			{
				Size		to = (Size) (at + i) * nprobe + j;
				Size		from = (Size) i * m->nprobe + j;

				probes[to] = j < m->nprobe ? ((int32 *) ((char *) m + l.probes))[from] : -1;
				limits[to] = j < m->nprobe ? ((int64 *) ((char *) m + l.limits))[from] : 0;
			}
		at += m->nq;
	}
	rc = w_ops->search(r->index, nq, q, nprobe, probes, limits, k, dist, ids);
	at = 0;
	for (g = 0; g < ng; g++)
	{
		IvfGpuMsg  *m = group[g]->m;
		SearchLayout l = search_layout(m->nq, m->dims, m->nprobe, m->k);
		int			i;

		group[g]->answered = true;
		if (rc != IVF_GPU_OK)
		{
			group[g]->reply = msg_error(m, "search: %s", w_ops->last_error());
			continue;
		}
		for (i = 0; i < m->nq; i++)
		{
			memcpy((char *) m + l.dist + sizeof(float) * (Size) i * m->k,
				   dist + (Size) (at + i) * k, sizeof(float) * m->k);
			memcpy((char *) m + l.ids + sizeof(int64) * (Size) i * m->k,
				   ids + (Size) (at + i) * k, sizeof(int64) * m->k);
		}
		group[g]->reply = REPLY_OK;
		at += m->nq;
	}
	if (rc == IVF_GPU_OK)
	{
		SpinLockAcquire(&ivf_gpu_shared->mutex);
		ivf_gpu_shared->batches++;
		ivf_gpu_shared->queries += nq;
		SpinLockRelease(&ivf_gpu_shared->mutex);
	}
	pfree(q);
	pfree(probes);
	pfree(limits);
	pfree(dist);
	pfree(ids);
}

/*
 * Answer every submitted request.  Searches that arrive within
 * ivf.gpu_batch_window of the first, up to ivf.gpu_max_batch queries, are
 * merged per index copy into one search (dynamic batching across
 * backends); uploads are served first, in arrival order.
 */
static void
serve_slots(MemoryContext cxt)
{
	Pending		pend[IVF_GPU_SLOTS];
	Pending    *group[IVF_GPU_SLOTS];
	int			np = 0;
	int			queries;
	int			i;
	bool		uploads = false;
	MemoryContext old = MemoryContextSwitchTo(cxt);

	queries = take_submitted(pend, &np);
	if (np == 0)
	{
		MemoryContextSwitchTo(old);
		return;
	}
	if (queries > 0 && ivf_gpu_batch_window > 0 && queries < ivf_gpu_max_batch)
	{
		TimestampTz end = GetCurrentTimestamp() + ivf_gpu_batch_window;

		while (GetCurrentTimestamp() < end && queries < ivf_gpu_max_batch &&
			   np < IVF_GPU_SLOTS)
		{
			pg_usleep(Min(50L, (long) ivf_gpu_batch_window));
			queries += take_submitted(pend, &np);
		}
	}

	for (i = 0; i < np; i++)
	{
		IvfGpuMsg  *m = pend[i].m;

		if (pend[i].answered || m->kind == MSG_SEARCH)
			continue;
		pend[i].answered = true;
		uploads = true;
		if (w_ops == NULL)
			pend[i].reply = msg_error(m, "no usable GPU implementation");
		else if (m->kind == MSG_UPLOAD_BEGIN)
			pend[i].reply = serve_upload_begin(m);
		else if (m->kind == MSG_UPLOAD_LISTS)
			pend[i].reply = serve_upload_lists(m);
		else if (m->kind == MSG_UPLOAD_END)
			pend[i].reply = serve_upload_end(m);
		else
			pend[i].reply = serve_kmeans(m);
	}
	if (uploads)
		count_resident();

	for (i = 0; i < np; i++)
	{
		IvfGpuMsg  *m = pend[i].m;
		Resident   *r;
		int			ng = 0;
		int			j;

		if (pend[i].answered)
			continue;
		r = w_ops ? find_resident(m->db, m->relfile) : NULL;
		if (w_ops == NULL)
		{
			pend[i].reply = msg_error(m, "no usable GPU implementation");
			pend[i].answered = true;
			continue;
		}
		if (r == NULL || !r->complete ||
			r->metric != m->metric || r->dims != m->dims || r->nlists != m->nlists ||
			r->generation != m->generation)
		{
			pend[i].reply = REPLY_STALE;
			pend[i].answered = true;
			m->token = 0;		/* no copy to refresh: upload it all */
			continue;
		}
		if (w_ops->max_k > 0 && m->k > w_ops->max_k)
		{
			pend[i].reply = msg_error(m, "k = %d is above the %s backend's %d", m->k,
									  w_ops->backend, w_ops->max_k);
			pend[i].answered = true;
			continue;
		}
		/*
		 * This request and every later one on the same copy, each only if
		 * the copy has every list it probes at the version it read (else
		 * "stale", with the lists to refresh flagged).
		 */
		for (j = i; j < np; j++)
		{
			IvfGpuMsg  *o = pend[j].m;

			if (!pend[j].answered && o->kind == MSG_SEARCH && o->db == m->db &&
				o->relfile == m->relfile &&
				o->metric == m->metric && o->dims == m->dims &&
				o->nlists == m->nlists && o->generation == m->generation &&
				(w_ops->max_k == 0 || o->k <= w_ops->max_k))
			{
				if (flag_stale_lists(r, o))
				{
					pend[j].reply = REPLY_STALE;
					pend[j].answered = true;
					o->token = r->token;
				}
				else
					group[ng++] = &pend[j];
			}
		}
		if (ng == 0)
			continue;
		r->last_used = ++use_clock;
		serve_search_group(r, group, ng);
		CHECK_FOR_INTERRUPTS();
	}

	for (i = 0; i < np; i++)
	{
		IvfGpuSlot *slot = &ivf_gpu_shared->slots[pend[i].slot];
		int			owner;

		if (pend[i].seg)
			dsm_detach(pend[i].seg);
		SpinLockAcquire(&ivf_gpu_shared->mutex);
		owner = slot->owner_procno;
		if (slot->state == SLOT_ABANDONED)
		{
			slot->state = SLOT_FREE;
			owner = -1;
		}
		else
		{
			slot->status = pend[i].reply;
			slot->state = SLOT_DONE;
		}
		SpinLockRelease(&ivf_gpu_shared->mutex);
		if (owner >= 0)
			SetLatch(&ProcGlobal->allProcs[owner].procLatch);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(cxt);
}

/*
 * The worker is exiting (terminated, or an error): say so at once, so that
 * backends answer on the CPU instead of waiting for the next start.
 */
static void
worker_exit(int code, Datum arg)
{
	SpinLockAcquire(&ivf_gpu_shared->mutex);
	ivf_gpu_shared->state = IVF_GPU_STATE_STOPPED;
	ivf_gpu_shared->worker_procno = -1;
	SpinLockRelease(&ivf_gpu_shared->mutex);
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
	MemoryContext serve_cxt;
	TimestampTz last_sweep = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("ivf gpu worker");
	before_shmem_exit(worker_exit, (Datum) 0);

	SpinLockAcquire(&ivf_gpu_shared->mutex);
	ivf_gpu_shared->worker_pid = MyProcPid;
	ivf_gpu_shared->worker_procno = MyProc->pgprocno;
	ivf_gpu_shared->state = IVF_GPU_STATE_STARTING;
	ivf_gpu_shared->starts++;
	/* requests a dead worker took are answered "error": their backends see
	 * the new start and fall back (an abandoned one is simply freed) */
	{
		int			i;

		for (i = 0; i < IVF_GPU_SLOTS; i++)
		{
			if (ivf_gpu_shared->slots[i].state == SLOT_RUNNING)
			{
				ivf_gpu_shared->slots[i].status = REPLY_ERROR;
				ivf_gpu_shared->slots[i].state = SLOT_DONE;
			}
			else if (ivf_gpu_shared->slots[i].state == SLOT_ABANDONED)
				ivf_gpu_shared->slots[i].state = SLOT_FREE;
		}
	}
	ivf_gpu_shared->backend[0] = '\0';
	ivf_gpu_shared->device[0] = '\0';
	ivf_gpu_shared->detail[0] = '\0';
	ivf_gpu_shared->memory_used = 0;
	ivf_gpu_shared->indexes_resident = 0;
	SpinLockRelease(&ivf_gpu_shared->mutex);

	/* one BLAS thread: the worker must not fight the backends for cores */
	ivf_blas_set_threads(1);
	serve_cxt = AllocSetContextCreate(TopMemoryContext, "ivf gpu worker requests",
									  ALLOCSET_DEFAULT_SIZES);

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
		SpinLockAcquire(&ivf_gpu_shared->mutex);
		ivf_gpu_shared->state = IVF_GPU_STATE_READY;
		strlcpy(ivf_gpu_shared->backend, ops->backend, sizeof(ivf_gpu_shared->backend));
		strlcpy(ivf_gpu_shared->device, info.name, sizeof(ivf_gpu_shared->device));
		if (why != NULL)
			strlcpy(ivf_gpu_shared->detail, why, sizeof(ivf_gpu_shared->detail));
		ivf_gpu_shared->device_memory = info.total_memory;
		ivf_gpu_shared->memory_limit = (uint64) ivf_gpu_memory_limit_mb * 1024 * 1024;
		ivf_gpu_shared->memory_used = ops->memory_used(ctx);
		SpinLockRelease(&ivf_gpu_shared->mutex);
		ereport(LOG,
				(errmsg("ivf gpu worker ready: %s, %s", ops->backend,
						info.name[0] ? info.name : "no device name")));
		w_ops = ops;
		w_ctx = ctx;
	}

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		serve_slots(serve_cxt);

		/*
		 * Once a second at most: free the copies of dropped index files
		 * (uploads check too) and the k-means sessions of builds that
		 * ended without closing them, so that neither waits for memory
		 * pressure or the next build to go.
		 */
		if (w_ops != NULL &&
			TimestampDifferenceExceeds(last_sweep, GetCurrentTimestamp(), 1000))
		{
			if (drop_dropped_copies())
				count_resident();
			drop_orphaned_km();
			last_sweep = GetCurrentTimestamp();
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
