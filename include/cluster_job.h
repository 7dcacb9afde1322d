/*
 * cluster_job: the commands request threads and the cluster's own work
 * hand the command thread (cluster_redis), and the wait for their
 * answers.  A job is one command (EVALSHA of a cluster_lua script, or a
 * plain one) with its arguments copied.  Cluster modules only.
 */
#ifndef BEEP_CLUSTER_JOB_H
#define BEEP_CLUSTER_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cluster_impl.h"

/* A job running script, whose nkeys keys come next (cluster_job_key()). */
struct cluster_job *cluster_job_new(struct cluster *cl,
    enum cluster_job_kind kind, enum cluster_lua script, int nkeys);
/* Free j and its answer. */
void cluster_job_free(struct cluster_job *j);
/* Append an argument: bytes, a string, a number, a key "beep:KIND:USER[\x1fDEVICE]". */
void cluster_job_arg(struct cluster_job *j, const void *p, size_t len);
void cluster_job_str(struct cluster_job *j, const char *s);
void cluster_job_num(struct cluster_job *j, uint64_t v);
void cluster_job_key(struct cluster_job *j, const char *kind, const char *user,
    const char *device);
/*
 * An argument the caller made (xmalloc'd, len bytes), the job's from now
 * on: one as long as a client made it is copied before cl->lock.
 */
void cluster_job_arg_own(struct cluster_job *j, void *p, size_t len);

/* Queue j for the command thread and wake it; with cl->lock held. */
void cluster_job_enqueue(struct cluster *cl, struct cluster_job *j);
/* Ahead of every job queued (with cl->lock held). */
void cluster_job_enqueue_first(struct cluster *cl, struct cluster_job *j);
/* redis_timeout from now, on CLOCK_MONOTONIC. */
void cluster_job_deadline(struct cluster *cl, struct timespec *ts);
/*
 * Queue j and wait for it, with cl->lock held.  Returns true when it was
 * answered (j->reply may still be NULL: it failed); false when it timed
 * out, and then j belongs to the command thread.
 */
bool cluster_job_call(struct cluster *cl, struct cluster_job *j);

#endif
