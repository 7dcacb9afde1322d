/*
 * Unit tests for fcgi_out: what it writes to a real socket, decoded as a
 * FastCGI front would, record by record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fcgi_out.h"
#include "filter.h"
#include "metrics.h"
#include "util.h"

#define REQUEST_ID 0x1234
#define STDOUT_TYPE 6
#define END_REQUEST_TYPE 3

/* A socket pair whose far end a thread reads to EOF. */
struct peer {
	int fd[2];
	pthread_t reader;
	struct buf got;
	pthread_t interrupt; /* signal this thread before reading, or 0 */
};

/* The stream as decoded. */
struct decoded {
	size_t records;     /* FCGI_STDOUT records with content */
	size_t empty;       /* empty FCGI_STDOUT records (end of stream) */
	size_t ends;        /* FCGI_END_REQUEST records */
	size_t max_content; /* largest record content */
	struct buf content; /* FCGI_STDOUT content, concatenated */
};

static void *
peer_read(void *arg)
{
	struct peer *p = arg;
	ssize_t n;

	/* Interrupt a writer blocked on the full socket, a few times. */
	for (int i = 0; p->interrupt != 0 && i < 3; i++) {
		usleep(50000);
		pthread_kill(p->interrupt, SIGUSR2);
	}
	for (;;) {
		buf_reserve(&p->got, 65536);
		n = read(p->fd[1], p->got.data + p->got.len, 65536);
		if (n <= 0)
			break;
		p->got.len += (size_t)n;
	}
	return NULL;
}

static void
peer_open_interrupting(struct peer *p, pthread_t interrupt)
{
	memset(p, 0, sizeof(*p));
	p->interrupt = interrupt;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	assert_int_equal(pthread_create(&p->reader, NULL, peer_read, p), 0);
}

static void
peer_open(struct peer *p)
{
	peer_open_interrupting(p, 0);
}

/* Close our end, wait for the reader, decode what it got. */
static void
peer_close(struct peer *p, struct decoded *d)
{
	const unsigned char *s;
	size_t off = 0;

	close(p->fd[0]);
	pthread_join(p->reader, NULL);
	close(p->fd[1]);
	memset(d, 0, sizeof(*d));
	s = (const unsigned char *)p->got.data;
	while (off < p->got.len) {
		size_t len, pad;

		assert_true(p->got.len - off >= 8);
		assert_int_equal(s[off], 1);
		assert_int_equal((s[off + 2] << 8) | s[off + 3], REQUEST_ID);
		len = (size_t)(s[off + 4] << 8 | s[off + 5]);
		pad = s[off + 6];
		/* Padded to a multiple of 8, with zeros, as libfcgi does. */
		assert_int_equal((len + pad) % 8, 0);
		assert_true(p->got.len - off >= 8 + len + pad);
		for (size_t i = 0; i < pad; i++)
			assert_int_equal(s[off + 8 + len + i], 0);
		if (s[off + 1] == STDOUT_TYPE) {
			assert_int_equal(d->ends, 0);
			if (len == 0) {
				d->empty++;
			} else {
				assert_int_equal(d->empty, 0);
				d->records++;
				if (len > d->max_content)
					d->max_content = len;
				buf_append(&d->content, s + off + 8, len);
			}
		} else {
			assert_int_equal(s[off + 1], END_REQUEST_TYPE);
			assert_int_equal(len, 8);
			/* appStatus 0, FCGI_REQUEST_COMPLETE, reserved. */
			for (size_t i = 0; i < 8; i++)
				assert_int_equal(s[off + 8 + i], 0);
			d->ends++;
		}
		off += 8 + len + pad;
	}
	buf_free(&p->got);
}

