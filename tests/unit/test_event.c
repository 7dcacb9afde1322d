/* Unit tests for event: packing, and rendering plain or in an envelope. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <jansson.h>

#include "event.h"
#include "sse_parser.h"

static void
render(const struct buf *packed, bool envelope, struct sse_parser *p)
{
	struct buf out = {0};

	assert_int_equal(
	    event_render(&out, packed->data, packed->len, "7-1", envelope), 0);
	sse_parse(p, out.data, out.len);
	buf_free(&out);
}

static void
test_event_plain(void **state)
{
	struct buf packed = {0};
	struct sse_parser p;

	(void)state;
	event_pack(&packed, "a\r\nb", 4, false, "offer", NULL);
	render(&packed, false, &p);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.events[0].type, "offer");
	assert_string_equal(p.events[0].data.data, "a\nb");
	assert_string_equal(p.events[0].id, "7-1");
	sse_parser_free(&p);
	buf_free(&packed);
}

/* The sender is stamped outside the data; the data cannot forge it. */
static void
test_event_envelope(void **state)
{
	const char *forged = "{\"from\":{\"user\":\"mallory\"}}\nline";
	char *from = event_from_json("alice", NULL);
	struct buf packed = {0};
	struct sse_parser p;
	json_t *doc;

	(void)state;
	event_pack(&packed, forged, strlen(forged), false, NULL, from);
	render(&packed, true, &p);
	assert_int_equal(p.n, 1);
	doc = json_loads(p.events[0].data.data, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(doc, "from"), "user")),
	    "alice");
	assert_true(json_is_null(
	    json_object_get(json_object_get(doc, "from"), "device")));
	assert_string_equal(
	    json_string_value(json_object_get(doc, "data")), forged);
	json_decref(doc);
	sse_parser_free(&p);
	buf_free(&packed);
	free(from);

	/* JSON data stays JSON; no sender known: "from" is null. */
	event_pack(&packed, "{\"sdp\":1}", 9, true, NULL, NULL);
	render(&packed, true, &p);
	assert_string_equal(
	    p.events[0].data.data, "{\"from\":null,\"data\":{\"sdp\":1}}");
	sse_parser_free(&p);
	render(&packed, false, &p);
	assert_string_equal(p.events[0].data.data, "{\"sdp\":1}");
	sse_parser_free(&p);
	buf_free(&packed);
}

/* The service's own reset: as a stream's first reset, in no envelope. */
static void
test_event_reset(void **state)
{
	struct buf packed = {0};
	struct sse_parser p;

	(void)state;
	event_pack_reset(&packed, "messages were lost");
	for (int envelope = 0; envelope < 2; envelope++) {
		render(&packed, envelope, &p);
		assert_int_equal(p.n, 1);
		assert_string_equal(p.events[0].type, "reset");
		assert_string_equal(p.events[0].data.data,
		    "{\"reason\":\"messages were lost\"}");
		assert_string_equal(p.events[0].id, "7-1");
		sse_parser_free(&p);
	}
	buf_free(&packed);
}

static void
test_event_bad_packing(void **state)
{
	struct buf out = {0};

	(void)state;
	assert_int_equal(event_render(&out, "x", 1, "1", false), -1);
	assert_int_equal(event_render(&out, "sabc", 4, "1", false), -1);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_event_plain),
	    cmocka_unit_test(test_event_envelope),
	    cmocka_unit_test(test_event_reset),
	    cmocka_unit_test(test_event_bad_packing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
