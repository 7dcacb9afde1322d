/* depth: see depth.h. */
#include "depth.h"

#include <string.h>

/*
 * The end of the string whose text starts at s[i] (just past its opening
 * quote): the index of its closing quote, or len if it has none.  A quote
 * closes it when an even number of backslashes precedes it (each pair is
 * one escaped backslash); memchr() finds the candidates, so the text of a
 * string, most of a signaling message, is skipped a vector at a time.
 */
static size_t
depth_string_end(const char *s, size_t i, size_t len)
{
	for (;;) {
		const char *q = memchr(s + i, '"', len - i);
		size_t at, k;

		if (q == NULL)
			return len;
		at = (size_t)(q - s);
		/* The run of backslashes before it, within the string. */
		for (k = at; k > i && s[k - 1] == '\\'; k--)
			;
		if ((at - k) % 2 == 0)
			return at;
		i = at + 1;
	}
}

bool
depth_json_within(const char *s, size_t len, unsigned max)
{
	unsigned depth = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '"') {
			i = depth_string_end(s, i + 1, len);
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				return false;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return true;
}
