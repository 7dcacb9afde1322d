// The shipped Caddyfile's operations site (/metrics, /readyz, /healthz on
// OPS_BIND:OPS_PORT; README: set OPS_BIND for a scraper on another host)
// passes a request's body to the backend as it comes, where the public
// site reads each body whole first (buffer_requests, test 18: slow bodies
// by the hundred hold no backend thread). So each request with a body
// trickling in holds a backend worker there until BEEP_READ_TIMEOUT (10 s
// by default), and anyone who reaches that port holds them all (the
// workers beyond the streams are 2 x BEEP_MIN_IDLE + 256) by opening that
// many: POSTs and subscribes of the public site then wait for one. Fails on
// HEAD: the operations site needs the public site's buffer_requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startStack } from './harness.mjs';

const SLOW = 20;

// A GET /healthz whose chunked body has begun and not ended. Resolves
// once Caddy reads its body (its 100 Continue): through the FastCGI
// transport it has then dialled the backend and sent the parameters.
async function slowGet(port, p) {
	const sock = net.connect(port, '127.0.0.1');
	sock.on('error', () => {});
	await once(sock, 'connect');
	let got = '';
	const continued = new Promise((resolve) => sock.on('data', (d) => {
		got += d.toString('latin1');
		if (/^HTTP\/1\.1 100 /.test(got))
			resolve();
	}));
	sock.write(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
	    'Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n');
	await continued;
	sock.write('1\r\nx\r\n');
	return sock;
}

test('slow bodies through the operations site hold no backend thread',
    { timeout: 60000 }, async (t) => {
	const stack = await startStack({ env: { BEEP_READ_TIMEOUT: '300' } }, t);
	const c = stack.client();
	const port = Number(new URL(stack.opsBase).port);
	const slow = [];
	t.after(() => slow.forEach((s) => s.destroy()));
	for (let i = 0; i < SLOW; i++)
		slow.push(await slowGet(port, '/healthz'));
	// Only this request is the backend's: the others are Caddy's until
	// their bodies end.
	const h = await c.health();
	assert.equal(h.requests, 1, `${h.requests - 1} requests with a body ` +
	    'on its way hold a backend worker each (for up to ' +
	    'BEEP_READ_TIMEOUT): the operations site passes bodies as they ' +
	    `come; threads ${h.threads}`);
});