static void
test_fcgi_out_small(void **state)
{
	struct fcgi_out o;
	struct peer p;
	struct decoded d;

	(void)state;
	peer_open(&p);
	fcgi_out_init(&o, p.fd[0], REQUEST_ID);
	assert_int_equal(fcgi_out_write(&o, "data: hi\n\n", 10), 0);
	peer_close(&p, &d);
	assert_int_equal(d.records, 1);
	assert_int_equal(d.content.len, 10);
	assert_memory_equal(d.content.data, "data: hi\n\n", 10);
	assert_int_equal(d.empty + d.ends, 0);
	buf_free(&d.content);
}

/* A split write: that many records, the same bytes. */
static void
test_fcgi_out_split(void **state)
{
	static const struct {
		const char *text;
		size_t records, want;
	} cases[] = {
	    {":\n\n", 3, 3},
	    {":\n\n", 1, 1},
	    {":\n\n", 0, 1},
	    {":\n\n", 5, 3}, /* one byte each at most */
	    {"data: a longer event\n\n", 3, 3},
	    {"x", 100, 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].text);
		struct fcgi_out o;
		struct peer p;
		struct decoded d;

		peer_open(&p);
		fcgi_out_init(&o, p.fd[0], REQUEST_ID);
		assert_int_equal(fcgi_out_write_split(
		                     &o, cases[i].text, len, cases[i].records),
		    0);
		peer_close(&p, &d);
		assert_int_equal(d.records, cases[i].want);
		assert_int_equal(d.content.len, len);
		assert_memory_equal(d.content.data, cases[i].text, len);
		buf_free(&d.content);
	}
}

/* Many pieces, some empty: in order, in few records. */
static void
test_fcgi_out_pieces(void **state)
{
	struct iovec v[100];
	char text[100][8];
	struct buf want = {0};
	struct fcgi_out o;
	struct peer p;
	struct decoded d;

	(void)state;
	for (size_t i = 0; i < 100; i++) {
		int n = snprintf(text[i], sizeof(text[i]), "%zu,", i);

		v[i].iov_base = text[i];
		v[i].iov_len = i % 10 == 3 ? 0 : (size_t)n;
		buf_append(&want, text[i], v[i].iov_len);
	}
	peer_open(&p);
	fcgi_out_init(&o, p.fd[0], REQUEST_ID);
	assert_int_equal(fcgi_out_writev(&o, v, 100), 0);
	assert_int_equal(fcgi_out_writev(&o, v + 3, 1), 0); /* empty only */
	assert_int_equal(fcgi_out_writev(&o, v, 0), 0);
	peer_close(&p, &d);
	assert_int_equal(d.content.len, want.len);
	assert_memory_equal(d.content.data, want.data, want.len);
	/* Pieces share records: at most one per 29 iovecs or so. */
	assert_in_range(d.records, 1, 8);
	buf_free(&want);
	buf_free(&d.content);
}

/* At the record limit, and past it: split, nothing lost. */
static void
test_fcgi_out_limit(void **state)
{
	static const size_t sizes[] = {FCGI_OUT_MAX_CONTENT,
	    FCGI_OUT_MAX_CONTENT + 1, 3 * FCGI_OUT_MAX_CONTENT + 5, 65535,
	    65536};
	static const size_t records[] = {1, 2, 4, 2, 2};

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		char *big = xmalloc(sizes[k]);
		struct fcgi_out o;
		struct peer p;
		struct decoded d;

		for (size_t i = 0; i < sizes[k]; i++)
			big[i] = (char)('a' + i % 26);
		peer_open(&p);
		fcgi_out_init(&o, p.fd[0], REQUEST_ID);
		assert_int_equal(fcgi_out_write(&o, big, sizes[k]), 0);
		peer_close(&p, &d);
		assert_int_equal(d.records, records[k]);
		assert_int_equal(d.max_content, FCGI_OUT_MAX_CONTENT);
		assert_int_equal(d.content.len, sizes[k]);
		assert_memory_equal(d.content.data, big, sizes[k]);
		buf_free(&d.content);
		free(big);
	}
}

static void
on_sigusr2(int sig)
{
	(void)sig;
}

