/*
 * api: see api.h.  The routes and the answer's pieces; who may ask is
 * api_access.c, operators' routes api_ops.c, a stream's ids and framing
 * api_stream.c (the state they share: api_impl.h).
 */
#include "api_impl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "body.h"
#include "cluster.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "quota.h"
#include "turn.h"

#define LOG_MODULE "api"

/*
 * The stack a message is packed in before it is copied into the registry
 * (longer ones are packed on the heap).
 */
#define API_PACKED_STACK 1024
/* How long a browser may cache a preflight answer, in seconds. */
#define API_PREFLIGHT_MAX_AGE 600
/*
 * What a ?lastEventId= that cannot be decoded counts as: no id this
 * service issues (nor a cluster's), so the stream starts with a reset.
 */
#define API_UNREADABLE_ID "?"

struct api *
api_new(const struct config *c, struct registry *reg, api_threads_fn threads,
    void *threads_ctx)
{
	struct api *api = xcalloc(1, sizeof(*api));
	const char *why;

	api->config = c;
	api->reg = reg;
	api->epoch_len = util_u64_digits(registry_epoch(reg), api->epoch);
	api->epoch[api->epoch_len++] = '-';
	api->threads = threads;
	api->threads_ctx = threads_ctx;
	if (api_access_init(api, c) < 0 || turn_check(c) < 0) {
		api_free(api);
		return NULL;
	}
	/*
	 * With authentication on, the per-user limits bound each user; an
	 * address limit would only refuse the users behind one NAT.
	 */
	api->per_address = quota_new(auth_mode(api->auth) == AUTH_MODE_NONE
	        ? c->max_streams_per_address
	        : 0);
	api->list_any = strcmp(c->list_policy, "any") == 0;
	if (cidr_list_parse(c->metrics_allow, &api->metrics_allow, &why) < 0) {
		log_error("--metrics-allow %s: %s", c->metrics_allow, why);
		api_free(api);
		return NULL;
	}
	/* A single node has no cluster: no thread, no connection. */
	if (c->redis_url != NULL && c->redis_url[0] != '\0') {
		api->cluster = cluster_new(c, reg);
		if (api->cluster == NULL) {
			api_free(api);
			return NULL;
		}
	}
	return api;
}

int
api_check(const struct config *c)
{
	struct auth *a = auth_new(c);

	if (a == NULL)
		return -1;
	auth_free(a);
	return turn_check(c);
}

void
api_free(struct api *api)
{
	if (api == NULL)
		return;
	api_access_free(api);
	quota_free(api->per_address);
	cidr_list_clear(&api->metrics_allow);
	cluster_free(api->cluster);
	free(api);
}

void
api_pending_clear(struct api_pending *p)
{
	auth_identity_clear(&p->who);
	route_clear(&p->r);
	/* ids[] is only room: no need to zero it. */
	p->r = (struct route){0};
	p->who = (struct auth_identity){0};
	p->prechecked = p->want_body = false;
	p->method = METHOD_OTHER;
}

/* Needs no api: the response says which quota it holds. */
static void
api_release_quota(struct api_response *resp)
{
	if (resp->quota_key == NULL)
		return;
	quota_release(resp->quota, resp->quota_key);
	free(resp->quota_key);
	resp->quota_key = NULL;
	resp->quota = NULL;
}

/*
 * Needs no api either: the response names its cluster, which closes its
 * stream (cluster_unsubscribe()).
 */
static void
api_release_cluster(struct api_response *resp)
{
	if (resp->cluster_entry == NULL)
		return;
	cluster_unsubscribe(resp->cluster, resp->cluster_entry, resp->stream);
	resp->stream = NULL;
	resp->cluster_entry = NULL;
	resp->cluster = NULL;
}

void
api_stream_end(struct api *api, struct api_response *resp)
{
	api_release_quota(resp);
	if (resp->cluster_entry != NULL)
		api_release_cluster(resp);
	else if (resp->stream != NULL)
		registry_unsubscribe(api->reg, resp->stream);
	resp->stream = NULL;
}

void
api_response_release(struct api_response *resp)
{
	api_release_quota(resp);
	api_release_cluster(resp);
	buf_free(&resp->headers);
	buf_free(&resp->body);
}

