/*
 * Inputs the fuzz drivers (tests/fuzz/) found to crash the service, each
 * replayed as the service meets it: on a thread with the production
 * worker stack (128 KiB, SERVER_STACK_SIZE without a sanitizer).  A
 * regression kills this test with SIGSEGV rather than failing an assert.
 *
 * Found by fuzz_auth (seeds tests/fuzz/corpus/auth/crash-*): JSON nested
 * a few thousand deep in a token's base64url header or payload, or in a
 * forward-auth claim, overflowed the stack in libjwt's call to jansson's
 * recursive parser, before any signature was checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "auth.h"
#include "filter.h"
#include "token.h"
#include "util.h"

#define FOUND_STACK_SIZE (128 * 1024)
#define SECRET                                                                 \
	"fuzz-secret-of-some-length-at-least-64-bytes-for-hs512-xxxxxxxxx"

/* unit repeated n times, between prefix and suffix. */
static char *
repeat(const char *prefix, const char *unit, size_t n, const char *suffix)
{
	struct buf b = {0};

	buf_puts(&b, prefix);
	for (size_t i = 0; i < n; i++)
		buf_puts(&b, unit);
	buf_puts(&b, suffix);
	return b.data;
}

/* base64url(head) "." base64url(payload) "." sig */
static char *
token(const char *head, const char *payload, const char *sig)
{
	struct buf b = {0};

	token_head_payload(&b, head, strlen(head), payload, strlen(payload));
	buf_puts(&b, sig);
	return b.data;
}

struct found {
	const char *mode; /* "jwt" or "header" */
	struct auth_request req;
	enum auth_result res;
};

static void *
found_run(void *arg)
{
	struct found *f = arg;
	const char *argv[] = {
	    "beep-signal", "--auth", f->mode, "--jwt-secret", SECRET};
	struct config c = {0};
	struct auth_identity id;
	struct auth *a;

	if (config_parse(&c, 5, (char **)argv) != 0)
		abort();
	a = auth_new(&c);
	f->res = auth_identify(a, &f->req, &id);
	if (f->res == AUTH_OK)
		auth_identity_clear(&id);
	auth_free(a);
	config_clear(&c);
	return NULL;
}

/* Identify on a production-sized worker stack; returns the result. */
static enum auth_result
identify_on_worker_stack(const char *mode, const struct auth_request *req)
{
	struct found f = {mode, *req, AUTH_RESULT__MAX};
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	assert_int_equal(pthread_attr_setstacksize(&attr, FOUND_STACK_SIZE), 0);
	assert_int_equal(pthread_create(&t, &attr, found_run, &f), 0);
	pthread_join(t, NULL);
	pthread_attr_destroy(&attr);
	return f.res;
}

/* tok as a Bearer token, in jwt mode, on a worker's stack. */
static enum auth_result
identify_bearer(const char *tok)
{
	struct buf h = {0};
	enum auth_result res;

	buf_printf(&h, "Bearer %s", tok);
	res = identify_on_worker_stack(
	    "jwt", &(struct auth_request){.authorization = h.data});
	buf_free(&h);
	return res;
}

/* tok as the cookie beep_token, after the cookies in before; likewise. */
static enum auth_result
identify_cookie(const char *before, const char *tok)
{
	struct buf h = {0};
	enum auth_result res;

	buf_printf(&h, "%sbeep_token=%s", before, tok);
	res = identify_on_worker_stack(
	    "jwt", &(struct auth_request){.cookie = h.data});
	buf_free(&h);
	return res;
}

/* The token of issue 8: Bearer base64url("[" x 1700).e30.AAAA */
static void
test_found_issue_token(void **state)
{
	char *head = repeat("", "[", 1700, "");
	char *tok = token(head, "{}", "AAAA");

	(void)state;
	assert_int_equal(identify_bearer(tok), AUTH_INVALID);
	assert_int_equal(identify_cookie("theme=dark; ", tok), AUTH_INVALID);
	assert_int_equal(identify_on_worker_stack(
	                     "jwt", &(struct auth_request){.query_token = tok}),
	    AUTH_INVALID);
	free(tok);
	free(head);
}

/* fuzz_auth crash-nested-header: the header is "[" x 2040. */
static void
test_found_nested_header(void **state)
{
	char *head = repeat("", "[", 2040, "");
	char *tok = token(head, "{\"sub\":\"a\",\"exp\":4102444800}", "x");

	(void)state;
	assert_int_equal(identify_bearer(tok), AUTH_INVALID);
	free(tok);
	free(head);
}

/*
 * fuzz_auth crash-nested-payload-cookie and crash-nested-signed-object:
 * a good header, the payload nests 2040 deep (arrays, then objects).
 */
static void
test_found_nested_payload(void **state)
{
	char *arrays = repeat("", "[", 2040, "");
	char *objects = repeat(
	    "{\"sub\":\"a\",\"exp\":4102444800,\"x\":", "{\"a\":", 2040, "1");
	const char *payloads[] = {arrays, objects};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		char *tok = token("{\"alg\":\"HS256\"}", payloads[i], "x");

		assert_int_equal(identify_cookie("", tok), AUTH_INVALID);
		free(tok);
	}
	free(objects);
	free(arrays);
}

/* fuzz_auth crash-nested-claim: header mode, the claim is "[" x 2040. */
static void
test_found_nested_claim(void **state)
{
	char *claim = repeat("", "[", 2040, "");

	(void)state;
	assert_int_equal(identify_on_worker_stack(
	                     "header", &(struct auth_request){.claim = claim}),
	    AUTH_INVALID);
	free(claim);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_found_issue_token),
	    cmocka_unit_test(test_found_nested_header),
	    cmocka_unit_test(test_found_nested_payload),
	    cmocka_unit_test(test_found_nested_claim),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
