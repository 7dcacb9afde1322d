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

/*
 * sse_field() of a value longer than out's sink takes at once: in pieces,
 * each of which may send what came before (a line may span two writes).
 */
static void
sse_field_pieces(struct buf *out, const char *name, size_t name_len,
    const char *value, size_t len)
{
	size_t piece = buf_sink_piece(out);

	buf_append(out, name, name_len);
	for (size_t at = 0; at < len; at += piece)
		buf_append(
		    out, value + at, len - at < piece ? len - at : piece);
	buf_append(out, "\n", 1);
}

/*
 * Append the field line name value "\n" (name with its ": "): one check
 * for room, one length update and one NUL, where a buf_append() for each
 * of its three pieces makes three of each.
 */
static inline void
sse_field(struct buf *out, const char *name, size_t name_len, const char *value,
    size_t len)
{
	char *w;

	if (len > buf_sink_piece(out)) {
		sse_field_pieces(out, name, name_len, value, len);
		return;
	}
	buf_reserve(out, name_len + len + 1);
	w = out->data + out->len;
	memcpy(w, name, name_len);
	if (len > 0)
		memcpy(w + name_len, value, len);
	w[name_len + len] = '\n';
	out->len += name_len + len + 1;
	out->data[out->len] = '\0';
}

void
sse_format_event(struct buf *out, const char *id, const char *event,
    const char *data, size_t len)
{
	/* The next CR and LF at or after the line's start: found by memchr(). */
	size_t start = 0, cr = sse_find(data, 0, len, '\r'),
	       lf = sse_find(data, 0, len, '\n');
	size_t id_len = id != NULL ? strlen(id) : 0;
	size_t event_len = event != NULL ? strlen(event) : 0;

	/*
	 * Most events are one line: reserve for that in one go (unless out
	 * goes out in pieces smaller than that).
	 */
	if (len <= buf_sink_piece(out))
		buf_reserve(out,
		    len + 16 + (event ? event_len + 8 : 0) +
		        (id ? id_len + 5 : 0));
	if (id != NULL)
		sse_field(out, "id: ", 4, id, id_len);
	if (event != NULL)
		sse_field(out, "event: ", 7, event, event_len);
	for (;;) {
		/* This line ends at a CR, an LF or the end of the data. */
		size_t i = cr < lf ? cr : lf;

		sse_field(out, "data: ", 6, data + start, i - start);
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
sse_format_line_begin(struct buf *out, const char *id, const char *event)
{
	if (id != NULL)
		sse_field(out, "id: ", 4, id, strlen(id));
	if (event != NULL)
		sse_field(out, "event: ", 7, event, strlen(event));
	buf_append(out, "data: ", 6);
}

void
sse_format_line_end(struct buf *out)
{
	buf_append(out, "\n\n", 2);
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
