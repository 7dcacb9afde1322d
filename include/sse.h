/*
 * sse: the text/event-stream framer (WHATWG HTML, "Server-sent events").
 * Pure: appends to a buffer and does no I/O.
 *
 * A data value may hold any bytes; each of its line breaks (CRLF, CR or
 * LF) starts a new "data:" field, so a conforming parser hands the client
 * exactly the original text with LF line breaks, and nothing in it can
 * end the event early or add a field.
 */
#ifndef BEEP_SSE_H
#define BEEP_SSE_H

#include <stddef.h>

#include "util.h"

/*
 * Append one event to out.  id and event may be NULL; when given they
 * must hold no CR, LF or NUL (the callers validate them).
 */
void sse_format_event(struct buf *out, const char *id, const char *event,
    const char *data, size_t len);

/*
 * Append the start of an event whose data is one line: its id and event
 * (as above) and "data: ".  The caller then appends the line's text, which
 * must hold no CR, LF (compact JSON), and ends the event with
 * sse_format_line_end().  For text too long to render whole before it is
 * written (buf's sink): it is appended in pieces.
 */
void sse_format_line_begin(struct buf *out, const char *id, const char *event);
void sse_format_line_end(struct buf *out);

/* Append a comment block, ":" text "\n\n"; text (may be NULL) has no CR/LF. */
void sse_format_comment(struct buf *out, const char *text);

/* Append a "retry:" block telling the client how long to wait to reconnect. */
void sse_format_retry(struct buf *out, unsigned ms);

#endif
