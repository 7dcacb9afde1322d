/* auth: see auth.h. */
#include "auth.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "depth.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define LOG_MODULE "auth"

/*
 * Check that the PEM key is a public key of the kind alg needs, so that a
 * wrong file stops the start instead of refusing every token later.
 */
static int
auth_check_key(const unsigned char *pem, size_t len, jwt_alg_t alg)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	int want = alg == JWT_ALG_RS256 ? EVP_PKEY_RSA : EVP_PKEY_EC;
	int rc = key != NULL && EVP_PKEY_get_base_id(key) == want ? 0 : -1;

	EVP_PKEY_free(key);
	BIO_free(bio);
	return rc;
}

/* The largest PEM key file we read. */
#define AUTH_KEY_MAX (64 * 1024)

const char *const auth_mode_name[AUTH_MODE__MAX] = {
    [AUTH_MODE_NONE] = "none",
    [AUTH_MODE_JWT] = "jwt",
    [AUTH_MODE_HEADER] = "header",
};

struct auth {
	const struct config *config;
	enum auth_mode mode;
	jwt_alg_t alg;
	unsigned char *key; /* the HMAC secret or the PEM public key */
	size_t key_len;
	/* The one before (a rotation: its tokens still live), or NULL. */
	unsigned char *prev;
	size_t prev_len;
};

int
auth_mode_parse(const char *s)
{
	for (int i = 0; i < AUTH_MODE__MAX; i++)
		if (strcmp(s, auth_mode_name[i]) == 0)
			return i;
	return -1;
}

static unsigned char *
auth_read_file(const char *path, size_t *len)
{
	unsigned char *data = NULL;
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		log_error("%s: %s", path, strerror(errno));
		return NULL;
	}
	data = xmalloc(AUTH_KEY_MAX + 1);
	n = fread(data, 1, AUTH_KEY_MAX + 1, f);
	fclose(f);
	if (n == 0 || n > AUTH_KEY_MAX) {
		log_error(
		    "%s: empty, or larger than %d bytes", path, AUTH_KEY_MAX);
		free(data);
		return NULL;
	}
	data[n] = '\0';
	*len = n;
	return data;
}

/* The shortest HMAC secret alg takes: its hash's size (RFC 7518 3.2). */
static size_t
auth_hmac_min(jwt_alg_t alg)
{
	return alg == JWT_ALG_HS512 ? 64 : alg == JWT_ALG_HS384 ? 48 : 32;
}

struct auth *
auth_new(const struct config *c)
{
	struct auth *a = xcalloc(1, sizeof(*a));

	a->config = c;
	a->mode = (enum auth_mode)auth_mode_parse(c->auth);
	if (a->mode != AUTH_MODE_JWT)
		return a;
	/*
	 * OpenSSL (under libjwt) keeps state per thread; its exit-time
	 * cleanup would free that of workers still running while the
	 * process exits.  Leave the cleanup to the exit itself.
	 */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
	a->alg = jwt_str_alg(c->jwt_alg);
	switch (a->alg) {
	case JWT_ALG_HS256:
	case JWT_ALG_HS384:
	case JWT_ALG_HS512:
		if (c->jwt_secret[0] == '\0') {
			log_error(
			    "--jwt-alg %s needs --jwt-secret", c->jwt_alg);
			goto fail;
		}
		a->key_len = strlen(c->jwt_secret);
		/*
		 * RFC 7518 3.2: a key at least as long as the hash.  A
		 * shorter one (changeme, s3cret) falls to an offline guess
		 * from any one token seen (a log, a shared link), and then
		 * mints tokens for every user.
		 */
		if (a->key_len < auth_hmac_min(a->alg)) {
			log_error(
			    "--jwt-secret is %zu bytes: %s needs at least "
			    "%zu (RFC 7518; e.g. openssl rand -hex 32 "
			    "gives 64)",
			    a->key_len, c->jwt_alg, auth_hmac_min(a->alg));
			goto fail;
		}
		a->key = (unsigned char *)xmemdup(c->jwt_secret, a->key_len);
		if (c->jwt_secret_prev[0] != '\0') {
			a->prev_len = strlen(c->jwt_secret_prev);
			if (a->prev_len < auth_hmac_min(a->alg)) {
				log_error(
				    "--jwt-secret-previous is %zu bytes: %s "
				    "needs at least %zu (RFC 7518)",
				    a->prev_len, c->jwt_alg,
				    auth_hmac_min(a->alg));
				goto fail;
			}
			a->prev = (unsigned char *)xmemdup(
			    c->jwt_secret_prev, a->prev_len);
		}
		break;
	case JWT_ALG_RS256:
	case JWT_ALG_ES256:
		if (c->jwt_key[0] == '\0') {
			log_error("--jwt-alg %s needs --jwt-key", c->jwt_alg);
			goto fail;
		}
		a->key = auth_read_file(c->jwt_key, &a->key_len);
		if (a->key == NULL)
			goto fail;
		if (auth_check_key(a->key, a->key_len, a->alg) < 0) {
			log_error("%s: not a PEM %s public key", c->jwt_key,
			    a->alg == JWT_ALG_RS256 ? "RSA" : "EC");
			goto fail;
		}
		if (c->jwt_key_prev[0] != '\0') {
			a->prev = auth_read_file(c->jwt_key_prev, &a->prev_len);
			if (a->prev == NULL)
				goto fail;
			if (auth_check_key(a->prev, a->prev_len, a->alg) < 0) {
				log_error("%s: not a PEM %s public key",
				    c->jwt_key_prev,
				    a->alg == JWT_ALG_RS256 ? "RSA" : "EC");
				goto fail;
			}
		}
		break;
	default:
		log_error("--jwt-alg %s: use HS256, HS384, HS512, RS256 or "
		          "ES256",
		    c->jwt_alg);
		goto fail;
	}
	return a;
fail:
	auth_free(a);
	return NULL;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	free(a->key);
	free(a->prev);
	free(a);
}

