/*
 * server: see server.h.
 *
 * DESIGN / THREADS
 *
 * Workers.  A worker thread accepts a FastCGI connection itself and
 * hands its fd to libfcgi (FCGX_Request.ipcFd) in a struct server_conn,
 * then serves its request.  A front that closes after each request
 * (Caddy; lighttpd 1.4, which sends FCGI_KEEP_CONN 0) is done with it
 * then.  One that keeps connections alive (nginx fastcgi_keep_conn)
 * sends its next request later on the same connection: between two
 * requests the connection is parked
 * (server_conn.c), with no thread of its own, in one epoll set
 * (srv->kept_fd, one-shot), and any worker may serve its next request.
 * A request for a stream keeps its worker until the stream ends.  The
 * pool keeps at least min_idle workers blocked in accept(): a worker that
 * takes a connection starts a new one when fewer are left, and a worker
 * that comes back to accept() with 2 x min_idle already waiting exits.
 * So short requests always find a worker, however many streams are open,
 * and threads are not created per request.
 *
 * Kept connections (server_next()).  Few workers wait in kept_fd for
 * the parked connections' requests (kept_waiters, at most one per CPU
 * beyond the first: one on 2 CPUs); a worker that has just served a
 * request first takes one that has come, without waiting, and becomes a
 * waiter if there are fewer.  So under load the workers go from request
 * to request mostly without sleeping between them, and without a thread
 * woken for each request, as in an epoll loop; the stream's thread is,
 * by the registry, as the design wants.  A worker that may block for
 * long while parked connections have no waiter (the request it took has
 * not come whole, or has become a stream) starts another worker first
 * (server_cover()), so that one slow request never holds up the others
 * (unless no worker can be started: at max_workers they wait for one to
 * come back).  An idle parked connection is closed after
 * BEEP_IDLE_TIMEOUT (within the second after): once a second the watcher
 * shuts the oldest parked ones down for reading (server_conns_idle();
 * each is then taken, and its end seen).  In a cluster a request may wait
 * for Redis, so there a worker keeps its kept connection and waits on it
 * in poll() (srv->hold, server_wait_request()).
 *
 * Streams (their writer: server_stream.c).  Memory per open stream is
 * what bounds how many one process holds, and a stream lasts long: so
 * once its request is read, a stream keeps none of libfcgi's per-request
 * buffers (stream_out_begin() hands them to the watcher to free), writes
 * its FastCGI records itself (fcgi_out) from short-lived buffers, and
 * gives back the stack pages its worker touched before
 * (server_stack_trim()), again once idle after writing messages.  What
 * is left is one page of stack: the thread's descriptor and static TLS
 * (about 2,800 bytes with alloc_tune's settings; 24 of them ours, three
 * thread-local pointers), then ~1,100 bytes of frames down to the sleep,
 * which leaves ~160 bytes of the page (measured at the sleep in futex,
 * 2026-12-02: a frame that grows by more costs a page per stream, and
 * test 45 fails), which is why whatever is big runs in out-of-line
 * calls that return before it (server_answer(), stream_out_begin(),
 * stream_out_batch()); a keepalive's write stays in that page too.  And
 * the stream's registry entries.
 *
 * Watcher (server_watch.c).  One thread waits in epoll for hangups
 * (EPOLLRDHUP, EPOLLHUP) on the connections of open streams, and marks the
 * stream gone with registry_hangup(), which wakes its worker.  Once a
 * second it also calls registry_expire() to forget devices whose grace
 * period ended.  It refers to streams by id, so an event for a stream that
 * has just ended is harmless.  A worker removes its fd from the epoll set
 * before libfcgi closes it.  The watcher also frees what starting streams
 * leave it (srv->garbage), woken through an eventfd in the same epoll set,
 * and runs the read deadlines (deadline.h): a worker arms one on its
 * connection before libfcgi reads a request's parameters and cancels it
 * once the body is read (server_read_done(), also at a stream's start);
 * when one passes, the watcher shuts the connection down for reading and
 * the worker's read returns.  A request that has come whole when its
 * worker looks (server_serve()) needs none: no read of it can block.  A
 * kept connection's request that a worker takes from the parked ones,
 * leaving them nobody waiting, is not looked at first: epoll found it
 * readable, so libfcgi's first read of it cannot block, and what that
 * read brings is judged (server_judge(), called from server_conn_read()).
 * A recv() fewer per request under load.
 * Between two requests on a kept connection BEEP_IDLE_TIMEOUT is the only
 * limit (server_conns_idle(), above): the front decides how long it keeps
 * a connection.
 *
 * LOCKING.  srv->lock guards the pool counters, the list of workers in
 * accept(), the parked connections and their waiter count, the accept
 * back-off state, the stopping flag (set under it, atomic: server_serve()
 * reads it without) and the garbage list.  The count of requests in
 * progress (srv->active) and that of connections closed at their read
 * deadline whose line is not yet logged (srv->telling) are atomic,
 * outside it; server_stop() waits for both under srv->lock
 * (server_stop_done(): why that wait misses no wake-up).
 * It is never held across accept(), epoll_wait(), I/O, free() of the
 * garbage, or a registry call (server_conns_shut() calls shutdown(),
 * which does no I/O); server_stop() sends its signal under it
 * (pthread_kill is no I/O), so that it only ever reaches a worker still
 * in the list.
 *
 * Kernel and library settings for speed.  server_start() sizes the
 * process's futex hash to its threads (server_tune.c): every
 * condition-variable signal otherwise walks a list of thousands of
 * sleeping stream threads.  A connection that closes after its request
 * (Caddy's) is closed at once when its input was read to the end
 * (server_conn_finish()), not after libfcgi's wait for the front to
 * close first.
 *
 * Shutdown (server_stop.c).  server_stop() sets stopping, makes stop_fd
 * readable (it is in kept_fd: workers waiting there wake), shuts the
 * parked connections down for reading (the workers take each, see its
 * end and close it), shuts down a listening socket it made (which wakes
 * every accept() with an error), and interrupts the workers in accept() with
 * SERVER_STOP_SIGNAL until none is left: an inherited socket is left
 * open for the next instance, and connections made meanwhile wait in its
 * backlog.  It then closes the registry, which
 * wakes every stream to send its final retry: field, and waits for
 * requests in progress to finish, and for connections closed at their
 * read deadline to be told in the log: the client sees such a close just
 * before its worker counts it for the log (server_serve()), and a stop
 * that began then would otherwise sum the log's limits up and exit
 * first.  That worker's read has returned already: the stop waits for no
 * client.
 */
