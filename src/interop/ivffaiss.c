/*-------------------------------------------------------------------------
 *
 * ivffaiss.c
 *	  Faiss interop: ivf_export_faiss() writes an ivfflat index as a Faiss
 *	  IndexIVFFlat file, and ivf_faiss_id() / ivf_faiss_tid() convert
 *	  between a row's TID and the id it has in such a file.  (The centroids
 *	  option, which builds an index around the centroids of a Faiss file,
 *	  belongs to the build: ivfcentroidfile.c.)
 *
 * The file format itself (writer and reader) is plain C in faissio.c; this
 * file adds privileges, files, locks and errors.  It sits above the access
 * method and reads lists through it (listscan.c), never the reverse.
 *
 * Ids: a row is exported with the id (block << 16) | offset of its TID
 * (ivf_tid_to_id, also the scan's own encoding), so an id is in
 * 0 .. 2^48 - 1 and ivf_faiss_tid() turns it back into the TID.
 *
 * Metrics: vector_l2_ops is Faiss's METRIC_L2 (squared L2 distances, as
 * IndexIVFFlat reports them).  vector_ip_ops is METRIC_INNER_PRODUCT.
 * vector_cosine_ops stores unit vectors and ranks them by inner product,
 * so it is exported as METRIC_INNER_PRODUCT too (its vectors and
 * centroids unit length); queries must then be normalised by the caller
 * (faiss.normalize_L2), as the index normalises them.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

/* where the system has no O_NOFOLLOW, O_EXCL alone refuses a link */
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif

#include "access/table.h"
#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/buffile.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "faissio.h"
#include "ivfflat.h"
#include "ivfformat.h"
#include "ivfoptions.h"
#include "ivfpage.h"
#include "ivfsql.h"
#include "listscan.h"

/* bytes the export collects before each write() */
#define IVF_FAISS_WRITE_BUF		(1024 * 1024)

/* bytes of vectors moved from the spill file to the writer per step */
#define IVF_FAISS_CHUNK_BYTES	(4 * 1024 * 1024)

/* ------------------------------------------------------------------ ids */

/* the largest id ivf_tid_to_id gives: block 2^32 - 1, offset 2^16 - 1 */
#define IVF_FAISS_MAX_ID		((INT64CONST(1) << 48) - 1)

PG_FUNCTION_INFO_V1(ivf_faiss_id);
Datum
ivf_faiss_id(PG_FUNCTION_ARGS)
{
	ItemPointer tid = (ItemPointer) PG_GETARG_POINTER(0);

	PG_RETURN_INT64(ivf_tid_to_id(tid));
}

PG_FUNCTION_INFO_V1(ivf_faiss_tid);
Datum
ivf_faiss_tid(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	ItemPointer tid;

	if (id < 0 || id > IVF_FAISS_MAX_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Faiss id " INT64_FORMAT " is not a tid", id),
				 errdetail("ivf_export_faiss writes the tid (block, offset) of a row as block * 65536 + offset, from 0 to " INT64_FORMAT ".",
						   IVF_FAISS_MAX_ID),
				 id == -1 ?
				 errhint("Faiss returns the id -1 where a search found fewer than k vectors.") : 0));
	tid = palloc(sizeof(ItemPointerData));
	ivf_id_to_tid(id, tid);

	/*
	 * No row has offset 0 (InvalidOffsetNumber) or one past MaxOffsetNumber,
	 * nor is in block InvalidBlockNumber: such a tid is no row's, and it
	 * would mean "invalid" wherever it is used.
	 */
	if (!BlockNumberIsValid(ItemPointerGetBlockNumberNoCheck(tid)) ||
		!OffsetNumberIsValid(ItemPointerGetOffsetNumberNoCheck(tid)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Faiss id " INT64_FORMAT " is not a tid", id),
				 errdetail("It would be (%u,%u), but a row's block is 0 to %u and its offset 1 to %u.",
						   ItemPointerGetBlockNumberNoCheck(tid),
						   ItemPointerGetOffsetNumberNoCheck(tid),
						   MaxBlockNumber, (unsigned) MaxOffsetNumber)));
	PG_RETURN_POINTER(tid);
}

/* -------------------------------------------------------------- export */

typedef struct FileSink
{
	int			fd;
	const char *path;
	char	   *buf;
	Size		len;
} FileSink;

static void
sink_flush(FileSink *s)
{
	char	   *p = s->buf;

	while (s->len > 0)
	{
		ssize_t		n;

		errno = 0;
		n = write(s->fd, p, s->len);
		if (n <= 0)
		{
			/* a short write with no errno: most likely out of space */
			if (errno == 0)
				errno = ENOSPC;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\": %m", s->path)));
		}
		p += n;
		s->len -= n;
	}
}

static int
sink_write(void *arg, const void *data, size_t n)
{
	FileSink   *s = arg;
	const char *p = data;

	while (n > 0)
	{
		Size		k = Min(n, IVF_FAISS_WRITE_BUF - s->len);

		memcpy(s->buf + s->len, p, k);
		s->len += k;
		p += k;
		n -= k;
		if (s->len == IVF_FAISS_WRITE_BUF)
			sink_flush(s);
	}
	return 0;
}

