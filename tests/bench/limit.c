/*
 * bench-limit: the cheapest FastCGI responder for beep-signal's routes, the
 * "limit" system of `make bench`.
 *
 * What any FastCGI backend must do to deliver a POST to an SSE stream
 * behind a front, and nothing more: one thread, one epoll set, raw
 * FastCGI records (no libfcgi), no registry, no JSON library, no
 * authentication, no limits, no ids, no replay.  A GET
 * /subscribe/U/device/D answers the SSE head and an opening comment and
 * keeps its request open; a POST /user/U/device/D takes the data out of
 * the body ({"data":"..."} as the load generator sends it, else the body
 * as is), writes "data: ...\n\n" to that stream as one STDOUT record and
 * answers 200 {"ok":true} (404 when no stream).  Each answer is one
 * write(): its STDOUT record(s) and END_REQUEST together.  Connections
 * are kept when the front asks (FCGI_KEEP_CONN, nginx) and closed after
 * the answer otherwise (Caddy, lighttpd).  So the figures of the front
 * and the load generator against it show what the topology costs with a
 * backend that costs almost nothing, and ours as a fraction of it.
 *
 * Threads: a few (BENCH_LIMIT_THREADS, 4), each with its own epoll set
 * on the shared listening socket (EPOLLEXCLUSIVE), reading its
 * connections' records outside any lock; handling a request and writing
 * take one global lock.  One thread would cost a little less, but on a
 * shared, loaded machine the scheduler gives a single thread a smaller
 * share than the many threads of the systems compared with it.
 *
 * Not for production: it trusts its input and buffers without bound.
 *
 * Usage: bench-limit SOCKET_PATH
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "responder.h"

#define FCGI_BEGIN_REQUEST 1
#define FCGI_ABORT_REQUEST 2
#define FCGI_END_REQUEST 3
#define FCGI_PARAMS 4
#define FCGI_STDIN 5
#define FCGI_STDOUT 6
#define FCGI_KEEP_CONN 1
#define LIMIT_BUCKETS 65536
#define LIMIT_MAX_EVENTS 256

struct buf {
	char *p;
	size_t len, cap;
};

struct conn {
	int fd;
	int ep;        /* its worker's epoll set */
	unsigned id;   /* request in progress; 0: none */
	int keep;      /* FCGI_KEEP_CONN */
	int answered;  /* a request answered on it */
	int streaming; /* this connection's request is an open stream */
	int want_out;
	struct buf in, out, params, body;
	char key[128];     /* stream key "U/D" */
	struct conn *next; /* in the stream table's bucket */
};

struct worker {
	int ep;
};

static struct conn *g_streams[LIMIT_BUCKETS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_lfd;

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL) {
		perror("realloc");
		exit(1);
	}
	return p;
}

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static unsigned
hash(const char *s)
{
	return bench_hash(s, LIMIT_BUCKETS);
}

