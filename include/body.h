/*
 * body: decode a POST body, JSON ({"data": ..., "event": ..., "key": ...})
 * or form (data=...&event=...), into the message to deliver.  Pure: no I/O.
 */
#ifndef BEEP_BODY_H
#define BEEP_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* The longest event name; names are tokens of [A-Za-z0-9_.-]. */
#define BODY_EVENT_MAX 64

/*
 * The longest idempotency key (a JSON body's "key": 1 to this many
 * characters of printable ASCII, '!' to '~').
 */
#define BODY_KEY_MAX 128

/*
 * The bytes a JSON body's parse takes from the caller's stack (struct
 * body_msg) before jansson's allocations go to the heap: a signaling
 * message of a few hundred bytes parses without an allocation.
 */
#define BODY_PARSE_STACK 2048

/*
 * A decoded message.  It may point into itself: do not copy or move it
 * between body_decode() and body_msg_clear().
 */
struct body_msg {
	const char *data; /* NUL-terminated, may contain NUL bytes */
	size_t data_len;
	bool is_json;      /* data is compact JSON text (not a JSON string) */
	const char *event; /* or NULL */
	/*
	 * The body's idempotency key ("key"), its text as decoded,
	 * NUL-terminated, key_len 0: none.  A sender that posts again what
	 * it posted before, not knowing whether that got through, sends the
	 * same key.  Its text, not a hash of it: one sender's keys are told
	 * apart exactly (an unkeyed hash can be made to collide).
	 */
	size_t key_len;
	char key[BODY_KEY_MAX + 1];
	/*
	 * Private: what data and event point into, released by
	 * body_msg_clear().  A JSON body's strings are used where the parse
	 * left them, not copied, and with body_init() the parse allocates
	 * from parse_stack first.
	 */
	struct json_t *doc;
	char *own[2];
	size_t parse_used;
	bool parse_heap; /* a block of the parse's took the heap */
	_Alignas(16) char parse_stack[BODY_PARSE_STACK];
};

/*
 * Route jansson's allocations through body's (xmalloc() and free(), and
 * the parse's stack while body_decode() parses).  Call once, before any
 * thread uses jansson.  Without it, body_decode() parses on the heap.
 */
void body_init(void);

/*
 * Decode body[0..len) sent with Content-Type ct.  JSON nested deeper than
 * max_depth is refused before it is parsed.  Returns HTTP_200 and fills
 * *msg (release with body_msg_clear()), or the status to answer with and
 * a short reason in *why.
 */
enum http_status body_decode(const char *ct, const char *body, size_t len,
    unsigned max_depth, struct body_msg *msg, const char **why);

/*
 * The *why of a body that parses but carries no data ({}, "data": "" or
 * null, data=, an empty body: body-parser read an empty JSON body as {}),
 * compared by address: the Express service answered 404 for such a POST
 * when the device was not there, and 400 only when it was.
 */
extern const char body_no_data[];

void body_msg_clear(struct body_msg *msg);

/*
 * Why s[0..len) may not be a posted event's name (NULL: it may): a name
 * of 1-BODY_EVENT_MAX characters of [A-Za-z0-9_.-], and none of the
 * service's own events' (reset, replaced).
 */
const char *body_event_why(const char *s, size_t len);

/* Whether s[0..len) may be a posted event's name (body_event_why()). */
bool body_event_valid(const char *s, size_t len);

#endif
