/*
 * fcgi_out: the rest of a FastCGI response written straight to its
 * connection, as FCGI_STDOUT records and a final FCGI_END_REQUEST, with no
 * buffer of its own.
 *
 * libfcgi holds a request's 8 KiB input and output buffers and its
 * parameters until the request finishes, which for an event stream is the
 * stream's whole life.  The server frees them once a stream's request has
 * been read, and writes the stream through this instead.  Each call is one
 * writev() of whole records, blocking until written, as libfcgi's writes
 * do.  Pure protocol framing: no libfcgi, HTTP or SSE here; a write that
 * waits for room is counted while it waits (metrics_write_waiting()).
 */
#ifndef BEEP_FCGI_OUT_H
#define BEEP_FCGI_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * The most content one record carries: the protocol's limit (65535)
 * rounded down to a multiple of 8, so that a full record needs no padding.
 */
#define FCGI_OUT_MAX_CONTENT 65528

/* A response being written; the caller owns it (a few bytes, no heap). */
struct fcgi_out {
	int fd;              /* the connection; not owned, never closed here */
	uint16_t request_id; /* FCGX_Request.requestId */
	bool failed;         /* a write failed: the connection is unusable */
	bool timed_out;      /* it failed because timeout_ms passed */
	/*
	 * With SO_SNDTIMEO on fd, a write that makes some progress restarts
	 * the timeout: a client reading a trickle could hold a write for ever.
	 * A send still unfinished this long after it first had to wait for
	 * room fails (0: no limit); the writes are then non-blocking, the
	 * waits poll()s bounded by what is left.
	 */
	unsigned timeout_ms;
	bool not_socket; /* fd is a pipe: writes block (no MSG_DONTWAIT) */
	/*
	 * NULL, or the deadline that the sends of several calls share (0
	 * until one first has to wait): a batch of events written in pieces
	 * as it is rendered is one send for timeout_ms, as when it was
	 * written whole.
	 */
	uint64_t *deadline;
};

/* Start writing request_id's response on fd. */
void fcgi_out_init(struct fcgi_out *o, int fd, unsigned request_id);

/*
 * Write the n pieces of content, in order, as FCGI_STDOUT records (as few
 * as FCGI_OUT_MAX_CONTENT allows; empty pieces are skipped), and return
 * once the kernel has them all.  Returns 0, or -1 once a write has failed;
 * after that every call fails at once.
 */
int fcgi_out_writev(struct fcgi_out *o, const struct iovec *piece, size_t n);

/* fcgi_out_writev() of one piece. */
int fcgi_out_write(struct fcgi_out *o, const void *p, size_t len);

/*
 * Write p[0..len) as `records` FCGI_STDOUT records of at least one byte
 * each (fewer when len is smaller; at most 16), in one writev().  The peer
 * reads the same bytes; a front that acts once per record (Caddy notices
 * that its client left only on its fourth record after) acts that many
 * times.  Returns 0 or -1, as fcgi_out_writev().
 */
int fcgi_out_write_split(
    struct fcgi_out *o, const void *p, size_t len, size_t records);

/*
 * End the response: an empty FCGI_STDOUT record (end of stream), then
 * FCGI_END_REQUEST (request complete, application status 0), as libfcgi
 * ends a request.  Returns 0 or -1.
 */
int fcgi_out_end(struct fcgi_out *o);

#endif
