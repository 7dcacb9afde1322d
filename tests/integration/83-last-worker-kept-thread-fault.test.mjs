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
import { writeFileSync, unlinkSync, existsSync } from 'node:fs';
import path from 'node:path';
import { withTimeout, subPath, poll } from './harness.mjs';
import { Rig, waitLine } from './fronts.mjs';
import {
	FcgiConn, requestParams, beginRecord, record, encodeParams, PARAMS, STDIN,
} from './fcgi.mjs';
import { threadFaultEnv } from './thread-faults.mjs';

const T = { timeout: 60000 };
// A hang guard: an idle backend answers /healthz within milliseconds.
const ANSWER_GUARD = 10000;

// One request on k, written in one write (it has come whole when a worker
// looks); keep: FCGI_KEEP_CONN.
function send(k, method, uri, keep) {
	k.stdout = Buffer.alloc(0);
	k.ended = false;
	k.write(Buffer.concat([beginRecord(1, keep),
	    record(PARAMS, 1, encodeParams(requestParams(method, uri))),
	    record(PARAMS, 1), record(STDIN, 1)]));
}

async function open(rig, t) {
	const k = new FcgiConn(rig.sock);
	t.after(() => k.destroy());
	await k.connected;
	return k;
}

const head = (k, what) => poll(() =>
    k.stdout.toString('latin1').includes('\r\n\r\n'), { what });

test('at a thread limit, a stream on a kept connection leaves a worker ' +
    'in accept()', T, async (t) => {
	const rig = new Rig(t, 'last-worker-thread-fault');
	const fault = path.join(rig.dir, 'threads-fail');
	rig.env = { BEEP_MIN_IDLE: '2',
	    ...threadFaultEnv(rig.dir, { whileFile: fault }) };
	t.after(() => { if (existsSync(fault)) unlinkSync(fault); });
	await rig.startListen();

	// A kept connection (as nginx keeps them), served once and parked.
	const k1 = await open(rig, t);
	send(k1, 'GET', '/healthz', true);
	await poll(() => k1.ended, { what: 'kept /healthz' });

	// Threads cannot start from here on.
	writeFileSync(fault, '');
	// A stream on a new connection: its worker's replacement fails to
	// start (the limit noted); one worker is still idle, so it is let in.
	const s1 = await open(rig, t);
	send(s1, 'GET', subPath('last-worker', 'a'), false);
	await head(s1, 'the first stream');
	assert.match(s1.stdout.toString('latin1'), /text\/event-stream/);
	await waitLine(rig.backend, /error server: pthread_create: /);
	// A stream on the kept connection: its worker was the one waiting for
	// the parked connections. Let in (HEAD), or refused 503 "no thread
	// free for a stream": either way a worker must be left for each.
	send(k1, 'GET', subPath('last-worker', 'b'), true);
	await head(k1, 'the kept stream');
	assert.match(k1.stdout.toString('latin1'),
	    /text\/event-stream|^Status: 503/m);
	if (/^Status: 503/m.test(k1.stdout.toString('latin1')))
		await poll(() => k1.ended, { what: 'the refusal' });

	// The front's next kept connection: a request, then parked.
	const k2 = await open(rig, t);
	send(k2, 'GET', '/healthz', true);
	await poll(() => k2.ended, { what: 'the second kept /healthz' });

	// A request on a new connection must be answered.
	const c = await open(rig, t);
	send(c, 'GET', '/healthz', false);
	const r = await withTimeout(c.response(), ANSWER_GUARD, null);
	unlinkSync(fault);
	assert.ok(r !== null && r.status === 200, 'a request on a new ' +
	    `connection was not answered within ${ANSWER_GUARD} ms: the one ` +
	    'worker left that is not a stream waits for the parked kept ' +
	    'connection, and none is left in accept() (fails on HEAD)');
});
