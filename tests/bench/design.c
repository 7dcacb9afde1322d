/*
 * bench-design: the cheapest responder built the way issue 14 says
 * beep-signal must stay built, the "design" systems of `make bench`.
 *
 * bench-limit (limit.c) is the cheapest FastCGI responder of all: one
 * epoll loop, no thread woken for a POST.  This is the cheapest of the
 * shape the service keeps: libfcgi, threads reading requests with
 * FCGX_Accept_r(), and a thread per stream asleep on its own condition
 * variable until a POST queues an event for it and signals it (after
 * unlocking, so the woken thread does not block on the lock).  With what
 * the design needs to run well here, as beep-signal has it: kept
 * connections parked between requests in one epoll set, whichever thread
 * is free serving the next (no thread woken per request under load), an
 * adaptive lock, a private futex hash as large as the kernel allows
 * (Linux 6.16+; ours sizes it to its threads), 64 KiB stacks, no
 * lingering close behind Caddy.  And nothing more: one table of streams
 * under one lock, no JSON library, no authentication, limits, ids,
 * replay, read deadlines, idle limits or keepalives (a sleeping stream
 * looks for its connection's end every DESIGN_CHECK_S), and no care for
 * a request that comes slowly on a kept connection.  The same routes,
 * answers and events as bench-limit.
 *
 * So in the same run, beep-signal against bench-design shows what our
 * implementation costs, and bench-design against bench-limit what the
 * design itself costs (its thread wake-up per post, the stream's).
 *
 * Threads: BENCH_DESIGN_IDLE (8) wait in accept(); one that takes a
 * connection starts another when fewer are left waiting; more than twice
 * that many waiting, a thread ends.  A stream's thread is the thread that
 * read its request.
 *
 * Not for production: it trusts its input and bounds nothing.
 *
 * Usage: bench-design SOCKET_PATH
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcgiapp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "responder.h"

#define DESIGN_BUCKETS 65536
#define DESIGN_STACK (64 * 1024)
#define DESIGN_BODY_HINT_MAX 65536
#define DESIGN_CHECK_S 4
#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#endif

struct item {
	struct item *next;
	size_t len;
	char data[];
};

struct stream {
	pthread_cond_t cond;
	struct item *head, *tail; /* events queued, not yet written */
	int replaced;             /* a newer stream took the key */
	atomic_int pinned;        /* publishers about to signal it */
	char key[128];
	struct stream *next; /* in its bucket */
};

static struct stream *g_streams[DESIGN_BUCKETS];
static atomic_int g_parked, g_waiters; /* kept connections: see park() */
static pthread_mutex_t g_lock;
static pthread_attr_t g_attr;
static atomic_int g_idle;
static int g_min_idle = 8;
static int g_lfd;

static unsigned
hash(const char *s)
{
	return bench_hash(s, DESIGN_BUCKETS);
}

/* Under g_lock. */
static struct stream **
stream_slot(const char *key)
{
	struct stream **pp;

	for (pp = &g_streams[hash(key)]; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0)
			break;
	return pp;
}

/* Copies "U/D" out of uri after prefix up to "/device/"; 0 or -1. */
static int
route(const char *uri, const char *prefix, char *key, size_t cap)
{
	size_t pl = strlen(prefix);
	const char *dev;

	if (strncmp(uri, prefix, pl) != 0 ||
	    (dev = strstr(uri + pl, "/device/")) == NULL ||
	    strlen(uri + pl) + 1 > cap)
		return -1;
	snprintf(
	    key, cap, "%.*s/%s", (int)(dev - (uri + pl)), uri + pl, dev + 8);
	return 0;
}

