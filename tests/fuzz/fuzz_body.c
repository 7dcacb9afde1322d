/*
 * Form and JSON body decoding: a POST body through body_decode() on the
 * production worker stack, then what it returns through event_pack() and
 * event_render(), as posted and in an envelope, judged by the WHATWG
 * event-stream parser: one event, its name, its id, and the data exactly
 * as decoded (line breaks as LF).
 *
 * And json_fast against jansson: every body json_fast reads is one jansson
 * reads the same way, to the same string or the same compact text.
 *
 * Input: one byte picks the Content-Type, whether the sender is known and
 * the nesting limit (BEEP_MAX_DEPTH); the rest is the body.
 */
#include <jansson.h>

#include "body.h"
#include "depth.h"
#include "event.h"
#include "fuzz.h"
#include "json_fast.h"
#include "sse_parser.h"

#define ID "1700000000000-42"

struct job {
	const char *ct;
	const char *body;
	size_t len;
	bool sender;
	unsigned max_depth; /* BEEP_MAX_DEPTH: 1 to 31, or 32 */
};

/* The one event rendered from packed message p, parsed back. */
static void
check_render(const char *p, size_t plen, const struct body_msg *msg,
    const char *from, bool envelope)
{
	struct buf out = {0};
	struct sse_parser sp;
	const struct sse_parsed *e;

	FUZZ_CHECK(event_render(&out, p, plen, ID, envelope) == 0);
	sse_parse(&sp, out.data, out.len);
	FUZZ_CHECK(sp.n == 1 && sp.retry == -1 && sp.comments == 0);
	e = &sp.events[0];
	FUZZ_CHECK(strcmp(e->type, msg->event ? msg->event : "message") == 0);
	FUZZ_CHECK(strcmp(e->id, ID) == 0);
	/* Nothing after the event's blank line. */
	FUZZ_CHECK(
	    out.len >= 2 && memcmp(out.data + out.len - 2, "\n\n", 2) == 0);
	if (!envelope) {
		size_t n;
		char *want = fuzz_lf(msg->data, msg->data_len, &n);

		FUZZ_CHECK(e->data.len == n);
		FUZZ_CHECK(memcmp(e->data.data, want, n) == 0);
		free(want);
	} else {
		json_t *doc =
		    json_loadb(e->data.data, e->data.len, JSON_ALLOW_NUL, NULL);
		json_t *d = json_object_get(doc, "data");
		json_t *f = json_object_get(doc, "from");
		json_t *want_from =
		    json_loads(from ? from : "null", JSON_DECODE_ANY, NULL);

		/* One line: an envelope never needs a second data field. */
		FUZZ_CHECK(memchr(e->data.data, '\n', e->data.len) == NULL);
		FUZZ_CHECK(json_is_object(doc) && json_object_size(doc) == 2);
		FUZZ_CHECK(json_equal(f, want_from));
		if (msg->is_json) {
			json_t *want = json_loadb(msg->data, msg->data_len,
			    JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

			FUZZ_CHECK(want != NULL && json_equal(d, want));
			json_decref(want);
		} else {
			FUZZ_CHECK(json_is_string(d));
			FUZZ_CHECK(json_string_length(d) == msg->data_len);
			FUZZ_CHECK(memcmp(json_string_value(d), msg->data,
			               msg->data_len) == 0);
		}
		json_decref(want_from);
		json_decref(doc);
	}
	sse_parser_free(&sp);
	buf_free(&out);
}

/*
 * s, as json_fast read it, is jansson's string v, or v's compact text as
 * jansson writes it, byte for byte.
 */
static void
check_fast_str(const struct json_fast_str *s, json_t *v)
{
	char *got = malloc(s->decoded + 1);

	json_fast_copy(s, got);
	FUZZ_CHECK(got[s->decoded] == '\0');
	if (s->text) {
		char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		FUZZ_CHECK(v != NULL && !json_is_string(v) && !json_is_null(v));
		FUZZ_CHECK(strlen(want) == s->decoded);
		FUZZ_CHECK(memcmp(got, want, s->decoded) == 0);
		free(want);
	} else {
		FUZZ_CHECK(
		    json_is_string(v) && json_string_length(v) == s->decoded);
		FUZZ_CHECK(memcmp(got, json_string_value(v), s->decoded) == 0);
	}
	free(got);
}

/*
 * What json_fast reads, jansson reads as the same object, and within
 * max_depth: the depth check it stands in for would pass it too (at the
 * default 32 alone, json_fast's own 16 levels would hide a wrong bound).
 */
static void
check_fast(const char *body, size_t len, unsigned max_depth)
{
	struct json_fast f;
	json_t *doc;

	if (!json_fast_scan(body, len, max_depth, &f))
		return;
	FUZZ_CHECK(depth_json_within(body, len, max_depth));
	doc = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
	FUZZ_CHECK(json_is_object(doc));
	FUZZ_CHECK(json_object_size(doc) ==
	    1u + (f.event.at != NULL) + (f.key.at != NULL));
	check_fast_str(&f.data, json_object_get(doc, "data"));
	if (f.event.at != NULL) {
		FUZZ_CHECK(!f.event.escaped && !f.event.text);
		check_fast_str(&f.event, json_object_get(doc, "event"));
	}
	if (f.key.at != NULL) {
		FUZZ_CHECK(!f.key.escaped && !f.key.text);
		check_fast_str(&f.key, json_object_get(doc, "key"));
	}
	json_decref(doc);
}

static void
run(void *arg)
{
	const struct job *j = arg;
	struct body_msg msg;
	const char *why = NULL;
	enum http_status st;
	struct buf packed = {0};
	char *from = NULL;

	check_fast(j->body, j->len, j->max_depth);
	st = body_decode(j->ct, j->body, j->len, j->max_depth, &msg, &why);
	if (st != HTTP_200) {
		FUZZ_CHECK(st == HTTP_400 || st == HTTP_415);
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		FUZZ_CHECK(msg.data == NULL && msg.event == NULL);
		return;
	}
	FUZZ_CHECK(msg.data != NULL && msg.data_len > 0);
	FUZZ_CHECK(msg.data[msg.data_len] == '\0');
	FUZZ_CHECK(msg.event == NULL ||
	    body_event_valid(msg.event, strlen(msg.event)));
	/* Text is UTF-8 (an envelope makes a JSON string of it). */
	FUZZ_CHECK(msg.is_json || http_utf8_valid(msg.data, msg.data_len));
	if (j->sender)
		from = event_from_json("al\"ice", "ph\\one");
	event_pack(
	    &packed, msg.data, msg.data_len, msg.is_json, msg.event, from);
	check_render(packed.data, packed.len, &msg, from, false);
	check_render(packed.data, packed.len, &msg, from, true);
	buf_free(&packed);
	free(from);
	body_msg_clear(&msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* As the server parses: jansson's blocks in the message (body_init()). */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	body_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {
	    "application/json",
	    "application/x-www-form-urlencoded",
	    "Application/JSON; charset=utf-8",
	    " application/x-www-form-urlencoded ;charset=UTF-8",
	};
	struct job j;

	if (size < 1)
		return 0;
	j.ct = types[data[0] % 4];
	j.sender = data[0] & 4;
	/* Small depths too, where the body's limit is json_fast's bound. */
	j.max_depth = data[0] >> 3 != 0 ? (unsigned)(data[0] >> 3) : 32;
	/* A copy of exactly the body, so a read past it is caught. */
	j.len = size - 1;
	j.body = j.len ? memcpy(malloc(j.len), data + 1, j.len) : "";
	fuzz_on_worker_stack(run, &j);
	if (j.len)
		free((void *)j.body);
	return 0;
}