/*
 * Short writes: a signal interrupts writev() blocked on a full socket,
 * which then returns part-way through an iovec (or fails with EINTR when
 * it wrote nothing); the rest must follow, in order.
 */
static void
test_fcgi_out_short_writes(void **state)
{
	struct sigaction sa = {.sa_handler = on_sigusr2}; /* no SA_RESTART */
	int sndbuf = 10000; /* a full socket long before a record's end */
	size_t len = 1 << 20;
	char *big = xmalloc(len);
	struct iovec v[3];
	struct fcgi_out o;
	struct peer p;
	struct decoded d;

	(void)state;
	sigaction(SIGUSR2, &sa, NULL);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + i % 23);
	peer_open_interrupting(&p, pthread_self());
	assert_int_equal(
	    setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)),
	    0);
	fcgi_out_init(&o, p.fd[0], REQUEST_ID);
	v[0] = (struct iovec){big, 1000};
	v[1] = (struct iovec){big + 1000, len - 2000};
	v[2] = (struct iovec){big + len - 1000, 1000};
	assert_int_equal(fcgi_out_writev(&o, v, 3), 0);
	assert_int_equal(fcgi_out_end(&o), 0);
	peer_close(&p, &d);
	assert_int_equal(d.content.len, len);
	assert_memory_equal(d.content.data, big, len);
	assert_int_equal(d.ends, 1);
	buf_free(&d.content);
	free(big);
}

/* The end: an empty FCGI_STDOUT record, then FCGI_END_REQUEST. */
static void
test_fcgi_out_end(void **state)
{
	struct fcgi_out o;
	struct peer p;
	struct decoded d;

	(void)state;
	peer_open(&p);
	fcgi_out_init(&o, p.fd[0], REQUEST_ID);
	assert_int_equal(fcgi_out_write(&o, "x", 1), 0);
	assert_int_equal(fcgi_out_end(&o), 0);
	peer_close(&p, &d);
	assert_int_equal(d.records, 1);
	assert_int_equal(d.empty, 1);
	assert_int_equal(d.ends, 1);
	buf_free(&d.content);
}

/* A connection that has gone: -1, then -1 at once ever after. */
static void
test_fcgi_out_failed(void **state)
{
	struct fcgi_out o;
	struct peer p;
	struct decoded d;
	int fd[2];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	close(fd[1]);
	fcgi_out_init(&o, fd[0], REQUEST_ID);
	assert_false(o.failed);
	assert_int_equal(fcgi_out_write(&o, "x", 1), -1);
	assert_true(o.failed);
	close(fd[0]);
	/* Even on a sound socket, a failed response writes nothing more. */
	peer_open(&p);
	o.fd = p.fd[0];
	assert_int_equal(fcgi_out_write(&o, "x", 1), -1);
	assert_int_equal(fcgi_out_end(&o), -1);
	peer_close(&p, &d);
	assert_int_equal(d.records + d.empty + d.ends, 0);
	buf_free(&d.content);
}

/* A reader that takes 64 bytes per millisecond until the socket closes. */
struct trickle {
	int fd;
	size_t got;
};

static void *
trickle_reader(void *arg)
{
	struct trickle *t = arg;
	char c[64];
	ssize_t r;

	while ((r = read(t->fd, c, sizeof(c))) > 0) {
		t->got += (size_t)r;
		usleep(1000);
	}
	return NULL;
}

/*
 * A client that reads a trickle cannot hold a write past timeout_ms,
 * although every SO_SNDTIMEO wait sees progress (the kernel restarts that
 * timeout whenever room frees up): 1 MiB at at most 64 kB/s keeps a plain
 * blocking writev() going for 16 s or more, and it then succeeds.
 */
