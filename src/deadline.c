/*
 * deadline: see deadline.h.
 *
 * The timers form a binary min-heap on their time, in an array that grows
 * as timers are armed; each timer knows its place in it, so cancelling is
 * O(log n) and finding the next to fire O(1).
 *
 * LOCKING.  d->lock guards the heap and every timer's state.  A timer
 * moves IDLE -> ARMED (deadline_arm) -> FIRING (deadline_run took it off
 * the heap) -> FIRED (its connection is shut down), and back to IDLE in
 * deadline_cancel(), which waits on d->fired while it is FIRING: so once
 * cancel returns, no one will touch the timer's descriptor again, and
 * cancel closes it.  deadline_pause() disarms as cancel does but keeps the
 * duplicate (IDLE with fd >= 0), for deadline_rearm() on the next request
 * of the same connection: a duplicate and a close fewer per request.
 */
#include "deadline.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LOG_MODULE "deadline"

/* The heap's first allocation (grows by doubling). */
#define DEADLINE_HEAP_MIN 64

enum deadline_state {
	DEADLINE_IDLE,
	DEADLINE_ARMED,
	DEADLINE_FIRING,
	DEADLINE_FIRED,
};

struct deadline_timer {
	struct deadline *set;
	uint64_t when;
	int fd;       /* our duplicate while armed or fired, else -1 */
	size_t index; /* place in the heap while ARMED */
	enum deadline_state state;
};

struct deadline {
	pthread_mutex_t lock;
	pthread_cond_t fired; /* a FIRING timer became FIRED */
	struct deadline_timer **heap;
	size_t n, cap;
};

struct deadline *
deadline_new(void)
{
	struct deadline *d = xcalloc(1, sizeof(*d));

	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->fired, NULL);
	return d;
}

void
deadline_free(struct deadline *d)
{
	if (d == NULL)
		return;
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->fired);
	free(d->heap);
	free(d);
}

struct deadline_timer *
deadline_timer_new(struct deadline *d)
{
	struct deadline_timer *t = xcalloc(1, sizeof(*t));

	t->set = d;
	t->fd = -1;
	t->state = DEADLINE_IDLE;
	return t;
}

void
deadline_timer_free(struct deadline_timer *t)
{
	if (t == NULL)
		return;
	deadline_cancel(t);
	free(t);
}

static void
deadline_place(struct deadline *d, size_t i, struct deadline_timer *t)
{
	d->heap[i] = t;
	t->index = i;
}

/* Restore the heap order around i after heap[i] changed.  Lock held. */
static void
deadline_fix(struct deadline *d, size_t i)
{
	struct deadline_timer *t = d->heap[i];

	while (i > 0 && d->heap[(i - 1) / 2]->when > t->when) {
		deadline_place(d, i, d->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= d->n)
			break;
		if (c + 1 < d->n && d->heap[c + 1]->when < d->heap[c]->when)
			c++;
		if (d->heap[c]->when >= t->when)
			break;
		deadline_place(d, i, d->heap[c]);
		i = c;
	}
	deadline_place(d, i, t);
}

/* Take an ARMED timer off the heap.  Lock held. */
static void
deadline_remove(struct deadline *d, struct deadline_timer *t)
{
	size_t i = t->index;
	struct deadline_timer *last = d->heap[--d->n];

	if (last != t) {
		deadline_place(d, i, last);
		deadline_fix(d, i);
	}
}

/* Put t in the heap, armed for when_ms; with d->lock held. */
static void
deadline_push(struct deadline *d, struct deadline_timer *t, uint64_t when_ms)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : DEADLINE_HEAP_MIN;
		d->heap = xrealloc(d->heap, d->cap * sizeof(*d->heap));
	}
	t->when = when_ms;
	t->state = DEADLINE_ARMED;
	deadline_place(d, d->n++, t);
	deadline_fix(d, t->index);
}

int
deadline_arm(struct deadline_timer *t, int fd, uint64_t when_ms)
{
	struct deadline *d = t->set;
	int dup_fd;

	deadline_cancel(t);
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0)
		return -1;
	pthread_mutex_lock(&d->lock);
	t->fd = dup_fd;
	deadline_push(d, t, when_ms);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

int
deadline_rearm(struct deadline_timer *t, uint64_t when_ms)
{
	struct deadline *d = t->set;

	pthread_mutex_lock(&d->lock);
	if (t->fd < 0 || t->state != DEADLINE_IDLE) {
		pthread_mutex_unlock(&d->lock);
		return -1;
	}
	deadline_push(d, t, when_ms);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Disarm t; close its duplicate unless keep.  Returns whether it fired. */
static bool
deadline_disarm(struct deadline_timer *t, bool keep)
{
	struct deadline *d = t->set;
	bool fired;
	int fd = -1;

	pthread_mutex_lock(&d->lock);
	while (t->state == DEADLINE_FIRING)
		pthread_cond_wait(&d->fired, &d->lock);
	if (t->state == DEADLINE_ARMED)
		deadline_remove(d, t);
	fired = t->state == DEADLINE_FIRED;
	t->state = DEADLINE_IDLE;
	/* A connection shut down for reading serves no further request. */
	if (!keep || fired) {
		fd = t->fd;
		t->fd = -1;
	}
	pthread_mutex_unlock(&d->lock);
	if (fd >= 0)
		close(fd);
	return fired;
}

bool
deadline_cancel(struct deadline_timer *t)
{
	return deadline_disarm(t, false);
}

bool
deadline_pause(struct deadline_timer *t)
{
	return deadline_disarm(t, true);
}

uint64_t
deadline_run(struct deadline *d, uint64_t now_ms)
{
	uint64_t next;

	for (;;) {
		struct deadline_timer *t;
		int fd;

		pthread_mutex_lock(&d->lock);
		if (d->n == 0 || d->heap[0]->when > now_ms) {
			next = d->n ? d->heap[0]->when : DEADLINE_NONE;
			pthread_mutex_unlock(&d->lock);
			return next;
		}
		t = d->heap[0];
		deadline_remove(d, t);
		t->state = DEADLINE_FIRING;
		fd = t->fd;
		pthread_mutex_unlock(&d->lock);

		/*
		 * For reading only: a blocked read returns end-of-file, and
		 * the worker can still answer (408) where the peer reads.
		 */
		if (shutdown(fd, SHUT_RD) < 0 && errno != ENOTCONN)
			log_warn("shutdown: %s", strerror(errno));

		pthread_mutex_lock(&d->lock);
		t->state = DEADLINE_FIRED;
		pthread_cond_broadcast(&d->fired);
		pthread_mutex_unlock(&d->lock);
	}
}

uint64_t
deadline_next(struct deadline *d)
{
	uint64_t next;

	pthread_mutex_lock(&d->lock);
	next = d->n ? d->heap[0]->when : DEADLINE_NONE;
	pthread_mutex_unlock(&d->lock);
	return next;
}
