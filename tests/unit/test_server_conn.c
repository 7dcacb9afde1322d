/*
 * Unit tests for server_conn_whole(): whether a FastCGI request has come
 * whole to a socket, so that libfcgi can read it without a deadline (a
 * wrong "whole" lets a peer hold a worker for ever).  Each case writes
 * records to one end of a real socket pair and looks at the other.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "filter.h"
#include "server_impl.h"

enum { BEGIN = 1, PARAMS = 4, STDIN = 5, GET_VALUES = 9 };

struct bytes {
	unsigned char b[20000];
	size_t n;
};

static void
rec(struct bytes *o, int type, unsigned id, const void *content, size_t len,
    unsigned pad, unsigned char pad_byte)
{
	unsigned char *h = o->b + o->n;

	assert_true(o->n + 8 + len + pad <= sizeof(o->b));
	h[0] = 1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = (unsigned char)pad;
	h[7] = 0;
	if (len > 0)
		memcpy(h + 8, content, len);
	memset(h + 8 + len, pad_byte, pad);
	o->n += 8 + len + pad;
}

/* BEGIN_REQUEST (responder, keep-conn) and the parameters, for id. */
static void
head(struct bytes *o, unsigned id)
{
	static const unsigned char begin[8] = {0, 1, 1};
	static const unsigned char params[] = "\016\004REQUEST_METHODPOST";

	rec(o, BEGIN, id, begin, sizeof(begin), 0, 0);
	rec(o, PARAMS, id, params, sizeof(params) - 1, 5, 0);
	rec(o, PARAMS, id, NULL, 0, 0, 0);
}

/* A whole request for id with body. */
static void
request(struct bytes *o, unsigned id, const char *body)
{
	head(o, id);
	rec(o, STDIN, id, body, strlen(body), 3, 0);
	rec(o, STDIN, id, NULL, 0, 0, 0);
}

/* server_conn_whole() of what is written to a fresh socket pair. */
static bool
whole_of(const unsigned char *p, size_t n, bool close_after)
{
	int fd[2];
	bool whole;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	if (n > 0)
		assert_int_equal(write(fd[1], p, n), (ssize_t)n);
	if (close_after)
		close(fd[1]);
	whole = server_conn_whole(fd[0]);
	close(fd[0]);
	if (!close_after)
		close(fd[1]);
	return whole;
}

static void
test_whole_request(void **state)
{
	struct bytes o = {.n = 0};

	(void)state;
	request(&o, 1, "{\"data\":\"x\"}");
	assert_true(whole_of(o.b, o.n, false));
	/* Every part of it short of its last byte is not whole. */
	for (size_t n = 0; n < o.n; n++)
		assert_false(whole_of(o.b, n, false));
	/* Nor with a body and no end. */
	o.n -= 8;
	assert_false(whole_of(o.b, o.n, false));
}

static void
test_whole_request_high_id(void **state)
{
	struct bytes o = {.n = 0};

	(void)state;
	request(&o, 0x1234, "");
	assert_true(whole_of(o.b, o.n, false));
}

static void
test_end_of_another_id(void **state)
{
	struct bytes o = {.n = 0};

	(void)state;
	/* libfcgi skips id 2's records and reads on for id 1's body. */
	head(&o, 1);
	rec(&o, STDIN, 2, NULL, 0, 0, 0);
	assert_false(whole_of(o.b, o.n, false));
	/* Id 1's own end then makes it whole. */
	rec(&o, STDIN, 1, NULL, 0, 0, 0);
	assert_true(whole_of(o.b, o.n, false));
}

static void
test_no_begin(void **state)
{
	struct bytes o = {.n = 0};

	(void)state;
	/* An end with no request: libfcgi waits for a BEGIN_REQUEST. */
	rec(&o, STDIN, 1, NULL, 0, 0, 0);
	assert_false(whole_of(o.b, o.n, false));
	/* A management record first (id 0): libfcgi answers and reads on. */
	o.n = 0;
	rec(&o, GET_VALUES, 0, NULL, 0, 0, 0);
	request(&o, 1, "");
	assert_false(whole_of(o.b, o.n, false));
}

