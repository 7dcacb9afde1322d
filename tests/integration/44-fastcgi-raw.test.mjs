// Issue 13, fault: a misbehaving front, speaking FastCGI straight to the
// backend's socket (no Caddy: a small FastCGI client over node:net).
// ABORT_REQUEST records (before the body, in the middle of it, on a stream),
// bodies sent half and the connection closed, a front that closes in the
// middle of a response or a stream, and records that are not FastCGI. After
// each, the backend is alive and answers, no stream is left, and its
// threads and descriptors go back to where they were (a worker is never
// kept by a request that cannot finish). The backend's log is checked for
// errors and sanitizer reports when the stack stops, as everywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, poll } from './harness.mjs';
import { procFigures } from './faults.mjs';
import {
	KeptConn as Conn, record, encodeParams, requestParams, beginRecord,
	ABORT_REQUEST as ABORT, PARAMS, STDIN,
} from './fcgi.mjs';

const MIN_IDLE = 8;

function requestHead(id, method, uri, extra = {}) {
	return Buffer.concat([
		beginRecord(id),
		record(PARAMS, id, encodeParams(requestParams(method, uri, extra))),
		record(PARAMS, id),
	]);
}

// One whole GET through a fresh connection; resolves the response text.
async function get(socketPath, uri) {
	const c = new Conn(socketPath);
	await c.ready;
	c.write(Buffer.concat([requestHead(1, 'GET', uri), record(STDIN, 1)]));
	await c.until(() => c.ended, `GET ${uri}`);
	c.destroy();
	return c.answers[0];
}

// A CGI response's status (no Status: line means 200).
const statusOf = (text) => Number(/^Status: (\d+)/m.exec(text)?.[1] ?? 200);

async function health(stack) {
	const text = await get(stack.socket, '/healthz');
	assert.equal(statusOf(text), 200, text);
	return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
}

