// At a thread limit a new stream is refused while no worker is idle in
// accept() (api_starved(): "so that a worker is left for POSTs"). But a
// stream on a kept connection, taken from the parked ones, is let through
// with one worker left in accept() and none waiting for the parked ones:
// that last worker then has both to do, and it cannot. After its next
// request on a kept connection it parks it and, with no other worker
// waiting for the parked ones, waits for them (server_next() prefers them
// while any is parked), for as long as one is: no worker is left in
// accept(), and a request on a new connection (a front that opens one for
// a request its kept ones are busy with, as nginx does, or one that never
// keeps them, as Caddy) waits in the listening socket's backlog until a
// stream ends. The thread fault is injected (thread-faults.mjs) once the
// pool is up; every request is sent whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withTimeout, subPath, poll } from './harness.mjs';
import { Rig, waitLine } from './fronts.mjs';
import { FcgiConn } from './fcgi.mjs';
import { startUnderThreadFault } from './thread-faults.mjs';

const T = { timeout: 60000 };
// A hang guard: an idle backend answers /healthz within milliseconds.
const ANSWER_GUARD = 10000;

test('at a thread limit, a stream on a kept connection leaves a worker ' +
    'in accept()', T, async (t) => {
	const rig = new Rig(t, 'last-worker-thread-fault');
	const threads = await startUnderThreadFault(rig, t,
	    { BEEP_MIN_IDLE: '2' });

	// A kept connection (as nginx keeps them), served once and parked.
	const k1 = await FcgiConn.open(rig.sock, t);
	k1.sendWhole('GET', '/healthz', true);
	await poll(() => k1.ended, { what: 'kept /healthz' });

	// Threads cannot start from here on.
	threads.fail();
	// A stream on a new connection: its worker's replacement fails to
	// start (the limit noted); one worker is still idle, so it is let in.
	const s1 = await FcgiConn.open(rig.sock, t);
	s1.sendWhole('GET', subPath('last-worker', 'a'), false);
	await poll(() => s1.headCame(), { what: 'the first stream' });
	assert.match(s1.stdout.toString('latin1'), /text\/event-stream/);
	await waitLine(rig.backend, /error server: pthread_create: /);
	// A stream on the kept connection: its worker was the one waiting for
	// the parked connections. Let in (HEAD), or refused 503 "no thread
	// free for a stream": either way a worker must be left for each.
	k1.sendWhole('GET', subPath('last-worker', 'b'), true);
	await poll(() => k1.headCame(), { what: 'the kept stream' });
	assert.match(k1.stdout.toString('latin1'),
	    /text\/event-stream|^Status: 503/m);
	if (/^Status: 503/m.test(k1.stdout.toString('latin1')))
		await poll(() => k1.ended, { what: 'the refusal' });

	// The front's next kept connection: a request, then parked.
	const k2 = await FcgiConn.open(rig.sock, t);
	k2.sendWhole('GET', '/healthz', true);
	await poll(() => k2.ended, { what: 'the second kept /healthz' });

	// A request on a new connection must be answered.
	const c = await FcgiConn.open(rig.sock, t);
	c.sendWhole('GET', '/healthz', false);
	const r = await withTimeout(c.response(), ANSWER_GUARD, null);
	threads.heal();
	assert.ok(r !== null && r.status === 200, 'a request on a new ' +
	    `connection was not answered within ${ANSWER_GUARD} ms: the one ` +
	    'worker left that is not a stream waits for the parked kept ' +
	    'connection, and none is left in accept() (fails on HEAD)');
});
