/* event: see event.h. */
#include "event.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "sse.h"

size_t
event_pack_len(size_t len, const char *event, const char *from_json)
{
	return 1 + (event != NULL ? strlen(event) : 0) + 1 +
	    (from_json != NULL ? strlen(from_json) : 4) + 1 + len;
}

void
event_pack_to(char *dst, const char *data, size_t len, bool is_json,
    const char *event, const char *from_json)
{
	size_t n;

	*dst++ = is_json ? 'j' : 's';
	n = event != NULL ? strlen(event) : 0;
	if (n > 0)
		memcpy(dst, event, n);
	dst[n] = '\0';
	dst += n + 1;
	if (from_json == NULL)
		from_json = "null";
	n = strlen(from_json);
	memcpy(dst, from_json, n + 1);
	dst += n + 1;
	if (len > 0)
		memcpy(dst, data, len);
}

void
event_pack(struct buf *out, const char *data, size_t len, bool is_json,
    const char *event, const char *from_json)
{
	size_t n = event_pack_len(len, event, from_json);

	buf_reserve(out, n);
	event_pack_to(
	    out->data + out->len, data, len, is_json, event, from_json);
	out->len += n;
	out->data[out->len] = '\0';
}

void
event_pack_reset(struct buf *out, const char *reason)
{
	json_t *doc = json_pack("{s:s}", "reason", reason);
	char *data = json_dumps(doc, JSON_COMPACT);

	json_decref(doc);
	buf_append(out, "r", 1);
	buf_puts(out, "reset");
	buf_append(out, "", 1);
	buf_puts(out, "null");
	buf_append(out, "", 1);
	buf_puts(out, data);
	free(data);
}

/*
 * Append s[0..len) (valid UTF-8) as a JSON string, as jansson writes it
 * (json_dumps(), no flags that change strings: test_event compares), in
 * pieces out's sink takes: a string of control characters grows six-fold
 * (\u0001), and none of it is held whole.
 */
static void
event_json_string(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t piece = buf_sink_piece(out), start = 0;

	buf_append(out, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char seq[6] = {'\\', 'u', '0', '0'};
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\') {
			if (i + 1 - start >= piece) {
				buf_append(out, s + start, i + 1 - start);
				start = i + 1;
			}
			continue;
		}
		if (i > start)
			buf_append(out, s + start, i - start);
		start = i + 1;
		switch (c) {
		case '"':
		case '\\':
			seq[1] = (char)c;
			break;
		case '\b':
			seq[1] = 'b';
			break;
		case '\f':
			seq[1] = 'f';
			break;
		case '\n':
			seq[1] = 'n';
			break;
		case '\r':
			seq[1] = 'r';
			break;
		case '\t':
			seq[1] = 't';
			break;
		default:
			seq[4] = hex[c >> 4];
			seq[5] = hex[c & 15];
			n = 6;
		}
		buf_append(out, seq, n);
	}
	if (len > start)
		buf_append(out, s + start, len - start);
	buf_append(out, "\"", 1);
}

int
event_render(
    struct buf *out, const char *p, size_t len, const char *id, bool envelope)
{
	const char *end = p + len, *event, *from, *data;
	size_t n, piece = buf_sink_piece(out);

	if (len < 3 || (p[0] != 's' && p[0] != 'j' && p[0] != 'r'))
		return -1;
	/*
	 * Most messages name no event and no sender ("" and "null"): their
	 * ends found where they lie (len >= 3: p[1] is in p), not searched
	 * for, as the same first NUL.
	 */
	event = p + 1;
	from = event[0] == '\0' ? event
	                        : memchr(event, '\0', (size_t)(end - event));
	if (from == NULL)
		return -1;
	from++;
	data = end - from >= 5 && memcmp(from, "null", 5) == 0
	    ? from + 4
	    : memchr(from, '\0', (size_t)(end - from));
	if (data == NULL)
		return -1;
	data++;
	n = (size_t)(end - data);
	if (!envelope || p[0] == 'r') {
		sse_format_event(out, id, event[0] ? event : NULL, data, n);
		return 0;
	}
	/*
	 * {"from":<sender>,"data":<data as JSON>}: compact JSON, one line
	 * (the sender's and a 'j' data's text are jansson's compact text,
	 * which holds no line break; a string's escapes hold none).
	 */
	if (p[0] == 's' ? !http_utf8_valid(data, n)
	                : memchr(data, '\n', n) != NULL ||
	            memchr(data, '\r', n) != NULL || strpbrk(from, "\r\n"))
		return -1;
	sse_format_line_begin(out, id, event[0] ? event : NULL);
	buf_append(out, "{\"from\":", 8);
	buf_puts(out, from);
	buf_append(out, ",\"data\":", 8);
	if (p[0] == 's') {
		event_json_string(out, data, n);
	} else {
		for (size_t at = 0; at < n; at += piece)
			buf_append(
			    out, data + at, n - at < piece ? n - at : piece);
	}
	buf_append(out, "}", 1);
	sse_format_line_end(out);
	return 0;
}

char *
event_from_json(const char *user, const char *device)
{
	json_t *doc = json_pack("{s:s, s:o}", "user", user, "device",
	    device ? json_string(device) : json_null());
	char *text = json_dumps(doc, JSON_COMPACT);

	json_decref(doc);
	return text;
}
