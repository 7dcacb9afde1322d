/* Unit tests for body: JSON and form decoding, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "body.h"
#include "filter.h"
#include "json_fast.h"
#include "server.h"

#define JSON "application/json"
#define FORM "application/x-www-form-urlencoded"

static const struct {
	const char *ct;
	const char *body;
	enum http_status status;
	const char *data;
	const char *event;
} body_cases[] = {
    {JSON, "{\"data\":\"hi\"}", HTTP_200, "hi", NULL},
    {JSON "; charset=utf-8", "{\"data\":\"a\\nb\"}", HTTP_200, "a\nb", NULL},
    {JSON, "{\"data\":{\"sdp\":\"v=0\",\"n\":[1,2]}}", HTTP_200,
        "{\"sdp\":\"v=0\",\"n\":[1,2]}", NULL},
    {JSON, "{\"data\":42}", HTTP_200, "42", NULL},
    {JSON, "{\"data\":false}", HTTP_200, "false", NULL},
    /*
     * Past 2^63 - 1 or a double's range: refused (as doubles every integer
     * would be written back as one, and a 64-bit id lose digits).
     */
    {JSON, "{\"data\":9223372036854775807}", HTTP_200, "9223372036854775807",
        NULL},
    {JSON, "{\"data\":9223372036854775808}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":{\"id\":12345678901234567890,\"n\":5}}", HTTP_400, NULL,
        NULL},
    {JSON, "{\"data\":1e400}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":[1,-1e999]}", HTTP_400, NULL, NULL},
    /* Below a double's least: zero, as JSON.parse() reads it. */
    {JSON, "{\"data\":1e-400}", HTTP_200, "0.0", NULL},
    {JSON, "{\"data\":[]}", HTTP_200, "[]", NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"ice.candidate-1_\"}", HTTP_200, "x",
        "ice.candidate-1_"},
    {JSON, "{\"data\":\"x\",\"event\":null}", HTTP_200, "x", NULL},
    {JSON, "{\"data\":\"\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":null}", HTTP_400, NULL, NULL},
    {JSON, "{}", HTTP_400, NULL, NULL},
    {JSON, "[1]", HTTP_400, NULL, NULL},
    {JSON, "\"data\"", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":", HTTP_400, NULL, NULL},
    {JSON, "", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"bad event\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"a\\nb\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":7}", HTTP_400, NULL, NULL},
    /* The service's own events: a poster could end or reset a stream. */
    {JSON, "{\"data\":\"x\",\"event\":\"replaced\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":{},\"event\":\"reset\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"Reset\"}", HTTP_200, "x", "Reset"},
    {JSON, "{\"data\":\"x\",\"event\":\"resets\"}", HTTP_200, "x", "resets"},
    {JSON, "{\"data\":\"x\",\"event\":\"replace\"}", HTTP_200, "x", "replace"},
    /* EventSource's own: onerror and onopen would fire. */
    {JSON, "{\"data\":\"x\",\"event\":\"error\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"open\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"errors\"}", HTTP_200, "x", "errors"},
    {JSON, "{\"data\":\"x\",\"event\":\"message\"}", HTTP_200, "x", "message"},
    {FORM, "data=hello+world", HTTP_200, "hello world", NULL},
    {FORM, "event=answer&data=a%0D%0Ab", HTTP_200, "a\r\nb", "answer"},
    {FORM, "data=first&data=second", HTTP_200, "first", NULL},
    {FORM, "x=1&data=caf%C3%A9&y", HTTP_200, "caf\xc3\xa9", NULL},
    {FORM, "data=", HTTP_400, NULL, NULL},
    {FORM, "data", HTTP_400, NULL, NULL},
    {FORM, "other=1", HTTP_400, NULL, NULL},
    {FORM, "data=%C3%28", HTTP_400, NULL, NULL},
    {FORM, "data=%zz", HTTP_400, NULL, NULL},
    {FORM, "data=x&event=no%20spaces", HTTP_400, NULL, NULL},
    {FORM, "data=x&event=replaced", HTTP_400, NULL, NULL},
    {FORM, "event=re%73et&data=x", HTTP_400, NULL, NULL},
    {"text/plain", "data=x", HTTP_415, NULL, NULL},
    {NULL, "{\"data\":\"x\"}", HTTP_415, NULL, NULL},
    {"application/jsonx", "{\"data\":\"x\"}", HTTP_415, NULL, NULL},
};

