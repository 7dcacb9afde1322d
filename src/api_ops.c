/*
 * api_ops: what operators ask: /healthz, /readyz and /metrics, and whether
 * this node takes new streams at all.
 */
#include "api_impl.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "cluster.h"
#include "log.h"
#include "metrics.h"

#define LOG_MODULE "api"

/* See api_impl.h. */
bool
api_host_is_address(const char *h)
{
	const char *end;
	char name[64];
	unsigned char a[16];
	size_t n;

	if (h == NULL)
		return false;
	if (h[0] == '[') {
		end = strchr(h, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return false;
		h++;
	} else {
		end = strchr(h, ':');
		if (end == NULL)
			end = h + strlen(h);
	}
	n = (size_t)(end - h);
	if (n == 0 || n >= sizeof(name))
		return false;
	memcpy(name, h, n);
	name[n] = '\0';
	return strcasecmp(name, "localhost") == 0 ||
	    inet_pton(AF_INET, name, a) == 1 ||
	    inet_pton(AF_INET6, name, a) == 1;
}

/*
 * Whether a request may have the counters (/metrics, /healthz's) by its
 * Host: from loopback, only one that names this host by an address or as
 * localhost (or names none).  A browser on the host reaches loopback for
 * a page of any site whose name was re-pointed at 127.0.0.1 (DNS
 * rebinding), and such a page reads its own origin without CORS: its Host
 * is its own name (test 68).  From any other address BEEP_METRICS_ALLOW
 * decides alone (a scraper may ask by a name: a container's, say).
 */
static bool
api_counters_host_ok(const struct api_request *req)
{
	const char *h = req->host;

	if (h == NULL || h[0] == '\0' || !cidr_loopback(req->remote_addr))
		return true;
	return api_host_is_address(h);
}

/* See api_impl.h. */
bool
api_starved(struct api *api)
{
	struct api_threads t = {0};

	if (api->threads != NULL)
		api->threads(api->threads_ctx, &t);
	return t.starved;
}

/* See api_impl.h. */
enum api_refusal
api_refusing(struct api *api, size_t streams)
{
	if (atomic_load(&api->stopping))
		return API_REFUSE_STOPPING;
	if (streams >= api->config->max_streams)
		return API_REFUSE_FULL;
	if (api_starved(api))
		return API_REFUSE_NO_THREAD;
	return API_REFUSE_NONE;
}

/* See api_impl.h. */
const char *
api_refusal_text(enum api_refusal r)
{
	static const char *const text[API_REFUSE__MAX] = {
	    [API_REFUSE_NONE] = NULL,
	    [API_REFUSE_STOPPING] = "service is stopping",
	    [API_REFUSE_FULL] = "too many streams",
	    [API_REFUSE_NO_THREAD] = "no thread free for a stream",
	    [API_REFUSE_DEVICES] = "too many devices",
	};

	return text[r];
}

/*
 * The log's word that the stream limit refuses subscribes: at most once a
 * second (a refused EventSource comes back every 5 to 10 s, for as long as
 * the service is full); beep_streams_refused_total counts each.
 */
void
api_warn_full(struct api *api)
{
	static struct log_limit limit =
	    LOG_LIMIT(LOG_WARN, "stream limit reached: subscribes refused");
	uint64_t held;

	if (log_limit_pass(&limit, util_now_ms(), &held))
		log_warn("stream limit reached (%zu): refusing subscribes "
		         "(%llu more not logged)",
		    api->config->max_streams, (unsigned long long)held);
}

static bool
api_cluster_up(struct api *api)
{
	struct cluster_stats cs;

	cluster_stats(api->cluster, &cs);
	return cs.up;
}

void
api_health(
    struct api *api, const struct api_request *req, struct api_response *resp)
{
	struct registry_stats st;
	struct api_threads t = {0};
	json_t *doc;

	/*
	 * The counters are the service's figures (users, streams, traffic,
	 * what an attack does to it): for the addresses metrics are for.
	 * Anyone else learns that it lives; so does a web page (it names
	 * its origin, which no health check or scraper does), which the
	 * CORS headers every answer carries would let read them (test 62).
	 */
	if (!cidr_list_match(&api->metrics_allow, req->remote_addr) ||
	    req->origin != NULL || !api_counters_host_ok(req)) {
		bool up = api->cluster == NULL || api_cluster_up(api);

		api_json(resp, HTTP_200,
		    json_pack("{s:s}", "status", up ? "ok" : "degraded"));
		return;
	}
	registry_stats(api->reg, &st);
	if (api->threads != NULL)
		api->threads(api->threads_ctx, &t);
	doc = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "status", "ok", "users", (json_int_t)st.users, "devices",
	    (json_int_t)st.devices, "streams", (json_int_t)st.streams,
	    "threads", (json_int_t)t.threads, "idle_threads",
	    (json_int_t)t.idle, "published", (json_int_t)st.published, "held",
	    (json_int_t)st.held, "overflows", (json_int_t)st.overflows,
	    "forgotten", (json_int_t)st.forgotten, "dropped",
	    (json_int_t)st.dropped, "resets", (json_int_t)st.resets,
	    "message_bytes", (json_int_t)st.message_bytes, "replaced",
	    (json_int_t)st.replaced, "evicted", (json_int_t)st.evicted,
	    "refused", (json_int_t)st.refused, "backlogged",
	    (json_int_t)st.backlogged, "crowded", (json_int_t)st.crowded,
	    "repeated", (json_int_t)st.repeated, "keys", (json_int_t)st.keys,
	    "requests", (json_int_t)t.requests);
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
		/* As beep_stream_resets_total: the cluster's own too. */
		json_object_set_new(doc, "resets",
		    json_integer((json_int_t)(st.resets + cs.resets)));
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

/*
 * Whether a new stream would be accepted: not stopping, below max_streams,
 * a worker for it, a place for a new device (below max_devices, or one
 * there to give way: the subscribes of devices already here are taken at
 * it, as at max_streams those of live ones are, but a balancer's new
 * streams are mostly new devices'), Redis reachable.  The registry's
 * counters, copied under its lock.
 */
static bool
api_ready(struct api *api, struct registry_stats *st, const char **why)
{
	registry_stats(api->reg, st);
	*why = api_refusal_text(api_refusing(api, st->streams));
	if (*why == NULL && st->devices_full)
		*why = api_refusal_text(API_REFUSE_DEVICES);
	if (*why == NULL && api->cluster != NULL && !api_cluster_up(api))
		*why = API_CLUSTER_DOWN;
	return *why == NULL;
}

/* /readyz: 200 while new streams are accepted, else 503 and why. */
void
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
void
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
	if (!api_counters_host_ok(req)) {
		api_error(resp, HTTP_403,
		    "metrics are served from loopback only to a Host that is "
		    "an address or localhost");
		return;
	}
	g.ready = api_ready(api, &g.reg, &why);
	if (api->cluster != NULL) {
		cluster_stats(api->cluster, &g.cl);
		g.cluster = true;
	}
	if (api->threads != NULL) {
		struct api_threads t = {0};

		api->threads(api->threads_ctx, &t);
		g.threads = t.threads;
		g.idle = t.idle;
		g.requests = t.requests;
	}
	resp->status = HTTP_200;
	/*
	 * For a scraper, never a web page: no CORS header (api_cors() put
	 * the only ones there), or any page in a browser on an allowed host
	 * (loopback) could read the metrics.
	 */
	resp->headers.len = 0;
	buf_puts(&resp->headers,
	    "Content-Type: " METRICS_CONTENT_TYPE "\r\n"
	    "Cache-Control: no-store\r\n");
	metrics_render(&resp->body, &g);
}