void
api_response_clear(struct api_response *resp)
{
	api_response_release(resp);
	memset(resp, 0, sizeof(*resp));
}

/*
 * Tell the client when to try again.  A page on another origin reads only
 * the headers CORS exposes to it, and Retry-After is not one of the safe
 * few: so it is exposed, or a cross-origin client could not obey it.
 */
void
api_retry_after(struct api_response *resp, unsigned seconds)
{
	buf_printf(&resp->headers,
	    "Retry-After: %u\r\n"
	    "Access-Control-Expose-Headers: Retry-After\r\n",
	    seconds);
}

/* Set resp to a JSON document, which it steals. */
void
api_json(struct api_response *resp, enum http_status status, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);

	resp->status = status;
	buf_puts(&resp->headers, API_JSON_HEAD);
	buf_puts(&resp->body, text);
	free(text);
	json_decref(doc);
}

/* The one place a status becomes an error body: {"error": "..."}. */
void
api_error(struct api_response *resp, enum http_status status, const char *why)
{
	api_json(resp, status, json_pack("{s:s}", "error", why));
}

/*
 * A client address as a stream's tag (registry_stream_tag()): FNV-1a,
 * never 0.  A collision could only let one address's reconnect displace
 * another's stream of the same device, which any client may replace
 * anyway by opening streams_per_device streams to it.
 */
