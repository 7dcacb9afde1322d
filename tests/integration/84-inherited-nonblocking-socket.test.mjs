// The listening socket inherited on fd 0 (spawn-fcgi) or by LISTEN_FDS
// (systemd) is used as it comes. One that comes non-blocking (systemd's
// NonBlocking=yes in the .socket unit, or a supervisor that made it so, as
// event-loop runtimes make theirs) makes every idle worker's accept()
// return EAGAIN at once, which server_accept_failed() lets through without
// a pause: the idle workers spin, and an idle backend takes every CPU of
// the host (measured: 190% on 2 CPUs) for as long as it runs. An idle
// backend's threads all sleep (accept(), epoll, the stop signal's wait).
// The socket is made here by a small launcher built with cc: it listens
// on a unix socket, sets O_NONBLOCK, puts it on fd 0, and execs the
// backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BEEP_BIN, poll, withTimeout } from './harness.mjs';
import { Rig, waitLine } from './fronts.mjs';
import { FcgiConn, requestParams } from './fcgi.mjs';

const LAUNCHER = `
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (argc < 3 || fd < 0 || strlen(argv[1]) >= sizeof(sa.sun_path))
		return 2;
	strcpy(sa.sun_path, argv[1]);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    dup2(fd, 0) < 0)
		return perror("launcher"), 2;
	close(fd);
	execv(argv[2], argv + 2);
	perror("execv");
	return 2;
}
`;

// Each thread of pid: its state letter (R running or runnable, S asleep).
function threadStates(pid) {
	const out = [];
	for (const tid of readdirSync(`/proc/${pid}/task`)) {
		try {
			const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`,
			    'utf8');
			out.push(/\) (\S) /.exec(stat)[1]);
		} catch { /* the thread has ended */ }
	}
	return out;
}

test('an inherited non-blocking listening socket: idle workers sleep', {
	timeout: 60000,
}, async (t) => {
	const rig = new Rig(t, 'nonblocking-fd0');
	const src = path.join(rig.dir, 'launcher.c');
	const bin = path.join(rig.dir, 'launcher');
	writeFileSync(src, LAUNCHER);
	execFileSync('cc', ['-O1', '-o', bin, src]);
	rig.launchBackend(bin, [rig.sock, BEEP_BIN]);
	await waitLine(rig.backend, /\bready on fd:0\b/);

	// It serves.
	const c = await FcgiConn.open(rig.sock, t);
	c.begin();
	c.params(requestParams('GET', '/healthz'));
	c.endStdin();
	assert.equal((await withTimeout(c.response(), 10000)).status, 200);

	// Idle now: every thread asleep.
	let states = [];
	const asleep = await poll(() => {
		states = threadStates(rig.backend.pid);
		return states.every((s) => s === 'S');
	}, { what: 'every thread asleep', timeout: 10000 })
	    .then(() => true, () => false);
	assert.ok(asleep, 'an idle backend on an inherited non-blocking ' +
	    `socket never had all its threads asleep (states: ${states.join('')}` +
	    '): its idle workers spin on accept() returning EAGAIN ' +
	    '(fails on HEAD)');
	rig.checkBackendLog();
});
