/* sse: see sse.h. */
#include "sse.h"

#include <string.h>

void
sse_format_event(struct buf *out, const char *id, const char *event,
    const char *data, size_t len)
{
	size_t start = 0, i = 0;

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
		/* Find the end of this line: CR, LF or the end of the data. */
		while (i < len && data[i] != '\r' && data[i] != '\n')
			i++;
		buf_append(out, "data: ", 6);
		buf_append(out, data + start, i - start);
		buf_append(out, "\n", 1);
		if (i == len)
			break;
		/* CRLF is one line break, not two. */
		if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
			i++;
		start = ++i;
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
sse_format_id(struct buf *out, const char *id)
{
	buf_printf(out, "id: %s\n\n", id);
}

void
sse_format_retry(struct buf *out, unsigned ms)
{
	buf_printf(out, "retry: %u\n\n", ms);
}
