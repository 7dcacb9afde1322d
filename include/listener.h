/*
 * listener: the FastCGI listening socket, made from --listen (unix:PATH or
 * HOST:PORT) or inherited: from systemd socket activation (LISTEN_FDS,
 * fd 3) or on fd 0 (spawn-fcgi, systemd StandardInput=socket).  An
 * inherited socket is shared with whoever passed it and outlives this
 * process, so it is never shut down or closed here.
 */
#ifndef BEEP_LISTENER_H
#define BEEP_LISTENER_H

#include <stdbool.h>

struct listener;

/*
 * Open the socket spec names ("" for the inherited one); a unix socket
 * gets socket_mode, and a stale one at its path is replaced.  Returns
 * NULL after logging why.
 */
struct listener *listener_open(const char *spec, unsigned socket_mode);

/*
 * Whether listener_open() could take spec, by its shape alone (for
 * --check-config): 0, or -1 after logging why.
 */
int listener_check(const char *spec);

int listener_fd(const struct listener *l);

/* Whether it was made here (not inherited). */
bool listener_owned(const struct listener *l);

/* A description, for logs: the spec, "fd:0" or "fd:3 (systemd)". */
const char *listener_address(const struct listener *l);

/*
 * Stop listening on a socket made here: shut it down (every accept()
 * returns an error) and remove a unix socket's path.  An inherited socket
 * is left as it is.
 */
void listener_stop(struct listener *l);

/* Close a socket made here and free l. */
void listener_close(struct listener *l);

#endif