static uint64_t
api_address_tag(const char *addr)
{
	uint64_t h = 14695981039346656037ULL;

	for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

static void
api_subscribe(struct api *api, const struct api_request *req,
    const struct route *r, const struct auth_identity *who,
    struct api_response *resp)
{
	struct registry_resume resume;
	enum registry_error err = REGISTRY_OK;
	struct registry_stream *s;
	bool down = false;
	char addr_key[CIDR_KEY_MAX];
	const char *addr = cidr_client_key(
	    req->remote_addr, api->config->ipv6_prefix, addr_key);
	char *q = NULL;
	bool bad = false, displace = false;
	uint64_t tag = api_address_tag(addr);

	/* The header, which EventSource sends, wins over the query. */
	if (req->last_event_id == NULL && r->query != NULL) {
		q = http_query_param(r->query, "lastEventId", &bad);
		if (q == NULL && !bad)
			q = http_query_param(r->query, "last_event_id", &bad);
	}
	/* An id given that cannot be decoded is an unknown one: a reset. */
	if (req->last_event_id != NULL)
		api_parse_id(api, req->last_event_id, &resume);
	else
		api_parse_id(api, bad ? API_UNREADABLE_ID : q, &resume);
	free(q);
	q = r->query ? http_query_param(r->query, "envelope", NULL) : NULL;
	resp->envelope = q != NULL && strcmp(q, "1") == 0;
	free(q);
	/* Its sender owes for a replay: not another yet. */
	if (!api_subscribe_rate_ok(api, req, who, resp))
		return;
	if (!quota_acquire(api->per_address, addr)) {
		/*
		 * At the address's limit, a client coming back to its device
		 * takes the place of its old stream there: behind Caddy a
		 * departed client's stream stays open until a later write to
		 * it fails, so a blip that makes every phone behind one NAT
		 * reconnect at once would otherwise find the old streams
		 * holding every place, and EventSource gives up for good on
		 * the 429.  The old stream ends (replaced) once this one is
		 * open, and gives its place back; until then the address holds
		 * one more (at most twice its limit: quota_acquire_over()).
		 */
		displace =
		    registry_has_tagged(api->reg, r->user, r->device, tag) &&
		    quota_acquire_over(api->per_address, addr);
		if (!displace) {
			api_refuse_stream(req, resp, HTTP_429,
			    "too many streams from this address");
			return;
		}
	}
	resp->quota = api->per_address;
	resp->quota_key = xstrdup(addr);
	/*
	 * In a cluster the registry refuses only after Redis has the device
	 * (its commands, and a registration left to its grace period, so that
	 * posts to a device never served got 202): a node that is full or
	 * stopping refuses before.  A refused EventSource comes back every 5
	 * to 10 s for as long.
	 */
	if (api->cluster != NULL) {
		/*
		 * Not Redis's state: a device held here is served without.
		 * The count of streams only: registry_stats()'s devices_full
		 * (a walk of the devices in grace at max_devices) is for
		 * /readyz, and the subscribe's own refusal finds it again.
		 */
		enum api_refusal refusal =
		    api_refusing(api, registry_streams(api->reg));
		enum registry_error full;

		/* A device with a live stream here takes its place. */
		if (refusal == API_REFUSE_FULL &&
		    registry_admits(api->reg, r->user, r->device, &full))
			refusal = api_starved(api) ? API_REFUSE_NO_THREAD
			                           : API_REFUSE_NONE;
		if (refusal != API_REFUSE_NONE) {
			/* As the registry's own refusal is (test 94). */
			if (refusal == API_REFUSE_FULL)
				api_warn_full(api);
			api_release_quota(resp);
			api_refuse_stream(
			    req, resp, HTTP_503, api_refusal_text(refusal));
			return;
		}
	}
	if (api->cluster == NULL && api_starved(api)) {
		api_release_quota(resp);
		api_refuse_stream(req, resp, HTTP_503,
		    api_refusal_text(API_REFUSE_NO_THREAD));
		return;
	}
	if (api->cluster != NULL)
		s = cluster_subscribe(api->cluster, r->user, r->device, &resume,
		    &resp->start, &resp->cluster_entry, &err, &down);
	else
		s = registry_subscribe(
		    api->reg, r->user, r->device, &resume, &resp->start, &err);
	if (s == NULL) {
		enum http_status status = HTTP_503;
		const char *why = api_refusal_text(API_REFUSE_STOPPING);

		api_release_quota(resp);
		if (down) {
			why = API_CLUSTER_DOWN;
		} else if (err == REGISTRY_FULL) {
			api_warn_full(api);
			why = api_refusal_text(API_REFUSE_FULL);
		} else if (err == REGISTRY_DEVICES_FULL) {
			why = api_refusal_text(API_REFUSE_DEVICES);
		} else if (err == REGISTRY_USER_FULL) {
			status = HTTP_429;
			why = "too many devices for this user";
		} else if (err == REGISTRY_DEVICE_FULL) {
			status = HTTP_429;
			why = "too many streams for this device";
		}
		api_refuse_stream(req, resp, status, why);
		return;
	}
	/*
	 * Its replay, now known (in a cluster read from Redis, up to
	 * BEEP_REPLAY_BYTES), paid from its sender's BEEP_RATE: a client
	 * that reopened its stream in a loop with an early id kept Redis
	 * busy, and so every node, at no cost to itself (until 2026-12-08).
	 */
	api_replay_paid(api, req, who, registry_stream_behind(api->reg, s));
	/* Only now: a subscribe that failed took no one's place. */
	if (resp->start.over)
		registry_displace_over(api->reg, s, tag);
	else if (displace)
		registry_displace(api->reg, s, tag);
	else if (quota_limited(api->per_address))
		registry_stream_tag(api->reg, s, tag);
	resp->status = HTTP_200;
	resp->stream = s;
	if (resp->cluster_entry != NULL)
		resp->cluster = api->cluster;
	buf_puts(&resp->headers,
	    "Content-Type: text/event-stream\r\n"
	    "Cache-Control: no-cache, no-transform\r\n"
	    "X-Accel-Buffering: no\r\n");
}

static int
api_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
api_devices(struct api *api, const struct route *r, struct api_response *resp)
{
	json_t *list;
	char **names;
	size_t n;

	if (api->cluster == NULL) {
		registry_devices(api->reg, r->user, &names, &n);
	} else if (cluster_devices(api->cluster, r->user, &names, &n) < 0) {
		api_retry_after(resp, API_RETRY_AFTER);
		api_error(resp, HTTP_503, API_CLUSTER_DOWN);
		return;
	}
	list = json_array();
	if (n > 1)
		qsort(names, n, sizeof(*names), api_strcmp);
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(list, json_string(names[i]));
		free(names[i]);
	}
	free(names);
	api_json(resp, HTTP_200, list);
}

/*
 * Whether r's device is there for a POST: live, or away within its grace
 * period (a POST with data would be 200 or 202, not 404: the Express
 * service, which never forgot a device, answered 400 for one just gone);
 * yes when a cluster cannot tell (Redis down).  Only a POST without data
 * asks (api_post()), so it costs nothing on the way of one with data.
 */
