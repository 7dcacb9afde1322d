/*
 * api: the HTTP API over the registry.  It turns a request (method, URI,
 * a few headers, the body) into a response (status, headers, body), or
 * into a registry stream for the server to serve.  No I/O and no FastCGI:
 * the server module reads requests and writes responses.
 */
#ifndef BEEP_API_H
#define BEEP_API_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "registry.h"
#include "route.h"
#include "util.h"

struct api;
struct cluster;
struct cluster_entry;

struct api_request {
	const char *method;           /* REQUEST_METHOD */
	const char *uri;              /* REQUEST_URI: raw path and query */
	const char *content_type;     /* may be NULL */
	const char *content_encoding; /* the Content-Encoding header, or NULL */
	const char *content_length;   /* CONTENT_LENGTH, or NULL */
	const char *origin;           /* the Origin header, or NULL */
	const char *last_event_id;    /* the Last-Event-ID header, or NULL */
	const char *authorization;    /* the Authorization header, or NULL */
	const char *cookie;           /* the Cookie header, or NULL */
	const char *claim;            /* the forward-auth identity header */
	const char *remote_addr;      /* the client's address, from the front */
	const char *sec_fetch_site;   /* the Sec-Fetch-Site header, or NULL */
	const char *host;             /* the Host header, or NULL */
	const char *accept;           /* the Accept header, or NULL */
	bool https;                   /* the front received it over TLS */
	const char *body;             /* POST body, or NULL */
	size_t body_len;
	bool body_too_large; /* the body was longer than max_body */
	/*
	 * Less came than CONTENT_LENGTH announced: its client went away
	 * mid-body, and Caddy (buffer_requests) passes what it had.
	 */
	bool body_cut;
};

struct api_response {
	enum http_status status;
	struct buf headers; /* "Name: value\r\n" lines, Status excluded */
	struct buf body;
	/*
	 * When set, the response is an SSE stream: the server writes the
	 * headers, then serves the stream until it ends, then calls
	 * registry_unsubscribe().
	 */
	struct registry_stream *stream;
	struct registry_start start; /* with stream: what to send first */
	bool envelope;               /* with stream: name the sender */
	/*
	 * With stream: the Unix time (seconds) its credentials expire at,
	 * when the stream ends; 0: never (open mode, forward auth).
	 */
	long long expires;
	/* Private to the api: */
	struct quota *quota; /* with stream: holds one of quota_key's */
	char *quota_key;
	struct cluster *cluster; /* with stream, in a cluster: its device */
	struct cluster_entry *cluster_entry;
};

/*
 * The server's worker threads, for /healthz and /metrics, and for a
 * subscribe: a stream keeps its worker, and one that took the last worker
 * while no other could be started (a thread limit) would leave no one to
 * accept, and every POST waiting.
 */
struct api_threads {
	size_t threads;  /* workers alive */
	size_t idle;     /* waiting for a connection or a kept one's request */
	size_t requests; /* in progress, streams included */
	bool starved;    /* none idle, and the last start of one failed */
};
typedef void (*api_threads_fn)(void *ctx, struct api_threads *out);

/*
 * The api keeps pointers to c and reg: both must outlive it.  Returns
 * NULL after logging why when the authentication settings are unusable.
 */
struct api *api_new(const struct config *c, struct registry *reg,
    api_threads_fn threads, void *threads_ctx);
void api_free(struct api *api);

/*
 * What api_new() would refuse c for, checked without starting anything
 * (--check-config): the authentication settings (the JWT secret or key,
 * read and parsed) and the ICE server URLs.  -1 after logging why.
 */
int api_check(const struct config *c);

/*
 * The room a request's ids are decoded in (route_match()): two segments
 * of up to 63 bytes as sent, percent-escapes included (UUIDs among them;
 * a non-ASCII id sent escaped fills it at 21 characters).  Longer ones
 * take the heap.
 */
#define API_IDS_ROOM 128

/*
 * What api_precheck() found, for api_handle() once the body is read: the
 * caller's, for the request only (on its stack: no block of its own per
 * POST, and nothing in the response, which a stream keeps for its life).
 * Its fields are private to the api.
 */