static void
test_fcgi_out_trickle_deadline(void **state)
{
	struct timeval tv = {.tv_sec = 5};
	struct trickle t = {0};
	struct fcgi_out o;
	size_t len = 1 << 20;
	char *big = calloc(1, len);
	pthread_t th;
	int fd[2], small = 4096;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	assert_non_null(big);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	assert_int_equal(
	    setsockopt(fd[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(
	    setsockopt(fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	t.fd = fd[1];
	assert_int_equal(pthread_create(&th, NULL, trickle_reader, &t), 0);
	fcgi_out_init(&o, fd[0], REQUEST_ID);
	o.timeout_ms = 300;
	assert_int_equal(fcgi_out_write(&o, big, len), -1);
	assert_true(o.failed);
	close(fd[0]);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(t.got > 0); /* it was reading: not an idle timeout */
	assert_true(t.got < len);
	close(fd[1]);
	free(big);
}

/* beep_stream_writes_waiting as /metrics shows it now. */
static long
writes_waiting(void)
{
	static const char name[] = "\nbeep_stream_writes_waiting ";
	struct metrics_gauges g = {0};
	struct buf out = {0};
	const char *at;
	long n = -1;

	metrics_render(&out, &g);
	buf_append(&out, "", 1);
	at = strstr(out.data, name);
	if (at != NULL)
		n = strtol(at + sizeof(name) - 1, NULL, 10);
	buf_free(&out);
	return n;
}

/* A write of 1 MiB to a socket that is not read, in a thread. */
struct stalled {
	struct fcgi_out o;
	char *big;
	size_t len;
	int rc;
};

static void *
stalled_write(void *arg)
{
	struct stalled *w = arg;

	w->rc = fcgi_out_write(&w->o, w->big, w->len);
	return NULL;
}

/*
 * beep_stream_writes_waiting counts a write while it waits for room in
 * its connection (a client not reading holds its thread there), and no
 * longer once room came and it ended, or once its deadline passed: the
 * observable test 121 waits for before its client shuts its side.
 */
static void
test_fcgi_out_waiting_gauge(void **state)
{
	struct stalled w = {.len = 1 << 20};
	int fd[2], small = 4096;
	pthread_t th;
	char c[65536];
	size_t got = 0;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	metrics_reset();
	assert_int_equal(writes_waiting(), 0);
	w.big = calloc(1, w.len);
	assert_non_null(w.big);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	assert_int_equal(
	    setsockopt(fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	fcgi_out_init(&w.o, fd[0], REQUEST_ID);
	w.o.timeout_ms = 600000;
	assert_int_equal(pthread_create(&th, NULL, stalled_write, &w), 0);
	/*
	 * Nothing reads: the write comes to wait, and stays counted (the
	 * bound only ends a broken build's wait: it waits for ever).
	 */
	for (int i = 0; i < 10000 && writes_waiting() != 1; i++)
		usleep(1000);
	assert_int_equal(writes_waiting(), 1);
	/* Room: it goes on to its end, no longer counted. */
	while (got < w.len) {
		ssize_t r = read(fd[1], c, sizeof(c));

		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, 0);
	assert_int_equal(writes_waiting(), 0);
	/* A wait its deadline ends is no longer counted either. */
	w.o.timeout_ms = 50;
	assert_int_equal(fcgi_out_write(&w.o, w.big, w.len), -1);
	assert_true(w.o.timed_out);
	assert_int_equal(writes_waiting(), 0);
	close(fd[0]);
	close(fd[1]);
	free(w.big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fcgi_out_small),
	    cmocka_unit_test(test_fcgi_out_split),
	    cmocka_unit_test(test_fcgi_out_pieces),
	    cmocka_unit_test(test_fcgi_out_limit),
	    cmocka_unit_test(test_fcgi_out_short_writes),
	    cmocka_unit_test(test_fcgi_out_end),
	    cmocka_unit_test(test_fcgi_out_failed),
	    cmocka_unit_test(test_fcgi_out_trickle_deadline),
	    cmocka_unit_test(test_fcgi_out_waiting_gauge),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
