/*
 * server_impl: the state the server modules share (server.c, the worker
 * pool and request serving; server_request.c, a request read and
 * answered; server_conn.c, connections; server_stream.c, a stream's
 * writer; server_watch.c, the watcher thread; server_read.c, a request's
 * read deadline); see the DESIGN comment in server.c.  Included by
 * src/server*.c only: with libfcgi's fcgiapp.h, it stays out of every
 * other module.
 */
#ifndef BEEP_SERVER_IMPL_H
#define BEEP_SERVER_IMPL_H

#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "server.h"
#include "util.h"

/* The watcher's epoll tag for wake_fd (stream ids are never 0). */
#define SERVER_WAKE_TAG 0
/*
 * Interrupts idle workers' accept() when the service stops (a handler
 * that does nothing, without SA_RESTART).  libfcgi takes SIGUSR1.
 */
#define SERVER_STOP_SIGNAL SIGUSR2

struct server {
	const struct config *config;
	struct registry *reg;
	struct api *api;
	struct listener *listener;
	int listen_fd; /* listener_fd(listener) */
	int epoll_fd;
	pthread_attr_t attr;
	pthread_mutex_t lock;
	/* signalled when active or telling drops to 0, while stopping */
	pthread_cond_t idle_cond;
	size_t workers; /* threads alive */
	/* The last pthread_create() failed (a thread limit): see api_threads */
	_Atomic bool spawn_failing;
	size_t idle; /* workers blocked in accept() */
	/*
	 * Requests in progress, streams included: atomic, changed without
	 * srv->lock (server_serve()); idle_cond is broadcast under it.
	 */
	_Atomic size_t active;
	/*
	 * Connections closed at their read deadline before a request began,
	 * whose line is not yet passed to the log (server_serve()): the
	 * client may have seen the close.  Atomic, as active.
	 */
	_Atomic size_t telling;
	size_t max_workers;
	/* Set under srv->lock; atomic so that server_serve() reads it without. */
	_Atomic bool stopping;
	int wake_fd;                     /* eventfd: garbage for the watcher */
	struct server_garbage *garbage;  /* what streams left to free */
	struct deadline *deadlines;      /* requests being read; the watcher */
	int stop_fd;                     /* eventfd, readable once stopping */
	struct server_worker *idle_list; /* workers in accept() (idle) */
	bool hold;           /* cluster: a worker keeps its kept connection */
	int kept_fd;         /* epoll: parked connections, stop_fd */
	size_t kept_waiters; /* workers waiting in kept_fd */
	size_t kept_waiters_max;
	size_t parked;  /* connections in kept_fd, waiting */
	bool kept_seen; /* a connection has been parked: the front keeps them */
	/* Newest first, so oldest last: ordered by parked_ms. */
	struct server_conn *parked_list, *parked_tail;
	unsigned accept_backoff_ms;    /* 0 unless accept() is failing */
	unsigned long accept_failures; /* in a row */
	uint64_t accept_failing_since;
	bool accept_logged;     /* this run of failures was logged */
	uint64_t accept_log_ms; /* when the last run was logged */
};

/* A worker thread, as the list of those in accept() knows it. */
struct server_worker {
	pthread_t tid;
	struct server_worker *idle_prev, *idle_next; /* srv->idle_list */
};

/* Where a request's walk stands (struct server_frame's at). */
enum server_frame_at {
	SERVER_FRAME_START, /* no header yet */
	SERVER_FRAME_BEGUN, /* began with FCGI_BEGIN_REQUEST, id known */
	SERVER_FRAME_WHOLE, /* its own empty FCGI_STDIN seen: all has come */
	SERVER_FRAME_ODD    /* began otherwise: never whole */
};

/*
 * The records libfcgi is about to read on a connection, followed as it
 * reads them (server_conn_read()): the header being read, and what is
 * left of the current record's content and padding; and whether the
 * request has come whole, by server_conn_whole()'s rule.
 */
struct server_frame {
	unsigned char head[8];
	unsigned char have; /* bytes of head read */
	unsigned char at;   /* enum server_frame_at */
	unsigned id;        /* the request's id, from SERVER_FRAME_BEGUN */
	size_t left;        /* of the current record, after its header */
};

