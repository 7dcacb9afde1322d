// A connection closed for its read deadline is told in the log, also when
// the service is stopped the instant the client sees it closed. One that
// sends nothing is shut down by the watcher at BEEP_READ_TIMEOUT; its
// worker's read fails, libfcgi closes it, the timer's duplicate is closed
// (deadline_cancel()), which the client sees; then the worker logs it (a
// line a second, the rest counted and summed up at the stop). A stop that
// waited only for requests in progress could sum up and exit between the
// two, and the line was lost (CI saw it once in test 18: 59 of 60 told).
//
// That instant is made to last, by LD_PRELOAD (as epoll-faults.mjs and
// thread-faults.mjs inject faults): a shim, built here with the system's
// cc, notes each descriptor shut down for reading (the watcher's
// shutdown() of the timer's duplicate) and holds the thread that closes
// one just after the close: the worker, between the close the client sees
// and its line. It lets the worker go only when the main thread, where the
// stop runs, waits on a condition variable (server_stop()'s wait; nothing
// else there waits so without a cluster): a stop that does not wait exits
// with the worker still held, and its line untold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { startStack, toldByLines, withTimeout } from './harness.mjs';
import { FcgiConn } from './fcgi.mjs';

const SHIM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FDS 65536

static atomic_bool shut_rd[FDS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static int held, let_go;

int
shutdown(int fd, int how)
{
	static int (*real)(int, int);

	if (real == NULL)
		real = (int (*)(int, int))dlsym(RTLD_NEXT, "shutdown");
	if (how == SHUT_RD && fd >= 0 && fd < FDS)
		shut_rd[fd] = 1;
	return real(fd, how);
}

int
close(int fd)
{
	static int (*real)(int);
	int was = fd >= 0 && fd < FDS && atomic_exchange(&shut_rd[fd], 0);
	int rc;

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "close");
	rc = real(fd);
	if (was) {
		pthread_mutex_lock(&lock);
		held = 1;
		while (!let_go)
			pthread_cond_wait(&go, &lock);
		pthread_mutex_unlock(&lock);
	}
	return rc;
}

int
pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
    const struct timespec *abstime)
{
	static int (*real)(pthread_cond_t *, pthread_mutex_t *,
	    const struct timespec *);

	if (real == NULL)
		real = (int (*)(pthread_cond_t *, pthread_mutex_t *,
		    const struct timespec *))dlsym(RTLD_NEXT,
		    "pthread_cond_timedwait");
	if (gettid() == getpid()) {
		pthread_mutex_lock(&lock);
		if (held)
			let_go = 1;
		pthread_cond_broadcast(&go);
		pthread_mutex_unlock(&lock);
	}
	return real(c, m, abstime);
}
`;

// Builds the shim; returns the environment that loads it.
function holdEnv(t) {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-hold-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	const src = path.join(dir, 'hold.c');
	const so = path.join(dir, 'hold.so');
	writeFileSync(src, SHIM);
	execFileSync('cc', ['-shared', '-fPIC', '-O1', '-pthread', '-o', so,
	    src, '-ldl']);
	return {
		LD_PRELOAD: so,
		// A sanitizer's runtime wants to be first; the shim only
		// wraps three calls.
		ASAN_OPTIONS:
		    `${process.env.ASAN_OPTIONS || ''}:verify_asan_link_order=0`,
	};
}

const told = toldByLines;

test('a connection closed at its read deadline is told by a stop that ' +
    'comes as the client sees it closed', { timeout: 60000 }, async (t) => {
	const stack = await startStack({ caddy: false, env: {
		BEEP_READ_TIMEOUT: '1', ...holdEnv(t),
	} }, t);
	const conn = await FcgiConn.open(stack.socket, t);
	await withTimeout(once(conn.sock, 'end'), 30000);
	const exit = await stack.stop();
	assert.deepEqual(exit, { code: 0, signal: null, killed: false },
	    stack.backendLog.join('\n'));
	const lines = stack.backendLog.filter((l) =>
	    /request not read within BEEP_READ_TIMEOUT/.test(l));
	assert.equal(told(lines), 1, stack.backendLog.join('\n'));
});