static bool
api_device_known(struct api *api, const struct route *r)
{
	if (api->cluster == NULL)
		return registry_device_known(api->reg, r->user, r->device);
	return cluster_device_known(api->cluster, r->user, r->device) != 0;
}

/* sender: its name for the registry (api_rate_ok()). */
static void
api_post(struct api *api, const struct api_request *req, const struct route *r,
    const struct auth_identity *who, uint64_t sender, struct api_response *resp)
{
	struct body_msg msg;
	char packed_text[API_PACKED_STACK];
	struct buf packed = BUF_ON_STACK(packed_text);
	struct registry_msg *m;
	enum registry_error err;
	enum http_status status;
	const char *why = NULL, *too_large = NULL;
	char id[CLUSTER_ID_MAX], *from = NULL;
	size_t plen, key_len, cost;
	char key[BODY_KEY_MAX];

	if (req->body_too_large) {
		api_error(resp, HTTP_413, "body too large");
		return;
	}
	/* Never deliver the start of a message as a message. */
	if (req->body_cut) {
		api_error(resp, HTTP_400,
		    "body shorter than its Content-Length: cut short");
		return;
	}
	/*
	 * A compressed body (RFC 9110 8.4: 415 for a coding not supported)
	 * would be read as its bytes: "malformed JSON", which says nothing
	 * of what to change.
	 */
	if (req->content_encoding != NULL && req->content_encoding[0] != '\0' &&
	    strcasecmp(req->content_encoding, "identity") != 0) {
		api_error(resp, HTTP_415,
		    "Content-Encoding not supported: send the body uncompressed");
		return;
	}
	status = body_decode(req->content_type, req->body ? req->body : "",
	    req->body_len, api->config->max_depth, &msg, &why);
	if (status != HTTP_200) {
		/* As the Express service: the device first, then the data. */
		if (why == body_no_data && !api_device_known(api, r))
			api_error(
			    resp, HTTP_404, "device connection not found");
		else
			api_error(resp, status, why);
		return;
	}
	/*
	 * Read before msg is cleared.  A key is its sender's: another's of
	 * the same text is another key (a client counting 1, 2, 3 would
	 * have its next message taken for a repeat of one posted first by
	 * anyone).  Named here when the share did not name it.
	 */
	key_len = msg.key_len;
	if (key_len > 0) {
		memcpy(key, msg.key, key_len);
		if (sender == 0)
			sender = api_sender_name(api, req, who);
	}
	/* Packed once, outside the registry lock; every stream shares it. */
	if (who->user != NULL)
		from = event_from_json(who->user, who->device);
	plen = event_pack_len(msg.data_len, msg.event, from);
	/*
	 * Longer packed than its body (JSON numbers jansson writes back
	 * longer, the sender's stamp) and past what its device's log keeps:
	 * the log would drop it as soon as it was accepted.  Or past the
	 * whole message memory, which could never hold it: a 503 would have
	 * its sender try again for ever, and the registry would first evict
	 * every retained message, of every device, for nothing.
	 */
	/* A key's entry counts with its message (REGISTRY_KEY_OVERHEAD). */
	cost = plen + REGISTRY_MSG_OVERHEAD +
	    (key_len > 0 ? REGISTRY_KEY_OVERHEAD + sizeof(sender) + key_len
	                 : 0);
	if (cost > api->config->replay_bytes)
		too_large = "message too large once encoded (over "
		            "BEEP_REPLAY_BYTES)";
	else if (cost > api->config->max_message_memory)
		too_large = "message too large once encoded (over "
		            "BEEP_MAX_MESSAGE_MEMORY)";
	if (too_large != NULL) {
		free(from);
		body_msg_clear(&msg);
		api_error(resp, HTTP_413, too_large);
		return;
	}
	if (api->cluster != NULL) {
		bool down;

		event_pack(&packed, msg.data, msg.data_len, msg.is_json,
		    msg.event, from);
		free(from);
		body_msg_clear(&msg);
		err = cluster_publish_key(api->cluster, r->user, r->device,
		    sender, key, key_len, packed.data, packed.len, id,
		    sizeof(id), &down);
		buf_free(&packed);
		if (down) {
			api_retry_after(resp, API_RETRY_AFTER);
			api_error(resp, HTTP_503, API_CLUSTER_DOWN);
			return;
		}
	} else {
		char *frame;

		/* Packed straight into the registry's block: no copy. */
		m = registry_msg_alloc(plen, &frame);
		event_pack_to(frame, msg.data, msg.data_len, msg.is_json,
		    msg.event, from);
		free(from);
		body_msg_clear(&msg);
		registry_msg_set_sender(m, sender);
		/* Without a key, no call: a new message holds none. */
		if (key_len > 0)
			registry_msg_set_key(m, key, key_len);
		err = registry_publish(api->reg, r->user, r->device, m);
		api_format_id(api, registry_msg_id(m), id, sizeof(id));
		registry_msg_unref(m);
	}
	if (err == REGISTRY_NOT_FOUND) {
		api_error(resp, HTTP_404, "device connection not found");
		return;
	}
	/* Not accepted: nothing was queued, so the sender may try again. */
	if (err == REGISTRY_MEMORY_FULL || err == REGISTRY_CLOSED ||
	    err == REGISTRY_BACKLOGGED) {
		api_retry_after(resp, API_RETRY_AFTER);
		api_error(resp, HTTP_503,
		    err == REGISTRY_CLOSED           ? "service is stopping"
		        : err == REGISTRY_BACKLOGGED ? "device backlogged"
		                                     : "message memory full");
		return;
	}
	/*
	 * Its sender holds its share of what the device keeps, and this
	 * one would push out another sender's: the sender's to send again
	 * once the device has taken its own (not accepted).
	 */
	if (err == REGISTRY_CROWDED) {
		api_retry_after(resp, API_RETRY_AFTER);
		api_error(
		    resp, HTTP_429, "device holds too many of your messages");
		return;
	}
	/*
	 * Not its sender's doing: the device away keeps all it may of
	 * senders within their shares (others', or this one's under another
	 * name); it takes more as it comes back or its grace ends.
	 */
	if (err == REGISTRY_HELD_FULL) {
		api_retry_after(resp, API_RETRY_AFTER);
		api_error(resp, HTTP_503, "device holds all it keeps");
		return;
	}
	/*
	 * 202: the device is away, within its grace period: it waits.  The
	 * answer, {"id":"..."}, is written as it is: an id is digits and
	 * dashes (api_format_id(), cluster_format_id()), nothing JSON
	 * escapes, and every accepted POST answers it.
	 */
	resp->status = err == REGISTRY_HELD ? HTTP_202 : HTTP_200;
	buf_puts(&resp->headers, API_JSON_HEAD);
	buf_reserve(&resp->body, strlen(id) + 10);
	buf_append(&resp->body, "{\"id\":\"", 7);
	buf_puts(&resp->body, id);
	buf_append(&resp->body, "\"}", 2);
}

