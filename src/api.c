/* api: see api.h. */
#include "api.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "body.h"
#include "cidr.h"
#include "cluster.h"
#include "event.h"
#include "limit.h"
#include "log.h"
#include "metrics.h"
#include "quota.h"
#include "route.h"
#include "sse.h"
#include "turn.h"

#define LOG_MODULE "api"

/* Seconds a client is told to wait after a 503 for a full service. */
#define API_RETRY_AFTER 5
/* The longest Last-Event-ID a refused stream gives back as its id. */
#define API_ECHO_ID_MAX 128
/* What api_cors() reserves for an answer's header lines. */
#define API_HEAD_ROOM 192
/* The stack a rate bucket's key is made in (longer ones take the heap). */
#define API_KEY_STACK 256
/*
 * The stack a message is packed in before it is copied into the registry
 * (longer ones are packed on the heap).
 */
#define API_PACKED_STACK 1024
/* How long a browser may cache a preflight answer, in seconds. */
#define API_PREFLIGHT_MAX_AGE 600
/*
 * A replaced stream's client waits this long before it reconnects, so
 * that two clients replacing each other (one device id in two tabs) do
 * so at most once per period, not in a loop.
 */
#define API_REPLACED_RETRY_MS 30000
/* Clients reconnect after a stop within this many milliseconds. */
#define API_RETRY_MIN_MS 1000
#define API_RETRY_SPREAD_MS 4000
/* What a request that needs Redis gets while it is unreachable. */
#define API_CLUSTER_DOWN "cluster store (Redis) unreachable"
/*
 * What a ?lastEventId= that cannot be decoded counts as: no id this
 * service issues (nor a cluster's), so the stream starts with a reset.
 */
#define API_UNREADABLE_ID "?"

struct api {
	const struct config *config;
	struct registry *reg;
	api_threads_fn threads;
	void *threads_ctx;
	bool cors_any;
	char **origins; /* the allow-list, when not "*" */
	size_t norigins;
	struct auth *auth;
	struct limit *limit;       /* POSTs per sender */
	struct quota *per_address; /* streams per client address (open mode) */
	bool list_any;             /* anyone may list anyone's devices */
	struct cidr_list metrics_allow; /* who may read /metrics */
	atomic_bool stopping;           /* api_stop() was called */
	struct cluster *cluster;        /* BEEP_REDIS_URL: the other nodes */
	char epoch[24];                 /* the registry's epoch and '-' */
	size_t epoch_len;
};

/* What api_precheck() found, for api_handle() once the body is read. */
struct api_pending {
	struct route r;
	struct auth_identity who;
};

struct api *
api_new(const struct config *c, struct registry *reg, api_threads_fn threads,
    void *threads_ctx)
{
	struct api *api = xcalloc(1, sizeof(*api));
	const char *p = c->cors_origins, *why;

	api->config = c;
	api->reg = reg;
	api->epoch_len = util_u64_digits(registry_epoch(reg), api->epoch);
	api->epoch[api->epoch_len++] = '-';
	api->threads = threads;
	api->threads_ctx = threads_ctx;
	api->cors_any = strcmp(p, "*") == 0;
	while (!api->cors_any && *p != '\0') {
		size_t len = strcspn(p, ",");
		const char *s = p, *e = p + len;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			api->origins = xrealloc(api->origins,
			    (api->norigins + 1) * sizeof(*api->origins));
			api->origins[api->norigins++] =
			    xmemdup(s, (size_t)(e - s));
		}
		p += len;
		if (*p == ',')
			p++;
	}
	api->auth = auth_new(c);
	if (api->auth == NULL || turn_check(c) < 0) {
		api_free(api);
		return NULL;
	}
	api->limit = limit_new(c->rate, c->burst);
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

void
api_free(struct api *api)
{
	if (api == NULL)
		return;
	for (size_t i = 0; i < api->norigins; i++)
		free(api->origins[i]);
	free(api->origins);
	auth_free(api->auth);
	limit_free(api->limit);
	quota_free(api->per_address);
	cidr_list_clear(&api->metrics_allow);
	cluster_free(api->cluster);
	free(api);
}

