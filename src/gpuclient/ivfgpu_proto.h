/*-------------------------------------------------------------------------
 *
 * ivfgpu_proto.h
 *	  The protocol between the GPU worker and the backends: the worker's
 *	  shared memory, its request slots, the messages and their layouts.
 *
 * Serving searches.  A backend that searches through the worker (ivf_search
 * or an index scan with ivf.gpu on) takes a request slot in the worker's
 * shared memory and writes its request (queries, the lists it ranked for
 * each, per-list limits and the lists' versions, k) into that slot's own
 * area when it fits (IVF_GPU_SLOT_BYTES, 32 kB); a larger request, or one
 * that finds no free slot, goes into a dynamic shared memory segment that a
 * slot then names (ivf_gpu_req_create, ivf_gpu_req_send; with every slot
 * busy the CPU answers).  Uploads and a build's k-means requests travel the
 * same way.  It sets the worker's latch; the worker answers in the same
 * place and sets the backend's latch.  Only ids and distances come back.
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
 * src/README has the slot states and the coherence argument in full.
 *
 * Files.  ivfgpu_worker.c: the settings, this shared memory, the worker and
 * its service; ivfgpu_client.c: the backends' requests, uploads and
 * searches; ivfgpu_kmeans.c: the build's k-means client; ivfgpu_sql.c:
 * ivf_gpu_load() and ivf_gpu_stats().  This header is theirs alone: the
 * rest of ivf calls the functions declared in gpuclient.h.
 *
 * IDENTIFICATION
 *	  src/gpuclient/ivfgpu_proto.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVFGPU_PROTO_H
#define IVFGPU_PROTO_H

#include "port/atomics.h"
#include "storage/dsm.h"
#include "storage/spin.h"

#include "gpuclient.h"
#include "ivfformat.h"

/* what the worker publishes; read by ivf_gpu_stats() */
typedef enum IvfGpuState
{
	IVF_GPU_STATE_STOPPED = 0,	/* not started yet, or exited */
	IVF_GPU_STATE_STARTING,
	IVF_GPU_STATE_READY,
	IVF_GPU_STATE_FAILED		/* no usable implementation: serves nothing */
} IvfGpuState;

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
	REPLY_ERROR					/* see the message's error text */
} IvfGpuReply;

typedef struct IvfGpuSlot
{
	IvfGpuSlotState state;
	int			owner_procno;
	int			owner_pid;		/* to reclaim a slot its backend left behind */
	int			worker_start;	/* ivf_gpu_shared->starts when submitted */
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
	((char *) ivf_gpu_shared + MAXALIGN(sizeof(IvfGpuShared)) + (Size) (i) * IVF_GPU_SLOT_BYTES)

typedef enum IvfGpuMode
{
	IVF_GPU_OFF,
	IVF_GPU_ON,
	IVF_GPU_AUTO
} IvfGpuMode;

/* ivf.gpu = auto sends batches of at least this many queries */
#define IVF_GPU_AUTO_MIN_QUERIES 64

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
 * The head of a request (in its slot's area or a segment); its payload
 * follows at MSG_PAYLOAD:
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
	uint32		generation;		/* of the index's view the lists are numbered
								 * in (positions of its live lists) */
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

static inline SearchLayout
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

/*
 * Messages stay under these sizes: dynamic shared memory may be small
 * (/dev/shm in containers), and a segment that cannot be created is an
 * error, not a fallback.  Larger searches are answered on the CPU.
 */
#define IVF_GPU_UPLOAD_BYTES ((Size) 32 * 1024 * 1024)
#define IVF_GPU_SEARCH_BYTES ((Size) 256 * 1024 * 1024)

/* a request being written or sent: in its slot's area, or in a segment */
typedef struct IvfGpuReq
{
	IvfGpuMsg  *m;
	dsm_segment *seg;			/* NULL: in slot `slot' */
	int			slot;			/* -1 until sent, for a segment */
} IvfGpuReq;

/* ivfgpu_worker.c: settings, and the shared memory every process attaches */
extern int	ivf_gpu_mode;
extern bool ivf_gpu_build;
extern IvfGpuShared *ivf_gpu_shared;
extern bool ivf_gpu_preloaded;

/* ivfgpu_client.c: requests, for the client and the k-means client */
extern void ivf_gpu_count_fallback(const char *why);
extern IvfGpuReq *ivf_gpu_req_create(Size size);
extern IvfGpuReply ivf_gpu_req_send(IvfGpuReq *r, const char **why);
extern void ivf_gpu_req_free(IvfGpuReq *r);
extern bool ivf_gpu_upload(Relation index, const IvfMetaPageData *meta,
						   const IvfGeometry *g, const char **why);

#endif							/* IVFGPU_PROTO_H */
