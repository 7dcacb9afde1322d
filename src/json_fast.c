/* json_fast: see json_fast.h. */
#include "json_fast.h"

#include <stdint.h>
#include <string.h>

#include "http.h"

#define JSON_FAST_ONES UINT64_C(0x0101010101010101)
#define JSON_FAST_HIGHS UINT64_C(0x8080808080808080)

/*
 * Whether one of the 8 bytes at p may be one a string's text needs a look
 * at: a quote, a backslash, a control character or a byte past ASCII.  Some
 * ordinary bytes after one of those may be taken for one (borrows), never
 * the other way round, so a "no" is exact.
 */
static bool
json_fast_word_special(const char *p)
{
	uint64_t v, quote, backslash;

	memcpy(&v, p, sizeof(v));
	quote = v ^ (JSON_FAST_ONES * '"');
	backslash = v ^ (JSON_FAST_ONES * '\\');

	return ((v | ((v - JSON_FAST_ONES * 0x20) & ~v) |
	            ((quote - JSON_FAST_ONES) & ~quote) |
	            ((backslash - JSON_FAST_ONES) & ~backslash)) &
	           JSON_FAST_HIGHS) != 0;
}

static bool
json_fast_is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Past the whitespace at s[i] (RFC 8259's four characters). */
static size_t
json_fast_ws(const char *s, size_t i, size_t len)
{
	while (i < len && json_fast_is_ws(s[i]))
		i++;
	return i;
}

/*
 * The string whose text starts at s[i], just past its opening quote, into
 * *out.  Returns the index past its closing quote, or 0 (no string ends
 * there) for one this does not read: unterminated, with a control
 * character, a \u escape or one JSON has not, or invalid UTF-8.  In a
 * JSON text (as_text) also with \/, which jansson writes back as /: so
 * each string left has one spelling, jansson's.
 */
static size_t
json_fast_string(const char *s, size_t i, size_t len, bool as_text,
    struct json_fast_str *out)
{
	size_t start = i, escapes = 0;
	bool ascii = true;

	for (; i < len; i++) {
		unsigned char c;

		/* Most of a string's text, 8 bytes at a time. */
		while (len - i >= 8 && !json_fast_word_special(s + i))
			i += 8;
		if (i == len)
			break;
		c = (unsigned char)s[i];

		if (c == '"')
			break;
		if (c < 0x20)
			return 0;
		if (c >= 0x80) {
			ascii = false;
		} else if (c == '\\') {
			if (i + 1 == len ||
			    memchr("\"\\bfnrt/", s[i + 1], as_text ? 7 : 8) ==
			        NULL)
				return 0;
			escapes++;
			i++;
		}
	}
	if (i == len)
		return 0;
	out->at = s + start;
	out->len = i - start;
	out->decoded = out->len - escapes; /* each escape is 2 bytes, 1 byte */
	out->escaped = escapes > 0;
	/* Escapes are ASCII: the text is UTF-8 when the value is. */
	if (!ascii && !http_utf8_valid(out->at, out->len))
		return 0;
	return i + 1;
}

/*
 * An integer at s[i] that jansson holds as it is and writes back as it
 * was sent: up to 18 digits (2^63 - 1 has 19), not -0, and no fraction or
 * exponent (jansson writes a real its own way).  Returns the index past
 * it, or 0.
 */
static size_t
json_fast_integer(const char *s, size_t i, size_t len)
{
	bool minus = s[i] == '-';
	size_t first = minus ? i + 1 : i;

	for (i = first; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == first || i - first > 18 || (s[first] == '0' && i - first > 1))
		return 0;
	if (minus && s[first] == '0')
		return 0; /* -0: jansson writes 0 */
	if (i < len && (s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
		return 0;
	return i;
}

/* The keys of the objects open in a JSON text, to find one given twice. */
struct json_fast_keys {
	struct {
		const char *at;
		size_t len;
	} key[JSON_FAST_KEYS];
	size_t n;
};

/*
 * The key whose text starts at s[i] (its opening quote), the colon after
 * it and the whitespace around that (counted in *spaces): returns the
 * index past them, or 0 for a key this does not read or one given twice
 * in the object whose keys start at keys->key[first] (jansson keeps the
 * last of two).
 */
static size_t
json_fast_key(const char *s, size_t i, size_t len, struct json_fast_keys *keys,
    size_t first, size_t *spaces)
{
	struct json_fast_str k;
	size_t at;

	if (i == len || s[i] != '"' || keys->n == JSON_FAST_KEYS)
		return 0;
	i = json_fast_string(s, i + 1, len, true, &k);
	if (i == 0)
		return 0;
	/* One spelling per string: the same text is the same key. */
	for (size_t j = first; j < keys->n; j++)
		if (keys->key[j].len == k.len &&
		    memcmp(keys->key[j].at, k.at, k.len) == 0)
			return 0;
	keys->key[keys->n].at = k.at;
	keys->key[keys->n++].len = k.len;
	at = i;
	i = json_fast_ws(s, i, len);
	if (i == len || s[i] != ':')
		return 0;
	*spaces += i - at;
	at = ++i;
	i = json_fast_ws(s, i, len);
	*spaces += i - at;
	return i;
}

/*
 * The JSON text of a value at s[i] that is not a string, into *out (its
 * whitespace outside strings counted, to be left out).  Returns the index
 * past it, or 0 for one this does not read: invalid, a string or number
 * as above, a key given twice, more than JSON_FAST_KEYS keys open, or
 * nesting deeper than depth more levels (the body's own nesting limit).
 */
static size_t
json_fast_text(const char *s, size_t i, size_t len, unsigned depth,
    struct json_fast_str *out)
{
	struct {
		char close;       /* '}' or ']' */
		size_t first_key; /* in keys, an object's */
	} open[JSON_FAST_DEPTH];
	struct json_fast_keys keys;
	struct json_fast_str str;
	size_t start = i, spaces = 0, at;
	unsigned n = 0;

	keys.n = 0;
	if (depth > JSON_FAST_DEPTH)
		depth = JSON_FAST_DEPTH;
	for (;;) {
		/* A value at s[i]. */
		if (i == len)
			return 0;
		if (s[i] == '{' || s[i] == '[') {
			if (n == depth)
				return 0;
			open[n].close = s[i] == '{' ? '}' : ']';
			open[n].first_key = keys.n;
			n++;
			at = ++i;
			i = json_fast_ws(s, i, len);
			spaces += i - at;
			if (i < len && s[i] == open[n - 1].close) {
				n--;
				keys.n = open[n].first_key;
				i++;
			} else if (open[n - 1].close == '}') {
				i = json_fast_key(s, i, len, &keys,
				    open[n - 1].first_key, &spaces);
				if (i == 0)
					return 0;
				continue;
			} else {
				continue;
			}
		} else if (s[i] == '"') {
			i = json_fast_string(s, i + 1, len, true, &str);
			if (i == 0)
				return 0;
		} else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
			i = json_fast_integer(s, i, len);
			if (i == 0)
				return 0;
		} else if (len - i >= 4 &&
		    (memcmp(s + i, "true", 4) == 0 ||
		        memcmp(s + i, "null", 4) == 0)) {
			i += 4;
		} else if (len - i >= 5 && memcmp(s + i, "false", 5) == 0) {
			i += 5;
		} else {
			return 0;
		}
		/* After a value: what it ends, then the next one. */
		for (;;) {
			if (n == 0) {
				out->at = s + start;
				out->len = i - start;
				out->decoded = out->len - spaces;
				out->escaped = false;
				out->text = true;
				return i;
			}
			at = i;
			i = json_fast_ws(s, i, len);
			spaces += i - at;
			if (i == len)
				return 0;
			if (s[i] == open[n - 1].close) {
				n--;
				keys.n = open[n].first_key;
				i++;
				continue;
			}
			if (s[i] != ',')
				return 0;
			at = ++i;
			i = json_fast_ws(s, i, len);
			spaces += i - at;
			if (open[n - 1].close == '}') {
				i = json_fast_key(s, i, len, &keys,
				    open[n - 1].first_key, &spaces);
				if (i == 0)
					return 0;
			}
			break;
		}
	}
}

bool
json_fast_scan(
    const char *s, size_t len, unsigned max_depth, struct json_fast *out)
{
	size_t i = json_fast_ws(s, 0, len);

	memset(out, 0, sizeof(*out));
	if (i == len || s[i] != '{' || max_depth < 1)
		return false;
	i = json_fast_ws(s, i + 1, len);
	for (;;) {
		struct json_fast_str *m;

		if (len - i >= 6 && memcmp(s + i, "\"data\"", 6) == 0) {
			m = &out->data;
			i += 6;
		} else if (len - i >= 7 && memcmp(s + i, "\"event\"", 7) == 0) {
			m = &out->event;
			i += 7;
		} else if (len - i >= 5 && memcmp(s + i, "\"key\"", 5) == 0) {
			m = &out->key;
			i += 5;
		} else {
			return false;
		}
		if (m->at != NULL)
			return false; /* given twice: jansson keeps the last */
		i = json_fast_ws(s, i, len);
		if (i == len || s[i] != ':')
			return false;
		i = json_fast_ws(s, i + 1, len);
		if (i == len)
			return false;
		if (s[i] == '"')
			i = json_fast_string(s, i + 1, len, false, m);
		else if (m == &out->data && s[i] != 'n') /* not null */
			i = json_fast_text(s, i, len, max_depth - 1, m);
		else
			return false;
		if (i == 0)
			return false;
		i = json_fast_ws(s, i, len);
		if (i == len)
			return false;
		if (s[i] == '}')
			break;
		if (s[i] != ',')
			return false;
		i = json_fast_ws(s, i + 1, len);
	}
	return json_fast_ws(s, i + 1, len) == len && out->data.at != NULL &&
	    !out->event.escaped && !out->key.escaped;
}

/* s's JSON text without its whitespace outside strings. */
static void
json_fast_copy_text(const struct json_fast_str *s, char *dst)
{
	const char *p = s->at, *end = s->at + s->len;

	if (s->decoded == s->len) { /* sent compact (JSON.stringify()) */
		memcpy(dst, p, s->len);
		dst[s->len] = '\0';
		return;
	}
	while (p < end) {
		if (*p == '"') {
			/* A string, to its closing quote, as it is. */
			const char *q = p + 1;

			while (*q != '"')
				q += *q == '\\' ? 2 : 1;
			memcpy(dst, p, (size_t)(q + 1 - p));
			dst += q + 1 - p;
			p = q + 1;
		} else {
			if (!json_fast_is_ws(*p))
				*dst++ = *p;
			p++;
		}
	}
	*dst = '\0';
}

void
json_fast_copy(const struct json_fast_str *s, char *dst)
{
	const char *p = s->at, *end = s->at + s->len;

	if (s->text) {
		json_fast_copy_text(s, dst);
		return;
	}
	while (p < end) {
		const char *bs =
		    s->escaped ? memchr(p, '\\', (size_t)(end - p)) : NULL;
		size_t n = (size_t)((bs != NULL ? bs : end) - p);

		memcpy(dst, p, n);
		dst += n;
		if (bs == NULL)
			break;
		switch (bs[1]) {
		case 'b':
			*dst++ = '\b';
			break;
		case 'f':
			*dst++ = '\f';
			break;
		case 'n':
			*dst++ = '\n';
			break;
		case 'r':
			*dst++ = '\r';
			break;
		case 't':
			*dst++ = '\t';
			break;
		default: /* " \ / */
			*dst++ = bs[1];
			break;
		}
		p = bs + 2;
	}
	*dst = '\0';
}
