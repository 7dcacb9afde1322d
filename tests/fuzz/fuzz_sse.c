/*
 * The SSE framer as a round trip: frame arbitrary bytes, with an arbitrary
 * id and event name, by sse_format_event() and by the event_pack() /
 * event_render() path the service uses; parse the stream with the WHATWG
 * algorithm (tests/unit/sse_parser.h); the data, id and event come back
 * exactly (line breaks as LF), and no other event or field appears: the
 * event after it arrives intact.
 *
 * The parser works on bytes.  A browser first decodes the stream as UTF-8,
 * replacing malformed sequences; that never joins a CR, LF or ':' to its
 * neighbours, so the fields it sees are the ones seen here.
 *
 * The packing a POST writes in place (event_pack_len() bytes, then
 * event_pack_to() into a block of exactly that size: the registry's) is
 * checked against the fields appended one by one, and the data taken as
 * a frame as it is (a cluster node's, from Redis) renders the fields a
 * search for its first two NULs finds, or nothing: event_render() finds
 * the usual "" event and "null" sender where they lie, not by that search.
 *
 * Input: a flag byte, then id, NUL, event, NUL, data (all the rest).
 *   bit 0: with an id; bit 1: with an event name; bit 2: with a sender;
 *   bit 3: pack the data as JSON when it parses as JSON.
 */
#include <jansson.h>

#include "body.h"
#include "event.h"
#include "fuzz.h"
#include "http.h"
#include "sse.h"
#include "sse_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * What the framer's callers guarantee of an id or event name: no CR, LF
 * or NUL; and short enough for the test parser's buffers.
 */
static void
field_clean(char *s)
{
	size_t n = 0;

	for (size_t i = 0; s[i] != '\0' && n < 100; i++)
		if (s[i] != '\r' && s[i] != '\n')
			s[n++] = s[i];
	s[n] = '\0';
}

/*
 * The packed frame appended field by field (event_pack() before it wrote
 * in place): what event_pack_len() must count and event_pack_to() write.
 */
static void
pack_reference(struct buf *out, const char *data, size_t len, bool is_json,
    const char *event, const char *from_json)
{
	buf_append(out, is_json ? "j" : "s", 1);
	buf_puts(out, event ? event : "");
	buf_append(out, "", 1);
	buf_puts(out, from_json ? from_json : "null");
	buf_append(out, "", 1);
	buf_append(out, data, len);
}

/* The packing in place, into a block of exactly its size, as packed. */
static void
check_pack_to(const struct buf *packed, const char *data, size_t len,
    bool is_json, const char *event, const char *from_json)
{
	struct buf want = {0};
	size_t n = event_pack_len(len, event, from_json);
	char *block = xmalloc(n > 0 ? n : 1);

	pack_reference(&want, data, len, is_json, event, from_json);
	FUZZ_CHECK(n == want.len);
	event_pack_to(block, data, len, is_json, event, from_json);
	FUZZ_CHECK(memcmp(block, want.data, n) == 0);
	FUZZ_CHECK(packed->len == want.len);
	FUZZ_CHECK(memcmp(packed->data, want.data, n) == 0);
	free(block);
	buf_free(&want);
}

/*
 * Any bytes as a frame: rendered plain, the fields found by searching for
 * the first two NULs (event_render() before its fast path), or refused.
 */
static void
check_raw_frame(const char *p, size_t len)
{
	struct buf out = {0}, want = {0};
	const char *event, *from, *data, *end = p + len;
	int rc = event_render(&out, p, len, "7-1", false);

	if (len < 3 || (p[0] != 's' && p[0] != 'j' && p[0] != 'r')) {
		FUZZ_CHECK(rc == -1);
		goto out;
	}
	event = p + 1;
	from = memchr(event, '\0', (size_t)(end - event));
	data = from != NULL ? memchr(from + 1, '\0', (size_t)(end - from - 1))
	                    : NULL;
	if (data == NULL) {
		FUZZ_CHECK(rc == -1);
		goto out;
	}
	data++;
	FUZZ_CHECK(rc == 0);
	sse_format_event(
	    &want, "7-1", event[0] ? event : NULL, data, (size_t)(end - data));
	FUZZ_CHECK(out.len == want.len);
	FUZZ_CHECK(memcmp(out.data, want.data, want.len) == 0);
out:
	buf_free(&out);
	buf_free(&want);
}

/* Parse stream and check the first event, then the sentinel after it. */
static void
check_stream(const struct buf *stream, const char *id, const char *event,
    const char *want, size_t want_len)
{
	struct sse_parser p;

	sse_parse(&p, stream->data, stream->len);
	FUZZ_CHECK(p.n == 2);
	FUZZ_CHECK(p.retry == -1);
	FUZZ_CHECK(p.comments == 1);
	FUZZ_CHECK(strcmp(p.events[0].type,
	               event && event[0] ? event : "message") == 0);
	FUZZ_CHECK(strcmp(p.events[0].id, id ? id : "") == 0);
	FUZZ_CHECK(p.events[0].data.len == want_len);
	FUZZ_CHECK(memcmp(p.events[0].data.data, want, want_len) == 0);
	FUZZ_CHECK(strcmp(p.events[1].type, "sentinel") == 0);
	FUZZ_CHECK(strcmp(p.events[1].id, "s-1") == 0);
	FUZZ_CHECK(strcmp(p.events[1].data.data, "end") == 0);
	sse_parser_free(&p);
}

