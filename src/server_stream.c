/*
 * server_stream: a stream's writer, the part of the server a stream's
 * thread runs once its request is read: the head, then events and
 * keepalive comments as FastCGI records (fcgi_out) until the stream ends,
 * within the write timeout.  See the DESIGN comment in server.c (Streams,
 * Watcher) and server_impl.h.
 */
#include "server_impl.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "deadline.h"
#include "fcgi_out.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "util.h"

#define LOG_MODULE "server"

/*
 * FastCGI records a keepalive comment is written as.  Caddy 2.6 closes
 * its FastCGI connection on the 4th record it relays after its client
 * left: the 1st reaches the departed client's host, which answers with a
 * reset; the 2nd fails (EPIPE); the 3rd and 4th make the failure reach
 * its copy loop.  Only the 2nd needs the reset to have come back, a round
 * trip later, so 3 records per keepalive get it over within 2 keepalives
 * on any network (on loopback, where the reset is immediate, the 4th is
 * the next keepalive's first).  Clients see the same bytes; the comment
 * (":\n\n") has a byte for each record.
 */
#define SERVER_KEEPALIVE_RECORDS 3
/*
 * Stack server_stack_trim() leaves below its frame: its own spills and
 * madvise()'s return address, the only bytes below it in use during the
 * call.  Small, so that the page the stream sleeps in is the only one
 * kept (see server_stack_trim()).
 */
#define SERVER_STACK_TRIM_SLACK 256
/*
 * The stack a batch of events is rendered in before it takes the heap
 * (stream_out_batch()): a few ICE candidates or a hang-up fit; an SDP
 * offer (2 to 6 KiB) does not, and is rendered on the heap as before.
 */
#define SERVER_RENDER_STACK 1024
/* The most of a batch's text held before it is written (stream_sink). */
#define SERVER_RENDER_PIECE (16 * 1024)

/* The lowest address of this worker's stack (server_stack_trim()). */
static __thread uintptr_t server_stack_low;

/*
 * A stream's output.  Through libfcgi, a stream would hold its request's
 * 8 KiB input and output buffers, 512-byte error buffer and parameters
 * until it ends, though it needs none of them once the request is read.
 * So a stream writes its FastCGI records straight to the connection
 * (fcgi_out), with no buffer of its own, and hands that memory to the
 * watcher to free, not freeing it itself: glibc would keep the small
 * blocks in this thread's cache (tcache), where no other thread can reuse
 * them, for as long as the stream sleeps.
 *
 * The connection stays libfcgi's: FCGX_Finish_r() finds no streams left
 * to close and keeps the connection (nginx's fastcgi_keep_conn) or closes
 * it, as it would have, and closes it after a failed write.
 *
 * Out of line: its buffers are not part of the frame the stream sleeps in.
 */
static int stream_out_begin(struct server *srv, struct fcgi_out *out,
    FCGX_Request *req, struct api_response *resp) __attribute__((noinline));

static int
stream_out_begin(struct server *srv, struct fcgi_out *out, FCGX_Request *req,
    struct api_response *resp)
{
	struct server_garbage *g = xcalloc(1, sizeof(*g));
	uint64_t one = 1;
	char status[64];
	struct iovec v[4];
	int n = 0, rc;

	/* Read, whatever path led here: no deadline may cut the stream. */
	server_read_done(req);
	server_conn_of(req)->responded = true;
	fcgi_out_init(out, req->ipcFd, (unsigned)req->requestId);
	out->timeout_ms = srv->config->write_timeout * 1000;
	/* The head and the opening comment, in one record. */
	if (resp->status != HTTP_200) {
		v[n].iov_base = status;
		v[n++].iov_len = (size_t)snprintf(status, sizeof(status),
		    "Status: %d %s\r\n", http_status_code[resp->status],
		    http_status_text[resp->status]);
	}
	v[n].iov_base = resp->headers.data;
	v[n++].iov_len = resp->headers.len;
	v[n].iov_base = "\r\n";
	v[n++].iov_len = 2;
	buf_reset(&resp->body);
	api_stream_open(srv->api, &resp->start, &resp->body);
	v[n].iov_base = resp->body.data;
	v[n++].iov_len = resp->body.len;
	rc = fcgi_out_writev(out, v, (size_t)n);
	if (rc == 0)
		metrics_stream_write(0, resp->body.len);

	/* in, out, err and the parameters; libfcgi offers no call for this. */
	g->req = *req;
	req->in = req->out = req->err = NULL;
	req->envp = NULL;
	req->paramsPtr = NULL;
	g->headers = resp->headers;
	g->body = resp->body;
	resp->headers = resp->body = (struct buf){0};
	pthread_mutex_lock(&srv->lock);
	g->next = srv->garbage;
	srv->garbage = g;
	pthread_mutex_unlock(&srv->lock);
	if (write(srv->wake_fd, &one, sizeof(one)) < 0)
		log_warn("eventfd write: %s", strerror(errno));
	return rc;
}

