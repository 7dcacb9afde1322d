/* body: see body.h. */
#include "body.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "depth.h"
#include "json_fast.h"
#include "util.h"

/*
 * jansson's allocator takes no context: the message whose parse_stack
 * this thread's jansson allocations come from, while one is parsed or
 * released, is named here.
 */
static _Thread_local struct body_msg *body_parsing;

static void *
body_json_malloc(size_t size)
{
	struct body_msg *m = body_parsing;

	if (m != NULL) {
		/* Aligned as malloc() aligns. */
		size_t at = (m->parse_used + 15) & ~(size_t)15;

		if (at <= sizeof(m->parse_stack) &&
		    size <= sizeof(m->parse_stack) - at) {
			m->parse_used = at + size;
			return m->parse_stack + at;
		}
		m->parse_heap = true;
	}
	return xmalloc(size);
}

static void
body_json_free(void *p)
{
	struct body_msg *m = body_parsing;

	/* Stack blocks go with the message (body_msg_clear()). */
	if (m != NULL && (char *)p >= m->parse_stack &&
	    (char *)p < m->parse_stack + sizeof(m->parse_stack))
		return;
	free(p);
}

void
body_init(void)
{
	json_set_alloc_funcs(body_json_malloc, body_json_free);
}

/*
 * The names no poster may send.  The service's own events (api_stream.c,
 * event.c): a client takes them for the service's word (the JS client
 * closes for good on `replaced`, and restarts ICE on `reset`; `refused`
 * says a stream was not opened; `position` is where a stream starts).  And EventSource's own: an event named
 * `error` or `open` is dispatched to the page's onerror or onopen, as if
 * the stream had failed or opened.
 */
static const char *const body_reserved_events[] = {
    "reset", "replaced", "refused", "position", "error", "open"};

const char *
body_event_why(const char *s, size_t len)
{
	if (len == 0 || len > BODY_EVENT_MAX)
		return "event must be 1-64 characters of [A-Za-z0-9_.-]";
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		        (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		        c == '-'))
			return "event must be 1-64 characters of "
			       "[A-Za-z0-9_.-]";
	}
	for (size_t i = 0;
	     i < sizeof(body_reserved_events) / sizeof(body_reserved_events[0]);
	     i++)
		if (len == strlen(body_reserved_events[i]) &&
		    memcmp(s, body_reserved_events[i], len) == 0)
			return "event reset, replaced, refused and position "
			       "are the service's own, error and open "
			       "EventSource's";
	return NULL;
}

bool
body_event_valid(const char *s, size_t len)
{
	return body_event_why(s, len) == NULL;
}

/* Empty msg, whatever it held (its stack is left as it is). */
static void
body_msg_reset(struct body_msg *msg)
{
	msg->data = msg->event = NULL;
	msg->key_len = 0;
	msg->key[0] = '\0';
	msg->data_len = 0;
	msg->is_json = false;
	msg->doc = NULL;
	msg->own[0] = msg->own[1] = NULL;
	msg->parse_used = 0;
	msg->parse_heap = false;
}

/*
 * Take k[0..len) as msg's idempotency key: false for a key that is not 1
 * to BODY_KEY_MAX characters of printable ASCII.
 */
/*
 * Whether each of the 8 bytes at p is printable ASCII, '!' to '~'.  Exact:
 * a byte past ASCII has its high bit; below, a byte under '!' is the
 * lowest to borrow in w - '!' and sets its own high bit there, and one
 * past '~' (0x7f) sets it in w + 1, which carries nowhere.
 */
static bool
body_word_printable(const char *p)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return ((w | (w - ones * '!') | (w + ones)) & (ones * 0x80)) == 0;
}

static bool
body_key_take(struct body_msg *msg, const char *k, size_t len)
{
	size_t i = 0;

	if (len == 0 || len > BODY_KEY_MAX)
		return false;
	/* 8 bytes at a time: beep-signal.js's keys are 32. */
	for (; len - i >= 8; i += 8)
		if (!body_word_printable(k + i))
			return false;
	for (; i < len; i++)
		if (k[i] < '!' || k[i] > '~')
			return false;
	memcpy(msg->key, k, len);
	msg->key[len] = '\0';
	msg->key_len = len;
	return true;
}

static const char body_key_why[] =
    "key must be 1-128 characters of printable ASCII";

/*
 * A body of json_fast's shape, a data value and an event string, decoded
 * without jansson: both are copied to the message's stack (or to the
 * heap, when they are longer).  Whether it was: anything else, an
 * empty data or a name no poster may send included, is jansson's to read
 * and to refuse, with the same reasons as ever.
 */
