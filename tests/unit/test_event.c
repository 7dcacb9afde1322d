/* Unit tests for event: packing, and rendering plain or in an envelope. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "event.h"
#include "filter.h"
#include "sse.h"
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

/*
 * A text's envelope is written without jansson (in pieces, see below):
 * byte for byte what jansson writes, for every ASCII byte (NUL and the
 * other controls included) and for random UTF-8 of 1 to 4 byte forms.
 */
static void
test_event_envelope_as_jansson(void **state)
{
	unsigned seed = 7;

	(void)state;
	for (int round = 0; round < 600; round++) {
		char text[256];
		size_t len = 0;
		struct buf packed = {0}, out = {0}, want = {0};
		json_t *s;
		char *enc;

		if (round < 128) {
			text[len++] = 'a';
			text[len++] = (char)round;
			text[len++] = 'z';
		} else {
			for (int k = 0; k < 40; k++) {
				unsigned r =
				    (seed = seed * 1103515245u + 12345u) >> 8;
				unsigned cp = r % 5 == 0 ? r % 0x80
				    : r % 5 == 1         ? 0x80 + r % 0x780
				    : r % 5 == 2         ? 0x800 + r % 0xD000
				                 : 0x10000 + r % 0x100000;

				if (cp < 0x80) {
					text[len++] = (char)cp;
				} else if (cp < 0x800) {
					text[len++] = (char)(0xC0 | cp >> 6);
					text[len++] = (char)(0x80 | (cp & 63));
				} else if (cp < 0x10000) {
					text[len++] = (char)(0xE0 | cp >> 12);
					text[len++] =
					    (char)(0x80 | (cp >> 6 & 63));
					text[len++] = (char)(0x80 | (cp & 63));
				} else {
					text[len++] = (char)(0xF0 | cp >> 18);
					text[len++] =
					    (char)(0x80 | (cp >> 12 & 63));
					text[len++] =
					    (char)(0x80 | (cp >> 6 & 63));
					text[len++] = (char)(0x80 | (cp & 63));
				}
			}
		}
		s = json_stringn(text, len);
		assert_non_null(s);
		enc = json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(s);
		buf_printf(
		    &want, "id: 9\ndata: {\"from\":null,\"data\":%s}\n\n", enc);
		free(enc);
		event_pack(&packed, text, len, false, NULL, NULL);
		assert_int_equal(
		    event_render(&out, packed.data, packed.len, "9", true), 0);
		if (out.len != want.len ||
		    memcmp(out.data, want.data, want.len))
			fail_msg("round %d: %s, jansson %s", round, out.data,
			    want.data);
		buf_free(&packed);
		buf_free(&out);
		buf_free(&want);
	}
}

/* A sink that keeps what is spilled, and the most held at a spill. */
struct keep_sink {
	struct buf_sink sink;
	struct buf kept;
	size_t most;
	int fail_at; /* the spill that fails (0: none) */
	int spills;
};

static void
keep_spill(struct buf *b, struct buf_sink *sink)
{
	struct keep_sink *k = (struct keep_sink *)sink;

	if (b->len > k->most)
		k->most = b->len;
	if (++k->spills == k->fail_at) {
		sink->failed = true;
		return;
	}
	buf_append(&k->kept, b->data, b->len);
}

/*
 * With a sink, a rendering that grows (line breaks, control characters in
 * an envelope, long JSON) goes out in pieces of at most the sink's size,
 * the buffer never growing past it, and the bytes are those rendered
 * whole; after a spill fails the rest is dropped, not held.
 */
static void
test_event_render_in_pieces(void **state)
{
	static char lines[5000], ctl[3000], json[6000];
	struct {
		const char *data;
		size_t len;
		bool is_json, envelope;
	} cases[] = {
	    {lines, sizeof(lines), false, false},
	    {lines, sizeof(lines), false, true},
	    {ctl, sizeof(ctl), false, true},
	    {json, sizeof(json), true, true},
	    {"short", 5, false, false},
	};

	(void)state;
	memset(lines, '\n', sizeof(lines));
	memset(ctl, 1, sizeof(ctl));
	json[0] = '"';
	memset(json + 1, 'x', sizeof(json) - 2);
	json[sizeof(json) - 1] = '"';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int fail = 0; fail < 2; fail++) {
			struct buf packed = {0}, whole = {0};
			char stack[64];
			struct buf out = BUF_ON_STACK(stack);
			struct keep_sink k = {
			    .sink = {.spill = keep_spill, .at = 256},
			    .fail_at = fail};

			out.sink = &k.sink;
			event_pack(&packed, cases[i].data, cases[i].len,
			    cases[i].is_json, "offer", "{\"user\":\"a\"}");
			assert_int_equal(
			    event_render(&whole, packed.data, packed.len, "5",
			        cases[i].envelope),
			    0);
			assert_int_equal(
			    event_render(&out, packed.data, packed.len, "5",
			        cases[i].envelope),
			    0);
			assert_true(k.most <= 256);
			assert_true(out.cap <= 256);
			if (fail) {
				assert_true(k.sink.failed || whole.len < 256);
				assert_true(out.len <= 256);
			} else {
				buf_append(&k.kept, out.data, out.len);
				assert_int_equal(k.kept.len, whole.len);
				assert_memory_equal(
				    k.kept.data, whole.data, whole.len);
			}
			buf_free(&packed);
			buf_free(&whole);
			buf_free(&out);
			buf_free(&k.kept);
		}
	}
}

