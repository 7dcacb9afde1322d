/*
 * api_access: who may ask.  The CORS allow-list and its headers, the
 * caller's identity (auth.h) with the cross-site check cookie credentials
 * need, what each identity may use, and each sender's POST rate.
 */
#include "api_impl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "cidr.h"
#include "cluster.h"
#include "keyed_hash.h"
#include "limit.h"
#include "log.h"
#include "metrics.h"

#define LOG_MODULE "api"

/* What api_cors() reserves for an answer's header lines. */
#define API_HEAD_ROOM 192
/* The stack a rate bucket's key is made in (longer ones take the heap). */
#define API_KEY_STACK 256

int
api_access_init(struct api *api, const struct config *c)
{
	const char *p = c->cors_origins, *s;
	size_t len;

	api->cors_any = strcmp(p, "*") == 0;
	while (!api->cors_any && (s = util_list_next(&p, &len)) != NULL) {
		api->origins = xrealloc(
		    api->origins, (api->norigins + 1) * sizeof(*api->origins));
		api->origins[api->norigins++] = xmemdup(s, len);
	}
	api->auth = auth_new(c);
	if (api->auth == NULL)
		return -1;
	api->limit = limit_new(c->rate, c->burst);
	return 0;
}

void
api_access_free(struct api *api)
{
	for (size_t i = 0; i < api->norigins; i++)
		free(api->origins[i]);
	free(api->origins);
	auth_free(api->auth);
	limit_free(api->limit);
}

void
api_cors(
    struct api *api, const struct api_request *req, struct api_response *resp)
{
	/* Room for the usual head (CORS, Content-Type) in one allocation. */
	buf_reserve(&resp->headers, API_HEAD_ROOM);
	if (api->cors_any) {
		buf_puts(&resp->headers, "Access-Control-Allow-Origin: *\r\n");
		return;
	}
	/* The answer depends on Origin: caches must key on it. */
	buf_puts(&resp->headers, "Vary: Origin\r\n");
	if (req->origin == NULL)
		return;
	for (size_t i = 0; i < api->norigins; i++) {
		if (strcmp(api->origins[i], req->origin) == 0) {
			/* Listed origins may send cookies (cookie auth). */
			buf_printf(&resp->headers,
			    "Access-Control-Allow-Origin: %s\r\n"
			    "Access-Control-Allow-Credentials: true\r\n",
			    api->origins[i]);
			return;
		}
	}
}

/* Whether origin is on the CORS allow-list ("*" lists nobody). */
static bool
api_origin_listed(const struct api *api, const char *origin)
{
	for (size_t i = 0; i < api->norigins; i++)
		if (strcmp(api->origins[i], origin) == 0)
			return true;
	return false;
}

/* Whether origin is the request's own: scheme://Host. */
static bool
api_origin_own(const struct api_request *req, const char *origin)
{
	const char *scheme = req->https ? "https://" : "http://";
	size_t n = strlen(scheme);

	return req->host != NULL && req->host[0] != '\0' &&
	    strncasecmp(origin, scheme, n) == 0 &&
	    strcasecmp(origin + n, req->host) == 0;
}

/* Whether the request's own origin, http://Host, is on the allow-list. */
static bool
api_own_listed(const struct api *api, const struct api_request *req)
{
	static const char scheme[] = "http://";
	size_t n = sizeof(scheme) - 1;

	if (req->host == NULL)
		return false;
	for (size_t i = 0; i < api->norigins; i++)
		if (strncmp(api->origins[i], scheme, n) == 0 &&
		    strcasecmp(api->origins[i] + n, req->host) == 0)
			return true;
	return false;
}

/*
 * Cross-site request forgery: a browser attaches cookies to requests any
 * page makes (a form POST, an EventSource), so a request identified by a
 * cookie must come from a page we trust: the same origin (as the browser's
 * Sec-Fetch-Site says, or an Origin equal to our own), or an origin on
 * the allow-list.  Bearer and query tokens are never sent by themselves.
 *
 * "The same origin" is the page's, whose name the page's site chose: a
 * site that re-points its name at this service's address (DNS rebinding)
 * makes its own page same-origin with it over plain HTTP (over HTTPS the
 * browser would want this service's certificate for that name).  A cookie
 * or a credential the browser keeps goes by the name, so such a page gets
 * none of the user's; but in header mode the identity service may go by
 * the address (test 52), and names the user for it too.  So there, over
 * plain HTTP, only a Host that is an address or localhost makes the
 * origin the service's own; a named service lists its origin.
 */
static bool
api_same_origin_ok(const struct api *api, const struct api_request *req,
    const struct auth_identity *who)
{
	bool own;

	if (req->origin != NULL && api_origin_listed(api, req->origin))
		return true;
	own = (req->sec_fetch_site != NULL &&
	          strcmp(req->sec_fetch_site, "same-origin") == 0) ||
	    (req->origin != NULL && api_origin_own(req, req->origin));
	if (!own)
		return false;
	return who->source != AUTH_SOURCE_CLAIM || req->https ||
	    api_host_is_address(req->host) || api_own_listed(api, req);
}

