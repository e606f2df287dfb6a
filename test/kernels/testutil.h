/*-------------------------------------------------------------------------
 *
 * testutil.h
 *	  Helpers shared by the standalone kernel tests (test_*.c, no server):
 *	  check bookkeeping (one line per group of checks, a final
 *	  "N passed, M failed" and the exit status), a deterministic PRNG,
 *	  guarded buffers that end right before a PROT_NONE page, xmalloc,
 *	  bitwise float comparison and a TEXMEX .fvecs/.ivecs reader.
 *
 * Header-only: everything is static, so each test program gets its own
 * copy.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_TESTUTIL_H
#define IVF_TESTUTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------
 * Check bookkeeping
 * ---------------------------------------------------------------------
 */
static int	total_pass = 0;
static int	total_fail = 0;
static int	grp_pass = 0;
static int	grp_fail = 0;
static char grp_name[256];

static inline void
group_begin(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(grp_name, sizeof(grp_name), fmt, ap);
	va_end(ap);
	grp_pass = grp_fail = 0;
}

static inline void
group_end(void)
{
	if (grp_fail == 0)
		printf("ok    %-64s (%d checks)\n", grp_name, grp_pass);
	else
		printf("FAIL  %-64s (%d of %d checks failed)\n", grp_name,
			   grp_fail, grp_pass + grp_fail);
	fflush(stdout);
}

