/* cluster_job: see cluster_job.h. */
#include "cluster_job.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

void
cluster_job_arg(struct cluster_job *j, const void *p, size_t len)
{
	if (j->argc == CLUSTER_ARGS)
		abort(); /* a bug: a command takes more arguments */
	j->argv[j->argc] = xmemdup(p, len);
	j->argvlen[j->argc++] = len;
}

void
cluster_job_arg_own(struct cluster_job *j, void *p, size_t len)
{
	if (j->argc == CLUSTER_ARGS)
		abort(); /* a bug: a command takes more arguments */
	j->argv[j->argc] = p;
	j->argvlen[j->argc++] = len;
}

void
cluster_job_str(struct cluster_job *j, const char *s)
{
	cluster_job_arg(j, s, strlen(s));
}

void
cluster_job_num(struct cluster_job *j, uint64_t v)
{
	char n[24];

	snprintf(n, sizeof(n), "%" PRIu64, v);
	cluster_job_str(j, n);
}

void
cluster_job_key(struct cluster_job *j, const char *kind, const char *user,
    const char *device)
{
	struct buf k = {0};

	buf_printf(&k, "beep:%s:%s", kind, user);
	if (device != NULL)
		buf_printf(&k, "\x1f%s", device);
	cluster_job_arg(j, k.data, k.len);
	buf_free(&k);
}

/* EVALSHA script with nkeys keys to come. */
struct cluster_job *
cluster_job_new(struct cluster *cl, enum cluster_job_kind kind,
    enum cluster_lua script, int nkeys)
{
	struct cluster_job *j = xcalloc(1, sizeof(*j));

	j->kind = kind;
	cluster_job_str(j, "EVALSHA");
	cluster_job_str(j, cl->sha[script]);
	cluster_job_num(j, (uint64_t)nkeys);
	return j;
}

void
cluster_job_free(struct cluster_job *j)
{
	for (int i = 0; i < j->argc; i++)
		free(j->argv[i]);
	if (j->reply != NULL)
		freeReplyObject(j->reply);
	if (j->waited)
		pthread_cond_destroy(&j->answered);
	free(j);
}

/* With cl->lock held. */
void
cluster_job_enqueue(struct cluster *cl, struct cluster_job *j)
{
	if (cl->queue_tail != NULL)
		cl->queue_tail->next = j;
	else
		cl->queue = j;
	cl->queue_tail = j;
	pthread_cond_signal(&cl->wake);
}

/* With cl->lock held. */
void
cluster_job_enqueue_first(struct cluster *cl, struct cluster_job *j)
{
	j->next = cl->queue;
	cl->queue = j;
	if (cl->queue_tail == NULL)
		cl->queue_tail = j;
	pthread_cond_signal(&cl->wake);
}

void
cluster_job_deadline(struct cluster *cl, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += cl->timeout_ms / 1000;
	ts->tv_nsec += (long)(cl->timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/*
 * Queue j and wait for it, with cl->lock held.  Returns true when it was
 * answered (j->reply may still be NULL: it failed); false when it timed
 * out, and then j belongs to the command thread.
 */
bool
cluster_job_call(struct cluster *cl, struct cluster_job *j)
{
	pthread_condattr_t attr;
	struct timespec ts;

	/*
	 * Its own condition variable: a broadcast on one shared by every
	 * waiting request would wake them all at each answer.
	 */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&j->answered, &attr);
	pthread_condattr_destroy(&attr);
	j->waited = true;
	cluster_job_deadline(cl, &ts);
	cluster_job_enqueue(cl, j);
	while (!j->done) {
		if (pthread_cond_timedwait(&j->answered, &cl->lock, &ts) ==
		        ETIMEDOUT &&
		    !j->done) {
			j->abandoned = true;
			return false;
		}
	}
	return true;
}
