/*
 * What the two bench responders, bench-limit (limit.c) and bench-design
 * (design.c), answer and how they find a stream: one definition, so that
 * the limit and design systems of `make bench` answer alike.
 */
#ifndef BENCH_RESPONDER_H
#define BENCH_RESPONDER_H

#include <stddef.h>
#include <string.h>

/* A POST delivered. */
static const char bench_ok[] = "Content-Type: application/json\r\n"
                               "Content-Length: 11\r\n\r\n{\"ok\":true}";
/* A POST to a device with no stream. */
static const char bench_missing[] = "Status: 404 Not Found\r\n"
                                    "Content-Type: application/json\r\n"
                                    "Content-Length: 32\r\n\r\n"
                                    "{\"error\":\"device not connected\"}";
/* A stream's head and opening comment. */
static const char bench_head[] = "Content-Type: text/event-stream\r\n"
                                 "Cache-Control: no-cache\r\n\r\n:\n\n";
/* Any other request. */
static const char bench_other[] = "Content-Type: text/plain\r\n\r\nok\n";

/* The stream table's bucket for key "U/D" (FNV-1a). */
static inline unsigned
bench_hash(const char *s, unsigned buckets)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % buckets;
}

/*
 * An event's data out of a POST body: what is inside {"data":"..."} as
 * the load generator sends it, else the body as it is.  Advances *d and
 * shortens *n.
 */
static inline void
bench_data(const char **d, size_t *n)
{
	if (*n >= 11 && memcmp(*d, "{\"data\":\"", 9) == 0 &&
	    memcmp(*d + *n - 2, "\"}", 2) == 0) {
		*d += 9;
		*n -= 11;
	}
}

#endif
