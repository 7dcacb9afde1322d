// A thread-start fault for the backend, injected by LD_PRELOAD: a small
// shim, built here with the system's cc, that makes pthread_create() fail
// with EAGAIN (as at RLIMIT_NPROC, a container's pids limit or systemd's
// TasksMax) while a file exists (`failWhile`), or for the n-th call of the
// process only (`failNth`). Unlike prlimit --nproc, it hits exactly the
// start it is asked to, as root too. Also the rig of the tests that start
// the backend under it (81, 83, 85).
import { execFileSync } from 'node:child_process';
import { rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const SHIM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

typedef int create_fn(pthread_t *, const pthread_attr_t *,
    void *(*)(void *), void *);
static int calls;

int
pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *),
    void *arg)
{
	static create_fn *real;
	const char *nth = getenv("FAULT_PTHREAD_NTH");
	const char *file = getenv("FAULT_PTHREAD_WHILE");
	int n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);

	if (real == NULL)
		real = (create_fn *)dlsym(RTLD_NEXT, "pthread_create");
	if ((nth != NULL && atoi(nth) == n) ||
	    (file != NULL && access(file, F_OK) == 0))
		return EAGAIN;
	return real(t, a, f, arg);
}
`;

// Builds the shim in dir; returns the environment that loads it, with
// { nth } or { whileFile } as the fault.
export function threadFaultEnv(dir, { nth, whileFile } = {}) {
	const src = path.join(dir, 'thread-fault.c');
	const so = path.join(dir, 'thread-fault.so');
	writeFileSync(src, SHIM);
	execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', so, src, '-ldl']);
	const env = {
		LD_PRELOAD: so,
		// A sanitizer's runtime wants to be first; the shim only
		// wraps one call.
		ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:verify_asan_link_order=0`,
	};
	if (nth !== undefined)
		env.FAULT_PTHREAD_NTH = String(nth);
	if (whileFile !== undefined)
		env.FAULT_PTHREAD_WHILE = whileFile;
	return env;
}

// Starts the rig's backend (beep-signal --listen) under the shim with `env`
// (its BEEP_* settings); thread starts fail from threads.fail() on, until
// threads.heal() or the end of the test t. Resolves with `threads` once
// the backend is ready.
export async function startUnderThreadFault(rig, t, env = {}) {
	const fault = path.join(rig.dir, 'threads-fail');
	rig.env = { ...env, ...threadFaultEnv(rig.dir, { whileFile: fault }) };
	t.after(() => rmSync(fault, { force: true }));
	await rig.startListen();
	return {
		fail: () => writeFileSync(fault, ''),
		heal: () => unlinkSync(fault),
	};
}