static void
test_padding_is_skipped(void **state)
{
	static const unsigned char fake_end[8] = {1, STDIN, 0, 1, 0, 0, 0, 0};
	struct bytes o = {.n = 0};

	(void)state;
	/* A body record whose padding looks like the end record. */
	head(&o, 1);
	rec(&o, STDIN, 1, "ab", 2, 8, 0);
	memcpy(o.b + o.n - 8, fake_end, 8);
	assert_false(whole_of(o.b, o.n, false));
	/* And its content too. */
	o.n = 0;
	head(&o, 1);
	rec(&o, STDIN, 1, fake_end, sizeof(fake_end), 0, 0);
	assert_false(whole_of(o.b, o.n, false));
}

/*
 * libfcgi does not skip the padding of BEGIN_REQUEST or of the empty
 * FCGI_PARAMS record: it reads it as the next record.  A request whose
 * end comes only in the chain that skips it is not whole to libfcgi.
 */
static void
test_padding_libfcgi_reads(void **state)
{
	static const unsigned char begin[8] = {0, 1, 1};
	static const unsigned char params[] = "\016\004REQUEST_METHODPOST";
	struct bytes o = {.n = 0};

	(void)state;
	rec(&o, BEGIN, 1, begin, sizeof(begin), 8, 0);
	rec(&o, PARAMS, 1, params, sizeof(params) - 1, 0, 0);
	rec(&o, PARAMS, 1, NULL, 0, 0, 0);
	rec(&o, STDIN, 1, NULL, 0, 0, 0);
	assert_false(whole_of(o.b, o.n, false));
	o.n = 0;
	rec(&o, BEGIN, 1, begin, sizeof(begin), 0, 0);
	rec(&o, PARAMS, 1, params, sizeof(params) - 1, 0, 0);
	rec(&o, PARAMS, 1, NULL, 0, 8, 0);
	rec(&o, STDIN, 1, NULL, 0, 0, 0);
	assert_false(whole_of(o.b, o.n, false));
	/* Another id's empty PARAMS is skipped whole by libfcgi too. */
	o.n = 0;
	head(&o, 1);
	rec(&o, PARAMS, 2, NULL, 0, 8, 0);
	rec(&o, STDIN, 1, NULL, 0, 0, 0);
	assert_true(whole_of(o.b, o.n, false));
}

static void
test_past_the_peek(void **state)
{
	static char body[9000];
	struct bytes o = {.n = 0};

	(void)state;
	/* Its end beyond the first 8 KiB: counted as not whole. */
	memset(body, 'x', sizeof(body) - 1);
	head(&o, 1);
	rec(&o, STDIN, 1, body, 4500, 0, 0);
	rec(&o, STDIN, 1, body, 4500, 0, 0);
	rec(&o, STDIN, 1, NULL, 0, 0, 0);
	assert_false(whole_of(o.b, o.n, false));
}

static void
test_nothing_and_end_of_file(void **state)
{
	struct bytes o = {.n = 0};

	(void)state;
	/* Nothing yet: a read would block. */
	assert_false(whole_of(NULL, 0, false));
	/* The front closed: a read returns at once. */
	assert_true(whole_of(NULL, 0, true));
	/*
	 * Part of a request, then closed: not whole by the look (a deadline
	 * is armed, which the read, seeing the end, never needs).
	 */
	head(&o, 1);
	assert_false(whole_of(o.b, o.n, true));
}

