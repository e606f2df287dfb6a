/*-------------------------------------------------------------------------
 *
 * test_faissio.c
 *	  Standalone test of the Faiss IndexIVFFlat writer and reader
 *	  (src/kernels/faissio.c, no server needed).
 *
 * The file format is built a second time here, field by field, from a
 * description (Spec) in which any field can be set to anything:
 *
 *	- round trip: the writer's output equals the Spec's bytes for the same
 *	  index, whatever pieces the lists are written in, and the reader gives
 *	  back d, metric, nlist, ntotal, centroids (bit for bit) and sizes;
 *	- misuse of the writer (wrong list, too many vectors, ids first, ...)
 *	  and a failing write callback are refused;
 *	- a table of files with one field wrong, each refused with a message
 *	  naming that field and its value; overflowing counts; truncation at
 *	  every length of small files; failing read and skip callbacks; and
 *	  every allocation no larger than the file (or the list sizes);
 *	- the seed corpus test/fuzz/corpus-faiss: files written by Faiss
 *	  (test/fuzz/make_faiss_seeds.py) read with the values they were made
 *	  from, broken ones refused, ours accepted.
 *
 *	  test_faissio               run the tests (from the repository root)
 *	  test_faissio --seeds DIR   write the seeds made by our writer to DIR
 *
 * Prints one line per check group and finally "N passed, M failed"; exits
 * 1 if anything failed.
 *
 *-------------------------------------------------------------------------
 */
#include "faissio.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define CORPUS_DIR "test/fuzz/corpus-faiss"

/* ---------------------------------------------------------------------
 * Byte buffers
 * ---------------------------------------------------------------------
 */
typedef struct Buf
{
	unsigned char *p;
	size_t		len;
	size_t		cap;
	size_t		fail_after;		/* writer sink: fail past this many bytes */
} Buf;