static void
api_pending_free(struct api_pending *p)
{
	if (p == NULL)
		return;
	auth_identity_clear(&p->who);
	route_clear(&p->r);
	free(p);
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

/* Needs no api either: the response names its cluster. */
static void
api_release_cluster(struct api_response *resp)
{
	if (resp->cluster_entry == NULL)
		return;
	cluster_unsubscribe(resp->cluster, resp->cluster_entry);
	resp->cluster_entry = NULL;
	resp->cluster = NULL;
}

void
api_stream_end(struct api *api, struct api_response *resp)
{
	(void)api;
	api_release_quota(resp);
	api_release_cluster(resp);
}

void
api_response_clear(struct api_response *resp)
{
	api_release_quota(resp);
	api_release_cluster(resp);
	api_pending_free(resp->pending);
	buf_free(&resp->headers);
	buf_free(&resp->body);
	memset(resp, 0, sizeof(*resp));
}

static void
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

/*
 * Tell the client when to try again.  A page on another origin reads only
 * the headers CORS exposes to it, and Retry-After is not one of the safe
 * few: so it is exposed, or a cross-origin client could not obey it.
 */
static void
api_retry_after(struct api_response *resp, unsigned seconds)
{
	buf_printf(&resp->headers,
	    "Retry-After: %u\r\n"
	    "Access-Control-Expose-Headers: Retry-After\r\n",
	    seconds);
}

/* Set resp to a JSON document, which it steals. */
static void
api_json(struct api_response *resp, enum http_status status, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);

	resp->status = status;
	buf_puts(&resp->headers, "Content-Type: application/json\r\n");
	buf_puts(&resp->body, text);
	free(text);
	json_decref(doc);
}

/* The one place a status becomes an error body: {"error": "..."}. */
static void
api_error(struct api_response *resp, enum http_status status, const char *why)
{
	api_json(resp, status, json_pack("{s:s}", "error", why));
}

/*
 * Why this node takes no new stream whatever Redis's state (stopping, or
 * at BEEP_MAX_STREAMS), or NULL; fills st.
 */
static const char *
api_refusing(struct api *api, struct registry_stats *st)
{
	registry_stats(api->reg, st);
	if (atomic_load(&api->stopping))
		return "service is stopping";
	if (st->streams >= api->config->max_streams)
		return "too many streams";
	return NULL;
}

/*
 * The log's word that the stream limit refuses subscribes: at most once a
 * second (a refused EventSource comes back every 5 to 10 s, for as long as
 * the service is full); beep_streams_refused_total counts each.
 */
static void
api_warn_full(struct api *api)
{
	static _Atomic uint64_t last_ms;
	uint64_t now = util_now_ms(), was = atomic_load(&last_ms);

	if (now - was >= 1000 &&
	    atomic_compare_exchange_strong(&last_ms, &was, now))
		log_warn("stream limit reached (%zu): refusing subscribes",
		    api->config->max_streams);
}

/*
 * Refuse a stream for now (status 429 or 503, why), with Retry-After.  To
 * a client that reads only an event stream (EventSource: Accept:
 * text/event-stream) as one that it comes back from, since EventSource
 * never retries a 4xx or 5xx answer: 200, an event "refused" whose data
 * is the error and its status, and a retry: field of Retry-After plus up
 * to as much again (so that the clients refused together do not all come
 * back together); the stream then ends, and EventSource reconnects after
 * that long, with its Last-Event-ID.  To any other, the error.
 */
static void
api_refuse_stream(const struct api_request *req, struct api_response *resp,
    enum http_status status, const char *why)
{
	const char *id = req->last_event_id;
	json_t *doc;
	char *text;
	long wait_ms;

	metrics_stream_refused(status);
	api_retry_after(resp, API_RETRY_AFTER);
	if (!http_accepts_event_stream_only(req->accept)) {
		api_error(resp, status, why);
		return;
	}
	doc = json_pack(
	    "{s:s,s:i}", "error", why, "status", http_status_code[status]);
	text = json_dumps(doc, JSON_COMPACT);
	wait_ms =
	    API_RETRY_AFTER * 1000L + random() % (API_RETRY_AFTER * 1000L);
	resp->status = HTTP_200;
	buf_puts(&resp->headers,
	    "Content-Type: text/event-stream\r\n"
	    "Cache-Control: no-store\r\n");
	buf_printf(&resp->body, "retry: %ld\nevent: refused\n", wait_ms);
	/*
	 * The id it came with, given back: the WHATWG model starts each
	 * response's last event id empty, and an event without an id field
	 * would then make the client's empty, so that it came back with no
	 * Last-Event-ID and missed what was sent meanwhile (browsers keep it
	 * anyway; this does not rely on them).
	 */
	if (id != NULL && *id != '\0' && strlen(id) <= API_ECHO_ID_MAX &&
	    strpbrk(id, "\r\n") == NULL)
		buf_printf(&resp->body, "id: %s\n", id);
	buf_printf(&resp->body, "data: %s\n\n", text);
	free(text);
	json_decref(doc);
}

