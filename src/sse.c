/* sse: see sse.h. */
#include "sse.h"

#include <string.h>

/* The index of the first c in data[from, len), or len. */
static size_t
sse_find(const char *data, size_t from, size_t len, char c)
{
	const char *p = from < len ? memchr(data + from, c, len - from) : NULL;

	return p != NULL ? (size_t)(p - data) : len;
}

void
sse_format_event(struct buf *out, const char *id, const char *event,
    const char *data, size_t len)
{
	/* The next CR and LF at or after the line's start: found by memchr(). */
	size_t start = 0, cr = sse_find(data, 0, len, '\r'),
	       lf = sse_find(data, 0, len, '\n');

	/* Most events are one line: reserve for that in one go. */
	buf_reserve(out,
	    len + 16 + (event ? strlen(event) + 8 : 0) +
	        (id ? strlen(id) + 5 : 0));
	if (id != NULL) {
		buf_append(out, "id: ", 4);
		buf_puts(out, id);
		buf_append(out, "\n", 1);
	}
	if (event != NULL) {
		buf_append(out, "event: ", 7);
		buf_puts(out, event);
		buf_append(out, "\n", 1);
	}
	for (;;) {
		/* This line ends at a CR, an LF or the end of the data. */
		size_t i = cr < lf ? cr : lf;

		buf_append(out, "data: ", 6);
		buf_append(out, data + start, i - start);
		buf_append(out, "\n", 1);
		if (i == len)
			break;
		/* CRLF is one line break, not two. */
		if (i == cr && lf == i + 1 && lf < len)
			i++;
		start = i + 1;
		if (cr < start)
			cr = sse_find(data, start, len, '\r');
		if (lf < start)
			lf = sse_find(data, start, len, '\n');
	}
	buf_append(out, "\n", 1);
}

void
sse_format_comment(struct buf *out, const char *text)
{
	buf_append(out, ":", 1);
	if (text != NULL) {
		buf_append(out, " ", 1);
		buf_puts(out, text);
	}
	buf_append(out, "\n\n", 2);
}

void
sse_format_retry(struct buf *out, unsigned ms)
{
	buf_printf(out, "retry: %u\n\n", ms);
}
