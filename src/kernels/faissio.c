/*-------------------------------------------------------------------------
 *
 * faissio.c
 *	  Faiss IndexIVFFlat files: a streaming writer and a reader that trusts
 *	  nothing (the format is described in faissio.h).
 *
 * The reader checks every field before using it: fourccs, d, metric,
 * nlist, is_trained, the quantizer against the index header, the direct
 * map, the inverted lists' header, their sizes against the bytes left in
 * the input (every product computed with an overflow check), that the
 * sizes add up to ntotal and that nothing follows.  A count is compared
 * with what remains of the input before anything is allocated or read for
 * it, so an allocation is never larger than the input (the list sizes
 * aside, which are bounded by IVF_FAISS_MAX_LISTS).
 *
 * Faiss writes native byte order, in practice little-endian; this file
 * reads and writes little-endian on any host.
 *
 *-------------------------------------------------------------------------
 */
#include "faissio.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FOURCC(s) \
	((uint32_t) (unsigned char) (s)[0] | \
	 (uint32_t) (unsigned char) (s)[1] << 8 | \
	 (uint32_t) (unsigned char) (s)[2] << 16 | \
	 (uint32_t) (unsigned char) (s)[3] << 24)

/* Faiss writes these two idx_t "dummy" fields as 1 << 20 (and ignores them) */
#define FAISS_DUMMY			((int64_t) 1 << 20)

/* the direct map types of Faiss's DirectMap */
#define DM_NONE				0
#define DM_ARRAY			1
#define DM_HASHTABLE		2

/* printf-style checks of the messages' formats */
#if defined(__GNUC__) || defined(__clang__)
#define FAISSIO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FAISSIO_PRINTF(f, a)
#endif

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
	__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FAISSIO_BIG_ENDIAN 1
#endif

/* ------------------------------------------------------------ byte order */

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
	p[2] = (unsigned char) (v >> 16);
	p[3] = (unsigned char) (v >> 24);
}

