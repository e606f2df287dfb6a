/*-------------------------------------------------------------------------
 *
 * ivf.h
 *	  Module-wide declarations: initialisation and settings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_IVF_H
#define IVF_IVF_H

/* ivf.simd_level: "auto" or a forced kernel level (see distance.h) */
extern int	ivf_simd_level_setting;

#endif							/* IVF_IVF_H */
