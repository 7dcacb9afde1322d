// Review (today's changes, 2026-12-06): at the descriptor limit, a
// connection whose peer closes before it sent anything is let go at the
// worker's next look, not held for BEEP_READ_TIMEOUT.
//
// A request that took the last descriptor has no read deadline; its worker
// looks at it every 10 ms (server_read_unguarded()), and a look that finds
// the peer gone (recv() returns 0) lets libfcgi read the end and close the
// connection at once. Since 3a4a231 the worker looks again only when
// FIONREAD says more has come; a peer that closes with nothing queued
// leaves FIONREAD at 0, so the end is never looked at: the worker holds the
// dead connection, its descriptor and itself for the whole BEEP_READ_TIMEOUT
// (up to an hour as configured), then logs it as a request that did not
// come in time and backs off as after a failed accept(). A TCP health check
// of a FastCGI port (connect, then close) or a front that gives up on a
// connection does it, exactly when descriptors are short.
//
// The test (the rig of test 19): the backend at its descriptor limit, a
// connection that sends nothing takes the last descriptor, then closes:
// its descriptor must be closed without the read deadline's "closed
// unread".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BEEP_BIN, poll } from './harness.mjs';
import { Rig, launch, waitLine } from './fronts.mjs';
import { execFileSync } from 'node:child_process';
import { procFigures } from './faults.mjs';
import {
	FcgiConn, requestParams, beginRecord, record, encodeParams, PARAMS, STDIN,
} from './fcgi.mjs';

const T = { timeout: 90000 };
const LIMIT = 40;
const READ_TIMEOUT = 2; // seconds

// Connections in the backlog of the listening socket at path (ss's Recv-Q).
function backlog(path) {
	const out = execFileSync('ss', ['-xlH', 'src', path], { encoding: 'utf8' });
	const f = out.trim().split(/\s+/);
	assert.equal(f[1], 'LISTEN', out);
	return Number(f[2]);
}

// A subscribe written whole in one write: it needs no read deadline. A
// user each (a user's 33rd device would be refused, and its connection
// closed).
function rawStream(sock, i) {
	const c = new FcgiConn(sock);
	const p = encodeParams(requestParams('GET',
	    `/subscribe/emfile${i}/device/d`));
	c.write(Buffer.concat([beginRecord(1), record(PARAMS, 1, p),
	    record(PARAMS, 1), record(STDIN, 1)]));
	return c;
}

test('at the descriptor limit a connection closed before it sent ' +
    'anything is let go at once, not after BEEP_READ_TIMEOUT', T,
async (t) => {
	// As test 19's atDescriptorLimit(): streams until one waits.
	const rig = new Rig(t, 'emfile-gone');
	rig.backend = rig.track(launch('prlimit', [`--nofile=${LIMIT}:${LIMIT}`,
	    '--', BEEP_BIN, '--listen', `unix:${rig.sock}`], {
		cwd: rig.dir, tag: 'beep',
		env: { ...process.env, BEEP_READ_TIMEOUT: String(READ_TIMEOUT),
		    BEEP_LOG_LEVEL: 'debug', BEEP_MIN_IDLE: '2' },
	}));
	await waitLine(rig.backend, /\bready\b/);
	const streams = [];
	t.after(() => streams.forEach((c) => c.destroy()));
	for (let i = 0; i < LIMIT; i++) {
		const c = rawStream(rig.sock, i);
		streams.push(c);
		await c.connected;
		const served = await poll(() => c.stdout.length > 0, {
			what: `stream ${i} answered`, timeout: 3500,
		}).catch(() => false);
		if (!served)
			break;
	}
	assert.ok(rig.backend.lines.some((l) =>
	    /accept failing: EMFILE/.test(l)), 'the descriptor limit reached');
	const waiting = streams[streams.length - 1];

	// Behind the waiting stream in the backlog: a connection that sends
	// nothing (yet).
	const empty = new FcgiConn(rig.sock);
	t.after(() => empty.destroy());
	await empty.connected;

	// Two streams go: the waiting one takes a descriptor, the empty
	// connection the last one, with none left for its read deadline (it
	// is accepted when it leaves the backlog: its worker then looks at
	// it at once, and finds nothing).
	streams[0].destroy();
	streams[1].destroy();
	await poll(() => /\r\n\r\n:/.test(waiting.stdout.toString('latin1')),
	    { what: 'the waiting stream opened', timeout: 10000 });
	await poll(() => backlog(rig.sock) === 0,
	    { what: 'the empty connection accepted', timeout: 10000 });
	// Its peer goes, having sent nothing: the worker's next look finds the
	// end, and the connection's descriptor is closed; or the read
	// deadline lets it go (and says so first).
	const fds = procFigures(rig.backend.pid).fds;
	empty.destroy();
	const deadlineRe = /read deadline: EMFILE: connection closed unread/;
	const outcome = await poll(() => {
		if (rig.backend.lines.some((l) => deadlineRe.test(l)))
			return 'held until the read deadline';
		return procFigures(rig.backend.pid).fds < fds ? 'let go' : null;
	}, { what: 'the closed connection let go', timeout: 4 * READ_TIMEOUT * 1000 });
	assert.equal(outcome, 'let go', 'a connection whose peer had closed, ' +
	    'having sent nothing, held its worker and descriptor until ' +
	    `BEEP_READ_TIMEOUT (${READ_TIMEOUT} s) and was logged as unread: ` +
	    'the look runs only when FIONREAD changes, and an end with ' +
	    'nothing queued leaves it at 0');
});
