// An epoll fault for the backend, injected by LD_PRELOAD (as
// thread-faults.mjs does for pthread_create): a small shim, built here with
// the system's cc, that makes epoll_ctl(EPOLL_CTL_ADD) of a socket fail
// with ENOSPC, as the kernel does once fs.epoll.max_user_watches is
// reached. The backend's own descriptors in its epoll sets (eventfds) are
// not sockets, so it starts; each stream's connection (the watcher's set)
// and each kept connection (the parked set) is then refused.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const SHIM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/stat.h>

typedef int ctl_fn(int, int, int, struct epoll_event *);

int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	static ctl_fn *real;
	struct stat st;

	if (real == NULL)
		real = (ctl_fn *)dlsym(RTLD_NEXT, "epoll_ctl");
	if (op == EPOLL_CTL_ADD && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
		errno = ENOSPC;
		return -1;
	}
	return real(epfd, op, fd, ev);
}
`;

// Builds the shim in dir; returns the environment that loads it.
export function epollFaultEnv(dir) {
	const src = path.join(dir, 'epoll-fault.c');
	const so = path.join(dir, 'epoll-fault.so');
	writeFileSync(src, SHIM);
	execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', so, src, '-ldl']);
	return {
		LD_PRELOAD: so,
		// A sanitizer's runtime wants to be first; the shim only
		// wraps one call.
		ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:verify_asan_link_order=0`,
	};
}
