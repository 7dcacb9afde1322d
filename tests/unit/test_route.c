/* Unit tests for route: paths, methods and id decoding, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"
#include "http.h"
#include "route.h"

static const struct {
	const char *method;
	const char *uri;
	enum route_result res;
	enum route_id id;
	const char *user;
	const char *device;
} route_cases[] = {
    {"GET", "/subscribe/bob/device/phone", ROUTE_OK, ROUTE_SUBSCRIBE, "bob",
        "phone"},
    {"GET", "/subscribe/bob/device/phone?lastEventId=3", ROUTE_OK,
        ROUTE_SUBSCRIBE, "bob", "phone"},
    {"GET", "/user/bob/devices", ROUTE_OK, ROUTE_DEVICES, "bob", NULL},
    {"POST", "/user/bob/device/phone", ROUTE_OK, ROUTE_POST, "bob", "phone"},
    {"POST", "/user/a%2Fb/device/caf%C3%A9", ROUTE_OK, ROUTE_POST, "a/b",
        "caf\xc3\xa9"},
    {"POST", "/user/a+b/device/x%20y", ROUTE_OK, ROUTE_POST, "a+b", "x y"},
    {"GET", "/healthz", ROUTE_OK, ROUTE_HEALTH, NULL, NULL},
    {"GET", "/metrics", ROUTE_OK, ROUTE_METRICS, NULL, NULL},
    {"GET", "/readyz", ROUTE_OK, ROUTE_READY, NULL, NULL},
    {"POST", "/metrics", ROUTE_BAD_METHOD, ROUTE_METRICS, NULL, NULL},
    {"GET", "/ice-servers", ROUTE_OK, ROUTE_ICE, NULL, NULL},
    {"GET", "/ice-servers?user=bob", ROUTE_OK, ROUTE_ICE, NULL, NULL},
    {"POST", "/ice-servers", ROUTE_BAD_METHOD, ROUTE_ICE, NULL, NULL},
    {"GET", "/ice-servers/x", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"OPTIONS", "/user/bob/device/phone", ROUTE_OK, ROUTE_POST, "bob", "phone"},
    {"POST", "/subscribe/bob/device/phone", ROUTE_BAD_METHOD, ROUTE_SUBSCRIBE,
        NULL, NULL},
    {"GET", "/user/bob/device/phone", ROUTE_BAD_METHOD, ROUTE_POST, NULL, NULL},
    {"DELETE", "/user/bob/devices", ROUTE_BAD_METHOD, ROUTE_DEVICES, NULL,
        NULL},
    /* HEAD as GET, but for a stream. */
    {"HEAD", "/healthz", ROUTE_OK, ROUTE_HEALTH, NULL, NULL},
    {"HEAD", "/user/bob/devices", ROUTE_OK, ROUTE_DEVICES, "bob", NULL},
    {"HEAD", "/ice-servers", ROUTE_OK, ROUTE_ICE, NULL, NULL},
    {"HEAD", "/subscribe/bob/device/phone", ROUTE_BAD_METHOD, ROUTE_SUBSCRIBE,
        NULL, NULL},
    {"HEAD", "/user/bob/device/phone", ROUTE_BAD_METHOD, ROUTE_POST, NULL,
        NULL},
    {"GET", "/", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    /*
     * One trailing '/' on the Express service's routes, as Express
     * (strict: false) took it; not two, nor on the routes of its own.
     */
    {"GET", "/user/bob/devices/", ROUTE_OK, ROUTE_DEVICES, "bob", NULL},
    {"GET", "/subscribe/bob/device/phone/", ROUTE_OK, ROUTE_SUBSCRIBE, "bob",
        "phone"},
    {"POST", "/user/bob/device/phone/?x=1", ROUTE_OK, ROUTE_POST, "bob",
        "phone"},
    {"GET", "/user/bob/devices//", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"POST", "/user/bob/device//", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"GET", "/subscribe/bob/device/phone/x/", ROUTE_NOT_FOUND, ROUTE_NONE, NULL,
        NULL},
    {"GET", "/healthz/", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"GET", "/metrics/", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"GET", "//", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"GET", "/users/bob/devices", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"GET", "/subscribe/a/device/b/c", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"GET", "/a/b/c/d/e/f", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"GET", "relative", ROUTE_NOT_FOUND, ROUTE_NONE, NULL, NULL},
    {"GET", "/user//devices", ROUTE_BAD_ID, ROUTE_DEVICES, NULL, NULL},
    {"GET", "/user/%0A/devices", ROUTE_BAD_ID, ROUTE_DEVICES, NULL, NULL},
    {"GET", "/user/%00/devices", ROUTE_BAD_ID, ROUTE_DEVICES, NULL, NULL},
    {"GET", "/user/%C3%28/devices", ROUTE_BAD_ID, ROUTE_DEVICES, NULL, NULL},
    {"GET", "/user/%zz/devices", ROUTE_BAD_ESCAPE, ROUTE_DEVICES, NULL, NULL},
    {"POST", "/user/bob/device/%", ROUTE_BAD_ESCAPE, ROUTE_POST, NULL, NULL},
};

