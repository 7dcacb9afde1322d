/*
 * route: map a method and a raw request URI to one of the API's routes,
 * percent-decoding and checking the user and device ids on the way.
 * Pure: no I/O, no allocation beyond the ids it returns (and none for
 * ids that fit in the room the caller lends).
 */
#ifndef BEEP_ROUTE_H
#define BEEP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

enum route_id {
	ROUTE_NONE,      /* no such path: 404 */
	ROUTE_SUBSCRIBE, /* /subscribe/:user/device/:device */
	ROUTE_DEVICES,   /* /user/:user/devices */
	ROUTE_POST,      /* /user/:user/device/:device */
	ROUTE_HEALTH,    /* /healthz */
	ROUTE_METRICS,   /* /metrics (Prometheus) */
	ROUTE_READY,     /* /readyz */
	ROUTE_ICE,       /* /ice-servers */
	ROUTE__MAX
};

enum route_method {
	METHOD_GET,
	METHOD_HEAD,
	METHOD_POST,
	METHOD_OPTIONS,
	METHOD_OTHER,
	METHOD__MAX
};

enum route_result {
	ROUTE_OK,
	ROUTE_NOT_FOUND,  /* unknown path */
	ROUTE_BAD_METHOD, /* known path, method not allowed: 405 */
	ROUTE_BAD_ID,     /* an id is empty, too long or not clean UTF-8 */
	ROUTE_BAD_ESCAPE, /* a malformed percent escape */
	ROUTE_RESULT__MAX
};

struct route {
	enum route_id id;
	char *user; /* decoded, or NULL; see route_match(), route_clear() */
	size_t user_len;
	char *device; /* decoded, or NULL; in user's block */
	size_t device_len;
	const char *query; /* points into the URI after '?', or NULL */
	bool ids_owned;    /* user's block is the heap's, not the caller's */
};

/* Map a REQUEST_METHOD string (may be NULL) to its enum. */
enum route_method route_method_parse(const char *method);

/*
 * Match uri (raw, as sent: path and optional query) for method.  On
 * ROUTE_OK, ROUTE_BAD_METHOD and ROUTE_BAD_ID, r->id names the route; ids
 * are decoded into r only on ROUTE_OK.  Ids longer than max_id bytes are
 * ROUTE_BAD_ID.  The ids go in room (room_size bytes; may be NULL, 0) when
 * they fit, so that a request's usual ids take no block of their own: room
 * is the caller's, and must outlive r and its copies.  Longer ones take
 * the heap.  Release with route_clear().
 */
enum route_result route_match(enum route_method method, const char *uri,
    size_t max_id, char *room, size_t room_size, struct route *r);

void route_clear(struct route *r);

/* The Allow header value of a route, e.g. "GET, OPTIONS". */
const char *route_allow(enum route_id id);

#endif