/* Write b's bytes and release b; returns 0 or -1. */
static int
stream_out_write(struct fcgi_out *out, struct buf *b)
{
	int rc = fcgi_out_write(out, b->data, b->len);

	if (rc == 0)
		metrics_stream_write(0, b->len);
	buf_free(b);
	return rc;
}

/*
 * What a batch's rendering sends before it is whole: a piece of about
 * SERVER_RENDER_PIECE bytes at a time (buf_sink), so that a stream whose
 * write blocks holds that much, not a whole batch as rendered: a message
 * of line breaks grows seven-fold ("data: " for each), one of control
 * characters six-fold in an envelope (\u0001), for every stream of its
 * device, outside BEEP_MAX_MESSAGE_MEMORY (until 2026-12-06; test 54).
 */
struct stream_sink {
	struct buf_sink sink;
	struct fcgi_out *out;
};

static void
stream_out_spill(struct buf *b, struct buf_sink *sink)
{
	struct stream_sink *s = (struct stream_sink *)sink;

	if (fcgi_out_write(s->out, b->data, b->len) < 0)
		sink->failed = true;
	else
		metrics_stream_write(0, b->len);
}

/*
 * Write a batch of messages, formatted for this stream, and release it.
 * Out of line, like stream_out_begin(): its frame (published[], the text)
 * is not part of the one the stream sleeps in.  The text is rendered on
 * the stack when it fits (an ICE candidate, a hang-up, a few of them):
 * no allocation per delivery.
 */
static int stream_out_batch(struct server *srv, struct fcgi_out *out,
    struct registry_batch *batch, bool envelope) __attribute__((noinline));

static int
stream_out_batch(struct server *srv, struct fcgi_out *out,
    struct registry_batch *batch, bool envelope)
{
	uint64_t published[REGISTRY_BATCH], now;
	char text[SERVER_RENDER_STACK];
	struct stream_sink sink = {
	    .sink = {.spill = stream_out_spill, .at = SERVER_RENDER_PIECE},
	    .out = out};
	struct buf b = BUF_ON_STACK(text);
	size_t n = 0;
	/*
	 * One deadline for the batch's pieces and its rest, as for a batch
	 * written whole: a piece each would let a client that reads 16 KiB
	 * per BEEP_WRITE_TIMEOUT hold the write for as long as it likes
	 * (test 66).
	 */
	uint64_t deadline = 0;
	int rc;

	b.sink = &sink.sink;
	out->deadline = &deadline;
	for (struct registry_msg *m = batch->first; m != NULL;
	     m = registry_batch_next(batch, m)) {
		api_stream_message(srv->api, m, envelope, &b);
		published[n++] = registry_msg_published_us(m);
	}
	registry_batch_release(batch);
	if (sink.sink.failed) {
		out->deadline = NULL;
		buf_free(&b);
		return -1;
	}
	rc = stream_out_write(out, &b);
	out->deadline = NULL;
	if (rc < 0)
		return -1;
	metrics_stream_write(n, 0);
	now = util_now_us();
	for (size_t i = 0; i < n; i++)
		metrics_delivered(now > published[i] ? now - published[i] : 0);
	return 0;
}

/* End the response; after a failed write, have libfcgi close the link. */
static void
stream_out_end(struct fcgi_out *out, FCGX_Request *req)
{
	if (fcgi_out_end(out) < 0)
		req->keepConnection = 0;
}

/* Note where this worker's stack ends, for server_stack_trim(). */
void
server_stack_init(void)
{
	pthread_attr_t attr;
	void *addr;
	size_t size;

	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return;
	if (pthread_attr_getstack(&attr, &addr, &size) == 0)
		server_stack_low = (uintptr_t)addr;
	pthread_attr_destroy(&attr);
}

/*
 * Give back the pages of this worker's stack below the current frame.  A
 * thread keeps every stack page it ever touched, so a worker that once
 * read a POST (a 4 KiB scratch buffer, jansson's recursion) or closed a
 * connection (libfcgi's 1 KiB drain buffer) would hold those pages for the
 * whole life of a stream it serves later.  Pages the stream touches again
 * come back zeroed, on demand.  What is kept is the page this frame is in
 * and those above: with alloc_tune's static TLS settings and the frames
 * as they are, a single page, in which the stream's sleep and a
 * keepalive's write also fit (test 45 checks it).  A frame grown by a few
 * hundred bytes between the thread's start and the sleep costs a page per
 * stream.
 */
static void server_stack_trim(void) __attribute__((noinline));

