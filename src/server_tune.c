/* server_tune: see server_tune.h. */
#include "server_tune.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

#define LOG_MODULE "server"

/* Linux 6.16's private futex hash (linux/prctl.h; not in Debian 12's). */
#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#endif

/* The fewest and most futex hash slots server_tune_futex_hash() asks for. */
#define SERVER_FUTEX_SLOTS_MIN 16
#define SERVER_FUTEX_SLOTS_MAX (1UL << 16)

/*
 * Threads count against RLIMIT_NPROC (enforced for a user without
 * CAP_SYS_RESOURCE): raise the soft limit to the hard one, and say so when
 * even that is below the workers this may start.  At that limit every
 * worker may be a stream and none left to accept: POSTs would wait for a
 * stream to end.
 */
void
server_tune_nproc(size_t max_workers)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NPROC, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NPROC, &rl) != 0)
			getrlimit(RLIMIT_NPROC, &rl);
	}
	if (geteuid() != 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < max_workers + 16)
		log_warn("RLIMIT_NPROC is %llu, below the %zu workers "
		         "--max-streams may need: past it new requests wait "
		         "for a stream to end (raise it, LimitNPROC=infinity "
		         "in systemd, or lower --max-streams)",
		    (unsigned long long)rl.rlim_cur, max_workers);
}

/*
 * Give the process a futex hash slot per thread it may have.  Since Linux
 * 6.16 a process's futexes (pthread mutexes and condition variables)
 * hash into a table of its own, sized by the CPUs online, not by the
 * threads: 16 slots on 2 CPUs.  Every thread asleep in registry_wait()
 * hangs on a slot's list, and each signal walks its slot's list to find
 * the one thread to wake: with 1,000 streams asleep, 60 waiters a slot;
 * with 9,000, 560, and then futex_wake() was half of the backend's CPU
 * per post.  Older kernels, with one hash for the whole machine, refuse
 * the call (EINVAL): nothing to do there.
 */
void
server_tune_futex_hash(size_t threads)
{
	unsigned long slots = SERVER_FUTEX_SLOTS_MIN;

	while (slots < threads && slots < SERVER_FUTEX_SLOTS_MAX)
		slots *= 2;
	if (prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, slots, 0UL, 0UL) < 0)
		log_debug(
		    "futex hash of %lu slots: %s", slots, strerror(errno));
	else
		log_debug("futex hash: %lu slots", slots);
}