static void
test_route_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]);
	     i++) {
		struct route r;
		enum route_result res =
		    route_match(route_method_parse(route_cases[i].method),
		        route_cases[i].uri, 256, NULL, 0, &r);

		assert_int_equal(res, route_cases[i].res);
		assert_int_equal(r.id, route_cases[i].id);
		if (route_cases[i].user)
			assert_string_equal(r.user, route_cases[i].user);
		else if (res == ROUTE_OK &&
		    (r.id == ROUTE_HEALTH || r.id == ROUTE_ICE))
			assert_null(r.user);
		if (route_cases[i].device)
			assert_string_equal(r.device, route_cases[i].device);
		route_clear(&r);
	}
}

/* Ids that fit in the caller's room take no block; longer ones do. */
static void
test_route_room(void **state)
{
	char room[12];
	struct route r;

	(void)state;
	assert_int_equal(route_match(METHOD_POST, "/user/b%6Fb/device/d1", 256,
	                     room, sizeof(room), &r),
	    ROUTE_OK);
	assert_false(r.ids_owned);
	assert_ptr_equal(r.user, room);
	assert_string_equal(r.user, "bob");
	assert_string_equal(r.device, "d1");
	route_clear(&r);
	assert_null(r.user);
	/* The room asked is the segments' raw length (escapes included). */
	assert_int_equal(route_match(METHOD_POST, "/user/bob/device/d12345678",
	                     256, room, sizeof(room), &r),
	    ROUTE_OK);
	assert_true(r.ids_owned);
	assert_true(r.user < room || r.user >= room + sizeof(room));
	assert_string_equal(r.device, "d12345678");
	route_clear(&r);
	assert_false(r.ids_owned);
	/* A refused id frees the block it took. */
	assert_int_equal(route_match(METHOD_POST, "/user/bob/device/%00xxxxx",
	                     256, room, sizeof(room), &r),
	    ROUTE_BAD_ID);
	assert_null(r.user);
	assert_false(r.ids_owned);
}

static void
test_route_id_limit(void **state)
{
	char uri[1024], id[300];
	struct route r;

	(void)state;
	memset(id, 'u', sizeof(id));
	/* Exactly max_id bytes is fine; one more is not. */
	snprintf(uri, sizeof(uri), "/user/%.*s/devices", 10, id);
	assert_int_equal(
	    route_match(METHOD_GET, uri, 10, NULL, 0, &r), ROUTE_OK);
	assert_int_equal(r.user_len, 10);
	route_clear(&r);
	snprintf(uri, sizeof(uri), "/user/%.*s/devices", 11, id);
	assert_int_equal(
	    route_match(METHOD_GET, uri, 10, NULL, 0, &r), ROUTE_BAD_ID);
	/* The limit counts decoded bytes: "%C3%A9" is 2 bytes, not 6. */
	assert_int_equal(route_match(METHOD_GET,
	                     "/user/%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9/devices", 10,
	                     NULL, 0, &r),
	    ROUTE_OK);
	assert_int_equal(r.user_len, 10);
	route_clear(&r);
}

