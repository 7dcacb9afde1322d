/* route: see route.h. */
#include "route.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

/* No route has more segments than this; longer paths are 404. */
#define ROUTE_MAX_SEGMENTS 4

/* A literal segment; ID (no text) for the user (first) / device id. */
struct route_lit {
	const char *s;
	size_t len;
};

#define LIT(s)                                                                 \
	{                                                                      \
		s, sizeof(s) - 1                                               \
	}
#define ID                                                                     \
	{                                                                      \
		NULL, 0                                                        \
	}

struct route_spec {
	enum route_id id;
	size_t nseg;
	struct route_lit seg[ROUTE_MAX_SEGMENTS];
	enum route_method method;
	/*
	 * HEAD, answered as GET without the body (RFC 9110: a GET route
	 * should take it; monitors probe with it).  Not for a stream, which
	 * a HEAD must not open.
	 */
	bool head;
	const char *allow;
	/*
	 * The Express service's API routes: Express 4 (strict: false)
	 * matched them with or without one trailing '/', which clients may
	 * have kept.  Not the routes of its own (/metrics stays exact).
	 */
	bool slash;
};

/*
 * No path matches two of them (their literal segments differ), so the
 * order is only the cost of a search: the POST, a request in nearly every
 * exchange, first.
 */
static const struct route_spec route_specs[] = {
    {ROUTE_POST, 4, {LIT("user"), ID, LIT("device"), ID}, METHOD_POST, false,
        "POST, OPTIONS", true},
    {ROUTE_SUBSCRIBE, 4, {LIT("subscribe"), ID, LIT("device"), ID}, METHOD_GET,
        false, "GET, OPTIONS", true},
    {ROUTE_DEVICES, 3, {LIT("user"), ID, LIT("devices"), ID}, METHOD_GET, true,
        "GET, HEAD, OPTIONS", true},
    {ROUTE_HEALTH, 1, {LIT("healthz"), ID, ID, ID}, METHOD_GET, true,
        "GET, HEAD, OPTIONS", false},
    {ROUTE_METRICS, 1, {LIT("metrics"), ID, ID, ID}, METHOD_GET, true,
        "GET, HEAD, OPTIONS", false},
    {ROUTE_READY, 1, {LIT("readyz"), ID, ID, ID}, METHOD_GET, true,
        "GET, HEAD, OPTIONS", false},
    {ROUTE_ICE, 1, {LIT("ice-servers"), ID, ID, ID}, METHOD_GET, true,
        "GET, HEAD, OPTIONS", false},
};

#define ROUTE_NSPECS (sizeof(route_specs) / sizeof(route_specs[0]))

enum route_method
route_method_parse(const char *method)
{
	const char *name;
	enum route_method m;

	if (method == NULL)
		return METHOD_OTHER;
	/* The first letter says which it can be: one comparison, not four. */
	switch (method[0]) {
	case 'G':
		name = "GET";
		m = METHOD_GET;
		break;
	case 'H':
		name = "HEAD";
		m = METHOD_HEAD;
		break;
	case 'P':
		name = "POST";
		m = METHOD_POST;
		break;
	case 'O':
		name = "OPTIONS";
		m = METHOD_OPTIONS;
		break;
	default:
		return METHOD_OTHER;
	}
	return strcmp(method, name) == 0 ? m : METHOD_OTHER;
}

const char *
route_allow(enum route_id id)
{
	for (size_t i = 0; i < ROUTE_NSPECS; i++)
		if (route_specs[i].id == id)
			return route_specs[i].allow;
	return "";
}

struct route_seg {
	const char *p;
	size_t len;
};

/* Decode one id segment into id (room for seg->len + 1 bytes). */
static enum route_result
route_decode_id(
    const struct route_seg *seg, size_t max_id, char *id, size_t *out_len)
{
	size_t i;

	/* Decoding never lengthens; a raw segment 3x too long is too long. */
	if (seg->len == 0 || seg->len > 3 * max_id)
		return ROUTE_BAD_ID;
	/*
	 * The usual id, printable ASCII with no escape, in one pass: it
	 * decodes to itself and holds no '/' (the path was split on them),
	 * so of http_id_valid()'s checks only its length and "." and ".."
	 * are left.  Any other byte: the decoder and the check, from the
	 * start.
	 */
	for (i = 0; i < seg->len; i++) {
		unsigned char c = (unsigned char)seg->p[i];

		if (c < 0x20 || c > 0x7e || c == '%')
			break;
		id[i] = (char)c;
	}
	if (i == seg->len) {
		id[i] = '\0';
		*out_len = i;
		if (i > max_id ||
		    (id[0] == '.' && (i == 1 || (i == 2 && id[1] == '.'))))
			return ROUTE_BAD_ID;
		return ROUTE_OK;
	}
	if (http_percent_decode(seg->p, seg->len, false, id, out_len) < 0)
		return ROUTE_BAD_ESCAPE;
	if (!http_id_valid(id, *out_len, max_id))
		return ROUTE_BAD_ID;
	return ROUTE_OK;
}