struct finish_case {
	int fd;
	int accepted;
	bool done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* The worker's sequence for one request: accept, answer, finish. */
static void *
finish_worker(void *arg)
{
	struct finish_case *c = arg;
	FCGX_Request req;

	FCGX_InitRequest(&req, -1, 0);
	req.ipcFd = c->fd;
	req.keepConnection = 1;
	c->accepted = server_conn_accept(&req);
	if (c->accepted == 0) {
		FCGX_PutS("Status: 200 OK\r\n\r\n", req.out);
		server_conn_finish(&req);
	}
	if (req.ipcFd >= 0)
		close(req.ipcFd);
	FCGX_Free(&req, 0);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/*
 * A kept connection whose answer cannot be written (the peer has shut its
 * reading side: EPIPE) closes; libfcgi's close would then read until the
 * peer had been silent for LIBFCGI_OS_CLOSE_POLL_TIMEOUT (a minute here,
 * set in main()), which a peer that went on sending would make for ever.
 * Given up on, it reads what has come (a record after the request) and
 * closes at once.  A hang guard of 30 s fails the test rather than
 * waiting the minute.
 */
static void
test_finish_after_failed_answer(void **state)
{
	struct finish_case c = {.lock = PTHREAD_MUTEX_INITIALIZER,
	    .cond = PTHREAD_COND_INITIALIZER};
	struct bytes o = {.n = 0};
	struct timespec guard;
	pthread_t tid;
	int fd[2], rc = 0;

	(void)state;
	request(&o, 1, "{}");
	rec(&o, STDIN, 2, "more", 4, 4, 0); /* another id's: skipped */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	assert_int_equal(write(fd[1], o.b, o.n), (ssize_t)o.n);
	assert_int_equal(shutdown(fd[1], SHUT_RD), 0);
	c.fd = fd[0];
	assert_int_equal(pthread_create(&tid, NULL, finish_worker, &c), 0);
	clock_gettime(CLOCK_REALTIME, &guard);
	guard.tv_sec += 30;
	pthread_mutex_lock(&c.lock);
	while (!c.done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&c.cond, &c.lock, &guard);
	pthread_mutex_unlock(&c.lock);
	/* Unstick libfcgi, if it waits, so that the test can end. */
	if (!c.done)
		close(fd[1]);
	assert_int_equal(pthread_join(tid, NULL), 0);
	assert_int_equal(c.accepted, 0);
	assert_true(rc != ETIMEDOUT);
	if (c.done && rc != ETIMEDOUT)
		close(fd[1]);
}

/* server_frame_feed() of o, whole and then a byte at a time. */
static bool
frame_of(const struct bytes *o)
{
	struct server_frame f = {0};
	bool whole = server_frame_feed(&f, o->b, o->n);

	f = (struct server_frame){0};
	for (size_t i = 0; i < o->n; i++)
		if (!server_frame_feed(&f, o->b + i, 1)) {
			assert_false(whole);
			return false;
		}
	assert_true(whole);
	return true;
}

/*
 * Whether the walk of the first n bytes of o, read at once and then a
 * byte at a time, finds the request whole (server_judge()'s rule): the
 * same either way.
 */
static bool
judged_whole(const struct bytes *o, size_t n)
{
	struct server_frame f = {0};
	bool whole =
	    server_frame_feed(&f, o->b, n) && f.at == SERVER_FRAME_WHOLE;

	f = (struct server_frame){0};
	for (size_t i = 0; i < n; i++)
		if (!server_frame_feed(&f, o->b + i, 1))
			break;
	assert_int_equal(whole, f.at == SERVER_FRAME_WHOLE);
	return whole;
}

/*
 * What libfcgi's first read of a request brings is judged by the walk as
 * server_conn_whole() would judge the same bytes queued: a wrong "whole"
 * there lets a peer hold a worker for ever with no deadline.
 */
static void
test_frame_whole(void **state)
{
	static const unsigned char begin[8] = {0, 1, 1};
	struct bytes o = {.n = 0};

	(void)state;
	request(&o, 1, "{\"data\":\"x\"}");
	assert_true(judged_whole(&o, o.n));
	assert_true(whole_of(o.b, o.n, false));
	for (size_t n = 0; n < o.n; n++) {
		assert_false(judged_whole(&o, n));
		assert_false(whole_of(o.b, n, false));
	}
	/* Another id's end is not this request's; a high id's is. */
	o.n = 0;
	head(&o, 1);
	rec(&o, STDIN, 2, NULL, 0, 0, 0);
	assert_false(judged_whole(&o, o.n));
	rec(&o, STDIN, 1, NULL, 0, 0, 0);
	assert_true(judged_whole(&o, o.n));
	o.n = 0;
	request(&o, 0x1234, "");
	assert_true(judged_whole(&o, o.n));
	/* No BEGIN_REQUEST first: never whole. */
	o.n = 0;
	rec(&o, GET_VALUES, 0, NULL, 0, 0, 0);
	request(&o, 1, "");
	assert_false(judged_whole(&o, o.n));
	assert_false(whole_of(o.b, o.n, false));
	/* An end in a body's padding, or its content, is not one. */
	o.n = 0;
	head(&o, 1);
	rec(&o, STDIN, 1, "ab", 2, 8, 0);
	memcpy(o.b + o.n - 8, (unsigned char[8]){1, STDIN, 0, 1}, 8);
	assert_false(judged_whole(&o, o.n));
	/* Padding libfcgi reads as a header: refused, so never whole. */
	o.n = 0;
	rec(&o, BEGIN, 1, begin, sizeof(begin), 8, 0);
	rec(&o, PARAMS, 1, NULL, 0, 0, 0);
	rec(&o, STDIN, 1, NULL, 0, 0, 0);
	assert_false(judged_whole(&o, o.n));
}

/*
 * The rest of a request of which a first read took a part: whole once
 * all of it is queued, not before; a connection that ends is too (no
 * read blocks).
 */
static void
test_whole_after(void **state)
{
	struct bytes o = {.n = 0};
	unsigned char b[8192];

	(void)state;
	request(&o, 1, "{\"data\":\"x\"}");
	for (size_t cut = 1; cut < o.n; cut += 7) {
		struct server_frame f = {0};
		int fd[2];

		assert_true(server_frame_feed(&f, o.b, cut));
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
		/* Nothing more yet, then all but its last byte: not whole. */
		assert_false(server_conn_whole_after(fd[0], b, sizeof(b), &f));
		assert_int_equal(write(fd[1], o.b + cut, o.n - cut - 1),
		    (ssize_t)(o.n - cut - 1));
		assert_false(server_conn_whole_after(fd[0], b, sizeof(b), &f));
		/* The last byte: whole; the walk so far is left as it was. */
		assert_int_equal(write(fd[1], o.b + o.n - 1, 1), 1);
		assert_true(server_conn_whole_after(fd[0], b, sizeof(b), &f));
		assert_true(f.at != SERVER_FRAME_WHOLE);
		close(fd[1]);
		close(fd[0]);
	}
	/* The front closed after a part: whole by the look's rule. */
	{
		struct server_frame f = {0};
		int fd[2];

		assert_true(server_frame_feed(&f, o.b, 20));
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
		close(fd[1]);
		assert_true(server_conn_whole_after(fd[0], b, sizeof(b), &f));
		close(fd[0]);
	}
}

/*
 * Whether what is queued after the first cut bytes of o (written to a
 * fresh socket pair, the walk fed with the cut) completes the request.
 */
static bool
whole_after_of(const struct bytes *o, size_t cut, size_t upto)
{
	struct server_frame f = {0};
	unsigned char b[8192];
	int fd[2];
	bool whole;

	assert_true(server_frame_feed(&f, o->b, cut));
	assert_true(f.at != SERVER_FRAME_WHOLE);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	assert_int_equal(
	    write(fd[1], o->b + cut, upto - cut), (ssize_t)(upto - cut));
	whole = server_conn_whole_after(fd[0], b, sizeof(b), &f);
	close(fd[1]);
	close(fd[0]);
	return whole;
}

/*
 * At the descriptor limit the rest of a request judged on its first read
 * is awaited until it is whole, and then read with no deadline: the end
 * of another id multiplexed with it (its BEGIN_REQUEST before it) is not
 * its end, wherever the first read stopped (in a header, in a record);
 * a "whole" there would read on for ever.  Its own end is; and so is the
 * header of a record libfcgi is refused (a BEGIN_REQUEST with padding)
 * once all of it has come: the read that brings it fails, none blocks.
 */
static void
test_whole_after_not_its_end(void **state)
{
	static const unsigned char begin[8] = {0, 1, 1};
	struct bytes o = {.n = 0};
	size_t other_end;

	(void)state;
	head(&o, 1);
	rec(&o, BEGIN, 2, begin, sizeof(begin), 0, 0);
	rec(&o, STDIN, 2, "ab", 2, 6, 0);
	rec(&o, STDIN, 2, NULL, 0, 0, 0);
	other_end = o.n;
	rec(&o, STDIN, 1, NULL, 0, 0, 0);
	for (size_t cut = 1; cut < other_end; cut++) {
		assert_false(whole_after_of(&o, cut, other_end));
		assert_true(whole_after_of(&o, cut, o.n));
	}
	o.n = 0;
	head(&o, 1);
	other_end = o.n;
	rec(&o, BEGIN, 2, begin, sizeof(begin), 8, 0);
	for (size_t cut = 1; cut < other_end; cut++) {
		assert_false(whole_after_of(&o, cut, other_end + 7));
		assert_true(whole_after_of(&o, cut, other_end + 8));
	}
}

/* An FCGI_GET_VALUES naming FCGI_MAX_CONNS n times (empty values). */
static void
get_values(struct bytes *o, unsigned id, int n)
{
	unsigned char c[16 * 8];

	assert_true(n * 16 <= (int)sizeof(c));
	for (int i = 0; i < n; i++) {
		c[16 * i] = 14;
		c[16 * i + 1] = 0;
		memcpy(c + 16 * i + 2, "FCGI_MAX_CONNS", 14);
	}
	rec(o, GET_VALUES, id, c, (size_t)n * 16, 0, 0);
}

static void
test_frame_requests(void **state)
{
	struct bytes o = {.n = 0};

	(void)state;
	/* Requests (padded content), of other ids too, one after another. */
	request(&o, 1, "{\"data\":\"x\"}");
	request(&o, 2, "");
	rec(&o, STDIN, 7, "xy", 2, 6, 0xff);
	request(&o, 1, "data=hello");
	assert_true(frame_of(&o));
	/* A header split over reads. */
	o.n = 0;
	rec(&o, STDIN, 1, "abc", 3, 5, 0);
	assert_true(frame_of(&o));
}

static void
test_frame_get_values(void **state)
{
	static const unsigned char zeros[64];
	struct bytes o = {.n = 0};

	(void)state;
	/* Three names (libfcgi answers them in its 64 bytes): read. */
	get_values(&o, 0, 3);
	request(&o, 1, "");
	assert_true(frame_of(&o));
	/* Four overflow its answer: refused, before or inside a request. */
	o.n = 0;
	get_values(&o, 0, 4);
	assert_false(frame_of(&o));
	o.n = 0;
	head(&o, 1);
	get_values(&o, 0, 4);
	assert_false(frame_of(&o));
	/* 59 bytes cannot name four; 60 can. */
	o.n = 0;
	rec(&o, GET_VALUES, 0, zeros, 59, 5, 0);
	assert_true(frame_of(&o));
	o.n = 0;
	rec(&o, GET_VALUES, 0, zeros, 60, 4, 0);
	assert_false(frame_of(&o));
	/* Not a management record (an id): skipped by libfcgi, read. */
	o.n = 0;
	get_values(&o, 3, 4);
	assert_true(frame_of(&o));
	/* Nor the bytes of one inside a body. */
	{
		struct bytes inner = {.n = 0};

		get_values(&inner, 0, 4);
		o.n = 0;
		rec(&o, STDIN, 1, inner.b, inner.n, 0, 0);
		assert_true(frame_of(&o));
	}
}

static void
test_frame_padding_libfcgi_reads(void **state)
{
	static const unsigned char begin[8] = {0, 1, 1};
	struct bytes o = {.n = 0};

	(void)state;
	/*
	 * libfcgi reads these records' padding as a header: a record hidden
	 * there would not be followed, so they are refused.
	 */
	rec(&o, BEGIN, 1, begin, sizeof(begin), 8, 0);
	assert_false(frame_of(&o));
	o.n = 0;
	rec(&o, BEGIN, 1, begin, sizeof(begin), 0, 0);
	rec(&o, PARAMS, 1, NULL, 0, 8, 0);
	assert_false(frame_of(&o));
	/* Padding after content is skipped by libfcgi too: read. */
	o.n = 0;
	rec(&o, BEGIN, 1, begin, sizeof(begin), 0, 0);
	rec(&o, PARAMS, 1, "\001\001ab", 4, 4, 0);
	rec(&o, PARAMS, 1, NULL, 0, 0, 0);
	assert_true(frame_of(&o));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_whole_request),
	    cmocka_unit_test(test_whole_request_high_id),
	    cmocka_unit_test(test_end_of_another_id),
	    cmocka_unit_test(test_no_begin),
	    cmocka_unit_test(test_padding_is_skipped),
	    cmocka_unit_test(test_padding_libfcgi_reads),
	    cmocka_unit_test(test_past_the_peek),
	    cmocka_unit_test(test_nothing_and_end_of_file),
	    cmocka_unit_test(test_finish_after_failed_answer),
	    cmocka_unit_test(test_frame_requests),
	    cmocka_unit_test(test_frame_get_values),
	    cmocka_unit_test(test_frame_padding_libfcgi_reads),
	    cmocka_unit_test(test_frame_whole),
	    cmocka_unit_test(test_whole_after),
	    cmocka_unit_test(test_whole_after_not_its_end),
	};

	/* As main() does; libfcgi reads its close-wait from the environment. */
	setenv("LIBFCGI_OS_CLOSE_POLL_TIMEOUT", "60000", 1);
	if (FCGX_Init() != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
