/*
 * libFuzzer target for the Faiss file reader (src/kernels/faissio.c).
 *
 *   make fuzz-faiss FUZZ_SECONDS=600   (clang, -fsanitize=fuzzer,address,undefined)
 *
 * Seeds: test/fuzz/corpus-faiss (files written by Faiss and by our writer,
 * and a few broken ones); dictionary: test/fuzz/faiss.dict.
 *
 * Beyond "no crash, no out-of-bounds access, no leak", it checks the
 * reader's contract: an allocation is never larger than the input (the
 * nlist list sizes aside), a refusal says "invalid Faiss file: ..." and
 * stops inside the input, and what is accepted is in range (d, nlist,
 * metric, finite centroids, sizes adding up to ntotal, the whole input
 * consumed).  An accepted IVF file is then written again by our writer
 * with the same centroids and list sizes, and reading that must give the
 * same index back.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faissio.h"

typedef struct Allocs
{
	void	   *ptr[4];
	size_t		size[4];
	int			n;
} Allocs;

static void *
fuzz_alloc(void *arg, size_t n)
{
	Allocs	   *a = arg;

	if (a->n == 4)
		abort();				/* the reader allocates twice at most */
	a->ptr[a->n] = malloc(n ? n : 1);
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

typedef struct Sink
{
	unsigned char *p;
	size_t		len;
	size_t		cap;
} Sink;

static int
sink_write(void *arg, const void *buf, size_t n)
{
	Sink	   *s = arg;

	if (s->len + n > s->cap)
	{
		s->cap = (s->len + n) * 2;
		s->p = realloc(s->p, s->cap);
		if (s->p == NULL)
			abort();
	}
	memcpy(s->p + s->len, buf, n);
	s->len += n;
	return 0;
}

static int
read_all(const uint8_t *data, size_t size, Allocs *a, IvfFaissInfo *info,
		 char *err)
{
	IvfFaissMemory m;
	IvfFaissSource src;
	int			rc;
	int			i;

	memset(a, 0, sizeof(*a));
	ivf_faiss_memory_source(&m, data, size, &src);
	rc = ivf_faiss_read(&src, fuzz_alloc, a, 1, info, err, IVF_FAISS_ERRLEN);
	for (i = 0; i < a->n; i++)
		if (a->size[i] > size &&
			a->size[i] > sizeof(uint64_t) * IVF_FAISS_MAX_LISTS)
			abort();
	if (info->offset > size)
		abort();
	return rc;
}

/* write the index again with zero vectors, read it back, compare */
static void
rewrite(const IvfFaissInfo *info)
{
	IvfFaissWriter w;
	Sink		s = {0};
	char		err[IVF_FAISS_ERRLEN];
	float	   *zero = calloc(info->d, sizeof(float));
	int64_t		id = 0;
	IvfFaissInfo again;
	Allocs		a;
	uint32_t	l;
	uint64_t	i;

	if (ivf_faiss_write_begin(&w, info->d, info->metric, info->nlist,
							  info->nprobe, info->ntotal, info->centroids,
							  info->list_sizes, sink_write, &s, err,
							  sizeof(err)) != 0)
		abort();
	for (l = 0; l < info->nlist; l++)
	{
		for (i = 0; i < info->list_sizes[l]; i++)
			if (ivf_faiss_write_vectors(&w, l, zero, 1) != 0)
				abort();
		for (i = 0; i < info->list_sizes[l]; i++)
			if (ivf_faiss_write_ids(&w, l, &id, 1) != 0)
				abort();
	}
	if (ivf_faiss_write_end(&w) != 0)
		abort();

	if (read_all(s.p, s.len, &a, &again, err) != 0 ||
		again.kind != IVF_FAISS_KIND_IVF || again.d != info->d ||
		again.metric != info->metric || again.nlist != info->nlist ||
		again.ntotal != info->ntotal || again.nprobe != info->nprobe ||
		memcmp(again.centroids, info->centroids,
			   sizeof(float) * info->nlist * info->d) != 0 ||
		memcmp(again.list_sizes, info->list_sizes,
			   sizeof(uint64_t) * info->nlist) != 0)
		abort();
	allocs_free(&a);
	free(s.p);
	free(zero);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	IvfFaissInfo info;
	Allocs		a;
	char		err[IVF_FAISS_ERRLEN];

	if (read_all(data, size, &a, &info, err) != 0)
	{
		if (strncmp(err, "invalid Faiss file: ", 20) != 0 ||
			strlen(err) >= IVF_FAISS_ERRLEN)
			abort();
	}
	else
	{
		uint64_t	i;
		uint64_t	sum = 0;

		if (info.d < 1 || info.d > IVF_FAISS_MAX_DIM ||
			info.nlist < 1 || info.nlist > IVF_FAISS_MAX_LISTS ||
			(info.metric != IVF_FAISS_METRIC_L2 &&
			 info.metric != IVF_FAISS_METRIC_IP) ||
			info.offset != size || info.centroids == NULL)
			abort();
		for (i = 0; i < (uint64_t) info.nlist * info.d; i++)
			if (!isfinite(info.centroids[i]))
				abort();
		if (info.kind == IVF_FAISS_KIND_IVF)
		{
			for (i = 0; i < info.nlist; i++)
				sum += info.list_sizes[i];
			if (sum != info.ntotal)
				abort();
			rewrite(&info);
		}
		else if (info.kind != IVF_FAISS_KIND_FLAT || info.list_sizes != NULL)
			abort();
	}
	allocs_free(&a);
	return 0;
}
