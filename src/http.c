/* http: see http.h. */
#include "http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

const int http_status_code[HTTP__MAX] = {
    [HTTP_200] = 200,
    [HTTP_202] = 202,
    [HTTP_204] = 204,
    [HTTP_400] = 400,
    [HTTP_401] = 401,
    [HTTP_403] = 403,
    [HTTP_404] = 404,
    [HTTP_405] = 405,
    [HTTP_408] = 408,
    [HTTP_413] = 413,
    [HTTP_415] = 415,
    [HTTP_429] = 429,
    [HTTP_500] = 500,
    [HTTP_503] = 503,
};

const char *const http_status_text[HTTP__MAX] = {
    [HTTP_200] = "OK",
    [HTTP_202] = "Accepted",
    [HTTP_204] = "No Content",
    [HTTP_400] = "Bad Request",
    [HTTP_401] = "Unauthorized",
    [HTTP_403] = "Forbidden",
    [HTTP_404] = "Not Found",
    [HTTP_405] = "Method Not Allowed",
    [HTTP_408] = "Request Timeout",
    [HTTP_413] = "Content Too Large",
    [HTTP_415] = "Unsupported Media Type",
    [HTTP_429] = "Too Many Requests",
    [HTTP_500] = "Internal Server Error",
    [HTTP_503] = "Service Unavailable",
};

static int
http_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
http_percent_decode(
    const char *s, size_t len, bool plus_is_space, char *out, size_t *out_len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (len - i < 3)
				return -1;
			hi = http_hex(s[i + 1]);
			lo = http_hex(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			out[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+' && plus_is_space) {
			out[n++] = ' ';
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	*out_len = n;
	return 0;
}

/*
 * Decode one UTF-8 sequence at s[0..len); return its length and the code
 * point in *cp, or 0 when it is malformed (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF).
 */
static size_t
http_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

bool
http_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	while (len > 0) {
		size_t n = http_utf8_next(p, len, &cp);

		if (n == 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

bool
http_id_valid(const char *s, size_t len, size_t max_len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	if (len == 0 || len > max_len)
		return false;
	/*
	 * "." and "..", also as a piece of an id between its "/" (sent as
	 * %2F): browsers and fronts resolve them, %2E-escaped too, and Caddy
	 * and nginx after decoding %2F, as steps of the path, so no page
	 * could reach such an id, and each front would route it its own way
	 * (through the Caddyfile a subscribe to device "../../../x.js" was
	 * answered with web/'s file of that name).
	 */
	for (size_t at = 0; at < len;) {
		const char *slash = memchr(s + at, '/', len - at);
		size_t n = (slash != NULL ? (size_t)(slash - s) : len) - at;

		if ((n == 1 && s[at] == '.') ||
		    (n == 2 && s[at] == '.' && s[at + 1] == '.'))
			return false;
		at += n + 1;
	}
	while (len > 0) {
		size_t n = http_utf8_next(p, len, &cp);

		if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return false;
		p += n;
		len -= n;
	}
	return true;
}

bool
http_media_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, type, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/*
 * Whether the parameters of a media range (from its first ';' to end)
 * hold q=0, which says the type is not acceptable (RFC 9110, 12.4.2).
 */
static bool
http_range_refused(const char *p, const char *end)
{
	while (p < end) {
		const char *v;

		p++; /* the ';' */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p >= 2 && (*p == 'q' || *p == 'Q') && p[1] == '=') {
			v = p + 2;
			if (v < end && *v == '0') {
				for (v++; v < end && (*v == '.' || *v == '0');
				     v++)
					;
				while (v < end && (*v == ' ' || *v == '\t'))
					v++;
				if (v == end || *v == ';')
					return true;
			}
		}
		while (p < end && *p != ';')
			p++;
	}
	return false;
}

/* Whether the media range p (len bytes, parameters cut) is name. */
static bool
http_range_is(const char *p, size_t len, const char *name)
{
	return len == strlen(name) && strncasecmp(p, name, len) == 0;
}

bool
http_accepts_event_stream_only(const char *accept)
{
	bool stream = false;

	if (accept == NULL)
		return false;
	for (const char *p = accept; *p != '\0';) {
		const char *end = strchr(p, ','), *e;

		if (end == NULL)
			end = p + strlen(p);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		for (e = p; e < end && *e != ';'; e++)
			;
		if (http_range_refused(e, end)) {
			p = *end == ',' ? end + 1 : end;
			continue;
		}
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (http_range_is(p, (size_t)(e - p), "application/json") ||
		    http_range_is(p, (size_t)(e - p), "application/*") ||
		    http_range_is(p, (size_t)(e - p), "*/*"))
			return false;
		stream = stream ||
		    http_range_is(p, (size_t)(e - p), "text/event-stream");
		p = *end == ',' ? end + 1 : end;
	}
	return stream;
}

char *
http_query_param(const char *q, const char *name, bool *malformed)
{
	size_t name_len = strlen(name);

	if (malformed != NULL)
		*malformed = false;
	while (q != NULL && *q != '\0') {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);

		if (len > name_len && strncmp(q, name, name_len) == 0 &&
		    q[name_len] == '=') {
			const char *v = q + name_len + 1;
			size_t vlen = len - name_len - 1, out_len;
			char *out = xmalloc(vlen + 1);

			/*
			 * A %00 would cut the value short for every caller
			 * (C strings): a value that holds one is malformed.
			 */
			if (http_percent_decode(v, vlen, true, out, &out_len) <
			        0 ||
			    memchr(out, '\0', out_len) != NULL) {
				free(out);
				if (malformed != NULL)
					*malformed = true;
				return NULL;
			}
			return out;
		}
		q = end ? end + 1 : NULL;
	}
	return NULL;
}