#include "server_impl.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "deadline.h"
#include "listener.h"
#include "log.h"
#include "server_params.h"
#include "server_tune.h"
#include "util.h"

#define LOG_MODULE "server"

/* Workers beyond max_streams, for short requests and kept-alive links. */
#define SERVER_EXTRA_WORKERS 256
/*
 * Pauses after accept() fails (e.g. EMFILE at the descriptor limit): the
 * first, doubled on each failure in a row, up to the last.
 */
#define SERVER_ACCEPT_BACKOFF_MIN_MS 50
#define SERVER_ACCEPT_BACKOFF_MAX_MS 2000
/*
 * At most one "accept failing" line (and its "recovered") this often: at
 * the descriptor limit accept() fails and recovers as often as
 * connections end.
 */
#define SERVER_ACCEPT_LOG_INTERVAL_MS 60000

static void *server_worker(void *arg);
static void server_cover(struct server *srv);
static int server_spawn(struct server *srv);

static void
server_threads(void *ctx, struct api_threads *out)
{
	struct server *srv = ctx;
	bool retry;

	pthread_mutex_lock(&srv->lock);
	out->threads = srv->workers;
	out->idle = srv->idle + srv->kept_waiters;
	out->requests = srv->active;
	/*
	 * Only workers in accept() take new connections: one waiting for the
	 * parked ones does not (and one is kept for them while any is).  A
	 * front that keeps its connections needs both, one worker each: a
	 * last one would wait for the parked ones and leave accept() to no
	 * one (server_next(); test 83).
	 */
	out->starved = atomic_load(&srv->spawn_failing) &&
	    (srv->idle == 0 || (srv->parked > 0 && srv->kept_waiters == 0) ||
	        (srv->kept_seen && srv->idle + srv->kept_waiters < 2));
	/* spawn_failing is as old as the last start tried: try one now. */
	retry = out->starved && srv->workers < srv->max_workers;
	if (retry)
		srv->workers++;
	pthread_mutex_unlock(&srv->lock);
	if (retry && server_spawn(srv) == 0)
		out->starved = false;
}

