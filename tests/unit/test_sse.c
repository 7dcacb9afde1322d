/* Unit tests for sse: the framer, judged by a spec-conformant parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"
#include "sse.h"
#include "sse_parser.h"

struct sse_case {
	const char *data;
	size_t len;       /* 0: strlen(data) */
	const char *want; /* what e.data must be */
};

static const struct sse_case sse_cases[] = {
    {"hello", 0, "hello"},
    {"a\nb", 0, "a\nb"},
    {"a\rb", 0, "a\nb"},
    {"a\r\nb", 0, "a\nb"},
    {"a\n", 0, "a\n"},
    {"a\r", 0, "a\n"},
    {"a\r\n", 0, "a\n"},
    {"\n", 0, "\n"},
    {"\n\n", 0, "\n\n"},
    {"a\n\nb", 0, "a\n\nb"},
    {"a\r\r\nb", 0, "a\n\nb"},
    {"a\n\rb", 0, "a\n\nb"},
    {" leading space", 0, " leading space"},
    {"  two", 0, "  two"},
    {":not a comment", 0, ":not a comment"},
    {"x\n\nevent: evil\ndata: pwned", 0, "x\n\nevent: evil\ndata: pwned"},
    {"x\r\rid: 666\rretry: 1", 0, "x\n\nid: 666\nretry: 1"},
    {"caf\xc3\xa9 \xf0\x9f\x98\x80", 0, "caf\xc3\xa9 \xf0\x9f\x98\x80"},
    {"nul\0inside", 10, "nul\0inside"},
};

static void
test_sse_roundtrip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sse_cases) / sizeof(sse_cases[0]); i++) {
		const struct sse_case *c = &sse_cases[i];
		size_t len = c->len ? c->len : strlen(c->data);
		size_t want_len = c->len ? c->len : strlen(c->want);
		struct buf out = {0};
		struct sse_parser p;

		sse_format_event(&out, NULL, NULL, c->data, len);
		sse_parse(&p, out.data, out.len);
		/* Exactly one event, whatever the data held. */
		assert_int_equal(p.n, 1);
		assert_string_equal(p.events[0].type, "message");
		assert_int_equal(p.events[0].data.len, want_len);
		assert_memory_equal(p.events[0].data.data, c->want, want_len);
		assert_string_equal(p.last_id, "");
		assert_int_equal(p.retry, -1);
		sse_parser_free(&p);
		buf_free(&out);
	}
}

static void
test_sse_event_and_id(void **state)
{
	struct buf out = {0};
	struct sse_parser p;

	(void)state;
	sse_format_event(&out, "7-42", "offer", "v=0\r\no=-", 8);
	sse_format_event(&out, NULL, NULL, "second", 6);
	sse_parse(&p, out.data, out.len);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.events[0].type, "offer");
	assert_string_equal(p.events[0].data.data, "v=0\no=-");
	assert_string_equal(p.events[0].id, "7-42");
	assert_string_equal(p.events[1].type, "message");
	assert_string_equal(p.events[1].data.data, "second");
	sse_parser_free(&p);
	buf_free(&out);
}

static void
test_sse_exact_bytes(void **state)
{
	struct buf out = {0};

	(void)state;
	sse_format_event(&out, NULL, "ice", "a\r\nb", 4);
	assert_string_equal(out.data, "event: ice\ndata: a\ndata: b\n\n");
	buf_reset(&out);
	sse_format_comment(&out, NULL);
	assert_string_equal(out.data, ":\n\n");
	buf_reset(&out);
	sse_format_comment(&out, "hi");
	assert_string_equal(out.data, ": hi\n\n");
	buf_free(&out);
}

static void
test_sse_comment_and_retry_dispatch_nothing(void **state)
{
	struct buf out = {0};
	struct sse_parser p;

	(void)state;
	sse_format_comment(&out, "beep");
	sse_format_retry(&out, 2500);
	sse_parse(&p, out.data, out.len);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.comments, 1);
	assert_int_equal(p.retry, 2500);
	sse_parser_free(&p);
	buf_free(&out);
}

/*
 * An event with empty data (a stream's "position") is dispatched, data
 * "", so that every browser sets its last event id from it: Firefox and
 * WebKit do only for an event they dispatch.
 */
