/*-------------------------------------------------------------------------
 *
 * bench_kernels.c
 *	  Micro-benchmark of the ivf distance kernels.
 *
 * For every SIMD level this CPU supports, and d in {128, 784, 1536}:
 *	 - pair kernels l2sq / dot on vectors in L1,
 *	 - block kernels l2sq_block / dot_block on a ~512 kB block (fits in L2)
 *	   and on a 256 MB block (streams from DRAM),
 *	 - at d = 128 and 784, the SQ8 block kernel sq8_dot_block (what a
 *	   prefilter scan runs for both metrics) on 8-bit codes of the same
 *	   number of rows (a quarter of the bytes), so its ns/row compares
 *	   directly with l2sq_block,
 *	 - the half-float block kernels l2sq_f16_block / dot_f16_block (a float
 *	   query against IEEE half vectors, what a halfvec index's scan runs)
 *	   on the same number of rows as the float blocks (half the bytes),
 * then ivf_gemm_l2sq (256 queries x 65536 vectors x 128) and ivf_knn_l2sq
 * with 1 and with all BLAS threads.  Memory bandwidth is measured in the
 * same run (best-of-N memcpy of 512 MB and a read-only sum), single
 * threaded like the kernels, and printed beside the DRAM-sized block
 * kernels so one can see they run at memory speed.
 *
 * Usage: bench_kernels [--quick] [--json]
 *	 --quick  about 5 s: fewer repetitions, smaller buffers
 *	 --json   also write one JSON object per measurement to stdout (the
 *			  human-readable table then goes to stderr)
 *
 * FLOP counts: l2sq 3 per element (sub, mul, add), dot 2 per element,
 * sq8_dot 2, GEMM
 * 2 * nq * nx * d.  GB/s counts bytes of vector data read: floats, for the
 * half kernels two bytes per element, for SQ8 one byte of code per element (memcpy: bytes copied, i.e. read once
 * and written once).
 *
 *-------------------------------------------------------------------------
 */
#include "distance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

typedef struct BenchOpts
{
	int			quick;
	int			json;
	FILE	   *table;			/* where the human-readable table goes */
	double		min_time;		/* seconds per timing trial */
	int			trials;			/* best of this many trials */
} BenchOpts;

static BenchOpts opts;