static void
buf_add(Buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
		{
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
	}
	if (n > 0)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void
buf_u8(Buf *b, uint8_t v)
{
	buf_add(b, &v, 1);
}

static void
buf_u32(Buf *b, uint32_t v)
{
	unsigned char c[4] = {v, v >> 8, v >> 16, v >> 24};

	buf_add(b, c, 4);
}

static void
buf_u64(Buf *b, uint64_t v)
{
	buf_u32(b, (uint32_t) v);
	buf_u32(b, (uint32_t) (v >> 32));
}

static void
buf_f32(Buf *b, float f)
{
	uint32_t	v;

	memcpy(&v, &f, 4);
	buf_u32(b, v);
}

static void
buf_fourcc(Buf *b, const char *s)
{
	buf_add(b, s, 4);
}

static void
buf_free(Buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* the writer's sink */
static int
buf_write(void *arg, const void *data, size_t n)
{
	Buf		   *b = arg;

	if (b->fail_after > 0 && b->len + n > b->fail_after)
		return -1;
	buf_add(b, data, n);
	return 0;
}

/* ---------------------------------------------------------------------
 * The reader's allocations: all kept (freed together), the largest noted
 * ---------------------------------------------------------------------
 */
typedef struct Allocs
{
	void	   *ptr[8];
	size_t		size[8];
	int			n;
	int			fail;			/* return NULL */
} Allocs;

static void *
test_alloc(void *arg, size_t n)
{
	Allocs	   *a = arg;

	if (a->fail || a->n == 8)
		return NULL;
	a->ptr[a->n] = xmalloc(n);
	a->size[a->n] = n;
	return a->ptr[a->n++];
}

static void
allocs_free(Allocs *a)
{
	int			i;

	for (i = 0; i < a->n; i++)
		free(a->ptr[i]);
	a->n = 0;
}

/* every allocation fits in the file, but for the list sizes' array */
static int
allocs_bounded(const Allocs *a, size_t file_len)
{
	int			i;

	for (i = 0; i < a->n; i++)
		if (a->size[i] > file_len &&
			a->size[i] > sizeof(uint64_t) * IVF_FAISS_MAX_LISTS)
			return 0;
	return 1;
}

typedef struct ReadResult
{
	int			rc;
	IvfFaissInfo info;
	char		err[IVF_FAISS_ERRLEN];
	int			bounded;
} ReadResult;

/* read bytes with the reader (asking for the sizes); caller frees *a */
static void
read_bytes(const void *data, size_t len, Allocs *a, ReadResult *res)
{
	IvfFaissMemory m;
	IvfFaissSource src;

	memset(a, 0, sizeof(*a));
	ivf_faiss_memory_source(&m, data, len, &src);
	strcpy(res->err, "(none)");
	res->rc = ivf_faiss_read(&src, test_alloc, a, 1, &res->info, res->err,
							 sizeof(res->err));
	res->bounded = allocs_bounded(a, len);
}

/* ---------------------------------------------------------------------
 * The format, built from a description in which anything can be wrong
 * ---------------------------------------------------------------------
 */
typedef struct Spec
{
	int			flat;			/* a bare flat index instead of IwFl */
	char		fourcc[5];
	int32_t		d;
	int64_t		ntotal;
	uint8_t		trained;
	int32_t		metric;
	uint64_t	nlist;
	uint64_t	nprobe;
	char		qfourcc[5];
	int32_t		qd;
	int64_t		qntotal;
	uint8_t		qtrained;
	int32_t		qmetric;
	uint64_t	qcount;			/* the codes' count field (floats) */
	uint64_t	nfloats;		/* floats actually written */
	int64_t		bad_float;		/* index of a float to make NaN, or -1 */
	uint8_t		dmtype;
	uint64_t	dmn;
	uint64_t	dm_written;		/* direct map entries written */
	uint64_t	hashn;			/* hashtable pairs (type 2) */
	char		ilar[5];
	uint64_t	inlist;
	uint64_t	code_size;
	char		list_type[5];
	uint64_t	sizes_count;	/* the count field */
	uint64_t	sizes[16];		/* the entries written */
	int			nsizes;
	const unsigned char *data;	/* the lists' bytes, or NULL: a pattern */
	uint64_t	data_len;
	size_t		trailing;		/* junk bytes after everything */
} Spec;

static float
centroid_value(uint64_t i, uint64_t j)
{
	return (float) i + (float) j / 4;
}

/* a valid IVF: d 3, L2, 4 lists of sizes 2, 0, 1, 3 */
static void
spec_default(Spec *s)
{
	static const uint64_t sizes[] = {2, 0, 1, 3};

	memset(s, 0, sizeof(*s));
	strcpy(s->fourcc, "IwFl");
	s->d = 3;
	s->ntotal = 6;
	s->trained = 1;
	s->metric = IVF_FAISS_METRIC_L2;
	s->nlist = 4;
	s->nprobe = 1;
	strcpy(s->qfourcc, "IxF2");
	s->qd = 3;
	s->qntotal = 4;
	s->qtrained = 1;
	s->qmetric = IVF_FAISS_METRIC_L2;
	s->qcount = s->nfloats = 12;
	s->bad_float = -1;
	strcpy(s->ilar, "ilar");
	s->inlist = 4;
	s->code_size = 12;
	strcpy(s->list_type, "full");
	s->sizes_count = 4;
	memcpy(s->sizes, sizes, sizeof(sizes));
	s->nsizes = 4;
	s->data_len = 6 * (12 + 8);
}

/* the same index with its sizes in the sparse layout */
static void
spec_sparse(Spec *s)
{
	static const uint64_t pairs[] = {0, 2, 2, 1, 3, 3};

	spec_default(s);
	strcpy(s->list_type, "sprs");
	s->sizes_count = 6;
	memcpy(s->sizes, pairs, sizeof(pairs));
	s->nsizes = 6;
}

/* a flat index of 4 centroids (d 3, L2) */
static void
spec_flat(Spec *s)
{
	spec_default(s);
	s->flat = 1;
	strcpy(s->fourcc, "IxF2");
	s->ntotal = 4;
}

static void
build_header(Buf *b, const char *fourcc, int32_t d, int64_t ntotal,
			 uint8_t trained, int32_t metric)
{
	buf_fourcc(b, fourcc);
	buf_u32(b, (uint32_t) d);
	buf_u64(b, (uint64_t) ntotal);
	buf_u64(b, 1 << 20);
	buf_u64(b, 1 << 20);
	buf_u8(b, trained);
	buf_u32(b, (uint32_t) metric);
}

static void
build_floats(Buf *b, const Spec *s)
{
	uint64_t	i;
	uint64_t	d = s->d > 0 ? (uint64_t) s->d : 1;

	for (i = 0; i < s->nfloats; i++)
		buf_f32(b, (int64_t) i == s->bad_float ? NAN : centroid_value(i / d, i % d));
}

static void
build(const Spec *s, Buf *b)
{
	uint64_t	i;

	memset(b, 0, sizeof(*b));
	if (s->flat)
	{
		build_header(b, s->fourcc, s->d, s->ntotal, s->trained, s->metric);
		buf_u64(b, s->qcount);
		build_floats(b, s);
	}
	else
	{
		build_header(b, s->fourcc, s->d, s->ntotal, s->trained, s->metric);
		buf_u64(b, s->nlist);
		buf_u64(b, s->nprobe);
		build_header(b, s->qfourcc, s->qd, s->qntotal, s->qtrained, s->qmetric);
		buf_u64(b, s->qcount);
		build_floats(b, s);
		buf_u8(b, s->dmtype);
		buf_u64(b, s->dmn);
		for (i = 0; i < s->dm_written; i++)
			buf_u64(b, i);
		if (s->dmtype == 2)
		{
			buf_u64(b, s->hashn);
			for (i = 0; i < s->hashn; i++)
			{
				buf_u64(b, i);
				buf_u64(b, i);
			}
		}
		buf_fourcc(b, s->ilar);
		buf_u64(b, s->inlist);
		buf_u64(b, s->code_size);
		buf_fourcc(b, s->list_type);
		buf_u64(b, s->sizes_count);
		for (i = 0; i < (uint64_t) s->nsizes; i++)
			buf_u64(b, s->sizes[i]);
		if (s->data != NULL)
			buf_add(b, s->data, s->data_len);
		else
			for (i = 0; i < s->data_len; i++)
				buf_u8(b, (uint8_t) (i * 7));
	}
	for (i = 0; i < s->trailing; i++)
		buf_u8(b, 0);
}

/* ---------------------------------------------------------------------
 * Writer: round trip and exact bytes
 * ---------------------------------------------------------------------
 */

/*
 * Write an index with the writer (each list in random pieces), compare the
 * bytes with the Spec's, read it back.  Returns nonzero on a failure.
 */
static void
round_trip(const char *what, uint32_t d, int metric, uint32_t nlist,
		   const uint64_t *sizes)
{
	IvfFaissWriter w;
	Buf			out = {0};
	Buf			data = {0};
	Buf			expect;
	Spec		s;
	Allocs		a;
	ReadResult	res;
	char		err[IVF_FAISS_ERRLEN] = "";
	float	   *cent = xmalloc(sizeof(float) * nlist * d);
	uint64_t	ntotal = 0;
	uint32_t	l;
	uint64_t	i;
	int			rc;

	for (i = 0; i < (uint64_t) nlist * d; i++)
		cent[i] = centroid_value(i / d, i % d);
	for (l = 0; l < nlist; l++)
		ntotal += sizes[l];

	rc = ivf_faiss_write_begin(&w, d, metric, nlist, 7, ntotal, cent, sizes,
							   buf_write, &out, err, sizeof(err));
	check(rc == 0, "%s: write_begin: %s", what, err);
	for (l = 0; l < nlist && rc == 0; l++)
	{
		uint64_t	n = sizes[l];
		float	   *x = xmalloc(sizeof(float) * (n ? n : 1) * d);
		int64_t    *ids = xmalloc(sizeof(int64_t) * (n ? n : 1));
		uint64_t	at;

		for (i = 0; i < n * d; i++)
			x[i] = rng_float(-100, 100);
		for (i = 0; i < n; i++)
			ids[i] = (int64_t) (rng_next() >> 1) - (int64_t) (i % 3 == 0 ? 0 : 1) * 12345;
		for (i = 0; i < n * d; i++)
			buf_f32(&data, x[i]);
		for (i = 0; i < n; i++)
			buf_u64(&data, (uint64_t) ids[i]);
		/* vectors then ids, each in random pieces (and empty ones) */
		for (at = 0; at < n && rc == 0;)
		{
			uint64_t	k = (uint64_t) rng_int(0, (int) (n - at < 5 ? n - at : 5));

			rc = ivf_faiss_write_vectors(&w, l, x + at * d, k);
			at += k;
		}
		for (at = 0; at < n && rc == 0;)
		{
			uint64_t	k = (uint64_t) rng_int(0, (int) (n - at < 5 ? n - at : 5));

			rc = ivf_faiss_write_ids(&w, l, ids + at, k);
			at += k;
		}
		check(rc == 0, "%s: list %u: %s", what, l, err);
		free(x);
		free(ids);
	}
	if (rc == 0)
		check(ivf_faiss_write_end(&w) == 0, "%s: write_end: %s", what, err);

	/* the same index, field by field */
	memset(&s, 0, sizeof(s));
	spec_default(&s);
	s.d = s.qd = (int32_t) d;
	s.ntotal = (int64_t) ntotal;
	s.metric = s.qmetric = metric;
	strcpy(s.qfourcc, metric == IVF_FAISS_METRIC_L2 ? "IxF2" : "IxFI");
	s.nlist = s.inlist = s.sizes_count = nlist;
	s.qntotal = nlist;
	s.nprobe = 7;
	s.qcount = s.nfloats = (uint64_t) nlist * d;
	s.code_size = (uint64_t) d * 4;
	s.nsizes = 0;
	s.data = data.p;
	s.data_len = data.len;
	build(&s, &expect);
	{
		/* the Spec holds 16 sizes at most: splice them in before the data */
		Buf			full = {0};
		size_t		head = expect.len - data.len;
		uint32_t	k;

		buf_add(&full, expect.p, head);
		for (k = 0; k < nlist; k++)
			buf_u64(&full, sizes[k]);
		buf_add(&full, data.p, data.len);
		check(full.len == out.len && memcmp(full.p, out.p, out.len) == 0,
			  "%s: writer bytes differ from the format (%zu vs %zu bytes)",
			  what, out.len, full.len);
		buf_free(&full);
	}

	read_bytes(out.p, out.len, &a, &res);
	if (check(res.rc == 0, "%s: read back: %s", what, res.err))
	{
		int			same = 1;

		check(res.info.kind == IVF_FAISS_KIND_IVF && res.info.d == d &&
			  res.info.metric == metric && res.info.nlist == nlist &&
			  res.info.ntotal == ntotal && res.info.nprobe == 7 &&
			  res.info.offset == out.len,
			  "%s: read back header", what);
		for (i = 0; i < (uint64_t) nlist * d; i++)
			same &= same_float(res.info.centroids[i], cent[i], 0);
		for (l = 0; l < nlist; l++)
			same &= res.info.list_sizes[l] == sizes[l];
		check(same, "%s: centroids or sizes differ", what);
	}
	check(res.bounded, "%s: an allocation exceeds the file", what);
	allocs_free(&a);
	buf_free(&out);
	buf_free(&data);
	buf_free(&expect);
	free(cent);
}

static void
test_round_trip(void)
{
	static const uint64_t s1[] = {2, 0, 1, 3};
	static const uint64_t s2[] = {0, 0, 0};
	static const uint64_t s3[] = {5};
	static const uint64_t s4[] = {0, 0, 0, 0, 0, 9, 0};
	uint64_t	big[300];
	int			i;

	group_begin("writer: bytes as specified, read back the same");
	round_trip("d 3, 4 lists, L2", 3, IVF_FAISS_METRIC_L2, 4, s1);
	round_trip("d 3, 4 lists, IP", 3, IVF_FAISS_METRIC_IP, 4, s1);
	round_trip("all lists empty", 5, IVF_FAISS_METRIC_L2, 3, s2);
	round_trip("d 1, one list", 1, IVF_FAISS_METRIC_IP, 1, s3);
	round_trip("one non-empty list of 7", 2, IVF_FAISS_METRIC_L2, 7, s4);
	round_trip("d 16000", 16000, IVF_FAISS_METRIC_L2, 1, s3);
	for (i = 0; i < 300; i++)
		big[i] = (uint64_t) rng_int(0, 3);
	round_trip("300 lists of 0..3", 17, IVF_FAISS_METRIC_IP, 300, big);
	group_end();
}

/* ---------------------------------------------------------------------
 * Writer: misuse and failing writes
 * ---------------------------------------------------------------------
 */
static void
expect_writer_error(const char *what, int rc, const char *err,
					const char *want)
{
	check(rc != 0 && strstr(err, want) != NULL,
		  "%s: rc %d, message \"%s\" (wanted \"%s\")", what, rc, err, want);
}

static void
test_writer_misuse(void)
{
	static const uint64_t sizes[] = {2, 0, 1};
	static const uint64_t zeros[] = {0, 0, 0};
	float		cent[9] = {0};
	float		x[6] = {0};
	int64_t		ids[2] = {1, 2};
	IvfFaissWriter w;
	Buf			out = {0};
	char		err[IVF_FAISS_ERRLEN];
	int			rc;

	group_begin("writer: misuse and write failures refused");

	rc = ivf_faiss_write_begin(&w, 0, IVF_FAISS_METRIC_L2, 3, 1, 3, cent, sizes,
							   buf_write, &out, err, sizeof(err));
	expect_writer_error("d 0", rc, err, "d 0 is out of range");
	rc = ivf_faiss_write_begin(&w, 16001, IVF_FAISS_METRIC_L2, 3, 1, 3, cent, sizes,
							   buf_write, &out, err, sizeof(err));
	expect_writer_error("d 16001", rc, err, "d 16001 is out of range");
	rc = ivf_faiss_write_begin(&w, 3, IVF_FAISS_METRIC_L2, 0, 1, 0, cent, sizes,
							   buf_write, &out, err, sizeof(err));
	expect_writer_error("nlist 0", rc, err, "nlist 0 is out of range");
	rc = ivf_faiss_write_begin(&w, 3, 2, 3, 1, 3, cent, sizes,
							   buf_write, &out, err, sizeof(err));
	expect_writer_error("metric 2", rc, err, "metric 2 is neither");
	rc = ivf_faiss_write_begin(&w, 3, IVF_FAISS_METRIC_L2, 3, 1, 4, cent, sizes,
							   buf_write, &out, err, sizeof(err));
	expect_writer_error("ntotal", rc, err, "add up to 3, not ntotal 4");
	cent[4] = INFINITY;
	rc = ivf_faiss_write_begin(&w, 3, IVF_FAISS_METRIC_L2, 3, 1, 3, cent, sizes,
							   buf_write, &out, err, sizeof(err));
	expect_writer_error("infinite centroid", rc, err, "centroid 1 has a non-finite");
	cent[4] = 0;
	check(out.len == 0, "refused begins wrote %zu bytes", out.len);

#define BEGIN() \
	(buf_free(&out), \
	 ivf_faiss_write_begin(&w, 3, IVF_FAISS_METRIC_L2, 3, 1, 3, cent, sizes, \
						   buf_write, &out, err, sizeof(err)))

	rc = BEGIN();
	check(rc == 0, "begin: %s", err);
	rc = ivf_faiss_write_vectors(&w, 2, x, 1);
	expect_writer_error("list 2 first", rc, err, "vectors for list 2 while list 0");
	rc = ivf_faiss_write_vectors(&w, 0, x, 1);
	check(rc != 0, "the writer continued after an error");

	BEGIN();
	rc = ivf_faiss_write_vectors(&w, 0, x, 3);
	expect_writer_error("3 vectors in a list of 2", rc, err, "more than the 2 vectors");
	BEGIN();
	ivf_faiss_write_vectors(&w, 0, x, 1);
	rc = ivf_faiss_write_ids(&w, 0, ids, 1);
	expect_writer_error("ids before all vectors", rc, err, "ids for list 0 after 1 of its 2");
	BEGIN();
	ivf_faiss_write_vectors(&w, 0, x, 2);
	rc = ivf_faiss_write_ids(&w, 0, ids, 3);
	expect_writer_error("3 ids", rc, err, "more than the 2 ids");
	BEGIN();
	ivf_faiss_write_vectors(&w, 0, x, 2);
	ivf_faiss_write_ids(&w, 0, ids, 1);
	rc = ivf_faiss_write_vectors(&w, 0, x, 1);
	expect_writer_error("vectors after ids", rc, err, "vectors for list 0 after its ids");
	BEGIN();
	ivf_faiss_write_vectors(&w, 0, x, 2);
	ivf_faiss_write_ids(&w, 0, ids, 2);
	rc = ivf_faiss_write_vectors(&w, 1, x, 1);
	expect_writer_error("the empty list", rc, err, "vectors for list 1 while list 2");
	BEGIN();
	ivf_faiss_write_vectors(&w, 0, x, 2);
	ivf_faiss_write_ids(&w, 0, ids, 2);
	rc = ivf_faiss_write_end(&w);
	expect_writer_error("end too early", rc, err, "list 2 is incomplete");
	BEGIN();
	ivf_faiss_write_vectors(&w, 0, x, 2);
	ivf_faiss_write_ids(&w, 0, ids, 2);
	ivf_faiss_write_vectors(&w, 2, x, 1);
	ivf_faiss_write_ids(&w, 2, ids, 1);
	rc = ivf_faiss_write_vectors(&w, 2, x, 1);
	expect_writer_error("past the last list", rc, err, "after the last list");

	/* nothing to write at all */
	buf_free(&out);
	rc = ivf_faiss_write_begin(&w, 3, IVF_FAISS_METRIC_IP, 3, 1, 0, cent, zeros,
							   buf_write, &out, err, sizeof(err));
	check(rc == 0 && ivf_faiss_write_end(&w) == 0, "an empty index: %s", err);

	/* a write that fails anywhere is reported, and so is everything after */
	{
		size_t		full;
		size_t		cut;

		BEGIN();
		ivf_faiss_write_vectors(&w, 0, x, 2);
		ivf_faiss_write_ids(&w, 0, ids, 2);
		ivf_faiss_write_vectors(&w, 2, x, 1);
		ivf_faiss_write_ids(&w, 2, ids, 1);
		full = out.len;
		for (cut = 1; cut < full; cut += 7)
		{
			int			rcs[5];

			buf_free(&out);
			out.fail_after = cut;
			rcs[0] = ivf_faiss_write_begin(&w, 3, IVF_FAISS_METRIC_L2, 3, 1, 3, cent,
										   sizes, buf_write, &out, err, sizeof(err));
			rcs[1] = ivf_faiss_write_vectors(&w, 0, x, 2);
			rcs[2] = ivf_faiss_write_ids(&w, 0, ids, 2);
			rcs[3] = ivf_faiss_write_vectors(&w, 2, x, 1);
			rcs[4] = ivf_faiss_write_ids(&w, 2, ids, 1);
			check((rcs[0] | rcs[1] | rcs[2] | rcs[3] | rcs[4]) != 0 &&
				  ivf_faiss_write_end(&w) != 0 &&
				  strstr(err, "could not write") != NULL,
				  "write failing past byte %zu: %s", cut, err);
		}
		out.fail_after = 0;
	}
#undef BEGIN
	buf_free(&out);
	group_end();
}

/* ---------------------------------------------------------------------
 * Reader: one field wrong at a time
 * ---------------------------------------------------------------------
 */
typedef void (*SpecEdit) (Spec *s);

typedef struct Case
{
	const char *name;
	void		(*base) (Spec *s);
	SpecEdit	edit;
	const char *want;			/* substring of the message, NULL: valid */
} Case;

#define EDIT(name, body) static void name(Spec *s) { body; }

EDIT(e_none, (void) s)
EDIT(e_fourcc, strcpy(s->fourcc, "IxHe"))
EDIT(e_fourcc_legacy, strcpy(s->fourcc, "IvFl"))
EDIT(e_fourcc_binary, memcpy(s->fourcc, "\x01\x02\"\xff", 4))
EDIT(e_d0, s->d = 0)
EDIT(e_d_big, s->d = 16001)
EDIT(e_d_neg, s->d = -1)
EDIT(e_ntotal_neg, s->ntotal = -1)
EDIT(e_untrained, s->trained = 0)
EDIT(e_trained2, s->trained = 2)
EDIT(e_metric2, s->metric = 2)
EDIT(e_metric_neg, s->metric = -1)
EDIT(e_nlist0, s->nlist = 0)
EDIT(e_nlist_big, s->nlist = 32769)
EDIT(e_nlist_huge, s->nlist = UINT64_MAX)
EDIT(e_nprobe_any, s->nprobe = UINT64_MAX)
EDIT(e_qfourcc, strcpy(s->qfourcc, "IHNf"))
EDIT(e_qd, s->qd = 4)
EDIT(e_qntotal, s->qntotal = 3)
EDIT(e_quntrained, s->qtrained = 0)
EDIT(e_qmetric_fourcc, s->qmetric = IVF_FAISS_METRIC_IP)
EDIT(e_qmetric_index, strcpy(s->qfourcc, "IxFI"); s->qmetric = IVF_FAISS_METRIC_IP)
EDIT(e_qmetric_bad, s->qmetric = 23)
EDIT(e_ip, strcpy(s->qfourcc, "IxFI"); s->qmetric = s->metric = IVF_FAISS_METRIC_IP)
EDIT(e_qcount_short, s->qcount = 11)
EDIT(e_qcount_huge, s->qcount = (uint64_t) 1 << 62)
EDIT(e_qcount_wrap, s->qcount = UINT64_MAX / 2 + 7)
EDIT(e_nan, s->bad_float = 5)
EDIT(e_dmtype, s->dmtype = 3)
EDIT(e_dm0_size, s->dmn = 1; s->dm_written = 1)
EDIT(e_dm1_size, s->dmtype = 1; s->dmn = 5; s->dm_written = 5)
EDIT(e_dm1_ok, s->dmtype = 1; s->dmn = 6; s->dm_written = 6)
EDIT(e_dm1_short, s->dmtype = 1; s->dmn = 6; s->dm_written = 5)
EDIT(e_dm2_ok, s->dmtype = 2; s->hashn = 6)
EDIT(e_dm2_big, s->dmtype = 2; s->hashn = 7)
EDIT(e_dm2_size, s->dmtype = 2; s->dmn = 2; s->dm_written = 2)
EDIT(e_ilar, strcpy(s->ilar, "il00"))
EDIT(e_ilar_ondisk, strcpy(s->ilar, "ilod"))
EDIT(e_inlist, s->inlist = 5)
EDIT(e_code_size, s->code_size = 16)
EDIT(e_code_size_huge, s->code_size = UINT64_MAX)
EDIT(e_list_type, strcpy(s->list_type, "abcd"))
EDIT(e_full_count, s->sizes_count = 3; s->nsizes = 3)
EDIT(e_full_count_huge, s->sizes_count = UINT64_MAX)
EDIT(e_size_huge, s->sizes[0] = (uint64_t) 1 << 62)
EDIT(e_size_wrap, s->sizes[0] = UINT64_MAX / 20 + 1)
EDIT(e_size_sum, s->sizes[3] = 2; s->data_len -= 20)
EDIT(e_sum_big, s->sizes[1] = 1; s->data_len += 20)
EDIT(e_data_short, s->data_len -= 1)
EDIT(e_trailing, s->trailing = 1)
EDIT(e_sprs_odd, s->sizes_count = 5; s->nsizes = 5)
EDIT(e_sprs_many, s->sizes_count = 10)
EDIT(e_sprs_list, s->sizes[4] = 4)
EDIT(e_sprs_order, s->sizes[2] = 0)
EDIT(e_sprs_dup, s->sizes[4] = 2)
EDIT(e_sprs_count_huge, s->sizes_count = (uint64_t) 1 << 63)
EDIT(e_sprs_moved, s->sizes[1] = 3; s->sizes[5] = 2)
EDIT(e_flat_ip, strcpy(s->fourcc, "IxFI"); s->metric = IVF_FAISS_METRIC_IP)
EDIT(e_flat_metric, s->metric = IVF_FAISS_METRIC_IP)
EDIT(e_flat_ntotal0, s->ntotal = 0; s->qcount = s->nfloats = 0)
EDIT(e_flat_ntotal_big, s->ntotal = 32769)
EDIT(e_flat_count, s->qcount = 13; s->nfloats = 13)
EDIT(e_flat_trailing, s->trailing = 3)
EDIT(e_flat_d, s->d = 0)

static const Case cases[] = {
	{"valid (full)", spec_default, e_none, NULL},
	{"valid (sprs)", spec_sparse, e_none, NULL},
	{"valid (flat)", spec_flat, e_none, NULL},
	{"valid (inner product)", spec_default, e_ip, NULL},
	{"valid (direct map array)", spec_default, e_dm1_ok, NULL},
	{"valid (direct map hashtable)", spec_default, e_dm2_ok, NULL},
	{"valid (any nprobe)", spec_default, e_nprobe_any, NULL},
	{"valid (flat IP)", spec_flat, e_flat_ip, NULL},
	{"fourcc", spec_default, e_fourcc, "index type \"IxHe\" is not supported"},
	{"legacy fourcc", spec_default, e_fourcc_legacy, "\"IvFl\" is Faiss's pre-2018"},
	{"binary fourcc", spec_default, e_fourcc_binary, "index type \"\\x01\\x02\\x22\\xFF\""},
	{"d 0", spec_default, e_d0, "\"d\" is 0 (must be 1..16000)"},
	{"d 16001", spec_default, e_d_big, "\"d\" is 16001 (must be 1..16000)"},
	{"d -1", spec_default, e_d_neg, "\"d\" is -1 (must be 1..16000)"},
	{"ntotal -1", spec_default, e_ntotal_neg, "\"ntotal\" is -1 (must be 0 or more)"},
	{"is_trained 0", spec_default, e_untrained, "\"is_trained\" is 0 (must be 1: the index is not trained)"},
	{"is_trained 2", spec_default, e_trained2, "\"is_trained\" is 2 (must be 1"},
	{"metric 2", spec_default, e_metric2, "\"metric_type\" is 2 (must be 0, inner product, or 1, L2)"},
	{"metric -1", spec_default, e_metric_neg, "\"metric_type\" is -1"},
	{"nlist 0", spec_default, e_nlist0, "\"nlist\" is 0 (must be 1..32768)"},
	{"nlist 32769", spec_default, e_nlist_big, "\"nlist\" is 32769 (must be 1..32768)"},
	{"nlist 2^64-1", spec_default, e_nlist_huge, "\"nlist\" is 18446744073709551615"},
	{"quantizer fourcc", spec_default, e_qfourcc, "\"quantizer\" has type \"IHNf\""},
	{"quantizer d", spec_default, e_qd, "\"quantizer d\" is 4 but \"d\" is 3"},
	{"quantizer ntotal", spec_default, e_qntotal, "\"quantizer ntotal\" is 3 but \"nlist\" is 4"},
	{"quantizer is_trained", spec_default, e_quntrained, "\"quantizer is_trained\" is 0"},
	{"quantizer metric vs its fourcc", spec_default, e_qmetric_fourcc,
	"\"quantizer metric_type\" is 0 (inner product) but its type \"IxF2\" is L2"},
	{"quantizer metric vs the index's", spec_default, e_qmetric_index,
	"\"quantizer metric_type\" is 0 (inner product) but \"metric_type\" is 1 (L2)"},
	{"quantizer metric 23", spec_default, e_qmetric_bad, "\"quantizer metric_type\" is 23"},
	{"quantizer codes 11", spec_default, e_qcount_short,
	"\"quantizer codes\" holds 11 floats (must be nlist * d = 12)"},
	{"quantizer codes 2^62", spec_default, e_qcount_huge, "\"quantizer codes\" holds 4611686018427387904 floats"},
	{"quantizer codes wrapping", spec_default, e_qcount_wrap, "\"quantizer codes\" holds 9223372036854775814 floats"},
	{"NaN centroid", spec_default, e_nan, "centroid 1 has a non-finite value in dimension 2"},
	{"direct map type", spec_default, e_dmtype, "\"direct_map type\" is 3 (must be 0, 1 or 2)"},
	{"direct map size, type 0", spec_default, e_dm0_size, "\"direct_map size\" is 1 (must be 0 for type 0)"},
	{"direct map size, type 1", spec_default, e_dm1_size, "\"direct_map size\" is 5 (must be 6 for type 1)"},
	{"direct map array cut", spec_default, e_dm1_short, "\"invlists\" has type \"\\x00\\x00\\x00\\x00\""},
	{"direct map hashtable size", spec_default, e_dm2_big, "\"direct_map hashtable size\" is 7 (must be at most ntotal = 6)"},
	{"direct map size, type 2", spec_default, e_dm2_size, "\"direct_map size\" is 2 (must be 0 for type 2)"},
	{"invlists il00", spec_default, e_ilar, "\"invlists\" has type \"il00\""},
	{"invlists ilod", spec_default, e_ilar_ondisk, "\"invlists\" has type \"ilod\""},
	{"invlists nlist", spec_default, e_inlist, "\"invlists nlist\" is 5 but \"nlist\" is 4"},
	{"code_size", spec_default, e_code_size, "\"code_size\" is 16 (must be d * 4 = 12)"},
	{"code_size 2^64-1", spec_default, e_code_size_huge, "\"code_size\" is 18446744073709551615"},
	{"list_type", spec_default, e_list_type, "\"list_type\" is \"abcd\" (must be \"full\" or \"sprs\")"},
	{"full sizes count", spec_default, e_full_count, "\"sizes\" holds 3 entries (must be nlist = 4)"},
	{"full sizes count 2^64-1", spec_default, e_full_count_huge, "\"sizes\" holds 18446744073709551615 entries"},
	{"list size 2^62", spec_default, e_size_huge, "list 0 has size 4611686018427387904, more than the"},
	{"list size wrapping", spec_default, e_size_wrap, "list 0 has size 922337203685477581, more than the"},
	{"sizes below ntotal", spec_default, e_size_sum, "the list sizes add up to 5 but \"ntotal\" is 6"},
	{"sizes above ntotal", spec_default, e_sum_big, "the list sizes add up to 7 but \"ntotal\" is 6"},
	{"lists cut by a byte", spec_default, e_data_short, "list 3 has size 3, more than the 59 bytes"},
	{"trailing byte", spec_default, e_trailing, "1 bytes follow the index at offset"},
	{"sprs odd count", spec_sparse, e_sprs_odd, "\"sizes\" holds 5 entries (\"sprs\" needs an even number"},
	{"sprs too many", spec_sparse, e_sprs_many, "\"sizes\" holds 10 entries (\"sprs\" needs"},
	{"sprs count 2^63", spec_sparse, e_sprs_count_huge, "\"sizes\" holds 9223372036854775808 entries"},
	{"sprs list out of range", spec_sparse, e_sprs_list, "\"sizes\" names list 4 (must be below nlist = 4)"},
	{"sprs order", spec_sparse, e_sprs_order, "\"sizes\" names list 0 after list 0"},
	{"sprs duplicate", spec_sparse, e_sprs_dup, "\"sizes\" names list 2 after list 2"},
	{"valid (sprs, other sizes)", spec_sparse, e_sprs_moved, NULL},
	{"flat metric vs fourcc", spec_flat, e_flat_metric,
	"\"metric_type\" is 0 (inner product) but the type \"IxF2\" is L2"},
	{"flat ntotal 0", spec_flat, e_flat_ntotal0, "\"ntotal\" is 0 (a flat index's vectors are the centroids: must be 1..32768)"},
	{"flat ntotal 32769", spec_flat, e_flat_ntotal_big, "\"ntotal\" is 32769"},
	{"flat codes", spec_flat, e_flat_count, "\"codes\" holds 13 floats (must be ntotal * d = 12)"},
	{"flat trailing", spec_flat, e_flat_trailing, "3 bytes follow the index at offset 93"},
	{"flat d 0", spec_flat, e_flat_d, "\"d\" is 0 (must be 1..16000)"},
};

static void
test_reader_cases(void)
{
	size_t		i;

	group_begin("reader: one field wrong at a time (%zu files)", sizeof(cases) / sizeof(cases[0]));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const Case *c = &cases[i];
		Spec		s;
		Buf			b;
		Allocs		a;
		ReadResult	res;

		c->base(&s);
		c->edit(&s);
		build(&s, &b);
		read_bytes(b.p, b.len, &a, &res);
		if (c->want == NULL)
			check(res.rc == 0 && res.info.offset == b.len,
				  "%s: refused: %s", c->name, res.err);
		else
			check(res.rc != 0 && strncmp(res.err, "invalid Faiss file: ", 20) == 0 &&
				  strstr(res.err, c->want) != NULL,
				  "%s: got \"%s\", wanted \"%s\"", c->name,
				  res.rc == 0 ? "(accepted)" : res.err, c->want);
		check(res.bounded, "%s: an allocation exceeds the file", c->name);
		allocs_free(&a);
		buf_free(&b);
	}
	group_end();

	/* what the valid ones hold */
	group_begin("reader: what the valid files hold");
	{
		Spec		s;
		Buf			b;
		Allocs		a;
		ReadResult	res;
		int			k;

		for (k = 0; k < 3; k++)
		{
			if (k == 0)
				spec_default(&s);
			else if (k == 1)
				spec_sparse(&s);
			else
				spec_flat(&s);
			build(&s, &b);
			read_bytes(b.p, b.len, &a, &res);
			if (check(res.rc == 0, "%d: %s", k, res.err))
			{
				int			same = 1;
				int			i;

				check(res.info.kind == (k == 2 ? IVF_FAISS_KIND_FLAT : IVF_FAISS_KIND_IVF) &&
					  res.info.d == 3 && res.info.nlist == 4 &&
					  res.info.metric == IVF_FAISS_METRIC_L2 &&
					  res.info.ntotal == (k == 2 ? 0 : 6), "%d: header", k);
				for (i = 0; i < 12; i++)
					same &= same_float(res.info.centroids[i], centroid_value(i / 3, i % 3), 0);
				check(same, "%d: centroids", k);
				if (k < 2)
					check(res.info.list_sizes != NULL &&
						  res.info.list_sizes[0] == 2 && res.info.list_sizes[1] == 0 &&
						  res.info.list_sizes[2] == 1 && res.info.list_sizes[3] == 3,
						  "%d: list sizes", k);
				else
					check(res.info.list_sizes == NULL, "flat: list sizes");
			}
			allocs_free(&a);
			buf_free(&b);
		}

		/* without want_sizes: no sizes, one allocation */
		spec_sparse(&s);
		build(&s, &b);
		{
			IvfFaissMemory m;
			IvfFaissSource src;
			IvfFaissInfo info;
			char		err[IVF_FAISS_ERRLEN];

			memset(&a, 0, sizeof(a));
			ivf_faiss_memory_source(&m, b.p, b.len, &src);
			check(ivf_faiss_read(&src, test_alloc, &a, 0, &info, err, sizeof(err)) == 0 &&
				  info.list_sizes == NULL && a.n == 1,
				  "without sizes: %d allocations", a.n);
			allocs_free(&a);
		}
		buf_free(&b);
	}
	group_end();
}

/* ---------------------------------------------------------------------
 * Reader: truncation, failing callbacks, allocation failure
 * ---------------------------------------------------------------------
 */
static void
truncations(const char *what, const Spec *s)
{
	Buf			b;
	size_t		len;
	size_t		bad = 0;

	build(s, &b);
	for (len = 0; len < b.len; len++)
	{
		Allocs		a;
		ReadResult	res;
		unsigned char *copy = xmalloc(len);

		/* a copy of exactly len bytes, so ASan sees any read past it */
		memcpy(copy, b.p, len);
		read_bytes(copy, len, &a, &res);
		if (!check(res.rc != 0 && res.bounded && res.info.offset <= len &&
				   strncmp(res.err, "invalid Faiss file: ", 20) == 0 &&
				   (strstr(res.err, "truncated in") != NULL ||
					strstr(res.err, "more than the") != NULL),
				   "%s cut to %zu of %zu bytes: rc %d, \"%s\"", what, len,
				   b.len, res.rc, res.err))
			bad++;
		allocs_free(&a);
		free(copy);
	}
	check(bad == 0, "%s: %zu truncations accepted or misreported", what, bad);
	buf_free(&b);
}

typedef struct FailSource
{
	IvfFaissMemory m;
	uint64_t	fail_at;		/* a read or skip reaching past this fails */
} FailSource;

static int
fail_read(void *arg, void *buf, size_t n)
{
	FailSource *f = arg;

	if (f->m.pos + n > f->fail_at)
		return -1;
	memcpy(buf, f->m.data + f->m.pos, n);
	f->m.pos += n;
	return 0;
}

static int
fail_skip(void *arg, uint64_t n)
{
	FailSource *f = arg;

	if (f->m.pos + n > f->fail_at)
		return -1;
	f->m.pos += n;
	return 0;
}

static void
test_reader_truncation(void)
{
	Spec		s;

	group_begin("reader: every truncation refused");
	spec_default(&s);
	truncations("full", &s);
	spec_sparse(&s);
	truncations("sprs", &s);
	spec_flat(&s);
	truncations("flat", &s);
	spec_default(&s);
	e_dm2_ok(&s);
	truncations("hashtable direct map", &s);
	spec_default(&s);
	e_dm1_ok(&s);
	truncations("array direct map", &s);
	group_end();

	group_begin("reader: failing reads, skips and allocations");
	{
		Buf			b;
		uint64_t	at;

		spec_default(&s);
		e_dm1_ok(&s);
		build(&s, &b);
		for (at = 0; at < b.len; at++)
		{
			FailSource f;
			IvfFaissSource src;
			IvfFaissInfo info;
			Allocs		a;
			char		err[IVF_FAISS_ERRLEN];
			int			rc;

			memset(&a, 0, sizeof(a));
			ivf_faiss_memory_source(&f.m, b.p, b.len, &src);
			f.fail_at = at;
			src.read = fail_read;
			src.skip = fail_skip;
			src.arg = &f;
			rc = ivf_faiss_read(&src, test_alloc, &a, 1, &info, err, sizeof(err));
			check(rc != 0 && (strstr(err, "could not read") != NULL ||
							  strstr(err, "could not skip") != NULL),
				  "source failing at %" PRIu64 ": rc %d, \"%s\"", at, rc, err);
			allocs_free(&a);
		}
		{
			Allocs		a;
			IvfFaissMemory m;
			IvfFaissSource src;
			IvfFaissInfo info;
			char		err[IVF_FAISS_ERRLEN];

			memset(&a, 0, sizeof(a));
			a.fail = 1;
			ivf_faiss_memory_source(&m, b.p, b.len, &src);
			check(ivf_faiss_read(&src, test_alloc, &a, 1, &info, err, sizeof(err)) != 0 &&
				  strstr(err, "out of memory for 48 bytes of centroids") != NULL,
				  "failing allocation: \"%s\"", err);
		}
		{
			/* a tiny buffer still gets a terminated message */
			IvfFaissMemory m;
			IvfFaissSource src;
			IvfFaissInfo info;
			Allocs		a;
			char		err[8];

			memset(&a, 0, sizeof(a));
			ivf_faiss_memory_source(&m, "junk", 4, &src);
			check(ivf_faiss_read(&src, test_alloc, &a, 1, &info, err, sizeof(err)) != 0 &&
				  strlen(err) == 7, "short error buffer: \"%s\"", err);
			check(ivf_faiss_read(&src, test_alloc, &a, 1, &info, NULL, 0) != 0,
				  "no error buffer");
		}
		buf_free(&b);
	}
	group_end();
}

/* ---------------------------------------------------------------------
 * The seed corpus
 * ---------------------------------------------------------------------
 */
static unsigned char *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	unsigned char *p;
	long		n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = xmalloc((size_t) n);
	if (fread(p, 1, (size_t) n, f) != (size_t) n)
	{
		fclose(f);
		free(p);
		return NULL;
	}
	fclose(f);
	*len = (size_t) n;
	return p;
}

