/*
 * Token extraction and verification: auth_identify() in jwt mode (HS256)
 * with the token as a Bearer header, in the cookie or as the query token,
 * and in header mode with the forward-auth claim, each on a thread with
 * the production worker stack, so input that recurses past it (libjwt's
 * and jansson's parsers) crashes here as it would crash the service.
 *
 * Input: one flag byte, then (unless raw) the token's header JSON, NUL,
 * its payload JSON, NUL, its signature bytes.  The driver base64url-encodes
 * the parts, so the fuzzer works on the JSON itself, and signs them with
 * the secret when asked, so valid tokens reach the claim checks.  Each
 * text part may hold repeats (see fuzz_expand()), so deep nesting and
 * long tokens are a few bytes away.
 *   bits 0-1  0 Bearer, 1 cookie, 2 ?access_token=, 3 header-mode claim
 *   bit 2     sign with the secret (else the signature part, encoded)
 *   bit 3     raw: the rest is the token (or claim) text, as is
 * Property: a token is accepted only with a valid HS256 signature, and
 * then names a clean user id (and device id, if any).
 */
#include "auth.h"
#include "fuzz.h"
#include "http.h"
#include "token.h"

#define SECRET                                                                 \
	"fuzz-secret-of-some-length-at-least-64-bytes-for-hs512-xxxxxxxxx"
#define MAX_ID 64

static struct config jwt_conf, header_conf;
static struct auth *jwt_auth, *header_auth;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *jwt[] = {"fuzz", "--auth", "jwt", "--jwt-secret", SECRET,
	    "--max-id", "64", "--log-level", "error"};
	const char *header[] = {"fuzz", "--auth", "header", "--max-id", "64",
	    "--log-level", "error"};

	(void)argc, (void)argv;
	if (config_parse(&jwt_conf, 9, (char **)jwt) != 0 ||
	    config_parse(&header_conf, 7, (char **)header) != 0)
		abort();
	jwt_auth = auth_new(&jwt_conf);
	header_auth = auth_new(&header_conf);
	if (jwt_auth == NULL || header_auth == NULL)
		abort();
	return 0;
}

/* Whether token (header.payload.signature) carries a valid signature. */
static bool
signature_valid(const char *token)
{
	const char *dot1 = strchr(token, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	struct buf want = {0};
	bool ok;

	if (dot2 == NULL)
		return false;
	token_sign_hs256(&want, SECRET, token, (size_t)(dot2 - token));
	ok = strcmp(dot2 + 1, want.data) == 0;
	buf_free(&want);
	return ok;
}

struct job {
	unsigned where;
	const char *token;
	enum auth_result res;
};

static void
run(void *arg)
{
	struct job *j = arg;
	struct auth_request req = {0};
	struct auth_identity id;
	struct buf h = {0};
	struct auth *a = jwt_auth;

	switch (j->where) {
	case 0:
		buf_printf(&h, "Bearer %s", j->token);
		req.authorization = h.data;
		break;
	case 1:
		buf_printf(&h, "theme=dark; beep_token=%s; x=1", j->token);
		req.cookie = h.data;
		break;
	case 2:
		req.query_token = j->token;
		break;
	default:
		req.claim = j->token;
		a = header_auth;
		break;
	}
	j->res = auth_identify(a, &req, &id);
	FUZZ_CHECK(j->res < AUTH_RESULT__MAX);
	if (j->res == AUTH_OK) {
		FUZZ_CHECK(id.user != NULL &&
		    http_id_valid(id.user, strlen(id.user), MAX_ID));
		FUZZ_CHECK(id.device == NULL ||
		    http_id_valid(id.device, strlen(id.device), MAX_ID));
		/* No token is accepted without the secret's signature. */
		FUZZ_CHECK(a == header_auth || signature_valid(j->token));
		auth_identity_clear(&id);
	} else {
		FUZZ_CHECK(id.user == NULL && id.device == NULL);
	}
	buf_free(&h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job j = {0};
	struct buf tok = {0};
	size_t hlen, plen;
	uint8_t flags;
	char *token;

	if (size < 1)
		return 0;
	flags = data[0];
	data++, size--;
	j.where = flags & 3;
	if (flags & 8 || j.where == 3) {
		/* A token as sent, or the claim: JSON as the front passes it. */
		char *raw = fuzz_take(&data, &size, '\0', &hlen);

		token = fuzz_expand(raw, hlen, &hlen);
		free(raw);
	} else {
		char *head = fuzz_take(&data, &size, '\0', &hlen);
		char *payload = fuzz_take(&data, &size, '\0', &plen);
		char *h = fuzz_expand(head, hlen, &hlen);
		char *p = fuzz_expand(payload, plen, &plen);

		token_head_payload(&tok, h, hlen, p, plen);
		if (flags & 4)
			token_sign_hs256(&tok, SECRET, tok.data, tok.len - 1);
		else
			token_b64url(&tok, data, size);
		token = tok.data;
		free(head);
		free(payload);
		free(h);
		free(p);
	}
	j.token = token;
	fuzz_on_worker_stack(run, &j);
	free(token);
	return 0;
}
