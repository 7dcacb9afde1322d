/*
 * server_conn: the connections from the front, as the workers share them
 * (see the DESIGN comment in server.c).  A connection is made when a
 * worker accepts it and freed when it closes; between two requests on a
 * kept connection (a front that keeps its FastCGI connections: nginx;
 * not lighttpd 1.4) it is parked: registered in srv->kept_fd, one-shot,
 * with no thread of its own, until its next request comes and a worker
 * takes it.
 * Its idle limit is no timer: the list of parked connections is in the
 * order they were parked, and the watcher shuts down its oldest ones
 * once a second (server_conns_idle()), which costs a request nothing.
 * Here too: how a request starts and ends on a connection as libfcgi
 * reads it (server_conn_whole(), server_conn_accept(),
 * server_conn_finish()), so that a peer's input holds no worker in
 * libfcgi (its writes can: see the README's "Slow and oversized
 * requests").
 *
 * LOCKING.  srv->lock guards srv->parked_list (and tail), srv->parked
 * and each parked connection's parked_ms and idled; a parked connection
 * belongs to no worker, and is freed only by the worker that took it
 * from kept_fd (one-shot: one worker each time) and off the list, so
 * that its descriptor stays open while it is on the list.  The epoll set
 * holds no lock of ours.
 */
#include "server_impl.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deadline.h"
#include "log.h"

#define LOG_MODULE "server"

/*
 * How much of a kept connection's next request server_conn_whole() looks
 * at (libfcgi's own buffer): a larger one counts as not yet whole.
 */
#define SERVER_PEEK 8192
/* FastCGI's record types: a request's first, its parameters', its body's. */
#define SERVER_FCGI_BEGIN_REQUEST 1
#define SERVER_FCGI_PARAMS 4
#define SERVER_FCGI_STDIN 5
#define SERVER_FCGI_GET_VALUES 9
/*
 * The longest FCGI_GET_VALUES content libfcgi answers safely: its answer
 * goes into a 64-byte array on its stack (ProcessManagementRecord(), up
 * to 2.4.7 at least), 17 bytes for each name it knows (14, 13 or 15
 * characters, each taking 15 bytes or more of the record); from 60 bytes
 * on, a record can name them 4 times, and the fourth overflows it.
 */
#define SERVER_GET_VALUES_MAX 59
/*
 * ThreadSanitizer sees no order from epoll_ctl(EPOLL_CTL_MOD) to the
 * epoll_wait() that delivers the connection: the parking worker's use of
 * the descriptor and the taker's close of it would look unordered.  In
 * its builds the parking worker keeps srv->lock, which the taker takes
 * next, across epoll_ctl(); elsewhere the lock is not held across it.
 */
#ifdef __SANITIZE_THREAD__
#define SERVER_CONN_TSAN 1
#else
#define SERVER_CONN_TSAN 0
#endif

