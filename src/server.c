/*
 * server: see server.h.
 *
 * DESIGN / THREADS
 *
 * Workers.  Each worker thread accepts a FastCGI connection itself and
 * hands its fd to libfcgi (FCGX_Request.ipcFd), then serves requests on
 * that connection until it closes: one request when the front closes
 * after each (Caddy), several when it keeps connections alive (nginx
 * fastcgi_keep_conn).  A request for a stream keeps its worker until the
 * stream ends.  The pool keeps at least min_idle workers blocked in
 * accept(): a worker that takes a connection starts a new one when fewer
 * are left, and a worker that comes back to accept() with 2 x min_idle
 * already waiting exits.  So short requests always find a worker, however
 * many streams are open, and threads are not created per request.
 *
 * Streams.  Memory per open stream is what bounds how many one process
 * holds, and a stream lasts long: so once its request is read, a stream
 * keeps none of libfcgi's per-request buffers (stream_out_begin() hands
 * them to the watcher to free), writes its FastCGI records itself
 * (fcgi_out) from short-lived buffers, and gives back the stack pages its
 * worker touched before (server_stack_trim()).  What is left is about two
 * pages of stack (the thread's descriptor and TLS fill most of the first)
 * and the stream's registry entry.
 *
 * Watcher.  One thread waits in epoll for hangups (EPOLLRDHUP, EPOLLHUP)
 * on the connections of open streams, and marks the stream gone with
 * registry_hangup(), which wakes its worker.  Once a second it also calls
 * registry_expire() to forget devices whose grace period ended.  It refers
 * to streams by id, so an event for a stream that has just ended is
 * harmless.  A worker removes its fd from the epoll set before libfcgi
 * closes it.  The watcher also frees what starting streams leave it
 * (srv->garbage), woken through an eventfd in the same epoll set.
 *
 * LOCKING.  srv->lock guards the pool counters, the stopping flag and the
 * garbage list.  It is never held across accept(), I/O, free() of the
 * garbage, or a registry call.
 *
 * Shutdown.  server_stop() sets stopping, shuts down a listening socket
 * it made (which wakes every accept() with an error; an inherited one is
 * left for the next instance), and closes the registry,
 * which wakes every stream to send its final retry: field.  It then waits
 * for requests in progress to finish.  Workers parked on an idle
 * kept-alive connection are not waited for: the process exit closes them.
 */
#include "server.h"

#include <errno.h>
#include <fcgiapp.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "fcgi_out.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define LOG_MODULE "server"

/* Pending connections the kernel queues for us. */
#define SERVER_BACKLOG 1024
/* Workers beyond max_streams, for short requests and kept-alive links. */
#define SERVER_EXTRA_WORKERS 256
/* Pause after accept() fails for lack of resources (e.g. EMFILE). */
#define SERVER_ACCEPT_BACKOFF_MS 50
/* Stack left below a stream's frame by server_stack_trim(). */
#define SERVER_STACK_TRIM_SLACK 1024
/* The watcher's epoll tag for wake_fd (stream ids are never 0). */
#define SERVER_WAKE_TAG 0
/* How often the watcher forgets devices whose grace period ended. */
#define SERVER_EXPIRE_INTERVAL_MS 1000
/* The first fd systemd passes with socket activation (sd_listen_fds). */
#define SERVER_LISTEN_FDS_START 3

struct server {
	const struct config *config;
	struct registry *reg;
	struct api *api;
	char address[512];
	char *unix_path; /* a unix socket we created, removed on stop */
	int listen_fd;
	bool owns_listener; /* made by us, not inherited */
	int epoll_fd;
	pthread_attr_t attr;
	pthread_mutex_t lock;
	pthread_cond_t idle_cond; /* signalled when active drops to 0 */
	size_t workers;           /* threads alive */
	size_t idle;              /* workers blocked in accept() */
	size_t active;            /* requests in progress, streams included */
	size_t max_workers;
	bool stopping;
	int wake_fd;                    /* eventfd: garbage for the watcher */
	struct server_garbage *garbage; /* what streams left to free */
};