/*
 * The spec the path's first path_len bytes match, its segments in segs
 * (*nseg of them), or NULL; with slash_only, only a spec that takes a
 * trailing '/'.
 */
static const struct route_spec *
route_find(const char *uri, size_t path_len, bool slash_only,
    struct route_seg *segs, size_t *nseg)
{
	const char *p = uri + 1, *end = uri + path_len;
	size_t n = 0;

	/*
	 * Split "/a/b/c" on '/'; every segment, even an empty one, counts.
	 * A byte at a time: a path's segments are a few bytes each, shorter
	 * than a call to memchr() costs.
	 */
	for (const char *c = p;; c++) {
		if (c != end && *c != '/')
			continue;
		if (n == ROUTE_MAX_SEGMENTS)
			return NULL;
		segs[n].p = p;
		segs[n].len = (size_t)(c - p);
		n++;
		if (c == end)
			break;
		p = c + 1;
	}
	*nseg = n;

	for (size_t i = 0; i < ROUTE_NSPECS; i++) {
		const struct route_spec *s = &route_specs[i];
		bool ok = s->nseg == n && (s->slash || !slash_only);

		for (size_t j = 0; ok && j < n; j++)
			if (s->seg[j].s != NULL &&
			    (segs[j].len != s->seg[j].len ||
			        memcmp(segs[j].p, s->seg[j].s, segs[j].len) !=
			            0))
				ok = false;
		if (ok)
			return s;
	}
	return NULL;
}

enum route_result
route_match(enum route_method method, const char *uri, size_t max_id,
    char *room, size_t room_size, struct route *r)
{
	struct route_seg segs[ROUTE_MAX_SEGMENTS];
	const struct route_spec *spec;
	size_t nseg = 0, path_len, need = 0, used = 0;
	const char *q;
	char *ids;
	enum route_result res;

	memset(r, 0, sizeof(*r));
	if (uri == NULL || uri[0] != '/')
		return ROUTE_NOT_FOUND;
	/* The path's end, '?' or the NUL, in one scan. */
	q = strchrnul(uri, '?');
	path_len = (size_t)(q - uri);
	r->query = *q == '?' ? q + 1 : NULL;

	spec = route_find(uri, path_len, false, segs, &nseg);
	/*
	 * Not a route as it is: the path without one trailing '/' (not
	 * two), on a route that takes it.  As it is first, so that an empty
	 * id ("/user/bob/device/") stays a bad id.
	 */
	if (spec == NULL && path_len > 2 && uri[path_len - 1] == '/' &&
	    uri[path_len - 2] != '/')
		spec = route_find(uri, path_len - 1, true, segs, &nseg);
	if (spec == NULL)
		return ROUTE_NOT_FOUND;
	r->id = spec->id;
	if (method != spec->method && method != METHOD_OPTIONS &&
	    !(method == METHOD_HEAD && spec->head))
		return ROUTE_BAD_METHOD;

	/*
	 * The ids, decoded into one block: user, then device (a segment
	 * too long to be an id is refused below, so it adds only the byte
	 * that keeps the block from being empty).  The caller's room when
	 * they fit in it, else the heap's.  They never need more than the
	 * path's length (each segment and the '/' before it), so a path
	 * that fits in the room (the usual one) is not measured.
	 */
	for (size_t j = 0; path_len > room_size && j < nseg; j++) {
		if (spec->seg[j].s == NULL && segs[j].len <= 3 * max_id)
			need += segs[j].len + 1;
		else if (spec->seg[j].s == NULL)
			need++;
	}
	r->ids_owned = need > room_size;
	ids = r->ids_owned ? xmalloc(need) : room;
	for (size_t j = 0; j < nseg; j++) {
		size_t *out_len;

		if (spec->seg[j].s != NULL)
			continue;
		out_len = r->user == NULL ? &r->user_len : &r->device_len;
		res = route_decode_id(&segs[j], max_id, ids + used, out_len);
		if (res != ROUTE_OK) {
			if (r->ids_owned)
				free(ids);
			r->user = r->device = NULL;
			r->user_len = r->device_len = 0;
			r->ids_owned = false;
			return res;
		}
		ids[used + *out_len] = '\0';
		if (r->user == NULL)
			r->user = ids + used;
		else
			r->device = ids + used;
		used += segs[j].len + 1;
	}
	return ROUTE_OK;
}

void
route_clear(struct route *r)
{
	if (r->ids_owned)
		free(r->user); /* the block that holds the device too */
	r->user = r->device = NULL;
	r->user_len = r->device_len = 0;
	r->ids_owned = false;
}
