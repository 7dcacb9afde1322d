/*
 * json_fast: the one shape nearly every JSON POST body has, read in one
 * pass without a parser: {"data": ..., "event": "...", "key": "..."},
 * event and key optional, in any order, data a string or a JSON value (beep-signal.js sends an
 * object), which is then taken as the compact text jansson would write.
 *
 * jansson reads a body a character at a time through its stream, at about
 * 25 instructions a byte, and allocates a hash table and a block per
 * string: for a small signaling message that is a quarter of all the
 * backend does for a POST.  This reads the same bodies at a few
 * instructions a byte.  It is not a parser: it says "yes, and here are the
 * two strings" only for a body jansson would read the same way, and "no"
 * for everything else, which is then jansson's to read (and to refuse,
 * with its reasons).  So what is accepted, and what the strings hold, is
 * decided by jansson's rules (RFC 8259): tests/fuzz/fuzz_body.c checks
 * every answer of this against jansson's.  Pure: no I/O, no allocation.
 *
 * "No" for: any other member, an event or key that is not a string, a
 * data of null, a member given twice, a \u escape, a control character,
 * invalid UTF-8, an escape in the event or the key, anything after the object but whitespace.
 * In a data that is a JSON value, also for anything jansson would not
 * write back as it was sent, or refuse: a number with a fraction or an
 * exponent, an integer of more than 18 digits, -0, a \/ escape, a key
 * given twice in an object, more than JSON_FAST_KEYS keys in the objects
 * open at once, or nesting past JSON_FAST_DEPTH or the body's limit.
 */
#ifndef BEEP_JSON_FAST_H
#define BEEP_JSON_FAST_H

#include <stdbool.h>
#include <stddef.h>

/* Bounds of a data value read here (past them, jansson reads it). */
#define JSON_FAST_DEPTH 16 /* levels of arrays and objects in data */
#define JSON_FAST_KEYS 64  /* keys of the objects open at once */

/* A member's value as sent: a string's text between its quotes, or text. */
struct json_fast_str {
	const char *at; /* NULL: the member is absent */
	size_t len;     /* of the text as sent */
	size_t decoded; /* the length of its value, or of the compact text */
	bool escaped;   /* a string that holds a backslash escape */
	bool text;      /* a JSON value other than a string, at[0..len) */
};

struct json_fast {
	struct json_fast_str data, event, key;
};

/*
 * Whether body[0..len) is an object of a "data" member and optionally an
 * "event" string and a "key" string and nothing else, valid JSON nested at most max_depth
 * deep, that jansson reads the same way (above).  On true, *out says
 * where the values are.
 */
bool json_fast_scan(
    const char *body, size_t len, unsigned max_depth, struct json_fast *out);

/*
 * Writes s (json_fast_scan()'s) to dst: a string's value, or a JSON
 * value's compact text (as jansson writes it, JSON_COMPACT), s->decoded
 * bytes and a NUL after them.
 */
void json_fast_copy(const struct json_fast_str *s, char *dst);

#endif