enum auth_mode
auth_mode(const struct auth *a)
{
	return a->mode;
}

void
auth_identity_clear(struct auth_identity *id)
{
	free(id->user);
	free(id->device);
	id->user = id->device = NULL;
}

/*
 * The value of the next cookie name in a Cookie header, from *at on, as a
 * new string, or NULL; *at moves past it.  A value in one pair of double
 * quotes is the value inside them (RFC 6265 4.1.1, as Go's, Node's and
 * Python's parsers take it): a server may set the token so, and the
 * browser sends it back quotes and all.  A token holds no quote, so any
 * other quote stays, and the token is refused.
 */
static char *
auth_cookie(const char **at, const char *name)
{
	size_t name_len = strlen(name);
	const char *p = *at;

	while (p != NULL && *p != '\0') {
		const char *end;

		while (*p == ' ' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (strncmp(p, name, name_len) == 0 && p[name_len] == '=') {
			const char *v = p + name_len + 1;
			size_t len = end ? (size_t)(end - v) : strlen(v);

			*at = v + len;
			if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
				return xmemdup(v + 1, len - 2);
			return xmemdup(v, len);
		}
		p = end;
	}
	*at = NULL;
	return NULL;
}

/*
 * The most cookies of the token's name tried: a browser sends each one
 * that matches the request (longer Path first), and a sibling subdomain
 * may plant one ahead of the real one, or an older deployment have left
 * a stale one; a few cover that, and bound the verifications a request
 * can cost.
 */
#define AUTH_COOKIES_TRIED 4

/* Fill id from a user and an optional device; both must be clean ids. */
static enum auth_result
auth_set(struct auth *a, json_t *user, json_t *device, struct auth_identity *id)
{
	size_t max = a->config->max_id;

	if (!json_is_string(user) ||
	    !http_id_valid(
	        json_string_value(user), json_string_length(user), max))
		return AUTH_INVALID;
	if (device != NULL && !json_is_null(device) &&
	    (!json_is_string(device) ||
	        !http_id_valid(json_string_value(device),
	            json_string_length(device), max)))
		return AUTH_INVALID;
	id->user = xstrdup(json_string_value(user));
	id->device =
	    json_is_string(device) ? xstrdup(json_string_value(device)) : NULL;
	return AUTH_OK;
}

/* Whether the aud claim (a string or an array of them) names want. */
static bool
auth_audience_has(json_t *aud, const char *want)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	json_array_foreach(aud, i, v)
	{
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), want) == 0)
			return true;
	}
	return false;
}

/*
 * Whether seg[0..len), base64url without padding (RFC 7515), decodes to
 * text that nests at most max deep.  Characters outside the alphabet are
 * refused here rather than left to libjwt's decoder to interpret.
 */
