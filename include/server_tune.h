/*
 * server_tune: what the server asks of the kernel for the threads it may
 * start: RLIMIT_NPROC raised as far as it goes (server_new()), and a futex
 * hash slot per thread (server_start()).  Neither fails the start: what
 * cannot be had is logged.  See "Kernel and library settings for speed"
 * in server.c's DESIGN comment.
 */
#ifndef BEEP_SERVER_TUNE_H
#define BEEP_SERVER_TUNE_H

#include <stddef.h>

/*
 * Raise RLIMIT_NPROC's soft limit to the hard one; warn when even that is
 * below max_workers.
 */
void server_tune_nproc(size_t max_workers);

/* Ask for a futex hash of a slot per thread, threads in all (Linux 6.16). */
void server_tune_futex_hash(size_t threads);

#endif
