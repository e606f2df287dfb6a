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
extern void ivf_kernels_fill_avx2(IvfKernels *k);
extern void ivf_kernels_fill_avx512(IvfKernels *k);
#endif

#if defined(__aarch64__)
extern void ivf_kernels_fill_neon(IvfKernels *k);
#endif

#endif							/* IVF_DISTANCE_ISA_H */
