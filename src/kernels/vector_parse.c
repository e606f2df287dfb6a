/*-------------------------------------------------------------------------
 *
 * vector_parse.c
 *	  Parser for the text form of a vector, "[1,2,3]".
 *
 * Accepted: optional whitespace, "[", one or more float4 literals (anything
 * strtof() accepts, the same as PostgreSQL's float4in) separated by ",",
 * "]", optional whitespace.  Whitespace may surround every element.
 * NaN and infinities are refused; so are values that overflow float4 or
 * underflow to zero (denormals are kept), as float4in does.
 *
 * Each element is delimited first (up to "," "]" whitespace or the end) and
 * strtof() must consume exactly that token, so "1e" or "1.2.3" are reported
 * as the element they are, not as a separator error after a partial parse.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "vector_parse.h"

static inline int
vp_isspace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\v' || c == '\f';
}

static inline int
vp_isdelim(char c)
{
	return c == '\0' || c == ',' || c == ']' || vp_isspace(c);
}

int
ivf_vector_count_upper_bound(const char *str)
{
	int			n = 1;

	for (; *str; str++)
	{
		if (*str == ',' && n < 0x7fffffff)
			n++;
	}
	return n;
}

static IvfParseResult
vp_error(IvfParseStatus status, int ndim, const char *str, const char *pos,
		 int len)
{
	IvfParseResult r;

	r.status = status;
	r.ndim = ndim;
	r.errpos = (int) (pos - str);
	r.errlen = len;
	return r;
}

IvfParseResult
ivf_parse_vector(const char *str, float *out, int capacity, int maxdim)
{
	const char *p = str;
	int			ndim = 0;
	IvfParseResult ok;

	while (vp_isspace(*p))
		p++;
	if (*p != '[')
		return vp_error(IVF_PARSE_NO_OPEN_BRACKET, 0, str, p, 0);
	p++;
	while (vp_isspace(*p))
		p++;
	if (*p == ']')
		return vp_error(IVF_PARSE_EMPTY, 0, str, p, 0);

	for (;;)
	{
		const char *tok;
		const char *tokend;
		char	   *end;
		float		val;

		while (vp_isspace(*p))
			p++;
		tok = p;
		tokend = p;
		while (!vp_isdelim(*tokend))
			tokend++;

		if (tokend == tok)
		{
			if (*tok == '\0')
				return vp_error(IVF_PARSE_UNTERMINATED, ndim, str, tok, 0);
			return vp_error(IVF_PARSE_BAD_NUMBER, ndim, str, tok, 0);
		}

		errno = 0;
		val = strtof(tok, &end);
		if (end != tokend)
			return vp_error(IVF_PARSE_BAD_NUMBER, ndim, str, tok,
							(int) (tokend - tok));
		if (isnan(val))
			return vp_error(IVF_PARSE_NAN, ndim, str, tok,
							(int) (tokend - tok));
		if (errno == ERANGE && (val == 0.0f || isinf(val)))
			return vp_error(IVF_PARSE_OUT_OF_RANGE, ndim, str, tok,
							(int) (tokend - tok));
		if (isinf(val))
			return vp_error(IVF_PARSE_INFINITE, ndim, str, tok,
							(int) (tokend - tok));

		if (ndim >= maxdim || ndim >= capacity)
			return vp_error(IVF_PARSE_TOO_MANY, ndim, str, tok,
							(int) (tokend - tok));
		out[ndim++] = val;

		p = tokend;
		while (vp_isspace(*p))
			p++;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ']')
			break;
		if (*p == '\0')
			return vp_error(IVF_PARSE_UNTERMINATED, ndim, str, p, 0);
		return vp_error(IVF_PARSE_BAD_SEPARATOR, ndim, str, p, 1);
	}

	p++;						/* past "]" */
	while (vp_isspace(*p))
		p++;
	if (*p != '\0')
		return vp_error(IVF_PARSE_JUNK_AFTER, ndim, str, p, 0);

	ok.status = IVF_PARSE_OK;
	ok.ndim = ndim;
	ok.errpos = 0;
	ok.errlen = 0;
	return ok;
}