/*
 * Whether the browser may have attached the credentials that identified
 * the request by itself, whichever page made it: the cookie; in header
 * mode, whatever the identity service went by, which may be a cookie, an
 * Authorization the browser keeps (Basic, Digest, Negotiate, NTLM), a TLS
 * client certificate or the client's address, of which the request shows
 * nothing.  So in header mode a request the browser marks as made by a
 * page counts too (Sec-Fetch-Site other than none, a user's own
 * navigation: same-origin included, since a rebound name's page is its
 * own origin's; or, from a browser without it, an Origin),
 * whatever Authorization it carries: until 2026-12-06 one of a scheme the
 * browser does not keep (Bearer) was taken as set by the page past a CORS
 * preflight, which the backend itself passes for any origin at the
 * default "*", and an identity service that ignores it (one that goes by
 * the address) named the user for any page (test 52).  Clients that are
 * not browsers send neither header.
 */
static bool
api_ambient(const struct api_request *req, const struct auth_identity *who)
{
	const char *sfs = req->sec_fetch_site;

	if (who->source == AUTH_SOURCE_COOKIE)
		return true;
	if (who->source != AUTH_SOURCE_CLAIM)
		return false;
	if (req->cookie != NULL)
		return true;
	/* Same-origin too: the origin may be a rebound name's (above). */
	if (sfs != NULL)
		return strcmp(sfs, "none") != 0;
	return req->origin != NULL;
}

/*
 * Who is asking, when authentication is on: AUTH_OK with *who filled in,
 * or the 401 (403 for a cookie sent from another site) already set in
 * resp.  With it off, who stays empty.
 */
bool
api_identify(struct api *api, const struct api_request *req,
    const struct route *r, struct auth_identity *who, struct api_response *resp)
{
	struct auth_request ar = {
	    .authorization = req->authorization,
	    .cookie = req->cookie,
	    .claim = req->claim,
	};
	enum auth_result res;
	char *token = NULL;

	memset(who, 0, sizeof(*who));
	if (auth_mode(api->auth) == AUTH_MODE_NONE)
		return true;
	/* EventSource cannot set headers: the query, for streams only. */
	if (r->id == ROUTE_SUBSCRIBE && api->config->jwt_query &&
	    r->query != NULL) {
		bool bad = false;

		ar.query_token = token =
		    http_query_param(r->query, "access_token", &bad);
		/* Given, and malformed (a bad escape, %00): no token. */
		if (bad)
			ar.query_token = "";
	}
	res = auth_identify(api->auth, &ar, who);
	free(token);
	if (res == AUTH_OK) {
		if (!api_ambient(req, who) || api_same_origin_ok(api, req, who))
			return true;
		api_error(resp, HTTP_403,
		    who->source == AUTH_SOURCE_COOKIE || req->cookie != NULL
		        ? "cookie credentials from another site: send "
		          "Sec-Fetch-Site: same-origin or an allowed Origin"
		        : "browser credentials from another site: send "
		          "Sec-Fetch-Site: same-origin or an allowed Origin");
		auth_identity_clear(who);
		return false;
	}
	if (auth_mode(api->auth) == AUTH_MODE_JWT)
		buf_puts(&resp->headers,
		    res == AUTH_INVALID
		        ? "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n"
		        : "WWW-Authenticate: Bearer\r\n");
	api_error(resp, HTTP_401,
	    res == AUTH_INVALID
	        ? (who->why != NULL ? who->why : "invalid credentials")
	        : "authentication required");
	return false;
}

/* Whether who may use route r; sets the 403 in resp when not. */
bool
api_allowed(struct api *api, const struct route *r,
    const struct auth_identity *who, struct api_response *resp)
{
	if (who->user == NULL)
		return true;
	if (r->id == ROUTE_SUBSCRIBE &&
	    (strcmp(who->user, r->user) != 0 ||
	        (who->device != NULL && strcmp(who->device, r->device) != 0))) {
		api_error(resp, HTTP_403, "subscribe as yourself only");
		return false;
	}
	if (r->id == ROUTE_DEVICES && !api->list_any &&
	    strcmp(who->user, r->user) != 0) {
		api_error(resp, HTTP_403, "list your own devices only");
		return false;
	}
	return true;
}

/*
 * The sender's key in key, as BEEP_RATE counts it: by verified user, else
 * by address; returns its keyed_hash64().
 */
