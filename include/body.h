/*
 * body: decode a POST body, JSON ({"data": ..., "event": ...}) or form
 * (data=...&event=...), into the message to deliver.  Pure: no I/O.
 */
#ifndef BEEP_BODY_H
#define BEEP_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* The longest event name; names are tokens of [A-Za-z0-9_.-]. */
#define BODY_EVENT_MAX 64

struct body_msg {
	char *data; /* owned; NUL-terminated, may contain NUL bytes */
	size_t data_len;
	bool is_json; /* data is compact JSON text (not a JSON string) */
	char *event;  /* owned, or NULL */
};

/*
 * Decode body[0..len) sent with Content-Type ct.  JSON nested deeper than
 * max_depth is refused before it is parsed.  Returns HTTP_200 and fills
 * *msg (release with body_msg_clear()), or the status to answer with and
 * a short reason in *why.
 */
enum http_status body_decode(const char *ct, const char *body, size_t len,
    unsigned max_depth, struct body_msg *msg, const char **why);

void body_msg_clear(struct body_msg *msg);

/* Whether s[0..len) is a valid event name. */
bool body_event_valid(const char *s, size_t len);

#endif
