/*
 * server_request: a request read (its parameters, its body within
 * BEEP_MAX_BODY, the rest drained within BEEP_MAX_DRAIN more) and handed to
 * the api, and an answer that is not a stream written back, through
 * libfcgi's buffers; see the DESIGN comment in server.c.
 */
#include "server_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "route.h"
#include "server_params.h"
#include "util.h"

#define LOG_MODULE "server"

/*
 * The stack a POST's body is read into before it takes the heap
 * (server_answer()): an ICE candidate or a hang-up fits.
 */
#define SERVER_BODY_STACK 1024
/*
 * The stack an answer's head and its body are made in before they take
 * the heap (server_answer()): a POST's answer and most errors fit.
 */
#define SERVER_ANSWER_STACK 256

/* Write all of p; returns 0 or -1 once the connection has failed. */
static int
server_put(FCGX_Request *req, const char *p, size_t len)
{
	server_conn_of(req)->responded = true;
	while (len > 0) {
		int chunk = len > 1 << 30 ? 1 << 30 : (int)len;

		if (FCGX_PutStr(p, chunk, req->out) != chunk)
			return -1;
		p += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

/*
 * The body's length as CONTENT_LENGTH announces it: false when it
 * announces none.  Caddy sends "-1" for a body of unknown length (chunked,
 * or HTTP/2 without Content-Length), which strtoull() would read as
 * 2^64 - 1: only digits make a length.  One past ULLONG_MAX reads as
 * ULLONG_MAX, too large for any limit, as it should.
 */
static bool
server_body_length(const char *cl, unsigned long long *length)
{
	unsigned long long n = 0;
	const char *p;

	if (cl == NULL)
		return false;
	/* In one pass: strspn(), strlen() and strtoull() cost three. */
	for (p = cl; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		n = n > (ULLONG_MAX - d) / 10 ? ULLONG_MAX : n * 10 + d;
	}
	if (p == cl || *p != '\0')
		return false;
	*length = n;
	return true;
}

/*
 * Read and drop the rest of the body, so that the connection stays in
 * step and the front, which may be writing the body still (Caddy), gets
 * to read the answer (a 413, or the refusal of a POST that was not read);
 * but only up to BEEP_MAX_BODY + BEEP_MAX_DRAIN bytes of body in all
 * (seen counts what was read already): past it, give up on the
 * connection.  So a body a POST could have had is always drained,
 * whatever the two settings.  What CONTENT_LENGTH announces does not
 * decide: a front may pass less (Caddy's buffer_requests cuts a body at
 * its max_size and passes the length the client announced), and what
 * comes is read to its end.
 */
static void
server_drain_rest(FCGX_Request *req, size_t seen)
{
	const struct config *c = server_conn_of(req)->srv->config;
	size_t max = c->max_body + c->max_drain; /* each at most 1 GiB */
	char scratch[4096];
	int n;

	while ((n = FCGX_GetStr(scratch, (int)sizeof(scratch), req->in)) > 0) {
		seen += (size_t)n;
		if (seen > max) {
			/* As often as a client sends such bodies: limited. */
			static struct log_limit limit = LOG_LIMIT(LOG_INFO,
			    "request body over BEEP_MAX_BODY + BEEP_MAX_DRAIN");
			uint64_t held;

			if (log_limit_pass(&limit, util_now_ms(), &held))
				log_info(
				    "request body over BEEP_MAX_BODY + "
				    "BEEP_MAX_DRAIN (%zu bytes): closing "
				    "the connection (%llu more not logged)",
				    max, (unsigned long long)held);
			server_conn_give_up(req);
			return;
		}
	}
}

/*
 * Read the request body into body, up to max bytes; read and drop the rest
 * (within BEEP_MAX_DRAIN more) so the connection stays in step.  Returns
 * whether it was too long; *cut says whether less came than CONTENT_LENGTH
 * announced.  Caddy with buffer_requests reads a body whole before it
 * passes it, and when its client goes away mid-body (a phone that loses
 * its network) passes what it had, with the length the client announced:
 * such a body is the start of a message, which a form body decodes as a
 * whole one (data=hel of data=hello).  No front passes less for a body it
 * got whole.  The request counts as read after it.
 */
static bool
server_read_body(
    FCGX_Request *req, const char *cl, size_t max, struct buf *body, bool *cut)
{
	unsigned long long length = 0;
	bool known = server_body_length(cl, &length);
	bool too_large = known && length > max;
	/*
	 * The first allocation fits the announced length (a signaling
	 * message is small: no 8 KiB block per POST); past it, or with no
	 * length (a chunked body: read to its end, within max), 4 KiB more
	 * at a time.
	 */
	size_t chunk = length > 0 ? (size_t)length + 1 : 4096;
	int n;

	while (!too_large) {
		size_t room;

		if (body->cap <= body->len + 1) {
			buf_reserve(body, chunk);
			chunk = 4096;
		}
		room = body->cap - body->len - 1;
		n = FCGX_GetStr(body->data + body->len,
		    room > INT_MAX ? INT_MAX : (int)room, req->in);
		if (n <= 0) {
			server_read_done(req);
			*cut = known && body->len < length;
			return false;
		}
		body->len += (size_t)n;
		body->data[body->len] = '\0';
		if (body->len > max)
			too_large = true;
	}
	server_drain_rest(req, body->len);
	server_read_done(req);
	return true;
}

/*
 * Drop whatever request body there is (GET requests have none), within
 * BEEP_MAX_DRAIN.  The request counts as read after it.
 */
static void
server_drain(FCGX_Request *req)
{
	server_drain_rest(req, 0);
	server_read_done(req);
}

/*
 * The answer goes straight into libfcgi's output buffer: no buffer of its
 * own per answer (FCGX_Finish_r() writes it all, answer and END_REQUEST,
 * in one write).  When the length line and the body fit in the room left
 * in the headers' buffer (a POST's answer does, on server_answer()'s
 * stack), they are appended there and the whole goes in one
 * FCGX_PutStr(): a call into libfcgi costs more than the copy.  Otherwise
 * in pieces, the body where it lies.
 */
static int server_write_answer(FCGX_Request *req, struct api_response *resp,
    bool with_body) __attribute__((noinline));

static int
server_write_answer(
    FCGX_Request *req, struct api_response *resp, bool with_body)
{
	struct buf *h = &resp->headers;
	size_t body_len = with_body ? resp->body.len : 0;
	char line[96];
	int n;

	/* 200 is the CGI default; some fronts pass a Status line through. */
	if (resp->status != HTTP_200) {
		n = snprintf(line, sizeof(line), "Status: %d %s\r\n",
		    http_status_code[resp->status],
		    http_status_text[resp->status]);
		if (n < 0 || (size_t)n >= sizeof(line) ||
		    server_put(req, line, (size_t)n) < 0)
			return -1;
	}
	/* By hand: snprintf() costs as much as the rest of the head. */
	n = 0;
	/* A 204 has no body, and says nothing of its length (RFC 9110). */
	if (resp->status != HTTP_204) {
		memcpy(line, "Content-Length: ", 16);
		n = 16 + (int)util_u64_digits(resp->body.len, line + 16);
		line[n++] = '\r';
		line[n++] = '\n';
	}
	line[n++] = '\r';
	line[n++] = '\n';
	if (h->cap > h->len + (size_t)n + body_len) {
		memcpy(h->data + h->len, line, (size_t)n);
		if (body_len > 0)
			memcpy(h->data + h->len + n, resp->body.data, body_len);
		h->len += (size_t)n + body_len;
		h->data[h->len] = '\0';
		return server_put(req, h->data, h->len);
	}
	if (h->len > 0 && server_put(req, h->data, h->len) < 0)
		return -1;
	if (server_put(req, line, (size_t)n) < 0)
		return -1;
	return server_put(req, resp->body.data, body_len);
}

void
server_reply(FCGX_Request *req, struct api_response *resp, bool head)
{
	server_write_answer(req, resp, !head);
	/* Its callers' frames end with it: released, not zeroed. */
	api_response_release(resp);
}

/*
 * Read req, have the api answer it into resp and, unless the answer is a
 * stream, write it (resp is then released: its stream NULL, nothing in it
 * to free).  Returns false when the request
 * never arrived whole (resp is then empty: drop the connection).
 * Out of line, and apart from server_handle(): the request's parameters
 * (struct api_request) and body are done with once resp is made, and a
 * stream's thread sleeps under server_handle()'s frame for the stream's
 * life (see server_stream.c, memory per stream).
 */
bool
server_answer(struct server *srv, FCGX_Request *req, struct api_response *resp)
{
	struct api_request ar = {0};
	struct api_pending pending = {0};
	char body_text[SERVER_BODY_STACK];
	char head_text[SERVER_ANSWER_STACK], answer_text[SERVER_ANSWER_STACK];
	struct buf body = BUF_ON_STACK(body_text), uri = {0};
	enum route_method method;

	resp->headers = BUF_ON_STACK(head_text);
	resp->body = BUF_ON_STACK(answer_text);

	/* Out of line too (server_params.c): its lookup table. */
	server_params_to_request(req->envp, srv->config->auth_param, &ar, &uri);
	/* Parsed once: for POST, api_precheck() and then HEAD. */
	method = route_method_parse(ar.method);
	/*
	 * A POST is authenticated (and routed, allowed, rate-limited) from
	 * its parameters before its body is read: a refused one's body is
	 * only drained.  Other requests are handled whole below.
	 */
	if (method == METHOD_POST &&
	    api_precheck(srv->api, &ar, method, &pending, resp)) {
		ar.body_too_large = server_read_body(req, ar.content_length,
		    srv->config->max_body, &body, &ar.body_cut);
		ar.body = body.data;
		ar.body_len = ar.body_too_large ? 0 : body.len;
	} else {
		server_drain(req);
	}
	if (FCGX_GetError(req->in) != 0) {
		/*
		 * The request never arrived whole: its front let go of it
		 * (a client that went away mid-body, behind a front that
		 * streams bodies), at the client's rate, so the line is
		 * limited; or its read deadline fired, which server_serve()
		 * logs (one line for one request).
		 */
		static struct log_limit limit =
		    LOG_LIMIT(LOG_WARN, "request body: read failed");
		uint64_t held;

		if (!server_conn_of(req)->timed_out &&
		    log_limit_pass(&limit, util_now_ms(), &held))
			log_warn("request body: read failed (%s): dropping the "
			         "connection (%llu more not logged)",
			    strerror(FCGX_GetError(req->in) > 0
			            ? FCGX_GetError(req->in)
			            : EIO),
			    (unsigned long long)held);
		api_pending_clear(&pending);
		api_response_clear(resp);
		buf_free(&body);
		buf_free(&uri);
		return false;
	}
	api_handle(srv->api, &ar, &pending, resp);
	buf_free(&body);
	buf_free(&uri);
	if (resp->stream == NULL) {
		/* Written from this frame, where its buffers are. */
		server_reply(req, resp, method == METHOD_HEAD);
	} else {
		/* A stream's head outlives this frame. */
		buf_to_heap(&resp->headers);
		buf_to_heap(&resp->body);
	}
	return true;
}
