/*
 * server_watch: the watcher thread (see the DESIGN comment in server.c,
 * "Watcher"): hangups on the connections of open streams, what starting
 * streams leave to free, the read deadlines, and once a second the
 * registry's and the API's expiry, idle parked connections, and the log's
 * held-back lines.
 */
#include "server_impl.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "api.h"
#include "deadline.h"
#include "log.h"
#include "registry.h"
#include "util.h"

#define LOG_MODULE "server"

/* How often the watcher forgets devices whose grace period ended. */
#define SERVER_EXPIRE_INTERVAL_MS 1000

/*
 * Free what streams have left (struct server_garbage).  Returns whether
 * there was any.
 */
static bool
server_collect(struct server *srv)
{
	struct server_garbage *g, *next;
	uint64_t n;

	if (read(srv->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&srv->lock);
	g = srv->garbage;
	srv->garbage = NULL;
	pthread_mutex_unlock(&srv->lock);
	if (g == NULL)
		return false;
	for (; g != NULL; g = next) {
		next = g->next;
		FCGX_Free(&g->req, 0);
		buf_free(&g->headers);
		buf_free(&g->body);
		free(g);
	}
	return true;
}

/*
 * Give the kernel back the pages inside the arenas' free blocks.  The
 * buffers of requests that became streams (8 KiB in, 8 KiB out, ...) are
 * freed here while the streams' own entries, allocated around them, stay:
 * the holes they leave stay resident until a request reuses them, which
 * may be never (about 1 KiB per stream measured after 1,000 subscribes).
 * Called by the watcher at most once a tick, after it freed garbage.
 */
static void
server_release_free(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

void *
server_watcher(void *arg)
{
	struct server *srv = arg;
	struct epoll_event ev[64];
	uint64_t next_expire = 0;
	bool collected = false; /* garbage freed since the last trim */

	for (;;) {
		uint64_t now = util_now_ms(), until = next_expire;
		uint64_t dl = deadline_next(srv->deadlines);
		int n, wait_ms;

		if (dl < until)
			until = dl;
		wait_ms = until <= now ? 0 : (int)(until - now);
		if (wait_ms > SERVER_EXPIRE_INTERVAL_MS)
			wait_ms = SERVER_EXPIRE_INTERVAL_MS;
		n = epoll_wait(srv->epoll_fd, ev, 64, wait_ms);
		now = util_now_ms();
		/* Requests not read in time: their connections shut down. */
		deadline_run(srv->deadlines, now);

		/* The watcher also ends grace periods, once a second. */
		if (now >= next_expire) {
			registry_expire(srv->reg, now);
			api_expire(srv->api, now);
			server_conns_idle(srv, now);
			/* A worker for them, if a signal was missed. */
			pthread_mutex_lock(&srv->lock);
			server_turn_idle(srv);
			pthread_mutex_unlock(&srv->lock);
			if (collected)
				server_release_free();
			collected = false;
			/* What the log's limits held back since their last. */
			log_limit_sweep(now, false);
			next_expire = now + SERVER_EXPIRE_INTERVAL_MS;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == SERVER_WAKE_TAG)
				collected |= server_collect(srv);
			else {
				log_debug("stream %llu: its connection hung up "
				          "(events %#x)",
				    (unsigned long long)ev[i].data.u64,
				    ev[i].events);
				registry_hangup(srv->reg, ev[i].data.u64);
			}
		}
	}
}