/* body_decode() of JSON text b at the default depth; why is the reason. */
static enum http_status
decode_json(const char *b, struct body_msg *m, const char **why)
{
	return body_decode(JSON, b, strlen(b), 32, m, why);
}

/* m holds data (no NUL in it) and event (or none); then it is cleared. */
static void
assert_decoded(struct body_msg *m, const char *data, const char *event)
{
	assert_int_equal(m->data_len, strlen(data));
	assert_string_equal(m->data, data);
	if (event)
		assert_string_equal(m->event, event);
	else
		assert_null(m->event);
	body_msg_clear(m);
}

static void
test_body_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]);
	     i++) {
		struct body_msg m;
		const char *why = NULL;
		enum http_status st =
		    body_decode(body_cases[i].ct, body_cases[i].body,
		        strlen(body_cases[i].body), 32, &m, &why);

		assert_int_equal(st, body_cases[i].status);
		if (st != HTTP_200) {
			assert_non_null(why);
			assert_null(m.data);
			continue;
		}
		assert_decoded(&m, body_cases[i].data, body_cases[i].event);
	}
}

/*
 * A body that starts with a UTF-8 byte order mark (what .NET's
 * Encoding.UTF8 and Windows tools write; RFC 8259 8.1: a parser MAY
 * ignore it).  The Express service this one replaces read bodies with
 * body-parser, whose decoder (iconv-lite) strips a leading BOM, so those
 * clients' posts were delivered; here the JSON one is 400 "malformed
 * JSON" and the form one 400 "no data supplied" (its first key is then
 * "\xEF\xBB\xBFdata").
 */