/*
 * A connection from the front, served by one worker at a time.  req comes
 * first and the others reach the rest through it (server_conn_of()), so
 * helpers that take a request need no more arguments.
 */
struct server_conn {
	FCGX_Request req;
	struct server *srv;
	struct deadline_timer *timer; /* read deadline */
	bool timed_out;               /* it fired for this request */
	bool responded;               /* something of a response was written */
	bool in_kept;                 /* registered in srv->kept_fd */
	bool first;                   /* its first request is next */
	bool read_armed;              /* the read deadline runs for it */
	/*
	 * Taken from kept_fd leaving parked connections with no worker
	 * waiting for them: whoever serves this request must not block
	 * without starting one (server_cover()).
	 */
	bool uncovered;
	/*
	 * Whether its request has come whole is judged on what libfcgi's
	 * first read of it brings (server_judge()), not looked at before.
	 */
	bool judge;
	struct server_conn *park_prev, *park_next; /* srv->parked_list */
	uint64_t parked_ms;        /* when it was parked (util_now_ms()) */
	bool idled;                /* parked for BEEP_IDLE_TIMEOUT: shut down */
	struct server_frame frame; /* its request's records, as read */
};

/*
 * What a stream's request leaves behind once the stream has started: its
 * libfcgi streams (buffers) and parameters, and the response's buffers.
 * The watcher frees it (see stream_out_begin() in server_stream.c).
 */
struct server_garbage {
	struct server_garbage *next;
	FCGX_Request req;
	struct buf headers, body;
};

static inline struct server_conn *
server_conn_of(FCGX_Request *req)
{
	return (struct server_conn *)(void *)((char *)req -
	    offsetof(struct server_conn, req));
}

/*
 * The connections (server_conn.c).  server_conns_open(): make
 * srv->kept_fd, where parked connections and srv->stop_fd wait (0, or -1
 * logged).
 */
int server_conns_open(struct server *srv);
/* A connection just accepted (fd); its request comes first. */
struct server_conn *server_conn_new(struct server *srv, int fd);
/* Close conn (unless libfcgi has) and free it. */
void server_conn_free(struct server_conn *conn);
/*
 * Whether the next request on fd has come whole (from its
 * FCGI_BEGIN_REQUEST to the empty FCGI_STDIN record of the same id that
 * ends its body, within the first 8 KiB), so that reading it cannot
 * block; or the connection has ended or failed (nor can that).  Looks
 * without reading.
 */
bool server_conn_whole(int fd);
bool server_conn_whole_in(int fd, unsigned char *b, size_t size);
/*
 * The same for the rest of a request of which f has followed what was
 * read (server_conn_read()): whether what is queued on fd after it,
 * looked at through b (size bytes) without reading, completes it.
 */
bool server_conn_whole_after(
    int fd, unsigned char *b, size_t size, const struct server_frame *f);
/*
 * conn's request, on a connection epoll found readable, was not looked at
 * before libfcgi's first read of it, which cannot block: called by that
 * read with what it brought followed in conn->frame.  Unless that is the
 * whole request, arms its read deadline as server_serve() would have
 * (else waits for the rest, as with no descriptor for one), and starts a
 * worker for the parked connections (server_cover()).  False when the
 * rest did not come in time (the read then fails: closed unread).
 * In server.c.
 */
bool server_judge(struct server_conn *conn);
/*
 * FCGX_Accept_r() of the next request on req's connection; < 0 when
 * libfcgi could not read it (the front gone, a protocol error): the
 * connection is then closed, at once.
 */
int server_conn_accept(FCGX_Request *req);
/*
 * Follow n more bytes of a request's records from f (zeroed at the
 * request's start, where libfcgi starts reading): false at a record
 * libfcgi must not read (see server_conn.c).
 */
bool server_frame_feed(
    struct server_frame *f, const unsigned char *p, size_t n);
/*
 * The calling worker serves conn's request from here (NULL: none): what
 * server_conn_read() follows.
 */
void server_conn_reading(struct server_conn *conn);
/*
 * Stop reading req: its connection serves no other request, and is shut
 * down for reading, so that nothing (libfcgi's close, which reads on
 * until the peer stops sending) reads the rest of its input.
 */