/*
 * What a stream's request leaves behind once the stream has started: its
 * libfcgi streams (buffers) and parameters, and the response's buffers.
 * The watcher frees it (see stream_out_begin()).
 */
struct server_garbage {
	struct server_garbage *next;
	FCGX_Request req;
	struct buf headers, body;
};

/* The lowest address of this worker's stack (server_stack_trim()). */
static __thread uintptr_t server_stack_low;

static void *server_worker(void *arg);

static void
server_threads(void *ctx, size_t *threads, size_t *idle)
{
	struct server *srv = ctx;

	pthread_mutex_lock(&srv->lock);
	*threads = srv->workers;
	*idle = srv->idle;
	pthread_mutex_unlock(&srv->lock);
}

static int
server_listen_unix(struct server *srv, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("unix socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	/*
	 * A socket left by a previous run would make bind() fail; but one a
	 * live process still serves is not ours to take.
	 */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 &&
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			log_error("%s: another process is serving this socket; "
			          "refusing to take it over",
			    path);
			return -1;
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_error("bind %s: %s", path, strerror(errno));
		goto fail;
	}
	if (chmod(path, srv->config->socket_mode) < 0) {
		log_error("chmod %s: %s", path, strerror(errno));
		goto fail_unlink;
	}
	if (listen(fd, SERVER_BACKLOG) < 0) {
		log_error("listen %s: %s", path, strerror(errno));
		goto fail_unlink;
	}
	srv->unix_path = xstrdup(path);
	return fd;
fail_unlink:
	unlink(path);
fail:
	close(fd);
	return -1;
}

static int
server_listen_tcp(const char *spec)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	const char *colon = strrchr(spec, ':');
	char host[256];
	size_t hlen;
	int fd = -1, one = 1, rc;

	if (colon == NULL || colon[1] == '\0') {
		log_error("--listen %s: expected unix:PATH or HOST:PORT", spec);
		return -1;
	}
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		spec++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		log_error("--listen %s: host too long", spec);
		return -1;
	}
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &res);
	if (rc != 0) {
		log_error("--listen %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, SERVER_BACKLOG) == 0)
			break;
		log_error("bind %s: %s", spec, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Whether fd is a listening stream socket. */
static bool
server_is_listener(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

/* The socket systemd passed (LISTEN_FDS), or fd 0 (spawn-fcgi). */
static int
server_listen_inherited(struct server *srv)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid != NULL && fds != NULL && atol(pid) == (long)getpid() &&
	    atoi(fds) >= 1 && server_is_listener(SERVER_LISTEN_FDS_START)) {
		snprintf(srv->address, sizeof(srv->address), "fd:%d (systemd)",
		    SERVER_LISTEN_FDS_START);
		return SERVER_LISTEN_FDS_START;
	}
	if (server_is_listener(0)) {
		snprintf(srv->address, sizeof(srv->address), "fd:0");
		return 0;
	}
	log_error("no --listen given and no inherited socket on fd 0 or "
	          "LISTEN_FDS (see --help)");
	return -1;
}

/* "X-User-Claim" arrives from the front as HTTP_X_USER_CLAIM. */

struct server *
server_new(const struct config *c, struct registry *reg)
{
	struct server *srv = xcalloc(1, sizeof(*srv));
	const char *l = c->listen;

	srv->config = c;
	srv->reg = reg;
	srv->listen_fd = -1;
	srv->epoll_fd = -1;
	srv->wake_fd = -1;
	if (l[0] == '\0') {
		srv->listen_fd = server_listen_inherited(srv);
	} else {
		snprintf(srv->address, sizeof(srv->address), "%s", l);
		if (strncmp(l, "unix:", 5) == 0)
			srv->listen_fd = server_listen_unix(srv, l + 5);
		else
			srv->listen_fd = server_listen_tcp(l);
		srv->owns_listener = true;
	}
	if (srv->listen_fd < 0)
		goto fail;
	srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epoll_fd < 0) {
		log_error("epoll_create1: %s", strerror(errno));
		goto fail;
	}
	srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->wake_fd < 0 ||
	    epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->wake_fd,
	        &(struct epoll_event){
	            .events = EPOLLIN, .data.u64 = SERVER_WAKE_TAG}) < 0) {
		log_error("eventfd: %s", strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle_cond, NULL);
	pthread_attr_init(&srv->attr);
	pthread_attr_setstacksize(&srv->attr, SERVER_STACK_SIZE);
	pthread_attr_setdetachstate(&srv->attr, PTHREAD_CREATE_DETACHED);
	srv->max_workers =
	    c->max_streams + 2 * c->min_idle + SERVER_EXTRA_WORKERS;
	srv->api = api_new(c, reg, server_threads, srv);
	if (srv->api == NULL)
		goto fail;
	return srv;
fail:
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	if (srv->epoll_fd >= 0)
		close(srv->epoll_fd);
	if (srv->listen_fd > 2)
		close(srv->listen_fd);
	free(srv->unix_path);
	free(srv);
	return NULL;
}

