/* Unit tests for sse: the framer, judged by a spec-conformant parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