struct server *
server_new(const struct config *c, struct registry *reg)
{
	struct server *srv = xcalloc(1, sizeof(*srv));

	srv->config = c;
	srv->reg = reg;
	srv->epoll_fd = -1;
	srv->wake_fd = -1;
	srv->stop_fd = -1;
	srv->kept_fd = -1;
	srv->listener = listener_open(c->listen, c->socket_mode);
	if (srv->listener == NULL)
		goto fail;
	srv->listen_fd = listener_fd(srv->listener);
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
	srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->stop_fd < 0) {
		log_error("eventfd: %s", strerror(errno));
		goto fail;
	}
	if (server_conns_open(srv) < 0)
		goto fail;
	srv->deadlines = deadline_new();
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle_cond, NULL);
	pthread_attr_init(&srv->attr);
	pthread_attr_setstacksize(&srv->attr, SERVER_STACK_SIZE);
	pthread_attr_setdetachstate(&srv->attr, PTHREAD_CREATE_DETACHED);
	srv->max_workers =
	    c->max_streams + 2 * c->min_idle + SERVER_EXTRA_WORKERS;
	server_tune_nproc(srv->max_workers);
	/*
	 * A request in a cluster waits for Redis (up to BEEP_REDIS_TIMEOUT):
	 * kept connections are not parked there, or the requests of all of
	 * them would wait behind the one worker serving them.
	 */
	srv->hold = c->redis_url[0] != '\0';
	/*
	 * Workers waiting for the parked connections at once: one per CPU
	 * beyond the first (the front has that one).  On 2 CPUs one, which
	 * 2 measured worse than (S1 behind nginx, 12 runs each: 1.84
	 * against 1.64 context switches per post, posts/s 4% fewer); more
	 * CPUs serve more requests at once.
	 */
	{
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		srv->kept_waiters_max = cpus > 2 ? (size_t)cpus - 1 : 1;
	}
	srv->api = api_new(c, reg, server_threads, srv);
	if (srv->api == NULL)
		goto fail;
	return srv;
fail:
	deadline_free(srv->deadlines);
	if (srv->kept_fd >= 0)
		close(srv->kept_fd);
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	if (srv->epoll_fd >= 0)
		close(srv->epoll_fd);
	listener_close(srv->listener);
	free(srv);
	return NULL;
}

const char *
server_address(const struct server *srv)
{
	return listener_address(srv->listener);
}

/* Start a worker; the caller has already counted it in srv->workers. */
static int
server_spawn(struct server *srv)
{
	pthread_t tid;
	int rc = pthread_create(&tid, &srv->attr, server_worker, srv);

	if (rc != 0) {
		/* At a thread limit every accept fails so. */
		static struct log_limit limit =
		    LOG_LIMIT(LOG_ERROR, "pthread_create failed");
		uint64_t held;

		if (log_limit_pass(&limit, util_now_ms(), &held))
			log_error("pthread_create: %s (%llu more not logged)",
			    strerror(rc), (unsigned long long)held);
		pthread_mutex_lock(&srv->lock);
		srv->workers--;
		atomic_store(&srv->spawn_failing, true);
		pthread_mutex_unlock(&srv->lock);
		return -1;
	}
	if (atomic_load_explicit(&srv->spawn_failing, memory_order_relaxed))
		atomic_store(&srv->spawn_failing, false);
	return 0;
}

