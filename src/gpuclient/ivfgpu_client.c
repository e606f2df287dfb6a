/*-------------------------------------------------------------------------
 *
 * ivfgpu_client.c
 *	  The backends' side of the GPU worker: request slots and segments,
 *	  index uploads, searches and the list versions.
 *
 * ivf_search and index scans call ivf_gpu_search; inserts and VACUUM call
 * ivf_gpu_list_changed.  A request is written into a slot's own area or a
 * dynamic shared memory segment (ivf_gpu_req_create), then sent and waited
 * for (ivf_gpu_req_send); ivfgpu_kmeans.c sends the build's requests
 * through the same functions.  ivfgpu_proto.h describes the protocol.
 *
 * Fallback.  Whatever goes wrong -- no worker, worker restarted or gone
 * mid-request, no free slot, device out of memory, an upload that fails
 * -- the backend answers on the CPU as if ivf.gpu were off, adds one to
 * the fallback counter and logs why (at LOG); the user sees no error.
 *
 * IDENTIFICATION
 *	  src/gpuclient/ivfgpu_client.c
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "ivf_gpu.h"
#include "gpuclient.h"
#include "ivfformat.h"
#include "ivfgpu_proto.h"
#include "ivfpage.h"
#include "listscan.h"

/* ---------------------------------------------------------- backends */

static pg_atomic_uint64 *
list_version_counter(Oid db, Oid relfile, uint32 list)
{
	uint32		h = hash_combine(murmurhash32((uint32) db), murmurhash32((uint32) relfile));

	h = hash_combine(h, murmurhash32(list));
	return &ivf_gpu_shared->versions[h % IVF_GPU_VERSIONS];
}

/* keyed by list id: a list that replaces another in its slot is new */
static uint64
list_version(Relation index, uint32 list)
{
	return pg_atomic_read_u64(list_version_counter(MyDatabaseId,
												   IvfRelFileNumber(index), list));
}

/*
 * The list with id 'list' changed (insert, VACUUM): copies of it in the
 * worker are stale from now on.  Called after the change is on the page
 * and before it can commit.
 */
void
ivf_gpu_list_changed(Relation index, uint32 list)
{
	if (ivf_gpu_shared == NULL)
		return;
	pg_atomic_fetch_add_u64(list_version_counter(MyDatabaseId,
												 IvfRelFileNumber(index), list), 1);
}

void
ivf_gpu_count_fallback(const char *why)
{
	SpinLockAcquire(&ivf_gpu_shared->mutex);
	ivf_gpu_shared->fallbacks++;
	SpinLockRelease(&ivf_gpu_shared->mutex);
	ereport(LOG,
			(errmsg("ivf gpu: answering on the CPU: %s", why)));
}

/*
 * the worker's error text of the last request that failed (see
 * ivf_gpu_req_send)
 */
static char reply_error[sizeof(((IvfGpuMsg *) NULL)->error)];

/*
 * A backend that exits (FATAL while waiting, say: no error handler runs)
 * gives back the slots it holds, as release_slot would.
 */
static void
release_my_slots(int code, Datum arg)
{
	int			i;

	if (ivf_gpu_shared == NULL)
		return;
	SpinLockAcquire(&ivf_gpu_shared->mutex);
	for (i = 0; i < IVF_GPU_SLOTS; i++)
	{
		IvfGpuSlot *slot = &ivf_gpu_shared->slots[i];

		if (slot->owner_pid != MyProcPid || slot->state == SLOT_FREE)
			continue;
		if (slot->state == SLOT_RUNNING)
			slot->state = SLOT_ABANDONED;
		else if (slot->state != SLOT_ABANDONED)
			slot->state = SLOT_FREE;
	}
	SpinLockRelease(&ivf_gpu_shared->mutex);
}

/* A free slot, now this backend's (RESERVED); -1 if none.  Under the mutex. */
static int
claim_free_slot(void)
{
	int			i;

	for (i = 0; i < IVF_GPU_SLOTS; i++)
		if (ivf_gpu_shared->slots[i].state == SLOT_FREE)
		{
			ivf_gpu_shared->slots[i].state = SLOT_RESERVED;
			ivf_gpu_shared->slots[i].owner_procno = MyProc->pgprocno;
			ivf_gpu_shared->slots[i].owner_pid = MyProcPid;
			return i;
		}
	return -1;
}

/* A request of `size' bytes, zeroed header; NULL when there is no room. */
IvfGpuReq *
ivf_gpu_req_create(Size size)
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
		SpinLockAcquire(&ivf_gpu_shared->mutex);
		r->slot = claim_free_slot();
		SpinLockRelease(&ivf_gpu_shared->mutex);
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
	IvfGpuSlot *slot = &ivf_gpu_shared->slots[i];

	SpinLockAcquire(&ivf_gpu_shared->mutex);
	if (slot->state == SLOT_RUNNING)
		slot->state = SLOT_ABANDONED;
	else if (slot->state != SLOT_ABANDONED)
		slot->state = SLOT_FREE;
	SpinLockRelease(&ivf_gpu_shared->mutex);
}