static void
frame(struct buf *out, const char *id, const char *event, const char *d,
    size_t len)
{
	sse_format_comment(out, "beep-signal");
	sse_format_event(out, id, event, d, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = {0}, packed = {0};
	char *id, *event, *d, *lf, *from = NULL, *json = NULL;
	const char *ev, *payload;
	size_t len, lf_len, payload_len;
	uint8_t flags;
	bool is_json = false;
	int rc;

	if (size < 1)
		return 0;
	flags = data[0];
	data++, size--;
	id = fuzz_take(&data, &size, '\0', NULL);
	event = fuzz_take(&data, &size, '\0', NULL);
	d = xmemdup(data, size);
	len = size;
	field_clean(id);
	field_clean(event);
	lf = fuzz_lf(d, len, &lf_len);

	/* The framer itself. */
	frame(&out, flags & 1 ? id : NULL, flags & 2 ? event : NULL, d, len);
	sse_format_event(&out, "s-1", "sentinel", "end", 3);
	check_stream(
	    &out, flags & 1 ? id : NULL, flags & 2 ? event : NULL, lf, lf_len);
	buf_reset(&out);

	/* What a POST leaves in the registry, rendered for a stream. */
	ev = flags & 2 && body_event_valid(event, strlen(event)) ? event : NULL;
	if (flags & 4)
		from = event_from_json("al\"ice", id[0] ? id : NULL);
	payload = d;
	payload_len = len;
	if (flags & 8) {
		json_t *j =
		    json_loadb(d, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

		if (j != NULL) {
			json = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
			payload = json;
			payload_len = strlen(json);
			is_json = true;
		}
		json_decref(j);
	}
	event_pack(&packed, payload, payload_len, is_json, ev, from);
	check_pack_to(&packed, payload, payload_len, is_json, ev, from);
	check_raw_frame(d, len);

	sse_format_comment(&out, "beep-signal");
	FUZZ_CHECK(
	    event_render(&out, packed.data, packed.len, "7-1", false) == 0);
	sse_format_event(&out, "s-1", "sentinel", "end", 3);
	free(lf);
	lf = fuzz_lf(payload, payload_len, &lf_len);
	check_stream(&out, "7-1", ev, lf, lf_len);
	buf_reset(&out);

	/* In an envelope: JSON text on one line, the data inside it. */
	sse_format_comment(&out, "beep-signal");
	rc = event_render(&out, packed.data, packed.len, "7-1", true);
	if (!is_json && !http_utf8_valid(payload, payload_len)) {
		/* Text that is not UTF-8 has no JSON string: refused. */
		FUZZ_CHECK(rc == -1);
		FUZZ_CHECK(strcmp(out.data, ": beep-signal\n\n") == 0);
	} else {
		struct sse_parser p;
		json_t *doc, *want_from;

		FUZZ_CHECK(rc == 0);
		sse_format_event(&out, "s-1", "sentinel", "end", 3);
		sse_parse(&p, out.data, out.len);
		FUZZ_CHECK(p.n == 2 && p.retry == -1 && p.comments == 1);
		FUZZ_CHECK(strcmp(p.events[0].type, ev ? ev : "message") == 0);
		FUZZ_CHECK(strcmp(p.events[0].id, "7-1") == 0);
		FUZZ_CHECK(strcmp(p.events[1].data.data, "end") == 0);
		FUZZ_CHECK(memchr(p.events[0].data.data, '\n',
		               p.events[0].data.len) == NULL);
		doc = json_loadb(p.events[0].data.data, p.events[0].data.len,
		    JSON_ALLOW_NUL, NULL);
		want_from =
		    json_loads(from ? from : "null", JSON_DECODE_ANY, NULL);
		FUZZ_CHECK(json_is_object(doc) && json_object_size(doc) == 2);
		FUZZ_CHECK(json_equal(json_object_get(doc, "from"), want_from));
		if (is_json) {
			json_t *want = json_loadb(payload, payload_len,
			    JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

			FUZZ_CHECK(
			    json_equal(json_object_get(doc, "data"), want));
			json_decref(want);
		} else {
			json_t *s = json_object_get(doc, "data");

			FUZZ_CHECK(json_is_string(s) &&
			    json_string_length(s) == payload_len &&
			    memcmp(json_string_value(s), payload,
			        payload_len) == 0);
		}
		json_decref(want_from);
		json_decref(doc);
		sse_parser_free(&p);
	}

	buf_free(&out);
	buf_free(&packed);
	free(json);
	free(from);
	free(lf);
	free(d);
	free(event);
	free(id);
	return 0;
}