static void
test_sse_empty_data_dispatches(void **state)
{
	struct buf out = {0};
	struct sse_parser p;

	(void)state;
	sse_format_comment(&out, "beep");
	sse_format_event(&out, "17-42", "position", "", 0);
	assert_string_equal(
	    out.data, ": beep\n\nid: 17-42\nevent: position\ndata: \n\n");
	sse_parse(&p, out.data, out.len);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.events[0].type, "position");
	assert_int_equal(p.events[0].data.len, 0);
	assert_string_equal(p.events[0].id, "17-42");
	assert_string_equal(p.last_id, "17-42");
	sse_parser_free(&p);
	buf_free(&out);
}

/* The data lines sse_format_event() writes, split a byte at a time. */
static void
sse_reference_data(struct buf *out, const char *data, size_t len)
{
	size_t start = 0, i = 0;

	for (;;) {
		while (i < len && data[i] != '\r' && data[i] != '\n')
			i++;
		buf_append(out, "data: ", 6);
		buf_append(out, data + start, i - start);
		buf_append(out, "\n", 1);
		if (i == len)
			break;
		if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
			i++;
		start = ++i;
	}
	buf_append(out, "\n", 1);
}

/*
 * Data of CRs, LFs, NULs and a letter, in every arrangement up to 8 bytes
 * (87,381 of them): the lines are those of the byte-at-a-time split (a CR
 * at the very end included).
 */
static void
test_sse_lines_match_reference(void **state)
{
	static const char alphabet[] = {'\r', '\n', 'a', '\0'};
	char data[8];

	(void)state;
	for (size_t len = 0; len <= sizeof(data); len++) {
		for (uint32_t n = 0; n < 1u << (2 * len); n++) {
			struct buf got = {0}, want = {0};

			for (size_t i = 0; i < len; i++)
				data[i] = alphabet[(n >> (2 * i)) & 3];
			sse_format_event(&got, NULL, NULL, data, len);
			sse_reference_data(&want, data, len);
			assert_int_equal(got.len, want.len);
			assert_memory_equal(got.data, want.data, want.len);
			buf_free(&got);
			buf_free(&want);
		}
	}
}

/*
 * The WHATWG steps ("Interpreting an event stream"), transcribed plainly,
 * to judge sse_parser.h by: the whole stream in, what a browser makes of
 * it out.
 */
struct ref_event {
	struct buf type, data, id;
};

struct ref_result {
	struct ref_event ev[SSE_PARSER_MAX];
	size_t n;
	struct buf id_buf; /* the last event ID buffer */
	struct buf resume; /* EventSource's last event ID string */
	long retry;        /* the last reconnection time set, or -1 */
};

static void
ref_line(struct ref_result *r, struct buf *data, struct buf *type,
    const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	const char *name = line, *value;
	size_t nlen, vlen;

	if (len == 0) { /* a blank line: dispatch the event */
		buf_reset(&r->resume);
		buf_append(&r->resume, r->id_buf.data, r->id_buf.len);
		if (data->len == 0) {
			buf_reset(data);
			buf_reset(type);
			return;
		}
		if (data->data[data->len - 1] == '\n')
			data->len--;
		if (r->n < SSE_PARSER_MAX) {
			struct ref_event *e = &r->ev[r->n];

			if (type->len > 0)
				buf_append(&e->type, type->data, type->len);
			else
				buf_puts(&e->type, "message");
			buf_append(&e->data, data->data, data->len);
			buf_append(&e->id, r->resume.data, r->resume.len);
		}
		r->n++;
		buf_reset(data);
		buf_reset(type);
		return;
	}
	if (line[0] == ':') /* a comment */
		return;
	if (colon != NULL) {
		nlen = (size_t)(colon - line);
		value = colon + 1;
		vlen = len - nlen - 1;
		if (vlen > 0 && value[0] == ' ')
			value++, vlen--;
	} else {
		nlen = len;
		value = "";
		vlen = 0;
	}
#define REF_IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
	if (REF_IS("event")) {
		buf_reset(type);
		buf_append(type, value, vlen);
	} else if (REF_IS("data")) {
		buf_append(data, value, vlen);
		buf_append(data, "\n", 1);
	} else if (REF_IS("id")) {
		if (memchr(value, '\0', vlen) == NULL) {
			buf_reset(&r->id_buf);
			buf_append(&r->id_buf, value, vlen);
		}
	} else if (REF_IS("retry")) {
		long ms = 0;
		size_t i = 0;

		while (i < vlen && value[i] >= '0' && value[i] <= '9')
			ms = ms * 10 + (value[i++] - '0');
		if (vlen > 0 && i == vlen)
			r->retry = ms;
	}
#undef REF_IS
}

