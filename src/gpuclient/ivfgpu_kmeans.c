/*-------------------------------------------------------------------------
 *
 * ivfgpu_kmeans.c
 *	  The build's k-means client: CREATE INDEX's assignment steps on the
 *	  GPU worker.
 *
 * With ivf.gpu_build = on a build opens a k-means session on the worker
 * (its training sample sent once, in pieces), and ivf_kmeans calls
 * ivf_gpu_kmeans_assign for each assignment step; the build then gives the
 * session its final centroids, and a serial build's assignment pass sends
 * its rows to it.  A step that fails is done on the CPU, and so are the
 * rest (a fallback, as for searches).
 *
 * IDENTIFICATION
 *	  src/gpuclient/ivfgpu_kmeans.c
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include "miscadmin.h"
#include "storage/proc.h"

#include "ivf_gpu.h"
#include "gpuclient.h"
#include "ivfgpu_proto.h"

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
	IvfGpuReq  *r = ivf_gpu_req_create(MAXALIGN(sizeof(IvfGpuMsg)) + payload);

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
	if (ivf_gpu_shared == NULL || !ivf_gpu_worker_enabled)
	{
		ereport(DEBUG1,
				(errmsg("ivf gpu: no GPU worker for k-means (ivf in shared_preload_libraries and ivf.gpu_worker = on start one)")));
		return NULL;
	}
	if (n > (size_t) PG_INT32_MAX ||
		sizeof(float) * n * (2 + 1) > IVF_GPU_SEARCH_BYTES)
	{
		ivf_gpu_count_fallback("too many training points for the k-means messages");
		return NULL;
	}
	km = palloc0(sizeof(IvfGpuKmeans));
	km->metric = (metric == 0) ? IVF_GPU_METRIC_L2 : IVF_GPU_METRIC_IP;
	km->dims = (int) d;
	km->n = (int64) n;
	seg = new_km_message(0, MSG_KMEANS_BEGIN, km);
	if (seg == NULL || ivf_gpu_req_send(seg, &why) != REPLY_OK)
	{
		if (seg)
			ivf_gpu_req_free(seg);
		ivf_gpu_count_fallback(why ? why : "no dynamic shared memory segment for k-means");
		pfree(km);
		return NULL;
	}
	km->token = (seg->m)->token;
	ivf_gpu_req_free(seg);

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
		if (ivf_gpu_req_send(seg, &why) != REPLY_OK)
		{
			ivf_gpu_req_free(seg);
			break;
		}
		ivf_gpu_req_free(seg);
	}
	if (at < n)
	{
		ivf_gpu_count_fallback(why ? why : "the training points could not be sent");
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
		if (ivf_gpu_req_send(seg, &why) == REPLY_OK)
		{
			char	   *out = MSG_PAYLOAD(m) + pbytes;

			memcpy(assign, out, sizeof(int32) * nout);
			memcpy(dist, out + ALIGN8(sizeof(int32) * nout), sizeof(float) * nout);
			ivf_gpu_req_free(seg);
			return 0;
		}
		ivf_gpu_req_free(seg);
	}
	km->failed = true;
	ivf_gpu_count_fallback(why ? why : "no shared memory for the assignment request");
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
		if (ivf_gpu_req_send(seg, &why) == REPLY_OK)
		{
			ivf_gpu_req_free(seg);
			return true;
		}
		ivf_gpu_req_free(seg);
	}
	km->failed = true;
	ivf_gpu_count_fallback(why ? why : "no dynamic shared memory segment for the centroids");
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
		(void) ivf_gpu_req_send(seg, &why);
		ivf_gpu_req_free(seg);
	}
	pfree(km);
}