const char *
server_address(const struct server *srv)
{
	return srv->address;
}

/* Start a worker; the caller has already counted it in srv->workers. */
static int
server_spawn(struct server *srv)
{
	pthread_t tid;
	int rc = pthread_create(&tid, &srv->attr, server_worker, srv);

	if (rc != 0) {
		log_error("pthread_create: %s", strerror(rc));
		pthread_mutex_lock(&srv->lock);
		srv->workers--;
		pthread_mutex_unlock(&srv->lock);
		return -1;
	}
	return 0;
}

/* Free what streams have left (struct server_garbage). */
static void
server_collect(struct server *srv)
{
	struct server_garbage *g, *next;
	uint64_t n;

	if (read(srv->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&srv->lock);
	g = srv->garbage;
	srv->garbage = NULL;
	pthread_mutex_unlock(&srv->lock);
	for (; g != NULL; g = next) {
		next = g->next;
		FCGX_Free(&g->req, 0);
		buf_free(&g->headers);
		buf_free(&g->body);
		free(g);
	}
}

static void *
server_watcher(void *arg)
{
	struct server *srv = arg;
	struct epoll_event ev[64];
	uint64_t next_expire = 0;

	for (;;) {
		int n = epoll_wait(
		    srv->epoll_fd, ev, 64, SERVER_EXPIRE_INTERVAL_MS);
		uint64_t now = util_now_ms();

		/* The watcher also ends grace periods, once a second. */
		if (now >= next_expire) {
			registry_expire(srv->reg, now);
			api_expire(srv->api, now);
			next_expire = now + SERVER_EXPIRE_INTERVAL_MS;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == SERVER_WAKE_TAG)
				server_collect(srv);
			else
				registry_hangup(srv->reg, ev[i].data.u64);
		}
	}
}

int
server_start(struct server *srv)
{
	pthread_t tid;
	size_t n = srv->config->min_idle;
	int rc;

	rc = pthread_create(&tid, &srv->attr, server_watcher, srv);
	if (rc != 0) {
		log_error("pthread_create: %s", strerror(rc));
		return -1;
	}
	pthread_mutex_lock(&srv->lock);
	srv->workers += n;
	pthread_mutex_unlock(&srv->lock);
	for (size_t i = 0; i < n; i++)
		if (server_spawn(srv) < 0)
			return -1;
	return 0;
}