test('raw FastCGI: aborts, half bodies, fronts that close mid-response, ' +
    'garbage: no crash, nothing left, every worker freed', { timeout: 180000 },
async (t) => {
	const stack = await startStack({ caddy: false, env: {
		BEEP_KEEPALIVE: '1', BEEP_WRITE_TIMEOUT: '2', BEEP_GRACE_SECONDS: '0',
		BEEP_MIN_IDLE: String(MIN_IDLE),
	} }, t);
	const sock = stack.socket;
	const u = uid('raw');
	const pid = stack.backend.pid;
	assert.equal((await health(stack)).streams, 0);
	const before = procFigures(pid);
	const post = (d) => requestHead(1, 'POST', `/user/${u}/device/${d}`, {
		CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '40',
	});

	// 1. ABORT_REQUEST after the params, before any body.
	{
		const c = new Conn(sock);
		await c.ready;
		c.write(Buffer.concat([post('a'), record(ABORT, 1)]));
		await c.until(() => c.ended || c.closed, 'abort before the body');
		c.destroy();
	}
	// 2. ABORT_REQUEST in the middle of the body.
	{
		const c = new Conn(sock);
		await c.ready;
		c.write(Buffer.concat([post('b'),
		    record(STDIN, 1, Buffer.from('{"data":"12345')), record(ABORT, 1)]));
		await c.until(() => c.ended || c.closed, 'abort mid-body');
		c.destroy();
	}
	// 3. Half a body, then the front closes the connection.
	{
		const c = new Conn(sock);
		await c.ready;
		c.write(Buffer.concat([post('c'),
		    record(STDIN, 1, Buffer.from('{"data":"12'))]));
		c.destroy();
	}
	// 4. Half a body, then nothing: BEEP_WRITE_TIMEOUT lets it go.
	const stalled = new Conn(sock);
	await stalled.ready;
	stalled.write(Buffer.concat([post('d'),
	    record(STDIN, 1, Buffer.from('{"data":"1'))]));
	// 5. A stream, then ABORT_REQUEST, then the front closes.
	{
		const c = new Conn(sock);
		await c.ready;
		c.write(Buffer.concat([requestHead(1, 'GET',
		    `/subscribe/${u}/device/s1`), record(STDIN, 1)]));
		await c.until(() => /\r\n\r\n:/.test(c.out), 'stream opened');
		c.write(record(ABORT, 1));
		await c.until(() => c.ended || c.closed ||
		    c.out.split('\n:').length > 2, 'stream after abort');
		// libfcgi reads ABORT_REQUEST only while a request reads its
		// input; a stream reads nothing more, so the abort is seen when
		// the front closes (which nginx and Caddy do instead of aborting).
		t.diagnostic(`ABORT_REQUEST on an open stream: ${c.ended ?
		    'END_REQUEST' : c.closed ? 'connection closed' :
		    'no effect until the front closes'}`);
		c.destroy();
	}
	// 6. A front that closes in the middle of a stream, and one that closes
	// in the middle of an answer (after the request, before reading).
	{
		const c = new Conn(sock);
		await c.ready;
		c.write(Buffer.concat([requestHead(1, 'GET',
		    `/subscribe/${u}/device/s2`), record(STDIN, 1)]));
		await c.until(() => /\r\n\r\n:/.test(c.out), 'stream opened');
		c.destroy();
		const g = new Conn(sock);
		await g.ready;
		g.write(Buffer.concat([requestHead(1, 'GET', `/user/${u}/devices`),
		    record(STDIN, 1)]));
		g.destroy();
	}
	// 7. Not FastCGI at all, and a record of an unknown version.
	{
		const c = new Conn(sock);
		await c.ready;
		c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
		await c.until(() => c.closed || c.ended, 'HTTP on the FastCGI socket');
		c.destroy();
		const v = new Conn(sock);
		await v.ready;
		const bad = beginRecord(1);
		bad[0] = 9;
		v.write(bad);
		await v.until(() => v.closed || v.ended, 'bad version');
		v.destroy();
	}

	// The backend answers, nothing is left, workers and descriptors return.
	await poll(async () => {
		const h = await health(stack);
		return h.streams === 0 && h.devices === 0;
	}, { timeout: 30000, interval: 200, what: 'no stream or device left' });
	await stalled.until(() => stalled.ended || stalled.closed,
	    'the stalled body let go (BEEP_WRITE_TIMEOUT)');
	stalled.destroy();
	const after = await poll(() => {
		const f = procFigures(pid);
		return f.threads <= before.threads + MIN_IDLE &&
		    f.fds <= before.fds ? f : null;
	}, { timeout: 30000, interval: 200,
	    what: 'threads and descriptors back' }).catch(() => procFigures(pid));
	t.diagnostic(`before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
	assert.ok(after.threads <= before.threads + MIN_IDLE,
	    `threads ${before.threads} -> ${after.threads}`);
	assert.ok(after.fds <= before.fds, `fds ${before.fds} -> ${after.fds}`);
	// And a normal exchange still works on a raw connection.
	const c = new Conn(sock);
	await c.ready;
	c.write(Buffer.concat([requestHead(1, 'GET', `/subscribe/${u}/device/z`),
	    record(STDIN, 1)]));
	await c.until(() => /\r\n\r\n:/.test(c.out), 'stream opened');
	const body = Buffer.from('{"data":"hello"}');
	const p = new Conn(sock);
	await p.ready;
	p.write(Buffer.concat([requestHead(1, 'POST', `/user/${u}/device/z`, {
		CONTENT_TYPE: 'application/json', CONTENT_LENGTH: body.length,
	}), record(STDIN, 1, body), record(STDIN, 1)]));
	await p.until(() => p.ended, 'POST answered');
	assert.equal(statusOf(p.answers[0]), 200, p.answers[0]);
	await c.until(() => /data: hello/.test(c.out), 'event delivered');
	p.destroy();
	c.destroy();
});
