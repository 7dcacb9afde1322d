// A worker that takes a parked kept connection's request leaves the other
// parked connections with no worker waiting for them (kept_waiters 0), and
// when that request becomes a stream, server_cover() starts a worker for
// them. When that start fails (a thread limit: RLIMIT_NPROC, a container's
// pids limit, TasksMax), nothing else ever looks at the parked connections:
// the idle workers wait in accept(), which a front that keeps its
// connections (nginx's fastcgi_keep_conn, lighttpd) never calls on, since
// it sends its requests on the connections it keeps. Their requests wait
// until a stream ends or a new connection happens to come, behind nginx
// for fastcgi_read_timeout (60 s, then 504), although idle workers are
// there. The thread fault is injected (thread-faults.mjs) at the one start
// that matters; the subscribe is sent whole, so that nothing starts a
// worker (and notes the failure) before it is admitted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withTimeout, subPath, poll } from './harness.mjs';
import { Rig, waitLine } from './fronts.mjs';
import { FcgiConn } from './fcgi.mjs';
import { startUnderThreadFault } from './thread-faults.mjs';

const T = { timeout: 60000 };
// A hang guard: an idle backend answers /healthz within milliseconds.
const ANSWER_GUARD = 10000;

test('a failed worker start leaves no parked kept connection unserved ' +
    'while workers are idle', T, async (t) => {
	const rig = new Rig(t, 'kept-thread-fault');
	const threads = await startUnderThreadFault(rig, t,
	    { BEEP_MIN_IDLE: '2' });

	// Two kept connections (as nginx keeps them), each served once, then
	// parked; one worker waits for them, the others in accept().
	const kept = [];
	for (let i = 0; i < 2; i++) {
		const k = await FcgiConn.open(rig.sock, t);
		k.sendWhole('GET', '/healthz', true);
		await poll(() => k.ended, { what: `kept /healthz ${i}` });
		kept.push(k);
	}

	// Threads cannot start from here on.
	threads.fail();
	// A subscribe on the first: the waiting worker takes it (leaving the
	// second parked with no waiter) and becomes its stream.
	kept[0].sendWhole('GET', subPath('kept-fault', 'd'), true);
	await poll(() => kept[0].headCame(), { what: 'the stream head' });
	assert.match(kept[0].stdout.toString('latin1'), /text\/event-stream/);
	await waitLine(rig.backend, /error server: pthread_create: /);

	// The front's next request goes on the other kept connection. Idle
	// workers are there (in accept()); it must be answered.
	kept[1].sendWhole('GET', '/healthz', true);
	const answered = await withTimeout(
	    poll(() => kept[1].ended, { what: 'kept /healthz', timeout: 60000 })
	        .then(() => true), ANSWER_GUARD, false);
	threads.heal();
	assert.ok(answered, 'a request on a parked kept connection was not ' +
	    `answered within ${ANSWER_GUARD} ms: the worker start meant for ` +
	    'the parked connections failed, and the idle workers wait in ' +
	    'accept() only (fails on HEAD)');
});