/*
 * ICE servers with TURN credentials for the verified user; in open mode
 * for ?user= (any id; anyone may claim any user there) or "anonymous".
 */
static void
api_ice_servers(struct api *api, const struct route *r,
    const struct auth_identity *who, struct api_response *resp)
{
	const char *user = who->user;
	char *q = NULL;
	bool bad = false;

	if (user == NULL && r->query != NULL)
		q = http_query_param(r->query, "user", &bad);
	if (bad ||
	    (q != NULL && !http_id_valid(q, strlen(q), api->config->max_id))) {
		free(q);
		api_error(resp, HTTP_400, "bad user");
		return;
	}
	if (user == NULL)
		user = q != NULL ? q : "anonymous";
	resp->status = HTTP_200;
	buf_puts(&resp->headers, API_JSON_HEAD);
	turn_ice_servers(
	    api->config, user, time(NULL), who->expires, &resp->body);
	free(q);
}

bool
api_precheck(struct api *api, const struct api_request *req,
    enum route_method method, struct api_pending *p, struct api_response *resp)
{
	struct auth_identity who = {0};
	enum route_result res;
	struct route r;

	p->prechecked = true;
	p->method = method;
	api_cors(api, req, resp);
	res = route_match(
	    method, req->uri, api->config->max_id, p->ids, sizeof(p->ids), &r);
	switch (res) {
	case ROUTE_NOT_FOUND:
		api_error(resp, HTTP_404, "not found");
		return false;
	case ROUTE_BAD_METHOD:
		buf_printf(&resp->headers, "Allow: %s\r\n", route_allow(r.id));
		api_error(resp, HTTP_405, "method not allowed");
		return false;
	/*
	 * A preflight of a bad id is answered as its route's: the request
	 * that follows then gets its 400, which the page can read, rather
	 * than failing as a CORS error.
	 */
	case ROUTE_BAD_ESCAPE:
		if (method != METHOD_OPTIONS) {
			api_error(resp, HTTP_400,
			    "malformed percent-encoding in path");
			return false;
		}
		break;
	case ROUTE_BAD_ID:
		if (method != METHOD_OPTIONS) {
			api_error(resp, HTTP_400,
			    "ids must be 1 to max-id bytes of UTF-8 without "
			    "control characters");
			return false;
		}
		break;
	case ROUTE_OK:
	case ROUTE_RESULT__MAX:
		break;
	}
	if (method == METHOD_OPTIONS) {
		resp->status = HTTP_204;
		buf_printf(&resp->headers,
		    "Allow: %s\r\n"
		    "Access-Control-Allow-Methods: %s\r\n"
		    "Access-Control-Allow-Headers: Content-Type, "
		    "Last-Event-ID, Authorization\r\n"
		    "Access-Control-Max-Age: %d\r\n",
		    route_allow(r.id), route_allow(r.id),
		    API_PREFLIGHT_MAX_AGE);
		goto out;
	}
	if (r.id == ROUTE_HEALTH) {
		api_health(api, req, resp);
		goto out;
	}
	if (r.id == ROUTE_READY) {
		api_readyz(api, resp);
		goto out;
	}
	if (r.id == ROUTE_METRICS) {
		api_metrics(api, req, resp);
		goto out;
	}
	if (!api_identify(api, req, &r, &who, resp) ||
	    !api_allowed(api, &r, &who, resp))
		goto out;
	switch (r.id) {
	case ROUTE_SUBSCRIBE:
		api_subscribe(api, req, &r, &who, resp);
		/* Its credentials' authority ends when they expire. */
		if (resp->stream != NULL)
			resp->expires = who.expires;
		break;
	case ROUTE_DEVICES:
		api_devices(api, &r, resp);
		break;
	case ROUTE_POST:
		if (api_rate_ok(api, req, &who, resp, &p->sender)) {
			/* The route and identity wait for the body, in p. */
			p->r = r;
			p->who = who;
			memset(&r, 0, sizeof(r));
			memset(&who, 0, sizeof(who));
			p->want_body = true;
		}
		break;
	case ROUTE_ICE:
		api_ice_servers(api, &r, &who, resp);
		break;
	case ROUTE_HEALTH:
	case ROUTE_METRICS:
	case ROUTE_READY:
	case ROUTE_NONE:
	case ROUTE__MAX:
		api_error(resp, HTTP_404, "not found");
		break;
	}
out:
	auth_identity_clear(&who);
	route_clear(&r);
	return p->want_body;
}

