/*
 * vecdata: small data-set helper for bench/demo.sh (standalone, libc only).
 *
 *   vecdata copy FILE.fvecs [N]         COPY text rows "id<TAB>[x,y,...]" (id = 0-based row)
 *   vecdata lines FILE.fvecs [N]        one "[x,y,...]" literal per line
 *   vecdata idx2fvecs N [SKIP] < IDX    IDX ubyte images (gunzipped, on stdin) -> fvecs
 *                                       on stdout: N images after skipping SKIP
 *   vecdata gt BASE.fvecs QUERY.fvecs K exact L2 top-K ids (ivecs on stdout); distances in
 *                                       double, ties to the smaller id
 *   vecdata recall GT.ivecs K RESULTS BASE.fvecs QUERY.fvecs
 *                                       RESULTS: lines "qid|id" in rank order per query;
 *                                       prints mean/min recall@K, and recall counting
 *                                       results tied with the K-th neighbour
 *   vecdata gtrow GT.ivecs QID K        the first K ground-truth ids of query QID
 *
 * fvecs/ivecs: per record a little-endian int32 d, then d float32 / int32.
 * Floats are printed with %.9g, which round-trips every float32 exactly.
 * This host is assumed little-endian (x86_64, aarch64).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
die(const char *msg, const char *arg)
{
	fprintf(stderr, "vecdata: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

/* Read a whole fvecs/ivecs file: returns n records of dimension *d (4-byte elements). */
static void *
read_vecs(const char *path, long limit, long *n_out, int *d_out)
{
	FILE	   *f = fopen(path, "rb");
	int32_t		d;
	long		n = 0,
				cap = 1024;
	char	   *buf;

	if (!f)
		die(strerror(errno), path);
	if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > 1000000)
		die("bad header", path);
	rewind(f);
	buf = malloc((size_t) cap * d * 4);
	if (!buf)
		die("out of memory", NULL);
	for (;;)
	{
		int32_t		dd;

		if (limit >= 0 && n >= limit)
			break;
		if (fread(&dd, 4, 1, f) != 1)
			break;
		if (dd != d)
			die("records of different dimension", path);
		if (n == cap)
		{
			cap *= 2;
			buf = realloc(buf, (size_t) cap * d * 4);
			if (!buf)
				die("out of memory", NULL);
		}
		if (fread(buf + (size_t) n * d * 4, 4, d, f) != (size_t) d)
			die("truncated record", path);
		n++;
	}
	fclose(f);
	*n_out = n;
	*d_out = d;
	return buf;
}

static void
print_vec(const float *v, int d)
{
	putchar('[');
	for (int j = 0; j < d; j++)
		printf(j ? ",%.9g" : "%.9g", (double) v[j]);
	putchar(']');
}

