// Reviews (2026-12-06, of 3a4a231 and of abba454): at the descriptor
// limit, a connection whose peer closes is let go at the worker's next
// look, not held for BEEP_READ_TIMEOUT, whether it had sent nothing or
// part of a request.
//
// A request that took the last descriptor has no read deadline; its worker
// looks at it every 10 ms (server_read_unguarded()). Since 3a4a231 the
// worker looked again only when FIONREAD said more had come: a peer that
// closed with nothing queued left FIONREAD at 0, and the end was never
// looked at (abba454 looked again at 0). One that closed having sent a few
// bytes left FIONREAD at that count, and a look (recv MSG_PEEK) returns the
// queued bytes, never the end behind them. Either way the worker held the
// dead connection, its descriptor and itself for the whole
// BEEP_READ_TIMEOUT (up to an hour as configured), then logged it as a
// request that did not come in time and backed off as after a failed
// accept(). A TCP health check of a FastCGI port (connect, then close), a
// front that gives up on a connection, or one whose client left
// mid-request does it, exactly when descriptors are short.
//
// The test (the rig of test 19): the backend at its descriptor limit, a
// connection that sends nothing (or a request's first record) takes the
// last descriptor, then closes: its descriptor must be closed without the
// read deadline's "closed unread".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poll } from './harness.mjs';
import { procFigures } from './faults.mjs';
import { FcgiConn, beginRecord } from './fcgi.mjs';
import {
	atDescriptorLimit, backlog, linesToExit, CLOSED_UNREAD, READ_TIMEOUT,
} from './emfile.mjs';

const T = { timeout: 90000 };

// At the limit, a connection that sends first (possibly nothing) takes the
// last descriptor and then closes: 'let go', or 'held until the read
// deadline'.
async function peerGoneAtLimit(t, name, first) {
	const { rig, streams, waiting } = await atDescriptorLimit(t, name);
	// Behind the waiting stream in the backlog.
	const conn = new FcgiConn(rig.sock);
	t.after(() => conn.destroy());
	await conn.connected;
	if (first.length > 0)
		await new Promise((resolve) => conn.sock.write(first, resolve));
	// Two streams go: the waiting one takes a descriptor, the connection
	// the last one, with none left for its read deadline (it is accepted
	// when it leaves the backlog: its worker then looks at it at once).
	streams[0].destroy();
	streams[1].destroy();
	await poll(() => /\r\n\r\n:/.test(waiting.stdout.toString('latin1')),
	    { what: 'the waiting stream opened', timeout: 10000 });
	await poll(() => backlog(rig.sock) === 0,
	    { what: 'the connection accepted', timeout: 10000 });
	// Its peer goes: the worker's next look finds the end, and the
	// connection's descriptor is closed; or the read deadline lets it go
	// (and says so first).
	const fds = procFigures(rig.backend.pid).fds;
	conn.destroy();
	const how = await poll(() => {
		if (rig.backend.lines.some((l) => CLOSED_UNREAD.test(l)))
			return 'held until the read deadline';
		return procFigures(rig.backend.pid).fds < fds ? 'let go' : null;
	}, { what: 'the closed connection let go',
	    timeout: 4 * READ_TIMEOUT * 1000 });
	// The deadline's line comes before its close, but the look at the
	// descriptors may come before the line is read from the backend's
	// pipe: its whole log, to its exit, says which it was.
	return await linesToExit(rig, CLOSED_UNREAD) > 0 ?
	    'held until the read deadline' : how;
}

test('at the descriptor limit a connection closed before it sent ' +
    'anything is let go at once, not after BEEP_READ_TIMEOUT', T,
async (t) => {
	assert.equal(await peerGoneAtLimit(t, 'emfile-gone', Buffer.alloc(0)),
	    'let go', 'a connection whose peer had closed, having sent ' +
	    'nothing, held its worker and descriptor until BEEP_READ_TIMEOUT ' +
	    `(${READ_TIMEOUT} s) and was logged as unread: the look ran only ` +
	    'when FIONREAD changed, and an end with nothing queued leaves it ' +
	    'at 0');
});

test('at the descriptor limit a connection closed after it sent part ' +
    'of a request is let go at once, not after BEEP_READ_TIMEOUT', T,
async (t) => {
	assert.equal(await peerGoneAtLimit(t, 'emfile-gone-part',
	    beginRecord(1)), 'let go', 'a connection whose peer had closed, ' +
	    'having sent part of a request, held its worker and descriptor ' +
	    `until BEEP_READ_TIMEOUT (${READ_TIMEOUT} s) and was logged as ` +
	    'unread: FIONREAD stays at the part, so no look runs again, and ' +
	    'a look (recv MSG_PEEK) returns the part, never the end behind it');
});
