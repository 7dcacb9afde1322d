// Review (2026-12-06, of abba454): at the descriptor limit, a connection
// whose peer sends part of a request and then closes is held until
// BEEP_READ_TIMEOUT, as one that sent nothing was before abba454.
//
// A request that took the last descriptor has no read deadline; its worker
// looks at it every 10 ms (server_read_unguarded()). abba454 looks again
// whenever FIONREAD is 0, so that a peer that closed having sent nothing is
// seen at once (test 67). But a peer that closed having sent a few bytes
// leaves FIONREAD at that count, unchanged: no look again, and a look would
// not see the end anyway (recv(MSG_PEEK) returns the queued bytes, never
// the EOF behind them). The worker holds the dead connection, its
// descriptor and itself for the whole BEEP_READ_TIMEOUT (up to an hour as
// configured), exactly when descriptors are short. A front whose client
// went mid-request (nginx with fastcgi_request_buffering off, a front that
// crashes or restarts mid-write) does it.
//
// The test (test 67's rig): the backend at its descriptor limit, a
// connection that sends the first record only takes the last descriptor,
// then closes: its descriptor must be closed without the read deadline's
// "closed unread".
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

test('at the descriptor limit a connection closed after it sent part ' +
    'of a request is let go at once, not after BEEP_READ_TIMEOUT', T,
async (t) => {
	// As test 19's atDescriptorLimit(): streams until one waits.
	const rig = new Rig(t, 'emfile-gone-part');
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
	// a request's first record only.
	const empty = new FcgiConn(rig.sock);
	t.after(() => empty.destroy());
	await empty.connected;
	await new Promise((resolve) => empty.sock.write(beginRecord(1), resolve));

	// Two streams go: the waiting one takes a descriptor, the partial
	// connection the last one, with none left for its read deadline (it
	// is accepted when it leaves the backlog: its worker then looks at
	// it at once, and finds a part).
	streams[0].destroy();
	streams[1].destroy();
	await poll(() => /\r\n\r\n:/.test(waiting.stdout.toString('latin1')),
	    { what: 'the waiting stream opened', timeout: 10000 });
	await poll(() => backlog(rig.sock) === 0,
	    { what: 'the empty connection accepted', timeout: 10000 });
	// Its peer goes, having sent a part: the worker's next look should
	// find the end, and the connection's descriptor be closed; or the read
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
	    'having sent part of a request, held its worker and descriptor ' +
	    `until BEEP_READ_TIMEOUT (${READ_TIMEOUT} s) and was logged as ` +
	    'unread: FIONREAD stays at the part, so no look runs again, and ' +
	    'a look (recv MSG_PEEK) returns the part, never the end behind it');
});