/* Microseconds on CLOCK_MONOTONIC, for metrics_post_time(). */
static uint64_t
api_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
api_handle(struct api *api, const struct api_request *req,
    struct api_pending *p, struct api_response *resp)
{
	uint64_t t0;

	if (p == NULL) {
		/* Zeroed only here: the server's is, once per request. */
		struct api_pending whole = {0};

		api_handle(api, req, &whole, resp);
		return;
	}
	if (!p->prechecked &&
	    !api_precheck(api, req, route_method_parse(req->method), p, resp))
		goto out;
	if (!p->want_body)
		goto out; /* api_precheck() answered */
	t0 = api_now_us();
	api_post(api, req, &p->r, &p->who, p->sender, resp);
	metrics_post_time(api_now_us() - t0);
out:
	if (p->method == METHOD_POST)
		metrics_post(resp->status);
	api_pending_clear(p);
}

void
api_request_timeout(struct api *api, const char *method, const char *origin,
    struct api_response *resp)
{
	struct api_request req = {.origin = origin};

	/* A page on another origin reads the 408, not a CORS failure. */
	api_cors(api, &req, resp);
	api_error(resp, HTTP_408, "request not received in time");
	/* A POST answered, as api_handle() counts the others (test 100). */
	if (route_method_parse(method) == METHOD_POST)
		metrics_post(HTTP_408);
}