struct api_pending {
	bool prechecked; /* api_precheck() ran */
	bool want_body;  /* it passed a POST: r and who wait for the body */
	enum route_method method; /* the request's, as it parsed it */
	struct route r;           /* its ids in ids[] when they fit */
	struct auth_identity who;
	uint64_t sender; /* its sender's name (api_rate_ok()) */
	char ids[API_IDS_ROOM];
};

/*
 * The checks that need no body: route, identity (and, for cookie
 * credentials, the request's origin), permission and rate.  method is
 * req->method parsed (route_method_parse()), which the caller has done to
 * know a POST: not parsed twice.  p and resp must be zeroed.  Returns true
 * for a POST that passed them: read its body, then call api_handle() with
 * it, p and resp.  Otherwise resp is the whole answer (a refusal, or any
 * other request's response): a refused POST's body is not needed.
 */
bool api_precheck(struct api *api, const struct api_request *req,
    enum route_method method, struct api_pending *p, struct api_response *resp);

/*
 * Handle one request: p and resp are zeroed, or what api_precheck() left
 * (p NULL: the request whole, without api_precheck()).  Does nothing to a
 * resp that api_precheck() already answered.  Releases p (ready for
 * another request).
 */
void api_handle(struct api *api, const struct api_request *req,
    struct api_pending *p, struct api_response *resp);

/*
 * Release what api_precheck() left in p (ready for another request), for
 * a request that api_handle() will not see (its body never came).
 */
void api_pending_clear(struct api_pending *p);

/*
 * The stream of resp has ended, whatever ended it: close it (in a
 * cluster, through the cluster, which reads what its device's streams
 * took as it closes: see cluster_unsubscribe()) and give back its client
 * address's count (BEEP_MAX_STREAMS_PER_ADDRESS).  api_response_clear()
 * does it too, closing the stream in a cluster only.
 */
void api_stream_end(struct api *api, struct api_response *resp);

/*
 * Release the response's buffers and zero it; not its stream, but in a
 * cluster (closed with its registration: cluster_unsubscribe()).
 */
void api_response_clear(struct api_response *resp);

/*
 * api_response_clear() without the zeroing, for a response done with
 * whose struct goes with its caller's frame: nothing is left to free, and
 * its stream is NULL if it was (or was a cluster's); the rest is stale.
 * Saves clearing every answer's struct (~30 instructions per request).
 */
void api_response_release(struct api_response *resp);

/*
 * The first bytes of a stream: an SSE comment, sent at once, then the
 * position the stream starts at as an id with no event (start->id), or a
 * reset event with that id when start says the client missed messages.
 */
void api_stream_open(
    struct api *api, const struct registry_start *start, struct buf *out);
/* Append message m as an event with its id, in an envelope or not. */
void api_stream_message(struct api *api, const struct registry_msg *m,
    bool envelope, struct buf *out);

/*
 * The service is stopping: /readyz answers 503 from now on.  Call it
 * before closing the registry.  Thread-safe.
 */
void api_stop(struct api *api);

/* Periodic housekeeping (forget refilled rate buckets); about 1/s. */
void api_expire(struct api *api, uint64_t now_ms);
/* The keepalive comment. */
void api_stream_keepalive(struct buf *out);
/*
 * The last bytes of a stream a newer one replaced: an event named
 * "replaced" and a long retry:, so clients that replace each other do not
 * loop.
 */
void api_stream_replaced(struct buf *out);
/* The last bytes of a stream when the service stops. */
void api_stream_close(struct buf *out);
/*
 * The last bytes of a stream whose credentials expired: the `refused`
 * event of a refusal, {"error":"credentials expired","status":401}, so
 * that a page knows to fetch a new token before it comes back.
 */
void api_stream_expired(struct buf *out);

/*
 * The answer to a request that did not arrive within BEEP_READ_TIMEOUT,
 * with the CORS headers origin (NULL: none sent) gets; method is its
 * REQUEST_METHOD (NULL: none came): a POST counts as answered 408.
 */
void api_request_timeout(struct api *api, const char *method,
    const char *origin, struct api_response *resp);

#endif
