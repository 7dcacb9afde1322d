/*
 * fcgi_out: see fcgi_out.h.  Record layout from the FastCGI 1.0
 * specification: an 8-byte header (version, type, request id, content
 * length, padding length, reserved), the content, then padding up to a
 * multiple of 8 bytes, which is what libfcgi sends.
 */
#include "fcgi_out.h"

#include "metrics.h"
#include "util.h"

#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>

#define FCGI_OUT_VERSION 1
#define FCGI_OUT_END_REQUEST 3
#define FCGI_OUT_STDOUT 6
#define FCGI_OUT_REQUEST_COMPLETE 0
#define FCGI_OUT_HEADER_LEN 8
/*
 * iovecs gathered for one writev(): each record takes a header, one or
 * more pieces and maybe padding.  Small, because it lives on the stack of
 * a thread whose every touched page stays resident for a stream's life.
 */
#define FCGI_OUT_IOV 32
/* A record takes at least two iovecs (header, one piece). */
#define FCGI_OUT_RECORDS (FCGI_OUT_IOV / 2)

static const unsigned char fcgi_out_zeros[8];

void
fcgi_out_init(struct fcgi_out *o, int fd, unsigned request_id)
{
	o->fd = fd;
	o->request_id = (uint16_t)request_id;
	o->failed = false;
	o->timed_out = false;
	o->timeout_ms = 0;
	o->not_socket = false;
	o->deadline = NULL;
}

/* Padding that ends a record of len content bytes on 8 bytes. */
static size_t
fcgi_out_pad(size_t len)
{
	return (8 - len % 8) % 8;
}

/*
 * Record r's share of len bytes split in `records` records, off of them
 * already taken: even shares, the last takes the rest.
 */
static size_t
fcgi_out_share(size_t len, size_t records, size_t r, size_t off)
{
	return r + 1 < records ? len / records : len - off;
}

static void
fcgi_out_header(
    struct fcgi_out *o, unsigned char *h, int type, size_t len, size_t pad)
{
	h[0] = FCGI_OUT_VERSION;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(o->request_id >> 8);
	h[3] = (unsigned char)(o->request_id & 0xff);
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)(len & 0xff);
	h[6] = (unsigned char)pad;
	h[7] = 0;
}

/*
 * One write of v[0..n): with a timeout, never blocks past the send's
 * deadline.  A blocking writev() would not do: on a socket with
 * SO_SNDTIMEO the kernel restarts the timeout whenever a little room frees
 * up, so a client that reads a trickle keeps one call going for as long as
 * it likes.  So the write is made non-blocking (MSG_DONTWAIT) and the wait
 * for room is a poll() bounded by what is left of the deadline.  The
 * deadline (*deadline, 0 until then) is set when the send first has to
 * wait: until then its writes take no time to speak of, and a send that
 * never waits, nearly all of them, reads no clock.  Returns the bytes
 * written, or -1 with errno (ETIMEDOUT when the deadline passed).
 */