static bool
body_decode_fast(
    const char *body, size_t len, unsigned max_depth, struct body_msg *msg)
{
	struct json_fast f;
	size_t need;
	char *p;

	if (!json_fast_scan(body, len, max_depth, &f) || f.data.decoded == 0 ||
	    (f.event.at != NULL &&
	        body_event_why(f.event.at, f.event.len) != NULL))
		return false;
	/* A key without escapes: its text as sent is its value. */
	if (f.key.at != NULL && !body_key_take(msg, f.key.at, f.key.len))
		return false;
	need = f.data.decoded + 1 + (f.event.at != NULL ? f.event.len + 1 : 0);
	p = need <= sizeof(msg->parse_stack) ? msg->parse_stack
	                                     : (msg->own[0] = xmalloc(need));
	json_fast_copy(&f.data, p);
	msg->data = p;
	msg->data_len = f.data.decoded;
	msg->is_json = f.data.text;
	if (f.event.at != NULL) {
		p += f.data.decoded + 1;
		json_fast_copy(&f.event, p);
		msg->event = p;
	}
	return true;
}

const char body_no_data[] = "no data supplied";

/*
 * Why jansson refused a body.  Some valid JSON it cannot hold: said so,
 * not "malformed JSON", which sends a client looking for a syntax error it
 * does not have.  Read from the error only, so a body that parses costs
 * nothing more.
 */
static const char *
body_json_why(const json_error_t *err)
{
	/*
	 * An integer past 2^63 - 1 or a number past a double's range.  Read
	 * as doubles, every integer of the body would be written back as one
	 * (5 as 5.0), which typed clients refuse, and a 64-bit id would lose
	 * digits: refused, saying so.
	 */
	if (json_error_code(err) == json_error_numeric_overflow)
		return "number out of range (integers up to 2^63-1: send "
		       "larger ones as strings)";
	/*
	 * A lone UTF-16 surrogate (\ud83d without its pair), which is no
	 * Unicode text: JSON.stringify() writes one for a string cut inside
	 * an emoji's pair.  jansson (2.14) says "invalid Unicode '\uD83D'"
	 * under the code of any syntax error; should its words change, this
	 * says "malformed JSON" again, and test_body fails.
	 */
	if (json_error_code(err) == json_error_invalid_syntax &&
	    strncmp(err->text, "invalid Unicode", 15) == 0)
		return "a string holds a lone UTF-16 surrogate (\\ud800 to "
		       "\\udfff without its pair), which is not Unicode "
		       "text: cut strings at a character, not inside one";
	if (json_error_code(err) == json_error_null_byte_in_key)
		return "an object key holds U+0000 (\\u0000): not supported";
	/* As form data says (a client that writes Latin-1, say). */
	if (json_error_code(err) == json_error_invalid_utf8)
		return "JSON must be valid UTF-8";
	return "malformed JSON";
}

static enum http_status
body_decode_json(const char *body, size_t len, unsigned max_depth,
    struct body_msg *msg, const char **why)
{
	json_t *root, *value, *data = NULL, *event = NULL, *idem = NULL;
	json_error_t err;
	const char *key;
	size_t key_len;

	/* body-parser read an empty JSON body as {}: no data, not malformed. */
	if (len == 0) {
		*why = body_no_data;
		return HTTP_400;
	}
	if (body_decode_fast(body, len, max_depth, msg))
		return HTTP_200;
	if (!depth_json_within(body, len, max_depth)) {
		*why = "JSON nested too deeply";
		return HTTP_400;
	}
	body_parsing = msg; /* read only by body_init()'s functions */
	root = json_loadb(body, len, JSON_ALLOW_NUL, &err);
	body_parsing = NULL;
	msg->doc = root; /* released by body_msg_clear(), on every path */
	if (root == NULL) {
		*why = body_json_why(&err);
		return HTTP_400;
	}
	if (!json_is_object(root)) {
		*why = "JSON body must be an object";
		goto fail;
	}
	/*
	 * The two members wanted, in one pass over the object's few rather
	 * than a hash lookup each (a key is unique in a jansson object; keys
	 * are compared with their length, as json_object_get() does).
	 */
	json_object_keylen_foreach(root, key, key_len, value)
	{
		if (key_len == 5 && memcmp(key, "event", 5) == 0)
			event = value;
		else if (key_len == 4 && memcmp(key, "data", 4) == 0)
			data = value;
		else if (key_len == 3 && memcmp(key, "key", 3) == 0)
			idem = value;
	}
	if (idem != NULL && !json_is_null(idem)) {
		if (!json_is_string(idem) ||
		    !body_key_take(msg, json_string_value(idem),
		        json_string_length(idem))) {
			*why = body_key_why;
			goto fail;
		}
	}
	if (event != NULL && !json_is_null(event)) {
		if (!json_is_string(event)) {
			*why = "event must be 1-64 characters of "
			       "[A-Za-z0-9_.-]";
			goto fail;
		}
		*why = body_event_why(
		    json_string_value(event), json_string_length(event));
		if (*why != NULL)
			goto fail;
		msg->event = json_string_value(event);
	}
	if (data == NULL || json_is_null(data) ||
	    (json_is_string(data) && json_string_length(data) == 0)) {
		*why = body_no_data;
		goto fail;
	}
	if (json_is_string(data)) {
		msg->data_len = json_string_length(data);
		msg->data = json_string_value(data);
	} else {
		char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);