static void
post(FCGX_Request *r, const char *key)
{
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", r->envp);
	long hint = cl != NULL ? atol(cl) : 0;
	size_t cap =
	    hint > 0 && hint < DESIGN_BODY_HINT_MAX ? (size_t)hint : 64;
	size_t n = 0;
	struct stream *s;
	struct item *it;
	const char *data;
	char *d;

	/*
	 * The event is rendered in place around the body it is read into,
	 * to its end (CONTENT_LENGTH is only the first size tried).
	 */
	it = malloc(sizeof(*it) + 6 + cap + 2);
	for (;;) {
		int got;

		if (it == NULL)
			abort();
		got = FCGX_GetStr(it->data + 6 + n, (int)(cap - n), r->in);
		n += got > 0 ? (size_t)got : 0;
		if (n < cap)
			break;
		cap *= 2;
		it = realloc(it, sizeof(*it) + 6 + cap + 2);
	}
	d = it->data + 6;
	data = d;
	bench_data(&data, &n);
	memmove(d, data, n);
	it->next = NULL;
	it->len = 6 + n + 2;
	memcpy(it->data, "data: ", 6);
	memcpy(it->data + 6 + n, "\n\n", 2);

	pthread_mutex_lock(&g_lock);
	s = *stream_slot(key);
	if (s != NULL) {
		if (s->tail != NULL)
			s->tail->next = it;
		else
			s->head = it;
		s->tail = it;
		atomic_fetch_add(&s->pinned, 1);
	}
	pthread_mutex_unlock(&g_lock);
	if (s == NULL) {
		free(it);
		FCGX_PutStr(bench_missing, sizeof(bench_missing) - 1, r->out);
		return;
	}
	pthread_cond_signal(&s->cond);
	atomic_fetch_sub(&s->pinned, 1);
	FCGX_PutStr(bench_ok, sizeof(bench_ok) - 1, r->out);
}