static ssize_t
fcgi_out_write_some(
    struct fcgi_out *o, struct iovec *v, int n, uint64_t *deadline)
{
	for (;;) {
		struct msghdr mh = {.msg_iov = v, .msg_iovlen = (size_t)n};
		struct pollfd pfd = {.fd = o->fd, .events = POLLOUT};
		uint64_t now, left;
		ssize_t w;
		int ready;

		if (o->timeout_ms == 0 || o->not_socket)
			return writev(o->fd, v, n);
		w = sendmsg(o->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			if (w < 0 && errno == ENOTSOCK) {
				o->not_socket =
				    true; /* a pipe: blocking writes */
				continue;
			}
			return w;
		}
		now = util_now_ms();
		if (*deadline == 0)
			*deadline = now + o->timeout_ms;
		if (now >= *deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		left = *deadline - now;
		/*
		 * Counted while it waits (beep_stream_writes_waiting): how
		 * many threads clients that read nothing hold now, which no
		 * other figure shows until their writes time out.
		 */
		metrics_write_waiting(true);
		ready = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		metrics_write_waiting(false);
		if (ready == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		/* Room, an error or EINTR: the next sendmsg() tells. */
	}
}

/* Write all n iovecs (v is consumed) by the deadline; returns 0 or -1. */
static int
fcgi_out_send(struct fcgi_out *o, struct iovec *v, int n)
{
	/* Set at its first wait; or the one the caller's sends share. */
	uint64_t own = 0, *deadline = o->deadline != NULL ? o->deadline : &own;

	while (n > 0) {
		ssize_t w = fcgi_out_write_some(o, v, n, deadline);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			o->failed = true;
			o->timed_out = w < 0 && errno == ETIMEDOUT;
			return -1;
		}
		while (n > 0 && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int
fcgi_out_writev(struct fcgi_out *o, const struct iovec *piece, size_t n)
{
	struct iovec v[FCGI_OUT_IOV];
	unsigned char head[FCGI_OUT_RECORDS][FCGI_OUT_HEADER_LEN];
	size_t i = 0, off = 0;
	int nv = 0, nrec = 0;

	if (o->failed)
		return -1;
	while (i < n) {
		size_t len = 0, pad;
		int h = nv;

		/* One record: a header, as many pieces as fit, padding. */
		nv++;
		while (i < n && len < FCGI_OUT_MAX_CONTENT &&
		    nv < FCGI_OUT_IOV - 1) {
			size_t take = piece[i].iov_len - off;

			if (take > FCGI_OUT_MAX_CONTENT - len)
				take = FCGI_OUT_MAX_CONTENT - len;
			if (take > 0) {
				v[nv].iov_base =
				    (char *)piece[i].iov_base + off;
				v[nv].iov_len = take;
				nv++;
				len += take;
				off += take;
			}
			if (off == piece[i].iov_len) {
				i++;
				off = 0;
			}
		}
		if (len == 0) {
			nv--; /* only empty pieces were left */
			break;
		}
		pad = fcgi_out_pad(len);
		fcgi_out_header(o, head[nrec], FCGI_OUT_STDOUT, len, pad);
		v[h].iov_base = head[nrec];
		v[h].iov_len = FCGI_OUT_HEADER_LEN;
		nrec++;
		if (pad > 0) {
			v[nv].iov_base = (void *)fcgi_out_zeros;
			v[nv].iov_len = pad;
			nv++;
		}
		/* Room for another record: header, a piece, padding. */
		if (nv > FCGI_OUT_IOV - 3 || nrec == FCGI_OUT_RECORDS) {
			if (fcgi_out_send(o, v, nv) < 0)
				return -1;
			nv = nrec = 0;
		}
	}
	return nv > 0 ? fcgi_out_send(o, v, nv) : 0;
}

int
fcgi_out_write(struct fcgi_out *o, const void *p, size_t len)
{
	struct iovec v = {.iov_base = (void *)p, .iov_len = len};

	return fcgi_out_writev(o, &v, 1);
}

/*
 * fcgi_out_write_split() of len bytes in `records` records (2 or more, at
 * most one byte each short of len), in one buffer: the records of a
 * keepalive comment fit in FCGI_OUT_SPLIT_SMALL bytes.  Its frame is a
 * sixth of the general case's: an idle stream writes keepalives, and the
 * pages its thread's stack reaches stay resident (server_stream.c).
 */
#define FCGI_OUT_SPLIT_SMALL 64

static int
fcgi_out_split_small(
    struct fcgi_out *o, const char *c, size_t len, size_t records)
{
	unsigned char rec[FCGI_OUT_SPLIT_SMALL];
	struct iovec v;
	size_t n = 0, off = 0;

	for (size_t r = 0; r < records; r++) {
		size_t take = fcgi_out_share(len, records, r, off);
		size_t pad = fcgi_out_pad(take);

		fcgi_out_header(o, rec + n, FCGI_OUT_STDOUT, take, pad);
		n += FCGI_OUT_HEADER_LEN;
		memcpy(rec + n, c + off, take);
		n += take;
		memset(rec + n, 0, pad);
		n += pad;
		off += take;
	}
	v.iov_base = rec;
	v.iov_len = n;
	return fcgi_out_send(o, &v, 1);
}

/* The general case, out of line: its arrays are not in the small one's. */
static int fcgi_out_split_iov(struct fcgi_out *o, const char *c, size_t len,
    size_t records) __attribute__((noinline));

static int
fcgi_out_split_iov(
    struct fcgi_out *o, const char *c, size_t len, size_t records)
{
	struct iovec v[FCGI_OUT_IOV];
	unsigned char head[FCGI_OUT_RECORDS][FCGI_OUT_HEADER_LEN];
	size_t off = 0;
	int nv = 0;

	for (size_t r = 0; r < records; r++) {
		size_t take = fcgi_out_share(len, records, r, off);
		size_t pad = fcgi_out_pad(take);

		fcgi_out_header(o, head[r], FCGI_OUT_STDOUT, take, pad);
		v[nv].iov_base = head[r];
		v[nv++].iov_len = FCGI_OUT_HEADER_LEN;
		v[nv].iov_base = (void *)(c + off);
		v[nv++].iov_len = take;
		if (pad > 0) {
			v[nv].iov_base = (void *)fcgi_out_zeros;
			v[nv++].iov_len = pad;
		}
		off += take;
	}
	return fcgi_out_send(o, v, nv);
}

int
fcgi_out_write_split(
    struct fcgi_out *o, const void *p, size_t len, size_t records)
{
	if (o->failed)
		return -1;
	if (records > FCGI_OUT_IOV / 3)
		records = FCGI_OUT_IOV / 3;
	if (records > len)
		records = len;
	if (records <= 1 || len > FCGI_OUT_MAX_CONTENT)
		return fcgi_out_write(o, p, len);
	/* Each record: a header, its share, at most 7 bytes of padding. */
	if (records * (FCGI_OUT_HEADER_LEN + 7) + len <= FCGI_OUT_SPLIT_SMALL)
		return fcgi_out_split_small(o, p, len, records);
	return fcgi_out_split_iov(o, p, len, records);
}

int
fcgi_out_end(struct fcgi_out *o)
{
	unsigned char rec[3 * FCGI_OUT_HEADER_LEN];
	struct iovec v = {.iov_base = rec, .iov_len = sizeof(rec)};

	if (o->failed)
		return -1;
	fcgi_out_header(o, rec, FCGI_OUT_STDOUT, 0, 0);
	fcgi_out_header(o, rec + 8, FCGI_OUT_END_REQUEST, 8, 0);
	/* appStatus (4 bytes, big-endian), protocolStatus, 3 reserved. */
	memset(rec + 16, 0, 8);
	rec[20] = FCGI_OUT_REQUEST_COMPLETE;
	return fcgi_out_send(o, &v, 1);
}