/* Done with a request (its answer read): its slot or segment goes. */
void
ivf_gpu_req_free(IvfGpuReq *r)
{
	if (r->seg != NULL)
		dsm_detach(r->seg);
	if (r->slot >= 0)
		release_slot(r->slot);
	pfree(r);
}

/*
 * Send a request to the worker and wait for its answer, which stays
 * readable in r->m until ivf_gpu_req_free.  Returns the reply, or
 * REPLY_ERROR with *why set when the worker could not be reached or went
 * away.
 * Cancellation is honoured while waiting.
 */
IvfGpuReply
ivf_gpu_req_send(IvfGpuReq *r, const char **why)
{
	int			i;
	int			start;
	int			procno;
	volatile IvfGpuReply reply = REPLY_ERROR;
	volatile bool answered = false;

	SpinLockAcquire(&ivf_gpu_shared->mutex);
	if (ivf_gpu_shared->state != IVF_GPU_STATE_READY || ivf_gpu_shared->worker_procno < 0)
	{
		SpinLockRelease(&ivf_gpu_shared->mutex);
		*why = "the GPU worker is not ready";
		return REPLY_ERROR;
	}
	if (r->seg != NULL)
	{
		/* a segment needs a slot to be named in */
		i = claim_free_slot();
		if (i < 0)
		{
			SpinLockRelease(&ivf_gpu_shared->mutex);
			*why = "every GPU request slot is busy";
			return REPLY_ERROR;
		}
		ivf_gpu_shared->slots[i].in_slot = false;
		ivf_gpu_shared->slots[i].handle = dsm_segment_handle(r->seg);
		r->slot = i;
	}
	else
	{
		i = r->slot;
		ivf_gpu_shared->slots[i].in_slot = true;
	}
	ivf_gpu_shared->slots[i].state = SLOT_SUBMITTED;
	ivf_gpu_shared->slots[i].worker_start = start = ivf_gpu_shared->starts;
	procno = ivf_gpu_shared->worker_procno;
	SpinLockRelease(&ivf_gpu_shared->mutex);
	SetLatch(&ProcGlobal->allProcs[procno].procLatch);

	PG_TRY();
	{
		for (;;)
		{
			bool		gone;

			SpinLockAcquire(&ivf_gpu_shared->mutex);
			answered = (ivf_gpu_shared->slots[i].state == SLOT_DONE);
			if (answered)
				reply = ivf_gpu_shared->slots[i].status;
			gone = (ivf_gpu_shared->starts != start ||
					ivf_gpu_shared->state != IVF_GPU_STATE_READY);
			SpinLockRelease(&ivf_gpu_shared->mutex);
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
		 * Copied out of the message, which ivf_gpu_req_free gives back,
		 * into static storage: callers send each request from a memory
		 * context they reset or delete before they report why
		 * (upload_lists), so a palloc'd copy could be freed memory by then.
		 * Valid until the next request, which no caller sends before
		 * reporting.
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
	IvfGpuReq  *r = ivf_gpu_req_create(size);

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
	r->m->generation = meta->generation;
	return r;
}

/*
 * The slots and list ids of the view of generation meta->generation, by
 * position (what the worker's copy numbers lists by), copied out of the
 * cache; false when the cache has moved to another generation, whose
 * positions mean other lists.
 */
static bool
view_maps(Relation index, const IvfMetaPageData *meta, uint32 **slot,
		  uint32 **id)
{
	IvfCache   *cache = ivf_get_cache(index);

	if (cache->meta.generation != meta->generation ||
		cache->nlive != meta->nlists)
		return false;
	*slot = palloc(sizeof(uint32) * cache->nlive);
	*id = palloc(sizeof(uint32) * cache->nlive);
	memcpy(*slot, cache->live_slot, sizeof(uint32) * cache->nlive);
	memcpy(*id, cache->live_id, sizeof(uint32) * cache->nlive);
	return true;
}

/*
 * Send lists[0..nl) (positions in the view, whose slots and ids slot_of
 * and id_of give) of the index to the copy with `token': each list's
 * version read before its pages, then every slot in chain order, in
 * messages of at most IVF_GPU_UPLOAD_BYTES (one list may exceed it alone).
 * Used by a full upload and to refresh the stale lists of a copy.
 */
static bool
upload_lists(Relation index, const IvfMetaPageData *meta, const IvfGeometry *g,
			 uint64 token, const uint32 *lists, uint32 nl,
			 const uint32 *slot_of, const uint32 *id_of, const char **why)
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
			versions[nb] = list_version(index, id_of[l]);
			ivf_read_list_entry(index, meta, g, slot_of[l], &e);
			ivf_check_view_entry(index, &e, slot_of[l], id_of[l]);
			ls[nb] = (int32) l;
			if (BlockNumberIsValid(e.head))
				ivf_export_list(index, g, e.head, id_of[l],
								&vecs[nb], &ids[nb], &counts[nb]);
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
		ok = (ivf_gpu_req_send(seg, why) == REPLY_OK);
		ivf_gpu_req_free(seg);
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return ok;
}

/* Upload the whole index: its centroids, then every list. */
bool
ivf_gpu_upload(Relation index, const IvfMetaPageData *meta,
			   const IvfGeometry *g, const char **why)
{
	Size		cbytes = (Size) meta->nlists * meta->dims * sizeof(float);
	IvfCache   *cache;
	IvfGpuReq  *seg;
	uint64		token;
	uint32	   *all;
	uint32	   *slot_of;
	uint32	   *id_of;
	uint32		l;
	bool		ok;

	/*
	 * The cache first: reading it may fail, and must not with a request slot
	 * claimed (nothing gives that back before the backend exits).  Nothing
	 * between this and the copy accepts invalidations, which may rebuild
	 * the cache.
	 */
	if (!view_maps(index, meta, &slot_of, &id_of))
	{
		*why = "the index's lists changed during the upload";
		return false;
	}
	cache = ivf_get_cache(index);
	/* cbytes is the caller's meta's size: never read past the cache's */
	if (cache->meta.generation != meta->generation ||
		cache->nlive != meta->nlists || cache->meta.dims != meta->dims)
	{
		*why = "the index's lists changed during the upload";
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
	if (ivf_gpu_req_send(seg, why) != REPLY_OK)
	{
		ivf_gpu_req_free(seg);
		return false;
	}
	token = (seg->m)->token;
	ivf_gpu_req_free(seg);

	all = palloc(sizeof(uint32) * meta->nlists);
	for (l = 0; l < meta->nlists; l++)
		all[l] = l;
	ok = upload_lists(index, meta, g, token, all, meta->nlists, slot_of, id_of,
					  why);
	pfree(all);
	pfree(slot_of);
	pfree(id_of);
	if (!ok)
		return false;

	seg = new_message(MAXALIGN(sizeof(IvfGpuMsg)), MSG_UPLOAD_END, index, meta);
	if (seg == NULL)
	{
		*why = "no dynamic shared memory segment for the upload";
		return false;
	}
	(seg->m)->token = token;
	ok = (ivf_gpu_req_send(seg, why) == REPLY_OK);
	ivf_gpu_req_free(seg);
	return ok;
}

/*
 * Batch search through the GPU worker: the k nearest of each query among
 * the slots of its probed lists (probes[q * nprobe + i], at most limits[]
 * slots of each), into dist/ids (nq x k, id -1 past the candidates).
 * False when the CPU must answer: ivf.gpu off or auto with a small batch
 * (quietly), or the worker cannot (a fallback, counted and logged).  The
 * caller's snapshot must be taken already (see "Coherence" in ivfgpu_proto.h).
 */
bool
ivf_gpu_search(Relation index, const IvfMetaPageData *meta,
			   const IvfGeometry *g, int nq, const float *queries, int nprobe,
			   const int32 *probes, const uint64 *limits, int k, float *dist,
			   int64 *ids)
{
	const char *why = NULL;
	uint32	   *slot_of = NULL;
	uint32	   *id_of = NULL;
	int			attempt;

	if (ivf_gpu_mode == IVF_GPU_OFF || nq == 0)
		return false;
	if (ivf_gpu_mode == IVF_GPU_AUTO && nq < IVF_GPU_AUTO_MIN_QUERIES)
		return false;
	if (ivf_gpu_shared == NULL || !ivf_gpu_worker_enabled)
	{
		ereport(DEBUG1,
				(errmsg("ivf gpu: no GPU worker (ivf in shared_preload_libraries and ivf.gpu_worker = on start one)")));
		return false;
	}

	/* probes are positions in the caller's view: it must still be the cache's */
	if (!view_maps(index, meta, &slot_of, &id_of))
	{
		ivf_gpu_count_fallback("the index's lists changed since the query ranked them");
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
			ver[i] = list_version(index, id_of[probes[i]]);
		}
		reply = ivf_gpu_req_send(seg, &why);
		if (reply == REPLY_OK)
		{
			memcpy(dist, (char *) m + l.dist, (Size) nq * k * sizeof(float));
			memcpy(ids, (char *) m + l.ids, (Size) nq * k * sizeof(int64));
			ivf_gpu_req_free(seg);
			pfree(slot_of);
			pfree(id_of);
			return true;
		}
		if (reply != REPLY_STALE || attempt == 2)
		{
			if (reply == REPLY_STALE)
				why = "the index kept changing during its upload";
			ivf_gpu_req_free(seg);
			break;
		}
		if (m->token == 0)
		{
			/* no copy: upload it all */
			ivf_gpu_req_free(seg);
			if (!ivf_gpu_upload(index, meta, g, &why))
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
			ivf_gpu_req_free(seg);
			ok = upload_lists(index, meta, g, token, lists, nl, slot_of, id_of,
							  &why);
			pfree(seen);
			pfree(lists);
			if (!ok)
				break;
			SpinLockAcquire(&ivf_gpu_shared->mutex);
			ivf_gpu_shared->refreshed_lists += nl;
			SpinLockRelease(&ivf_gpu_shared->mutex);
		}
	}
	ivf_gpu_count_fallback(why ? why : "the GPU worker could not answer");
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
