/*
 * A request that has come whole is read with no deadline
 * (server_conn_whole()): so whatever bytes a peer sends, when it says
 * "whole", libfcgi must serve that request, as the worker does, without
 * ever waiting for more.  The bytes are written to a socket pair whose
 * writing end stays open, as a peer's would; then, on the production
 * worker stack, the worker's sequence: server_conn_whole(), and if it
 * says whole, server_conn_accept(), the body read to its end (more than
 * any route reads) and server_conn_finish().  The oracle is libfcgi
 * itself, linked statically with its read() and poll() wrapped: a read
 * of the connection that finds nothing (the socket is non-blocking) or a
 * poll() of it that would wait (libfcgi's close waits for the peer so)
 * is a worker held by the peer, and fails the input.  libfcgi reads
 * through the binary's reader, as in production (main.c's OS_Read():
 * server_conn_read(), which walks the records and refuses those libfcgi
 * cannot read safely), so the walk is fuzzed with it.
 *
 * A kept connection's request taken from the parked ones is not looked
 * at first (mode bit 1, with bytes to read, as epoll found it readable):
 * what libfcgi's first read brings is judged (server_judge(), wrapped
 * here: one that judges it not whole fails the read, as one whose rest
 * never came), and a request judged whole on it must be served without
 * waiting too.
 *
 * Input: a mode byte, then the bytes the peer sends.  Mode bit 0 clear:
 * the rest as it is.  Set: the rest as records, each four bytes (t, i, l,
 * p) and then its content from what follows (zeros once that runs out):
 * type t & 0x0f; version 1, or (t >> 4) & 7 when t & 0x80; request id i;
 * content length l, or 64 * l when t & 0x40; padding p.  At most
 * CONN_MAX bytes are sent, and none of 0xBF or more (see below).
 */
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "server.h"
#include "server_impl.h"

/* Past server_conn_whole()'s 8 KiB look, and libfcgi's 8 KiB reads. */
#define CONN_MAX (24 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The connection's descriptor while libfcgi reads it; -1 otherwise. */
static int watched = -1;
/* What libfcgi waited in, had the descriptor been the worker's. */
static const char *waited;

ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_OS_Read(int fd, char *buf, size_t len);
bool __wrap_server_judge(struct server_conn *conn);

/*
 * server_judge(), called by the first read of a request judged so when
 * it brought part of it only: the read then fails, and no more is read.
 */
bool
__wrap_server_judge(struct server_conn *conn)
{
	(void)conn;
	return false;
}

/* libfcgi's OS_Read(), as main.c defines it for the binary. */
int
__wrap_OS_Read(int fd, char *buf, size_t len)
{
	return server_conn_read(fd, buf, len);
}

ssize_t
__wrap_read(int fd, void *buf, size_t n)
{
	ssize_t r = __real_read(fd, buf, n);

	if (r < 0 && errno == EAGAIN && fd == watched && waited == NULL)
		waited = "read";
	return r;
}

int
__wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	bool ours = false;
	int r;

	for (nfds_t i = 0; i < n; i++)
		ours |= fds[i].fd == watched;
	if (!ours)
		return __real_poll(fds, n, timeout);
	/* Nothing ready: its time would pass with the peer still there. */
	r = __real_poll(fds, n, 0);
	if (r == 0 && timeout != 0 && waited == NULL)
		waited = "poll";
	return r;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (FCGX_Init() != 0) /* as main() does */
		abort();
	return 0;
}

/* The bytes the peer sends, from the input (see the top). */
static size_t
conn_bytes(const uint8_t *data, size_t size, uint8_t *out)
{
	size_t n = 0;

	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		n = size - 1 < CONN_MAX ? size - 1 : CONN_MAX;
		memcpy(out, data + 1, n);
		return n;
	}
	data++, size--;
	while (size >= 4 && n + 8 <= CONN_MAX) {
		uint8_t t = data[0], i = data[1], l = data[2], p = data[3];
		size_t len = (t & 0x40) ? 64 * (size_t)l : l;
		size_t take;

		data += 4, size -= 4;
		out[n++] = (t & 0x80) ? (t >> 4) & 7 : 1;
		out[n++] = t & 0x0f;
		out[n++] = 0;
		out[n++] = i;
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
		out[n++] = p;
		out[n++] = 0;
		for (size_t k = 0; k < len + p && n < CONN_MAX; k++) {
			take = k < len && size > 0;
			out[n++] = take ? *data : 0;
			data += take, size -= take;
		}
	}
	return n;
}

struct conn_case {
	int fd;
	bool judge; /* judged at the first read, not looked at first */
	bool whole;
};

/* The worker's sequence, on its stack (server_serve()). */
static void
conn_serve(void *arg)
{
	struct conn_case *c = arg;
	/*
	 * The request inside its connection, as server_conn_new() makes it:
	 * server_conn_accept() and server_conn_read() reach the rest of it
	 * (the record walk's state, conn.frame) through the request
	 * (server_conn_of()).  A bare FCGX_Request here put that state past
	 * the variable, in whatever the stack held next (body[], which the
	 * reads below then overwrote), where ASan could not see it.
	 */
	struct server_conn conn = {0};
	FCGX_Request *req = &conn.req;
	char body[4096];

	c->whole = c->judge || server_conn_whole(c->fd);
	if (!c->whole)
		return;
	conn.judge = c->judge;
	FCGX_InitRequest(req, -1, 0);
	req->ipcFd = c->fd; /* as server_conn_new() */
	req->keepConnection = 1;
	watched = c->fd;
	if (server_conn_accept(req) == 0) {
		while (FCGX_GetStr(body, (int)sizeof(body), req->in) > 0)
			continue;
		server_conn_finish(req);
	}
	watched = -1;
	/* Not this connection's any more (a dangling pointer otherwise). */
	server_conn_reading(NULL);
	/* A kept connection: the next request is not this test's. */
	if (req->ipcFd >= 0)
		close(req->ipcFd);
	FCGX_Free(req, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t bytes[CONN_MAX];
	size_t n = conn_bytes(data, size, bytes);
	struct conn_case c;
	int fd[2];

	/*
	 * A name-value length of 2^30 or more (its first byte 0xBF or more)
	 * can overflow libfcgi 2.4.2's int arithmetic in ReadParams(), whose
	 * Malloc() then asserts: the crash the README names (a raw peer's,
	 * fixed in libfcgi 2.4.7), not ours to find again.
	 */
	for (size_t i = 0; i < n; i++)
		if (bytes[i] >= 0xbf)
			return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) != 0)
		abort();
	/* Room for the input, and for what libfcgi writes back. */
	setsockopt(fd[1], SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	setsockopt(fd[0], SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	if (n > 0 && write(fd[1], bytes, n) != (ssize_t)n)
		abort();
	/* A read that finds nothing fails, where the worker's would wait. */
	fcntl(fd[0], F_SETFL, fcntl(fd[0], F_GETFL) | O_NONBLOCK);
	c.fd = fd[0];
	c.judge = n > 0 && (data[0] & 2) != 0;
	waited = NULL;
	fuzz_on_worker_stack(conn_serve, &c);
	if (waited != NULL)
		fprintf(stderr, "whole, but libfcgi waited in %s()\n", waited);
	FUZZ_CHECK(waited == NULL);
	close(fd[1]);
	if (!c.whole)
		close(fd[0]);
	return 0;
}
