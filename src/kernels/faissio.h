/*-------------------------------------------------------------------------
 *
 * faissio.h
 *	  Faiss IndexIVFFlat files: a streaming writer and a validating reader.
 *
 * The format is what Faiss's write_index produces for an IndexIVFFlat
 * (faiss/impl/index_write.cpp), all little-endian, "size_t" 8 bytes:
 *
 *	"IwFl"
 *	index header    int32 d, int64 ntotal, int64 1<<20, int64 1<<20,
 *	                uint8 is_trained, int32 metric_type
 *	                (float metric_arg follows only when metric_type > 1)
 *	uint64 nlist, uint64 nprobe
 *	quantizer       a whole flat index: "IxF2" (L2) or "IxFI" (inner
 *	                product), its own index header (d, ntotal = nlist, ...),
 *	                uint64 nlist * d, then nlist * d float32 centroids
 *	direct map      uint8 type, uint64 n, n int64 (type 2 adds uint64 m and
 *	                m (int64, int64) pairs)
 *	"ilar"          uint64 nlist, uint64 code_size (= d * 4), then
 *	                "full": uint64 nlist, nlist uint64 list sizes, or
 *	                "sprs": uint64 2m, m (list, size) uint64 pairs
 *	per non-empty list, in list order: its size * d float32 vectors, then
 *	its size int64 ids
 *
 * Faiss's metric numbers are used: 0 inner product, 1 L2.
 *
 * Plain C with no PostgreSQL dependency (like kmeans.h), so the same code
 * runs in ivf.so, in the unit test and in the libFuzzer target.  Nothing
 * here allocates except through the caller's allocation callback, and the
 * callbacks may longjmp out (ereport): no state needs cleaning up.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_FAISSIO_H
#define IVF_FAISSIO_H

#include <stddef.h>
#include <stdint.h>

#define IVF_FAISS_METRIC_IP		0	/* METRIC_INNER_PRODUCT */
#define IVF_FAISS_METRIC_L2		1	/* METRIC_L2 */

/* limits of the reader (and the writer): ivf's IVF_MAX_DIM, IVF_MAX_LISTS */
#define IVF_FAISS_MAX_DIM		16000
#define IVF_FAISS_MAX_LISTS		32768

/* a buffer of this size holds any message of the reader or the writer */
#define IVF_FAISS_ERRLEN		256

/* ---------------------------------------------------------------- writer */

/* write n bytes; nonzero means failure (or it does not return) */
typedef int (*IvfFaissWriteFn) (void *arg, const void *buf, size_t n);

/*
 * Writer state; the caller owns it (e.g. on the stack) and keeps 'sizes'
 * alive until ivf_faiss_write_end.
 */
typedef struct IvfFaissWriter
{
	IvfFaissWriteFn write;
	void	   *arg;
	uint32_t	d;
	uint32_t	nlist;
	const uint64_t *sizes;		/* the announced size of every list */
	uint32_t	list;			/* the list being written (nlist: done) */
	uint64_t	vecs_done;		/* of this list */
	uint64_t	ids_done;		/* of this list */
	int			failed;			/* an error was reported: refuse the rest */
	char	   *errbuf;
	size_t		errlen;
} IvfFaissWriter;

/*
 * Write everything up to the first list's vectors: the header, the
 * quantizer with the nlist x d centroids, an empty direct map and the
 * inverted lists' header with 'sizes' (nlist entries adding up to ntotal).
 * Then, for every list l in increasing order with sizes[l] > 0: its
 * sizes[l] vectors through ivf_faiss_write_vectors (in pieces of any
 * size), then its sizes[l] ids through ivf_faiss_write_ids; finally
 * ivf_faiss_write_end.  Every call checks the counts against what was
 * announced.  All return 0, or -1 with a message in errbuf (errlen bytes,
 * IVF_FAISS_ERRLEN is enough) when the arguments are wrong or a write
 * fails; after an error every further call fails.
 */
