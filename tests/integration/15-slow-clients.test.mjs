// A client that starts a POST and then stops sending its body holds a
// backend worker only for BEEP_READ_TIMEOUT: behind a front that passes
// bodies through as they arrive (Caddy without buffer_requests, its
// default; the shipped Caddyfile reads them whole first), the worker's read
// gives up (and says so) instead of waiting for ever. (The client's own
// connection is Caddy's to time out; 18-read-deadlines covers bodies that
// keep trickling, and the shipped Caddyfile's buffering.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack, uid, postPath, poll } from './harness.mjs';
import { streamingCaddyfile } from './fronts.mjs';

const T = { timeout: 60000 };

// Send headers promising 1,000 bytes and only 10 of them.
function stalledPost(port, p) {
	const sock = net.connect(port, '127.0.0.1');
	sock.on('error', () => {});
	sock.on('connect', () => {
		sock.write(`POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
		    'Content-Type: application/json\r\n' +
		    'Content-Length: 1000\r\n\r\n{"data":"x');
	});
	return sock;
}

test('a stalled upload is let go after BEEP_READ_TIMEOUT', T, async (t) => {
	const stack = await startStack({ env: { BEEP_READ_TIMEOUT: '1' },
	    caddyfile: streamingCaddyfile(t) }, t);
	const c = stack.client();
	const sock = stalledPost(c.port, postPath(uid('slow'), 'd'));
	t.after(() => sock.destroy());
	// Without a read timeout the worker waits for the rest for ever.
	await poll(async () => stack.backendLog.some((l) =>
	    / warn server: request not read within BEEP_READ_TIMEOUT \(1s\)/
		.test(l)),
	    { timeout: 15000, what: 'the backend let the stalled upload go' });
	assert.equal((await c.health()).status, 'ok');
});