void server_conn_give_up(FCGX_Request *req);
/*
 * FCGX_Finish_r() of req, which closes its connection unless it is kept
 * (and its input did not fail): at once, where no answer needs the wait
 * libfcgi makes at a close.
 */
void server_conn_finish(FCGX_Request *req);
/*
 * Park conn between two requests: no thread waits on it alone; a worker
 * takes it from srv->kept_fd when its next request comes, when it closes,
 * or when BEEP_IDLE_TIMEOUT passes (server_conns_idle() shuts it down for
 * reading, which makes it readable).  Returns false when it cannot be
 * parked (the service is stopping, or epoll_ctl() failed): the caller
 * frees it.  Once it returns true, conn is no longer the caller's.
 */
bool server_conn_park(struct server *srv, struct server_conn *conn);
/*
 * A parked connection that has something to read; NULL when none has (or
 * the service stops).  wait: block until one has, as the worker counted
 * in srv->kept_waiters, whose count this takes back.  One that was idle
 * past BEEP_IDLE_TIMEOUT is freed here.  Sets the connection's uncovered.
 */
struct server_conn *server_conn_take(struct server *srv, bool wait);
/*
 * The service stops: shut every parked connection down for reading, so
 * that the workers take each (its read sees end-of-file) and free it.
 */
void server_conns_shut(struct server *srv);
/*
 * Shut down for reading, as above, each connection parked since before
 * now_ms less BEEP_IDLE_TIMEOUT (none when it is 0): the worker that
 * takes it frees it.  The watcher's, once a second.
 */
void server_conns_idle(struct server *srv, uint64_t now_ms);

/*
 * A request's read deadline (server_read.c).  server_read_arm(): arm
 * conn's for its request; false, errno set, when no descriptor is left
 * for it.
 */
bool server_read_arm(struct server *srv, struct server_conn *conn);
/*
 * With none armed (err: why): wait up to BEEP_READ_TIMEOUT for conn's
 * request to come whole (after: the rest of what conn->frame followed),
 * so that no read of it blocks.  False when it did not: the caller closes
 * the connection unread, and backs off (server_accept_failed()).
 */
bool server_read_unguarded(
    struct server *srv, struct server_conn *conn, int err, bool after);
/*
 * The request has been read (or given up on): disarm its read deadline,
 * noting whether it fired.  Idempotent.
 */
void server_read_done(FCGX_Request *req);

/*
 * Read req, have the api answer it into resp and, unless the answer is a
 * stream, write it (resp is then released).  Returns false when the request
 * never arrived whole (resp is then empty: drop the connection).  Out of
 * line, so that a stream's thread does not sleep under the request's
 * buffers.  (server_request.c)
 */
bool server_answer(struct server *srv, FCGX_Request *req,
    struct api_response *resp) __attribute__((noinline));
/*
 * Write resp, a whole answer (head, Content-Length, body; the body not
 * for a HEAD request), to req, then release resp (api_response_release():
 * not zeroed, its stream NULL).  (server_request.c)
 */
void server_reply(FCGX_Request *req, struct api_response *resp, bool head);

/*
 * The watcher thread, started by server_start() with the server as arg;
 * it never returns but on an epoll_wait() error.  (server_watch.c)
 */
void *server_watcher(void *arg);
/*
 * Parked connections with no worker waiting for them and none could be
 * started: turn a worker in accept() to them.  srv->lock held.  The
 * watcher's once a second too, for a signal missed.  (server.c)
 */
void server_turn_idle(struct server *srv);
/*
 * One of what server_stop() waits for is over: *count (srv->active or
 * srv->telling) goes down by one, and server_stop() is woken if that was
 * the last.  Returns whether the service is stopping.  (server_stop.c)
 */
bool server_stop_done(struct server *srv, _Atomic size_t *count);

/*
 * Note where the calling worker's stack ends, for the trim a stream does
 * before it starts (server_stream.c).  Call it first thing in a worker.
 */
void server_stack_init(void);

/*
 * Serve an SSE stream until it ends: write resp's head, then events as
 * they come.  The worker's thread sleeps in registry_wait() between
 * writes; the watcher wakes it if the connection hangs up.  Takes resp's
 * stream and buffers; resp->start says what to send first.
 * (server_stream.c)
 */
void server_stream(
    struct server *srv, FCGX_Request *req, struct api_response *resp);

#endif