/* Count one check; print the first 8 failures of a group.  Returns cond. */
static inline int
check(int cond, const char *fmt,...)
{
	if (cond)
	{
		grp_pass++;
		total_pass++;
		return 1;
	}
	grp_fail++;
	total_fail++;
	if (grp_fail <= 8)
	{
		va_list		ap;

		printf("  [%s] ", grp_name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
	return 0;
}

/* Print "N passed, M failed"; returns the exit status (1 if any failed). */
static inline int
check_summary(void)
{
	printf("%d passed, %d failed\n", total_pass, total_fail);
	return total_fail == 0 ? 0 : 1;
}

static inline double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------------
 * Deterministic PRNG (splitmix64)
 * ---------------------------------------------------------------------
 */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static inline void
rng_seed(uint64_t s)
{
	rng_state = s;
}

static inline uint64_t
rng_next(void)
{
	uint64_t	z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* uniform in [lo, hi) */
static inline float
rng_float(float lo, float hi)
{
	return lo + (hi - lo) * (float) ((rng_next() >> 40) * (1.0 / 16777216.0));
}

/* integer in [lo, hi] */
static inline int
rng_int(int lo, int hi)
{
	return lo + (int) (rng_next() % (uint64_t) (hi - lo + 1));
}

static inline void
fill_float(float *v, size_t n, float lo, float hi)
{
	size_t		i;

	for (i = 0; i < n; i++)
		v[i] = rng_float(lo, hi);
}

static inline void
fill_int(float *v, size_t n, int lo, int hi)
{
	size_t		i;

	for (i = 0; i < n; i++)
		v[i] = (float) rng_int(lo, hi);
}

/* ---------------------------------------------------------------------
 * Allocation
 * ---------------------------------------------------------------------
 */
static inline void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
	{
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

/*
 * Guarded buffers: the data ends exactly where a PROT_NONE page begins (a
 * read or write past the end crashes the test), and its start is whatever
 * that leaves (often unaligned).  The data pages are first filled with the
 * byte poison: 0xFF is NaN as float and double, -1 as integers; 0x00 gives
 * the zeroed memory of a fresh mapping.
 */
typedef struct Guarded
{
	void	   *base;
	size_t		len;
	void	   *p;				/* the data: bytes bytes */
	size_t		bytes;
} Guarded;

static inline void
guarded_alloc(Guarded *g, size_t bytes, int poison)
{
	size_t		page = (size_t) sysconf(_SC_PAGESIZE);
	size_t		data_pages = (bytes + page - 1) / page;

	if (data_pages == 0)
		data_pages = 1;
	g->len = (data_pages + 1) * page;
	g->base = mmap(NULL, g->len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->base == MAP_FAILED)
	{
		perror("mmap");
		exit(2);
	}
	if (mprotect((char *) g->base + data_pages * page, page, PROT_NONE) != 0)
	{
		perror("mprotect");
		exit(2);
	}
	g->p = (char *) g->base + data_pages * page - bytes;
	g->bytes = bytes;
	memset(g->base, poison, data_pages * page);
}

static inline void
guarded_free(Guarded *g)
{
	munmap(g->base, g->len);
}

/* ---------------------------------------------------------------------
 * Comparison
 * ---------------------------------------------------------------------
 */

/* A float's IEEE bit pattern, and the float of a pattern. */
static inline uint32_t
float_bits(float f)
{
	uint32_t	b;

	memcpy(&b, &f, sizeof(b));
	return b;
}

static inline float
bits_float(uint32_t b)
{
	float		f;

	memcpy(&f, &b, sizeof(f));
	return f;
}

/* Bitwise equality; with nan_equal, any two NaNs are also the same. */
static inline int
same_float(float a, float b, int nan_equal)
{
	return memcmp(&a, &b, sizeof(float)) == 0 ||
		(nan_equal && isnan(a) && isnan(b));
}

/* ---------------------------------------------------------------------
 * Real data
 * ---------------------------------------------------------------------
 */

/*
 * Read a TEXMEX .fvecs/.ivecs file (4-byte items: float or int32); returns
 * the rows without their dimension headers and sets *nrows and *dim, or
 * returns NULL if the file is missing or malformed.
 */
static inline void *
read_vecs(const char *path, size_t *nrows, size_t *dim)
{
	FILE	   *f = fopen(path, "rb");
	long		size;
	unsigned char *buf;
	unsigned char *out;
	int32_t		d;
	size_t		n,
				i;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = xmalloc((size_t) size);
	if (size < 4 || fread(buf, 1, (size_t) size, f) != (size_t) size)
	{
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	memcpy(&d, buf, 4);
	if (d <= 0 || (size_t) size % (4 + 4 * (size_t) d) != 0)
	{
		free(buf);
		return NULL;
	}
	n = (size_t) size / (4 + 4 * (size_t) d);
	out = xmalloc(n * (size_t) d * 4);
	for (i = 0; i < n; i++)
	{
		int32_t		di;

		memcpy(&di, buf + i * (4 + 4 * (size_t) d), 4);
		if (di != d)
		{
			free(buf);
			free(out);
			return NULL;
		}
		memcpy(out + i * (size_t) d * 4, buf + i * (4 + 4 * (size_t) d) + 4,
			   (size_t) d * 4);
	}
	free(buf);
	*nrows = n;
	*dim = (size_t) d;
	return out;
}

/*
 * Fashion-MNIST from Debian's dataset-fashion-mnist, the real data every
 * machine can install (test/lib/install-deps.sh does): the first max images
 * of a gzipped IDX3 file ("train" or "t10k") as floats 0..255 (784 per
 * image); sets *nrows and *dim, or returns NULL if it cannot be read.
 * IVF_FASHION_MNIST_DIR overrides the folder.
 */
static inline float *
read_fashion_mnist(const char *which, size_t max, size_t *nrows, size_t *dim)
{
	const char *dir = getenv("IVF_FASHION_MNIST_DIR");
	char		cmd[4096];
	unsigned char hdr[16];
	unsigned char *img;
	float	   *out;
	FILE	   *f;
	size_t		n,
				d,
				i;

	if (dir == NULL || dir[0] == '\0')
		dir = "/usr/share/datasets/fashion-mnist";
	snprintf(cmd, sizeof(cmd), "gzip -dc '%s/%s-images-idx3-ubyte.gz' 2>/dev/null",
			 dir, which);
	f = popen(cmd, "r");
	if (f == NULL)
		return NULL;
	if (fread(hdr, 1, 16, f) != 16 ||
		!(hdr[0] == 0 && hdr[1] == 0 && hdr[2] == 8 && hdr[3] == 3))
	{
		pclose(f);
		return NULL;
	}
	n = ((size_t) hdr[4] << 24) | ((size_t) hdr[5] << 16) | ((size_t) hdr[6] << 8) | hdr[7];
	d = (((size_t) hdr[8] << 24) | ((size_t) hdr[9] << 16) | ((size_t) hdr[10] << 8) | hdr[11]) *
		(((size_t) hdr[12] << 24) | ((size_t) hdr[13] << 16) | ((size_t) hdr[14] << 8) | hdr[15]);
	if (n > max)
		n = max;
	img = xmalloc(n * d);
	out = xmalloc(n * d * sizeof(float));
	if (fread(img, 1, n * d, f) != n * d)
	{
		pclose(f);
		free(img);
		free(out);
		return NULL;
	}
	pclose(f);					/* gzip may have died of SIGPIPE: fine */
	for (i = 0; i < n * d; i++)
		out[i] = (float) img[i];
	free(img);
	*nrows = n;
	*dim = d;
	return out;
}

#endif							/* IVF_TESTUTIL_H */