static void
ref_interpret(struct ref_result *r, const char *s, size_t len)
{
	struct buf data = {0}, type = {0}, line = {0};

	memset(r, 0, sizeof(*r));
	r->retry = -1;
	/* UTF-8 decode strips one leading BOM. */
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3, len -= 3;
	/* end-of-line: CRLF, CR or LF; a last line with none is no line. */
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			ref_line(r, &data, &type, line.data ? line.data : "",
			    line.len);
			buf_reset(&line);
			if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
				i++;
		} else {
			buf_append(&line, s + i, 1);
		}
	}
	buf_free(&data);
	buf_free(&type);
	buf_free(&line);
}

static void
ref_free(struct ref_result *r)
{
	for (size_t i = 0; i < SSE_PARSER_MAX; i++) {
		buf_free(&r->ev[i].type);
		buf_free(&r->ev[i].data);
		buf_free(&r->ev[i].id);
	}
	buf_free(&r->id_buf);
	buf_free(&r->resume);
}

static bool
same_bytes(const char *a, size_t alen, const struct buf *b)
{
	return alen == b->len && (alen == 0 || memcmp(a, b->data, alen) == 0);
}

/* NULL when sse_parse() agrees with the reference, else what differs. */
static const char *
sse_parse_differs(const char *s, size_t len)
{
	struct sse_parser p;
	struct ref_result r;
	const char *what = NULL;

	sse_parse(&p, s, len);
	ref_interpret(&r, s, len);
	if (r.n > SSE_PARSER_MAX)
		what = NULL; /* more than the parser keeps: not judged */
	else if (p.n != r.n)
		what = "the number of events";
	for (size_t i = 0; what == NULL && i < p.n && i < r.n; i++) {
		if (!same_bytes(
		        p.events[i].type, p.events[i].type_len, &r.ev[i].type))
			what = "an event's type";
		else if (!same_bytes(p.events[i].data.data,
		             p.events[i].data.len, &r.ev[i].data))
			what = "an event's data";
		else if (!same_bytes(p.events[i].id, strlen(p.events[i].id),
		             &r.ev[i].id))
			what = "an event's lastEventId";
	}
	if (what == NULL &&
	    !same_bytes(p.last_id, strlen(p.last_id), &r.id_buf))
		what = "the last event ID buffer";
	if (what == NULL &&
	    !same_bytes(p.resume_id, strlen(p.resume_id), &r.resume))
		what = "the id a reconnection sends";
	if (what == NULL && p.retry != r.retry)
		what = "retry";
	sse_parser_free(&p);
	ref_free(&r);
	return what;
}

static void
sse_fail_on(const char *what, const char *s, size_t len)
{
	char shown[512];
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < sizeof(shown); i++) {
		unsigned char c = (unsigned char)s[i];

		o += (size_t)snprintf(shown + o, sizeof(shown) - o,
		    c >= 0x20 && c < 0x7f && c != '\\' ? "%c" : "\\x%02x", c);
	}
	shown[o] = '\0';
	print_message("\"%s\": %s differs from the standard's\n", shown, what);
	fail();
}

