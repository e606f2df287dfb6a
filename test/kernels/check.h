/*-------------------------------------------------------------------------
 *
 * check.h
 *	  Check bookkeeping shared by the standalone kernel tests: one line per
 *	  group of checks, a final "N passed, M failed" and the exit status.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_TEST_CHECK_H
#define IVF_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int	total_pass = 0;
static int	total_fail = 0;
static int	grp_pass = 0;
static int	grp_fail = 0;
static char grp_name[256];

static void
group_begin(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(grp_name, sizeof(grp_name), fmt, ap);
	va_end(ap);
	grp_pass = grp_fail = 0;
}

static void
group_end(void)
{
	if (grp_fail == 0)
		printf("ok    %-64s (%d checks)\n", grp_name, grp_pass);
	else
		printf("FAIL  %-64s (%d of %d checks failed)\n", grp_name,
			   grp_fail, grp_pass + grp_fail);
	fflush(stdout);
}

static int
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

static int
check_summary(void)
{
	printf("%d passed, %d failed\n", total_pass, total_fail);
	return total_fail == 0 ? 0 : 1;
}

#endif							/* IVF_TEST_CHECK_H */