/*
 * A writer error: the counts come from the index, so it is the index's
 * content that Faiss cannot take (a non-finite centroid, say).
 */
static void
writer_check(int rc, const char *err)
{
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("could not write the index as a Faiss file: %s", err)));
}

static void
spill_read(BufFile *spill, void *dest, Size n)
{
	if (BufFileRead(spill, dest, n) != n)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read from temporary file: %m")));
}

/*
 * Every live vector of every list, list by list, into a temporary file,
 * and each list's count into sizes[].  Each list is read once (into memory,
 * one list at a time), so the file holds each list as it was when read;
 * dead slots (VACUUM in progress) are left out.
 */
static BufFile *
collect_lists(Relation index, const IvfCache *view, uint64 *sizes,
			  uint64 *ntotal)
{
	const IvfMetaPageData *meta = &view->meta;
	const IvfGeometry *g = &view->geo;
	BufFile    *spill = BufFileCreateTemp(false);
	MemoryContext listcxt = AllocSetContextCreate(CurrentMemoryContext,
												  "ivf_export_faiss list",
												  ALLOCSET_DEFAULT_SIZES);
	Size		dbytes = sizeof(float) * meta->dims;
	uint32		l;

	*ntotal = 0;
	for (l = 0; l < meta->nlists; l++)
	{
		IvfListEntry e;
		MemoryContext old;
		float	   *vecs;
		int64	   *ids;
		int64		n;
		int64		i;
		int64		live = 0;

		sizes[l] = 0;
		ivf_read_list_entry(index, meta, g, view->live_slot[l], &e);
		ivf_check_view_entry(index, &e, view->live_slot[l], view->live_id[l]);
		if (!BlockNumberIsValid(e.head))
			continue;
		old = MemoryContextSwitchTo(listcxt);
		ivf_export_list(index, g, e.head, view->live_id[l], &vecs, &ids, &n);
		/* the live slots, packed: vectors, then their ids */
		for (i = 0; i < n; i++)
		{
			if (ids[i] < 0)
				continue;
			if (live != i)
			{
				memmove(vecs + live * meta->dims, vecs + i * meta->dims, dbytes);
				ids[live] = ids[i];
			}
			live++;
		}
		BufFileWrite(spill, vecs, live * dbytes);
		BufFileWrite(spill, ids, live * sizeof(int64));
		MemoryContextSwitchTo(old);
		MemoryContextReset(listcxt);
		sizes[l] = (uint64) live;
		*ntotal += (uint64) live;
	}
	MemoryContextDelete(listcxt);
	if (BufFileSeek(spill, 0, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind temporary file: %m")));
	return spill;
}

/* the Faiss file, from the centroids and the collected lists */
static void
write_faiss(FileSink *sink, const IvfMetaPageData *meta, int nprobe,
			const float *centroids, const uint64 *sizes, uint64 ntotal,
			BufFile *spill)
{
	IvfFaissWriter w;
	char		err[IVF_FAISS_ERRLEN];
	int			metric = meta->metric == IVF_METRIC_L2 ?
		IVF_FAISS_METRIC_L2 : IVF_FAISS_METRIC_IP;
	Size		chunk = Max(1, IVF_FAISS_CHUNK_BYTES / (sizeof(float) * meta->dims));
	float	   *vecs = palloc(sizeof(float) * chunk * meta->dims);
	int64	   *ids = palloc(sizeof(int64) * chunk);
	uint32		l;

	writer_check(ivf_faiss_write_begin(&w, meta->dims, metric, meta->nlists,
									   (uint64_t) nprobe, ntotal, centroids,
									   (const uint64_t *) sizes, sink_write,
									   sink, err, sizeof(err)), err);
	for (l = 0; l < meta->nlists; l++)
	{
		uint64		at;

		for (at = 0; at < sizes[l];)
		{
			Size		k = Min(sizes[l] - at, chunk);

			CHECK_FOR_INTERRUPTS();
			spill_read(spill, vecs, k * sizeof(float) * meta->dims);
			writer_check(ivf_faiss_write_vectors(&w, l, vecs, k), err);
			at += k;
		}
		for (at = 0; at < sizes[l];)
		{
			Size		k = Min(sizes[l] - at, chunk);

			spill_read(spill, ids, k * sizeof(int64));
			writer_check(ivf_faiss_write_ids(&w, l, (const int64_t *) ids, k), err);
			at += k;
		}
	}
	writer_check(ivf_faiss_write_end(&w), err);
	pfree(vecs);
	pfree(ids);
}

/*
 * The destination of an export may be absent or a regular file, which the
 * rename replaces.  Anything else is refused before any work: a directory
 * could not be replaced, and replacing a FIFO, a device, a socket or a
 * symbolic link (the link, not what it points to) is surely not what was
 * meant.  lstat: the name itself is checked, not what a link names.
 */
static void
check_destination(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
	{
		if (errno == ENOENT)
			return;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	}
	if (!S_ISREG(st.st_mode))
		ivf_refuse_non_regular(path, st.st_mode,
						   "ivf_export_faiss writes a new file or replaces a regular one");
}

/*
 * Create the file the export is written to, beside 'path' (the rename must
 * not cross file systems), under a name no one can predict:
 * "<path>.<64 random bits>.tmp".  O_EXCL (and O_NOFOLLOW) so that nothing
 * already there -- a symbolic link planted at the name, above all -- is
 * opened, truncated or written through: only a file this call created.
 * Mode 0644, readable by all like the files COPY TO writes.
 */
static int
create_temp_file(const char *path, char **tmppath)
{
	for (int tries = 1;; tries++)
	{
		uint64		r;
		int			fd;
		int			save_errno;
		mode_t		oumask;

		if (!pg_strong_random(&r, sizeof(r)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random temporary file name")));
		*tmppath = psprintf("%s." UINT64_FORMAT ".tmp", path, r);
		oumask = umask(S_IWGRP | S_IWOTH);
		fd = OpenTransientFilePerm(*tmppath,
								   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | PG_BINARY,
								   S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
		save_errno = errno;
		umask(oumask);
		if (fd >= 0)
			return fd;
		errno = save_errno;
		/* a name taken by chance: 64 bits make a second one unlikely */
		if (errno != EEXIST || tries == 3)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create file \"%s\": %m", *tmppath)));
		pfree(*tmppath);
	}
}

/*
 * Move the written and synced temporary file to 'path' and make the rename
 * durable.  Unlike durable_rename(), this never opens 'path' (durable_rename
 * opens an existing destination to sync it, which a FIFO or device put
 * there meanwhile would make block or act): rename() replaces whatever name
 * is there without following it, and the parent folder is synced.
 */
static void
rename_into_place(const char *tmppath, const char *path)
{
	char	   *dir = pstrdup(path);

	if (rename(tmppath, path) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename file \"%s\" to \"%s\": %m",
						tmppath, path)));
	get_parent_directory(dir);
	if (dir[0] == '\0')
		strcpy(dir, "/");
	(void) fsync_fname_ext(dir, true, false, ERROR);
	pfree(dir);
}

