/*
 * deadline: time limits on reading from connections.  A worker arms a
 * timer on the connection it is about to read a request from; if the
 * request has not been read when the timer's time comes, whoever runs
 * deadline_run() (the server's watcher thread) shuts the connection down
 * for reading, and the worker's blocking read returns end-of-file at once.
 * The worker cancels the timer when it has read the request, and learns
 * then whether it fired.
 *
 * A read deadline that is per read (SO_RCVTIMEO) is no limit against a
 * client that sends a byte at a time; this one covers the whole request.
 * A timer holds its own duplicate of the connection's descriptor while
 * armed, so a worker whose library closes the connection before the timer
 * is cancelled can never have another connection that reuses the number
 * shut down by mistake.
 *
 * Thread-safe: the set's own mutex guards the timers; it is held for
 * heap updates only, never across shutdown() or close().  No HTTP,
 * FastCGI or registry here.
 */
#ifndef BEEP_DEADLINE_H
#define BEEP_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

/* A set of timers, ordered by when they fire. */
struct deadline;
/* One timer; belongs to one worker at a time. */
struct deadline_timer;

/* Returned by deadline_next() when no timer is armed. */
#define DEADLINE_NONE UINT64_MAX

struct deadline *deadline_new(void);

/* Free the set; every timer must have been freed. */
void deadline_free(struct deadline *d);

/* A new, disarmed timer in set d. */
struct deadline_timer *deadline_timer_new(struct deadline *d);

/* Free a timer, cancelling it first if armed. */
void deadline_timer_free(struct deadline_timer *t);

/*
 * Arm t to shut fd down for reading at when_ms (util_now_ms() time),
 * cancelling any earlier arming first.  Returns 0, or -1 when fd could not
 * be duplicated (e.g. EMFILE): then the timer stays disarmed.
 */
int deadline_arm(struct deadline_timer *t, int fd, uint64_t when_ms);

/*
 * Disarm t; waits if deadline_run() is shutting its connection down right
 * now.  Returns whether it fired since it was armed.  Cancelling a
 * disarmed timer is harmless (and returns false).
 */
bool deadline_cancel(struct deadline_timer *t);

/*
 * Shut down the connections of every timer whose time is at or before
 * now_ms.  Returns the time of the earliest timer still armed, or
 * DEADLINE_NONE.
 */
uint64_t deadline_run(struct deadline *d, uint64_t now_ms);

/* The time of the earliest armed timer, or DEADLINE_NONE. */
uint64_t deadline_next(struct deadline *d);

#endif
