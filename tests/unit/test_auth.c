/*
 * Unit tests for auth: tokens minted here with libjwt, and forward-auth
 * identity headers.  (RS256/ES256 and the algorithm-confusion attack
 * with a real key pair are in tests/integration/12-auth-jwt.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jwt.h>

#include "auth.h"

#define SECRET "test-secret-of-some-length"

struct claim {
	const char *name;
	const char *str; /* a string claim, or NULL for... */
	long num;        /* ...a number claim */
};

static char *
mint(jwt_alg_t alg, const char *secret, const struct claim *claims, size_t n)
{
	jwt_t *jwt;
	char *tok, *out;

	jwt_new(&jwt);
	for (size_t i = 0; i < n; i++) {
		if (claims[i].str)
			jwt_add_grant(jwt, claims[i].name, claims[i].str);
		else
			jwt_add_grant_int(jwt, claims[i].name, claims[i].num);
	}
	jwt_set_alg(jwt, alg, (const unsigned char *)secret,
	    secret ? (int)strlen(secret) : 0);
	tok = jwt_encode_str(jwt);
	out = strdup(tok);
	free(tok);
	jwt_free(jwt);
	return out;
}

static struct config conf;

static struct auth *
new_auth(const char *mode, const char *iss, const char *aud)
{
	const char *argv[] = {"beep-signal", "--auth", mode, "--jwt-secret",
	    SECRET, "--jwt-issuer", iss, "--jwt-audience", aud, "--jwt-leeway",
	    "0"};

	config_clear(&conf);
	assert_int_equal(config_parse(&conf, 11, (char **)argv), 0);
	return auth_new(&conf);
}

static enum auth_result
bearer(struct auth *a, const char *token, struct auth_identity *id)
{
	char header[2048];
	struct auth_request req = {.authorization = header};

	snprintf(header, sizeof(header), "Bearer %s", token);
	return auth_identify(a, &req, id);
}

static void
test_auth_jwt(void **state)
{
	struct auth *a = new_auth("jwt", "", "");
	long now = (long)time(NULL);
	struct auth_identity id;
	char *t;

	(void)state;
	{
		struct claim c[] = {{"sub", "alice", 0},
		    {"exp", NULL, now + 60}, {"device", "phone", 0}};

		t = mint(JWT_ALG_HS256, SECRET, c, 3);
		assert_int_equal(bearer(a, t, &id), AUTH_OK);
		assert_string_equal(id.user, "alice");
		assert_string_equal(id.device, "phone");
		auth_identity_clear(&id);
		free(t);
	}
	{
		/* Expired; not yet valid; no exp; a bad sub. */
		struct claim exp[] = {{"sub", "a", 0}, {"exp", NULL, now - 5}};
		struct claim nbf[] = {{"sub", "a", 0}, {"exp", NULL, now + 60},
		    {"nbf", NULL, now + 60}};
		struct claim noexp[] = {{"sub", "a", 0}};
		struct claim badsub[] = {
		    {"sub", "a\nb", 0}, {"exp", NULL, now + 60}};
		struct claim *cases[] = {exp, nbf, noexp, badsub};
		size_t lens[] = {2, 3, 1, 2};

		for (size_t i = 0; i < 4; i++) {
			t = mint(JWT_ALG_HS256, SECRET, cases[i], lens[i]);
			assert_int_equal(bearer(a, t, &id), AUTH_INVALID);
			free(t);
		}
	}
	{
		/* Wrong secret; another HMAC algorithm; unsigned. */
		struct claim c[] = {{"sub", "a", 0}, {"exp", NULL, now + 60}};

		t = mint(JWT_ALG_HS256, "another-secret-entirely!!", c, 2);
		assert_int_equal(bearer(a, t, &id), AUTH_INVALID);
		free(t);
		t = mint(JWT_ALG_HS512, SECRET, c, 2);
		assert_int_equal(bearer(a, t, &id), AUTH_INVALID);
		free(t);
		t = mint(JWT_ALG_NONE, NULL, c, 2);
		assert_int_equal(bearer(a, t, &id), AUTH_INVALID);
		free(t);
	}
	{
		struct auth_request none = {0};
		struct auth_request basic = {.authorization = "Basic eDp5"};

		assert_int_equal(auth_identify(a, &none, &id), AUTH_ABSENT);
		/* Another scheme is not a token: as if none were given. */
		assert_int_equal(auth_identify(a, &basic, &id), AUTH_ABSENT);
		assert_int_equal(bearer(a, "not.a.token", &id), AUTH_INVALID);
	}
	auth_free(a);
}

