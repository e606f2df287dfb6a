/*-------------------------------------------------------------------------
 *
 * vector_parse.h
 *	  Parser for the text form of a vector, "[1,2,3]".
 *
 * Plain C with no PostgreSQL dependency so the fuzz target links it alone;
 * vector_in() turns the status codes into ereport()s.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IVF_VECTOR_PARSE_H
#define IVF_VECTOR_PARSE_H

typedef enum IvfParseStatus
{
	IVF_PARSE_OK = 0,
	IVF_PARSE_NO_OPEN_BRACKET,	/* does not start with "[" */
	IVF_PARSE_BAD_NUMBER,		/* an element is not a number */
	IVF_PARSE_BAD_SEPARATOR,	/* after an element, neither "," nor "]" */
	IVF_PARSE_UNTERMINATED,		/* input ends before "]" */
	IVF_PARSE_JUNK_AFTER,		/* something after the closing "]" */
	IVF_PARSE_EMPTY,			/* "[]" */
	IVF_PARSE_TOO_MANY,			/* more than maxdim elements */
	IVF_PARSE_NAN,				/* NaN element */
	IVF_PARSE_INFINITE,			/* Infinity element */
	IVF_PARSE_OUT_OF_RANGE		/* overflows float4, or underflows to 0 */
} IvfParseStatus;

typedef struct IvfParseResult
{
	IvfParseStatus status;
	int			ndim;			/* elements stored in out[] */
	int			errpos;			/* byte offset of the offending text */
	int			errlen;			/* its length (0 when not a token) */
} IvfParseResult;

/*
 * Parse str into out[0..capacity-1].  maxdim is the dimension limit;
 * capacity must be at least min(ivf_vector_count_upper_bound(str), maxdim).
 */
extern IvfParseResult ivf_parse_vector(const char *str, float *out,
									   int capacity, int maxdim);

/* Upper bound on the number of elements: commas + 1. */
extern int	ivf_vector_count_upper_bound(const char *str);

#endif							/* IVF_VECTOR_PARSE_H */
