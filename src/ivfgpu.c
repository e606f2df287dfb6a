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
 * Serving searches.  A backend running ivf_search with ivf.gpu on takes a
 * request slot in the worker's shared memory and writes its request
 * (queries, the lists it ranked for each, per-list limits, k) into that
 * slot's own area when it fits (IVF_GPU_SLOT_BYTES, 32 kB); a larger
 * request, or one that finds no free slot, goes into a dynamic shared
 * memory segment that a slot then names (req_create, req_send).  It sets
 * the worker's latch; the worker answers in the same place and sets the
 * backend's latch.  Only ids and distances come back.
 *
 * Coherence.  Every change to a list of an index (an insert into it, a
 * VACUUM that removed from it) adds one to a shared version counter for
 * that list (a bucket of a hashed array of atomics keyed by database,
 * relfilenode and list: a collision can only make a list look changed).
 * A search carries, for each list it probes, the counter as the backend
 * read it after taking its snapshot; the worker answers only if its copy
 * holds every one of those lists at exactly that version, else "stale"
 * with the lists flagged, and the backend sends those lists again (read
 * from its pages after reading their counters) -- or the whole index when
 * there is no copy -- and asks again.  A change visible to the snapshot
 * bumped its list's counter before it committed, so before the read: no
 * answer ever misses it.  REINDEX, TRUNCATE and VACUUM FULL give a new
 * relfilenode, hence new keys; the worker frees the copies of files that
 * are gone (drop_dropped_copies).
 *
 * Batching.  Searches that arrive within ivf.gpu_batch_window of each
 * other, from any backend, are answered by one search per index copy.
 * With ivf.gpu_build, CREATE INDEX runs its k-means assignment steps here.
 * src/README has the slot states and the coherence argument in full.
 *
 * Fallback.  Whatever goes wrong -- no worker, worker restarted or gone
 * mid-request, no free slot, device out of memory, an upload that fails
 * -- the backend answers on the CPU as if ivf.gpu were off, adds one to
 * the fallback counter and logs why (at LOG); the user sees no error.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include "access/genam.h"
#include "access/table.h"
#include "common/hashfn.h"
#include "common/relpath.h"
#include "fmgr.h"
#include "funcapi.h"
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

/* request slots: a backend owns one from SUBMITTED until it sets it FREE */
#define IVF_GPU_SLOTS		64
#define IVF_GPU_VERSIONS	65536

typedef enum IvfGpuSlotState
{
	SLOT_FREE = 0,
	SLOT_RESERVED,				/* its backend is writing a message into
								 * the slot's own area */
	SLOT_SUBMITTED,				/* by its backend; the worker may take it */
	SLOT_RUNNING,				/* the worker is on it */
	SLOT_DONE,					/* answered: status says how */
	SLOT_ABANDONED				/* its backend left while running: the
								 * worker frees it when done */
} IvfGpuSlotState;

typedef enum IvfGpuReply
{
	REPLY_OK = 0,
	REPLY_STALE,				/* no copy, or probed lists changed since */
	REPLY_ERROR					/* see the segment's error text */
} IvfGpuReply;

typedef struct IvfGpuSlot
{
	IvfGpuSlotState state;
	int			owner_procno;
	int			owner_pid;		/* to reclaim a slot its backend left behind */
	int			worker_start;	/* gpu_shared->starts when submitted */
	bool		in_slot;		/* the message is in the slot's area, not in
								 * the segment `handle' */
	dsm_handle	handle;
	IvfGpuReply status;
} IvfGpuSlot;

/*
 * Messages up to this size (most searches of a few queries, the small
 * control messages) are written into their slot's own area of the
 * worker's shared memory instead of a dynamic shared memory segment,
 * whose creation and mapping cost a single-query search tens of
 * microseconds.
 */
#define IVF_GPU_SLOT_BYTES	((Size) 32 * 1024)

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
	uint64		kmeans_rounds;
	uint64		assigned_points;
	uint64		refreshed_lists;
	int			worker_procno;	/* its PGPROC, for its latch; -1 when none */
	IvfGpuSlot	slots[IVF_GPU_SLOTS];
	pg_atomic_uint64 versions[IVF_GPU_VERSIONS];
	/* the slots' own message areas follow, IVF_GPU_SLOT_BYTES each */
} IvfGpuShared;

#define SLOT_AREA(i) \
	((char *) gpu_shared + MAXALIGN(sizeof(IvfGpuShared)) + (Size) (i) * IVF_GPU_SLOT_BYTES)

typedef enum IvfGpuMode
{
	IVF_GPU_OFF,
	IVF_GPU_ON,
	IVF_GPU_AUTO
} IvfGpuMode;

static const struct config_enum_entry gpu_mode_options[] = {
	{"off", IVF_GPU_OFF, false},
	{"on", IVF_GPU_ON, false},
	{"auto", IVF_GPU_AUTO, false},
	{"false", IVF_GPU_OFF, true},
	{"true", IVF_GPU_ON, true},
	{NULL, 0, false}
};

/* ivf.gpu = auto sends batches of at least this many queries */
#define IVF_GPU_AUTO_MIN_QUERIES 64