static bool
auth_segment_ok(const char *seg, size_t len, unsigned max)
{
	unsigned char *in, *out;
	size_t padded = (len + 3) / 4 * 4;
	bool ok = false;
	int n;

	if (len == 0 || len % 4 == 1)
		return false;
	in = xmalloc(padded + 1);
	out = xmalloc(padded / 4 * 3 + 1);
	for (size_t i = 0; i < len; i++) {
		char c = seg[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		             (c >= '0' && c <= '9')))
			goto out;
		in[i] = (unsigned char)c;
	}
	memset(in + len, '=', padded - len);
	n = EVP_DecodeBlock(out, in, (int)padded);
	ok = n >= 0 && depth_json_within((const char *)out, (size_t)n, max);
out:
	free(in);
	free(out);
	return ok;
}

/*
 * Check a compact JWS before libjwt parses it: at most max_token bytes,
 * and a header and payload whose JSON nests at most max_depth deep
 * (jansson recurses per level; a token of "[" x 1700 would overflow a
 * worker's stack).  Sets id->why when not.
 */
static bool
auth_jwt_shape_ok(
    const struct config *c, const char *token, struct auth_identity *id)
{
	const char *dot1, *dot2;

	if (strnlen(token, c->max_token + 1) > c->max_token) {
		id->why = "token too long";
		return false;
	}
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
		id->why = "malformed token";
		return false;
	}
	if (!auth_segment_ok(token, (size_t)(dot1 - token), c->max_depth) ||
	    !auth_segment_ok(
	        dot1 + 1, (size_t)(dot2 - dot1 - 1), c->max_depth)) {
		id->why = "malformed token, or nested too deeply";
		return false;
	}
	return true;
}

static enum auth_result
auth_jwt(struct auth *a, const char *token, struct auth_identity *id)
{
	const struct config *c = a->config;
	enum auth_result res = AUTH_INVALID;
	json_t *claims = NULL, *exp, *nbf, *iss;
	jwt_t *jwt = NULL;
	char *text = NULL;
	long long now = (long long)time(NULL);

	if (!auth_jwt_shape_ok(c, token, id))
		return AUTH_INVALID;
	/*
	 * The current key, then the one before (a rotation): a token its
	 * issuer signed before the change is valid until it expires.
	 */
	if (jwt_decode(&jwt, token, a->key, (int)a->key_len) != 0 &&
	    (a->prev == NULL ||
	        jwt_decode(&jwt, token, a->prev, (int)a->prev_len) != 0))
		goto out;
	/*
	 * The configured algorithm, never the token's: an HS256 token
	 * signed with an RSA public key as its secret (algorithm
	 * confusion), or "none", verifies above but stops here.
	 */
	if (jwt_get_alg(jwt) != a->alg)
		goto out;
	/*
	 * RFC 7515 4.1.11: a token whose "crit" lists extensions the
	 * recipient does not understand is invalid, and this service
	 * understands none (an empty or malformed "crit" is invalid too).
	 * libjwt ignores the header: a token its issuer restricted to
	 * verifiers that know the extension would be taken as any other.
	 */
	text = jwt_get_headers_json(jwt, "crit");
	if (text != NULL) {
		id->why = "token has a \"crit\" header this service does not "
		          "understand";
		goto out;
	}
	text = jwt_get_grants_json(jwt, NULL);
	claims = text ? json_loads(text, 0, NULL) : NULL;
	if (!json_is_object(claims))
		goto out;
	/*
	 * RFC 7519: valid while now is before exp (plus the leeway).  Its
	 * signature verified: the reason is told, as the refused event that
	 * ends its stream at exp tells it, so that a page knows to renew it
	 * rather than give up on "invalid credentials".
	 */
	exp = json_object_get(claims, "exp");
	if (!json_is_number(exp))
		goto out;
	if (json_number_value(exp) + c->jwt_leeway <= (double)now) {
		id->why = "credentials expired";
		goto out;
	}
	nbf = json_object_get(claims, "nbf");
	if (nbf != NULL && !json_is_number(nbf))
		goto out;
	if (nbf != NULL &&
	    json_number_value(nbf) > (double)(now + c->jwt_leeway)) {
		id->why = "token not yet valid";
		goto out;
	}
	iss = json_object_get(claims, "iss");
	if (c->jwt_issuer[0] != '\0' &&
	    (!json_is_string(iss) ||
	        strcmp(json_string_value(iss), c->jwt_issuer) != 0))
		goto out;
	if (c->jwt_audience[0] != '\0' &&
	    !auth_audience_has(json_object_get(claims, "aud"), c->jwt_audience))
		goto out;
	res = auth_set(a, json_object_get(claims, "sub"),
	    json_object_get(claims, "device"), id);
	if (res == AUTH_OK) {
		/*
		 * Valid while now (whole seconds) is before it, so up to
		 * the second it rounds up to: a stream it opened ends
		 * then (server_stream()).  Past any real time: never.
		 */
		double until = json_number_value(exp) + c->jwt_leeway;

		if (until < 9e18) {
			id->expires = (long long)until;
			if ((double)id->expires < until)
				id->expires++;
		}
	}
out:
	json_decref(claims);
	free(text);
	if (jwt != NULL)
		jwt_free(jwt);
	return res;
}

