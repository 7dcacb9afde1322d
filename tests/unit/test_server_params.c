/*
 * Unit tests for server_params: FastCGI parameters ("name=value", as
 * libfcgi keeps them) mapped onto an api_request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "filter.h"
#include "server_params.h"
#include "util.h"

/* Every field from its parameter; the claim from the configured name. */
static void
test_server_params_fields(void **state)
{
	char *envp[] = {"REQUEST_METHOD=POST",
	    "REQUEST_URI=/user/a/device/b?x=1", "CONTENT_TYPE=application/json",
	    "CONTENT_LENGTH=17", "HTTP_ORIGIN=https://a.example",
	    "HTTP_LAST_EVENT_ID=42", "HTTP_AUTHORIZATION=Bearer t",
	    "HTTP_COOKIE=c=1", "REMOTE_ADDR=192.0.2.1",
	    "HTTP_SEC_FETCH_SITE=same-origin", "HTTP_HOST=a.example",
	    "HTTPS=On", "HTTP_X_USER_CLAIM=client", "BEEP_USER=alice",
	    "HTTP_ACCEPT=text/event-stream", "SCRIPT_NAME=/ignored", NULL};
	struct api_request ar = {0};
	struct buf uri = {0};

	(void)state;
	server_params_to_request(envp, "BEEP_USER", &ar, &uri);
	assert_string_equal(ar.method, "POST");
	assert_string_equal(ar.uri, "/user/a/device/b?x=1");
	assert_string_equal(ar.content_type, "application/json");
	assert_string_equal(ar.content_length, "17");
	assert_string_equal(ar.origin, "https://a.example");
	assert_string_equal(ar.last_event_id, "42");
	assert_string_equal(ar.authorization, "Bearer t");
	assert_string_equal(ar.cookie, "c=1");
	assert_string_equal(ar.remote_addr, "192.0.2.1");
	assert_string_equal(ar.sec_fetch_site, "same-origin");
	assert_string_equal(ar.host, "a.example");
	assert_string_equal(ar.accept, "text/event-stream");
	assert_true(ar.https); /* "on" in any case */
	assert_string_equal(ar.claim, "alice");
	assert_null(uri.data); /* REQUEST_URI given: nothing rebuilt */
	buf_free(&uri);
}

/*
 * Missing parameters are NULL, https false; the first of two with one
 * name wins; a name that only starts like a wanted one, or a value with
 * '=' in it, is not confused; no claim parameter configured: no claim.
 */
static void
test_server_params_missing_and_first(void **state)
{
	char *envp[] = {"REQUEST_METHODX=PUT", "REQUEST_METHOD=GET",
	    "REQUEST_METHOD=DELETE", "REQUEST_URI=/a=b", "HTTPS=off",
	    "NOEQUALS", "=empty-name", NULL};
	struct api_request ar = {0};
	struct buf uri = {0};

	(void)state;
	server_params_to_request(envp, NULL, &ar, &uri);
	assert_string_equal(ar.method, "GET");
	assert_string_equal(ar.uri, "/a=b");
	assert_false(ar.https);
	assert_null(ar.content_type);
	assert_null(ar.content_length);
	assert_null(ar.origin);
	assert_null(ar.remote_addr);
	assert_null(ar.claim);
	buf_free(&uri);

	memset(&ar, 0, sizeof(ar));
	server_params_to_request(NULL, "BEEP_USER", &ar, &uri);
	assert_null(ar.method);
	assert_false(ar.https);
	assert_null(ar.claim);
	assert_string_equal(ar.uri, ""); /* rebuilt from nothing */
	buf_free(&uri);
}

/*
 * The lookup compares a parameter only with the wanted names of its
 * length: a claim parameter named like another wanted one gets the same
 * value, names of one length do not mask each other, and a name longer
 * than the length chains (32 bytes) is found, but not by a prefix.
 */
static void
test_server_params_lengths(void **state)
{
	char *envp[] = {"SCRIPT_NAME=/s", "REMOTE_PORT=1", "HTTP_COOKIE=c",
	    "REMOTE_ADDR=192.0.2.7", "HTTP_ORIGIN=https://o.example",
	    "REQUEST_URI=/u", "X_A_CLAIM_PARAMETER_OF_40_BYTES_LONG_0=no",
	    "X_A_CLAIM_PARAMETER_OF_40_BYTES_LONG_01=yes", NULL};
	struct api_request ar = {0};
	struct buf uri = {0};

	(void)state;
	server_params_to_request(envp, "REMOTE_ADDR", &ar, &uri);
	assert_string_equal(ar.remote_addr, "192.0.2.7");
	assert_string_equal(ar.claim, "192.0.2.7");
	assert_string_equal(ar.cookie, "c");
	assert_string_equal(ar.origin, "https://o.example");
	assert_string_equal(ar.uri, "/u");
	memset(&ar, 0, sizeof(ar));
	server_params_to_request(
	    envp, "X_A_CLAIM_PARAMETER_OF_40_BYTES_LONG_01", &ar, &uri);
	assert_string_equal(ar.claim, "yes");
	assert_string_equal(ar.remote_addr, "192.0.2.7");
	buf_free(&uri);
}