static uint64_t
api_sender_key(struct api *api, const struct api_request *req,
    const struct auth_identity *who, struct buf *key)
{
	char addr_key[CIDR_KEY_MAX];

	/* Appended, not formatted: vsnprintf() would cost more than the rest. */
	if (who->user != NULL) {
		buf_append(key, "u:", 2);
		buf_puts(key, who->user);
	} else {
		buf_append(key, "a:", 2);
		buf_puts(key,
		    cidr_client_key(
		        req->remote_addr, api->config->ipv6_prefix, addr_key));
	}
	return keyed_hash64(key->data, key->len);
}

uint64_t
api_sender_name(struct api *api, const struct api_request *req,
    const struct auth_identity *who)
{
	char key_text[API_KEY_STACK];
	struct buf key = BUF_ON_STACK(key_text);
	uint64_t name;

	name = api_sender_key(api, req, who, &key);
	if (api->cluster != NULL)
		name = cluster_sender(api->cluster, key.data, key.len);
	buf_free(&key);
	return name;
}

/*
 * The sender's token bucket (api_sender_key()).  And the sender's name,
 * by which a device's messages' senders are told apart
 * (BEEP_SENDER_SHARE), in *sender: on one node the same key's
 * keyed_hash64(); in a cluster the name every node gives it
 * (cluster_sender()), as a device's messages are in Redis, posted through
 * any node (0 until the node has read the nodes' key).  0 with
 * BEEP_SENDER_SHARE at 100, which needs none.
 */
bool
api_rate_ok(struct api *api, const struct api_request *req,
    const struct auth_identity *who, struct api_response *resp,
    uint64_t *sender)
{
	unsigned retry = 1;
	char key_text[API_KEY_STACK];
	struct buf key = BUF_ON_STACK(key_text);
	bool ok = true;
	bool named = api->config->sender_share < 100;
	uint64_t hash;

	*sender = 0;
	/* Off (BEEP_RATE=0) and no sender wanted: no key to make. */
	if (api->config->rate == 0 && !named)
		return true;
	/* One hash for both. */
	hash = api_sender_key(api, req, who, &key);
	if (named)
		*sender = api->cluster == NULL
		    ? hash
		    : cluster_sender(api->cluster, key.data, key.len);
	if (api->config->rate != 0)
		ok = limit_take_hashed(
		    api->limit, key.data, key.len, hash, util_now_ms(), &retry);
	buf_free(&key);
	if (!ok) {
		metrics_rate_limited();
		api_retry_after(resp, retry);
		api_error(resp, HTTP_429, "too many requests");
	}
	return ok;
}

/*
 * A subscribe pays for its replay once it is known (api_replay_paid()),
 * from the sender's bucket, which may go below 0: while it owes, its
 * subscribes are refused here (429, as a stream EventSource comes back
 * from after Retry-After), as its POSTs are by limit_take_hashed().  One
 * that owes nothing goes whatever its bucket holds: a client reconnecting
 * is never refused for the POSTs it made.
 */
bool
api_subscribe_rate_ok(struct api *api, const struct api_request *req,
    const struct auth_identity *who, struct api_response *resp)
{
	unsigned retry = 1;
	char key_text[API_KEY_STACK];
	struct buf key = BUF_ON_STACK(key_text);
	uint64_t hash;
	bool owes;

	if (api->config->rate == 0)
		return true;
	hash = api_sender_key(api, req, who, &key);
	owes = limit_owes_hashed(
	    api->limit, key.data, key.len, hash, util_now_ms(), &retry);
	buf_free(&key);
	if (owes) {
		metrics_rate_limited();
		api_refuse_stream_after(
		    req, resp, HTTP_429, "too many requests", retry);
	}
	return !owes;
}

/*
 * A token per BEEP_MAX_BODY bytes of replay (bytes, as BEEP_REPLAY_BYTES
 * counts them), in thousandths: what Redis reads and sends for it in a
 * cluster, what the node writes out on its own, grows with its bytes, not
 * its count of messages; so a replay costs what POSTs of the largest body
 * do for as many bytes.  A replay of BEEP_REPLAY_BYTES (4 MiB) is 64
 * tokens at the defaults; a reconnect's few small messages, thousandths.
 */
void
api_replay_paid(struct api *api, const struct api_request *req,
    const struct auth_identity *who, uint64_t bytes)
{
	char key_text[API_KEY_STACK];
	struct buf key = BUF_ON_STACK(key_text);
	uint64_t hash, milli;

	if (api->config->rate == 0 || bytes == 0)
		return;
	milli =
	    bytes * 1000 / (api->config->max_body ? api->config->max_body : 1);
	if (milli == 0)
		return;
	hash = api_sender_key(api, req, who, &key);
	limit_charge_hashed(
	    api->limit, key.data, key.len, hash, util_now_ms(), milli);
	buf_free(&key);
}

void
api_expire(struct api *api, uint64_t now_ms)
{
	limit_expire(api->limit, now_ms);
}