/*
 * Every id of up to 4 bytes from an alphabet of the bytes the one-pass
 * path for plain ASCII ids (route_decode_id()) must tell apart, at four
 * limits, routed as the decoder and the check alone judge it: the same
 * result, the same id.
 */
static void
test_route_id_every(void **state)
{
	static const char alpha[] = "a.%2F0 +~\x1f\x7f\xc3\xa9";
	const size_t na = sizeof(alpha) - 1;
	size_t total = 1;

	(void)state;
	for (int k = 0; k < 4; k++)
		total *= na + 1;
	for (size_t code = 0; code < total; code++) {
		char id[5], want[5], uri[64];
		size_t len = 0, want_len = 0;

		/* base na + 1, low digit first; a 0 ends the id */
		for (size_t c = code; c % (na + 1) != 0; c /= na + 1)
			id[len++] = alpha[c % (na + 1) - 1];
		id[len] = '\0';
		snprintf(uri, sizeof(uri), "/user/%s/device/x", id);
		for (size_t max_id = 1; max_id <= 4; max_id++) {
			struct route r;
			enum route_result want_res, res;

			if (len == 0 || len > 3 * max_id)
				want_res = ROUTE_BAD_ID;
			else if (http_percent_decode(
			             id, len, false, want, &want_len) < 0)
				want_res = ROUTE_BAD_ESCAPE;
			else if (!http_id_valid(want, want_len, max_id))
				want_res = ROUTE_BAD_ID;
			else
				want_res = ROUTE_OK;
			res =
			    route_match(METHOD_POST, uri, max_id, NULL, 0, &r);
			if (res != want_res)
				fail_msg("\"%s\" max %zu: %d, want %d", uri,
				    max_id, (int)res, (int)want_res);
			if (res == ROUTE_OK) {
				assert_int_equal(r.user_len, want_len);
				assert_memory_equal(r.user, want, want_len + 1);
				assert_string_equal(r.device, "x");
			}
			route_clear(&r);
		}
	}
}

static void
test_route_allow(void **state)
{
	(void)state;
	assert_string_equal(route_allow(ROUTE_POST), "POST, OPTIONS");
	assert_string_equal(route_allow(ROUTE_SUBSCRIBE), "GET, OPTIONS");
	assert_string_equal(route_allow(ROUTE_HEALTH), "GET, HEAD, OPTIONS");
	assert_int_equal(route_method_parse(NULL), METHOD_OTHER);
	assert_int_equal(route_method_parse("get"), METHOD_OTHER);
	/* Told apart by their first letter, then compared whole. */
	assert_int_equal(route_method_parse("GET"), METHOD_GET);
	assert_int_equal(route_method_parse("HEAD"), METHOD_HEAD);
	assert_int_equal(route_method_parse("POST"), METHOD_POST);
	assert_int_equal(route_method_parse("OPTIONS"), METHOD_OPTIONS);
	assert_int_equal(route_method_parse("PUT"), METHOD_OTHER);
	assert_int_equal(route_method_parse("POSTS"), METHOD_OTHER);
	assert_int_equal(route_method_parse("GE"), METHOD_OTHER);
	assert_int_equal(route_method_parse(""), METHOD_OTHER);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_route_table),
	    cmocka_unit_test(test_route_id_limit),
	    cmocka_unit_test(test_route_room),
	    cmocka_unit_test(test_route_id_every),
	    cmocka_unit_test(test_route_allow),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
