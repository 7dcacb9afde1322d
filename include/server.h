/*
 * server: the FastCGI edge.  Owns the listening socket, the worker
 * threads that accept and serve FastCGI connections with libfcgi, and the
 * watcher thread that notices departed clients; a stream's writer is
 * server_stream.c, the parameters' mapping server_params.c.  These
 * server*.c files are the only ones that include fcgiapp.h.
 */
#ifndef BEEP_SERVER_H
#define BEEP_SERVER_H

#include <stddef.h>

#include "config.h"
#include "registry.h"

/*
 * Worker stack size.  Streams need little; the deepest use is jansson's
 * recursive parser, dumper and destructor, which only ever see JSON whose
 * nesting was measured first (depth.h, --max-depth).  Only touched pages
 * cost memory.  Sanitizers need far more.  Here so that the unit tests run
 * the parsers of untrusted input on a stack of exactly this size.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SERVER_SANITIZED 1 /* clang says so this way */
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) ||           \
    defined(SERVER_SANITIZED)
#define SERVER_STACK_SIZE (1024 * 1024)
#else
#define SERVER_STACK_SIZE (128 * 1024)
#endif

struct server;

/*
 * Open the listening socket named by c->listen (or the inherited one) and
 * prepare to serve.  Returns NULL after logging why.  c and reg must
 * outlive the server.
 */
struct server *server_new(const struct config *c, struct registry *reg);

/* Start the watcher and the first workers.  Returns 0 or -1. */
int server_start(struct server *srv);

/*
 * Stop accepting, end every stream (each gets a final retry: field), and
 * wait until no request is in progress, and every connection closed at
 * its read deadline has been passed to the log, or timeout_ms passes.
 * Returns the number of requests still in progress.
 */
size_t server_stop(struct server *srv, unsigned timeout_ms);

/* A description of the listening socket, for logs. */
const char *server_address(const struct server *srv);

/*
 * libfcgi's reads (its OS_Read(), which main.c defines in its place, so
 * that libfcgi, calling it through its PLT, calls this): read(), and on
 * the connection whose request the calling worker serves, the records
 * read followed, so that one libfcgi cannot read safely is refused before
 * it does: -1 (EPROTO), and the connection closes.  (server_conn.c)
 */
int server_conn_read(int fd, char *buf, size_t len);

#endif