/* defeats dead-code elimination of benchmarked calls */
static volatile float sink;

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static void *
xmalloc(size_t n)
{
	void	   *p = NULL;

	/* 64-byte aligned so timings do not depend on malloc's luck */
	if (posix_memalign(&p, 64, n ? n : 1) != 0 || p == NULL)
	{
		fprintf(stderr, "out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return p;
}

static uint64_t rng_state = 12345;

static float
rng_float(void)
{
	uint64_t	z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return (float) ((z >> 40) * (1.0 / 16777216.0));
}

static void
fill_random(float *v, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		v[i] = rng_float();
}

/* One JSON object per line; n is rows (memory tests: bytes). */
static void
emit_json(const char *bench, const char *level, size_t d, size_t n,
		  size_t nq, int threads, double ns_per_call, double gflops,
		  double gbps)
{
	if (!opts.json)
		return;
	printf("{\"bench\":\"%s\",\"level\":\"%s\",\"d\":%zu,\"n\":%zu,\"nq\":%zu,"
		   "\"threads\":%d,\"ns_per_call\":%.1f,\"gflops\":%.3f,\"gbps\":%.3f}\n",
		   bench, level, d, n, nq, threads, ns_per_call, gflops, gbps);
	fflush(stdout);
}

/* ---------------------------------------------------------------------
 * Memory bandwidth
 * ---------------------------------------------------------------------
 */

/* Read-only pass over buf (STREAM-like "sum"), 16 bytes per load. */
static uint64_t
read_sum(const void *buf, size_t bytes)
{
#if defined(__x86_64__)
	const __m128i *p = (const __m128i *) buf;
	size_t		n = bytes / 64;
	__m128i		s0 = _mm_setzero_si128(),
				s1 = _mm_setzero_si128(),
				s2 = _mm_setzero_si128(),
				s3 = _mm_setzero_si128();
	uint64_t	out[2];
	size_t		i;

	for (i = 0; i < n; i++)
	{
		s0 = _mm_add_epi64(s0, _mm_load_si128(p + 4 * i));
		s1 = _mm_add_epi64(s1, _mm_load_si128(p + 4 * i + 1));
		s2 = _mm_add_epi64(s2, _mm_load_si128(p + 4 * i + 2));
		s3 = _mm_add_epi64(s3, _mm_load_si128(p + 4 * i + 3));
	}
	s0 = _mm_add_epi64(_mm_add_epi64(s0, s1), _mm_add_epi64(s2, s3));
	_mm_storeu_si128((__m128i *) out, s0);
	return out[0] + out[1];
#else
	const uint64_t *p = (const uint64_t *) buf;
	size_t		n = bytes / 32;
	uint64_t	s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		s0 += p[4 * i];
		s1 += p[4 * i + 1];
		s2 += p[4 * i + 2];
		s3 += p[4 * i + 3];
	}
	return s0 + s1 + s2 + s3;
#endif
}

static double mem_read_gbps = 0.0;

static void
bench_memory(void)
{
	size_t		bytes = (size_t) (opts.quick ? 256 : 512) << 20;
	int			reps = opts.quick ? 2 : 5;
	char	   *src = xmalloc(bytes);
	char	   *dst = xmalloc(bytes);
	double		best_cp = 1e30,
				best_rd = 1e30;
	uint64_t	acc = 0;
	int			r;

	/* touch every page first so page faults are not timed */
	memset(src, 1, bytes);
	memset(dst, 2, bytes);
	for (r = 0; r < reps; r++)
	{
		double		t0 = now_sec();
		double		t;

		memcpy(dst, src, bytes);
		t = now_sec() - t0;
		if (t < best_cp)
			best_cp = t;
		src[r] ^= dst[bytes - 1 - r];

		t0 = now_sec();
		acc += read_sum(src, bytes);
		t = now_sec() - t0;
		if (t < best_rd)
			best_rd = t;
	}
	sink = (float) acc;
	mem_read_gbps = bytes / best_rd * 1e-9;

	fprintf(opts.table, "memory bandwidth (1 thread, best of %d, %zu MB)\n",
			reps, bytes >> 20);
	fprintf(opts.table, "  memcpy          %7.2f GB/s copied (%.2f GB/s read+write)\n",
			bytes / best_cp * 1e-9, 2.0 * bytes / best_cp * 1e-9);
	fprintf(opts.table, "  read-only sum   %7.2f GB/s\n\n", mem_read_gbps);
	emit_json("memcpy", "-", 0, bytes, 0, 1, best_cp * 1e9, 0.0, bytes / best_cp * 1e-9);
	emit_json("read_sum", "-", 0, bytes, 0, 1, best_rd * 1e9, 0.0, mem_read_gbps);
	free(src);
	free(dst);
}

/* ---------------------------------------------------------------------
 * Kernels
 * ---------------------------------------------------------------------
 */
typedef enum BenchKind
{
	BK_L2SQ,
	BK_DOT,
	BK_L2SQ_BLOCK,
	BK_DOT_BLOCK,
	BK_SQ8_DOT_BLOCK,
	BK_L2SQ_F16_BLOCK,
	BK_DOT_F16_BLOCK
} BenchKind;

static const char *const bench_kind_names[] = {
	"l2sq", "dot", "l2sq_block", "dot_block", "sq8_dot_block",
	"l2sq_f16_block", "dot_f16_block"
};

#define BK_IS_SQ8(kind) ((kind) == BK_SQ8_DOT_BLOCK)
#define BK_IS_F16(kind) ((kind) == BK_L2SQ_F16_BLOCK || (kind) == BK_DOT_F16_BLOCK)

/* the half copy of the float block, for the f16 kernels (bench_kernels) */
static const uint16_t *bench_halves;

/*
 * One call of the kernel under test; returns something to sink.  The SQ8
 * kernels read codes, with q as a (or w) and the first d floats of x as
 * step.
 */
static float
run_once(const IvfKernels *k, BenchKind kind, const float *q, const float *x,
		 const uint8_t *codes, size_t n, size_t d, float *out)
{
	switch (kind)
	{
		case BK_L2SQ:
			return k->l2sq(q, x, d);
		case BK_DOT:
			return k->dot(q, x, d);
		case BK_L2SQ_BLOCK:
			k->l2sq_block(q, x, n, d, out);
			return out[n - 1];
		case BK_DOT_BLOCK:
			k->dot_block(q, x, n, d, out);
			return out[n - 1];
		case BK_SQ8_DOT_BLOCK:
			k->sq8_dot_block(q, codes, n, d, out);
			return out[n - 1];
		case BK_L2SQ_F16_BLOCK:
			k->l2sq_f16_block(q, bench_halves, n, d, out);
			return out[n - 1];
		case BK_DOT_F16_BLOCK:
			k->dot_f16_block(q, bench_halves, n, d, out);
			return out[n - 1];
	}
	return 0.0f;
}

/* Best-of-trials nanoseconds per call. */
static double
time_kernel(const IvfKernels *k, BenchKind kind, const float *q,
			const float *x, const uint8_t *codes, size_t n, size_t d,
			float *out)
{
	double		best = 1e30;
	size_t		iters = 1;
	float		acc = 0.0f;
	double		t0,
				t;
	int			trial;

	/* calibrate: grow the repetition count until a trial takes min_time */
	for (;;)
	{
		size_t		i;

		t0 = now_sec();
		for (i = 0; i < iters; i++)
			acc += run_once(k, kind, q, x, codes, n, d, out);
		t = now_sec() - t0;
		if (t >= opts.min_time || iters >= ((size_t) 1 << 30))
			break;
		iters = t > 0 ? (size_t) (iters * (opts.min_time / t) * 1.2) + 1 : iters * 16;
	}
	best = t / iters;
	for (trial = 1; trial < opts.trials; trial++)
	{
		size_t		i;

		t0 = now_sec();
		for (i = 0; i < iters; i++)
			acc += run_once(k, kind, q, x, codes, n, d, out);
		t = (now_sec() - t0) / iters;
		if (t < best)
			best = t;
	}
	sink = acc;
	return best * 1e9;
}

static void
report_kernel(const IvfKernels *k, BenchKind kind, const char *where,
			  const float *q, const float *x, const uint8_t *codes, size_t n,
			  size_t d, float *out)
{
	double		ns = time_kernel(k, kind, q, x, codes, n, d, out);
	size_t		rows = (kind == BK_L2SQ || kind == BK_DOT) ? 1 : n;
	double		flops = (double) rows * d *
		((kind == BK_L2SQ || kind == BK_L2SQ_BLOCK ||
		  kind == BK_L2SQ_F16_BLOCK) ? 3.0 : 2.0);

	/*
	 * pair: both vectors; block: the block (the query, and for SQ8 a/w and
	 * step, stay in L1)
	 */
	double		bytes = (kind == BK_L2SQ || kind == BK_DOT) ?
		2.0 * d * sizeof(float) :
		(double) n * d * (BK_IS_SQ8(kind) ? 1 :
						  BK_IS_F16(kind) ? sizeof(uint16_t) : sizeof(float));
	double		gflops = flops / ns;
	double		gbps = bytes / ns;

	fprintf(opts.table, "  %-7s %-13s %5zu %-9s %8zu %13.1f %9.2f %8.2f %8.1f",
			ivf_simd_level_name(k->level), bench_kind_names[kind], d, where,
			rows, ns, ns / rows, gflops, gbps);
	if (strcmp(where, "dram") == 0 && mem_read_gbps > 0)
		fprintf(opts.table, "  %5.0f%% of read bw", 100.0 * gbps / mem_read_gbps);
	fprintf(opts.table, "\n");
	emit_json(bench_kind_names[kind], ivf_simd_level_name(k->level), d, rows,
			  1, 1, ns, gflops, gbps);
}

static void
bench_kernels(void)
{
	static const size_t dims[] = {128, 784, 1536};
	size_t		big_bytes = (size_t) (opts.quick ? 64 : 256) << 20;
	size_t		l2_bytes = 512 * 1024;
	float	   *big = xmalloc(big_bytes);
	float	   *q = xmalloc(2048 * sizeof(float));
	float	   *out = xmalloc((big_bytes / (128 * sizeof(float)) + 1) * sizeof(float));
	/* SQ8 codes: as many rows as the float blocks, one byte per element */
	uint8_t    *codes = xmalloc(big_bytes / sizeof(float));
	/* halves: as many rows as the float blocks, two bytes per element */
	uint16_t   *halves = xmalloc(big_bytes / 2);
	int			lvl;
	size_t		di,
				i;

	fill_random(big, big_bytes / sizeof(float));
	fill_random(q, 2048);
	for (i = 0; i < big_bytes / sizeof(float); i++)
		codes[i] = (uint8_t) (rng_float() * 256.0f);
	ivf_kernels_init();
	ivf_kernels.float_to_half(big, halves, big_bytes / sizeof(float));
	bench_halves = halves;

	fprintf(opts.table, "kernels: pair on L1-resident vectors; block = one query vs n vectors,\n"
			"  'l2' block = %zu kB (fits in L2), 'dram' block = %zu MB\n",
			l2_bytes >> 10, big_bytes >> 20);
	fprintf(opts.table, "  %-7s %-13s %5s %-9s %8s %13s %9s %8s %8s\n",
			"level", "kernel", "d", "data", "rows", "ns/call", "ns/row",
			"GFLOP/s", "GB/s");
	for (lvl = 0; lvl < IVF_SIMD_NLEVELS; lvl++)
	{
		IvfKernels	k;

		if (ivf_kernels_get((IvfSimdLevel) lvl, &k) != 0)
			continue;
		for (di = 0; di < sizeof(dims) / sizeof(dims[0]); di++)
		{
			size_t		d = dims[di];
			size_t		n_l2 = l2_bytes / (d * sizeof(float));
			size_t		n_big = big_bytes / (d * sizeof(float));

			/* pair kernels on the first vectors of the big buffer (in L1) */
			report_kernel(&k, BK_L2SQ, "l1", q, big, NULL, 1, d, out);
			report_kernel(&k, BK_DOT, "l1", q, big, NULL, 1, d, out);
			report_kernel(&k, BK_L2SQ_BLOCK, "l2", q, big, NULL, n_l2, d, out);
			report_kernel(&k, BK_DOT_BLOCK, "l2", q, big, NULL, n_l2, d, out);
			if (d == 128 || d == 784)
			{
				report_kernel(&k, BK_SQ8_DOT_BLOCK, "l2", q, big, codes, n_l2, d, out);
			}
			report_kernel(&k, BK_L2SQ_F16_BLOCK, "l2", q, big, NULL, n_l2, d, out);
			report_kernel(&k, BK_DOT_F16_BLOCK, "l2", q, big, NULL, n_l2, d, out);
			report_kernel(&k, BK_L2SQ_BLOCK, "dram", q, big, NULL, n_big, d, out);
			report_kernel(&k, BK_DOT_BLOCK, "dram", q, big, NULL, n_big, d, out);
			if (d == 128 || d == 784)
			{
				report_kernel(&k, BK_SQ8_DOT_BLOCK, "dram", q, big, codes, n_big, d, out);
			}
			report_kernel(&k, BK_L2SQ_F16_BLOCK, "dram", q, big, NULL, n_big, d, out);
			report_kernel(&k, BK_DOT_F16_BLOCK, "dram", q, big, NULL, n_big, d, out);
		}
	}
	fprintf(opts.table, "\n");
	free(big);
	free(q);
	free(out);
	free(codes);
	free(halves);
}

/* ---------------------------------------------------------------------
 * GEMM and k-NN
 * ---------------------------------------------------------------------
 */
static void
bench_gemm(void)
{
	size_t		nq = 256;
	size_t		nx = opts.quick ? 16384 : 65536;
	size_t		d = 128;
	size_t		k = 10;
	float	   *q = xmalloc(nq * d * sizeof(float));
	float	   *x = xmalloc(nx * d * sizeof(float));
	float	   *out = xmalloc(nq * nx * sizeof(float));
	int64_t    *ids = xmalloc(nq * k * sizeof(int64_t));
	float	   *dists = xmalloc(nq * k * sizeof(float));
	long		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int			threads[2];
	int			nthreads_cases;
	int			ti,
				r;
	int			reps = opts.quick ? 2 : 3;

	threads[0] = 1;
	threads[1] = ncpu > 1 ? (int) ncpu : 1;
	nthreads_cases = threads[1] > 1 ? 2 : 1;

	fill_random(q, nq * d);
	fill_random(x, nx * d);
	ivf_kernels_init();

	fprintf(opts.table, "batched (level %s): %zu queries x %zu vectors x d=%zu\n",
			ivf_simd_level_name(ivf_kernels.level), nq, nx, d);
	fprintf(opts.table, "  %-26s %8s %12s %9s %12s\n",
			"kernel", "threads", "ms/call", "GFLOP/s", "queries/s");
	for (ti = 0; ti < nthreads_cases; ti++)
	{
		double		best_g = 1e30,
					best_k = 1e30,
					best_e = 1e30;
		double		flops = 2.0 * nq * nx * d;
		char		label[64];

		ivf_blas_set_threads(threads[ti]);
		/* warm-up: page faults in out, BLAS thread start-up */
		ivf_gemm_l2sq(q, nq, x, nx, d, NULL, NULL, out);
		for (r = 0; r < reps; r++)
		{
			double		t0 = now_sec();
			double		t;

			ivf_gemm_l2sq(q, nq, x, nx, d, NULL, NULL, out);
			t = now_sec() - t0;
			if (t < best_g)
				best_g = t;

			t0 = now_sec();
			if (ivf_knn_l2sq(q, nq, x, nx, d, k, ids, dists) != 0)
			{
				fprintf(stderr, "ivf_knn_l2sq: out of memory\n");
				exit(2);
			}
			t = now_sec() - t0;
			if (t < best_k)
				best_k = t;
		}
		sink = out[nq * nx - 1] + dists[0];
		fprintf(opts.table, "  %-26s %8d %12.2f %9.1f %12.0f\n",
				"gemm_l2sq", threads[ti], best_g * 1e3, flops / best_g * 1e-9,
				nq / best_g);
		emit_json("gemm_l2sq", ivf_simd_level_name(ivf_kernels.level), d, nx,
				  nq, threads[ti], best_g * 1e9, flops / best_g * 1e-9,
				  (double) nx * d * sizeof(float) / best_g * 1e-9);
		snprintf(label, sizeof(label), "knn_l2sq k=%zu", k);
		fprintf(opts.table, "  %-26s %8d %12.2f %9.1f %12.0f\n",
				label, threads[ti], best_k * 1e3, flops / best_k * 1e-9,
				nq / best_k);
		emit_json("knn_l2sq", ivf_simd_level_name(ivf_kernels.level), d, nx,
				  nq, threads[ti], best_k * 1e9, flops / best_k * 1e-9,
				  (double) nx * d * sizeof(float) / best_k * 1e-9);

		/* the same k-NN without BLAS: one exact blocked scan per 4 queries */
		if (ti == 0)
		{
			size_t		nq_e = 4;

			for (r = 0; r < reps; r++)
			{
				double		t0 = now_sec();
				double		t;

				ivf_knn_l2sq(q, nq_e, x, nx, d, k, ids, dists);
				t = now_sec() - t0;
				if (t < best_e)
					best_e = t;
			}
			snprintf(label, sizeof(label), "knn_l2sq k=%zu, %zu queries", k, nq_e);
			fprintf(opts.table, "  %-26s %8s %12.2f %9.1f %12.0f\n",
					label, "-", best_e * 1e3,
					2.0 * nq_e * nx * d / best_e * 1e-9, nq_e / best_e);
			emit_json("knn_l2sq_scan", ivf_simd_level_name(ivf_kernels.level),
					  d, nx, nq_e, 1, best_e * 1e9, 2.0 * nq_e * nx * d / best_e * 1e-9,
					  (double) nx * d * sizeof(float) / best_e * 1e-9);
		}
	}
	fprintf(opts.table, "\n");
	ivf_blas_set_threads(1);
	free(q);
	free(x);
	free(out);
	free(ids);
	free(dists);
}

int
main(int argc, char **argv)
{
	int			i;
	double		t0 = now_sec();

	memset(&opts, 0, sizeof(opts));
	for (i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--quick") == 0)
			opts.quick = 1;
		else if (strcmp(argv[i], "--json") == 0)
			opts.json = 1;
		else
		{
			fprintf(stderr, "usage: %s [--quick] [--json]\n", argv[0]);
			return 2;
		}
	}
	opts.table = opts.json ? stderr : stdout;
	opts.min_time = opts.quick ? 0.01 : 0.05;
	opts.trials = opts.quick ? 2 : 3;

	ivf_kernels_init();
	fprintf(opts.table, "ivf kernel benchmark: best level %s, %ld CPUs%s\n\n",
			ivf_simd_level_name(ivf_simd_best_level()),
			sysconf(_SC_NPROCESSORS_ONLN), opts.quick ? " (quick)" : "");

	bench_memory();
	bench_kernels();
	bench_gemm();

	fprintf(opts.table, "total %.1f s\n", now_sec() - t0);
	return 0;
}