static uint32_t
be32(const unsigned char *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static int
cmd_idx2fvecs(long n, long skip)
{
	unsigned char hdr[16];
	uint32_t	count,
				rows,
				cols;
	int32_t		d;
	unsigned char *img;
	float	   *out;

	if (fread(hdr, 1, 16, stdin) != 16 || be32(hdr) != 0x00000803)
		die("stdin is not an IDX3 ubyte file", NULL);
	count = be32(hdr + 4);
	rows = be32(hdr + 8);
	cols = be32(hdr + 12);
	d = (int32_t) (rows * cols);
	if (skip + n > (long) count)
		die("not enough images", NULL);
	img = malloc(d);
	out = malloc(sizeof(float) * d);
	for (long i = 0; i < skip + n; i++)
	{
		if (fread(img, 1, d, stdin) != (size_t) d)
			die("truncated IDX file", NULL);
		if (i < skip)
			continue;
		for (int j = 0; j < d; j++)
			out[j] = (float) img[j];
		fwrite(&d, 4, 1, stdout);
		fwrite(out, sizeof(float), d, stdout);
	}
	/* drain the rest so that the decompressor feeding us exits cleanly */
	while (fread(img, 1, d, stdin) > 0)
		;
	free(img);
	free(out);
	return 0;
}

static double
l2sq(const float *a, const float *b, int d)
{
	double		s = 0;

	for (int j = 0; j < d; j++)
	{
		double		t = (double) a[j] - (double) b[j];

		s += t * t;
	}
	return s;
}

typedef struct
{
	double		dist;
	int32_t		id;
} Hit;

static int
hit_cmp(const void *a, const void *b)
{
	const Hit  *x = a,
			   *y = b;

	if (x->dist != y->dist)
		return x->dist < y->dist ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

static int
cmd_gt(const char *basepath, const char *querypath, int k)
{
	long		nb,
				nq;
	int			db,
				dq;
	float	   *base = read_vecs(basepath, -1, &nb, &db);
	float	   *query = read_vecs(querypath, -1, &nq, &dq);
	Hit		   *hits;

	if (db != dq)
		die("base and query dimensions differ", NULL);
	if (k > nb)
		k = (int) nb;
	hits = malloc(sizeof(Hit) * nb);
	for (long q = 0; q < nq; q++)
	{
		const float *qv = query + (size_t) q * dq;
		int32_t		kk = k;

		for (long i = 0; i < nb; i++)
		{
			hits[i].dist = l2sq(base + (size_t) i * db, qv, db);
			hits[i].id = (int32_t) i;
		}
		qsort(hits, nb, sizeof(Hit), hit_cmp);
		fwrite(&kk, 4, 1, stdout);
		for (int i = 0; i < k; i++)
			fwrite(&hits[i].id, 4, 1, stdout);
	}
	free(hits);
	free(base);
	free(query);
	return 0;
}

/*
 * recall@K of RESULTS against GT.  Also a tie-aware figure: a returned id
 * counts if its exact distance is no larger than that of the K-th
 * ground-truth neighbour (ground truth breaks ties by id; a search may
 * return another vector at the same distance).
 */
static int
cmd_recall(const char *gtpath, int k, const char *respath,
		   const char *basepath, const char *querypath)
{
	long		nq,
				nb,
				nqv;
	int			dg,
				db,
				dq;
	int32_t    *gt = read_vecs(gtpath, -1, &nq, &dg);
	float	   *base = read_vecs(basepath, -1, &nb, &db);
	float	   *query = read_vecs(querypath, -1, &nqv, &dq);
	FILE	   *f = fopen(respath, "r");
	long	   *hits = calloc(nq, sizeof(long));
	long	   *tiehits = calloc(nq, sizeof(long));
	long	   *got = calloc(nq, sizeof(long));
	long		qid,
				id;
	double		sum = 0,
				tsum = 0,
				min = 1;
	long		answered = 0;

	if (!f)
		die(strerror(errno), respath);
	if (k > dg)
		die("K larger than the ground truth depth", NULL);
	if (db != dq || nqv < nq)
		die("base/query files do not match the ground truth", NULL);
	while (fscanf(f, "%ld|%ld", &qid, &id) == 2)
	{
		const float *qv;
		double		kth;

		if (qid < 0 || qid >= nq || id < 0 || id >= nb)
			die("id out of range in results", NULL);
		if (got[qid]++ >= k)
			continue;
		for (int j = 0; j < k; j++)
			if (gt[(size_t) qid * dg + j] == id)
			{
				hits[qid]++;
				break;
			}
		qv = query + (size_t) qid * dq;
		kth = l2sq(base + (size_t) gt[(size_t) qid * dg + k - 1] * db, qv, db);
		if (l2sq(base + (size_t) id * db, qv, db) <= kth * (1 + 1e-12))
			tiehits[qid]++;
	}
	fclose(f);
	for (long q = 0; q < nq; q++)
	{
		double		r = (double) hits[q] / k;

		if (got[q] > 0)
			answered++;
		sum += r;
		tsum += (double) tiehits[q] / k;
		if (r < min)
			min = r;
	}
	printf("recall@%d = %.4f (mean over %ld queries, min %.2f, %ld answered); "
		   "counting distance ties: %.4f\n",
		   k, sum / nq, nq, min, answered, tsum / nq);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 3 && (strcmp(argv[1], "copy") == 0 || strcmp(argv[1], "lines") == 0))
	{
		long		n;
		int			d;
		float	   *v = read_vecs(argv[2], argc > 3 ? atol(argv[3]) : -1, &n, &d);
		int			with_id = strcmp(argv[1], "copy") == 0;

		for (long i = 0; i < n; i++)
		{
			if (with_id)
				printf("%ld\t", i);
			print_vec(v + (size_t) i * d, d);
			putchar('\n');
		}
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "idx2fvecs") == 0)
		return cmd_idx2fvecs(atol(argv[2]), argc > 3 ? atol(argv[3]) : 0);
	if (argc == 5 && strcmp(argv[1], "gt") == 0)
		return cmd_gt(argv[2], argv[3], atoi(argv[4]));
	if (argc == 7 && strcmp(argv[1], "recall") == 0)
		return cmd_recall(argv[2], atoi(argv[3]), argv[4], argv[5], argv[6]);
	if (argc == 5 && strcmp(argv[1], "gtrow") == 0)
	{
		long		nq;
		int			dg;
		int32_t    *gt = read_vecs(argv[2], -1, &nq, &dg);
		long		q = atol(argv[3]);
		int			k = atoi(argv[4]);

		if (q < 0 || q >= nq || k > dg)
			die("query id or K out of range", NULL);
		for (int j = 0; j < k; j++)
			printf(j ? " %d" : "%d", gt[(size_t) q * dg + j]);
		putchar('\n');
		return 0;
	}
	fprintf(stderr,
			"usage: vecdata copy|lines FILE.fvecs [N]\n"
			"       vecdata idx2fvecs N [SKIP] < images.idx3-ubyte\n"
			"       vecdata gt BASE.fvecs QUERY.fvecs K > gt.ivecs\n"
			"       vecdata recall GT.ivecs K RESULTS BASE.fvecs QUERY.fvecs\n"
			"       vecdata gtrow GT.ivecs QID K\n");
	return 2;
}