static void
test_body_leading_bom(void **state)
{
	static const struct {
		const char *ct, *body;
	} cases[] = {
	    {JSON, "\xEF\xBB\xBF{\"data\":\"hi\"}"},
	    {JSON, "\xEF\xBB\xBF{\"data\":{\"type\":\"offer\"}}"},
	    {FORM,
	        "\xEF\xBB\xBF"
	        "data=hi"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct body_msg m;
		const char *why = NULL;
		enum http_status st = body_decode(cases[i].ct, cases[i].body,
		    strlen(cases[i].body), 32, &m, &why);

		if (st != HTTP_200)
			fail_msg("case %zu (%s): %d %s", i, cases[i].ct,
			    http_status_code[st], why ? why : "");
		body_msg_clear(&m);
	}
}

static void
test_body_nul_in_json_string(void **state)
{
	const char *b = "{\"data\":\"a\\u0000b\"}";
	struct body_msg m;
	const char *why;

	(void)state;
	assert_int_equal(decode_json(b, &m, &why), HTTP_200);
	assert_int_equal(m.data_len, 3);
	assert_memory_equal(m.data, "a\0b", 3);
	body_msg_clear(&m);
}

/*
 * Valid JSON that jansson cannot hold is refused saying why, not as
 * "malformed JSON" (what a client then looks for is a syntax error it
 * does not have): a lone UTF-16 surrogate, which JSON.parse() reads and
 * JSON.stringify() writes for a string cut inside a surrogate pair (an
 * emoji), and U+0000 in an object's key.  A pair, and a backslash
 * escaped before "ud800", are text as ever.  And a body that is not UTF-8
 * (a client that writes Latin-1) says so, as form data does.
 */
static void
test_body_unicode_jansson_cannot_hold(void **state)
{
	static const struct {
		const char *body;
		const char *why; /* a piece of the reason; NULL: 200 */
		const char *data;
	} cases[] = {
	    {"{\"data\":\"hi \\ud83d\"}", "surrogate", NULL},
	    {"{\"data\":\"\\ude00\"}", "surrogate", NULL},
	    {"{\"data\":\"\\udc00\\ud800\"}", "surrogate", NULL},
	    {"{\"data\":\"\\ud800\\u0041\"}", "surrogate", NULL},
	    {"{\"data\":{\"text\":\"\\uD83D\"}}", "surrogate", NULL},
	    {"{\"data\":{\"\\ud800\":1}}", "surrogate", NULL},
	    {"{\"data\":\"x\",\"a\\u0000b\":1}", "U+0000", NULL},
	    {"{\"data\":{\"\\u0000\":1}}", "U+0000", NULL},
	    /* Not a surrogate: a pair, an escaped backslash. */
	    {"{\"data\":\"\\ud83d\\ude00\"}", NULL, "\xf0\x9f\x98\x80"},
	    {"{\"data\":\"\\\\ud800\"}", NULL, "\\ud800"},
	    /* Not UTF-8 (Latin-1's é, an encoded surrogate): said so. */
	    {"{\"data\":\"caf\xe9\"}", "UTF-8", NULL},
	    {"{\"data\":\"\xed\xa0\x80\"}", "UTF-8", NULL},
	    /* Still malformed, said so. */
	    {"{\"data\":\"\\ud83d\\ude00\" x}", "malformed JSON", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct body_msg m;
		const char *why = NULL;
		enum http_status st = decode_json(cases[i].body, &m, &why);

		if (cases[i].why == NULL) {
			if (st != HTTP_200)
				fail_msg("case %zu: %d %s", i,
				    http_status_code[st], why ? why : "");
			assert_decoded(&m, cases[i].data, NULL);
			continue;
		}
		if (st != HTTP_400 || why == NULL ||
		    strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu: %d \"%s\", not 400 with \"%s\"", i,
			    http_status_code[st], why ? why : "", cases[i].why);
		assert_null(m.data);
	}
}

/* Nesting exactly at the limit parses; one level more is refused. */
static void
test_body_depth_limit(void **state)
{
	char b[256];
	struct body_msg m;
	const char *why;
	size_t n = 0;

	(void)state;
	n += (size_t)sprintf(b + n, "{\"data\":");
	for (int i = 0; i < 3; i++)
		b[n++] = '[';
	for (int i = 0; i < 3; i++)
		b[n++] = ']';
	b[n++] = '}';
	b[n] = '\0';
	/* depth 4: the object and three arrays */
	assert_int_equal(body_decode(JSON, b, n, 4, &m, &why), HTTP_200);
	assert_string_equal(m.data, "[[[]]]");
	body_msg_clear(&m);
	assert_int_equal(body_decode(JSON, b, n, 3, &m, &why), HTTP_400);
	/* Brackets inside strings do not count. */
	strcpy(b, "{\"data\":\"[[[[[[\\\"]]]]\"}");
	assert_int_equal(
	    body_decode(JSON, b, strlen(b), 1, &m, &why), HTTP_200);
	body_msg_clear(&m);
}

struct deep_body {
	const char *body;
	size_t len;
	unsigned max;
	enum http_status status;
	size_t data_len;
};

static void *
deep_body_run(void *arg)
{
	struct deep_body *d = arg;
	volatile char callers[8 * 1024]; /* the worker's frames above */
	struct body_msg m;
	const char *why;

	callers[0] = 0;
	d->status = body_decode(JSON, d->body, d->len, d->max, &m, &why);
	d->data_len = m.data_len;
	body_msg_clear(&m);
	(void)callers[0];
	return NULL;
}

/* Decode body on a thread with the workers' stack size. */
static enum http_status
decode_on_worker_stack(const char *body, unsigned max, size_t *data_len)
{
	struct deep_body d = {.body = body, .len = strlen(body), .max = max};
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	assert_int_equal(
	    pthread_attr_setstacksize(&attr, SERVER_STACK_SIZE), 0);
	assert_int_equal(pthread_create(&t, &attr, deep_body_run, &d), 0);
	pthread_join(t, NULL);
	pthread_attr_destroy(&attr);
	*data_len = d.data_len;
	return d.status;
}

/*
 * --max-depth at its maximum (128) is safe on a worker's stack: parsed,
 * dumped again (the data) and freed, all recursive in jansson.  Objects
 * cost jansson more stack per level than arrays.
 */
static void
test_body_max_depth_on_worker_stack(void **state)
{
	static const char *const opens[] = {"[", "{\"k\":"};
	static const char *const closes[] = {"]", "}"};
	size_t data_len;

	(void)state;
	for (size_t o = 0; o < 2; o++) {
		size_t ol = strlen(opens[o]), n = 0;
		char *b = malloc(200000 * ol + 64);

		n += (size_t)sprintf(b, "{\"data\":");
		for (int i = 0; i < 127; i++, n += ol)
			memcpy(b + n, opens[o], ol);
		b[n++] = '1';
		for (int i = 0; i < 127; i++)
			b[n++] = closes[o][0];
		b[n++] = '}';
		b[n] = '\0';
		assert_int_equal(
		    decode_on_worker_stack(b, 128, &data_len), HTTP_200);
		assert_int_equal(data_len, n - strlen("{\"data\":") - 1);
		assert_int_equal(
		    decode_on_worker_stack(b, 127, &data_len), HTTP_400);
		/* Far deeper than any stack: refused unparsed. */
		n = (size_t)sprintf(b, "{\"data\":");
		for (int i = 0; i < 200000; i++, n += ol)
			memcpy(b + n, opens[o], ol);
		b[n] = '\0';
		assert_int_equal(
		    decode_on_worker_stack(b, 128, &data_len), HTTP_400);
		free(b);
	}
}

static void
test_body_event_limit(void **state)
{
	char name[70];

	(void)state;
	memset(name, 'e', sizeof(name));
	assert_true(body_event_valid(name, BODY_EVENT_MAX));
	assert_false(body_event_valid(name, BODY_EVENT_MAX + 1));
	assert_false(body_event_valid(name, 0));
	assert_false(body_event_valid("reset", 5));
	assert_false(body_event_valid("replaced", 8));
	assert_false(body_event_valid("error", 5));
	assert_false(body_event_valid("open", 4));
	assert_false(body_event_valid("position", 8));
	assert_string_equal(body_event_why("replaced", 8),
	    "event reset, replaced, refused and position are the service's "
	    "own, error and open EventSource's");
	/* The length decides, not a NUL: "reset" is a prefix of these. */
	assert_true(body_event_valid("resetx", 6));
	assert_true(body_event_valid("rese", 4));
	assert_null(body_event_why("offer", 5));
}

/*
 * The key body b decodes to (200), its text, or "" when it has none (in
 * a buffer of the caller's, overwritten by the next call).
 */
static const char *
key_of(const char *b)
{
	static char key[BODY_KEY_MAX + 1];
	struct body_msg m;
	const char *why = NULL;

	assert_int_equal(decode_json(b, &m, &why), HTTP_200);
	assert_true(m.key_len <= BODY_KEY_MAX);
	assert_int_equal(strlen(m.key), m.key_len);
	memcpy(key, m.key, m.key_len + 1);
	body_msg_clear(&m);
	return key;
}

/*
 * An idempotency key ("key"): read by json_fast and by jansson alike (the
 * same key is the same text, escaped or not, whatever else the body has),
 * none without one or with null; anything but 1 to BODY_KEY_MAX printable
 * ASCII characters is a 400 that says so, not a key ignored.
 */
static void
test_body_key(void **state)
{
	const char *fast = "{\"data\":\"x\",\"key\":\"k-1\"}";
	struct json_fast f;
	struct body_msg m;
	const char *why;
	char big[BODY_KEY_MAX + 32];

	(void)state;
	assert_true(json_fast_scan(fast, strlen(fast), 32, &f));
	/*
	 * The key's text, not a hash of it: two keys are one only when
	 * their texts are (FNV-1a, unkeyed, could be made to collide).
	 */
	assert_string_equal(key_of(fast), "k-1");
	assert_string_equal(key_of("{\"key\":\"k-1\",\"data\":{\"a\":1},"
	                           "\"event\":\"offer\"}"),
	    "k-1");
	/* jansson's: another member, an escape. */
	assert_string_equal(
	    key_of("{\"data\":\"x\",\"key\":\"k-1\",\"v\":1}"), "k-1");
	assert_string_equal(
	    key_of("{\"data\":\"x\",\"key\":\"k\\u002d1\"}"), "k-1");
	assert_string_equal(key_of("{\"data\":\"x\",\"key\":\"k-2\"}"), "k-2");
	assert_string_equal(key_of("{\"data\":\"x\"}"), "");
	assert_string_equal(key_of("{\"data\":\"x\",\"key\":null}"), "");
	assert_string_equal(key_of("{\"data\":\"x\",\"key\":\"~!\"}"), "~!");
	memset(big, 'k', BODY_KEY_MAX);
	big[BODY_KEY_MAX] = '\0';
	{
		char b[BODY_KEY_MAX + 64];

		snprintf(b, sizeof(b), "{\"data\":1,\"key\":\"%s\"}", big);
		assert_string_equal(key_of(b), big);
		snprintf(b, sizeof(b), "{\"data\":1,\"key\":\"%sk\"}", big);
		assert_int_equal(decode_json(b, &m, &why), HTTP_400);
		assert_string_equal(
		    why, "key must be 1-128 characters of printable ASCII");
	}
	const char *bad[] = {
	    "{\"data\":\"x\",\"key\":\"\"}",
	    "{\"data\":\"x\",\"key\":7}",
	    "{\"data\":\"x\",\"key\":\"a b\"}",
	    "{\"data\":\"x\",\"key\":\"\xc3\xa9\"}",
	    "{\"data\":\"x\",\"key\":\"a\\nb\"}",
	    "{\"data\":\"x\",\"key\":[\"a\"]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(decode_json(bad[i], &m, &why), HTTP_400);
		assert_string_equal(
		    why, "key must be 1-128 characters of printable ASCII");
	}
}

/*
 * Each character of a key is looked at, wherever it lies: at each place of
 * a key of 40 characters (five times 8) and of 43 (and a tail), each
 * printable ASCII character is taken as it is, and a space, DEL, a control
 * character (escaped), NUL (escaped) or a character past ASCII (as UTF-8,
 * raw or escaped) is a 400 that says so.
 */
static void
test_body_key_each_place(void **state)
{
	static const char *const bad[] = {" ", "\x7f", "\\u0000", "\\u0001",
	    "\\u001f", "\\t", "\xc2\x80", "\xc3\xa9", "\xef\xbf\xbf",
	    "\xf4\x8f\xbf\xbf", "\\u00ff", "\\u0100"};
	struct body_msg m;
	const char *why;
	char b[256], want[64], piece[8];

	(void)state;
	for (size_t n = 40; n <= 43; n += 3) {
		for (size_t at = 0; at < n; at++) {
			for (int c = '!'; c <= '~'; c++) {
				if (c == '"' || c == '\\')
					snprintf(
					    piece, sizeof(piece), "\\%c", c);
				else
					snprintf(piece, sizeof(piece), "%c", c);
				snprintf(b, sizeof(b),
				    "{\"data\":1,\"key\":\"%.*s%s%.*s\"}",
				    (int)at,
				    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
				    piece, (int)(n - at - 1),
				    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
				memset(want, 'k', n);
				want[at] = (char)c;
				want[n] = '\0';
				assert_string_equal(key_of(b), want);
			}
			for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]);
			     i++) {
				snprintf(b, sizeof(b),
				    "{\"data\":1,\"key\":\"%.*s%s%.*s\"}",
				    (int)at,
				    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
				    bad[i], (int)(n - at - 1),
				    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
				why = NULL;
				assert_int_equal(
				    decode_json(b, &m, &why), HTTP_400);
				assert_non_null(why);
				assert_string_equal(why,
				    "key must be 1-128 characters of printable "
				    "ASCII");
			}
		}
	}
}

/* Whether p lies in m's parse stack. */
static bool
in_parse_stack(const struct body_msg *m, const char *p)
{
	return p >= m->parse_stack &&
	    p < m->parse_stack + sizeof(m->parse_stack);
}

/*
 * With body_init(), a signaling message parses in the message's own stack
 * (its strings are used where they lie); a longer one spills to the heap
 * part-way, and a parse that fails after both frees what it took of each
 * (ASan and valgrind fail a free() of a stack block, or a leak: a document
 * that spilled is released block by block, one wholly in the stack is not).
 * Each body has a member json_fast does not read ("v"), so jansson parses.
 */
static void
test_body_parse_stack(void **state)
{
	const char *small = "{\"v\":1,\"event\":\"ice\",\"data\":\"candidate:1 "
	                    "1 UDP 2122260223 192.0.2.1 54400 typ host\"}";
	size_t big_len = 3 * BODY_PARSE_STACK;
	char *big = malloc(big_len + 64), *bad = malloc(big_len + 64);
	struct body_msg m;
	const char *why;
	int n;

	(void)state;
	assert_int_equal(decode_json(small, &m, &why), HTTP_200);
	assert_string_equal(m.event, "ice");
	assert_true(in_parse_stack(&m, m.data));
	assert_true(in_parse_stack(&m, m.event));
	assert_true(m.parse_used > 0 && m.parse_used <= BODY_PARSE_STACK);
	assert_false(m.parse_heap); /* released with the stack, no decref */
	body_msg_clear(&m);

	n = sprintf(big, "{\"v\":1,\"event\":\"offer\",\"data\":\"");
	memset(big + n, 'x', big_len);
	strcpy(big + n + big_len, "\"}");
	assert_int_equal(decode_json(big, &m, &why), HTTP_200);
	assert_int_equal(m.data_len, big_len);
	assert_false(in_parse_stack(&m, m.data));
	assert_true(in_parse_stack(&m, m.event));
	assert_true(m.data[0] == 'x' && m.data[big_len - 1] == 'x');
	assert_true(m.parse_heap); /* released by jansson, or a leak */
	body_msg_clear(&m);

	/* Truncated after a long string: the parse fails half-built. */
	n = sprintf(bad, "{\"event\":\"a\",\"data\":\"");
	memset(bad + n, 'y', big_len / 2);
	strcpy(bad + n + big_len / 2, "\",\"more\":[1,2,{\"k\":");
	assert_int_equal(decode_json(bad, &m, &why), HTTP_400);
	assert_null(m.data);
	body_msg_clear(&m);
	free(big);
	free(bad);
}

/*
 * json_fast reads the usual body, a data string and an event, and says no
 * to everything else (jansson's then).  What it reads must decode as
 * jansson decodes it: tests/fuzz/fuzz_body.c checks that on every input.
 */
static const struct {
	const char *body;
	bool fast;
	const char *data; /* as body_decode() gives it, or NULL: 400 */
	const char *event;
} fast_cases[] = {
    {"{\"data\":\"hi\"}", true, "hi", NULL},
    {" {\n\"event\" :\t\"offer\" ,\r\"data\": \"a\\nb\"} \r\n", true, "a\nb",
        "offer"},
    {"{\"data\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t.\"}", true, "\"\\/\b\f\n\r\t.",
        NULL},
    {"{\"data\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", true,
        "caf\xc3\xa9 \xf0\x9f\x98\x80", NULL},
    /* Read by jansson, with its answer. */
    {"{\"data\":\"a\",\"data\":\"b\"}", false, "b", NULL},
    {"{\"data\":\"\\u0041\"}", false, "A", NULL},
    {"{\"data\":\"x\",\"n\":1}", false, "x", NULL},
    {"{\"data\":\"x\",\"event\":null}", false, "x", NULL},
    /* A JSON value: its compact text, as jansson writes it. */
    {"{\"data\": { \"a\" : [ 1 , -2, true,false,null, {}, [ ] ],\n\"s\":"
     "\" x \\\" \\n\\t\xc3\xa9\"} ,\"event\":\"offer\"}",
        true,
        "{\"a\":[1,-2,true,false,null,{},[]],\"s\":\" x \\\" \\n\\t\xc3\xa9\"}",
        "offer"},
    {"{\"data\":42}", true, "42", NULL},
    {"{\"data\":[{\"a\":1},{\"a\":2}]}", true, "[{\"a\":1},{\"a\":2}]", NULL},
    {"{\"data\":123456789012345678}", true, "123456789012345678", NULL},
    /* jansson writes these its own way, or refuses them. */
    {"{\"data\":1234567890123456789}", false, "1234567890123456789", NULL},
    {"{\"data\":-0}", false, "0", NULL},
    {"{\"data\":1.5}", false, "1.5", NULL},
    {"{\"data\":[1e2]}", false, "[100.0]", NULL},
    {"{\"data\":\"a\\/b\"}", true, "a/b", NULL},
    {"{\"data\":[\"a\\/b\"]}", false, "[\"a/b\"]", NULL},
    {"{\"data\":{\"a\":1,\"a\":2}}", false, "{\"a\":2}", NULL},
    {"{\"data\":{\"a\":{\"a\":1},\"b\":{\"a\":1}}}", true,
        "{\"a\":{\"a\":1},\"b\":{\"a\":1}}", NULL},
    {"{\"data\":[01]}", false, NULL, NULL},
    {"{\"data\":[1,]}", false, NULL, NULL},
    {"{\"data\":{\"a\"}}", false, NULL, NULL},
    {"{\"data\":{\"a\":1,}}", false, NULL, NULL},
    {"{\"data\":[tru]}", false, NULL, NULL},
    {"{\"data\":[1}", false, NULL, NULL},
    {"{\"data\":-}", false, NULL, NULL},
    {"{\"data\":{\"a\":1}}", true, "{\"a\":1}", NULL},
    {"{\"data\":\"x\",\"event\":\"of\\u0066er\"}", false, "x", "offer"},
    {"{\"data\":\"x\",\"event\":\"of\\/fer\"}", false, NULL, NULL},
    {"{\"event\":\"a\"}", false, NULL, NULL},
    {"{\"data\":\"\"}", true, NULL, NULL},
    {"{\"data\":\"x\",\"event\":\"reset\"}", true, NULL, NULL},
    {"{\"data\":\"x\",}", false, NULL, NULL},
    {"{\"data\":\"x\"} x", false, NULL, NULL},
    {"{\"data\":\"x\"}}", false, NULL, NULL},
    {"{\"data\":\"x\"", false, NULL, NULL},
    {"{\"data\":\"x\\\"}", false, NULL, NULL},
    {"{\"data\":\"x\\q\"}", false, NULL, NULL},
    {"{\"data\":\"a\x01\"}", false, NULL, NULL},
    {"{\"data\":\"\xc3\x28\"}", false, NULL, NULL},
    {"{\"data\":\"\xed\xa0\x80\"}", false, NULL, NULL}, /* a surrogate */
    {"{\"data\":\"\xc0\xaf\"}", false, NULL, NULL},     /* overlong */
    {"{\"data\" \"x\"}", false, NULL, NULL},
    {"{\"Data\":\"x\"}", false, NULL, NULL},
};

static void
test_body_fast(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fast_cases) / sizeof(fast_cases[0]);
	     i++) {
		const char *b = fast_cases[i].body;
		struct json_fast f;
		struct body_msg m;
		const char *why = NULL;
		enum http_status st;

		assert_int_equal(
		    json_fast_scan(b, strlen(b), 32, &f), fast_cases[i].fast);
		st = decode_json(b, &m, &why);
		if (fast_cases[i].data == NULL) {
			assert_int_equal(st, HTTP_400);
			assert_non_null(why);
			continue;
		}
		assert_int_equal(st, HTTP_200);
		assert_decoded(&m, fast_cases[i].data, fast_cases[i].event);
	}
}

