/*
 * Route and id decoding: a raw REQUEST_URI as a client sends it, through
 * route_match(), the query-string reader and the percent-decoder, with the
 * UTF-8 and id checks judged against jansson's own UTF-8 validator.
 *
 * Input: one byte picks the method and max_id, the rest is the URI.
 */
#include <jansson.h>

#include "fuzz.h"
#include "http.h"
#include "route.h"

/* Whether s holds a C0 control, DEL or a C1 control (UTF-8: C2 80-9F). */
static bool
has_control(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f ||
		    (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 &&
		        s[i + 1] <= 0x9f))
			return true;
	return false;
}

/* Whether "." or ".." is one of the pieces between s's '/' (or all of s). */
static bool
has_dot_piece(const char *s, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/')
			continue;
		if ((i - start == 1 && s[start] == '.') ||
		    (i - start == 2 && s[start] == '.' && s[start + 1] == '.'))
			return true;
		start = i + 1;
	}
	return false;
}

/* jansson refuses to make a string of anything but valid UTF-8. */
static bool
utf8_reference(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);

	json_decref(j);
	return j != NULL;
}

static void
check_id(const char *id, size_t len, size_t max_id)
{
	FUZZ_CHECK(id != NULL && len >= 1 && len <= max_id);
	FUZZ_CHECK(id[len] == '\0');
	FUZZ_CHECK(http_id_valid(id, len, max_id));
	FUZZ_CHECK(!has_control((const unsigned char *)id, len));
}

static void
check_decoders(const char *s, size_t len, size_t max_id)
{
	char *out = malloc(len + 1);
	size_t n = 0;
	bool utf8 = http_utf8_valid(s, len);

	/* Decoding never lengthens, and always terminates what it made. */
	for (int plus = 0; plus < 2; plus++) {
		if (http_percent_decode(s, len, plus, out, &n) == 0) {
			FUZZ_CHECK(n <= len);
			FUZZ_CHECK(out[n] == '\0');
			FUZZ_CHECK(plus || memchr(s, '%', len) ||
			    (n == len && memcmp(s, out, len) == 0));
		}
	}
	free(out);
	FUZZ_CHECK(utf8 == utf8_reference(s, len));
	FUZZ_CHECK(http_id_valid(s, len, max_id) ==
	    (utf8 && len >= 1 && len <= max_id &&
	        !has_control((const unsigned char *)s, len) &&
	        !has_dot_piece(s, len)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {
	    "GET", "HEAD", "POST", "OPTIONS", "PUT"};
	static const char *const params[] = {
	    "access_token", "lastEventId", "last_event_id", "envelope"};
	enum route_method method;
	enum route_result res;
	size_t max_id, len;
	struct route r;
	char *uri, room[24];

	if (size < 1)
		return 0;
	method = route_method_parse(methods[data[0] % 5]);
	max_id = (size_t)(data[0] >> 3) + 1; /* 1..32: the limit is reached */
	data++, size--;
	uri = fuzz_take(&data, &size, '\0', &len);

	check_decoders(uri, len, max_id);
	/* Room for short ids: both the caller's room and the heap are met. */
	res = route_match(method, uri, max_id, room, sizeof(room), &r);
	FUZZ_CHECK(res < ROUTE_RESULT__MAX);
	if (res == ROUTE_OK) {
		FUZZ_CHECK(r.id > ROUTE_NONE && r.id < ROUTE__MAX);
		/* Only these routes carry ids (the others: /healthz...). */
		if (r.id == ROUTE_SUBSCRIBE || r.id == ROUTE_DEVICES ||
		    r.id == ROUTE_POST)
			check_id(r.user, r.user_len, max_id);
		else
			FUZZ_CHECK(r.user == NULL);
		if (r.id == ROUTE_SUBSCRIBE || r.id == ROUTE_POST)
			check_id(r.device, r.device_len, max_id);
		else
			FUZZ_CHECK(r.device == NULL);
	} else {
		FUZZ_CHECK(r.user == NULL && r.device == NULL);
	}
	if (res != ROUTE_NOT_FOUND)
		FUZZ_CHECK(route_allow(r.id)[0] != '\0');
	/* The query is what follows the first '?', in place. */
	FUZZ_CHECK(r.query == NULL ||
	    (r.query > uri && r.query[-1] == '?' &&
	        memchr(uri, '?', len) == r.query - 1));
	if (r.query != NULL) {
		for (size_t i = 0; i < sizeof(params) / sizeof(params[0]);
		     i++) {
			char *v = http_query_param(r.query, params[i], NULL);

			FUZZ_CHECK(v == NULL || strlen(v) < strlen(r.query));
			free(v);
		}
	}
	route_clear(&r);
	free(uri);
	return 0;
}