/*
 * Event ids are "<epoch>-<n>": see registry_epoch(), registry_msg_id();
 * in a cluster, Redis stream ids (cluster_format_id()).
 */
static void
api_format_id(const struct api *api, uint64_t n, char *out, size_t size)
{
	char text[sizeof(api->epoch) + 20];
	size_t len = api->epoch_len;

	if (api->cluster != NULL) {
		cluster_format_id(n, out, size);
		return;
	}
	/* The epoch's digits are made once (api_new()): only n's here. */
	memcpy(text, api->epoch, len);
	len += util_u64_digits(n, text + len);
	if (size == 0)
		return;
	if (len >= size)
		len = size - 1;
	memcpy(out, text, len);
	out[len] = '\0';
}

/*
 * Read 1 to 20 decimal digits at *p into *v, advancing *p; false on no
 * digit or overflow.  Stricter than strtoull: no sign, no space.
 */
static bool
api_parse_u64(const char **p, uint64_t *v)
{
	const char *s = *p;

	*v = 0;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return false;
		*v = *v * 10 + d;
	}
	*p = s;
	return true;
}

/* Read an event id back; anything not exactly as we write it is unknown. */
static void
api_parse_id(
    const struct api *api, const char *s, struct registry_resume *resume)
{
	uint64_t epoch, n;

	resume->kind = REGISTRY_RESUME_NONE;
	if (s == NULL || *s == '\0')
		return;
	resume->kind = REGISTRY_RESUME_UNKNOWN;
	if (api->cluster != NULL) {
		if (cluster_parse_id(s, &resume->id) == 0)
			resume->kind = REGISTRY_RESUME_AT;
		return;
	}
	if (!api_parse_u64(&s, &epoch) || *s++ != '-' ||
	    !api_parse_u64(&s, &n) || *s != '\0' ||
	    epoch != registry_epoch(api->reg))
		return;
	resume->kind = REGISTRY_RESUME_AT;
	resume->id = n;
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
    const struct route *r, struct api_response *resp)
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
		struct registry_stats st;
		/* Not Redis's state: a device held here is served without. */
		const char *why = api_refusing(api, &st);

		if (why != NULL) {
			api_release_quota(resp);
			api_refuse_stream(req, resp, HTTP_503, why);
			return;
		}
	}
	if (api->cluster != NULL)
		s = cluster_subscribe(api->cluster, r->user, r->device, &resume,
		    &resp->start, &resp->cluster_entry, &err, &down);
	else
		s = registry_subscribe(
		    api->reg, r->user, r->device, &resume, &resp->start, &err);
	if (s == NULL) {
		enum http_status status = HTTP_503;
		const char *why = "service is stopping";

		api_release_quota(resp);
		if (down) {
			why = API_CLUSTER_DOWN;
		} else if (err == REGISTRY_FULL) {
			api_warn_full(api);
			why = "too many streams";
		} else if (err == REGISTRY_USER_FULL) {
			status = HTTP_429;
			why = "too many devices for this user";
		}
		api_refuse_stream(req, resp, status, why);
		return;
	}
	/* Only now: a subscribe that failed took no one's place. */
	if (displace)
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

