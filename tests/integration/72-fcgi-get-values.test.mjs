// A FastCGI FCGI_GET_VALUES record that names a variable more than three
// times (FCGI_MAX_CONNS four times: 72 bytes of parameters) stops the whole
// backend. libfcgi (Debian 12's 2.4.2, and every release up to 2.4.7)
// writes its FCGI_GET_VALUES_RESULT into a 64-byte array on the stack
// (ProcessManagementRecord()), 17 bytes per name it knows, with no bound:
// the fourth name writes past it, and glibc's stack protector aborts the
// process ("*** stack smashing detected ***"), every stream with it. The
// README lists what libfcgi lets a raw peer do (a leak per management
// record, a worker held in a write, an oversized parameter's assertion);
// this is not among them, and one 80-byte record is all it takes, on
// the socket or on a `--listen HOST:PORT` address. Fails on HEAD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from './harness.mjs';
import {
	FcgiConn, record, encodeParams, requestParams, readRecords,
} from './fcgi.mjs';

const GET_VALUES = 9; // a management record (request id 0)

// One whole GET on a fresh connection: its response.
async function get(socket, uri) {
	const c = new FcgiConn(socket);
	await c.connected;
	c.begin(1);
	c.params(requestParams('GET', uri));
	c.endStdin();
	return c.response();
}

test('an FCGI_GET_VALUES naming a variable four times leaves the backend ' +
    'running', async (t) => {
	const stack = await startStack({ caddy: false }, t);
	assert.equal((await get(stack.socket, '/healthz')).status, 200);

	const c = new FcgiConn(stack.socket);
	await c.connected;
	const names = Buffer.concat(Array.from({ length: 4 },
	    () => encodeParams({ FCGI_MAX_CONNS: '' })));
	c.write(record(GET_VALUES, 0, names));
	// A request after it, so that libfcgi reads the record now. This
	// connection may be closed for the record (no front sends one).
	c.begin(1);
	c.params(requestParams('GET', '/healthz'));
	c.endStdin();
	await c.response();

	// The process holds on: a new connection is answered. (Had it
	// died, its listening socket, a lower descriptor than the
	// connection's, was closed before the connection was.)
	const after = await get(stack.socket, '/healthz')
	    .catch((e) => ({ status: null, error: e.code }));
	assert.equal(after.status, 200, 'the backend died on one ' +
	    `FCGI_GET_VALUES record (${after.error}): libfcgi's answer ` +
	    'overflowed its stack array; log: ' +
	    stack.backendLog.slice(-2).join(' | '));
});

test('an FCGI_GET_VALUES asking each variable once is answered, and the ' +
    'request after it too', async (t) => {
	const stack = await startStack({ caddy: false }, t);
	const c = new FcgiConn(stack.socket);
	const results = [];
	readRecords(c.sock, (type, content) => {
		if (type === GET_VALUES + 1)
			results.push(content.toString('latin1'));
	});
	await c.connected;
	c.write(record(GET_VALUES, 0, encodeParams({
		FCGI_MAX_CONNS: '', FCGI_MAX_REQS: '', FCGI_MPXS_CONNS: '',
	})));
	c.begin(1);
	c.params(requestParams('GET', '/healthz'));
	c.endStdin();
	const r = await c.response();
	assert.equal(r.status, 200, r.head);
	assert.equal(results.length, 1, 'one FCGI_GET_VALUES_RESULT');
	for (const name of ['FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS'])
		assert.ok(results[0].includes(name), `${name} in ${results[0]}`);
});
