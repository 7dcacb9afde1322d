/*
 * listener: see listener.h.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LOG_MODULE "listener"

/* Pending connections the kernel queues for us. */
#define LISTENER_BACKLOG 1024
/* The first fd systemd passes with socket activation (sd_listen_fds). */
#define LISTENER_FDS_START 3

struct listener {
	int fd;
	bool owned;      /* made by us, not inherited */
	char *unix_path; /* a unix socket we created, removed on stop */
	dev_t unix_dev;  /* its file, so that stop removes only ours */
	ino_t unix_ino;
	char address[512];
};

/*
 * Whether spec (not "") has a shape listener_open() can take: unix:PATH
 * with a path that fits a sockaddr_un, or HOST:PORT (HOST empty for every
 * interface, or [IPv6]) with a port from 0 (one the kernel chooses: the
 * unit tests' free port) to 65535.  getaddrinfo() takes any number as a
 * port and keeps its low 16 bits: 127.0.0.1:99999 once listened on 34463,
 * and :65536 on a port the kernel chose, while the log said "ready on
 * 127.0.0.1:99999".  0 or -1 after logging why.
 */
static int
listener_spec_ok(const char *spec)
{
	struct sockaddr_un sa;
	const char *colon, *port;
	unsigned long v = 0;

	if (strncmp(spec, "unix:", 5) == 0) {
		if (spec[5] == '\0') {
			log_error("--listen %s: expected unix:PATH", spec);
			return -1;
		}
		if (strlen(spec + 5) >= sizeof(sa.sun_path)) {
			log_error("unix socket path too long: %s", spec + 5);
			return -1;
		}
		return 0;
	}
	colon = strrchr(spec, ':');
	if (colon == NULL || colon[1] == '\0') {
		log_error("--listen %s: expected unix:PATH or HOST:PORT", spec);
		return -1;
	}
	for (port = colon + 1; *port >= '0' && *port <= '9' && v <= 65535;
	     port++)
		v = v * 10 + (unsigned long)(*port - '0');
	if (*port != '\0' || v > 65535) {
		log_error("--listen %s: the port must be a number from 0 to "
		          "65535",
		    spec);
		return -1;
	}
	return 0;
}

int
listener_check(const char *spec)
{
	return spec[0] == '\0' ? 0 : listener_spec_ok(spec);
}

static int
listener_unix(struct listener *l, const char *path, unsigned mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	strcpy(sa.sun_path, path);
	/*
	 * A socket left by a previous run would make bind() fail; but one a
	 * live process still serves is not ours to take.
	 */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 &&
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			log_error("%s: another process is serving this socket; "
			          "refusing to take it over",
			    path);
			return -1;
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_error("bind %s: %s", path, strerror(errno));
		goto fail;
	}
	if (chmod(path, mode) < 0) {
		log_error("chmod %s: %s", path, strerror(errno));
		goto fail_unlink;
	}
	if (listen(fd, LISTENER_BACKLOG) < 0) {
		log_error("listen %s: %s", path, strerror(errno));
		goto fail_unlink;
	}
	if (lstat(path, &st) < 0) {
		log_error("stat %s: %s", path, strerror(errno));
		goto fail_unlink;
	}
	l->unix_dev = st.st_dev;
	l->unix_ino = st.st_ino;
	l->unix_path = xstrdup(path);
	return fd;
fail_unlink:
	unlink(path);
fail:
	close(fd);
	return -1;
}

static int
listener_tcp(const char *spec)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	const char *colon = strrchr(spec, ':');
	char host[256];
	size_t hlen;
	int fd = -1, one = 1, rc;

	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		spec++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		log_error("--listen %s: host too long", spec);
		return -1;
	}
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &res);
	if (rc != 0) {
		log_error("--listen %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, LISTENER_BACKLOG) == 0)
			break;
		log_error("bind %s: %s", spec, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Whether fd is a listening stream socket. */
static bool
listener_is_listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

/*
 * The workers block in accept(): an inherited socket that comes
 * non-blocking (systemd's NonBlocking=yes, a supervisor's) would have
 * each of them spin on EAGAIN (test 84).  The flag is the socket's, shared
 * with whoever passed it, who does not accept on it.
 */
static int
listener_blocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 ||
	    ((flags & O_NONBLOCK) != 0 &&
	        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)) {
		log_error("inherited socket fd:%d: %s", fd, strerror(errno));
		return -1;
	}
	return fd;
}

/* The socket systemd passed (LISTEN_FDS), or fd 0 (spawn-fcgi). */
static int
listener_inherited(struct listener *l)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid != NULL && fds != NULL && atol(pid) == (long)getpid() &&
	    atoi(fds) >= 1 && listener_is_listening(LISTENER_FDS_START)) {
		snprintf(l->address, sizeof(l->address), "fd:%d (systemd)",
		    LISTENER_FDS_START);
		return listener_blocking(LISTENER_FDS_START);
	}
	if (listener_is_listening(0)) {
		snprintf(l->address, sizeof(l->address), "fd:0");
		return listener_blocking(0);
	}
	log_error("no --listen given and no inherited socket on fd 0 or "
	          "LISTEN_FDS (see --help)");
	return -1;
}

struct listener *
listener_open(const char *spec, unsigned socket_mode)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	if (spec[0] == '\0') {
		l->fd = listener_inherited(l);
	} else if (listener_spec_ok(spec) < 0) {
		l->fd = -1;
	} else {
		snprintf(l->address, sizeof(l->address), "%s", spec);
		if (strncmp(spec, "unix:", 5) == 0)
			l->fd = listener_unix(l, spec + 5, socket_mode);
		else
			l->fd = listener_tcp(spec);
		l->owned = true;
	}
	if (l->fd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

int
listener_fd(const struct listener *l)
{
	return l->fd;
}

bool
listener_owned(const struct listener *l)
{
	return l->owned;
}

const char *
listener_address(const struct listener *l)
{
	return l->address;
}

void
listener_stop(struct listener *l)
{
	struct stat st;

	if (!l->owned)
		return;
	/*
	 * The path first, and only while it is still the file made here:
	 * once the socket no longer answers, a new instance takes the path
	 * as stale and replaces it, and its file is not ours to remove
	 * (test_listener_unix_successor_kept).
	 */
	if (l->unix_path != NULL && lstat(l->unix_path, &st) == 0 &&
	    st.st_dev == l->unix_dev && st.st_ino == l->unix_ino)
		unlink(l->unix_path);
	shutdown(l->fd, SHUT_RDWR);
}

void
listener_close(struct listener *l)
{
	if (l == NULL)
		return;
	if (l->owned)
		close(l->fd);
	free(l->unix_path);
	free(l);
}