		if (text == NULL)
			abort(); /* out of memory: as xmalloc() does */
		msg->is_json = true;
		msg->data_len = strlen(text);
		msg->data = msg->own[0] = text;
	}
	return HTTP_200;
fail:
	body_msg_clear(msg);
	return HTTP_400;
}

static enum http_status
body_decode_form(
    const char *body, size_t len, struct body_msg *msg, const char **why)
{
	const char *p = body, *end = body + len;
	bool have_data = false, have_event = false;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pair_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pair_end - p));
		size_t klen = (size_t)((eq ? eq : pair_end) - p), vlen, n;
		char *key = xmalloc(klen + 1), *val;

		if (http_percent_decode(p, klen, true, key, &n) < 0) {
			free(key);
			*why = "malformed form encoding";
			goto fail;
		}
		vlen = eq ? (size_t)(pair_end - eq - 1) : 0;
		val = xmalloc(vlen + 1);
		if (http_percent_decode(
		        eq ? eq + 1 : "", vlen, true, val, &vlen) < 0) {
			free(key);
			free(val);
			*why = "malformed form encoding";
			goto fail;
		}
		/* The first occurrence of a field wins. */
		if (!have_data && strcmp(key, "data") == 0 && n == 4) {
			msg->data = msg->own[0] = val;
			msg->data_len = vlen;
			have_data = true;
			val = NULL;
		} else if (!have_event && strcmp(key, "event") == 0 && n == 5) {
			*why = body_event_why(val, vlen);
			if (*why != NULL) {
				free(key);
				free(val);
				goto fail;
			}
			msg->event = msg->own[1] = val;
			have_event = true;
			val = NULL;
		}
		free(key);
		free(val);
		p = pair_end + 1;
	}
	if (!have_data || msg->data_len == 0) {
		*why = body_no_data;
		goto fail;
	}
	if (!http_utf8_valid(msg->data, msg->data_len)) {
		*why = "data must be valid UTF-8";
		goto fail;
	}
	return HTTP_200;
fail:
	body_msg_clear(msg);
	return HTTP_400;
}

enum http_status
body_decode(const char *ct, const char *body, size_t len, unsigned max_depth,
    struct body_msg *msg, const char **why)
{
	body_msg_reset(msg);
	/*
	 * A leading UTF-8 byte order mark is not part of the body (RFC 8259
	 * 8.1 lets a parser ignore it; the Express service's body-parser
	 * stripped it): clients that write one (.NET's Encoding.UTF8) post.
	 */
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
		body += 3;
		len -= 3;
	}
	if (http_media_type_is(ct, "application/json"))
		return body_decode_json(body, len, max_depth, msg, why);
	if (http_media_type_is(ct, "application/x-www-form-urlencoded"))
		return body_decode_form(body, len, msg, why);
	*why = "Content-Type must be application/json or "
	       "application/x-www-form-urlencoded";
	return HTTP_415;
}

void
body_msg_clear(struct body_msg *msg)
{
	free(msg->own[0]);
	free(msg->own[1]);
	/*
	 * A document the parse made wholly in the message's stack needs no
	 * release, block by block: it goes with the stack, and nothing else
	 * holds it.  Without body_init() (parse_used 0) or once a block
	 * took the heap, jansson releases it.
	 */
	if (msg->doc != NULL && (msg->parse_used == 0 || msg->parse_heap)) {
		body_parsing = msg;
		json_decref(msg->doc);
		body_parsing = NULL;
	}
	body_msg_reset(msg);
}
