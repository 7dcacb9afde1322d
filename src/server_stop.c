/*
 * server_stop: the service's stop (see the DESIGN comment in server.c,
 * "Shutdown"), and the worker's side of what it waits for
 * (server_stop_done()): the requests in progress and the closes at a read
 * deadline not yet logged.
 */
#include "server_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "listener.h"
#include "log.h"
#include "registry.h"

#define LOG_MODULE "server"

/* How often server_stop() interrupts workers still in accept(). */
#define SERVER_STOP_SIGNAL_MS 10
/* How long server_stop() tries before it lets idle workers be. */
#define SERVER_STOP_SIGNAL_TRIES 50

/*
 * One of what server_stop() waits for is over: *count (srv->active or
 * srv->telling) goes down by one, and server_stop() is woken if that was
 * the last and it waits.  Returns whether the service is stopping.
 * Without srv->lock (two lock pairs a request fewer): the decrement and
 * server_stop()'s store of stopping are sequentially consistent, and
 * each is followed by a load of the other's variable, so either this
 * worker sees stopping (and broadcasts, under the lock, which
 * server_stop() holds from its look at the counts to its wait) or
 * server_stop() sees the count's new value.
 */
bool
server_stop_done(struct server *srv, _Atomic size_t *count)
{
	bool last = atomic_fetch_sub(count, 1) == 1;
	bool stop = atomic_load(&srv->stopping);

	if (last && stop) {
		pthread_mutex_lock(&srv->lock);
		pthread_cond_broadcast(&srv->idle_cond);
		pthread_mutex_unlock(&srv->lock);
	}
	return stop;
}

size_t
server_stop(struct server *srv, unsigned timeout_ms)
{
	uint64_t deadline = util_now_ms() + timeout_ms;
	struct timespec ts;
	size_t left;

	uint64_t one = 1;
	size_t idle = 0;

	api_stop(srv->api); /* /readyz says 503 from here on */
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pthread_mutex_unlock(&srv->lock);
	/* Workers waiting on kept connections close them. */
	if (write(srv->stop_fd, &one, sizeof(one)) < 0)
		log_warn("eventfd write: %s", strerror(errno));
	server_conns_shut(srv);
	/*
	 * A socket we made: shutting it down wakes every worker blocked in
	 * accept() with an error.  An inherited one (spawn-fcgi, systemd) is
	 * shared with whoever gave it to us and outlives us: systemd queues
	 * connections on it for the next instance, so it must be left as it
	 * is, and the workers in accept() are interrupted by a signal
	 * instead; new connections then wait in the backlog for the next
	 * instance.  A worker between its check of stopping and accept()
	 * misses the signal, so it is sent until no worker is left in
	 * accept().  The signal goes only to workers in srv->idle_list,
	 * which leave it under the lock: never to one that has exited.
	 */
	listener_stop(srv->listener);
	for (int i = 0; i < SERVER_STOP_SIGNAL_TRIES; i++) {
		struct timespec pause = {0, SERVER_STOP_SIGNAL_MS * 1000000L};

		pthread_mutex_lock(&srv->lock);
		idle = srv->idle;
		for (struct server_worker *w = srv->idle_list; w != NULL;
		     w = w->idle_next)
			pthread_kill(w->tid, SERVER_STOP_SIGNAL);
		pthread_mutex_unlock(&srv->lock);
		if (idle == 0)
			break;
		nanosleep(&pause, NULL);
	}
	if (idle > 0)
		log_warn("%zu workers still in accept() at stop", idle);
	else if (!listener_owned(srv->listener))
		log_info(
		    "no longer accepting: new connections wait in the "
		    "inherited socket for whoever serves it next (systemd's "
		    "next instance; with none, they are reset)");
	registry_close(srv->reg);

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&srv->lock);
	while (
	    (srv->active > 0 || srv->telling > 0) && util_now_ms() < deadline)
		if (pthread_cond_timedwait(&srv->idle_cond, &srv->lock, &ts) ==
		    ETIMEDOUT)
			break;
	left = srv->active;
	pthread_mutex_unlock(&srv->lock);
	return left;
}