static void
put_u64(unsigned char *p, uint64_t v)
{
	put_u32(p, (uint32_t) v);
	put_u32(p + 4, (uint32_t) (v >> 32));
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 |
		(uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t
get_u64(const unsigned char *p)
{
	return (uint64_t) get_u32(p) | (uint64_t) get_u32(p + 4) << 32;
}

/* a * b, or nonzero when it does not fit 64 bits */
static int
mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
	if (b != 0 && a > UINT64_MAX / b)
		return 1;
	*out = a * b;
	return 0;
}

/* a fourcc as text for a message: printable ASCII as is, else \xNN */
static const char *
fourcc_text(uint32_t h, char *buf)
{
	char	   *p = buf;
	int			i;

	for (i = 0; i < 4; i++)
	{
		unsigned char c = (unsigned char) (h >> (8 * i));

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			*p++ = (char) c;
		else
			p += sprintf(p, "\\x%02X", c);
	}
	*p = '\0';
	return buf;
}

static const char *
metric_text(int64_t metric)
{
	return metric == IVF_FAISS_METRIC_L2 ? "L2" :
		metric == IVF_FAISS_METRIC_IP ? "inner product" : "unsupported";
}

/* ---------------------------------------------------------------- writer */

static int	wfail(IvfFaissWriter *w, const char *fmt,...) FAISSIO_PRINTF(2, 3);

static int
wfail(IvfFaissWriter *w, const char *fmt,...)
{
	va_list		ap;

	w->failed = 1;
	if (w->errbuf != NULL && w->errlen > 0)
	{
		va_start(ap, fmt);
		vsnprintf(w->errbuf, w->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
wbytes(IvfFaissWriter *w, const void *buf, size_t n)
{
	if (n > 0 && w->write(w->arg, buf, n) != 0)
		return wfail(w, "could not write %zu bytes of the Faiss file", n);
	return 0;
}

/*
 * count items of 4 or 8 bytes, in little-endian order: straight from the
 * caller's memory on a little-endian host, through a buffer otherwise
 */
static int
witems(IvfFaissWriter *w, const void *src, size_t count, size_t width)
{
#ifdef FAISSIO_BIG_ENDIAN
	unsigned char buf[4096];
	const unsigned char *s = src;

	while (count > 0)
	{
		size_t		n = count < sizeof(buf) / width ? count : sizeof(buf) / width;
		size_t		i;

		for (i = 0; i < n * width; i += width)
		{
			size_t		b;

			for (b = 0; b < width; b++)
				buf[i + b] = s[i + width - 1 - b];
		}
		if (wbytes(w, buf, n * width) != 0)
			return -1;
		s += n * width;
		count -= n;
	}
	return 0;
#else
	return wbytes(w, src, count * width);
#endif
}

/* the part of an index header shared by the IVF index and its quantizer */
static unsigned char *
put_index_header(unsigned char *p, uint32_t d, uint64_t ntotal, int metric)
{
	put_u32(p, d);
	put_u64(p + 4, ntotal);
	put_u64(p + 12, (uint64_t) FAISS_DUMMY);
	put_u64(p + 20, (uint64_t) FAISS_DUMMY);
	p[28] = 1;					/* is_trained */
	put_u32(p + 29, (uint32_t) metric);
	return p + 33;
}

/* the first list at or after 'from' with vectors, or nlist */
static uint32_t
next_list(const IvfFaissWriter *w, uint32_t from)
{
	while (from < w->nlist && w->sizes[from] == 0)
		from++;
	return from;
}

int
ivf_faiss_write_begin(IvfFaissWriter *w, uint32_t d, int metric,
					  uint32_t nlist, uint64_t nprobe, uint64_t ntotal,
					  const float *centroids, const uint64_t *sizes,
					  IvfFaissWriteFn write, void *arg,
					  char *errbuf, size_t errlen)
{
	unsigned char buf[128];
	unsigned char *p;
	uint64_t	sum = 0;
	uint64_t	nfloats;
	uint32_t	l;

	memset(w, 0, sizeof(*w));
	w->write = write;
	w->arg = arg;
	w->d = d;
	w->nlist = nlist;
	w->sizes = sizes;
	w->errbuf = errbuf;
	w->errlen = errlen;

	if (d < 1 || d > IVF_FAISS_MAX_DIM)
		return wfail(w, "d %" PRIu32 " is out of range 1..%d", d, IVF_FAISS_MAX_DIM);
	if (nlist < 1 || nlist > IVF_FAISS_MAX_LISTS)
		return wfail(w, "nlist %" PRIu32 " is out of range 1..%d", nlist,
					 IVF_FAISS_MAX_LISTS);
	if (metric != IVF_FAISS_METRIC_L2 && metric != IVF_FAISS_METRIC_IP)
		return wfail(w, "metric %d is neither L2 (1) nor inner product (0)", metric);
	for (l = 0; l < nlist; l++)
	{
		if (sizes[l] > INT64_MAX - sum)
			return wfail(w, "the list sizes add up to more than 2^63");
		sum += sizes[l];
	}
	if (sum != ntotal)
		return wfail(w, "the list sizes add up to %" PRIu64 ", not ntotal %" PRIu64,
					 sum, ntotal);
	nfloats = (uint64_t) nlist * d;
	for (l = 0; l < nfloats; l++)
		if (!isfinite(centroids[l]))
			return wfail(w, "centroid %" PRIu32 " has a non-finite value", l / d);

	/* the IVF header, then the quantizer: a flat index of the centroids */
	p = buf;
	put_u32(p, FOURCC("IwFl"));
	p = put_index_header(p + 4, d, ntotal, metric);
	put_u64(p, nlist);
	put_u64(p + 8, nprobe);
	p += 16;
	put_u32(p, FOURCC(metric == IVF_FAISS_METRIC_L2 ? "IxF2" : "IxFI"));
	p = put_index_header(p + 4, d, nlist, metric);
	put_u64(p, nfloats);		/* its codes, counted in floats */
	p += 8;
	if (wbytes(w, buf, p - buf) != 0 ||
		witems(w, centroids, nfloats, sizeof(float)) != 0)
		return -1;

	/* no direct map; the inverted lists' header and every list's size */
	p = buf;
	*p++ = DM_NONE;
	put_u64(p, 0);
	p += 8;
	put_u32(p, FOURCC("ilar"));
	put_u64(p + 4, nlist);
	put_u64(p + 12, (uint64_t) d * sizeof(float));
	put_u32(p + 20, FOURCC("full"));
	put_u64(p + 24, nlist);
	p += 32;
	if (wbytes(w, buf, p - buf) != 0 ||
		witems(w, sizes, nlist, sizeof(uint64_t)) != 0)
		return -1;

	w->list = next_list(w, 0);
	return 0;
}

/* the common checks of a piece of list 'list' (n > 0) */
static int
check_piece(IvfFaissWriter *w, uint32_t list, const char *what)
{
	if (w->failed)
		return -1;
	if (w->list >= w->nlist)
		return wfail(w, "%s for list %" PRIu32 " after the last list", what, list);
	if (list != w->list)
		return wfail(w, "%s for list %" PRIu32 " while list %" PRIu32 " is being written",
					 what, list, w->list);
	return 0;
}

int
ivf_faiss_write_vectors(IvfFaissWriter *w, uint32_t list, const float *x,
						size_t n)
{
	uint64_t	size;

	if (n == 0)
		return w->failed ? -1 : 0;
	if (check_piece(w, list, "vectors") != 0)
		return -1;
	size = w->sizes[list];
	if (w->ids_done > 0)
		return wfail(w, "vectors for list %" PRIu32 " after its ids", list);
	if (n > size - w->vecs_done)
		return wfail(w, "list %" PRIu32 " gets more than the %" PRIu64 " vectors announced",
					 list, size);
	if (witems(w, x, n * w->d, sizeof(float)) != 0)
		return -1;
	w->vecs_done += n;
	return 0;
}

int
ivf_faiss_write_ids(IvfFaissWriter *w, uint32_t list, const int64_t *ids,
					size_t n)
{
	uint64_t	size;

	if (n == 0)
		return w->failed ? -1 : 0;
	if (check_piece(w, list, "ids") != 0)
		return -1;
	size = w->sizes[list];
	if (w->vecs_done != size)
		return wfail(w, "ids for list %" PRIu32 " after %" PRIu64 " of its %" PRIu64 " vectors",
					 list, w->vecs_done, size);
	if (n > size - w->ids_done)
		return wfail(w, "list %" PRIu32 " gets more than the %" PRIu64 " ids announced",
					 list, size);
	if (witems(w, ids, n, sizeof(int64_t)) != 0)
		return -1;
	w->ids_done += n;
	if (w->ids_done == size)
	{
		w->list = next_list(w, list + 1);
		w->vecs_done = w->ids_done = 0;
	}
	return 0;
}

int
ivf_faiss_write_end(IvfFaissWriter *w)
{
	if (w->failed)
		return -1;
	if (w->list < w->nlist)
		return wfail(w, "list %" PRIu32 " is incomplete: %" PRIu64 " vectors and %" PRIu64
					 " ids of %" PRIu64 " written",
					 w->list, w->vecs_done, w->ids_done, w->sizes[w->list]);
	return 0;
}

/* ---------------------------------------------------------------- reader */

typedef struct Reader
{
	const IvfFaissSource *src;
	uint64_t	pos;
	char	   *errbuf;
	size_t		errlen;
} Reader;

/* the common fields of an index header */
typedef struct Header
{
	int64_t		d;
	int64_t		ntotal;
	int64_t		is_trained;
	int64_t		metric;
} Header;

static int	rfail(Reader *r, const char *fmt,...) FAISSIO_PRINTF(2, 3);

static int
rfail(Reader *r, const char *fmt,...)
{
	va_list		ap;
	int			n;

	if (r->errbuf == NULL || r->errlen == 0)
		return -1;
	n = snprintf(r->errbuf, r->errlen, "invalid Faiss file: ");
	if (n >= 0 && (size_t) n < r->errlen)
	{
		va_start(ap, fmt);
		vsnprintf(r->errbuf + n, r->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static uint64_t
remaining(const Reader *r)
{
	return r->src->length - r->pos;
}

/* n bytes of 'field' must fit in what is left */
static int
need(Reader *r, uint64_t n, const char *field)
{
	if (n > remaining(r))
		return rfail(r, "truncated in \"%s\" (%" PRIu64 " bytes needed at offset %" PRIu64
					 ", %" PRIu64 " left)", field, n, r->pos, remaining(r));
	return 0;
}

static int
rbytes(Reader *r, void *buf, size_t n, const char *field)
{
	if (need(r, n, field) != 0)
		return -1;
	if (n > 0 && r->src->read(r->src->arg, buf, n) != 0)
		return rfail(r, "could not read \"%s\" (%zu bytes at offset %" PRIu64 ")",
					 field, n, r->pos);
	r->pos += n;
	return 0;
}

static int
rskip(Reader *r, uint64_t n, const char *field)
{
	if (need(r, n, field) != 0)
		return -1;
	if (n > 0 && r->src->skip(r->src->arg, n) != 0)
		return rfail(r, "could not skip \"%s\" (%" PRIu64 " bytes at offset %" PRIu64 ")",
					 field, n, r->pos);
	r->pos += n;
	return 0;
}

static int
read_u8(Reader *r, uint8_t *v, const char *field)
{
	return rbytes(r, v, 1, field);
}

static int
read_u32(Reader *r, uint32_t *v, const char *field)
{
	unsigned char b[4];

	if (rbytes(r, b, 4, field) != 0)
		return -1;
	*v = get_u32(b);
	return 0;
}

static int
read_u64(Reader *r, uint64_t *v, const char *field)
{
	unsigned char b[8];

	if (rbytes(r, b, 8, field) != 0)
		return -1;
	*v = get_u64(b);
	return 0;
}

/*
 * An index header (after its fourcc); 'who' prefixes the field names in
 * messages ("" or "quantizer ").  Checks is_trained and the metric; d and
 * ntotal are left to the caller, who knows what they must be.
 */
static int
read_header(Reader *r, Header *h, const char *who)
{
	uint32_t	d32;
	uint64_t	ntotal;
	uint64_t	dummy;
	uint8_t		trained;
	uint32_t	metric;
	char		field[32];

	snprintf(field, sizeof(field), "%sd", who);
	if (read_u32(r, &d32, field) != 0)
		return -1;
	snprintf(field, sizeof(field), "%sntotal", who);
	if (read_u64(r, &ntotal, field) != 0)
		return -1;
	/* two idx_t Faiss no longer uses (written as 1 << 20, never read) */
	snprintf(field, sizeof(field), "%sheader", who);
	if (read_u64(r, &dummy, field) != 0 || read_u64(r, &dummy, field) != 0)
		return -1;
	snprintf(field, sizeof(field), "%sis_trained", who);
	if (read_u8(r, &trained, field) != 0)
		return -1;
	if (trained != 1)
		return rfail(r, "\"%s\" is %u (must be 1: %s)", field, trained,
					 trained == 0 ? "the index is not trained" : "a bool");
	snprintf(field, sizeof(field), "%smetric_type", who);
	if (read_u32(r, &metric, field) != 0)
		return -1;
	if (metric != IVF_FAISS_METRIC_L2 && metric != IVF_FAISS_METRIC_IP)
		return rfail(r, "\"%s\" is %" PRId32 " (must be 0, inner product, or 1, L2)",
					 field, (int32_t) metric);
	h->d = (int32_t) d32;
	h->ntotal = (int64_t) ntotal;
	h->is_trained = trained;
	h->metric = metric;
	return 0;
}

static int
check_d(Reader *r, int64_t d)
{
	if (d < 1 || d > IVF_FAISS_MAX_DIM)
		return rfail(r, "\"d\" is %" PRId64 " (must be 1..%d)", d, IVF_FAISS_MAX_DIM);
	return 0;
}

/*
 * A flat index's codes, which are its vectors: uint64 count of floats,
 * which must be nvec * d, then the floats, read into a fresh allocation
 * once they are known to be in the file.  'who' names it in messages.
 */
static int
read_flat_codes(Reader *r, uint32_t nvec, uint32_t d, const char *who,
				IvfFaissAllocFn alloc, void *alloc_arg, float **out)
{
	uint64_t	count;
	uint64_t	expect = (uint64_t) nvec * d;	/* < 2^30: no overflow */
	size_t		bytes;
	float	   *c;
	char		field[32];
	uint64_t	i;

	snprintf(field, sizeof(field), "%scodes", who);
	if (read_u64(r, &count, field) != 0)
		return -1;
	if (count != expect)
		return rfail(r, "\"%s\" holds %" PRIu64 " floats (must be %s * d = %" PRIu64 ")",
					 field, count, *who ? "nlist" : "ntotal", expect);
	bytes = (size_t) (expect * sizeof(float));
	if (need(r, bytes, field) != 0)
		return -1;
	c = alloc(alloc_arg, bytes);
	if (c == NULL)
		return rfail(r, "out of memory for %zu bytes of centroids", bytes);
	if (rbytes(r, c, bytes, field) != 0)
		return -1;
#ifdef FAISSIO_BIG_ENDIAN
	for (i = 0; i < expect; i++)
	{
		uint32_t	v = get_u32((unsigned char *) &c[i]);

		memcpy(&c[i], &v, 4);
	}
#endif
	/* ivf's vectors are finite, and so must centroids be */
	for (i = 0; i < expect; i++)
		if (!isfinite(c[i]))
			return rfail(r, "centroid %" PRIu64 " has a non-finite value in dimension %" PRIu64,
						 i / d, i % d);
	*out = c;
	return 0;
}

/* a bare flat index ("IxF2", "IxFI") whose vectors are the centroids */
static int
read_flat(Reader *r, uint32_t h, IvfFaissAllocFn alloc, void *alloc_arg,
		  IvfFaissInfo *info)
{
	Header		hd;
	int64_t		fourcc_metric = h == FOURCC("IxF2") ? IVF_FAISS_METRIC_L2 : IVF_FAISS_METRIC_IP;
	char		buf[20];

	if (read_header(r, &hd, "") != 0 || check_d(r, hd.d) != 0)
		return -1;
	if (hd.metric != fourcc_metric)
		return rfail(r, "\"metric_type\" is %" PRId64 " (%s) but the type \"%s\" is %s",
					 hd.metric, metric_text(hd.metric), fourcc_text(h, buf),
					 metric_text(fourcc_metric));
	if (hd.ntotal < 1 || hd.ntotal > IVF_FAISS_MAX_LISTS)
		return rfail(r, "\"ntotal\" is %" PRId64 " (a flat index's vectors are the centroids: must be 1..%d)",
					 hd.ntotal, IVF_FAISS_MAX_LISTS);
	info->kind = IVF_FAISS_KIND_FLAT;
	info->d = (uint32_t) hd.d;
	info->metric = (int) hd.metric;
	info->nlist = (uint32_t) hd.ntotal;
	return read_flat_codes(r, info->nlist, info->d, "", alloc, alloc_arg,
						   &info->centroids);
}

/* the direct map: none, an array of ntotal ids, or a hashtable */
static int
read_direct_map(Reader *r, uint64_t ntotal)
{
	uint8_t		type;
	uint64_t	n;
	uint64_t	bytes;

	if (read_u8(r, &type, "direct_map type") != 0)
		return -1;
	if (type != DM_NONE && type != DM_ARRAY && type != DM_HASHTABLE)
		return rfail(r, "\"direct_map type\" is %u (must be 0, 1 or 2)", type);
	if (read_u64(r, &n, "direct_map size") != 0)
		return -1;
	if (type == DM_ARRAY ? n != ntotal : n != 0)
		return rfail(r, "\"direct_map size\" is %" PRIu64 " (must be %" PRIu64 " for type %u)",
					 n, type == DM_ARRAY ? ntotal : 0, type);
	if (mul_overflows(n, sizeof(int64_t), &bytes))
		return rfail(r, "\"direct_map size\" %" PRIu64 " overflows", n);
	if (rskip(r, bytes, "direct_map") != 0)
		return -1;
	if (type == DM_HASHTABLE)
	{
		/* (id, list << 32 | offset) pairs, one per vector at most */
		if (read_u64(r, &n, "direct_map hashtable size") != 0)
			return -1;
		if (n > ntotal)
			return rfail(r, "\"direct_map hashtable size\" is %" PRIu64 " (must be at most ntotal = %" PRIu64 ")",
						 n, ntotal);
		if (mul_overflows(n, 2 * sizeof(int64_t), &bytes))
			return rfail(r, "\"direct_map hashtable size\" %" PRIu64 " overflows", n);
		if (rskip(r, bytes, "direct_map hashtable") != 0)
			return -1;
	}
	return 0;
}

/*
 * One list's size: its bytes (size vectors of code_size, size ids) must fit
 * in 'room' together with those of the lists before it ('*bytes').
 */
static int
add_list(Reader *r, uint32_t list, uint64_t size, uint64_t code_size,
		 uint64_t room, uint64_t *bytes, uint64_t *total)
{
	uint64_t	b;

	if (mul_overflows(size, code_size + sizeof(int64_t), &b) ||
		b > room - *bytes)
		return rfail(r, "list %" PRIu32 " has size %" PRIu64 ", more than the %" PRIu64
					 " bytes left in the file hold", list, size, room - *bytes);
	*bytes += b;
	*total += size;
	return 0;
}

/* "ilar": the inverted lists' header, sizes, then skip their data */
static int
read_invlists(Reader *r, IvfFaissInfo *info, uint64_t ntotal,
			  IvfFaissAllocFn alloc, void *alloc_arg, int want_sizes)
{
	uint32_t	h;
	uint64_t	nlist;
	uint64_t	code_size;
	uint32_t	list_type;
	uint64_t	count;
	uint64_t	room;
	uint64_t	bytes = 0;
	uint64_t	total = 0;
	uint64_t   *sizes = NULL;
	char		buf[20];

	if (read_u32(r, &h, "invlists") != 0)
		return -1;
	if (h != FOURCC("ilar"))
		return rfail(r, "\"invlists\" has type \"%s\" (only \"ilar\", lists stored in the file, is supported)",
					 fourcc_text(h, buf));
	if (read_u64(r, &nlist, "invlists nlist") != 0)
		return -1;
	if (nlist != info->nlist)
		return rfail(r, "\"invlists nlist\" is %" PRIu64 " but \"nlist\" is %" PRIu32,
					 nlist, info->nlist);
	if (read_u64(r, &code_size, "code_size") != 0)
		return -1;
	if (code_size != (uint64_t) info->d * sizeof(float))
		return rfail(r, "\"code_size\" is %" PRIu64 " (must be d * 4 = %" PRIu64 ")",
					 code_size, (uint64_t) info->d * sizeof(float));
	if (read_u32(r, &list_type, "list_type") != 0)
		return -1;
	if (list_type != FOURCC("full") && list_type != FOURCC("sprs"))
		return rfail(r, "\"list_type\" is \"%s\" (must be \"full\" or \"sprs\")",
					 fourcc_text(list_type, buf));
	if (read_u64(r, &count, "sizes") != 0)
		return -1;
	if (list_type == FOURCC("full") && count != nlist)
		return rfail(r, "\"sizes\" holds %" PRIu64 " entries (must be nlist = %" PRIu64 ")",
					 count, nlist);
	if (list_type == FOURCC("sprs") && (count % 2 != 0 || count > 2 * nlist))
		return rfail(r, "\"sizes\" holds %" PRIu64 " entries (\"sprs\" needs an even number, at most 2 * nlist = %" PRIu64 ")",
					 count, 2 * nlist);
	/* count <= 2 * 32768: no overflow */
	if (need(r, count * sizeof(uint64_t), "sizes") != 0)
		return -1;
	room = remaining(r) - count * sizeof(uint64_t);

	if (want_sizes)
	{
		sizes = alloc(alloc_arg, sizeof(uint64_t) * info->nlist);
		if (sizes == NULL)
			return rfail(r, "out of memory for %u list sizes", info->nlist);
		memset(sizes, 0, sizeof(uint64_t) * info->nlist);
	}
	if (list_type == FOURCC("full"))
	{
		uint32_t	l;

		for (l = 0; l < info->nlist; l++)
		{
			uint64_t	size;

			if (read_u64(r, &size, "sizes") != 0 ||
				add_list(r, l, size, code_size, room, &bytes, &total) != 0)
				return -1;
			if (sizes)
				sizes[l] = size;
		}
	}
	else
	{
		uint64_t	i;
		uint64_t	prev = 0;

		/* (list, size) of the non-empty lists, in increasing list order */
		for (i = 0; i < count / 2; i++)
		{
			uint64_t	list;
			uint64_t	size;

			if (read_u64(r, &list, "sizes") != 0 ||
				read_u64(r, &size, "sizes") != 0)
				return -1;
			if (list >= nlist)
				return rfail(r, "\"sizes\" names list %" PRIu64 " (must be below nlist = %" PRIu64 ")",
							 list, nlist);
			if (i > 0 && list <= prev)
				return rfail(r, "\"sizes\" names list %" PRIu64 " after list %" PRIu64 " (must increase)",
							 list, prev);
			prev = list;
			if (add_list(r, (uint32_t) list, size, code_size, room, &bytes, &total) != 0)
				return -1;
			if (sizes)
				sizes[list] = size;
		}
	}
	if (total != ntotal)
		return rfail(r, "the list sizes add up to %" PRIu64 " but \"ntotal\" is %" PRIu64,
					 total, ntotal);
	/* the vectors and ids themselves: not needed, and not read */
	if (rskip(r, bytes, "lists") != 0)
		return -1;
	info->list_sizes = sizes;
	return 0;
}

static int
read_ivf(Reader *r, IvfFaissAllocFn alloc, void *alloc_arg, int want_sizes,
		 IvfFaissInfo *info)
{
	Header		hd;
	Header		qh;
	uint64_t	nlist;
	uint32_t	qtype;
	int64_t		qmetric;
	char		buf[20];

	if (read_header(r, &hd, "") != 0 || check_d(r, hd.d) != 0)
		return -1;
	if (hd.ntotal < 0)
		return rfail(r, "\"ntotal\" is %" PRId64 " (must be 0 or more)", hd.ntotal);
	if (read_u64(r, &nlist, "nlist") != 0)
		return -1;
	if (nlist < 1 || nlist > IVF_FAISS_MAX_LISTS)
		return rfail(r, "\"nlist\" is %" PRIu64 " (must be 1..%d)", nlist,
					 IVF_FAISS_MAX_LISTS);
	/* Faiss clamps nprobe to nlist at search time: any value is valid */
	if (read_u64(r, &info->nprobe, "nprobe") != 0)
		return -1;
	info->kind = IVF_FAISS_KIND_IVF;
	info->d = (uint32_t) hd.d;
	info->metric = (int) hd.metric;
	info->nlist = (uint32_t) nlist;
	info->ntotal = (uint64_t) hd.ntotal;

	/* the quantizer: a flat index holding the centroids, same metric */
	if (read_u32(r, &qtype, "quantizer") != 0)
		return -1;
	if (qtype != FOURCC("IxF2") && qtype != FOURCC("IxFI"))
		return rfail(r, "\"quantizer\" has type \"%s\" (must be \"IxF2\" or \"IxFI\", a flat index)",
					 fourcc_text(qtype, buf));
	qmetric = qtype == FOURCC("IxF2") ? IVF_FAISS_METRIC_L2 : IVF_FAISS_METRIC_IP;
	if (read_header(r, &qh, "quantizer ") != 0)
		return -1;
	if (qh.d != hd.d)
		return rfail(r, "\"quantizer d\" is %" PRId64 " but \"d\" is %" PRId64, qh.d, hd.d);
	if (qh.ntotal != (int64_t) nlist)
		return rfail(r, "\"quantizer ntotal\" is %" PRId64 " but \"nlist\" is %" PRIu64,
					 qh.ntotal, nlist);
	if (qh.metric != qmetric)
		return rfail(r, "\"quantizer metric_type\" is %" PRId64 " (%s) but its type \"%s\" is %s",
					 qh.metric, metric_text(qh.metric), fourcc_text(qtype, buf),
					 metric_text(qmetric));

	/*
	 * The quantizer's metric decides which list a vector goes to; ivf
	 * assigns with the index's metric, so the two must agree.
	 */
	if (qh.metric != hd.metric)
		return rfail(r, "\"quantizer metric_type\" is %" PRId64 " (%s) but \"metric_type\" is %" PRId64 " (%s)",
					 qh.metric, metric_text(qh.metric), hd.metric,
					 metric_text(hd.metric));
	if (read_flat_codes(r, info->nlist, info->d, "quantizer ", alloc,
						alloc_arg, &info->centroids) != 0)
		return -1;

	if (read_direct_map(r, info->ntotal) != 0)
		return -1;
	return read_invlists(r, info, info->ntotal, alloc, alloc_arg, want_sizes);
}

int
ivf_faiss_read(const IvfFaissSource *src, IvfFaissAllocFn alloc,
			   void *alloc_arg, int want_sizes, IvfFaissInfo *info,
			   char *errbuf, size_t errlen)
{
	Reader		r;
	uint32_t	h;
	int			rc;
	char		buf[20];

	memset(info, 0, sizeof(*info));
	r.src = src;
	r.pos = 0;
	r.errbuf = errbuf;
	r.errlen = errlen;

	if (read_u32(&r, &h, "fourcc") != 0)
		rc = -1;
	else if (h == FOURCC("IwFl"))
		rc = read_ivf(&r, alloc, alloc_arg, want_sizes, info);
	else if (h == FOURCC("IxF2") || h == FOURCC("IxFI"))
		rc = read_flat(&r, h, alloc, alloc_arg, info);
	else if (h == FOURCC("IvFl") || h == FOURCC("IvFL"))
		rc = rfail(&r, "index type \"%s\" is Faiss's pre-2018 IndexIVFFlat format, which is not supported (write it again with a current Faiss)",
				   fourcc_text(h, buf));
	else
		rc = rfail(&r, "index type \"%s\" is not supported (must be \"IwFl\", an IndexIVFFlat, or \"IxF2\" / \"IxFI\", a flat index of centroids)",
				   fourcc_text(h, buf));
	if (rc == 0 && remaining(&r) != 0)
		rc = rfail(&r, "%" PRIu64 " bytes follow the index at offset %" PRIu64,
				   remaining(&r), r.pos);
	info->offset = r.pos;
	return rc;
}

/* ---------------------------------------------------------- memory source */

static int
memory_read(void *arg, void *buf, size_t n)
{
	IvfFaissMemory *m = arg;

	if (n > m->len - m->pos)
		return -1;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return 0;
}

static int
memory_skip(void *arg, uint64_t n)
{
	IvfFaissMemory *m = arg;

	if (n > m->len - m->pos)
		return -1;
	m->pos += (size_t) n;
	return 0;
}

void
ivf_faiss_memory_source(IvfFaissMemory *m, const void *data, size_t len,
						IvfFaissSource *src)
{
	m->data = data;
	m->len = len;
	m->pos = 0;
	src->read = memory_read;
	src->skip = memory_skip;
	src->arg = m;
	src->length = len;
}
