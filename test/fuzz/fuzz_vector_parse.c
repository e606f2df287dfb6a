/*
 * libFuzzer target for the vector text parser (src/kernels/vector_parse.c).
 *
 *   make fuzz FUZZ_SECONDS=60      (clang, -fsanitize=fuzzer,address,undefined)
 *
 * Beyond "no crash, no out-of-bounds access", it checks the parser's
 * contract: the reported position lies inside the input, accepted vectors
 * have 1..maxdim finite elements, and printing an accepted vector with
 * round-trip precision and parsing it again gives the same bits.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vector_parse.h"

#define FUZZ_MAXDIM 16000

static float out1[FUZZ_MAXDIM];
static float out2[FUZZ_MAXDIM];
static char printed[FUZZ_MAXDIM * 20 + 3];

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *str = malloc(size + 1);
	IvfParseResult r;
	int			bound;
	int			capacity;
	size_t		len;

	memcpy(str, data, size);
	str[size] = '\0';
	len = strlen(str);			/* the server never passes embedded NULs */

	bound = ivf_vector_count_upper_bound(str);
	capacity = bound < FUZZ_MAXDIM ? bound : FUZZ_MAXDIM;
	r = ivf_parse_vector(str, out1, capacity, FUZZ_MAXDIM);

	if (r.errpos < 0 || (size_t) r.errpos > len ||
		r.errlen < 0 || (size_t) (r.errpos + r.errlen) > len)
		abort();

	if (r.status == IVF_PARSE_OK)
	{
		char	   *p = printed;
		IvfParseResult r2;
		int			i;

		if (r.ndim < 1 || r.ndim > capacity)
			abort();
		*p++ = '[';
		for (i = 0; i < r.ndim; i++)
		{
			if (!isfinite(out1[i]))
				abort();
			p += sprintf(p, i ? ",%.9g" : "%.9g", (double) out1[i]);
		}
		*p++ = ']';
		*p = '\0';

		r2 = ivf_parse_vector(printed, out2, r.ndim, FUZZ_MAXDIM);
		if (r2.status != IVF_PARSE_OK || r2.ndim != r.ndim ||
			memcmp(out1, out2, sizeof(float) * r.ndim) != 0)
			abort();
	}
	else if (r.ndim > capacity)
		abort();

	free(str);
	return 0;
}
