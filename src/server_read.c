/*
 * server_read: a request's read deadline (BEEP_READ_TIMEOUT; see the
 * DESIGN comment in server.c, "Watcher"), as the worker serving it sees
 * it: armed before libfcgi reads the request (server_read_arm()), paused
 * once it has been read (server_read_done()); and, where no descriptor is
 * left for one, the wait for the request to come whole without it
 * (server_read_unguarded()).  The watcher runs the deadlines (deadline.h);
 * server.c answers a request whose deadline fired (server_timed_out()) and
 * judges a kept connection's request taken unlooked (server_judge()).
 */
#include "server_impl.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "deadline.h"
#include "log.h"
#include "util.h"

#define LOG_MODULE "server"

/*
 * How often a worker looks whether a request that has no read deadline
 * (no descriptor left for one) has come whole: server_read_unguarded().
 */
#define SERVER_UNGUARDED_LOOK_MS 10
/* What a request's records besides its body may take, looked at too. */
#define SERVER_UNGUARDED_PARAMS_MAX 65536
/* The most looked at, whatever BEEP_MAX_BODY (a bound on the buffer). */
#define SERVER_UNGUARDED_PEEK_MAX (4u << 20)

/*
 * The request has been read (or given up on): disarm its read deadline,
 * if one runs, noting whether it fired.  Idempotent.  The timer keeps its
 * duplicate of the connection for the next request's deadline
 * (server_serve() cancels it once the connection ends, a stream's start
 * too).
 */
void
server_read_done(FCGX_Request *req)
{
	struct server_conn *conn = server_conn_of(req);

	if (conn->read_armed) {
		conn->read_armed = false;
		if (deadline_pause(conn->timer))
			conn->timed_out = true;
	}
}

/*
 * Arm conn's read deadline (BEEP_READ_TIMEOUT) for its request.  False,
 * errno set, when no descriptor is left for it (it holds a duplicate of
 * the connection's: see deadline.h).
 */
bool
server_read_arm(struct server *srv, struct server_conn *conn)
{
	uint64_t when =
	    util_now_ms() + (uint64_t)srv->config->read_timeout * 1000;

	return deadline_rearm(conn->timer, when) == 0 ||
	    deadline_arm(conn->timer, conn->req.ipcFd, when) == 0;
}

/* Whether fd's peer has closed (or the connection failed): polled, no wait. */
static bool
server_peer_gone(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};

	return poll(&pfd, 1, 0) == 1 &&
	    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/*
 * conn's request needs a read deadline and none could be armed (at the
 * descriptor limit, err): this worker waits for it to come whole within
 * BEEP_READ_TIMEOUT, looking every SERVER_UNGUARDED_LOOK_MS, and then it
 * is read with no read that can block.  One that does not (or that is
 * larger than the look, below) is not read: a
 * limit per read instead (SO_RCVTIMEO, until 2026-12-06) let a peer that
 * sent a byte within each keep its worker for good, exactly when the
 * service is short of descriptors.  Its connection is then closed unread
 * by the caller, and this worker backs off, by the caller too
 * (server_accept_failed()), as one whose accept() fails there does (it
 * took the descriptor accept() would have).  after: what
 * conn->frame followed has been read (server_judge()), and the rest is
 * looked at.
 */
bool
server_read_unguarded(
    struct server *srv, struct server_conn *conn, int err, bool after)
{
	uint64_t end =
	    util_now_ms() + (uint64_t)srv->config->read_timeout * 1000;
	struct timespec look = {0, SERVER_UNGUARDED_LOOK_MS * 1000000L};
	/*
	 * Looked at up to the largest request it reads (a body of
	 * BEEP_MAX_BODY and its parameters): a whole POST larger than
	 * server_conn_whole()'s look is legitimate (an SDP offer).
	 */
	size_t size = srv->config->max_body + SERVER_UNGUARDED_PARAMS_MAX;
	/*
	 * A bound on the buffer, whatever the limit: a request is seen whole
	 * only when it fits in the socket's receive queue (about 208 KiB for
	 * a Unix socket, net.core.wmem_default): one larger, possible only
	 * with BEEP_MAX_BODY raised past it, is closed unread here (README).
	 */
	if (size > SERVER_UNGUARDED_PEEK_MAX)
		size = SERVER_UNGUARDED_PEEK_MAX;
	unsigned char *b = xmalloc(size);
	int queued = -1;

	for (;;) {
		int now;

		/*
		 * Looked at again only when more has come (FIONREAD): a look
		 * copies up to size bytes.  And whenever nothing is queued (a
		 * look copies nothing): a peer that closes leaves FIONREAD at
		 * 0, and only a look sees its end (test 67).
		 */
		if (ioctl(conn->req.ipcFd, FIONREAD, &now) != 0)
			now = -1;
		if ((now <= 0 || now != queued) &&
		    (after ? server_conn_whole_after(
		                 conn->req.ipcFd, b, size, &conn->frame)
		           : server_conn_whole_in(conn->req.ipcFd, b, size)))
			break;
		/*
		 * A peer that closed after part of a request leaves FIONREAD
		 * at the part, and a look returns the part, never the end
		 * behind it (test 67).  Once it has closed no read blocks:
		 * libfcgi reads the part, then the end, and closes.
		 */
		if (server_peer_gone(conn->req.ipcFd))
			break;
		queued = now;
		if (util_now_ms() >= end) {
			free(b);
			log_debug("read deadline: %s: connection closed unread",
			    strerrorname_np(err));
			return false;
		}
		nanosleep(&look, NULL);
	}
	free(b);
	return true;
}
