/*
 * http: the HTTP vocabulary shared by the handlers, with no I/O: status
 * codes and their reason phrases, percent-decoding, UTF-8 and identifier
 * checks, media types and query strings.
 */
#ifndef BEEP_HTTP_H
#define BEEP_HTTP_H

#include <stdbool.h>
#include <stddef.h>

enum http_status {
	HTTP_200,
	HTTP_202,
	HTTP_204,
	HTTP_400,
	HTTP_401,
	HTTP_403,
	HTTP_404,
	HTTP_405,
	HTTP_408,
	HTTP_413,
	HTTP_415,
	HTTP_429,
	HTTP_500,
	HTTP_503,
	HTTP__MAX
};

extern const int http_status_code[HTTP__MAX];
extern const char *const http_status_text[HTTP__MAX];

/*
 * Percent-decode len bytes of s into out, which must hold len + 1 bytes.
 * With plus_is_space (form bodies), '+' becomes ' '.  The result is
 * NUL-terminated and its length stored in *out_len (it may itself contain
 * NUL bytes).  Returns 0, or -1 on a malformed escape.
 */
int http_percent_decode(
    const char *s, size_t len, bool plus_is_space, char *out, size_t *out_len);

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool http_utf8_valid(const char *s, size_t len);

/*
 * Whether s[0..len) is an acceptable user or device id: 1..max_len bytes
 * of valid UTF-8 with no control characters (C0, DEL or C1).
 */
bool http_id_valid(const char *s, size_t len, size_t max_len);

/*
 * Whether the Content-Type value ct names media type type ("a/b"),
 * ignoring case, surrounding space and parameters.  NULL never matches.
 */
bool http_media_type_is(const char *ct, const char *type);

/*
 * Whether an Accept header value names text/event-stream and no range a
 * JSON document falls in (application/json, or the wildcards for any
 * application type and for any type), as EventSource's
 * "text/event-stream" does: a client that can read only an event stream.
 * Media ranges are compared ignoring case, surrounding space and
 * parameters; one with q=0 is not accepted.  NULL (no header) accepts
 * anything: false.
 */
bool http_accepts_event_stream_only(const char *accept);

/*
 * Find parameter name in the query string q (without '?') and return its
 * percent-decoded value as a new string (free it), or NULL when absent or
 * malformed: a bad percent escape, or a %00, which would cut the string
 * short.  *malformed (unless NULL) tells the two apart.
 */
char *http_query_param(const char *q, const char *name, bool *malformed);

#endif
