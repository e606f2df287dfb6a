/*-------------------------------------------------------------------------
 *
 * distance_isa.h
 *	  Internal: per-ISA kernel tables, each defined in its own translation
 *	  unit compiled with that ISA's flags.  Only distance.c calls these, and
 *	  only after checking that the CPU supports the ISA.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_DISTANCE_ISA_H
#define IVF_DISTANCE_ISA_H

#include "distance.h"

#if defined(__x86_64__)
#include <xmmintrin.h>

extern void ivf_kernels_fill_avx2(IvfKernels *k);
extern void ivf_kernels_fill_avx512(IvfKernels *k);
/* the half-float entries, for either x86 level (distance_f16c.c) */
extern void ivf_kernels_fill_f16c(IvfKernels *k);

/*
 * Software prefetch for the SQ8 block kernels (both x86 levels): with
 * codes streaming from DRAM, the hardware prefetcher alone left them at
 * 40-70% of the single-thread read bandwidth; 2 kB ahead made them
 * 1.4-2.5x faster there (bench_kernels, d = 128 and 784) and costs nothing
 * measurable on blocks in cache.  Each call prefetches the lines from byte
 * pf up to upto, clipped to the block (n * d bytes, so nothing outside the
 * caller's buffer is touched), and returns the new pf: one prefetch per 64
 * bytes, whatever d is.
 */
#define IVF_SQ8_PREFETCH_BYTES	2048

static inline __attribute__((always_inline)) size_t
sq8_prefetch(const uint8_t *codes, size_t pf, size_t upto, size_t total)
{
	if (upto > total)
		upto = total;
	for (; pf < upto; pf += 64)
		_mm_prefetch((const char *) (codes + pf), _MM_HINT_T0);
	return pf;
}
#endif

#if defined(__aarch64__)
extern void ivf_kernels_fill_neon(IvfKernels *k);
#endif

#endif							/* IVF_DISTANCE_ISA_H */