typedef struct Seed
{
	const char *file;
	int			kind;			/* 0: must be refused */
	uint32_t	d;
	int			metric;
	uint32_t	nlist;
	uint64_t	ntotal;
	uint64_t	sizes[8];
	const char *want;			/* refused: substring of the message */
} Seed;

static const Seed seeds[] = {
	/* written by Faiss (test/fuzz/make_faiss_seeds.py) */
	{"faiss-ivf-l2-full.faiss", IVF_FAISS_KIND_IVF, 4, IVF_FAISS_METRIC_L2, 3, 5, {2, 0, 3}, NULL},
	{"faiss-ivf-ip-sprs.faiss", IVF_FAISS_KIND_IVF, 3, IVF_FAISS_METRIC_IP, 6, 3, {0, 2, 0, 0, 1, 0}, NULL},
	{"faiss-ivf-empty.faiss", IVF_FAISS_KIND_IVF, 2, IVF_FAISS_METRIC_L2, 2, 0, {0, 0}, NULL},
	{"faiss-ivf-dmap-array.faiss", IVF_FAISS_KIND_IVF, 2, IVF_FAISS_METRIC_L2, 3, 3, {1, 1, 1}, NULL},
	{"faiss-ivf-dmap-hash.faiss", IVF_FAISS_KIND_IVF, 2, IVF_FAISS_METRIC_L2, 3, 3, {1, 1, 1}, NULL},
	{"faiss-flat-l2.faiss", IVF_FAISS_KIND_FLAT, 5, IVF_FAISS_METRIC_L2, 4, 0, {0}, NULL},
	{"faiss-flat-ip.faiss", IVF_FAISS_KIND_FLAT, 2, IVF_FAISS_METRIC_IP, 3, 0, {0}, NULL},
	{"bad-truncated.faiss", 0, 0, 0, 0, 0, {0}, "list 2 has size 3, more than the"},
	{"bad-nlist0.faiss", 0, 0, 0, 0, 0, {0}, "\"nlist\" is 0 (must be 1..32768)"},
	{"bad-legacy.faiss", 0, 0, 0, 0, 0, {0}, "\"IvFl\" is Faiss's pre-2018"},
	{"bad-trailing.faiss", 0, 0, 0, 0, 0, {0}, "1 bytes follow the index at offset 331"},
	{"bad-notfaiss.faiss", 0, 0, 0, 0, 0, {0}, "index type \"id\\x09v\" is not supported"},
	/* written by our writer (test_faissio --seeds) */
	{"ivf-l2.faiss", IVF_FAISS_KIND_IVF, 4, IVF_FAISS_METRIC_L2, 3, 5, {2, 0, 3}, NULL},
	{"ivf-ip.faiss", IVF_FAISS_KIND_IVF, 3, IVF_FAISS_METRIC_IP, 5, 4, {0, 1, 0, 3, 0}, NULL},
	{"ivf-empty.faiss", IVF_FAISS_KIND_IVF, 2, IVF_FAISS_METRIC_L2, 2, 0, {0, 0}, NULL},
	{"ivf-d1.faiss", IVF_FAISS_KIND_IVF, 1, IVF_FAISS_METRIC_IP, 1, 2, {2}, NULL},
};