/* The wanted names but HTTPS, with the field each one fills. */
static const struct {
	const char *name;
	size_t field;
} server_params_names[] = {
    {"REQUEST_METHOD", offsetof(struct api_request, method)},
    {"REQUEST_URI", offsetof(struct api_request, uri)},
    {"CONTENT_TYPE", offsetof(struct api_request, content_type)},
    {"CONTENT_LENGTH", offsetof(struct api_request, content_length)},
    {"HTTP_ORIGIN", offsetof(struct api_request, origin)},
    {"HTTP_LAST_EVENT_ID", offsetof(struct api_request, last_event_id)},
    {"HTTP_AUTHORIZATION", offsetof(struct api_request, authorization)},
    {"HTTP_COOKIE", offsetof(struct api_request, cookie)},
    {"REMOTE_ADDR", offsetof(struct api_request, remote_addr)},
    {"HTTP_SEC_FETCH_SITE", offsetof(struct api_request, sec_fetch_site)},
    {"HTTP_HOST", offsetof(struct api_request, host)},
    {"HTTP_ACCEPT", offsetof(struct api_request, accept)},
};
#define SERVER_PARAMS_NAMES                                                    \
	(sizeof(server_params_names) / sizeof(server_params_names[0]))

static const char *
server_params_field(const struct api_request *ar, size_t field)
{
	return *(const char *const *)((const char *)ar + field);
}

/*
 * Each name is found by itself, and only by itself: names that differ
 * from it in their last character, or are one longer or one shorter (it
 * a prefix of them, or they of it) fill no field (the uri is then rebuilt,
 * from nothing); the name itself with an empty value fills its field with
 * "", and wins over a duplicate that follows.
 */
static void
test_server_params_each_name(void **state)
{
	(void)state;
	for (size_t i = 0; i < SERVER_PARAMS_NAMES; i++) {
		const char *name = server_params_names[i].name;
		int len = (int)strlen(name);
		char miss[64], longer[64], shorter[64], empty[64], second[64];
		char *near[] = {miss, longer, shorter, NULL};
		char *envp[] = {miss, longer, empty, second, shorter, NULL};
		struct api_request ar = {0};
		struct buf uri = {0};
		const char *got;

		snprintf(miss, sizeof(miss), "%.*s%c=miss", len - 1, name,
		    name[len - 1] + 1);
		snprintf(longer, sizeof(longer), "%sX=longer", name);
		snprintf(
		    shorter, sizeof(shorter), "%.*s=shorter", len - 1, name);
		snprintf(empty, sizeof(empty), "%s=", name);
		snprintf(second, sizeof(second), "%s=second", name);

		server_params_to_request(near, NULL, &ar, &uri);
		for (size_t j = 0; j < SERVER_PARAMS_NAMES; j++) {
			got = server_params_field(
			    &ar, server_params_names[j].field);
			if (j == 1) /* REQUEST_URI */
				assert_ptr_equal(got, uri.data);
			if (got != NULL && got != uri.data)
				fail_msg("near %s: %s took '%s'", name,
				    server_params_names[j].name, got);
		}
		assert_string_equal(ar.uri, "");
		assert_false(ar.https);
		buf_free(&uri);

		memset(&ar, 0, sizeof(ar));
		server_params_to_request(envp, NULL, &ar, &uri);
		got = server_params_field(&ar, server_params_names[i].field);
		if (got == NULL || strcmp(got, "") != 0)
			fail_msg("%s: got '%s', want the first, empty", name,
			    got ? got : "(null)");
		buf_free(&uri);
	}
}

/* HTTPS likewise: near names are not it; the first of two wins. */
static void
test_server_params_https(void **state)
{
	char *near[] = {"HTTPT=on", "HTTPSX=on", "HTTP=on", NULL};
	char *on_off[] = {"HTTP=off", "HTTPS=on", "HTTPS=off", NULL};
	char *off_on[] = {"HTTPS=off", "HTTPS=on", NULL};
	struct api_request ar = {0};
	struct buf uri = {0};

	(void)state;
	server_params_to_request(near, NULL, &ar, &uri);
	assert_false(ar.https);
	buf_free(&uri);
	server_params_to_request(on_off, NULL, &ar, &uri);
	assert_true(ar.https);
	buf_free(&uri);
	server_params_to_request(off_on, NULL, &ar, &uri);
	assert_false(ar.https);
	buf_free(&uri);
}

/* Fronts that send no REQUEST_URI: SCRIPT_NAME + PATH_INFO [? QUERY]. */
static void
test_server_params_rebuilt_uri(void **state)
{
	static const struct {
		char *sn, *pi, *qs;
		const char *want;
	} cases[] = {
	    {"SCRIPT_NAME=/subscribe", "PATH_INFO=/u/device/d",
	        "QUERY_STRING=a=1", "/subscribe/u/device/d?a=1"},
	    {"SCRIPT_NAME=/healthz", "PATH_INFO=", "QUERY_STRING=", "/healthz"},
	    {"SCRIPT_NAME=", "PATH_INFO=/p", "QUERY_STRING=q", "/p?q"},
	    {"X=1", "Y=2", "Z=3", ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *envp[] = {cases[i].sn, cases[i].pi, cases[i].qs, NULL};
		struct api_request ar = {0};
		struct buf uri = {0};

		server_params_to_request(envp, "BEEP_USER", &ar, &uri);
		assert_non_null(ar.uri);
		if (strcmp(ar.uri, cases[i].want) != 0)
			fail_msg("case %zu: '%s', want '%s'", i, ar.uri,
			    cases[i].want);
		assert_ptr_equal(ar.uri, uri.data);
		buf_free(&uri);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_server_params_fields),
	    cmocka_unit_test(test_server_params_lengths),
	    cmocka_unit_test(test_server_params_each_name),
	    cmocka_unit_test(test_server_params_https),
	    cmocka_unit_test(test_server_params_missing_and_first),
	    cmocka_unit_test(test_server_params_rebuilt_uri),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
