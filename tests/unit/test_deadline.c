/*
 * Unit tests for deadline: timers on real socket pairs, a clock the test
 * drives, and a real thread blocked in read() that a deadline wakes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deadline.h"
#include "filter.h"

/* Whether the local end of a pair has been shut down for reading. */
static bool
shut(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

static void
pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void
test_deadline_fires_in_order(void **state)
{
	enum { N = 200 };
	struct deadline *d = deadline_new();
	struct deadline_timer *t[N];
	int sv[N][2];

	(void)state;
	assert_true(deadline_next(d) == DEADLINE_NONE);
	/* Times in a scrambled order: 1000 + (i * 37 % N). */
	for (int i = 0; i < N; i++) {
		pair(sv[i]);
		t[i] = deadline_timer_new(d);
		assert_int_equal(
		    deadline_arm(t[i], sv[i][0], 1000 + (uint64_t)(i * 37 % N)),
		    0);
	}
	assert_true(deadline_next(d) == 1000);
	/* Nothing before its time. */
	assert_true(deadline_run(d, 999) == 1000);
	for (int i = 0; i < N; i++)
		assert_false(shut(sv[i][0]));
	/* Half of them. */
	assert_true(deadline_run(d, 1000 + N / 2 - 1) == 1000 + N / 2);
	for (int i = 0; i < N; i++)
		assert_int_equal(shut(sv[i][0]), i * 37 % N < N / 2);
	/* Cancelling one that has not fired: it never fires. */
	for (int i = 0; i < N; i++)
		if (i * 37 % N == N - 1)
			assert_false(deadline_cancel(t[i]));
	assert_true(deadline_run(d, 1000 + N) == DEADLINE_NONE);
	for (int i = 0; i < N; i++) {
		bool last = i * 37 % N == N - 1;

		assert_int_equal(shut(sv[i][0]), !last);
		assert_int_equal(deadline_cancel(t[i]), !last);
		/* A second cancel: disarmed, nothing fired since. */
		assert_false(deadline_cancel(t[i]));
		deadline_timer_free(t[i]);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	deadline_free(d);
}

/* Re-arming moves a timer; the connection stays usable until its time. */
static void
test_deadline_rearm(void **state)
{
	struct deadline *d = deadline_new();
	struct deadline_timer *t = deadline_timer_new(d);
	int sv[2];
	char c;

	(void)state;
	pair(sv);
	assert_int_equal(deadline_arm(t, sv[0], 100), 0);
	assert_int_equal(deadline_arm(t, sv[0], 300), 0);
	assert_true(deadline_run(d, 200) == 300);
	assert_false(shut(sv[0]));
	/* Data still flows. */
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(read(sv[0], &c, 1), 1);
	assert_false(deadline_cancel(t));
	assert_true(deadline_run(d, 1000) == DEADLINE_NONE);
	assert_false(shut(sv[0]));
	/* Freeing an armed timer cancels it. */
	assert_int_equal(deadline_arm(t, sv[0], 2000), 0);
	deadline_timer_free(t);
	assert_true(deadline_next(d) == DEADLINE_NONE);
	close(sv[0]);
	close(sv[1]);
	deadline_free(d);
}

/*
 * The timer holds its own descriptor: the worker's may be closed (and its
 * number reused by another connection) before it cancels.
 */
static void
test_deadline_owns_its_descriptor(void **state)
{
	struct deadline *d = deadline_new();
	struct deadline_timer *t = deadline_timer_new(d);
	int a[2], b[2];

	(void)state;
	pair(a);
	assert_int_equal(deadline_arm(t, a[0], 10), 0);
	close(a[0]);
	pair(b); /* may well take a[0]'s number */
	deadline_run(d, 10);
	assert_false(shut(b[0]));
	/* It fired, on the connection it was armed on. */
	assert_true(deadline_cancel(t));
	deadline_timer_free(t);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	deadline_free(d);
}

struct reader {
	int fd;
	ssize_t n;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	char c;

	r->n = read(r->fd, &c, 1);
	return NULL;
}

/* A thread blocked in read() returns at the deadline. */
static void
test_deadline_wakes_a_blocked_read(void **state)
{
	struct deadline *d = deadline_new();
	struct deadline_timer *t = deadline_timer_new(d);
	struct reader r = {.n = -2};
	pthread_t tid;
	int sv[2];

	(void)state;
	pair(sv);
	r.fd = sv[0];
	assert_int_equal(pthread_create(&tid, NULL, reader_main, &r), 0);
	assert_int_equal(deadline_arm(t, sv[0], 5), 0);
	deadline_run(d, 5);
	assert_int_equal(pthread_join(tid, NULL), 0);
	assert_int_equal(r.n, 0);
	assert_true(deadline_cancel(t));
	/* Only reading was shut down: an answer can still be written. */
	assert_int_equal(write(sv[0], "y", 1), 1);
	deadline_timer_free(t);
	close(sv[0]);
	close(sv[1]);
	deadline_free(d);
}

/* Without a descriptor to spare, arming fails and leaves it disarmed. */
static void
test_deadline_bad_fd(void **state)
{
	struct deadline *d = deadline_new();
	struct deadline_timer *t = deadline_timer_new(d);

	(void)state;
	assert_int_equal(deadline_arm(t, -1, 10), -1);
	assert_true(deadline_next(d) == DEADLINE_NONE);
	assert_false(deadline_cancel(t));
	deadline_timer_free(t);
	deadline_free(d);
}

/*
 * deadline_pause() keeps the duplicate for deadline_rearm() (the same
 * connection's next request), which holds the connection open until
 * deadline_cancel(); a timer that fired keeps none.
 */
static void
test_deadline_pause_and_rearm(void **state)
{
	struct deadline *d = deadline_new();
	struct deadline_timer *t = deadline_timer_new(d);
	int a[2];
	char c;

	(void)state;
	/* Nothing kept yet: rearm refuses. */
	assert_int_equal(deadline_rearm(t, 10), -1);
	pair(a);
	assert_int_equal(deadline_arm(t, a[0], 10), 0);
	assert_false(deadline_pause(t));
	assert_true(deadline_next(d) == DEADLINE_NONE);
	/* Paused, nothing fires. */
	deadline_run(d, 100);
	assert_false(shut(a[0]));
	/* Armed again on the kept duplicate, with no fd given. */
	assert_int_equal(deadline_rearm(t, 200), 0);
	assert_true(deadline_next(d) == 200);
	/* Rearming an armed timer is refused (deadline_arm() cancels). */
	assert_int_equal(deadline_rearm(t, 300), -1);
	assert_false(deadline_pause(t));
	/* The kept duplicate holds the connection open after our close... */
	close(a[0]);
	assert_int_equal(recv(a[1], &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* ...until cancel closes it. */
	assert_false(deadline_cancel(t));
	assert_int_equal(recv(a[1], &c, 1, MSG_DONTWAIT), 0);
	assert_int_equal(deadline_rearm(t, 10), -1);
	close(a[1]);

	/* One that fired keeps no duplicate: the connection is done. */
	pair(a);
	assert_int_equal(deadline_arm(t, a[0], 10), 0);
	deadline_run(d, 10);
	assert_true(shut(a[0]));
	assert_true(deadline_pause(t));
	assert_int_equal(deadline_rearm(t, 20), -1);
	close(a[0]);
	close(a[1]);
	deadline_timer_free(t);
	deadline_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deadline_fires_in_order),
	    cmocka_unit_test(test_deadline_rearm),
	    cmocka_unit_test(test_deadline_owns_its_descriptor),
	    cmocka_unit_test(test_deadline_pause_and_rearm),
	    cmocka_unit_test(test_deadline_wakes_a_blocked_read),
	    cmocka_unit_test(test_deadline_bad_fd),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