static void
server_stack_trim(void)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t low = server_stack_low, end;

	/* This frame, and madvise()'s below it, stay above end. */
	end =
	    ((uintptr_t)__builtin_frame_address(0) - SERVER_STACK_TRIM_SLACK) &
	    ~(page - 1);
	if (low == 0 || low % page != 0 || end <= low)
		return;
	if (madvise((void *)low, end - low, MADV_DONTNEED) < 0)
		log_warn("madvise: %s", strerror(errno));
}

/* Why a stream ended, by the last wake (a write that failed after one). */
static const char *const stream_end_why[REGISTRY_WAKE__MAX] = {
    [REGISTRY_MESSAGES] = "a write failed",
    [REGISTRY_TIMEOUT] = "a keepalive's write failed",
    [REGISTRY_GONE] = "its connection hung up",
    [REGISTRY_OVERFLOW] = "it fell too far behind",
    [REGISTRY_CLOSING] = "the service is stopping",
    [REGISTRY_REPLACED] = "a newer stream replaced it",
    [REGISTRY_EXPIRED] = "its credentials expired",
};

/*
 * Log why the stream ended, and warn when its client fell behind or
 * stopped reading (timed_out: a write took BEEP_WRITE_TIMEOUT).  A client
 * can make as many such streams as it may open, so the warnings are
 * limited (log_limit_pass()); the metrics count each.  Out of line: kept
 * in server_stream() past the calls that follow, wake would take room in
 * the frame its thread sleeps under (one stack page: see
 * server_stack_trim()).
 */
static void stream_log_end(const struct server *srv, uint64_t id,
    enum registry_wake wake, bool timed_out) __attribute__((noinline, cold));

static void
stream_log_end(const struct server *srv, uint64_t id, enum registry_wake wake,
    bool timed_out)
{
	static struct log_limit behind_log =
	    LOG_LIMIT(LOG_WARN, "a stream fell too far behind");
	static struct log_limit slow_log = LOG_LIMIT(
	    LOG_WARN, "a stream's write took longer than BEEP_WRITE_TIMEOUT");
	uint64_t held;

	log_debug("stream %llu ended: %s", (unsigned long long)id,
	    stream_end_why[wake]);
	if (wake == REGISTRY_OVERFLOW &&
	    log_limit_pass(&behind_log, util_now_ms(), &held))
		log_warn("stream %llu fell too far behind: closing it (%llu "
		         "more not logged)",
		    (unsigned long long)id, (unsigned long long)held);
	if (timed_out && log_limit_pass(&slow_log, util_now_ms(), &held))
		log_warn("stream %llu: a write took longer than %us: closing "
		         "it (%llu more not logged)",
		    (unsigned long long)id, srv->config->write_timeout,
		    (unsigned long long)held);
}

/*
 * Warn that the watcher could not watch a stream's connection (err: why).
 * A kernel that refuses one (ENOSPC at fs.epoll.max_user_watches, ENOMEM)
 * refuses every stream after it, at the rate clients open them: limited
 * (log_limit_pass()), as one kind whatever the cause.  Out of line for the
 * same reason as stream_log_end().
 */
static void stream_log_unwatched(int err) __attribute__((noinline, cold));

static void
stream_log_unwatched(int err)
{
	static struct log_limit limit = LOG_LIMIT(LOG_WARN,
	    "epoll_ctl refused a stream's connection: departures are noticed "
	    "on write only");
	uint64_t held;

	if (log_limit_pass(&limit, util_now_ms(), &held))
		log_warn("epoll_ctl: %s: departures are noticed on write only "
		         "(%llu more not logged)",
		    strerror(err), (unsigned long long)held);
}

/*
 * When (util_now_ms()) a stream whose credentials expire at the Unix time
 * expires (seconds; 0: never) ends: a token's authority ends at its exp,
 * not when its stream's connection does (a token read from a log would
 * otherwise hold its victim's stream, and read what is posted to it, for
 * as long as it kept the connection open).  0 for never.
 */
static uint64_t stream_until(long long expires) __attribute__((noinline));

static uint64_t
stream_until(long long expires)
{
	struct timespec wall;
	long long left_s, left_ms;

	if (expires <= 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &wall);
	left_s = expires - (long long)wall.tv_sec;
	/* Past what milliseconds hold (an exp of 1e16): never. */
	if (left_s >= LLONG_MAX / 1000 - 1)
		return 0;
	left_ms = left_s * 1000 - (long long)(wall.tv_nsec / 1000000);
	return util_now_ms() + (left_ms > 0 ? (uint64_t)left_ms : 0);
}

/*
 * Serve an SSE stream until it ends: write resp's head, then events as
 * they come.  The worker's thread sleeps in registry_wait() between
 * writes; the watcher wakes it if the connection hangs up.  Takes resp's
 * stream and buffers; resp->start says what to send first.
 */