static void
test_seeds(void)
{
	size_t		i;

	group_begin("seed corpus %s: Faiss's files read as made, ours accepted", CORPUS_DIR);
	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
	{
		const Seed *sd = &seeds[i];
		char		path[512];
		size_t		len = 0;
		unsigned char *p;
		Allocs		a;
		ReadResult	res;

		snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, sd->file);
		p = read_file(path, &len);
		if (!check(p != NULL, "cannot read %s (run from the repository root)", path))
			continue;
		read_bytes(p, len, &a, &res);
		if (sd->kind == 0)
			check(res.rc != 0 && strstr(res.err, sd->want) != NULL,
				  "%s: got \"%s\", wanted \"%s\"", sd->file, res.err, sd->want);
		else if (check(res.rc == 0, "%s: %s", sd->file, res.err))
		{
			int			same = 1;
			uint64_t	k;

			check(res.info.kind == sd->kind && res.info.d == sd->d &&
				  res.info.metric == sd->metric && res.info.nlist == sd->nlist &&
				  res.info.ntotal == sd->ntotal,
				  "%s: kind %d d %u metric %d nlist %u ntotal %" PRIu64, sd->file,
				  res.info.kind, res.info.d, res.info.metric, res.info.nlist,
				  res.info.ntotal);
			for (k = 0; k < (uint64_t) res.info.nlist * res.info.d; k++)
				same &= same_float(res.info.centroids[k],
								   centroid_value(k / res.info.d, k % res.info.d), 0);
			check(same, "%s: centroids", sd->file);
			if (sd->kind == IVF_FAISS_KIND_IVF)
				for (k = 0; k < sd->nlist; k++)
					check(res.info.list_sizes[k] == sd->sizes[k],
						  "%s: list %" PRIu64 " has %" PRIu64 " vectors, not %" PRIu64,
						  sd->file, k, res.info.list_sizes[k], sd->sizes[k]);
		}
		check(res.bounded, "%s: an allocation exceeds the file", sd->file);
		allocs_free(&a);
		free(p);
	}
	group_end();
}