/* Write all of p; returns 0 or -1 once the connection has failed. */
static int
server_put(FCGX_Request *req, const char *p, size_t len)
{
	while (len > 0) {
		int chunk = len > 1 << 30 ? 1 << 30 : (int)len;

		if (FCGX_PutStr(p, chunk, req->out) != chunk)
			return -1;
		p += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

static const char *
server_param(FCGX_Request *req, const char *name)
{
	return FCGX_GetParam(name, req->envp);
}

/*
 * Read the request body into body, up to max bytes; read and drop the rest
 * so the connection stays in step.  Returns whether it was too long.
 */
static bool
server_read_body(FCGX_Request *req, size_t max, struct buf *body)
{
	const char *cl = server_param(req, "CONTENT_LENGTH");
	bool too_large = cl != NULL && strtoull(cl, NULL, 10) > max;
	char scratch[4096];
	int n;

	while (!too_large) {
		buf_reserve(body, sizeof(scratch));
		n = FCGX_GetStr(
		    body->data + body->len, (int)sizeof(scratch), req->in);
		if (n <= 0)
			return false;
		body->len += (size_t)n;
		body->data[body->len] = '\0';
		if (body->len > max)
			too_large = true;
	}
	while (FCGX_GetStr(scratch, (int)sizeof(scratch), req->in) > 0)
		;
	return true;
}

/* Drop whatever request body there is (GET requests have none). */
static void
server_drain(FCGX_Request *req)
{
	char scratch[512];

	while (FCGX_GetStr(scratch, (int)sizeof(scratch), req->in) > 0)
		;
}

static int
server_write_head(
    FCGX_Request *req, const struct api_response *resp, bool with_length)
{
	struct buf head = {0};
	int rc;

	/* 200 is the CGI default; some fronts pass a Status line through. */
	if (resp->status != HTTP_200)
		buf_printf(&head, "Status: %d %s\r\n",
		    http_status_code[resp->status],
		    http_status_text[resp->status]);
	buf_append(&head, resp->headers.data, resp->headers.len);
	if (with_length)
		buf_printf(&head, "Content-Length: %zu\r\n", resp->body.len);
	buf_append(&head, "\r\n", 2);
	rc = server_put(req, head.data, head.len);
	buf_free(&head);
	return rc;
}

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
 */
static int
stream_out_begin(struct server *srv, struct fcgi_out *out, FCGX_Request *req,
    struct api_response *resp)
{
	struct server_garbage *g = xcalloc(1, sizeof(*g));
	uint64_t one = 1;
	char status[64];
	struct iovec v[4];
	int n = 0, rc;

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

/* Write a batch of messages, formatted for this stream, and release it. */
static int
stream_out_batch(struct server *srv, struct fcgi_out *out,
    struct registry_batch *batch, bool envelope)
{
	struct buf b = {0};
	size_t n = batch->n;

	for (size_t i = 0; i < batch->n; i++)
		api_stream_message(srv->api, batch->msgs[i], envelope, &b);
	registry_batch_release(batch);
	if (stream_out_write(out, &b) < 0)
		return -1;
	metrics_stream_write(n, 0);
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
static void
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
 * come back zeroed, on demand.
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

/*
 * Serve an SSE stream until it ends: write resp's head, then events as
 * they come.  The worker's thread sleeps in registry_wait() between
 * writes; the watcher wakes it if the connection hangs up.  Takes resp's
 * stream and buffers; resp->start says what to send first.
 */
static void
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
	bool watched;

	/*
	 * A client that stops reading fills the front's buffers, then ours:
	 * a write may block only so long, then the stream ends (its client
	 * replays on return) and the device's grace period runs.
	 */
	tv.tv_sec = srv->config->write_timeout;
	setsockopt(req->ipcFd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (stream_out_begin(srv, &out, req, resp) < 0)
		goto done;
	server_stack_trim();
	watched = epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, out.fd, &ev) == 0;
	if (!watched)
		log_warn("epoll_ctl: %s: departures are noticed on write only",
		    strerror(errno));
	for (;;) {
		wake = registry_wait(srv->reg, s, deadline, &batch);
		if (wake == REGISTRY_MESSAGES) {
			if (stream_out_batch(srv, &out, &batch, envelope) < 0)
				break;
			deadline = util_now_ms() + interval;
		} else if (wake == REGISTRY_TIMEOUT) {
			api_stream_keepalive(&b);
			if (stream_out_write(&out, &b) < 0)
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
		} else {
			if (wake == REGISTRY_OVERFLOW)
				log_warn("stream %llu fell too far behind: "
				         "closing it",
				    (unsigned long long)ev.data.u64);
			break;
		}
	}
	if (watched)
		epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, out.fd, NULL);
done:
	stream_out_end(&out, req);
	registry_unsubscribe(srv->reg, s);
	api_stream_end(srv->api, resp);
	metrics_stream_end(util_now_ms() - born);
}

static void
server_handle(struct server *srv, FCGX_Request *req)
{
	struct api_request ar = {0};
	struct api_response resp = {0};
	struct buf body = {0}, uri = {0};
	const char *p;

	ar.method = server_param(req, "REQUEST_METHOD");
	ar.uri = server_param(req, "REQUEST_URI");
	ar.content_type = server_param(req, "CONTENT_TYPE");
	ar.origin = server_param(req, "HTTP_ORIGIN");
	ar.last_event_id = server_param(req, "HTTP_LAST_EVENT_ID");
	ar.authorization = server_param(req, "HTTP_AUTHORIZATION");
	ar.cookie = server_param(req, "HTTP_COOKIE");
	ar.remote_addr = server_param(req, "REMOTE_ADDR");
	ar.sec_fetch_site = server_param(req, "HTTP_SEC_FETCH_SITE");
	ar.host = server_param(req, "HTTP_HOST");
	ar.https = (p = server_param(req, "HTTPS")) != NULL &&
	    strcasecmp(p, "on") == 0;
	/*
	 * Never an HTTP_ parameter: those come from the client, and fronts
	 * map several spellings of a header name onto one.
	 */
	ar.claim = server_param(req, srv->config->auth_param);
	if (ar.uri == NULL) {
		/* Fronts that send no REQUEST_URI: rebuild it. */
		const char *sn = server_param(req, "SCRIPT_NAME");
		const char *pi = server_param(req, "PATH_INFO");
		const char *qs = server_param(req, "QUERY_STRING");

		buf_printf(&uri, "%s%s%s%s", sn ? sn : "", pi ? pi : "",
		    qs && *qs ? "?" : "", qs && *qs ? qs : "");
		ar.uri = uri.data;
	}
	/*
	 * A POST is authenticated (and routed, allowed, rate-limited) from
	 * its parameters before its body is read: a refused one's body is
	 * only drained.  Other requests are handled whole below.
	 */
	if (ar.method != NULL && strcmp(ar.method, "POST") == 0 &&
	    api_precheck(srv->api, &ar, &resp)) {
		ar.body_too_large =
		    server_read_body(req, srv->config->max_body, &body);
		ar.body = body.data;
		ar.body_len = ar.body_too_large ? 0 : body.len;
	} else {
		server_drain(req);
	}
	if (FCGX_GetError(req->in) != 0) {
		/* The request never arrived whole (BEEP_WRITE_TIMEOUT). */
		log_warn("request body: read failed (%s): dropping the "
		         "connection",
		    strerror(FCGX_GetError(req->in) > 0 ? FCGX_GetError(req->in)
		                                        : EIO));
		api_response_clear(&resp);
		buf_free(&body);
		buf_free(&uri);
		return;
	}
	api_handle(srv->api, &ar, &resp);
	buf_free(&body);
	buf_free(&uri);
	if (resp.stream == NULL) {
		if (server_write_head(req, &resp, true) == 0)
			server_put(req, resp.body.data, resp.body.len);
	} else {
		server_stream(srv, req, &resp);
	}
	api_response_clear(&resp);
}

static void
server_backoff(void)
{
	struct timespec ts = {0, SERVER_ACCEPT_BACKOFF_MS * 1000000L};

	nanosleep(&ts, NULL);
}

static void *
server_worker(void *arg)
{
	struct server *srv = arg;
	FCGX_Request req;
	bool spawn;
	int fd;

	server_stack_init();
	/* The listening socket is ours: libfcgi only reads connections. */
	FCGX_InitRequest(&req, -1, 0);
	for (;;) {
		pthread_mutex_lock(&srv->lock);
		if (srv->stopping || srv->idle >= 2 * srv->config->min_idle)
			break;
		srv->idle++;
		pthread_mutex_unlock(&srv->lock);

		fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			/*
			 * A front that passes a body through as it arrives
			 * (Caddy) would let a slow upload hold this worker
			 * for ever; a read may wait only so long.
			 */
			struct timeval tv = {
			    .tv_sec = srv->config->write_timeout};

			setsockopt(
			    fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}

		pthread_mutex_lock(&srv->lock);
		srv->idle--;
		if (fd < 0) {
			int err = errno;

			if (srv->stopping)
				break;
			pthread_mutex_unlock(&srv->lock);
			if (err != EINTR && err != ECONNABORTED) {
				log_warn("accept: %s", strerror(err));
				server_backoff();
			}
			continue;
		}
		spawn = srv->idle < srv->config->min_idle &&
		    srv->workers < srv->max_workers;
		if (spawn)
			srv->workers++;
		pthread_mutex_unlock(&srv->lock);
		if (spawn)
			server_spawn(srv);

		/*
		 * libfcgi reads requests from ipcFd while it is open; with
		 * listen_sock -1 it returns an error instead of accepting
		 * when the front closes the connection; keepConnection
		 * stops it closing the fd before reading the first request.
		 * libfcgi offers no call for this; these fields have been
		 * stable since 2.4.0.
		 */
		req.ipcFd = fd;
		req.keepConnection = 1;
		while (FCGX_Accept_r(&req) >= 0) {
			pthread_mutex_lock(&srv->lock);
			srv->active++;
			pthread_mutex_unlock(&srv->lock);

			server_handle(srv, &req);
			FCGX_Finish_r(&req);

			pthread_mutex_lock(&srv->lock);
			if (--srv->active == 0 && srv->stopping)
				pthread_cond_broadcast(&srv->idle_cond);
			spawn = srv->stopping;
			pthread_mutex_unlock(&srv->lock);
			if (req.ipcFd < 0 || spawn)
				break;
		}
		/* A kept connection at shutdown: let it go. */
		FCGX_Free(&req, 1);
	}
	srv->workers--;
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

size_t
server_stop(struct server *srv, unsigned timeout_ms)
{
	uint64_t deadline = util_now_ms() + timeout_ms;
	struct timespec ts;
	size_t left;

	api_stop(srv->api); /* /readyz says 503 from here on */
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pthread_mutex_unlock(&srv->lock);
	/*
	 * A socket we made: shutting it down wakes every worker blocked in
	 * accept() with an error.  An inherited one (spawn-fcgi, systemd) is
	 * shared with whoever gave it to us and outlives us: systemd queues
	 * connections on it for the next instance, so leave it be.  A worker
	 * that still accepts a connection before we exit serves it (a
	 * subscribe then gets 503 with Retry-After).
	 */
	if (srv->unix_path != NULL || srv->owns_listener)
		shutdown(srv->listen_fd, SHUT_RDWR);
	if (srv->unix_path != NULL)
		unlink(srv->unix_path);
	registry_close(srv->reg);

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&srv->lock);
	while (srv->active > 0 && util_now_ms() < deadline)
		if (pthread_cond_timedwait(&srv->idle_cond, &srv->lock, &ts) ==
		    ETIMEDOUT)
			break;
	left = srv->active;
	pthread_mutex_unlock(&srv->lock);
	return left;
}
