/*-------------------------------------------------------------------------
 *
 * ivfcentroidfile.c
 *	  The centroids option: the build reads the centroids of a Faiss file
 *	  with the plain-C reader (faissio.c); this file adds privileges, the
 *	  file itself and errors.
 *
 *-------------------------------------------------------------------------
 */
#include "compat.h"

#include <math.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "faissio.h"
#include "ivfflat.h"
#include "ivfformat.h"
#include "ivfoptions.h"

/* -------------------------------------------------------------- reading */

typedef struct FileSource
{
	int			fd;
	const char *path;
} FileSource;

static int
file_read(void *arg, void *buf, size_t n)
{
	FileSource *fs = arg;
	char	   *p = buf;

	while (n > 0)
	{
		ssize_t		got;

		CHECK_FOR_INTERRUPTS();
		got = read(fs->fd, p, Min(n, (size_t) MaxAllocSize));
		if (got < 0)
		{
			if (errno == EINTR)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", fs->path)));
		}
		if (got == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("file \"%s\" became shorter while it was read", fs->path)));
		p += got;
		n -= got;
	}
	return 0;
}

static int
file_skip(void *arg, uint64_t n)
{
	FileSource *fs = arg;

	/* the reader skips only what the file's length holds: n fits off_t */
	if (lseek(fs->fd, (off_t) n, SEEK_CUR) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not seek in file \"%s\": %m", fs->path)));
	return 0;
}

/* what a file that is not a regular one is, for messages */
static const char *
file_type_name(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
#ifdef S_ISSOCK
	if (S_ISSOCK(mode))
		return "a socket";
#endif
#ifdef S_ISLNK
	if (S_ISLNK(mode))
		return "a symbolic link";
#endif
	return "not a regular file";
}

/* an error for a file that is not a regular one (also the export's) */
void
ivf_refuse_non_regular(const char *path, mode_t mode, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("\"%s\" is not a regular file", path),
			 errdetail("It is %s; %s.", file_type_name(mode), why)));
}

/*
 * Open 'path' for reading, refusing anything but a regular file before
 * anything could block: open() of a FIFO waits for a writer, past
 * statement_timeout, cancel and pg_terminate_backend, and opening a device
 * may act on it.  stat() first, so that no such file is even opened, then
 * open non-blocking and fstat() the file actually opened (the name may
 * have been replaced meanwhile), then make it blocking again.  A symbolic
 * link to a regular file is followed: reading needs pg_read_server_files,
 * which reads any file the server can anyway.
 */
static int
open_regular_file(const char *path, struct stat *st)
{
	struct stat named;
	int			fd;
	int			fl;

	if (stat(path, &named) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	if (!S_ISREG(named.st_mode))
		ivf_refuse_non_regular(path, named.st_mode, "centroids are read from a regular file only");
	fd = OpenTransientFile(path, O_RDONLY | O_NONBLOCK | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	if (fstat(fd, st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	if (!S_ISREG(st->st_mode))
		ivf_refuse_non_regular(path, st->st_mode, "centroids are read from a regular file only");
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set file \"%s\" to blocking mode: %m", path)));
	return fd;
}

static void *
palloc_huge(void *arg, size_t n)
{
	return palloc_extended(Max(n, 1), MCXT_ALLOC_HUGE);
}

/*
 * The nlists x dims centroids of a Faiss file (an IndexIVFFlat or a flat
 * index of centroids, see faissio.h), for an index of 'dims' dimensions
 * and 'metric': an L2 file for vector_l2_ops, an inner-product one for
 * vector_ip_ops and vector_cosine_ops (the centroids then normalised).
 * The caller needs superuser or the privileges of pg_read_server_files.
 * palloc'd in the current context.
 */
float *
ivf_faiss_read_centroids(const char *path, uint32 dims, IvfMetric metric,
						 uint32 *nlists)
{
	FileSource	fs;
	IvfFaissSource src;
	IvfFaissInfo info;
	struct stat st;
	char		err[IVF_FAISS_ERRLEN];
	int			want = metric == IVF_METRIC_L2 ? IVF_FAISS_METRIC_L2 : IVF_FAISS_METRIC_IP;

	if (!has_privs_of_role(GetUserId(), IVF_ROLE_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser or have privileges of the pg_read_server_files role to build an index from a centroids file"),
				 errdetail("The index would read \"%s\" on the server.", path)));

	fs.path = path;
	fs.fd = open_regular_file(path, &st);

	src.read = file_read;
	src.skip = file_skip;
	src.arg = &fs;
	src.length = (uint64_t) st.st_size;
	if (ivf_faiss_read(&src, palloc_huge, NULL, 0, &info, err, sizeof(err)) != 0)
	{
		/* the reader's message starts with the prefix; the path goes there */
		const char *prefix = "invalid Faiss file: ";
		const char *why = err;

		if (strncmp(err, prefix, strlen(prefix)) == 0)
			why += strlen(prefix);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid Faiss file \"%s\": %s", path, why),
				 errdetail("The problem is at byte " UINT64_FORMAT " of the file.",
						   (uint64) info.offset)));
	}
	CloseTransientFile(fs.fd);

	if (info.d != dims)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("centroids file \"%s\" has %u dimensions, the index %u",
						path, info.d, dims)));
	if (info.metric != want)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("centroids file \"%s\" is for the %s metric, the index's operator class needs %s",
						path,
						info.metric == IVF_FAISS_METRIC_L2 ? "L2" : "inner product",
						want == IVF_FAISS_METRIC_L2 ? "L2" : "inner product"),
				 errhint("vector_l2_ops takes an L2 file (IndexFlatL2 quantizer); vector_ip_ops and vector_cosine_ops take an inner-product one (IndexFlatIP).")));

	/* cosine compares unit vectors: so must its centroids be */
	if (metric == IVF_METRIC_COSINE)
	{
		uint32		l;

		for (l = 0; l < info.nlist; l++)
		{
			float	   *c = info.centroids + (Size) l * dims;
			double		norm = 0.0;
			uint32		j;

			for (j = 0; j < dims; j++)
				norm += (double) c[j] * (double) c[j];
			norm = sqrt(norm);
			if (norm > 0.0)
				for (j = 0; j < dims; j++)
					c[j] = (float) ((double) c[j] / norm);
		}
	}
	*nlists = info.nlist;
	return info.centroids;
}

/*
 * The build's centroids when the index has the centroids option, else
 * NULL.  Read afresh at every build (CREATE INDEX, REINDEX); the lists
 * option, when given, must equal the file's number of lists.
 */
float *
ivf_faiss_index_centroids(Relation index, uint32 dims, IvfMetric metric,
						  uint32 *nlists)
{
	IvfOptions *opts = ivf_get_options(index);
	const char *path;
	float	   *centroids;

	if (opts->centroids_offset == 0)
		return NULL;
	path = (const char *) opts + opts->centroids_offset;
	centroids = ivf_faiss_read_centroids(path, dims, metric, nlists);
	if (opts->lists > 0 && (uint32) opts->lists != *nlists)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("index \"%s\" has lists = %d, but centroids file \"%s\" has %u lists",
						RelationGetRelationName(index), opts->lists, path, *nlists),
				 errhint("Leave lists out: it is taken from the file.")));
	return centroids;
}