static void
api_post(struct api *api, const struct api_request *req, const struct route *r,
    const struct auth_identity *who, struct api_response *resp)
{
	struct body_msg msg;
	char packed_text[API_PACKED_STACK];
	struct buf packed = BUF_ON_STACK(packed_text);
	struct registry_msg *m;
	enum registry_error err;
	enum http_status status;
	const char *why = NULL;
	char id[CLUSTER_ID_MAX], *from = NULL;

	if (req->body_too_large) {
		api_error(resp, HTTP_413, "body too large");
		return;
	}
	status = body_decode(req->content_type, req->body ? req->body : "",
	    req->body_len, api->config->max_depth, &msg, &why);
	if (status != HTTP_200) {
		api_error(resp, status, why);
		return;
	}
	/* Packed once, outside the registry lock; every stream shares it. */
	if (who->user != NULL)
		from = event_from_json(who->user, who->device);
	event_pack(
	    &packed, msg.data, msg.data_len, msg.is_json, msg.event, from);
	free(from);
	body_msg_clear(&msg);
	if (api->cluster != NULL) {
		bool down;

		err = cluster_publish(api->cluster, r->user, r->device,
		    packed.data, packed.len, id, sizeof(id), &down);
		buf_free(&packed);
		if (down) {
			api_retry_after(resp, API_RETRY_AFTER);
			api_error(resp, HTTP_503, API_CLUSTER_DOWN);
			return;
		}
	} else {
		m = registry_msg_new(packed.data, packed.len);
		buf_free(&packed);
		err = registry_publish(api->reg, r->user, r->device, m);
		api_format_id(api, registry_msg_id(m), id, sizeof(id));
		registry_msg_unref(m);
	}
	if (err == REGISTRY_NOT_FOUND) {
		api_error(resp, HTTP_404, "device connection not found");
		return;
	}
	/* Not accepted: nothing was queued, so the sender may try again. */
	if (err == REGISTRY_MEMORY_FULL || err == REGISTRY_CLOSED) {
		api_retry_after(resp, API_RETRY_AFTER);
		api_error(resp, HTTP_503,
		    err == REGISTRY_CLOSED ? "service is stopping"
		                           : "message memory full");
		return;
	}
	/*
	 * 202: the device is away, within its grace period: it waits.  The
	 * answer, {"id":"..."}, is written as it is: an id is digits and
	 * dashes (api_format_id(), cluster_format_id()), nothing JSON
	 * escapes, and every accepted POST answers it.
	 */
	resp->status = err == REGISTRY_HELD ? HTTP_202 : HTTP_200;
	buf_puts(&resp->headers, "Content-Type: application/json\r\n");
	buf_reserve(&resp->body, strlen(id) + 10);
	buf_append(&resp->body, "{\"id\":\"", 7);
	buf_puts(&resp->body, id);
	buf_append(&resp->body, "\"}", 2);
}

static void
api_health(struct api *api, struct api_response *resp)
{
	struct registry_stats st;
	size_t threads = 0, idle = 0, requests = 0;
	json_t *doc;

	registry_stats(api->reg, &st);
	if (api->threads != NULL)
		api->threads(api->threads_ctx, &threads, &idle, &requests);
	doc = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:I}",
	    "status", "ok", "users", (json_int_t)st.users, "devices",
	    (json_int_t)st.devices, "streams", (json_int_t)st.streams,
	    "threads", (json_int_t)threads, "idle_threads", (json_int_t)idle,
	    "published", (json_int_t)st.published, "held", (json_int_t)st.held,
	    "overflows", (json_int_t)st.overflows, "forgotten",
	    (json_int_t)st.forgotten, "dropped", (json_int_t)st.dropped,
	    "resets", (json_int_t)st.resets, "message_bytes",
	    (json_int_t)st.message_bytes, "replaced", (json_int_t)st.replaced,
	    "evicted", (json_int_t)st.evicted, "refused",
	    (json_int_t)st.refused, "requests", (json_int_t)requests);
	if (api->cluster != NULL) {
		struct cluster_stats cs;

		cluster_stats(api->cluster, &cs);
		/* Local deliveries go on while Redis is down: degraded. */
		if (!cs.up)
			json_object_set_new(
			    doc, "status", json_string("degraded"));
		json_object_set_new(doc, "cluster",
		    json_pack("{s:s, s:s}", "redis", cs.up ? "up" : "down",
		        "node", cs.node));
	}
	api_json(resp, HTTP_200, doc);
}

void
api_stop(struct api *api)
{
	atomic_store(&api->stopping, true);
	if (api->cluster != NULL)
		cluster_stop(api->cluster);
}

static bool
api_cluster_up(struct api *api)
{
	struct cluster_stats cs;

	cluster_stats(api->cluster, &cs);
	return cs.up;
}

/*
 * Whether a new stream would be accepted: not stopping, below max_streams.
 * O(1): the registry's counters, copied under its lock.
 */