static struct conn *
stream_find(const char *key)
{
	struct conn *c;

	for (c = g_streams[hash(key)]; c != NULL; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

static void
stream_remove(struct conn *c)
{
	struct conn **pp;

	for (pp = &g_streams[hash(c->key)]; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->streaming = 0;
}

/* A record header for request id, type, content length n. */
static void
record(struct buf *b, int type, unsigned id, const void *p, size_t n)
{
	static const char pad[8];
	unsigned char h[8];
	size_t padding = (8 - n % 8) % 8;

	h[0] = 1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(n >> 8);
	h[5] = (unsigned char)n;
	h[6] = (unsigned char)padding;
	h[7] = 0;
	buf_add(b, h, 8);
	buf_add(b, p, n);
	buf_add(b, pad, padding);
}

static void
conn_close(struct conn *c)
{
	if (c->streaming)
		stream_remove(c);
	/* Its only descriptor: the close takes it out of the epoll set. */
	close(c->fd);
	free(c->in.p);
	free(c->out.p);
	free(c->params.p);
	free(c->body.p);
	free(c);
}

/*
 * Write what c has to write; returns -1 when that failed.  c stays (its
 * read sees the end and closes it): it may be a stream written to while
 * another connection is handled.
 */
static int
conn_flush(struct conn *c)
{
	size_t off = 0;

	while (off < c->out.len) {
		ssize_t w = write(c->fd, c->out.p + off, c->out.len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) {
			shutdown(c->fd, SHUT_RDWR);
			c->out.len = 0;
			return -1;
		}
		off += (size_t)w;
	}
	memmove(c->out.p, c->out.p + off, c->out.len - off);
	c->out.len -= off;
	if ((c->out.len > 0) != c->want_out) {
		struct epoll_event ev = {.data.ptr = c};

		c->want_out = c->out.len > 0;
		ev.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
		epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	return 0;
}

/* Finish request id with STDOUT head+body; end the connection unless kept. */
static void
answer(struct conn *c, const char *text, size_t n)
{
	static const unsigned char end[8] = {0};

	record(&c->out, FCGI_STDOUT, c->id, text, n);
	record(&c->out, FCGI_STDOUT, c->id, "", 0);
	record(&c->out, FCGI_END_REQUEST, c->id, end, 8);
	c->id = 0;
	c->answered = 1;
	c->params.len = c->body.len = 0;
}

/* A FastCGI name-value pair's length (1 or 4 bytes); advances *p. */
static size_t
param_len(const unsigned char **p)
{
	const unsigned char *q = *p;

	if (*q >> 7) {
		*p += 4;
		return ((size_t)(q[0] & 0x7f) << 24) | ((size_t)q[1] << 16) |
		    ((size_t)q[2] << 8) | q[3];
	}
	*p += 1;
	return *q;
}

/* Finds param name in c->params; returns its value's length or -1. */
static long
param(struct conn *c, const char *name, const char **value)
{
	const unsigned char *p = (const unsigned char *)c->params.p;
	const unsigned char *e = p + c->params.len;
	size_t want = strlen(name);

	while (p < e) {
		size_t nl, vl;

		nl = param_len(&p);
		vl = param_len(&p);
		if (nl == want && memcmp(p, name, nl) == 0) {
			*value = (const char *)p + nl;
			return (long)vl;
		}
		p += nl + vl;
	}
	return -1;
}

/* Copies "U/D" out of uri after prefix up to "/device/"; 0 or -1. */
static int
route(const char *uri, long n, const char *prefix, char *key, size_t cap)
{
	size_t pl = strlen(prefix), k = 0;
	const char *p = uri + pl, *e = uri + n, *dev;

	if ((size_t)n <= pl || memcmp(uri, prefix, pl) != 0)
		return -1;
	dev = memmem(p, (size_t)(e - p), "/device/", 8);
	if (dev == NULL || (size_t)(e - p) + 1 > cap)
		return -1;
	memcpy(key, p, (size_t)(dev - p));
	k = (size_t)(dev - p);
	key[k++] = '/';
	memcpy(key + k, dev + 8, (size_t)(e - dev - 8));
	k += (size_t)(e - dev - 8);
	key[k] = '\0';
	return 0;
}

/* The request's params and body are complete: handle it. */
static void
handle(struct conn *c)
{
	const char *m = NULL, *uri = NULL;
	long ml = param(c, "REQUEST_METHOD", &m);
	long ul = param(c, "REQUEST_URI", &uri);
	char key[128];

	if (ml == 4 && memcmp(m, "POST", 4) == 0 && ul > 0 &&
	    route(uri, ul, "/user/", key, sizeof(key)) == 0) {
		struct conn *s = stream_find(key);
		const char *d = c->body.p;
		size_t n = c->body.len;
		struct buf ev = {0};

		if (s == NULL) {
			answer(c, bench_missing, sizeof(bench_missing) - 1);
			return;
		}
		bench_data(&d, &n);
		buf_add(&ev, "data: ", 6);
		buf_add(&ev, d, n);
		buf_add(&ev, "\n\n", 2);
		record(&s->out, FCGI_STDOUT, s->id, ev.p, ev.len);
		free(ev.p);
		answer(c, bench_ok, sizeof(bench_ok) - 1);
		conn_flush(s);
		return;
	}
	if (ml == 3 && memcmp(m, "GET", 3) == 0 && ul > 0 &&
	    route(uri, ul, "/subscribe/", key, sizeof(key)) == 0) {
		struct conn *old = stream_find(key);

		if (old != NULL)
			stream_remove(old); /* the newer stream takes the key */
		record(&c->out, FCGI_STDOUT, c->id, bench_head,
		    sizeof(bench_head) - 1);
		snprintf(c->key, sizeof(c->key), "%s", key);
		c->streaming = 1;
		c->next = g_streams[hash(key)];
		g_streams[hash(key)] = c;
		c->params.len = c->body.len = 0;
		return;
	}
	answer(c, bench_other, sizeof(bench_other) - 1);
}

/* Parses the records in c->in; returns -1 when c is gone. */
static int
conn_read(struct conn *c)
{
	char tmp[65536];
	size_t off = 0;

	for (;;) {
		ssize_t r = read(c->fd, tmp, sizeof(tmp));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0) {
			pthread_mutex_lock(&g_lock);
			conn_close(c);
			pthread_mutex_unlock(&g_lock);
			return -1;
		}
		buf_add(&c->in, tmp, (size_t)r);
		if ((size_t)r < sizeof(tmp))
			break;
	}
	pthread_mutex_lock(&g_lock);
	while (c->in.len - off >= 8) {
		const unsigned char *h = (const unsigned char *)c->in.p + off;
		size_t n = ((size_t)h[4] << 8) | h[5], total = 8 + n + h[6];
		unsigned id = ((unsigned)h[2] << 8) | h[3];
		const char *p = (const char *)h + 8;

		if (c->in.len - off < total)
			break;
		off += total;
		switch (h[1]) {
		case FCGI_BEGIN_REQUEST:
			c->id = id;
			c->keep = n >= 3 && (p[2] & FCGI_KEEP_CONN);
			c->params.len = c->body.len = 0;
			break;
		case FCGI_PARAMS:
			buf_add(&c->params, p, n);
			break;
		case FCGI_STDIN:
			if (n > 0)
				buf_add(&c->body, p, n);
			else if (c->id == id)
				handle(c);
			break;
		case FCGI_ABORT_REQUEST:
			if (c->streaming)
				stream_remove(c);
			answer(c, "", 0);
			break;
		default:
			break;
		}
	}
	memmove(c->in.p, c->in.p + off, c->in.len - off);
	c->in.len -= off;
	if (conn_flush(c) < 0) {
		pthread_mutex_unlock(&g_lock);
		return 0;
	}
	/* Answered and not kept (Caddy): close once it is all written. */
	if (c->answered && c->id == 0 && !c->streaming && !c->keep &&
	    c->out.len == 0 && c->in.len == 0) {
		conn_close(c);
		pthread_mutex_unlock(&g_lock);
		return -1;
	}
	pthread_mutex_unlock(&g_lock);
	return 0;
}

static void *
worker_run(void *arg)
{
	struct epoll_event evs[LIMIT_MAX_EVENTS];
	struct worker *w = arg;

	for (;;) {
		int n = epoll_wait(w->ep, evs, LIMIT_MAX_EVENTS, -1);

		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			exit(1);
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c == NULL) {
				struct epoll_event ev = {.events = EPOLLIN};
				/*
				 * One connection a wake-up (level-triggered:
				 * more waiting wake a thread again), no
				 * accept() that finds none; and its request
				 * read at once, without waiting for epoll to
				 * say so: a front that connects per request
				 * (Caddy, lighttpd) has usually sent it.
				 */
				int fd = accept4(g_lfd, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0)
					continue;
				c = calloc(1, sizeof(*c));
				if (c == NULL) {
					close(fd);
					continue;
				}
				c->fd = fd;
				c->ep = w->ep;
				ev.data.ptr = c;
				epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev);
				conn_read(c);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				conn_read(c);
			} else if (evs[i].events & EPOLLOUT) {
				pthread_mutex_lock(&g_lock);
				conn_flush(c);
				pthread_mutex_unlock(&g_lock);
			}
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *t = getenv("BENCH_LIMIT_THREADS");
	int nthreads = t != NULL ? atoi(t) : 4;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: bench-limit SOCKET_PATH\n");
		return 2;
	}
	if (nthreads < 1 || nthreads > 64)
		nthreads = 4;
	signal(SIGPIPE, SIG_IGN);
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	g_lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(g_lfd, 4096) < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int i = 0; i < nthreads; i++) {
		struct worker *w = calloc(1, sizeof(*w));
		struct epoll_event ev = {
		    .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
		pthread_t tid;

		if (w == NULL)
			return 1;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		epoll_ctl(w->ep, EPOLL_CTL_ADD, g_lfd, &ev);
		if (i == nthreads - 1) {
			worker_run(w);
		} else if (pthread_create(&tid, NULL, worker_run, w) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	return 0;
}