/* Whether the front closed the stream's connection. */
static int
gone(FCGX_Request *r)
{
	struct pollfd p = {.fd = r->ipcFd, .events = POLLIN | POLLRDHUP};

	return poll(&p, 1, 0) > 0 &&
	    (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void spawn(void);

static void
subscribe(FCGX_Request *r, const char *key)
{
	struct stream *s = calloc(1, sizeof(*s)), *old, **pp;
	int end = 0;

	if (s == NULL)
		abort();
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	snprintf(s->key, sizeof(s->key), "%s", key);
	pthread_mutex_lock(&g_lock);
	pp = stream_slot(key);
	old = *pp;
	if (old != NULL) { /* the newer stream takes the key */
		*pp = old->next;
		old->replaced = 1;
		pthread_cond_signal(&old->cond);
	}
	s->next = g_streams[hash(key)];
	g_streams[hash(key)] = s;
	pthread_mutex_unlock(&g_lock);

	/* This thread stays with the stream: parked ones need a waiter. */
	if (atomic_load(&g_parked) > 0 && atomic_load(&g_waiters) == 0)
		spawn();
	FCGX_PutStr(bench_head, sizeof(bench_head) - 1, r->out);
	FCGX_FFlush(r->out);
	while (!end) {
		struct item *batch;
		struct timespec ts;
		int timed_out = 0;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += DESIGN_CHECK_S;
		pthread_mutex_lock(&g_lock);
		while (s->head == NULL && !s->replaced && !timed_out)
			timed_out = pthread_cond_timedwait(
			                &s->cond, &g_lock, &ts) == ETIMEDOUT;
		batch = s->head;
		s->head = s->tail = NULL;
		end = s->replaced;
		pthread_mutex_unlock(&g_lock);
		for (struct item *it = batch, *next; it != NULL; it = next) {
			next = it->next;
			FCGX_PutStr(it->data, (int)it->len, r->out);
			free(it);
		}
		if (batch != NULL)
			FCGX_FFlush(r->out);
		if (FCGX_GetError(r->out) != 0 || (timed_out && gone(r)))
			end = 1;
	}
	pthread_mutex_lock(&g_lock);
	pp = stream_slot(key);
	if (*pp == s)
		*pp = s->next;
	pthread_mutex_unlock(&g_lock);
	while (atomic_load(&s->pinned) > 0)
		sched_yield();
	for (struct item *it = s->head, *next; it != NULL; it = next) {
		next = it->next;
		free(it);
	}
	pthread_cond_destroy(&s->cond);
	free(s);
}

static void
handle(FCGX_Request *r)
{
	const char *m = FCGX_GetParam("REQUEST_METHOD", r->envp);
	const char *uri = FCGX_GetParam("REQUEST_URI", r->envp);
	char key[128];

	if (m != NULL && uri != NULL && strcmp(m, "POST") == 0 &&
	    route(uri, "/user/", key, sizeof(key)) == 0)
		post(r, key);
	else if (m != NULL && uri != NULL && strcmp(m, "GET") == 0 &&
	    route(uri, "/subscribe/", key, sizeof(key)) == 0)
		subscribe(r, key);
	else
		FCGX_PutStr(bench_other, sizeof(bench_other) - 1, r->out);
}

/*
 * Kept connections between two requests, parked as beep-signal parks
 * them (server_conn.c): one epoll set, one-shot, no thread each.  One
 * worker at a time waits in it (g_waiters); a worker that has served a
 * request takes the next one that has come before it sleeps.
 */
static int g_kept;

static void
park(FCGX_Request *r)
{
	struct epoll_event ev = {
	    .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = r};

	atomic_fetch_add(&g_parked, 1);
	/* Once armed, r is another worker's: its fd is never added twice. */
	if (epoll_ctl(g_kept, EPOLL_CTL_MOD, r->ipcFd, &ev) < 0 &&
	    epoll_ctl(g_kept, EPOLL_CTL_ADD, r->ipcFd, &ev) < 0)
		abort();
}

static FCGX_Request *
take(int timeout_ms)
{
	struct epoll_event ev;

	if (epoll_wait(g_kept, &ev, 1, timeout_ms) != 1)
		return NULL;
	atomic_fetch_sub(&g_parked, 1);
	return ev.data.ptr;
}

/* Serves r's request; returns whether its connection stays open. */
static int
serve(FCGX_Request *r)
{
	if (FCGX_Accept_r(r) < 0)
		return 0;
	handle(r);
	/*
	 * As the service does: the input read to its end (the empty STDIN
	 * record), so no lingering close (Caddy).
	 */
	while (FCGX_GetChar(r->in) != EOF)
		;
	if (!r->keepConnection && FCGX_GetError(r->in) == 0 &&
	    FCGX_HasSeenEOF(r->in) == EOF)
		FCGX_Detach(r);
	FCGX_Finish_r(r);
	return r->ipcFd >= 0;
}

/* The next connection with a request, or NULL to end the thread. */
static FCGX_Request *
next(void)
{
	for (;;) {
		FCGX_Request *r;
		int fd;

		if (atomic_load(&g_parked) > 0 && (r = take(0)) != NULL)
			return r;
		if (atomic_load(&g_parked) > 0) {
			int none = 0;

			/* Counted only when it does wait (subscribe() looks). */
			if (atomic_compare_exchange_strong(
			        &g_waiters, &none, 1)) {
				r = take(-1);
				atomic_fetch_sub(&g_waiters, 1);
				if (r != NULL)
					return r;
				continue;
			}
		}
		atomic_fetch_add(&g_idle, 1);
		if (atomic_load(&g_idle) > 2 * g_min_idle) {
			atomic_fetch_sub(&g_idle, 1);
			return NULL;
		}
		fd = accept4(g_lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			struct timespec pause = {0, 10 * 1000000L};

			atomic_fetch_sub(&g_idle, 1);
			if (errno != EINTR) /* EMFILE and the like */
				nanosleep(&pause, NULL);
			continue;
		}
		if (atomic_fetch_sub(&g_idle, 1) - 1 < g_min_idle)
			spawn();
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			abort();
		FCGX_InitRequest(r, -1, 0);
		r->ipcFd = fd;
		r->keepConnection = 1;
		return r;
	}
}

static void *
worker(void *arg)
{
	FCGX_Request *r;

	(void)arg;
	while ((r = next()) != NULL) {
		if (serve(r)) {
			park(r);
			continue;
		}
		FCGX_Free(r, 1);
		free(r);
	}
	return NULL;
}

static void
spawn(void)
{
	pthread_t tid;

	if (pthread_create(&tid, &g_attr, worker, NULL) != 0)
		perror("pthread_create");
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *idle = getenv("BENCH_DESIGN_IDLE");

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: bench-design SOCKET_PATH\n");
		return 2;
	}
	if (idle != NULL && atoi(idle) > 0)
		g_min_idle = atoi(idle);
	if (FCGX_Init() != 0)
		return 1;
	/* libfcgi's handlers only set a flag: let `make bench` stop us. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	{
		pthread_mutexattr_t ma;

		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
		pthread_mutex_init(&g_lock, &ma);
	}
	/* Refused by kernels before 6.16, which need nothing. */
	prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, 65536UL, 0UL, 0UL);
	signal(SIGPIPE, SIG_IGN);
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	g_lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(g_lfd, 4096) < 0) {
		perror(argv[1]);
		return 1;
	}
	g_kept = epoll_create1(EPOLL_CLOEXEC);
	if (g_kept < 0) {
		perror("epoll_create1");
		return 1;
	}
	pthread_attr_init(&g_attr);
	pthread_attr_setstacksize(&g_attr, DESIGN_STACK);
	pthread_attr_setdetachstate(&g_attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < g_min_idle; i++)
		spawn();
	for (;;)
		pause();
}
