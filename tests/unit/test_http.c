/* Unit tests for http: percent-decoding, UTF-8, ids, media types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"
#include "http.h"

static void
test_http_percent_decode(void **state)
{
	static const struct {
		const char *in;
		bool plus;
		int rc;
		const char *out;
		size_t out_len;
	} cases[] = {
	    {"plain", false, 0, "plain", 5},
	    {"a%20b", false, 0, "a b", 3},
	    {"a+b", false, 0, "a+b", 3},
	    {"a+b", true, 0, "a b", 3},
	    {"%2F%2f", false, 0, "//", 2},
	    {"%00x", false, 0, "\0x", 2},
	    {"%", false, -1, NULL, 0},
	    {"%4", false, -1, NULL, 0},
	    {"%zz", false, -1, NULL, 0},
	    {"ok%4G", false, -1, NULL, 0},
	    {"", false, 0, "", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[32];
		size_t n = 99;
		int rc = http_percent_decode(
		    cases[i].in, strlen(cases[i].in), cases[i].plus, out, &n);

		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_int_equal(n, cases[i].out_len);
			assert_memory_equal(out, cases[i].out, n);
		}
	}
}

static void
test_http_utf8(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
	    {"ascii", true}, {"caf\xc3\xa9", true}, {"\xe2\x82\xac", true},
	    {"\xf0\x9f\x98\x80", true},
	    {"\xc3\x28", false},                  /* bad continuation */
	    {"\xc0\xaf", false},                  /* overlong '/' */
	    {"\xe0\x80\xaf", false},              /* overlong */
	    {"\xed\xa0\x80", false},              /* surrogate */
	    {"\xf4\x90\x80\x80", false},          /* past U+10FFFF */
	    {"\xff", false}, {"\xe2\x82", false}, /* truncated */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(
		    http_utf8_valid(cases[i].s, strlen(cases[i].s)),
		    cases[i].ok);
}

static void
test_http_id(void **state)
{
	char long_id[300];

	(void)state;
	assert_true(http_id_valid("bob", 3, 256));
	assert_true(http_id_valid("caf\xc3\xa9", 5, 256));
	assert_true(http_id_valid("a/b c", 5, 256));
	/* Path steps to a browser and to lighttpd: no page reaches them. */
	assert_false(http_id_valid(".", 1, 256));
	assert_false(http_id_valid("..", 2, 256));
	assert_true(http_id_valid("...", 3, 256));
	assert_true(http_id_valid(".a", 2, 256));
	/* Nor as a piece between "/" (%2F): fronts resolve those too. */
	assert_false(http_id_valid("../x", 4, 256));
	assert_false(http_id_valid("x/..", 4, 256));
	assert_false(http_id_valid("a/./b", 5, 256));
	assert_false(http_id_valid("../../../beep-signal.js", 23, 256));
	assert_true(http_id_valid("a/.../b", 7, 256));
	assert_true(http_id_valid("a/.b/", 5, 256));
	assert_true(http_id_valid("/", 1, 256));
	assert_false(http_id_valid("", 0, 256));
	assert_false(http_id_valid("a\nb", 3, 256));
	assert_false(http_id_valid("a\0b", 3, 256));
	assert_false(http_id_valid("a\x7f", 2, 256));
	assert_false(http_id_valid("a\xc2\x85", 3, 256)); /* C1: NEL */
	assert_false(http_id_valid("\xc3\x28", 2, 256));
	memset(long_id, 'x', sizeof(long_id));
	assert_true(http_id_valid(long_id, 256, 256));
	assert_false(http_id_valid(long_id, 257, 256));
}

static void
test_http_media_type(void **state)
{
	(void)state;
	assert_true(http_media_type_is("application/json", "application/json"));
	assert_true(http_media_type_is(
	    "Application/JSON; charset=utf-8", "application/json"));
	assert_true(
	    http_media_type_is(" application/json ;x=1", "application/json"));
	assert_false(
	    http_media_type_is("application/jsonp", "application/json"));
	assert_false(http_media_type_is("text/plain", "application/json"));
	assert_false(http_media_type_is(NULL, "application/json"));
}

static void
test_http_query_param(void **state)
{
	char *v;
	bool bad = true;

	(void)state;
	v = http_query_param("a=1&lastEventId=x%2Dy&b", "lastEventId", &bad);
	assert_string_equal(v, "x-y");
	assert_false(bad);
	free(v);
	v = http_query_param("envelope=1", "envelope", NULL);
	assert_string_equal(v, "1");
	free(v);
	/* Absent: NULL, not malformed. */
	bad = true;
	assert_null(http_query_param("ab=1", "a", &bad));
	assert_false(bad);
	bad = true;
	assert_null(http_query_param(NULL, "a", &bad));
	assert_false(bad);
	/* Malformed: a bad escape, or a %00 that would cut it short. */
	assert_null(http_query_param("a=%zz", "a", &bad));
	assert_true(bad);
	bad = false;
	assert_null(http_query_param("x=1&a=b%00%0A", "a", &bad));
	assert_true(bad);
	bad = false;
	assert_null(http_query_param("a=%00", "a", &bad));
	assert_true(bad);
	assert_null(http_query_param("a=%00", "a", NULL));
}

static void
test_http_status_tables(void **state)
{
	(void)state;
	for (int i = 0; i < HTTP__MAX; i++) {
		assert_true(http_status_code[i] >= 200);
		assert_non_null(http_status_text[i]);
	}
	assert_int_equal(http_status_code[HTTP_413], 413);
}

/* A client that reads only an event stream, as EventSource is. */
static void
test_http_accepts_event_stream_only(void **state)
{
	static const char *const only[] = {
	    "text/event-stream", /* EventSource's, in every browser */
	    "Text/Event-Stream",
	    " text/event-stream ",
	    "text/event-stream;charset=utf-8",
	    "text/html, text/event-stream",
	    "text/event-stream, text/plain;q=0.5",
	    ",text/event-stream,",
	    /* JSON said not to be acceptable. */
	    "text/event-stream, application/json;q=0",
	    "text/event-stream, */*; q=0.000",
	    "text/event-stream, */*;Q=0 ",
	    "text/event-stream, application/*;level=1;q=0;x=y",
	};
	static const char *const not_only[] = {
	    "text/event-stream, application/json", /* beep-signal.js */
	    "application/json, text/event-stream",
	    "text/event-stream, */*;q=0.1",
	    "text/event-stream, application/*",
	    "text/event-stream, APPLICATION/JSON ; q=0.9",
	    "*/*",
	    "",
	    "application/json",
	    "text/event-streams",
	    "text/event-strea",
	    "text/plain",
	    ",",
	    " ; ",
	    "text/event-stream, application/json;q=0.1",
	    "text/event-stream, */*;q=0.01",
	    "text/event-stream, */*;q=00x",
	    "text/event-stream;q=0",
	    "text/event-stream;q=0, */*;q=0",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++)
		assert_true(http_accepts_event_stream_only(only[i]));
	for (size_t i = 0; i < sizeof(not_only) / sizeof(not_only[0]); i++)
		assert_false(http_accepts_event_stream_only(not_only[i]));
	assert_false(http_accepts_event_stream_only(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_percent_decode),
	    cmocka_unit_test(test_http_utf8),
	    cmocka_unit_test(test_http_id),
	    cmocka_unit_test(test_http_media_type),
	    cmocka_unit_test(test_http_accepts_event_stream_only),
	    cmocka_unit_test(test_http_query_param),
	    cmocka_unit_test(test_http_status_tables),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