void
server_stream(struct server *srv, FCGX_Request *req, struct api_response *resp)
{
	struct registry_stream *s = resp->stream;
	bool envelope = resp->envelope;
	uint64_t interval = (uint64_t)srv->config->keepalive * 1000;
	uint64_t deadline = util_now_ms() + interval;
	struct epoll_event ev = {
	    .events = EPOLLRDHUP | EPOLLONESHOT,
	    .data.u64 = registry_stream_id(s),
	};
	struct registry_batch batch;
	enum registry_wake wake;
	struct fcgi_out out;
	struct buf b = {0};
	struct timeval tv = {0};
	uint64_t born = util_now_ms();
	/* Messages written since the trim; when, if so, to trim. */
	bool watched, deep = false;
	uint64_t trim_at = 0;

	/*
	 * A client that stops reading fills the front's buffers, then ours:
	 * a write may block only so long, then the stream ends (its client
	 * replays on return) and the device's grace period runs.
	 */
	tv.tv_sec = srv->config->write_timeout;
	setsockopt(req->ipcFd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	registry_stream_expires(s, stream_until(resp->expires));
	if (stream_out_begin(srv, &out, req, resp) < 0)
		goto done;
	/* No duplicate of the connection held for the stream's life. */
	deadline_cancel(server_conn_of(req)->timer);
	server_stack_trim();
	watched = epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, out.fd, &ev) == 0;
	if (!watched)
		stream_log_unwatched(errno);
	for (;;) {
		wake = registry_wait(srv->reg, s,
		    deep && trim_at < deadline ? trim_at : deadline, &batch);
		if (wake == REGISTRY_MESSAGES) {
			if (stream_out_batch(srv, &out, &batch, envelope) < 0)
				break;
			/*
			 * Not putting the keepalive off: behind Caddy a
			 * departure is noticed only on the 4th record written
			 * after it, a message is one, and messages a little
			 * more often than each keepalive kept it from ever
			 * being written: 4 messages, nearly 3 intervals after
			 * the first, where 2 keepalives are promised (test 20;
			 * and every POST meanwhile answered 200, delivered to
			 * no one).  Fewer records per keepalive when messages
			 * were written would not do: 4 of them in one round
			 * trip after the departure leave it unnoticed.
			 */
			deep = true;
			trim_at = util_now_ms() + interval;
		} else if (wake == REGISTRY_TIMEOUT) {
			uint64_t now = util_now_ms();
			int rc;

			/*
			 * Idle for a whole interval after writing messages
			 * (trim_at): give back the pages that took
			 * (rendering, writes reach a second page and more),
			 * so that an idle stream sleeps in one page again,
			 * whether or not a keepalive is due.  Not per message
			 * nor while messages come (a busy stream keeps its
			 * pages), and not after a keepalive alone, whose
			 * write stays in the first page (fcgi_out's small
			 * split): a madvise() costs ~13 us with the other CPU
			 * running a thread of ours (a TLB shootdown), half a
			 * keepalive.
			 */
			if (deep && now >= trim_at) {
				server_stack_trim();
				deep = false;
			}
			if (now < deadline)
				continue;
			api_stream_keepalive(&b);
			rc = fcgi_out_write_split(
			    &out, b.data, b.len, SERVER_KEEPALIVE_RECORDS);
			if (rc == 0)
				metrics_stream_write(0, b.len);
			buf_free(&b);
			if (rc < 0)
				break;
			deadline = util_now_ms() + interval;
		} else if (wake == REGISTRY_CLOSING) {
			api_stream_close(&b);
			stream_out_write(&out, &b);
			break;
		} else if (wake == REGISTRY_REPLACED) {
			api_stream_replaced(&b);
			stream_out_write(&out, &b);
			break;
		} else if (wake == REGISTRY_EXPIRED) {
			/* The page is told why: it needs a new token. */
			api_stream_expired(&b);
			stream_out_write(&out, &b);
			break;
		} else {
			break;
		}
	}
	stream_log_end(srv, ev.data.u64, wake, out.timed_out);
	if (watched)
		epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, out.fd, NULL);
	/* The client stopped reading; it replays when it comes back. */
	if (out.timed_out)
		metrics_write_timeout();
done:
	stream_out_end(&out, req);
	/*
	 * Closed after its last write, which a client that reads nothing
	 * blocks up to the write timeout: until then the stream counts
	 * against its device's and the service's stream limits (it holds a
	 * worker).  A cluster reads what it took as it closes, however long
	 * that took (api_stream_end()).
	 */
	api_stream_end(srv->api, resp);
	metrics_stream_end(util_now_ms() - born);
}
