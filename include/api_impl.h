/*
 * api_impl: the state the api modules share: api.c (the routes and the
 * answer's pieces), api_access.c (who may ask: CORS, identity, cross-site
 * checks, the senders' rate), api_ops.c (health, readiness, metrics) and
 * api_stream.c (a stream's ids, its first and last bytes, the refusal an
 * EventSource comes back from).  Included by src/api*.c only.
 */
#ifndef BEEP_API_IMPL_H
#define BEEP_API_IMPL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "auth.h"
#include "cidr.h"
#include "route.h"

/* Seconds a client is told to wait after a 503 for a full service. */
#define API_RETRY_AFTER 5
/* What a request that needs Redis gets while it is unreachable. */
#define API_CLUSTER_DOWN "cluster store (Redis) unreachable"
/*
 * The head of every JSON answer.  None may be kept by a cache: device
 * lists and 404s change as streams come and go, and answers to an
 * authenticated user are that user's.
 */
#define API_JSON_HEAD                                                          \
	"Content-Type: application/json\r\n"                                   \
	"Cache-Control: no-store\r\n"

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

/* api.c: the answer's pieces. */

/*
 * Tell the client when to try again (Retry-After, exposed to pages on
 * other origins).
 */
void api_retry_after(struct api_response *resp, unsigned seconds);
/* Set resp to a JSON document, which it steals. */
void api_json(struct api_response *resp, enum http_status status, json_t *doc);
/* The one place a status becomes an error body: {"error": "..."}. */
void api_error(
    struct api_response *resp, enum http_status status, const char *why);

/* api_access.c: who may ask. */

/*
 * Set up the CORS allow-list, authentication and the senders' rate from
 * c; 0, or -1 after logging why the settings are unusable.
 */
int api_access_init(struct api *api, const struct config *c);
/* Release what api_access_init() set up (also after it failed). */
void api_access_free(struct api *api);
/* Append the CORS headers req's Origin gets. */
void api_cors(
    struct api *api, const struct api_request *req, struct api_response *resp);
/*
 * Who is asking, when authentication is on: true with *who filled in, or
 * false with the 401 (403 for a cookie sent from another site) set in
 * resp.  With it off, true and who stays empty.
 */
bool api_identify(struct api *api, const struct api_request *req,
    const struct route *r, struct auth_identity *who,
    struct api_response *resp);
/* Whether who may use route r; sets the 403 in resp when not. */
bool api_allowed(struct api *api, const struct route *r,
    const struct auth_identity *who, struct api_response *resp);
/*
 * Whether the sender may POST now; sets the 429 in resp when not.  Its
 * name for the registry in *sender (registry_msg_set_sender()).
 */
bool api_rate_ok(struct api *api, const struct api_request *req,
    const struct auth_identity *who, struct api_response *resp,
    uint64_t *sender);
/*
 * The sender's name as api_rate_ok() gives it (there 0 when BEEP_SENDER_SHARE
 * is 100), for a POST whose idempotency key is its sender's alone: in a
 * cluster 0 until the node has read the nodes' key.
 */
uint64_t api_sender_name(struct api *api, const struct api_request *req,
    const struct auth_identity *who);
/*
 * Whether the sender may subscribe now: not while its bucket owes for a
 * replay; sets the 429 in resp when not.
 */
bool api_subscribe_rate_ok(struct api *api, const struct api_request *req,
    const struct auth_identity *who, struct api_response *resp);
/* The sender pays for a subscribe's replay of bytes (into debt). */
void api_replay_paid(struct api *api, const struct api_request *req,
    const struct auth_identity *who, uint64_t bytes);

/* api_ops.c: health, readiness, metrics. */

/*
 * Why this node takes no new stream, whatever Redis's state: a code, so
 * that a caller tells one cause from another without reading the words
 * the client gets (api_refusal_text()).
 */
enum api_refusal {
	API_REFUSE_NONE,      /* new streams are taken */
	API_REFUSE_STOPPING,  /* api_stop() was called */
	API_REFUSE_FULL,      /* at BEEP_MAX_STREAMS */
	API_REFUSE_NO_THREAD, /* the last worker is kept for POSTs */
	API_REFUSE_DEVICES,   /* BEEP_MAX_DEVICES: api_ready()'s alone */
	API_REFUSE__MAX
};

/*
 * Whether host (a Host header, with or without its port) names the host
 * by an address or as localhost: no name a page's site could have had
 * re-pointed at this service (DNS rebinding).  False for NULL.
 */
bool api_host_is_address(const char *host);
/*
 * Whether a new stream would take the last worker while none more can be
 * started (struct api_threads): it is refused, so that one is left to
 * accept POSTs.
 */
bool api_starved(struct api *api);
/*
 * Why this node takes no new stream whatever Redis's state (stopping, at
 * BEEP_MAX_STREAMS, starved of threads), or API_REFUSE_NONE; streams: the
 * registry's open streams (registry_streams(), or registry_stats()'s).
 */
enum api_refusal api_refusing(struct api *api, size_t streams);
/* The error body's words for refusal r; NULL for API_REFUSE_NONE. */
const char *api_refusal_text(enum api_refusal r);
/* Log that the stream limit refuses subscribes, at most once a second. */
void api_warn_full(struct api *api);
/*
 * GET /healthz: the status, and to BEEP_METRICS_ALLOW addresses the
 * counters.
 */
void api_health(
    struct api *api, const struct api_request *req, struct api_response *resp);
/* GET /readyz: 200 while new streams are accepted, else 503 and why. */
void api_readyz(struct api *api, struct api_response *resp);
/* GET /metrics, to the addresses BEEP_METRICS_ALLOW lists only. */
void api_metrics(
    struct api *api, const struct api_request *req, struct api_response *resp);

/* api_stream.c: ids and a stream's framing. */

/*
 * Refuse a stream for now (status 429 or 503, why): to an EventSource as
 * a stream it comes back from, to anyone else as the error.
 */
void api_refuse_stream(const struct api_request *req, struct api_response *resp,
    enum http_status status, const char *why);
/* api_refuse_stream(), to come back after seconds (not API_RETRY_AFTER). */
void api_refuse_stream_after(const struct api_request *req,
    struct api_response *resp, enum http_status status, const char *why,
    unsigned seconds);
/* Event id n as the client sees it, in out (size bytes). */
void api_format_id(const struct api *api, uint64_t n, char *out, size_t size);
/*
 * Read an event id back; anything not as we write it (leading zeros
 * aside: the same number) is unknown.
 */
void api_parse_id(
    const struct api *api, const char *s, struct registry_resume *resume);

#endif