static int	ivf_gpu_mode = IVF_GPU_OFF;
int			ivf_gpu_scan_k = 100;
static bool ivf_gpu_build = false;
bool		ivf_gpu_worker_enabled = false;
static int	ivf_gpu_backend_choice = IVF_GPU_BACKEND_AUTO;
static char *ivf_gpu_library = NULL;
static int	ivf_gpu_device = 0;
static int	ivf_gpu_memory_limit_mb = 0;
static int	ivf_gpu_batch_window = 100;	/* microseconds */
static int	ivf_gpu_max_batch = 4096;	/* queries */

static IvfGpuShared *gpu_shared = NULL;
static bool gpu_preloaded = false;

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
	gpu_shared = ShmemInitStruct("ivf gpu worker", gpu_shmem_size(), &found);
	if (!found)
	{
		int			i;

		memset(gpu_shared, 0, sizeof(IvfGpuShared));
		SpinLockInit(&gpu_shared->mutex);
		gpu_shared->worker_procno = -1;
		for (i = 0; i < IVF_GPU_VERSIONS; i++)
			pg_atomic_init_u64(&gpu_shared->versions[i], 0);
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
							 "Whether batch search (ivf_search) goes to the GPU worker.",
							 "on: always, when the worker is up; auto: batches of at least 64 queries; off: never.  Without a usable worker the CPU answers.",
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

/* ---------------------------------------------------------- messages */

typedef enum IvfGpuMsgKind
{
	MSG_SEARCH,
	MSG_UPLOAD_BEGIN,			/* centroids; answers a token */
	MSG_UPLOAD_LISTS,			/* some lists' slots */
	MSG_UPLOAD_END,				/* every list is in: the copy serves */
	MSG_KMEANS_BEGIN,			/* a k-means session of nq points; a token */
	MSG_KMEANS_POINTS,			/* rows [nprobe, nprobe + nbatch) of them */
	MSG_KMEANS_ASSIGN,			/* k centroids; answers assign, distances */
	MSG_KMEANS_END,
	MSG_ASSIGN_CENTROIDS,		/* the build's final centroids, kept */
	MSG_ASSIGN_POINTS			/* nbatch points; answers assign, distances */
} IvfGpuMsgKind;

/*
 * The head of a request segment; its payload follows at MSG_PAYLOAD:
 *   SEARCH        queries [nq x dims] float, probes [nq x nprobe] int32,
 *                 limits [nq x nprobe] int64, the probed lists' versions
 *                 [nq x nprobe] uint64; answer: distances [nq x k] float,
 *                 ids [nq x k] int64, or with "stale" a flag [nq x nprobe]
 *                 byte per probe whose list the copy has at another version
 *   UPLOAD_BEGIN  centroids [nlists x dims] float
 *   UPLOAD_LISTS  lists [nbatch] int32, counts [nbatch] int64, versions
 *                 [nbatch] uint64 (read before the list's pages), vectors
 *                 [sum counts x dims] float, ids [sum counts] int64; also
 *                 refreshes lists of a complete copy
 *   KMEANS_POINTS nbatch points [nbatch x dims] float (the first is point
 *                 number nprobe of the session's nq)
 *   KMEANS_ASSIGN centroids [k x dims] float; answer: assign [nq] int32,
 *                 distances [nq] float
 *   ASSIGN_CENTROIDS centroids [k x dims] float
 *   ASSIGN_POINTS points [nbatch x dims] float; answer: assign [nbatch]
 *                 int32, distances [nbatch] float
 */
typedef struct IvfGpuMsg
{
	IvfGpuMsgKind kind;
	Oid			db;
	Oid			relfile;
	Oid			spc;			/* with db, relfile and relbackend: the */
	int32		relbackend;		/* index's file, for the worker to see that
								 * it was dropped */
	uint32		lxid;			/* KMEANS_BEGIN: the build's transaction */
	uint64		token;			/* the copy's (uploads, and a stale answer) */
	int32		metric;
	int32		dims;
	int32		nlists;
	int32		nq;
	int32		k;
	int32		nprobe;
	int32		nbatch;
	int32		pid;			/* the requesting backend */
	char		error[256];
} IvfGpuMsg;

#define MSG_PAYLOAD(m) ((char *) (m) + MAXALIGN(sizeof(IvfGpuMsg)))
#define ALIGN8(x) TYPEALIGN(8, (x))

/* byte offsets of a SEARCH message's arrays, and its size */
typedef struct SearchLayout
{
	Size		queries,
				probes,
				limits,
				versions,
				stale,
				dist,
				ids,
				total;
} SearchLayout;

static SearchLayout
search_layout(int nq, int dims, int nprobe, int k)
{
	SearchLayout l;
	Size		at = MAXALIGN(sizeof(IvfGpuMsg));

	l.queries = at;
	at = ALIGN8(at + (Size) nq * dims * sizeof(float));
	l.probes = at;
	at = ALIGN8(at + (Size) nq * nprobe * sizeof(int32));
	l.limits = at;
	at = ALIGN8(at + (Size) nq * nprobe * sizeof(int64));
	l.versions = at;
	at = ALIGN8(at + (Size) nq * nprobe * sizeof(uint64));
	l.stale = at;
	at = ALIGN8(at + (Size) nq * nprobe);
	l.dist = at;
	at = ALIGN8(at + (Size) nq * k * sizeof(float));
	l.ids = at;
	at = ALIGN8(at + (Size) nq * k * sizeof(int64));
	l.total = at;
	return l;
}

static pg_atomic_uint64 *
list_version_counter(Oid db, Oid relfile, uint32 list)
{
	uint32		h = hash_combine(murmurhash32((uint32) db), murmurhash32((uint32) relfile));

	h = hash_combine(h, murmurhash32(list));
	return &gpu_shared->versions[h % IVF_GPU_VERSIONS];
}

static uint64
list_version(Relation index, uint32 list)
{
	return pg_atomic_read_u64(list_version_counter(MyDatabaseId,
												   IvfRelFileNumber(index), list));
}

/*
 * A list of an index changed (insert, VACUUM): copies of it in the worker
 * are stale from now on.  Called after the change is on the page and
 * before it can commit.
 */
void
ivf_gpu_list_changed(Relation index, uint32 list)
{
	if (gpu_shared == NULL)
		return;
	pg_atomic_fetch_add_u64(list_version_counter(MyDatabaseId,
												 IvfRelFileNumber(index), list), 1);
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
	SpinLockAcquire(&gpu_shared->mutex);
	gpu_shared->indexes_resident = n;
	gpu_shared->memory_used = w_ops->memory_used(w_ctx);
	SpinLockRelease(&gpu_shared->mutex);
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
				SpinLockAcquire(&gpu_shared->mutex);
				gpu_shared->kmeans_rounds++;
				SpinLockRelease(&gpu_shared->mutex);
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
				SpinLockAcquire(&gpu_shared->mutex);
				gpu_shared->assigned_points += m->nbatch;
				SpinLockRelease(&gpu_shared->mutex);
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
		IvfGpuSlot *slot = &gpu_shared->slots[i];
		dsm_handle	handle;
		bool		in_slot;
		int			owner_pid;
		Pending    *p;

		SpinLockAcquire(&gpu_shared->mutex);
		if (slot->state != SLOT_SUBMITTED)
		{
			SpinLockRelease(&gpu_shared->mutex);
			continue;
		}
		slot->state = SLOT_RUNNING;
		handle = slot->handle;
		in_slot = slot->in_slot;
		owner_pid = slot->owner_pid;
		SpinLockRelease(&gpu_shared->mutex);

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
		SpinLockAcquire(&gpu_shared->mutex);
		gpu_shared->batches++;
		gpu_shared->queries += nq;
		SpinLockRelease(&gpu_shared->mutex);
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
			r->metric != m->metric || r->dims != m->dims || r->nlists != m->nlists)
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
				o->nlists == m->nlists &&
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
		IvfGpuSlot *slot = &gpu_shared->slots[pend[i].slot];
		int			owner;

		if (pend[i].seg)
			dsm_detach(pend[i].seg);
		SpinLockAcquire(&gpu_shared->mutex);
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
		SpinLockRelease(&gpu_shared->mutex);
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
	SpinLockAcquire(&gpu_shared->mutex);
	gpu_shared->state = IVF_GPU_STATE_STOPPED;
	gpu_shared->worker_procno = -1;
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
	MemoryContext serve_cxt;
	TimestampTz last_sweep = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("ivf gpu worker");
	before_shmem_exit(worker_exit, (Datum) 0);

	SpinLockAcquire(&gpu_shared->mutex);
	gpu_shared->worker_pid = MyProcPid;
	gpu_shared->worker_procno = MyProc->pgprocno;
	gpu_shared->state = IVF_GPU_STATE_STARTING;
	gpu_shared->starts++;
	/* requests a dead worker took are answered "error": their backends see
	 * the new start and fall back (an abandoned one is simply freed) */
	{
		int			i;

		for (i = 0; i < IVF_GPU_SLOTS; i++)
		{
			if (gpu_shared->slots[i].state == SLOT_RUNNING)
			{
				gpu_shared->slots[i].status = REPLY_ERROR;
				gpu_shared->slots[i].state = SLOT_DONE;
			}
			else if (gpu_shared->slots[i].state == SLOT_ABANDONED)
				gpu_shared->slots[i].state = SLOT_FREE;
		}
	}
	gpu_shared->backend[0] = '\0';
	gpu_shared->device[0] = '\0';
	gpu_shared->detail[0] = '\0';
	gpu_shared->memory_used = 0;
	gpu_shared->indexes_resident = 0;
	SpinLockRelease(&gpu_shared->mutex);

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

/* ---------------------------------------------------------- backends */

/*
 * Messages stay under these sizes: dynamic shared memory may be small
 * (/dev/shm in containers), and a segment that cannot be created is an
 * error, not a fallback.  Larger searches are answered on the CPU.
 */
#define IVF_GPU_UPLOAD_BYTES ((Size) 32 * 1024 * 1024)
#define IVF_GPU_SEARCH_BYTES ((Size) 256 * 1024 * 1024)

static void
count_fallback(const char *why)
{
	SpinLockAcquire(&gpu_shared->mutex);
	gpu_shared->fallbacks++;
	SpinLockRelease(&gpu_shared->mutex);
	ereport(LOG,
			(errmsg("ivf gpu: answering on the CPU: %s", why)));
}

/* the worker's error text of the last request that failed (see req_send) */
static char reply_error[sizeof(((IvfGpuMsg *) NULL)->error)];

/* a request being written or sent: in its slot's area, or in a segment */
typedef struct IvfGpuReq
{
	IvfGpuMsg  *m;
	dsm_segment *seg;			/* NULL: in slot `slot' */
	int			slot;			/* -1 until sent, for a segment */
} IvfGpuReq;

/*
 * A backend that exits (FATAL while waiting, say: no error handler runs)
 * gives back the slots it holds, as release_slot would.
 */
static void
release_my_slots(int code, Datum arg)
{
	int			i;

	if (gpu_shared == NULL)
		return;
	SpinLockAcquire(&gpu_shared->mutex);
	for (i = 0; i < IVF_GPU_SLOTS; i++)
	{
		IvfGpuSlot *slot = &gpu_shared->slots[i];

		if (slot->owner_pid != MyProcPid || slot->state == SLOT_FREE)
			continue;
		if (slot->state == SLOT_RUNNING)
			slot->state = SLOT_ABANDONED;
		else if (slot->state != SLOT_ABANDONED)
			slot->state = SLOT_FREE;
	}
	SpinLockRelease(&gpu_shared->mutex);
}

/* A free slot, now this backend's (RESERVED); -1 if none.  Under the mutex. */
static int
claim_free_slot(void)
{
	int			i;

	for (i = 0; i < IVF_GPU_SLOTS; i++)
		if (gpu_shared->slots[i].state == SLOT_FREE)
		{
			gpu_shared->slots[i].state = SLOT_RESERVED;
			gpu_shared->slots[i].owner_procno = MyProc->pgprocno;
			gpu_shared->slots[i].owner_pid = MyProcPid;
			return i;
		}
	return -1;
}

/* A request of `size' bytes, zeroed header; NULL when there is no room. */
static IvfGpuReq *
req_create(Size size)
{
	static bool exit_hook = false;
	IvfGpuReq  *r = palloc0(sizeof(IvfGpuReq));

	if (!exit_hook)
	{
		before_shmem_exit(release_my_slots, (Datum) 0);
		exit_hook = true;
	}
	r->slot = -1;
	if (size <= IVF_GPU_SLOT_BYTES)
	{
		SpinLockAcquire(&gpu_shared->mutex);
		r->slot = claim_free_slot();
		SpinLockRelease(&gpu_shared->mutex);
		if (r->slot >= 0)
			r->m = (IvfGpuMsg *) SLOT_AREA(r->slot);
	}
	if (r->m == NULL)
	{
		r->seg = dsm_create(size, DSM_CREATE_NULL_IF_MAXSEGMENTS);
		if (r->seg == NULL)
		{
			pfree(r);
			return NULL;
		}
		r->m = (IvfGpuMsg *) dsm_segment_address(r->seg);
	}
	memset(r->m, 0, sizeof(IvfGpuMsg));
	r->m->pid = MyProcPid;
	return r;
}

/* Give up a slot: the worker frees one it is running when it is done. */
static void
release_slot(int i)
{
	IvfGpuSlot *slot = &gpu_shared->slots[i];

	SpinLockAcquire(&gpu_shared->mutex);
	if (slot->state == SLOT_RUNNING)
		slot->state = SLOT_ABANDONED;
	else if (slot->state != SLOT_ABANDONED)
		slot->state = SLOT_FREE;
	SpinLockRelease(&gpu_shared->mutex);
}

/* Done with a request (its answer read): its slot or segment goes. */
static void
req_free(IvfGpuReq *r)
{
	if (r->seg != NULL)
		dsm_detach(r->seg);
	if (r->slot >= 0)
		release_slot(r->slot);
	pfree(r);
}

/*
 * Send a request to the worker and wait for its answer, which stays
 * readable in r->m until req_free.  Returns the reply, or REPLY_ERROR with
 * *why set when the worker could not be reached or went away.
 * Cancellation is honoured while waiting.
 */
static IvfGpuReply
req_send(IvfGpuReq *r, const char **why)
{
	int			i;
	int			start;
	int			procno;
	volatile IvfGpuReply reply = REPLY_ERROR;
	volatile bool answered = false;

	SpinLockAcquire(&gpu_shared->mutex);
	if (gpu_shared->state != IVF_GPU_STATE_READY || gpu_shared->worker_procno < 0)
	{
		SpinLockRelease(&gpu_shared->mutex);
		*why = "the GPU worker is not ready";
		return REPLY_ERROR;
	}
	if (r->seg != NULL)
	{
		/* a segment needs a slot to be named in */
		i = claim_free_slot();
		if (i < 0)
		{
			SpinLockRelease(&gpu_shared->mutex);
			*why = "every GPU request slot is busy";
			return REPLY_ERROR;
		}
		gpu_shared->slots[i].in_slot = false;
		gpu_shared->slots[i].handle = dsm_segment_handle(r->seg);
		r->slot = i;
	}
	else
	{
		i = r->slot;
		gpu_shared->slots[i].in_slot = true;
	}
	gpu_shared->slots[i].state = SLOT_SUBMITTED;
	gpu_shared->slots[i].worker_start = start = gpu_shared->starts;
	procno = gpu_shared->worker_procno;
	SpinLockRelease(&gpu_shared->mutex);
	SetLatch(&ProcGlobal->allProcs[procno].procLatch);

	PG_TRY();
	{
		for (;;)
		{
			bool		gone;

			SpinLockAcquire(&gpu_shared->mutex);
			answered = (gpu_shared->slots[i].state == SLOT_DONE);
			if (answered)
				reply = gpu_shared->slots[i].status;
			gone = (gpu_shared->starts != start ||
					gpu_shared->state != IVF_GPU_STATE_READY);
			SpinLockRelease(&gpu_shared->mutex);
			if (answered)
				break;
			if (gone)
			{
				*why = "the GPU worker restarted or stopped during the request";
				reply = REPLY_ERROR;
				break;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 10L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		release_slot(i);
		r->slot = -1;
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (answered && reply == REPLY_ERROR)
	{
		/*
		 * Copied out of the message, which req_free gives back, into static
		 * storage: callers send each request from a memory context they
		 * reset or delete before they report why (upload_lists), so a
		 * palloc'd copy could be freed memory by then.  Valid until the
		 * next request, which no caller sends before reporting.
		 */
		if (r->m->error[0] != '\0')
		{
			memcpy(reply_error, r->m->error, sizeof(reply_error));
			reply_error[sizeof(reply_error) - 1] = '\0';
			*why = reply_error;
		}
		else
			*why = "the GPU worker could not answer";
	}
	if (!answered)
	{
		/* nothing to read: the worker frees a slot it is still running */
		release_slot(i);
		r->slot = -1;
	}
	else if (r->seg != NULL)
	{
		/* the answer is in the segment: the slot can go now */
		release_slot(i);
		r->slot = -1;
	}
	return reply;
}

static IvfGpuReq *
new_message(Size size, IvfGpuMsgKind kind, Relation index,
			const IvfMetaPageData *meta)
{
	IvfGpuReq  *r = req_create(size);

	if (r == NULL)
		return NULL;
	r->m->kind = kind;
	r->m->db = MyDatabaseId;
	r->m->relfile = IvfRelFileNumber(index);
	r->m->spc = IvfRelTablespace(index);
	r->m->relbackend = (int32) index->rd_backend;
	r->m->metric = (meta->metric == IVF_METRIC_L2) ? IVF_GPU_METRIC_L2 : IVF_GPU_METRIC_IP;
	r->m->dims = (int32) meta->dims;
	r->m->nlists = (int32) meta->nlists;
	return r;
}

/*
 * Send lists[0..nl) of the index to the copy with `token': each list's
 * version read before its pages, then every slot in chain order, in
 * messages of at most IVF_GPU_UPLOAD_BYTES (one list may exceed it alone).
 * Used by a full upload and to refresh the stale lists of a copy.
 */
static bool
upload_lists(Relation index, const IvfMetaPageData *meta, const IvfGeometry *g,
			 uint64 token, const uint32 *lists, uint32 nl, const char **why)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "ivf gpu upload",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	uint32		at = 0;
	bool		ok = true;

	while (at < nl && ok)
	{
		int32	   *ls = palloc(sizeof(int32) * nl);
		int64	   *counts = palloc(sizeof(int64) * nl);
		uint64	   *versions = palloc(sizeof(uint64) * nl);
		float	  **vecs = palloc(sizeof(float *) * nl);
		int64	  **ids = palloc(sizeof(int64 *) * nl);
		int			nb = 0;
		int64		total = 0;
		Size		size;
		char	   *p;
		IvfGpuReq  *seg;
		IvfGpuMsg  *m;
		int			b;

		/* as many lists as fit the message, at least one */
		while (at < nl)
		{
			IvfListEntry e;
			uint32		l = lists[at++];

			/* the version first: a change after it shows as a newer one */
			versions[nb] = list_version(index, l);
			ivf_read_list_entry(index, meta, g, l, &e);
			ls[nb] = (int32) l;
			if (BlockNumberIsValid(e.head))
				ivf_export_list(index, g, e.head, l, &vecs[nb], &ids[nb], &counts[nb]);
			else
			{
				counts[nb] = 0;
				vecs[nb] = NULL;
				ids[nb] = NULL;
			}
			total += counts[nb];
			nb++;
			if ((Size) total * (meta->dims * sizeof(float) + sizeof(int64)) >
				IVF_GPU_UPLOAD_BYTES)
				break;
		}
		size = MAXALIGN(sizeof(IvfGpuMsg)) + ALIGN8(sizeof(int32) * nb) +
			ALIGN8(sizeof(int64) * nb) + ALIGN8(sizeof(uint64) * nb) +
			ALIGN8((Size) total * meta->dims * sizeof(float)) +
			(Size) total * sizeof(int64);
		seg = new_message(size, MSG_UPLOAD_LISTS, index, meta);
		if (seg == NULL)
		{
			*why = "no dynamic shared memory segment for the upload";
			ok = false;
			break;
		}
		m = seg->m;
		m->token = token;
		m->nbatch = nb;
		p = MSG_PAYLOAD(m);
		memcpy(p, ls, sizeof(int32) * nb);
		p = (char *) ALIGN8((Size) (p + sizeof(int32) * nb));
		memcpy(p, counts, sizeof(int64) * nb);
		p = (char *) ALIGN8((Size) (p + sizeof(int64) * nb));
		memcpy(p, versions, sizeof(uint64) * nb);
		p = (char *) ALIGN8((Size) (p + sizeof(uint64) * nb));
		for (b = 0; b < nb; b++)
		{
			memcpy(p, vecs[b], (Size) counts[b] * meta->dims * sizeof(float));
			p += (Size) counts[b] * meta->dims * sizeof(float);
		}
		p = (char *) ALIGN8((Size) p);
		for (b = 0; b < nb; b++)
		{
			memcpy(p, ids[b], (Size) counts[b] * sizeof(int64));
			p += (Size) counts[b] * sizeof(int64);
		}
		ok = (req_send(seg, why) == REPLY_OK);
		req_free(seg);
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return ok;
}

/* Upload the whole index: its centroids, then every list. */
static bool
upload(Relation index, const IvfMetaPageData *meta, const IvfGeometry *g,
	   const char **why)
{
	Size		cbytes = (Size) meta->nlists * meta->dims * sizeof(float);
	IvfCache   *cache;
	IvfGpuReq  *seg;
	uint64		token;
	uint32	   *all;
	uint32		l;
	bool		ok;

	/*
	 * The cache first: reading it may fail, and must not with a request slot
	 * claimed (nothing gives that back before the backend exits).  Nothing
	 * between this and the copy accepts invalidations, which may rebuild
	 * the cache.
	 */
	cache = ivf_get_cache(index);
	/* cbytes is the caller's meta's size: never read past the cache's */
	if (cache->meta.nlists != meta->nlists || cache->meta.dims != meta->dims)
	{
		*why = "the index's centroids changed during the upload";
		return false;
	}
	seg = new_message(MAXALIGN(sizeof(IvfGpuMsg)) + cbytes, MSG_UPLOAD_BEGIN,
					  index, meta);
	if (seg == NULL)
	{
		*why = "no dynamic shared memory segment for the upload";
		return false;
	}
	memcpy(MSG_PAYLOAD(seg->m), cache->centroids, cbytes);
	cache = NULL;
	if (req_send(seg, why) != REPLY_OK)
	{
		req_free(seg);
		return false;
	}
	token = (seg->m)->token;
	req_free(seg);

	all = palloc(sizeof(uint32) * meta->nlists);
	for (l = 0; l < meta->nlists; l++)
		all[l] = l;
	ok = upload_lists(index, meta, g, token, all, meta->nlists, why);
	pfree(all);
	if (!ok)
		return false;

	seg = new_message(MAXALIGN(sizeof(IvfGpuMsg)), MSG_UPLOAD_END, index, meta);
	if (seg == NULL)
	{
		*why = "no dynamic shared memory segment for the upload";
		return false;
	}
	(seg->m)->token = token;
	ok = (req_send(seg, why) == REPLY_OK);
	req_free(seg);
	return ok;
}

/*
 * Batch search through the GPU worker: the k nearest of each query among
 * the slots of its probed lists (probes[q * nprobe + i], at most limits[]
 * slots of each), into dist/ids (nq x k, id -1 past the candidates).
 * False when the CPU must answer: ivf.gpu off or auto with a small batch
 * (quietly), or the worker cannot (a fallback, counted and logged).  The
 * caller's snapshot must be taken already (see "Coherence" above).
 */
bool
ivf_gpu_search(Relation index, const IvfMetaPageData *meta,
			   const IvfGeometry *g, int nq, const float *queries, int nprobe,
			   const int32 *probes, const uint64 *limits, int k, float *dist,
			   int64 *ids)
{
	const char *why = NULL;
	int			attempt;

	if (ivf_gpu_mode == IVF_GPU_OFF || nq == 0)
		return false;
	if (ivf_gpu_mode == IVF_GPU_AUTO && nq < IVF_GPU_AUTO_MIN_QUERIES)
		return false;
	if (gpu_shared == NULL || !ivf_gpu_worker_enabled)
	{
		ereport(DEBUG1,
				(errmsg("ivf gpu: no GPU worker (ivf in shared_preload_libraries and ivf.gpu_worker = on start one)")));
		return false;
	}

	for (attempt = 0; attempt < 3; attempt++)
	{
		SearchLayout l = search_layout(nq, (int) meta->dims, nprobe, k);
		IvfGpuReq  *seg;
		IvfGpuMsg  *m;
		IvfGpuReply reply;
		int64	   *lim;
		uint64	   *ver;
		Size		i;

		if (l.total > IVF_GPU_SEARCH_BYTES)
		{
			why = "the batch is larger than a request may be (256 MB)";
			break;
		}
		seg = new_message(l.total, MSG_SEARCH, index, meta);
		if (seg == NULL)
		{
			why = "no dynamic shared memory segment for the request";
			break;
		}
		m = seg->m;
		m->nq = nq;
		m->k = k;
		m->nprobe = nprobe;
		memcpy((char *) m + l.queries, queries, (Size) nq * meta->dims * sizeof(float));
		memcpy((char *) m + l.probes, probes, (Size) nq * nprobe * sizeof(int32));
		lim = (int64 *) ((char *) m + l.limits);
		ver = (uint64 *) ((char *) m + l.versions);
		/* read after the snapshot (see "Coherence") */
		for (i = 0; i < (Size) nq * nprobe; i++)
		{
			lim[i] = (limits[i] > (uint64) PG_INT64_MAX) ? PG_INT64_MAX : (int64) limits[i];
			ver[i] = list_version(index, (uint32) probes[i]);
		}
		reply = req_send(seg, &why);
		if (reply == REPLY_OK)
		{
			memcpy(dist, (char *) m + l.dist, (Size) nq * k * sizeof(float));
			memcpy(ids, (char *) m + l.ids, (Size) nq * k * sizeof(int64));
			req_free(seg);
			return true;
		}
		if (reply != REPLY_STALE || attempt == 2)
		{
			if (reply == REPLY_STALE)
				why = "the index kept changing during its upload";
			req_free(seg);
			break;
		}
		if (m->token == 0)
		{
			/* no copy: upload it all */
			req_free(seg);
			if (!upload(index, meta, g, &why))
				break;
		}
		else
		{
			/* refresh only the flagged lists, each once */
			const uint8 *stale = (const uint8 *) m + l.stale;
			bool	   *seen = palloc0(sizeof(bool) * meta->nlists);
			uint32	   *lists = palloc(sizeof(uint32) * Max(nq * nprobe, 1));
			uint32		nl = 0;
			uint64		token = m->token;
			bool		ok;

			for (i = 0; i < (Size) nq * nprobe; i++)
				if (stale[i] && !seen[probes[i]])
				{
					seen[probes[i]] = true;
					lists[nl++] = (uint32) probes[i];
				}
			req_free(seg);
			ok = upload_lists(index, meta, g, token, lists, nl, &why);
			pfree(seen);
			pfree(lists);
			if (!ok)
				break;
			SpinLockAcquire(&gpu_shared->mutex);
			gpu_shared->refreshed_lists += nl;
			SpinLockRelease(&gpu_shared->mutex);
		}
	}
	count_fallback(why ? why : "the GPU worker could not answer");
	return false;
}

/*
 * Index scans use the worker with ivf.gpu = on only (auto keeps single
 * queries on the CPU, as torch-ivf's auto does below its batch threshold).
 */
bool
ivf_gpu_for_scans(void)
{
	return ivf_gpu_mode == IVF_GPU_ON;
}

/* ------------------------------------------------- k-means for builds */

struct IvfGpuKmeans
{
	uint64		token;
	int			metric;
	int			dims;
	int64		n;
	bool		failed;			/* a round failed: the CPU does the rest */
};

static IvfGpuReq *
new_km_message(Size payload, IvfGpuMsgKind kind, const IvfGpuKmeans *km)
{
	IvfGpuReq  *r = req_create(MAXALIGN(sizeof(IvfGpuMsg)) + payload);

	if (r == NULL)
		return NULL;
	r->m->kind = kind;
	r->m->token = km->token;
	r->m->lxid = IvfProcLocalXid(MyProc);
	r->m->metric = km->metric;
	r->m->dims = km->dims;
	r->m->nq = (int32) km->n;
	return r;
}

/*
 * With ivf.gpu_build = on and a worker up: hand the build's training
 * points to the worker, which then runs every k-means assignment step
 * (ivf_gpu_kmeans_assign).  NULL (quietly when ivf.gpu_build is off) when
 * the CPU must do it all.
 */
IvfGpuKmeans *
ivf_gpu_kmeans_begin(const float *x, size_t n, size_t d, int metric)
{
	IvfGpuKmeans *km;
	const char *why = NULL;
	IvfGpuReq  *seg;
	Size		rows_per;
	size_t		at;

	if (!ivf_gpu_build || n == 0)
		return NULL;
	if (gpu_shared == NULL || !ivf_gpu_worker_enabled)
	{
		ereport(DEBUG1,
				(errmsg("ivf gpu: no GPU worker for k-means (ivf in shared_preload_libraries and ivf.gpu_worker = on start one)")));
		return NULL;
	}
	if (n > (size_t) PG_INT32_MAX ||
		sizeof(float) * n * (2 + 1) > IVF_GPU_SEARCH_BYTES)
	{
		count_fallback("too many training points for the k-means messages");
		return NULL;
	}
	km = palloc0(sizeof(IvfGpuKmeans));
	km->metric = (metric == 0) ? IVF_GPU_METRIC_L2 : IVF_GPU_METRIC_IP;
	km->dims = (int) d;
	km->n = (int64) n;
	seg = new_km_message(0, MSG_KMEANS_BEGIN, km);
	if (seg == NULL || req_send(seg, &why) != REPLY_OK)
	{
		if (seg)
			req_free(seg);
		count_fallback(why ? why : "no dynamic shared memory segment for k-means");
		pfree(km);
		return NULL;
	}
	km->token = (seg->m)->token;
	req_free(seg);

	rows_per = Max(1, IVF_GPU_UPLOAD_BYTES / (sizeof(float) * d));
	for (at = 0; at < n; at += rows_per)
	{
		size_t		rows = Min(rows_per, n - at);
		IvfGpuMsg  *m;

		seg = new_km_message(sizeof(float) * rows * d, MSG_KMEANS_POINTS, km);
		if (seg == NULL)
		{
			why = "no dynamic shared memory segment for k-means";
			break;
		}
		m = seg->m;
		m->nprobe = (int32) at;
		m->nbatch = (int32) rows;
		memcpy(MSG_PAYLOAD(m), x + at * d, sizeof(float) * rows * d);
		if (req_send(seg, &why) != REPLY_OK)
		{
			req_free(seg);
			break;
		}
		req_free(seg);
	}
	if (at < n)
	{
		count_fallback(why ? why : "the training points could not be sent");
		ivf_gpu_kmeans_end(km);
		return NULL;
	}
	return km;
}

/*
 * Send `nfloats' floats (centroids, or points) in a message of `kind' and
 * read back nout assignments and distances after them; nonzero (and the
 * session marked failed, a fallback counted) when the worker could not.
 */
static int
assignment_request(IvfGpuKmeans *km, IvfGpuMsgKind kind, const float *payload,
				   Size nfloats, int32 k, size_t nout, int32 *assign, float *dist)
{
	Size		pbytes = ALIGN8(sizeof(float) * nfloats);
	IvfGpuReq  *seg;
	const char *why = NULL;

	if (km->failed)
		return 1;
	seg = new_km_message(pbytes + ALIGN8(sizeof(int32) * nout) + sizeof(float) * nout,
						 kind, km);
	if (seg != NULL)
	{
		IvfGpuMsg  *m = seg->m;

		m->k = k;
		m->nbatch = (int32) nout;
		memcpy(MSG_PAYLOAD(m), payload, sizeof(float) * nfloats);
		if (req_send(seg, &why) == REPLY_OK)
		{
			char	   *out = MSG_PAYLOAD(m) + pbytes;

			memcpy(assign, out, sizeof(int32) * nout);
			memcpy(dist, out + ALIGN8(sizeof(int32) * nout), sizeof(float) * nout);
			req_free(seg);
			return 0;
		}
		req_free(seg);
	}
	km->failed = true;
	count_fallback(why ? why : "no shared memory for the assignment request");
	return 1;
}

/* IvfKmeansParams.assign_fn: one assignment step on the worker */
int
ivf_gpu_kmeans_assign(void *arg, const float *centroids, size_t k,
					  int32 *assign, float *dist)
{
	IvfGpuKmeans *km = (IvfGpuKmeans *) arg;

	return assignment_request(km, MSG_KMEANS_ASSIGN, centroids, k * km->dims,
							  (int32) k, (size_t) km->n, assign, dist);
}

/*
 * The build's final centroids, for ivf_gpu_assign_points; false (counted
 * as a fallback) when the worker cannot take them.
 */
bool
ivf_gpu_assign_centroids(IvfGpuKmeans *km, const float *centroids, size_t k)
{
	IvfGpuReq  *seg;
	const char *why = NULL;
	IvfGpuMsg  *m;

	if (km->failed)
		return false;
	seg = new_km_message(sizeof(float) * k * km->dims, MSG_ASSIGN_CENTROIDS, km);
	if (seg != NULL)
	{
		m = seg->m;
		m->k = (int32) k;
		memcpy(MSG_PAYLOAD(m), centroids, sizeof(float) * k * km->dims);
		if (req_send(seg, &why) == REPLY_OK)
		{
			req_free(seg);
			return true;
		}
		req_free(seg);
	}
	km->failed = true;
	count_fallback(why ? why : "no dynamic shared memory segment for the centroids");
	return false;
}

/*
 * The nearest of the build's centroids for n points (the build's
 * assignment pass), as ivf_assign answers it; nonzero when the CPU must do
 * it (then and for the rest of the build).
 */
int
ivf_gpu_assign_points(IvfGpuKmeans *km, const float *x, size_t n,
					  int32 *assign, float *dist)
{
	return assignment_request(km, MSG_ASSIGN_POINTS, x, n * km->dims, 0, n,
							  assign, dist);
}

void
ivf_gpu_kmeans_end(IvfGpuKmeans *km)
{
	IvfGpuReq  *seg;
	const char *why = NULL;

	if (km == NULL)
		return;
	seg = new_km_message(0, MSG_KMEANS_END, km);
	if (seg != NULL)
	{
		(void) req_send(seg, &why);
		req_free(seg);
	}
	pfree(km);
}

/* -------------------------------------------------------------- SQL */

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

	if (gpu_shared == NULL || !ivf_gpu_worker_enabled)
		why = "there is no GPU worker (ivf in shared_preload_libraries and ivf.gpu_worker = on start one)";
	else
		ok = upload(index, &meta, &g, &why);
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
	values[14] = Int64GetDatum((int64) snap.kmeans_rounds);
	values[15] = Int64GetDatum((int64) snap.assigned_points);
	values[16] = Int64GetDatum((int64) snap.refreshed_lists);
	values[13] = CStringGetTextDatum(snap.detail);
	nulls[13] = (snap.detail[0] == '\0');

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