static void
test_auth_jwt_cookie_query_iss_aud(void **state)
{
	struct auth *a = new_auth("jwt", "https://issuer", "beep");
	long now = (long)time(NULL);
	struct claim good[] = {{"sub", "bob", 0}, {"exp", NULL, now + 60},
	    {"iss", "https://issuer", 0}, {"aud", "beep", 0}};
	struct claim bad_iss[] = {{"sub", "bob", 0}, {"exp", NULL, now + 60},
	    {"iss", "https://evil", 0}, {"aud", "beep", 0}};
	struct claim bad_aud[] = {{"sub", "bob", 0}, {"exp", NULL, now + 60},
	    {"iss", "https://issuer", 0}, {"aud", "other", 0}};
	struct auth_identity id;
	struct auth_request req = {0};
	char cookie[2048], *t;

	(void)state;
	t = mint(JWT_ALG_HS256, SECRET, good, 4);
	snprintf(cookie, sizeof(cookie), "x=1; beep_token=%s; y=2", t);
	req.cookie = cookie;
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	assert_string_equal(id.user, "bob");
	assert_null(id.device);
	auth_identity_clear(&id);
	req.cookie = NULL;
	req.query_token = t;
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	auth_identity_clear(&id);
	free(t);
	t = mint(JWT_ALG_HS256, SECRET, bad_iss, 4);
	assert_int_equal(bearer(a, t, &id), AUTH_INVALID);
	free(t);
	t = mint(JWT_ALG_HS256, SECRET, bad_aud, 4);
	assert_int_equal(bearer(a, t, &id), AUTH_INVALID);
	free(t);
	auth_free(a);
}

static void
test_auth_header(void **state)
{
	struct auth *a = new_auth("header", "", "");
	struct auth_request req = {0};
	struct auth_identity id;

	(void)state;
	assert_int_equal(auth_identify(a, &req, &id), AUTH_ABSENT);
	req.claim = "{\"userid\":\"carol\",\"clientid\":\"tab1\"}";
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	assert_string_equal(id.user, "carol");
	assert_string_equal(id.device, "tab1");
	auth_identity_clear(&id);
	req.claim = "{\"userid\":42}";
	assert_int_equal(auth_identify(a, &req, &id), AUTH_INVALID);
	req.claim = "not json";
	assert_int_equal(auth_identify(a, &req, &id), AUTH_INVALID);
	auth_free(a);
}

static void
test_auth_settings(void **state)
{
	const char *rs[] = {"beep-signal", "--auth", "jwt", "--jwt-alg",
	    "RS256", "--jwt-key", "/nonexistent/key.pem"};
	const char *hs[] = {"beep-signal", "--auth", "jwt"};

	(void)state;
	/* A key that cannot be read, a missing secret: refused at start. */
	config_clear(&conf);
	assert_int_equal(config_parse(&conf, 7, (char **)rs), 0);
	assert_null(auth_new(&conf));
	config_clear(&conf);
	assert_int_equal(config_parse(&conf, 3, (char **)hs), 0);
	assert_null(auth_new(&conf));
	config_clear(&conf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auth_jwt),
	    cmocka_unit_test(test_auth_jwt_cookie_query_iss_aud),
	    cmocka_unit_test(test_auth_header),
	    cmocka_unit_test(test_auth_settings),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	config_clear(&conf);
	return rc;
}
