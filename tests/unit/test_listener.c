/*
 * Unit tests for listener: real sockets in a temp dir and on loopback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "filter.h"
#include "listener.h"

static bool
listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

static int
connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A unix socket: made with its mode, replacing a stale one; stop removes it. */
static void
test_listener_unix(void **state)
{
	char dir[] = "/tmp/beep-listener-XXXXXX", path[128], spec[160];
	struct listener *l, *again;
	struct stat st;
	int c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	l = listener_open(spec, 0640);
	assert_non_null(l);
	assert_true(listener_owned(l));
	assert_string_equal(listener_address(l), spec);
	assert_true(listening(listener_fd(l)));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	c = connect_unix(path);
	assert_true(c >= 0);
	close(c);
	/* A second one at the same path replaces the (now stale) first. */
	listener_close(l);
	again = listener_open(spec, 0600);
	assert_non_null(again);
	c = connect_unix(path);
	assert_true(c >= 0);
	close(c);
	/* Stop: the path is gone and connecting fails. */
	listener_stop(again);
	assert_int_equal(stat(path, &st), -1);
	assert_true(connect_unix(path) < 0);
	listener_close(again);
	rmdir(dir);
}

/*
 * A successor that took the path over (a new instance, started while
 * this one stops: once this one's socket no longer answers, the path is
 * stale to it) keeps it: stop removes only the socket file it made.
 */
static void
test_listener_unix_successor_kept(void **state)
{
	char dir[] = "/tmp/beep-listener-XXXXXX", path[128], spec[160];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct listener *l;
	struct stat st;
	int next, c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	l = listener_open(spec, 0600);
	assert_non_null(l);
	/* The successor replaces the file and listens on its own. */
	assert_int_equal(unlink(path), 0);
	next = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(next, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(next, 4), 0);
	listener_stop(l);
	assert_int_equal(stat(path, &st), 0);
	c = connect_unix(path);
	assert_true(c >= 0); /* the successor's socket is still reached */
	close(c);
	listener_close(l);
	close(next);
	unlink(path);
	rmdir(dir);
}

static void
test_listener_tcp(void **state)
{
	struct listener *l;

	(void)state;
	l = listener_open("127.0.0.1:0", 0660);
	assert_non_null(l);
	assert_true(listener_owned(l));
	assert_true(listening(listener_fd(l)));
	listener_close(l);
	l = listener_open("[::1]:0", 0660);
	if (l != NULL) /* no IPv6 on some hosts */
		listener_close(l);
}

static void
test_listener_bad_specs(void **state)
{
	static const char *bad[] = {
	    "127.0.0.1",  /* no port */
	    "127.0.0.1:", /* empty port */
	    "no.such.host.invalid:80",
	    "unix:/nonexistent-dir-beep/s.sock",
	    /*
	     * getaddrinfo() keeps a port's low 16 bits: these listened on
	     * 34463 and on a port the kernel chose.
	     */
	    "127.0.0.1:99999",
	    "127.0.0.1:65536",
	    "127.0.0.1:80x",
	    "unix:",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(listener_open(bad[i], 0660));
}

/* Inherited: fd 0 only when it is a listening socket, and never closed. */
static void
test_listener_inherited(void **state)
{
	int saved = dup(0), fd;
	struct listener *l;

	(void)state;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	/* fd 0 is not a listening socket here (a tty, a pipe, /dev/null). */
	if (!listening(0))
		assert_null(listener_open("", 0660));
	/* A TCP socket binds itself to a free port on listen(). */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(dup2(fd, 0), 0);
	l = listener_open("", 0660);
	assert_non_null(l);
	assert_false(listener_owned(l));
	assert_string_equal(listener_address(l), "fd:0");
	listener_stop(l);
	listener_close(l);
	/* Still open and listening: it belongs to whoever passed it. */
	assert_true(listening(0));
	dup2(saved, 0);
	close(saved);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_listener_unix),
	    cmocka_unit_test(test_listener_unix_successor_kept),
	    cmocka_unit_test(test_listener_tcp),
	    cmocka_unit_test(test_listener_bad_specs),
	    cmocka_unit_test(test_listener_inherited),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