static enum auth_result
auth_header(struct auth *a, const char *claim, struct auth_identity *id)
{
	const struct config *c = a->config;
	size_t len = strnlen(claim, c->max_token + 1);
	enum auth_result res = AUTH_INVALID;
	json_t *doc;

	/* The front sets it, but from another service's answer: bounded. */
	if (len > c->max_token) {
		id->why = "identity claim too long";
		return AUTH_INVALID;
	}
	if (!depth_json_within(claim, len, c->max_depth)) {
		id->why = "identity claim nested too deeply";
		return AUTH_INVALID;
	}
	doc = json_loadb(claim, len, 0, NULL);
	if (json_is_object(doc))
		res = auth_set(a, json_object_get(doc, "userid"),
		    json_object_get(doc, "clientid"), id);
	json_decref(doc);
	return res;
}

enum auth_result
auth_identify(
    struct auth *a, const struct auth_request *req, struct auth_identity *id)
{
	enum auth_result res;
	char *cookie;

	memset(id, 0, sizeof(*id));
	switch (a->mode) {
	case AUTH_MODE_HEADER:
		if (req->claim == NULL || req->claim[0] == '\0')
			return AUTH_ABSENT;
		id->source = AUTH_SOURCE_CLAIM;
		return auth_header(a, req->claim, id);
	case AUTH_MODE_JWT:
		/* Another scheme (Basic for a proxy, say) is not ours. */
		if (req->authorization != NULL &&
		    strncasecmp(req->authorization, "Bearer ", 7) == 0) {
			/* RFC 6750 2.1: "Bearer" 1*SP b64token. */
			const char *t = req->authorization + 7;

			t += strspn(t, " ");
			id->source = AUTH_SOURCE_BEARER;
			return auth_jwt(a, t, id);
		}
		/*
		 * A token the page put in the URL itself before the cookie
		 * the browser adds to every request: a stale cookie, or one
		 * a sibling site planted, must not hide it.
		 */
		if (req->query_token != NULL) {
			id->source = AUTH_SOURCE_QUERY;
			return auth_jwt(a, req->query_token, id);
		}
		/*
		 * The first cookie of the name that verifies: one planted or
		 * left stale ahead of it must not hide it.  When none does,
		 * the first one's reason.
		 */
		{
			const char *at = req->cookie, *why = NULL;

			res = AUTH_ABSENT;
			/* --jwt-cookie "": no cookie is read. */
			if (a->config->jwt_cookie[0] == '\0')
				at = NULL;
			for (int i = 0; i < AUTH_COOKIES_TRIED &&
			     (cookie = auth_cookie(
			          &at, a->config->jwt_cookie)) != NULL;
			     i++) {
				enum auth_result r;

				memset(id, 0, sizeof(*id));
				id->source = AUTH_SOURCE_COOKIE;
				r = auth_jwt(a, cookie, id);
				free(cookie);
				if (r == AUTH_OK)
					return r;
				if (res == AUTH_ABSENT) {
					res = r;
					why = id->why;
				}
			}
			if (res != AUTH_ABSENT) {
				id->source = AUTH_SOURCE_COOKIE;
				id->why = why;
			}
			return res;
		}
	case AUTH_MODE_NONE:
	case AUTH_MODE__MAX:
		break;
	}
	return AUTH_ABSENT;
}