/*
 * A fast-read body's strings are copied to the message's stack, or, past
 * it, to one heap block that body_msg_clear() frees (a leak under ASan and
 * valgrind otherwise); the reasons it refuses with are jansson's.
 */
static void
test_body_fast_storage(void **state)
{
	const char *small = "{\"event\":\"ice\",\"data\":\"candidate:1\"}";
	size_t big_len = 3 * BODY_PARSE_STACK;
	char *big = malloc(big_len + 64);
	struct body_msg m;
	const char *why;
	int n;

	(void)state;
	assert_int_equal(decode_json(small, &m, &why), HTTP_200);
	assert_true(in_parse_stack(&m, m.data));
	assert_true(in_parse_stack(&m, m.event));
	assert_string_equal(m.event, "ice");
	assert_null(m.doc);
	body_msg_clear(&m);

	n = sprintf(big, "{\"event\":\"offer\",\"data\":\"");
	memset(big + n, 'x', big_len);
	strcpy(big + n + big_len, "\\n\"}");
	assert_int_equal(decode_json(big, &m, &why), HTTP_200);
	assert_int_equal(m.data_len, big_len + 1);
	assert_false(in_parse_stack(&m, m.data));
	assert_true(m.data[big_len - 1] == 'x' && m.data[big_len] == '\n' &&
	    m.data[big_len + 1] == '\0');
	assert_string_equal(m.event, "offer");
	body_msg_clear(&m);
	free(big);

	assert_int_equal(
	    body_decode(JSON, "{\"data\":\"\"}", 11, 32, &m, &why), HTTP_400);
	assert_string_equal(why, "no data supplied");
}

