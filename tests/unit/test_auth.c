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
#include <openssl/evp.h>
#include <pthread.h>

#include "auth.h"
#include "filter.h"
#include "server.h"

#define SECRET                                                                 \
	"test-secret-of-some-length-at-least-64-bytes-for-hs512-xxxxxxxxx"

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

static enum auth_result bearer(
    struct auth *a, const char *token, struct auth_identity *id);

/*
 * Rotating the HMAC secret: tokens signed with the one before stay valid
 * while it is named as --jwt-secret-previous (until they expire), so a
 * new secret does not log every client out at once; a token signed with
 * neither is refused, and so is one signed with the one before once it
 * is no longer named.
 */
static void
test_auth_jwt_previous_secret(void **state)
{
	static const char old[] =
	    "the-secret-before-the-rotation-of-at-least-32-bytes";
	const char *argv[] = {"beep-signal", "--auth", "jwt", "--jwt-secret",
	    SECRET, "--jwt-secret-previous", old};
	long now = (long)time(NULL);
	struct claim c[] = {{"sub", "alice", 0}, {"exp", NULL, now + 60}};
	char *by_old = mint(JWT_ALG_HS256, old, c, 2);
	char *by_new = mint(JWT_ALG_HS256, SECRET, c, 2);
	char *by_other = mint(JWT_ALG_HS256,
	    "a-third-secret-nobody-named-here-of-32-bytes", c, 2);
	struct auth_identity id;
	struct auth *a;

	(void)state;
	config_clear(&conf);
	assert_int_equal(config_parse(&conf, 7, (char **)argv), 0);
	a = auth_new(&conf);
	assert_non_null(a);
	assert_int_equal(bearer(a, by_new, &id), AUTH_OK);
	auth_identity_clear(&id);
	assert_int_equal(bearer(a, by_old, &id), AUTH_OK);
	assert_string_equal(id.user, "alice");
	auth_identity_clear(&id);
	assert_int_equal(bearer(a, by_other, &id), AUTH_INVALID);
	auth_identity_clear(&id);
	auth_free(a);
	/* No longer named: refused. */
	a = new_auth("jwt", "", "");
	assert_int_equal(bearer(a, by_old, &id), AUTH_INVALID);
	auth_identity_clear(&id);
	auth_free(a);
	/* The one before is held to the same length rule. */
	argv[6] = "short";
	config_clear(&conf);
	assert_int_equal(config_parse(&conf, 7, (char **)argv), 0);
	assert_null(auth_new(&conf));
	free(by_old);
	free(by_new);
	free(by_other);
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
		/*
		 * Expired; expiring this second (RFC 7519: valid only before
		 * exp; the leeway here is 0); not yet valid; no exp; a bad
		 * sub.
		 */
		struct claim exp[] = {{"sub", "a", 0}, {"exp", NULL, now - 5}};
		struct claim exp_now[] = {{"sub", "a", 0}, {"exp", NULL, now}};
		struct claim nbf[] = {{"sub", "a", 0}, {"exp", NULL, now + 60},
		    {"nbf", NULL, now + 60}};
		struct claim noexp[] = {{"sub", "a", 0}};
		struct claim badsub[] = {
		    {"sub", "a\nb", 0}, {"exp", NULL, now + 60}};
		struct claim *cases[] = {exp, exp_now, nbf, noexp, badsub};
		size_t lens[] = {2, 2, 3, 1, 2};

		/*
		 * Once its signature verifies, the token's own reason (a
		 * page then knows to fetch a new one, as from the refused
		 * event that ends a stream at its exp); else the generic one.
		 */
		const char *why[] = {"credentials expired",
		    "credentials expired", "token not yet valid", NULL, NULL};

		for (size_t i = 0; i < 5; i++) {
			t = mint(JWT_ALG_HS256, SECRET, cases[i], lens[i]);
			assert_int_equal(bearer(a, t, &id), AUTH_INVALID);
			if (why[i] != NULL) {
				assert_non_null(id.why);
				assert_string_equal(id.why, why[i]);
			}
			free(t);
		}
	}
	{
		/* Wrong secret; another HMAC algorithm; unsigned. */
		struct claim c[] = {{"sub", "a", 0}, {"exp", NULL, now + 60}};

		t = mint(JWT_ALG_HS256, "another-secret-entirely!!", c, 2);
		assert_int_equal(bearer(a, t, &id), AUTH_INVALID);
		free(t);
		/* Expired, but not ours: nothing of its claims is told. */
		{
			struct claim old[] = {
			    {"sub", "a", 0}, {"exp", NULL, now - 5}};

			t = mint(
			    JWT_ALG_HS256, "another-secret-entirely!!", old, 2);
			assert_int_equal(bearer(a, t, &id), AUTH_INVALID);
			assert_null(id.why);
			free(t);
		}
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
	/*
	 * The token the page put in the URL wins over the cookie the
	 * browser adds: a stale or planted cookie cannot hide it.
	 */
	snprintf(cookie, sizeof(cookie), "beep_token=%s", "a.b.c");
	req.cookie = cookie;
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	assert_int_equal(id.source, AUTH_SOURCE_QUERY);
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

/*
 * --jwt-cookie "" reads no cookie: it matched a nameless one ("=TOKEN",
 * which a browser sends for a cookie set as "TOKEN" alone), so a page of
 * a sibling site that set one was taken for the user it names.
 */
static void
test_auth_jwt_cookie_empty_name(void **state)
{
	const char *argv[] = {"beep-signal", "--auth", "jwt", "--jwt-secret",
	    SECRET, "--jwt-cookie", ""};
	long now = (long)time(NULL);
	struct claim good[] = {{"sub", "bob", 0}, {"exp", NULL, now + 60}};
	struct auth_identity id;
	struct auth_request req = {0};
	struct auth *a;
	char cookie[2048], *t;

	(void)state;
	config_clear(&conf);
	assert_int_equal(config_parse(&conf, 7, (char **)argv), 0);
	a = auth_new(&conf);
	assert_non_null(a);
	t = mint(JWT_ALG_HS256, SECRET, good, 2);
	snprintf(cookie, sizeof(cookie), "=%s; x=1", t);
	req.cookie = cookie;
	assert_int_equal(auth_identify(a, &req, &id), AUTH_ABSENT);
	auth_identity_clear(&id);
	/* A bearer token still identifies. */
	assert_int_equal(bearer(a, t, &id), AUTH_OK);
	assert_string_equal(id.user, "bob");
	auth_identity_clear(&id);
	free(t);
	auth_free(a);
}

/*
 * Cookie tossing: a browser sends every cookie of the name that matches
 * the request, the one with the longer Path first (RFC 6265 5.4), and
 * any host of the site (a sibling subdomain, a page on plain http) may
 * set one for the parent domain; a stale one from an older deployment
 * (another Path) is sent the same way.  Only the first beep_token is
 * tried: one garbage cookie planted ahead of the real one makes every
 * request of the user 401, and its EventSource gives up for good.  The
 * real token, further on in the header, must still be found.
 */
static void
test_auth_jwt_cookie_planted_before_real(void **state)
{
	struct auth *a = new_auth("jwt", "", "");
	long now = (long)time(NULL);
	struct claim good[] = {{"sub", "bob", 0}, {"exp", NULL, now + 60}};
	struct claim expired[] = {{"sub", "bob", 0}, {"exp", NULL, now - 600}};
	struct auth_identity id;
	struct auth_request req = {0};
	char cookie[4096], *t, *old;

	(void)state;
	t = mint(JWT_ALG_HS256, SECRET, good, 2);
	old = mint(JWT_ALG_HS256, SECRET, expired, 2);
	/* Planted by a sibling: not even a token. */
	snprintf(cookie, sizeof(cookie), "beep_token=x; beep_token=%s", t);
	req.cookie = cookie;
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	assert_string_equal(id.user, "bob");
	assert_int_equal(id.source, AUTH_SOURCE_COOKIE);
	auth_identity_clear(&id);
	/* A stale one, left with a longer Path by an older deployment. */
	snprintf(cookie, sizeof(cookie), "beep_token=%s; x=1; beep_token=%s",
	    old, t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	assert_string_equal(id.user, "bob");
	auth_identity_clear(&id);
	/*
	 * At most AUTH_COOKIES_TRIED (4) are verified, so that a header of
	 * many costs a bounded number: the real one 4th is found, 5th not
	 * (the first one's reason then).
	 */
	snprintf(cookie, sizeof(cookie),
	    "beep_token=a; beep_token=%s; beep_token=b.c.d; beep_token=%s", old,
	    t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	auth_identity_clear(&id);
	snprintf(cookie, sizeof(cookie),
	    "beep_token=a; beep_token=%s; beep_token=b.c.d; beep_token=e; "
	    "beep_token=%s",
	    old, t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_INVALID);
	assert_int_equal(id.source, AUTH_SOURCE_COOKIE);
	assert_string_equal(id.why, "malformed token");
	free(old);
	free(t);
	auth_free(a);
}

/*
 * RFC 6265 4.1.1: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet
 * DQUOTE ).  A server that sets the token in quotes (Set-Cookie:
 * beep_token="eyJ..."; some Java and .NET stacks do) gets it back so from
 * the browser, quotes and all, and Go's, Node's and Python's cookie
 * parsers take the value inside them; the token was read with its quotes
 * and refused as malformed, which ends an EventSource for good.  Only a
 * whole value in one pair is unquoted: a token never holds a quote, so
 * one quote alone, or quotes inside, stay what they are, a bad token.
 */
static void
test_auth_jwt_cookie_quoted(void **state)
{
	struct auth *a = new_auth("jwt", "", "");
	long now = (long)time(NULL);
	struct claim good[] = {{"sub", "bob", 0}, {"exp", NULL, now + 60}};
	struct auth_identity id;
	struct auth_request req = {0};
	char cookie[4096], *t;

	(void)state;
	t = mint(JWT_ALG_HS256, SECRET, good, 2);
	req.cookie = cookie;
	snprintf(cookie, sizeof(cookie), "beep_token=\"%s\"", t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	assert_string_equal(id.user, "bob");
	assert_int_equal(id.source, AUTH_SOURCE_COOKIE);
	auth_identity_clear(&id);
	snprintf(cookie, sizeof(cookie), "x=\"1\"; beep_token=\"%s\"; y=2", t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	assert_string_equal(id.user, "bob");
	auth_identity_clear(&id);
	/* Behind a planted one, quoted too. */
	snprintf(
	    cookie, sizeof(cookie), "beep_token=\"x\"; beep_token=\"%s\"", t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	auth_identity_clear(&id);
	/* Not one whole pair: still the value as sent, refused. */
	snprintf(cookie, sizeof(cookie), "beep_token=\"%s", t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_INVALID);
	snprintf(cookie, sizeof(cookie), "beep_token=%s\"", t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_INVALID);
	snprintf(cookie, sizeof(cookie), "beep_token=\"\"%s\"\"", t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_INVALID);
	snprintf(cookie, sizeof(cookie), "beep_token=\"");
	assert_int_equal(auth_identify(a, &req, &id), AUTH_INVALID);
	snprintf(cookie, sizeof(cookie), "beep_token=\"\"");
	assert_int_equal(auth_identify(a, &req, &id), AUTH_INVALID);
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

/* text as base64url without padding, as a new string. */
static char *
b64url(const char *text)
{
	size_t len = strlen(text), n;
	char *out = malloc(len / 3 * 4 + 8);

	n = (size_t)EVP_EncodeBlock(
	    (unsigned char *)out, (const unsigned char *)text, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return out;
}

/* n copies of s, then tail, as a new string. */
static char *
repeat(const char *s, size_t n, const char *tail)
{
	size_t len = strlen(s);
	char *out = malloc(len * n + strlen(tail) + 1);

	for (size_t i = 0; i < n; i++)
		memcpy(out + i * len, s, len);
	strcpy(out + len * n, tail);
	return out;
}

/* A token whose header (or payload) is json, unsigned: "AAAA". */
static char *
token_with(const char *json, bool in_header)
{
	char *seg = b64url(json), *tok = malloc(strlen(seg) + 32);

	if (in_header)
		sprintf(tok, "%s.e30.AAAA", seg);
	else
		sprintf(tok, "eyJhbGciOiJIUzI1NiJ9.%s.AAAA", seg);
	free(seg);
	return tok;
}

/* prefix, then levels of "[", the same of "]", then suffix. */
static char *
nested(const char *prefix, unsigned levels, const char *suffix)
{
	size_t plen = strlen(prefix);
	char *out = malloc(plen + 2 * levels + strlen(suffix) + 1);

	memcpy(out, prefix, plen);
	memset(out + plen, '[', levels);
	memset(out + plen + levels, ']', levels);
	strcpy(out + plen + 2 * levels, suffix);
	return out;
}

/* A signed token for alice whose "x" claim nests levels deep. */
static char *
mint_deep(unsigned levels)
{
	char prefix[128], *json, *tok, *out;
	jwt_t *jwt;

	snprintf(prefix, sizeof(prefix),
	    "{\"sub\":\"alice\",\"exp\":%ld,\"x\":", (long)time(NULL) + 60);
	json = nested(prefix, levels, "}");
	jwt_new(&jwt);
	assert_int_equal(jwt_add_grants_json(jwt, json), 0);
	jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET,
	    (int)strlen(SECRET));
	tok = jwt_encode_str(jwt);
	out = strdup(tok);
	free(tok);
	free(json);
	jwt_free(jwt);
	return out;
}

/* Where a hostile token is put. */
enum where { IN_BEARER, IN_COOKIE, IN_QUERY, IN_CLAIM, WHERE__MAX };

struct hostile {
	struct auth *a;
	const char *cred;
	enum where where;
	enum auth_result res;
	const char *why;
	enum auth_source source;
};

/* Stack the frames above auth_identify() use in a worker, about. */
#define CALLER_FRAMES (8 * 1024)

static void *
hostile_run(void *arg)
{
	struct hostile *h = arg;
	volatile char callers[CALLER_FRAMES];
	struct auth_request req = {0};
	struct auth_identity id;
	char *header = malloc(strlen(h->cred) + 32);

	callers[0] = callers[CALLER_FRAMES - 1] = 0;
	switch (h->where) {
	case IN_BEARER:
		sprintf(header, "Bearer %s", h->cred);
		req.authorization = header;
		break;
	case IN_COOKIE:
		sprintf(header, "a=b; beep_token=%s", h->cred);
		req.cookie = header;
		break;
	case IN_QUERY:
		req.query_token = h->cred;
		break;
	case IN_CLAIM:
	case WHERE__MAX:
		req.claim = h->cred;
		break;
	}
	h->res = auth_identify(h->a, &req, &id);
	h->why = id.why;
	h->source = id.source;
	auth_identity_clear(&id);
	free(header);
	(void)callers[0];
	return NULL;
}

/*
 * Run auth_identify() on a thread with the workers' stack size: a stack
 * overflow there is what a hostile token did to the service.
 */
static enum auth_result
identify_on_worker_stack(struct auth *a, const char *cred, enum where where,
    const char **why, enum auth_source *source)
{
	struct hostile h = {.a = a, .cred = cred, .where = where};
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	assert_int_equal(
	    pthread_attr_setstacksize(&attr, SERVER_STACK_SIZE), 0);
	assert_int_equal(pthread_create(&t, &attr, hostile_run, &h), 0);
	pthread_join(t, NULL);
	pthread_attr_destroy(&attr);
	if (why)
		*why = h.why;
	if (source)
		*source = h.source;
	return h.res;
}

static struct auth *
new_auth_depth(const char *mode, const char *depth)
{
	const char *argv[] = {"beep-signal", "--auth", mode, "--jwt-secret",
	    SECRET, "--max-depth", depth, "--jwt-leeway", "0"};

	config_clear(&conf);
	assert_int_equal(config_parse(&conf, 9, (char **)argv), 0);
	return auth_new(&conf);
}

/*
 * Issue 8: "[" x 1700 as a token's header or payload overflowed a worker's
 * stack inside libjwt (jansson recurses per level), from the header, the
 * cookie or the query.  Now refused before any parser sees it.
 */
static void
test_auth_hostile_nesting(void **state)
{
	struct auth *a = new_auth_depth("jwt", "32");
	static const char *const opens[] = {"[", "{\"a\":"};
	enum auth_source want[] = {
	    AUTH_SOURCE_BEARER, AUTH_SOURCE_COOKIE, AUTH_SOURCE_QUERY};
	enum auth_source source;
	const char *why;

	(void)state;
	for (size_t o = 0; o < 2; o++) {
		char *deep = repeat(opens[o], 1700, "");

		for (int in_header = 0; in_header < 2; in_header++) {
			char *t = token_with(deep, in_header);

			for (int w = IN_BEARER; w <= IN_QUERY; w++) {
				assert_int_equal(
				    identify_on_worker_stack(
				        a, t, (enum where)w, &why, &source),
				    AUTH_INVALID);
				assert_non_null(why);
				assert_int_equal(source, want[w]);
			}
			free(t);
		}
		free(deep);
	}
	/* At the limit a token is looked at (and refused: no signature). */
	{
		char *at = repeat("[", 32, ""), *past = repeat("[", 33, "");
		char *t_at = token_with(at, false),
		     *t_past = token_with(past, false);

		identify_on_worker_stack(a, t_at, IN_BEARER, &why, NULL);
		assert_null(why);
		identify_on_worker_stack(a, t_past, IN_BEARER, &why, NULL);
		assert_non_null(strstr(why, "deep"));
		free(at);
		free(past);
		free(t_at);
		free(t_past);
	}
	auth_free(a);
}

/* --max-depth at its maximum (128) holds on a worker's stack, end to end. */
static void
test_auth_max_depth_on_worker_stack(void **state)
{
	struct auth *a = new_auth_depth("jwt", "128");
	char *ok = mint_deep(127), *deep = mint_deep(128);
	const char *why;

	(void)state;
	/* 127 arrays inside the claims object: 128 levels, accepted. */
	assert_int_equal(
	    identify_on_worker_stack(a, ok, IN_BEARER, &why, NULL), AUTH_OK);
	assert_int_equal(
	    identify_on_worker_stack(a, ok, IN_COOKIE, &why, NULL), AUTH_OK);
	assert_int_equal(
	    identify_on_worker_stack(a, deep, IN_BEARER, &why, NULL),
	    AUTH_INVALID);
	free(ok);
	free(deep);
	auth_free(a);

	a = new_auth_depth("header", "128");
	{
		char *claim = nested("{\"userid\":\"carol\",\"x\":", 127, "}");
		char *deep_claim = repeat("[", 5000, "");

		assert_int_equal(
		    identify_on_worker_stack(a, claim, IN_CLAIM, &why, NULL),
		    AUTH_OK);
		assert_int_equal(identify_on_worker_stack(
		                     a, deep_claim, IN_CLAIM, &why, NULL),
		    AUTH_INVALID);
		assert_non_null(strstr(why, "deep"));
		free(claim);
		free(deep_claim);
	}
	auth_free(a);
}

static struct auth *
new_auth_max_token(const char *mode, size_t max)
{
	char n[32];
	const char *argv[] = {"beep-signal", "--auth", mode, "--jwt-secret",
	    SECRET, "--max-token", n};

	snprintf(n, sizeof(n), "%zu", max);
	config_clear(&conf);
	assert_int_equal(config_parse(&conf, 7, (char **)argv), 0);
	return auth_new(&conf);
}

/* BEEP_MAX_TOKEN: a token or claim one byte past it is refused unparsed. */
static void
test_auth_max_token(void **state)
{
	long now = (long)time(NULL);
	char padding[300];
	struct claim pad[] = {
	    {"sub", "alice", 0}, {"exp", NULL, now + 60}, {"pad", padding, 0}};
	struct auth *a;
	const char *why;
	char *t, *claim;
	size_t len;

	(void)state;
	memset(padding, 'p', sizeof(padding) - 1);
	padding[sizeof(padding) - 1] = '\0';
	t = mint(JWT_ALG_HS256, SECRET, pad, 3);
	len = strlen(t);
	a = new_auth_max_token("jwt", len);
	for (int w = IN_BEARER; w <= IN_QUERY; w++)
		assert_int_equal(
		    identify_on_worker_stack(a, t, (enum where)w, &why, NULL),
		    AUTH_OK);
	auth_free(a);
	a = new_auth_max_token("jwt", len - 1);
	for (int w = IN_BEARER; w <= IN_QUERY; w++) {
		assert_int_equal(
		    identify_on_worker_stack(a, t, (enum where)w, &why, NULL),
		    AUTH_INVALID);
		assert_string_equal(why, "token too long");
	}
	auth_free(a);
	free(t);

	claim = repeat(" ", 400, "{\"userid\":\"carol\"}");
	len = strlen(claim);
	a = new_auth_max_token("header", len);
	assert_int_equal(
	    identify_on_worker_stack(a, claim, IN_CLAIM, &why, NULL), AUTH_OK);
	auth_free(a);
	a = new_auth_max_token("header", len - 1);
	assert_int_equal(
	    identify_on_worker_stack(a, claim, IN_CLAIM, &why, NULL),
	    AUTH_INVALID);
	assert_string_equal(why, "identity claim too long");
	auth_free(a);
	free(claim);
}

/*
 * At the largest BEEP_MAX_TOKEN, a token fills it and still fits a
 * worker's stack: libjwt decodes each segment with alloca(), so a bound
 * of 1 MiB let one long token overflow it (found at ~127 KB).
 */
static void
test_auth_max_token_at_most_on_worker_stack(void **state)
{
	enum { MOST = 32768 };
	long now = (long)time(NULL);
	static char padding[MOST];
	struct claim pad[] = {
	    {"sub", "alice", 0}, {"exp", NULL, now + 60}, {"pad", padding, 0}};
	struct auth *a = new_auth_max_token("jwt", MOST);
	char *t = NULL, *sig;
	size_t n = MOST * 3 / 4 - 200;
	const char *why;

	(void)state;
	/* The longest signed token within MOST bytes. */
	for (;; n++) {
		char *next;

		memset(padding, 'p', n);
		padding[n] = '\0';
		next = mint(JWT_ALG_HS256, SECRET, pad, 3);
		if (strlen(next) > MOST) {
			free(next);
			break;
		}
		free(t);
		t = next;
	}
	assert_true(strlen(t) > MOST - 4);
	for (int w = IN_BEARER; w <= IN_QUERY; w++)
		assert_int_equal(
		    identify_on_worker_stack(a, t, (enum where)w, &why, NULL),
		    AUTH_OK);
	/* A header or a signature as long: refused, on the same stack. */
	padding[MOST * 3 / 4 - 64] = '\0';
	memset(padding, ' ', strlen(padding));
	{
		const char *head = "{\"alg\":\"HS256\",\"x\":\"";
		char *json = malloc(strlen(head) + strlen(padding) + 3);

		sprintf(json, "%s%s\"}", head, padding);
		free(t);
		t = token_with(json, true);
		free(json);
	}
	assert_true(strlen(t) <= MOST);
	assert_int_equal(identify_on_worker_stack(a, t, IN_BEARER, &why, NULL),
	    AUTH_INVALID);
	sig = repeat("A", MOST - 64, "");
	free(t);
	t = malloc(MOST + 1);
	snprintf(t, MOST + 1, "eyJhbGciOiJIUzI1NiJ9.e30.%s", sig);
	assert_int_equal(identify_on_worker_stack(a, t, IN_BEARER, &why, NULL),
	    AUTH_INVALID);
	free(sig);
	free(t);
	auth_free(a);
}

/*
 * RFC 7515 4.1.11: a JWS whose "crit" header lists extensions the
 * recipient does not understand (this service understands none) is
 * invalid.  An issuer marks a token so to make every verifier that does
 * not know what it restricts refuse it (RFC 7797's "b64": false says the
 * payload is not encoded at all); one that ignores "crit" accepts it.
 */
static void
test_auth_jwt_crit(void **state)
{
	struct auth *a = new_auth("jwt", "", "");
	long now = (long)time(NULL);
	struct auth_identity id;
	static const char *const crits[] = {
	    "{\"crit\":[\"purpose\"],\"purpose\":\"payments-only\"}",
	    "{\"crit\":[\"exp\"]}",
	    "{\"crit\":[]}",
	    "{\"crit\":\"purpose\",\"purpose\":\"x\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(crits) / sizeof(crits[0]); i++) {
		jwt_t *jwt;
		char *t;

		jwt_new(&jwt);
		jwt_add_grant(jwt, "sub", "alice");
		jwt_add_grant_int(jwt, "exp", now + 60);
		assert_int_equal(jwt_add_headers_json(jwt, crits[i]), 0);
		jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET,
		    (int)strlen(SECRET));
		t = jwt_encode_str(jwt);
		jwt_free(jwt);
		assert_non_null(t);
		if (bearer(a, t, &id) == AUTH_OK) {
			auth_identity_clear(&id);
			fail_msg("a token with the header %s was accepted: "
			         "RFC 7515 4.1.11 says it is invalid to a "
			         "recipient that does not understand it",
			    crits[i]);
		}
		free(t);
	}
	auth_free(a);
}

/*
 * RFC 6750 2.1 (and RFC 9110 11.4): credentials = "Bearer" 1*SP b64token.
 * More than one space before the token is the same credential; a token
 * refused for it ("malformed token") tells the client nothing it can fix.
 */
static void
test_auth_bearer_spaces(void **state)
{
	struct auth *a = new_auth("jwt", "", "");
	long now = (long)time(NULL);
	struct claim c[] = {{"sub", "alice", 0}, {"exp", NULL, now + 60}};
	char *t = mint(JWT_ALG_HS256, SECRET, c, 2), header[2048];
	struct auth_request req = {.authorization = header};
	struct auth_identity id;

	(void)state;
	snprintf(header, sizeof(header), "Bearer  %s", t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	assert_string_equal(id.user, "alice");
	auth_identity_clear(&id);
	snprintf(header, sizeof(header), "bearer    %s", t);
	assert_int_equal(auth_identify(a, &req, &id), AUTH_OK);
	auth_identity_clear(&id);
	/* Spaces alone are still no token. */
	snprintf(header, sizeof(header), "Bearer   ");
	assert_int_not_equal(auth_identify(a, &req, &id), AUTH_OK);
	auth_identity_clear(&id);
	free(t);
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
	    cmocka_unit_test(test_auth_jwt_crit),
	    cmocka_unit_test(test_auth_bearer_spaces),
	    cmocka_unit_test(test_auth_jwt_cookie_query_iss_aud),
	    cmocka_unit_test(test_auth_jwt_cookie_empty_name),
	    cmocka_unit_test(test_auth_jwt_cookie_planted_before_real),
	    cmocka_unit_test(test_auth_jwt_cookie_quoted),
	    cmocka_unit_test(test_auth_header),
	    cmocka_unit_test(test_auth_settings),
	    cmocka_unit_test(test_auth_jwt_previous_secret),
	    cmocka_unit_test(test_auth_hostile_nesting),
	    cmocka_unit_test(test_auth_max_depth_on_worker_stack),
	    cmocka_unit_test(test_auth_max_token),
	    cmocka_unit_test(test_auth_max_token_at_most_on_worker_stack),
	};
	filter_from_env();
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	config_clear(&conf);
	return rc;
}