static bool
api_ready(struct api *api, struct registry_stats *st, const char **why)
{
	*why = api_refusing(api, st);
	if (*why == NULL && api->cluster != NULL && !api_cluster_up(api))
		*why = API_CLUSTER_DOWN;
	return *why == NULL;
}

/* /readyz: 200 while new streams are accepted, else 503 and why. */
static void
api_readyz(struct api *api, struct api_response *resp)
{
	struct registry_stats st;
	const char *why;

	if (api_ready(api, &st, &why))
		api_json(resp, HTTP_200, json_pack("{s:s}", "status", "ready"));
	else
		api_error(resp, HTTP_503, why);
}

/* /metrics, to the addresses BEEP_METRICS_ALLOW lists only. */
static void
api_metrics(
    struct api *api, const struct api_request *req, struct api_response *resp)
{
	struct metrics_gauges g = {.max_streams = api->config->max_streams,
	    .max_message_bytes = api->config->max_message_memory};
	const char *why;

	if (!cidr_list_match(&api->metrics_allow, req->remote_addr)) {
		api_error(resp, HTTP_403,
		    "metrics are served only to the addresses in "
		    "BEEP_METRICS_ALLOW");
		return;
	}
	g.ready = api_ready(api, &g.reg, &why);
	if (api->cluster != NULL) {
		cluster_stats(api->cluster, &g.cl);
		g.cluster = true;
	}
	if (api->threads != NULL)
		api->threads(
		    api->threads_ctx, &g.threads, &g.idle, &g.requests);
	resp->status = HTTP_200;
	buf_puts(&resp->headers,
	    "Content-Type: " METRICS_CONTENT_TYPE "\r\n"
	    "Cache-Control: no-store\r\n");
	metrics_render(&resp->body, &g);
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

/*
 * Cross-site request forgery: a browser attaches cookies to requests any
 * page makes (a form POST, an EventSource), so a request identified by a
 * cookie must come from a page we trust: the same origin (as the browser's
 * Sec-Fetch-Site says, or an Origin equal to our own), or an origin on
 * the allow-list.  Bearer and query tokens are never sent by themselves.
 */
static bool
api_same_origin_ok(const struct api *api, const struct api_request *req)
{
	if (req->sec_fetch_site != NULL &&
	    strcmp(req->sec_fetch_site, "same-origin") == 0)
		return true;
	return req->origin != NULL &&
	    (api_origin_listed(api, req->origin) ||
	        api_origin_own(req, req->origin));
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
	buf_puts(&resp->headers,
	    "Content-Type: application/json\r\n"
	    "Cache-Control: no-store\r\n");
	turn_ice_servers(api->config, user, time(NULL), &resp->body);
	free(q);
}

/*
 * Who is asking, when authentication is on: AUTH_OK with *who filled in,
 * or the 401 (403 for a cookie sent from another site) already set in
 * resp.  With it off, who stays empty.
 */
static bool
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
	    r->query != NULL)
		ar.query_token = token =
		    http_query_param(r->query, "access_token", NULL);
	res = auth_identify(api->auth, &ar, who);
	free(token);
	if (res == AUTH_OK) {
		/*
		 * In header mode the identity service may have used the
		 * cookie: a request carrying one is treated as ambient.
		 */
		bool ambient = who->source == AUTH_SOURCE_COOKIE ||
		    (who->source == AUTH_SOURCE_CLAIM && req->cookie != NULL);

		if (!ambient || api_same_origin_ok(api, req))
			return true;
		auth_identity_clear(who);
		api_error(resp, HTTP_403,
		    "cookie credentials from another site: send "
		    "Sec-Fetch-Site: same-origin or an allowed Origin");
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
static bool
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

/* The sender's token bucket: by verified user, else by address. */
static bool
api_rate_ok(struct api *api, const struct api_request *req,
    const struct auth_identity *who, struct api_response *resp)
{
	unsigned retry = 1;
	char key_text[API_KEY_STACK], addr_key[CIDR_KEY_MAX];
	struct buf key = BUF_ON_STACK(key_text);
	bool ok;

	/* Appended, not formatted: vsnprintf() would cost more than the rest. */
	if (who->user != NULL) {
		buf_append(&key, "u:", 2);
		buf_puts(&key, who->user);
	} else {
		buf_append(&key, "a:", 2);
		buf_puts(&key,
		    cidr_client_key(
		        req->remote_addr, api->config->ipv6_prefix, addr_key));
	}
	ok = limit_take(api->limit, key.data, util_now_ms(), &retry);
	buf_free(&key);
	if (!ok) {
		metrics_rate_limited();
		api_retry_after(resp, retry);
		api_error(resp, HTTP_429, "too many requests");
	}
	return ok;
}

bool
api_precheck(
    struct api *api, const struct api_request *req, struct api_response *resp)
{
	enum route_method method = route_method_parse(req->method);
	struct auth_identity who = {0};
	enum route_result res;
	struct route r;
	bool want_body = false;

	resp->prechecked = true;
	api_cors(api, req, resp);
	res = route_match(method, req->uri, api->config->max_id, &r);
	switch (res) {
	case ROUTE_NOT_FOUND:
		api_error(resp, HTTP_404, "not found");
		return false;
	case ROUTE_BAD_METHOD:
		buf_printf(&resp->headers, "Allow: %s\r\n", route_allow(r.id));
		api_error(resp, HTTP_405, "method not allowed");
		return false;
	case ROUTE_BAD_ESCAPE:
		api_error(resp, HTTP_400, "malformed percent-encoding in path");
		return false;
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
		api_health(api, resp);
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
		api_subscribe(api, req, &r, resp);
		break;
	case ROUTE_DEVICES:
		api_devices(api, &r, resp);
		break;
	case ROUTE_POST:
		if (api_rate_ok(api, req, &who, resp)) {
			/* The route and identity wait for the body. */
			resp->pending = xcalloc(1, sizeof(*resp->pending));
			resp->pending->r = r;
			resp->pending->who = who;
			memset(&r, 0, sizeof(r));
			memset(&who, 0, sizeof(who));
			want_body = true;
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
	return want_body;
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
api_handle(
    struct api *api, const struct api_request *req, struct api_response *resp)
{
	struct api_pending *p;
	uint64_t t0;

	if (!resp->prechecked && !api_precheck(api, req, resp))
		goto out;
	p = resp->pending;
	if (p == NULL)
		goto out; /* api_precheck() answered */
	resp->pending = NULL;
	t0 = api_now_us();
	api_post(api, req, &p->r, &p->who, resp);
	metrics_post_time(api_now_us() - t0);
	api_pending_free(p);
out:
	if (req->method != NULL && strcmp(req->method, "POST") == 0)
		metrics_post(resp->status);
}

void
api_stream_open(
    struct api *api, const struct registry_start *start, struct buf *out)
{
	char id[48], *data;
	json_t *doc;

	sse_format_comment(out, "beep-signal");
	/*
	 * Where the stream starts, before anything else: a client cut before
	 * its first event resumes from here and loses nothing.  With a reset,
	 * the reset event carries it.
	 */
	api_format_id(api, start->id, id, sizeof(id));
	if (!start->reset) {
		sse_format_id(out, id);
		return;
	}
	doc = json_pack("{s:s}", "reason", start->reason);
	data = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	sse_format_event(out, id, "reset", data, strlen(data));
	free(data);
}

void
api_stream_message(struct api *api, const struct registry_msg *m, bool envelope,
    struct buf *out)
{
	size_t len;
	const char *packed = registry_msg_frame(m, &len);
	char id[48];

	api_format_id(api, registry_msg_id(m), id, sizeof(id));
	if (event_render(out, packed, len, id, envelope) < 0)
		log_error("message %s is not a packed event", id);
}

void
api_expire(struct api *api, uint64_t now_ms)
{
	limit_expire(api->limit, now_ms);
}

void
api_stream_keepalive(struct buf *out)
{
	sse_format_comment(out, NULL);
}

void
api_stream_replaced(struct buf *out)
{
	static const char why[] =
	    "{\"reason\":\"a newer stream of this device replaced this one\"}";

	sse_format_event(out, NULL, "replaced", why, sizeof(why) - 1);
	sse_format_retry(out, API_REPLACED_RETRY_MS);
}

void
api_stream_close(struct buf *out)
{
	/* Spread reconnects so a restart is not hit by every client at once. */
	sse_format_retry(
	    out, API_RETRY_MIN_MS + (unsigned)(random() % API_RETRY_SPREAD_MS));
}

void
api_request_timeout(struct api_response *resp)
{
	api_error(resp, HTTP_408, "request not received in time");
}