/* The reference on the standard's examples and the corners it judges. */
static void
test_sse_reference_examples(void **state)
{
	static const char ex[] =
	    ": test stream\n\ndata: first event\nid: 1\n\n"
	    "data:second event\nid\n\ndata:  third event\n";
	static const char nul_type[] = "\xef\xbb\xbf"
	                               "event: a\0b\ndata\n\ndata\0:x\n\n";
	struct ref_result r;

	(void)state;
	ref_interpret(&r, ex, sizeof(ex) - 1);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.ev[0].data.data, "first event");
	assert_string_equal(r.ev[0].id.data, "1");
	assert_string_equal(r.ev[1].data.data, "second event");
	assert_int_equal(r.ev[1].id.len, 0);
	ref_free(&r);
	ref_interpret(&r, nul_type, sizeof(nul_type) - 1);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].type.len, 3);
	assert_memory_equal(r.ev[0].type.data, "a\0b", 3);
	assert_int_equal(r.ev[0].data.len, 0);
	ref_free(&r);
	ref_interpret(&r, "id: 5\n\nid: 6\nretry: 1x\nretry: 12\n", 33);
	assert_string_equal(r.id_buf.data, "6");
	assert_string_equal(r.resume.data, "5");
	assert_int_equal(r.retry, 12);
	ref_free(&r);
	ref_interpret(&r,
	    "\xef\xbb\xbf\xef\xbb\xbf"
	    "data\n\n",
	    12);
	assert_int_equal(r.n, 0);
	ref_free(&r);
}

/* The pieces of the streams: field names whole, separators, line ends,
 * NUL, a BOM, a digit, a letter. */
static const struct {
	const char *s;
	size_t len;
} sse_tokens[] = {
    {"data", 4},
    {"id", 2},
    {"event", 5},
    {"retry", 5},
    {"e", 1},
    {":", 1},
    {" ", 1},
    {"\r", 1},
    {"\n", 1},
    {"\0", 1},
    {"\xef\xbb\xbf", 3},
    {"9", 1},
};
#define SSE_NTOKENS (sizeof(sse_tokens) / sizeof(sse_tokens[0]))

/*
 * sse_parser.h against the reference: every stream of up to 5 pieces
 * (271,453 of them), then random longer ones: the events (type, data,
 * lastEventId), the last event ID buffer, the id a reconnection sends,
 * retry.
 */
static void
test_sse_parser_matches_standard(void **state)
{
	static const char *const more[] = {
	    "data: ",
	    "id: ",
	    "event: ",
	    "retry: ",
	    "\r\n",
	    "\n\n",
	    "x",
	    "9",
	};
	char s[256];
	uint32_t x = 2463534242u;

	(void)state;
	for (size_t n = 0; n <= 5; n++) {
		size_t total = 1;

		for (size_t k = 0; k < n; k++)
			total *= SSE_NTOKENS;
		for (size_t code = 0; code < total; code++) {
			size_t len = 0, c = code;
			const char *what;

			for (size_t k = 0; k < n; k++, c /= SSE_NTOKENS) {
				memcpy(s + len, sse_tokens[c % SSE_NTOKENS].s,
				    sse_tokens[c % SSE_NTOKENS].len);
				len += sse_tokens[c % SSE_NTOKENS].len;
			}
			if ((what = sse_parse_differs(s, len)) != NULL)
				sse_fail_on(what, s, len);
		}
	}
	for (int round = 0; round < 50000; round++) {
		size_t len = 0, n;
		const char *what;

		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		n = x % 30;
		for (size_t k = 0; k < n; k++) {
			const char *t;
			size_t tlen;

			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			if (x % 3 == 0) {
				t = more[(x / 3) %
				    (sizeof(more) / sizeof(more[0]))];
				tlen = strlen(t);
			} else {
				t = sse_tokens[(x / 3) % SSE_NTOKENS].s;
				tlen = sse_tokens[(x / 3) % SSE_NTOKENS].len;
			}
			memcpy(s + len, t, tlen);
			len += tlen;
		}
		if ((what = sse_parse_differs(s, len)) != NULL)
			sse_fail_on(what, s, len);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sse_roundtrip),
	    cmocka_unit_test(test_sse_event_and_id),
	    cmocka_unit_test(test_sse_exact_bytes),
	    cmocka_unit_test(test_sse_comment_and_retry_dispatch_nothing),
	    cmocka_unit_test(test_sse_empty_data_dispatches),
	    cmocka_unit_test(test_sse_lines_match_reference),
	    cmocka_unit_test(test_sse_reference_examples),
	    cmocka_unit_test(test_sse_parser_matches_standard),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