/*
 * json_fast's own bounds: a data value with JSON_FAST_KEYS keys open at
 * once, or nested JSON_FAST_DEPTH deep, is read by it; one more is
 * jansson's, decoded the same.
 */
static void
test_body_fast_bounds(void **state)
{
	char b[2048], want[2048];
	struct json_fast f;
	struct body_msg m;
	const char *why;

	(void)state;
	for (int extra = 0; extra <= 1; extra++) {
		int n = sprintf(b, "{\"data\":{"), w = 0;

		for (int k = 0; k < JSON_FAST_KEYS + extra; k++)
			n += sprintf(b + n, "%s\"k%d\":%d", k ? "," : "", k, k);
		strcpy(b + n, "}}");
		w = sprintf(want, "%.*s", n - 8, b + 8);
		strcpy(want + w, "}");
		assert_int_equal(json_fast_scan(b, strlen(b), 32, &f), !extra);
		assert_int_equal(decode_json(b, &m, &why), HTTP_200);
		assert_decoded(&m, want, NULL);
	}
	for (int extra = 0; extra <= 1; extra++) {
		int depth = JSON_FAST_DEPTH + extra,
		    n = sprintf(b, "{\"data\":");

		for (int d = 0; d < depth; d++)
			b[n++] = '[';
		for (int d = 0; d < depth; d++)
			b[n++] = ']';
		strcpy(b + n, "}");
		sprintf(want, "%.*s", 2 * depth, b + 8);
		assert_int_equal(json_fast_scan(b, strlen(b), 32, &f), !extra);
		assert_int_equal(decode_json(b, &m, &why), HTTP_200);
		assert_decoded(&m, want, NULL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_body_table),
	    cmocka_unit_test(test_body_leading_bom),
	    cmocka_unit_test(test_body_nul_in_json_string),
	    cmocka_unit_test(test_body_unicode_jansson_cannot_hold),
	    cmocka_unit_test(test_body_depth_limit),
	    cmocka_unit_test(test_body_max_depth_on_worker_stack),
	    cmocka_unit_test(test_body_event_limit),
	    cmocka_unit_test(test_body_key),
	    cmocka_unit_test(test_body_key_each_place),
	    cmocka_unit_test(test_body_fast),
	    cmocka_unit_test(test_body_fast_storage),
	    cmocka_unit_test(test_body_fast_bounds),
	};
	const struct CMUnitTest hooked[] = {
	    cmocka_unit_test(test_body_parse_stack),
	};
	int failed;

	filter_from_env();
	/* Every case on the heap, then again as the server parses. */
	failed = cmocka_run_group_tests_name("heap", tests, NULL, NULL);
	body_init();
	failed += cmocka_run_group_tests_name("parse stack", tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("hooked", hooked, NULL, NULL);
	return failed;
}