extern int	ivf_faiss_write_begin(IvfFaissWriter *w, uint32_t d, int metric,
								  uint32_t nlist, uint64_t nprobe,
								  uint64_t ntotal, const float *centroids,
								  const uint64_t *sizes,
								  IvfFaissWriteFn write, void *arg,
								  char *errbuf, size_t errlen);
extern int	ivf_faiss_write_vectors(IvfFaissWriter *w, uint32_t list,
									const float *x, size_t n);
extern int	ivf_faiss_write_ids(IvfFaissWriter *w, uint32_t list,
								const int64_t *ids, size_t n);
extern int	ivf_faiss_write_end(IvfFaissWriter *w);

/* ---------------------------------------------------------------- reader */

/*
 * Where the reader's bytes come from: read exactly n bytes into buf, or
 * skip n bytes, returning nonzero on failure; 'length' is the whole
 * input's size, against which every count is checked before it is used.
 * The reader never asks for more than what remains of 'length'.
 */
typedef struct IvfFaissSource
{
	int			(*read) (void *arg, void *buf, size_t n);
	int			(*skip) (void *arg, uint64_t n);
	void	   *arg;
	uint64_t	length;
} IvfFaissSource;

/* allocate n bytes (NULL: out of memory) */
typedef void *(*IvfFaissAllocFn) (void *arg, size_t n);

/* what a file holds */
#define IVF_FAISS_KIND_IVF		1	/* "IwFl": an IndexIVFFlat */
#define IVF_FAISS_KIND_FLAT		2	/* "IxF2" / "IxFI": centroids only */

typedef struct IvfFaissInfo
{
	int			kind;			/* IVF_FAISS_KIND_* */
	uint32_t	d;
	int			metric;			/* IVF_FAISS_METRIC_* */
	uint32_t	nlist;			/* lists (flat: its vectors) */
	uint64_t	nprobe;			/* as stored (flat: 0) */
	uint64_t	ntotal;			/* vectors in the lists (flat: 0) */
	float	   *centroids;		/* nlist x d, through the callback */
	uint64_t   *list_sizes;		/* nlist, if asked for and IVF; else NULL */
	uint64_t	offset;			/* where reading stopped (an error: where
								 * it was found) */
} IvfFaissInfo;

/*
 * Read and check a Faiss file.  Accepted: an IndexIVFFlat ("IwFl", whose
 * quantizer is a flat index of the same metric, with "ilar" inverted
 * lists in the "full" or "sprs" layout), or a bare flat index ("IxF2",
 * "IxFI") whose vectors are taken as the centroids, as faiss.Kmeans
 * leaves them.  Metric L2 or inner product only.  The lists' vectors and
 * ids are skipped, not read.  Nothing may follow the index.
 *
 * Every field is checked before it is used (see faissio.c); the only
 * allocations are the centroids, once their size is known to fit in what
 * remains of the input, and with want_sizes the nlist list sizes (at most
 * 256 kB).  Returns 0 and fills info, or -1 with a message naming the
 * field and its value in errbuf, e.g.
 *	invalid Faiss file: "nlist" is 0 (must be 1..32768)
 * and info->offset telling where.  On error whatever was allocated is the
 * caller's (a memory context reset, or the fuzzer's own bookkeeping).
 */
extern int	ivf_faiss_read(const IvfFaissSource *src, IvfFaissAllocFn alloc,
						   void *alloc_arg, int want_sizes,
						   IvfFaissInfo *info, char *errbuf, size_t errlen);

/* a source over bytes in memory (the fuzzer, tests) */
typedef struct IvfFaissMemory
{
	const unsigned char *data;
	size_t		len;
	size_t		pos;
} IvfFaissMemory;

extern void ivf_faiss_memory_source(IvfFaissMemory *m, const void *data,
									size_t len, IvfFaissSource *src);

#endif							/* IVF_FAISSIO_H */