/* the seeds of our writer (the ivf-* entries of 'seeds') */
static int
write_seed(const char *dir, const char *file, uint32_t d, int metric,
		   uint32_t nlist, const uint64_t *sizes)
{
	IvfFaissWriter w;
	Buf			out = {0};
	char		err[IVF_FAISS_ERRLEN];
	char		path[512];
	float	   *cent = xmalloc(sizeof(float) * nlist * d);
	uint64_t	ntotal = 0;
	uint64_t	i;
	uint32_t	l;
	int64_t		id = 1 << 16 | 1;	/* the TID (1,1) */
	FILE	   *f;

	for (i = 0; i < (uint64_t) nlist * d; i++)
		cent[i] = centroid_value(i / d, i % d);
	for (l = 0; l < nlist; l++)
		ntotal += sizes[l];
	if (ivf_faiss_write_begin(&w, d, metric, nlist, 1, ntotal, cent, sizes,
							  buf_write, &out, err, sizeof(err)) != 0)
		goto fail;
	for (l = 0; l < nlist; l++)
	{
		for (i = 0; i < sizes[l]; i++)
			if (ivf_faiss_write_vectors(&w, l, cent + (size_t) l * d, 1) != 0)
				goto fail;
		for (i = 0; i < sizes[l]; i++, id++)
			if (ivf_faiss_write_ids(&w, l, &id, 1) != 0)
				goto fail;
	}
	if (ivf_faiss_write_end(&w) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(out.p, 1, out.len, f) != out.len || fclose(f) != 0)
	{
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("wrote %s (%zu bytes)\n", path, out.len);
	buf_free(&out);
	free(cent);
	return 0;
fail:
	fprintf(stderr, "%s: %s\n", file, err);
	return 1;
}

static int
write_seeds(const char *dir)
{
	static const uint64_t l2[] = {2, 0, 3};
	static const uint64_t ip[] = {0, 1, 0, 3, 0};
	static const uint64_t empty[] = {0, 0};
	static const uint64_t one[] = {2};

	return write_seed(dir, "ivf-l2.faiss", 4, IVF_FAISS_METRIC_L2, 3, l2) |
		write_seed(dir, "ivf-ip.faiss", 3, IVF_FAISS_METRIC_IP, 5, ip) |
		write_seed(dir, "ivf-empty.faiss", 2, IVF_FAISS_METRIC_L2, 2, empty) |
		write_seed(dir, "ivf-d1.faiss", 1, IVF_FAISS_METRIC_IP, 1, one);
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "--seeds") == 0)
		return write_seeds(argv[2]);
	if (argc != 1)
	{
		fprintf(stderr, "usage: %s [--seeds DIR]\n", argv[0]);
		return 2;
	}
	rng_seed(20240611);
	test_round_trip();
	test_writer_misuse();
	test_reader_cases();
	test_reader_truncation();
	test_seeds();
	return check_summary();
}