int
server_conns_open(struct server *srv)
{
	/* stop_fd, level-triggered, wakes every worker waiting in it. */
	srv->kept_fd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->kept_fd < 0 ||
	    epoll_ctl(srv->kept_fd, EPOLL_CTL_ADD, srv->stop_fd,
	        &(struct epoll_event){.events = EPOLLIN, .data.ptr = NULL}) <
	        0) {
		log_error("epoll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct server_conn *
server_conn_new(struct server *srv, int fd)
{
	struct server_conn *conn = xcalloc(1, sizeof(*conn));

	conn->srv = srv;
	conn->timer = deadline_timer_new(srv->deadlines);
	/* The listening socket is ours: libfcgi only reads connections. */
	FCGX_InitRequest(&conn->req, -1, 0);
	/*
	 * libfcgi reads requests from ipcFd while it is open; with
	 * listen_sock -1 it returns an error instead of accepting when the
	 * front closes the connection; keepConnection stops it closing the
	 * fd before reading the first request.  libfcgi offers no call for
	 * this; these fields have been stable since 2.4.0.
	 */
	conn->req.ipcFd = fd;
	conn->req.keepConnection = 1;
	conn->first = true;
	return conn;
}

void
server_conn_free(struct server_conn *conn)
{
	/*
	 * The timer's duplicate goes first: the last descriptor of the
	 * connection closed takes it out of kept_fd.
	 */
	deadline_timer_free(conn->timer);
	/*
	 * Still open: a kept connection closed between two requests (at a
	 * stop, or idle), whose answers are all written.  libfcgi's close
	 * reads until the peer is silent for 2 s: given up on, it ends once
	 * what has come is read.
	 */
	server_conn_give_up(&conn->req);
	FCGX_Free(&conn->req, 1);
	free(conn);
}

bool
server_conn_whole(int fd)
{
	unsigned char b[SERVER_PEEK];

	return server_conn_whole_in(fd, b, sizeof(b));
}

/*
 * server_conn_whole(), looking at up to size bytes through b: a request
 * larger than SERVER_PEEK (a POST near BEEP_MAX_BODY) that must be seen
 * whole (server_read_unguarded()).
 */
bool
server_conn_whole_in(int fd, unsigned char *b, size_t size)
{
	ssize_t n = recv(fd, b, size, MSG_PEEK | MSG_DONTWAIT);
	size_t at = 0;
	unsigned id;

	if (n <= 0)
		return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
	/*
	 * Only a request's own end counts: libfcgi reads on past records of
	 * other ids (skipped) and management records, so a request that
	 * does not begin with FCGI_BEGIN_REQUEST, or an empty FCGI_STDIN of
	 * another id, would leave its reads blocking with no deadline.
	 */
	if (n < 8 || b[1] != SERVER_FCGI_BEGIN_REQUEST || b[6] != 0)
		return false;
	id = (unsigned)b[2] << 8 | b[3];
	while (at + 8 <= (size_t)n) {
		size_t len = (size_t)b[at + 4] << 8 | b[at + 5];
		bool ours = ((unsigned)b[at + 2] << 8 | b[at + 3]) == id;

		if (b[at + 1] == SERVER_FCGI_STDIN && len == 0 && ours)
			return true;
		/*
		 * libfcgi leaves the padding of the BEGIN_REQUEST record and
		 * of the empty FCGI_PARAMS record unskipped (it returns before,
		 * then forgets it) and reads it as the next record: a chain
		 * other than the one walked here.
		 */
		if (b[at + 1] == SERVER_FCGI_PARAMS && len == 0 && ours &&
		    b[at + 6] != 0)
			return false;
		at += 8 + len + b[at + 6];
	}
	return false;
}

/*
 * The connection whose request this worker serves, for libfcgi's reads
 * (server_conn_read()).
 */
static _Thread_local struct server_conn *server_conn_current;

void
server_conn_reading(struct server_conn *conn)
{
	server_conn_current = conn;
}

/*
 * libfcgi trusts its peer further than it should (README, Security): a
 * record it is about to read is refused here, before it reads it, when
 * - it is an FCGI_GET_VALUES of SERVER_GET_VALUES_MAX bytes or more,
 *   which overflows libfcgi's answer on the worker's stack and aborts
 *   the process (test 72);
 * - it is an FCGI_BEGIN_REQUEST or an empty FCGI_PARAMS with padding:
 *   libfcgi reads that padding as the next record's header (see
 *   server_conn_whole_in()), where this walk would skip it, and so would
 *   lose step with libfcgi (a record hidden in it would not be seen).
 * No front sends any of these; libfcgi itself fails on the padding (its
 * zeros as a header are no FastCGI version).  Elsewhere libfcgi steps
 * from record to record by each header's lengths, as here: a record of
 * another request id or a management record is skipped or read whole,
 * and the content of a management record it does not know is read as
 * the current stream's (its padding skipped): the same bytes either way.
 * f starts over at each request (server_conn_accept()), as libfcgi's
 * reader does, which drops whatever it had read past the last request.
 */
bool
server_frame_feed(struct server_frame *f, const unsigned char *p, size_t n)
{
	while (n > 0) {
		const unsigned char *h;
		size_t take, len;
		unsigned type;

		if (f->left > 0) {
			take = f->left < n ? f->left : n;
			f->left -= take;
			p += take;
			n -= take;
			continue;
		}
		if (f->have == 0 && n >= sizeof(f->head)) {
			/* A whole header here: read where it lies. */
			h = p;
			p += sizeof(f->head);
			n -= sizeof(f->head);
		} else {
			take = sizeof(f->head) - f->have;
			if (take > n)
				take = n;
			memcpy(f->head + f->have, p, take);
			f->have = (unsigned char)(f->have + take);
			p += take;
			n -= take;
			if (f->have < sizeof(f->head))
				break;
			f->have = 0;
			h = f->head;
		}
		type = h[1];
		len = (size_t)h[4] << 8 | h[5];
		if ((type == SERVER_FCGI_BEGIN_REQUEST ||
		        (type == SERVER_FCGI_PARAMS && len == 0)) &&
		    h[6] != 0)
			return false;
		if (type == SERVER_FCGI_GET_VALUES && h[2] == 0 && h[3] == 0 &&
		    len > SERVER_GET_VALUES_MAX)
			return false;
		/* server_conn_whole_in()'s rule, as the records come. */
		if (f->at == SERVER_FRAME_START) {
			f->at = type == SERVER_FCGI_BEGIN_REQUEST
			    ? SERVER_FRAME_BEGUN
			    : SERVER_FRAME_ODD;
			f->id = (unsigned)h[2] << 8 | h[3];
		} else if (f->at == SERVER_FRAME_BEGUN &&
		    type == SERVER_FCGI_STDIN && len == 0 &&
		    ((unsigned)h[2] << 8 | h[3]) == f->id) {
			f->at = SERVER_FRAME_WHOLE;
		}
		f->left = len + h[6];
	}
	return true;
}

bool
server_conn_whole_after(
    int fd, unsigned char *b, size_t size, const struct server_frame *f)
{
	ssize_t n = recv(fd, b, size, MSG_PEEK | MSG_DONTWAIT);
	struct server_frame rest = *f;

	if (n <= 0)
		return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
	/*
	 * A record libfcgi must not read is refused when it is read, and
	 * every byte up to it has come: no read before it blocks.
	 */
	return !server_frame_feed(&rest, b, (size_t)n) ||
	    rest.at == SERVER_FRAME_WHOLE;
}

int
server_conn_read(int fd, char *buf, size_t len)
{
	struct server_conn *conn = server_conn_current;
	ssize_t n = read(fd, buf, len);

	if (n <= 0 || conn == NULL || conn->req.ipcFd != fd)
		return (int)n;
	if (!server_frame_feed(&conn->frame, (unsigned char *)buf, (size_t)n)) {
		static struct log_limit limit = LOG_LIMIT(
		    LOG_WARN, "a FastCGI record libfcgi cannot read safely");
		uint64_t held;

		if (log_limit_pass(&limit, util_now_ms(), &held))
			log_warn("a FastCGI record libfcgi cannot read safely "
			         "(a long FCGI_GET_VALUES, or padding where "
			         "libfcgi reads none): closing the connection "
			         "(%llu more not logged)",
			    (unsigned long long)held);
		errno = EPROTO;
		return -1;
	}
	/* The first read of a request not looked at: judged on it. */
	if (conn->judge) {
		conn->judge = false;
		if (conn->frame.at != SERVER_FRAME_WHOLE &&
		    !server_judge(conn)) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
	return (int)n;
}

int
server_conn_accept(FCGX_Request *req)
{
	struct server_conn *conn = server_conn_of(req);
	int rc;

	/* libfcgi's reader starts over at a record's header: so does f. */
	conn->frame = (struct server_frame){0};
	server_conn_reading(conn);

	/*
	 * A request libfcgi cannot read makes it close the connection and
	 * fail.  Its close (OS_Close()) would first shut the connection down
	 * for writing and read on until the peer is 2 s silent, which a peer
	 * that goes on sending makes for ever: with no deadline, when the
	 * request had come whole (or looked it).  That wait keeps an answer
	 * from a reset; there is no answer here.  A detached request is
	 * closed without it (FCGX_Free()); libfcgi reads detached nowhere
	 * else, and attaches a connection it closes.
	 */
	req->detached = 1;
	rc = FCGX_Accept_r(req);
	/*
	 * Parameters that fail (a record of another type where they go)
	 * end them for libfcgi's ReadParams(), and FCGX_Accept_r() then
	 * reopens the failed stream for the body: a read of it would wait on
	 * the connection for ever, with no deadline when the request had
	 * come whole.  No request: closed as libfcgi's failure is.
	 */
	if (rc == 0 && FCGX_GetError(req->in) != 0) {
		FCGX_Free(req, 1);
		rc = -1;
	}
	req->detached = 0;
	return rc;
}

void
server_conn_give_up(FCGX_Request *req)
{
	req->keepConnection = 0;
	if (req->ipcFd >= 0)
		shutdown(req->ipcFd, SHUT_RD);
}

void
server_conn_finish(FCGX_Request *req)
{
	/*
	 * libfcgi closes a connection by shutting it down for writing and
	 * reading on until the peer has been silent for 2 s (OS_Close()),
	 * since TCP answers input left unread at close with a reset that can
	 * destroy the answer.  A connection that closes after a request read
	 * to its end (Caddy's, one request each) has none left: closed at
	 * once (detached, libfcgi's word for it), not after a sleep and a
	 * wake-up per request.  One that failed (its answer not written:
	 * FCGX_Finish_r() closes out and err again, which does nothing more;
	 * or its input: a protocol error, a read that failed or timed out),
	 * or that closes after a stream (whose input server_stream.c took,
	 * read at its start), is given up on: the wait then ends once what
	 * has come is read, where a peer that went on sending would keep it
	 * reading for ever, its read deadline over.
	 */
	bool failed = FCGX_FClose(req->err) != 0 ||
	    FCGX_FClose(req->out) != 0 ||
	    (req->in != NULL && FCGX_GetError(req->in) != 0);

	if (failed || (req->in == NULL && !req->keepConnection))
		server_conn_give_up(req);
	else if (req->in != NULL && !req->keepConnection &&
	    FCGX_HasSeenEOF(req->in) == EOF)
		FCGX_Detach(req);
	FCGX_Finish_r(req);
}

/* Take conn off srv->parked_list.  srv->lock held. */
static void
server_conn_unpark(struct server *srv, struct server_conn *conn)
{
	if (conn->park_prev != NULL)
		conn->park_prev->park_next = conn->park_next;
	else
		srv->parked_list = conn->park_next;
	if (conn->park_next != NULL)
		conn->park_next->park_prev = conn->park_prev;
	else
		srv->parked_tail = conn->park_prev;
	srv->parked--;
}

bool
server_conn_park(struct server *srv, struct server_conn *conn)
{
	int fd = conn->req.ipcFd;
	struct epoll_event ev = {
	    .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = conn};
	static struct log_limit unwatched_log =
	    LOG_LIMIT(LOG_WARN, "epoll_ctl refused a kept connection: closed");
	uint64_t held;
	bool add;
	int rc, err;

	pthread_mutex_lock(&srv->lock);
	if (srv->stopping) {
		/* Too late: server_conns_shut() has been. */
		pthread_mutex_unlock(&srv->lock);
		return false;
	}
	/* Read under the lock, so that the list stays in its order. */
	conn->parked_ms = util_now_ms();
	conn->idled = false;
	conn->park_prev = NULL;
	conn->park_next = srv->parked_list;
	if (srv->parked_list != NULL)
		srv->parked_list->park_prev = conn;
	else
		srv->parked_tail = conn;
	srv->parked_list = conn;
	srv->parked++;
	srv->kept_seen = true;
	/*
	 * Once armed, conn may be taken, served and freed by another worker
	 * before epoll_ctl() returns: not touched after it succeeds (and
	 * in_kept is set under the lock the taker takes next).
	 */
	add = !conn->in_kept;
	conn->in_kept = true;
	if (!SERVER_CONN_TSAN)
		pthread_mutex_unlock(&srv->lock);
	rc = epoll_ctl(
	    srv->kept_fd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
	if (SERVER_CONN_TSAN)
		pthread_mutex_unlock(&srv->lock);
	if (rc == 0)
		return true;
	err = errno;
	if (add)
		conn->in_kept = false;
	/*
	 * A kernel that refuses one (ENOSPC at fs.epoll.max_user_watches,
	 * ENOMEM) refuses every kept connection after it, at the rate the
	 * front makes them: limited, as one kind whatever the cause.
	 */
	if (log_limit_pass(&unwatched_log, util_now_ms(), &held))
		log_warn("epoll_ctl: %s: closing a kept connection (%llu more "
		         "not logged)",
		    strerror(err), (unsigned long long)held);
	pthread_mutex_lock(&srv->lock);
	server_conn_unpark(srv, conn);
	pthread_mutex_unlock(&srv->lock);
	return false;
}

struct server_conn *
server_conn_take(struct server *srv, bool wait)
{
	struct epoll_event ev;
	struct server_conn *conn = NULL;
	bool idled = false;
	int n;

	do
		n = epoll_wait(srv->kept_fd, &ev, 1, wait ? -1 : 0);
	while (n < 0 && errno == EINTR && wait);
	if (n == 1)
		conn = ev.data.ptr; /* NULL: stop_fd */
	pthread_mutex_lock(&srv->lock);
	if (wait)
		srv->kept_waiters--;
	if (conn != NULL) {
		server_conn_unpark(srv, conn);
		conn->uncovered = srv->parked > 0 && srv->kept_waiters == 0;
		idled = conn->idled;
	}
	pthread_mutex_unlock(&srv->lock);
	if (idled) {
		log_debug("kept connection idle for %us: closing it",
		    srv->config->idle_timeout);
		server_conn_free(conn);
		return NULL;
	}
	return conn;
}

void
server_conns_shut(struct server *srv)
{
	pthread_mutex_lock(&srv->lock);
	for (struct server_conn *c = srv->parked_list; c != NULL;
	     c = c->park_next)
		shutdown(c->req.ipcFd, SHUT_RD);
	pthread_mutex_unlock(&srv->lock);
}

void
server_conns_idle(struct server *srv, uint64_t now_ms)
{
	uint64_t idle_ms = (uint64_t)srv->config->idle_timeout * 1000;

	if (idle_ms == 0)
		return;
	pthread_mutex_lock(&srv->lock);
	/* Oldest first; those shut down already stay until taken. */
	for (struct server_conn *c = srv->parked_tail;
	     c != NULL && c->parked_ms + idle_ms <= now_ms; c = c->park_prev) {
		if (!c->idled) {
			c->idled = true;
			shutdown(c->req.ipcFd, SHUT_RD);
		}
	}
	pthread_mutex_unlock(&srv->lock);
}