static void
test_event_bad_packing(void **state)
{
	struct buf out = {0};

	(void)state;
	assert_int_equal(event_render(&out, "x", 1, "1", false), -1);
	assert_int_equal(event_render(&out, "sabc", 4, "1", false), -1);
	/* Text that is not UTF-8 has no JSON string: no envelope. */
	assert_int_equal(event_render(&out, "s\0null\0\xff", 8, "1", true), -1);
	buf_free(&out);
}

/*
 * A POST's message is packed in place, into the registry's block made to
 * event_pack_len() bytes: event_pack_to() writes exactly those bytes, the
 * fields one after another, whatever the event and sender (none, empty,
 * the longest event name) and data (empty, holding NULs).
 */
static void
test_event_pack_to_exact(void **state)
{
	static const char *const events[] = {NULL, "", "offer",
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."};
	char *from = event_from_json("al\"ice", "phone");
	const char *froms[] = {NULL, from};
	static const struct {
		const char *data;
		size_t len;
	} datas[] = {{"", 0}, {"\0", 1}, {"a\0b\r\n", 5}, {"null", 4}};

	(void)state;
	for (size_t e = 0; e < sizeof(events) / sizeof(events[0]); e++)
		for (size_t f = 0; f < 2; f++)
			for (size_t d = 0; d < sizeof(datas) / sizeof(datas[0]);
			     d++) {
				const char *ev = events[e], *fr = froms[f];
				size_t n = event_pack_len(datas[d].len, ev, fr);
				char *block = malloc(n + 8);
				struct buf want = {0}, packed = {0};

				buf_append(&want, f > 0 ? "j" : "s", 1);
				buf_puts(&want, ev ? ev : "");
				buf_append(&want, "", 1);
				buf_puts(&want, fr ? fr : "null");
				buf_append(&want, "", 1);
				buf_append(&want, datas[d].data, datas[d].len);
				assert_int_equal(n, want.len);
				memset(block, 0xa5, n + 8);
				event_pack_to(block, datas[d].data,
				    datas[d].len, f > 0, ev, fr);
				assert_memory_equal(block, want.data, n);
				for (size_t i = n; i < n + 8; i++)
					assert_int_equal(
					    (unsigned char)block[i], 0xa5);
				event_pack(&packed, datas[d].data, datas[d].len,
				    f > 0, ev, fr);
				assert_int_equal(packed.len, n);
				assert_memory_equal(packed.data, want.data, n);
				free(block);
				buf_free(&want);
				buf_free(&packed);
			}
	free(from);
}

/*
 * event_render() finds the usual "" event and "null" sender where they
 * lie: every frame renders the fields its first two NULs bound, as when
 * it searched for them, or is refused when it has not two; a sender that
 * only starts with "null", or a frame that ends inside it, is not taken
 * for it.
 */
static void
test_event_render_fields_in_place(void **state)
{
	static const struct {
		const char *frame;
		size_t len;
		int rc;
		const char *event, *data;
		size_t data_len;
	} cases[] = {
	    {"s\0null\0x", 8, 0, NULL, "x", 1},
	    {"s\0null\0", 7, 0, NULL, "", 0},
	    {"s\0null", 6, -1, NULL, NULL, 0},
	    {"s\0nul", 5, -1, NULL, NULL, 0},
	    {"s\0nul\0x", 7, 0, NULL, "x", 1},
	    {"s\0nullx\0d", 9, 0, NULL, "d", 1},
	    {"s\0null\0null\0", 12, 0, NULL, "null\0", 5},
	    {"s\0\0d", 4, 0, NULL, "d", 1},
	    {"s\0\0", 3, 0, NULL, "", 0},
	    {"s\0", 2, -1, NULL, NULL, 0},
	    {"jx\0null\0{}", 10, 0, "x", "{}", 2},
	    {"s\0\0null\0z", 9, 0, NULL, "null\0z", 6},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out = {0}, want = {0};

		assert_int_equal(event_render(&out, cases[i].frame,
		                     cases[i].len, "7-1", false),
		    cases[i].rc);
		if (cases[i].rc == 0) {
			sse_format_event(&want, "7-1", cases[i].event,
			    cases[i].data, cases[i].data_len);
			assert_int_equal(out.len, want.len);
			assert_memory_equal(out.data, want.data, want.len);
		}
		buf_free(&out);
		buf_free(&want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_event_plain),
	    cmocka_unit_test(test_event_envelope),
	    cmocka_unit_test(test_event_reset),
	    cmocka_unit_test(test_event_envelope_as_jansson),
	    cmocka_unit_test(test_event_render_in_pieces),
	    cmocka_unit_test(test_event_bad_packing),
	    cmocka_unit_test(test_event_pack_to_exact),
	    cmocka_unit_test(test_event_render_fields_in_place),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