/*
 * ivf_export_faiss(index regclass, path text) RETURNS bigint
 *
 * Write the index as a Faiss IndexIVFFlat file at 'path' (absolute, and
 * absent or a regular file; the caller needs superuser or the privileges
 * of pg_write_server_files, and SELECT on the table with no row-level
 * security applying), and return the number of vectors written.  The file
 * is written under a new, unpredictable name next to 'path' and renamed
 * when complete, so an error leaves no partial file.  The lists are first
 * copied into a temporary file: the Faiss format puts every list's size
 * before the first vector, and reading each list once keeps the sizes and
 * the vectors of a list that inserts or VACUUM change meanwhile in step.
 */
PG_FUNCTION_INFO_V1(ivf_export_faiss);
Datum
ivf_export_faiss(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *tmppath;
	Relation	heap;
	Relation	index;
	IvfMetaPageData meta;
	IvfCache   *view;
	uint64	   *sizes;
	uint64		ntotal;
	int			nprobe;
	BufFile    *spill;
	FileSink	sink;

	if (!has_privs_of_role(GetUserId(), IVF_ROLE_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser or have privileges of the pg_write_server_files role to export an index to a file")));
	if (!is_absolute_path(path))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("relative path not allowed for ivf_export_faiss: \"%s\"", path)));
	check_destination(path);

	index = ivf_open_for_user(indexoid, &heap);
	/* the lists live now, in slot order: Faiss's list l is position l */
	view = ivf_copy_view(ivf_get_cache(index));
	meta = view->meta;
	nprobe = (int) ivf_index_default_nprobe(index, &meta);
	sizes = palloc(sizeof(uint64) * meta.nlists);
	spill = collect_lists(index, view, sizes, &ntotal);

	sink.fd = create_temp_file(path, &tmppath);
	sink.path = tmppath;
	sink.buf = palloc(IVF_FAISS_WRITE_BUF);
	sink.len = 0;
	PG_TRY();
	{
		write_faiss(&sink, &meta, nprobe, view->centroids, sizes, ntotal, spill);
		sink_flush(&sink);
		if (pg_fsync(sink.fd) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not fsync file \"%s\": %m", tmppath)));
		if (CloseTransientFile(sink.fd) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not close file \"%s\": %m", tmppath)));
		sink.fd = -1;
		rename_into_place(tmppath, path);
	}
	PG_CATCH();
	{
		/* the transaction's abort closes the file; its name goes now */
		(void) unlink(tmppath);
		PG_RE_THROW();
	}
	PG_END_TRY();

	BufFileClose(spill);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	PG_RETURN_INT64((int64) ntotal);
}