static void
server_on_stop_signal(int sig)
{
	(void)sig;
}

int
server_start(struct server *srv)
{
	struct sigaction sa = {.sa_handler = server_on_stop_signal};
	pthread_t tid;
	size_t n = srv->config->min_idle;
	int rc;

	/* Workers, and the watcher and main thread. */
	server_tune_futex_hash(srv->max_workers + 2);
	/* No SA_RESTART: the signal is there to interrupt accept(). */
	sigemptyset(&sa.sa_mask);
	sigaction(SERVER_STOP_SIGNAL, &sa, NULL);
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

static void
server_handle(struct server *srv, FCGX_Request *req)
{
	struct api_response resp = {0};

	/* Any answer but a stream is written and resp released on return. */
	if (!server_answer(srv, req, &resp) || resp.stream == NULL)
		return;
	server_cover(srv);
	server_stream(srv, req, &resp);
	api_response_clear(&resp);
}

/* Count this worker idle, in accept().  srv->lock held. */
static void
server_idle_add(struct server *srv, struct server_worker *w)
{
	w->idle_prev = NULL;
	w->idle_next = srv->idle_list;
	if (srv->idle_list != NULL)
		srv->idle_list->idle_prev = w;
	srv->idle_list = w;
	srv->idle++;
}

/* srv->lock held. */
static void
server_idle_remove(struct server *srv, struct server_worker *w)
{
	if (w->idle_prev != NULL)
		w->idle_prev->idle_next = w->idle_next;
	else
		srv->idle_list = w->idle_next;
	if (w->idle_next != NULL)
		w->idle_next->idle_prev = w->idle_prev;
	srv->idle--;
}

/*
 * accept() failed with err.  Lack of resources (EMFILE at the descriptor
 * limit, ENFILE, ENOBUFS, ENOMEM) and anything unexpected make every idle
 * worker pause, for longer each failure in a row; the state change is
 * logged once, not each failure of each worker.
 */
static void
server_accept_failed(struct server *srv, int err)
{
	struct timespec ts;
	bool first;
	unsigned ms;

	if (err == EINTR || err == ECONNABORTED || err == EAGAIN)
		return;
	pthread_mutex_lock(&srv->lock);
	first = srv->accept_backoff_ms == 0;
	if (first) {
		uint64_t now = util_now_ms();

		srv->accept_backoff_ms = SERVER_ACCEPT_BACKOFF_MIN_MS;
		srv->accept_failing_since = now;
		first = srv->accept_log_ms == 0 ||
		    now - srv->accept_log_ms >= SERVER_ACCEPT_LOG_INTERVAL_MS;
		srv->accept_logged = first;
		if (first)
			srv->accept_log_ms = now;
	} else if (srv->accept_backoff_ms < SERVER_ACCEPT_BACKOFF_MAX_MS / 2) {
		srv->accept_backoff_ms *= 2;
	} else {
		srv->accept_backoff_ms = SERVER_ACCEPT_BACKOFF_MAX_MS;
	}
	srv->accept_failures++;
	ms = srv->accept_backoff_ms;
	pthread_mutex_unlock(&srv->lock);
	if (first)
		log_warn("accept failing: %s (%s), backing off (up to %d ms "
		         "between tries)",
		    strerrorname_np(err), strerror(err),
		    SERVER_ACCEPT_BACKOFF_MAX_MS);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/*
 * In a cluster (srv->hold): wait on a kept-alive connection for its next
 * request, as its own worker, up to BEEP_IDLE_TIMEOUT (0: for ever), and
 * not once the service stops.  The read deadline starts only when the
 * request starts arriving.  Returns whether there is something to read
 * (or an end of file to see).
 */
static bool
server_wait_request(struct server *srv, int fd)
{
	unsigned idle = srv->config->idle_timeout;
	uint64_t end = util_now_ms() + (uint64_t)idle * 1000;
	struct pollfd p[2] = {
	    {.fd = fd, .events = POLLIN},
	    {.fd = srv->stop_fd, .events = POLLIN},
	};

	for (;;) {
		uint64_t now = util_now_ms();
		int wait_ms = idle == 0 ? -1
		    : now >= end        ? 0
		                        : (int)(end - now);
		int n = poll(p, 2, wait_ms);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_warn("poll: %s", strerror(errno));
			return false;
		}
		if (p[1].revents != 0)
			return false; /* stopping: the front reconnects */
		if (n == 0) {
			log_debug(
			    "kept connection idle for %us: closing it", idle);
			return false;
		}
		return true;
	}
}

/*
 * In a cluster (srv->hold): whether a worker may wait on its kept
 * connection for the next request.  Not the last one in accept() while
 * none can be started (a thread limit, or max_workers): new connections
 * would wait for it up to BEEP_IDLE_TIMEOUT (test 85).  Its connection is
 * closed instead, its answer written; the front opens another when it
 * needs one.
 */
static bool
server_may_hold(struct server *srv)
{
	bool may;

	pthread_mutex_lock(&srv->lock);
	may = srv->idle > 0 ||
	    (!atomic_load(&srv->spawn_failing) &&
	        srv->workers < srv->max_workers);
	pthread_mutex_unlock(&srv->lock);
	return may;
}

/*
 * A request's read deadline fired: answer 408 if nothing was written yet
 * and the request was cut short (a front that reads the answer while it
 * still writes the body shows it; Caddy, which writes the whole body
 * first, answers 502 itself), and close the connection either way.
 */
static void server_timed_out(struct server *srv, struct server_conn *conn)
    __attribute__((noinline));

/*
 * Requests not read in time: a client makes as many as it opens
 * connections and sends nothing more on, so the line is limited
 * (log_limit_pass()), as one kind, whether a request began or not.
 */
static struct log_limit server_late_log =
    LOG_LIMIT(LOG_WARN, "request not read within BEEP_READ_TIMEOUT");

static void
server_log_late(const struct server *srv, const char *what)
{
	uint64_t held;

	if (log_limit_pass(&server_late_log, util_now_ms(), &held))
		log_warn("request not read within BEEP_READ_TIMEOUT (%us): %s "
		         "(%llu more not logged)",
		    srv->config->read_timeout, what, (unsigned long long)held);
}

static void
server_timed_out(struct server *srv, struct server_conn *conn)
{
	FCGX_Request *req = &conn->req;
	bool answer = !conn->responded && FCGX_GetError(req->in) != 0;

	server_log_late(srv,
	    answer ? "answering 408, closing the connection"
	           : "closing the connection");
	if (answer) {
		struct api_response resp = {0};

		api_request_timeout(srv->api,
		    FCGX_GetParam("REQUEST_METHOD", req->envp),
		    FCGX_GetParam("HTTP_ORIGIN", req->envp), &resp);
		server_reply(req, &resp, false);
	}
	req->keepConnection = 0;
}

/*
 * Parked connections with no worker waiting for them, and none could be
 * started for them (a thread limit, or max_workers): turn a worker that
 * waits in accept() to them.  Its accept() is interrupted (EINTR), and
 * server_next() then looks at the parked connections first.  A front
 * that keeps its connections sends its requests on them, not on new
 * ones: with no worker on kept_fd they would wait until a stream ended.
 * The signal may come just before that worker enters accept(), and be
 * missed: the watcher looks again once a second.  Never the last worker
 * in accept() (server_next() would send it back there).  srv->lock held.
 */
void
server_turn_idle(struct server *srv)
{
	if (srv->parked > 0 && srv->kept_waiters == 0 && srv->idle > 1 &&
	    !srv->stopping)
		pthread_kill(srv->idle_list->tid, SERVER_STOP_SIGNAL);
}

/* Parked connections with no worker waiting for them.  srv->lock held. */
static bool
server_uncovered(const struct server *srv)
{
	return srv->parked > 0 && srv->kept_waiters == 0 &&
	    srv->workers < srv->max_workers;
}

/*
 * This worker may block for long (its request has not come whole, or a
 * stream is starting): if parked connections then have no worker waiting
 * for them, start one, or their requests would wait for this one.  Only
 * a worker that left them so (conn->uncovered: it took a connection from
 * kept_fd and no waiter was left) or that leaves for a stream can be the
 * one they wait for: any other comes back to server_next() after its
 * request and waits for them there.
 */
static void
server_cover(struct server *srv)
{
	bool spawn;

	pthread_mutex_lock(&srv->lock);
	spawn = server_uncovered(srv);
	if (spawn)
		srv->workers++;
	else
		server_turn_idle(srv); /* at max_workers */
	pthread_mutex_unlock(&srv->lock);
	if (spawn) {
		log_debug("parked connections uncovered: a worker more");
		if (server_spawn(srv) < 0) {
			pthread_mutex_lock(&srv->lock);
			server_turn_idle(srv);
			pthread_mutex_unlock(&srv->lock);
		}
	}
}

bool
server_judge(struct server_conn *conn)
{
	struct server *srv = conn->srv;

	conn->read_armed = true;
	if (!server_read_arm(srv, conn)) {
		int err = errno;

		server_cover(srv);
		if (!server_read_unguarded(srv, conn, err, true)) {
			server_accept_failed(srv, err);
			return false;
		}
		conn->read_armed = false;
		return true;
	}
	server_cover(srv);
	return true;
}

/*
 * Serve the request that has come (or is coming) on conn.  Returns
 * whether the connection stays open for another.
 */
static bool
server_serve(struct server *srv, struct server_conn *conn)
{
	FCGX_Request *req = &conn->req;
	bool stop;

	conn->timed_out = conn->responded = false;
	/*
	 * Never read without a deadline: a slow client could then hold this
	 * worker for ever.  Unless the request has come whole (looked at
	 * where a look pays: on a connection's first request, whose deadline
	 * would cost a duplicate of the descriptor and its close, and where
	 * server_cover() would look anyway): then no read of it blocks.
	 * Where server_cover() would look at a kept connection's request,
	 * taken because epoll found it readable, libfcgi's first read of it
	 * cannot block: what that read brings is judged instead
	 * (server_judge()), which spares a recv() per request.
	 */
	conn->judge = conn->uncovered && !conn->first;
	conn->read_armed =
	    !conn->judge && !(conn->first && server_conn_whole(req->ipcFd));
	conn->first = false;
	if (conn->read_armed && !server_read_arm(srv, conn)) {
		int err = errno;

		if (!server_read_unguarded(srv, conn, err, false)) {
			server_accept_failed(srv, err);
			return false;
		}
		conn->read_armed = false;
	}
	if (server_conn_accept(req) < 0) {
		server_conn_reading(NULL);
		/*
		 * libfcgi has closed the connection; deadline_cancel() closes
		 * the timer's duplicate, and the client sees it closed before
		 * its line is passed to the log: counted meanwhile, so that a
		 * stop that begins then waits for the line (server_stop()).
		 */
		atomic_fetch_add(&srv->telling, 1);
		if (deadline_cancel(conn->timer))
			server_log_late(srv, "connection closed");
		server_stop_done(srv, &srv->telling);
		return false;
	}
	atomic_fetch_add(&srv->active, 1);

	server_handle(srv, req);
	server_read_done(req);
	if (conn->timed_out)
		server_timed_out(srv, conn);
	server_conn_finish(req);
	server_conn_reading(NULL);
	/*
	 * libfcgi closed the connection: so does the timer's duplicate, or
	 * the front would never see it close.
	 */
	if (req->ipcFd < 0)
		deadline_cancel(conn->timer);

	stop = server_stop_done(srv, &srv->active);
	return req->ipcFd >= 0 && !stop;
}

/*
 * Let SERVER_STOP_SIGNAL in, only it, only to interrupt accept()
 * (server_stop()).  Out of line: a sigset_t is 128 bytes, which would
 * stay in the frame a stream's thread sleeps under.
 */
static void server_worker_signals(void) __attribute__((noinline));

static void
server_worker_signals(void)
{
	sigset_t stop_signal;

	sigemptyset(&stop_signal);
	sigaddset(&stop_signal, SERVER_STOP_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &stop_signal, NULL);
}

/*
 * The next connection for worker w to serve a request of: a parked one
 * whose request has come, or a new one from accept().  Up to
 * kept_waiters_max workers wait for the parked ones (while there are
 * any; all of them while the service stops, to close them); the others
 * wait in accept(), or end when enough do.  A worker that has just
 * served a request takes the next one that has come before it looks
 * further, so under load requests on kept connections are served mostly
 * without a thread woken for each.  Returns NULL when the worker is to
 * end (srv->lock then held).
 */
static struct server_conn *
server_next(struct server *srv, struct server_worker *w)
{
	uint64_t since = 0;
	unsigned long failures = 0;
	struct server_conn *conn;
	bool spawn, recovered, wait_kept, try_kept;
	int fd, err;

	for (;;) {
		pthread_mutex_lock(&srv->lock);
		/*
		 * Not the last worker in accept() while none can be started
		 * (a thread limit): with none left there, new connections
		 * would wait (test 83).  Otherwise the worker that took the
		 * last one's place has started its replacement.
		 */
		wait_kept = srv->parked > 0 &&
		    ((srv->kept_waiters < srv->kept_waiters_max &&
		         (srv->idle > 0 ||
		             !atomic_load_explicit(
		                 &srv->spawn_failing, memory_order_relaxed))) ||
		        srv->stopping);
		try_kept = srv->parked > 0 && !wait_kept;
		if (wait_kept)
			srv->kept_waiters++;
		pthread_mutex_unlock(&srv->lock);
		if (wait_kept || try_kept) {
			conn = server_conn_take(srv, wait_kept);
			if (conn != NULL)
				return conn;
			if (wait_kept)
				continue;
		}

		pthread_mutex_lock(&srv->lock);
		if (srv->stopping || srv->idle >= 2 * srv->config->min_idle)
			return NULL;
		server_idle_add(srv, w);
		pthread_mutex_unlock(&srv->lock);

		fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		err = errno;

		pthread_mutex_lock(&srv->lock);
		server_idle_remove(srv, w);
		if (fd < 0) {
			if (srv->stopping)
				return NULL;
			pthread_mutex_unlock(&srv->lock);
			server_accept_failed(srv, err);
			continue;
		}
		recovered = srv->accept_backoff_ms != 0 && srv->accept_logged;
		if (srv->accept_backoff_ms != 0) {
			failures = srv->accept_failures;
			since = srv->accept_failing_since;
			srv->accept_backoff_ms = 0;
			srv->accept_failures = 0;
		}
		spawn = srv->idle < srv->config->min_idle &&
		    srv->workers < srv->max_workers;
		if (spawn)
			srv->workers++;
		pthread_mutex_unlock(&srv->lock);
		if (recovered)
			log_info(
			    "accept recovered after %lu failures in %llu ms",
			    failures,
			    (unsigned long long)(util_now_ms() - since));
		if (spawn)
			server_spawn(srv);
		return server_conn_new(srv, fd);
	}
}

static void *
server_worker(void *arg)
{
	struct server *srv = arg;
	struct server_worker w = {.tid = pthread_self()};
	struct server_conn *conn;

	server_stack_init();
	server_worker_signals();
	while ((conn = server_next(srv, &w)) != NULL) {
		bool open;

		while ((open = server_serve(srv, conn)) && srv->hold &&
		    server_may_hold(srv) &&
		    server_wait_request(srv, conn->req.ipcFd))
			;
		if (!open || srv->hold || !server_conn_park(srv, conn))
			server_conn_free(conn);
	}
	srv->workers--;
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}
