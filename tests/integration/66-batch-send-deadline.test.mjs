// Review (today's changes, 2026-12-06), raw FastCGI: BEEP_WRITE_TIMEOUT
// bounds the send of a whole batch, not of each 16 KiB piece of it.
//
// README (Reliability, "a reader that trickles") and fcgi_out: a batch is
// sent under one deadline across its partial writes, so that a client
// reading a trickle cannot hold a stream's write for as long as it likes;
// test 42 checks it through Caddy. Since d58b395 a batch's text is written
// as it is rendered, in pieces of 16 KiB (stream_out_spill()), and each
// piece is its own fcgi_out_write() with its own deadline: a client that
// reads 16 KiB per BEEP_WRITE_TIMEOUT (550 bytes a second at the default
// 30 s) is never cut however long a batch takes. Test 42 still passes only
// because its trickler reads some 8 kB/s here, slower than a piece a
// timeout.
//
// The test: a stream on a raw connection read at a steady ~100 kB/s, with
// BEEP_WRITE_TIMEOUT at 5 s (a 16 KiB piece, or the unix socket's buffer
// draining to where it is writable again, takes well under it), gets
// messages of 200,000 line breaks, each its own batch and 1.4 MB once
// rendered ("data: " per line): once the socket's buffer is full a batch
// needs some 14 s to be sent. The whole-send deadline must end the stream
// (a write timeout, not an overflow: the queue bounds are out of the way)
// before the client has read a whole batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startStack, uid, poll } from './harness.mjs';
import { UNBOUNDED_QUEUES } from './faults.mjs';
import {
	record, encodeParams, requestParams, beginRecord, readRecords,
	END_REQUEST as END, PARAMS, STDIN, STDOUT,
} from './fcgi.mjs';

const MESSAGES = 2;
const LINES = 200000;
const TIMEOUT = 5; // BEEP_WRITE_TIMEOUT, s
const PACE_BYTES = 1024, PACE_MS = 10; // the client's reading: ~100 kB/s

function requestHead(id, method, uri, extra = {}) {
	return Buffer.concat([
		beginRecord(id),
		record(PARAMS, id, encodeParams(requestParams(method, uri, extra))),
		record(PARAMS, id),
	]);
}

// One whole request on a fresh connection: resolves its STDOUT text.
async function request(socketPath, method, uri, extra = {}, body = null) {
	const sock = net.connect(socketPath);
	sock.on('error', () => {});
	let out = '', ended = false;
	const done = new Promise((resolve) => {
		readRecords(sock, (type, content) => {
			if (type === STDOUT)
				out += content.toString('latin1');
			if (type === END)
				ended = true;
		}, () => { if (ended) resolve(); });
		sock.on('close', resolve);
	});
	await once(sock, 'connect');
	const parts = [requestHead(1, method, uri, extra)];
	for (let at = 0; body && at < body.length; at += 65535)
		parts.push(record(STDIN, 1, body.subarray(at, at + 65535)));
	parts.push(record(STDIN, 1));
	sock.write(Buffer.concat(parts));
	await done;
	sock.destroy();
	return out;
}

async function health(socketPath) {
	const text = await request(socketPath, 'GET', '/healthz');
	return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
}

test('a batch sent to a client that reads a trickle is bounded by ' +
    'BEEP_WRITE_TIMEOUT as a whole, not per 16 KiB piece',
{ timeout: 120000 }, async (t) => {
	const stack = await startStack({ caddy: false, env: {
		...UNBOUNDED_QUEUES, BEEP_WRITE_TIMEOUT: String(TIMEOUT),
		BEEP_MAX_BODY: String(LINES + 1024),
		BEEP_KEEPALIVE: '60', BEEP_LOG_LEVEL: 'debug',
	} }, t);
	const u = uid('piece');

	// The stream, read PACE_BYTES every PACE_MS (the pace is the client,
	// not a wait of the test).
	const sock = net.connect(stack.socket);
	sock.on('error', () => {});
	t.after(() => { clearInterval(timer); sock.destroy(); });
	await once(sock, 'connect');
	sock.pause();
	sock.write(Buffer.concat([requestHead(1, 'GET',
	    `/subscribe/${u}/device/d`), record(STDIN, 1)]));
	let read = 0;
	const timer = setInterval(() => {
		const n = Math.min(PACE_BYTES, sock.readableLength);
		const b = n > 0 ? sock.read(n) : sock.read(0);
		if (b)
			read += b.length;
	}, PACE_MS);
	await poll(async () => (await health(stack.socket)).streams === 1,
	    { what: 'the stream registered' });
	const overflows0 = (await health(stack.socket)).overflows;

	const body = Buffer.from(`data=${'\n'.repeat(LINES)}`);
	for (let i = 0; i < MESSAGES; i++) {
		const r = await request(stack.socket, 'POST',
		    `/user/${u}/device/d`, {
			    CONTENT_TYPE: 'application/x-www-form-urlencoded',
			    CONTENT_LENGTH: String(body.length) }, body);
		assert.match(r, /\r\n\r\n\{"id":/, `POST ${i}: ${r.slice(0, 200)}`);
	}
	// One batch, as the client reads it: 7 bytes a line at least.
	const whole = LINES * 7;
	const closed = await poll(async () => {
		if ((await health(stack.socket)).streams === 0)
			return 'closed';
		return read >= whole ? 'all read' : null;
	}, { timeout: 90000, interval: 100,
	    what: 'the stream closed, or a whole batch read' });
	t.diagnostic(`${closed}: the client read ${read} bytes of ${whole}`);
	assert.equal(closed, 'closed', `the client read a whole batch of ` +
	    `~${whole} bytes at ~${PACE_BYTES * 1000 / PACE_MS} bytes/s ` +
	    `(~${Math.round(whole / (PACE_BYTES * 1000 / PACE_MS))} s) with ` +
	    `BEEP_WRITE_TIMEOUT at ${TIMEOUT} s, and its stream was not ` +
	    'closed: each 16 KiB piece of a batch gets a deadline of its own');
	assert.equal((await health(stack.socket)).overflows, overflows0,
	    'closed by the send deadline, not by the queue bounds');
	assert.ok(stack.backendLog.some((l) =>
	    new RegExp(`a write took longer than ${TIMEOUT}s: closing it`).test(l)),
	'the backend says the write took too long');
});
