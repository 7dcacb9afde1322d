// /metrics is for a scraper (BEEP_METRICS_ALLOW, loopback by default,
// through the loopback operations site), never for web pages: no scraper
// sends Origin or needs CORS.  It carried `Access-Control-Allow-Origin: *`
// like every API answer (BEEP_CORS_ORIGINS=*, the default), so any web page
// open in a browser on the service's host (a developer's `make run`, an
// operator's desktop) could fetch http://127.0.0.1:9180/metrics: the browser
// connects from loopback, which the allow-list admits, and the header let
// the page read the answer (version, users, devices, streams, traffic).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, Client } from './harness.mjs';

const T = { timeout: 60000 };

test('/metrics is not readable by a page of another origin', T,
    async (t) => {
	const stack = await startStack({}, t);
	const ops = new Client(stack.opsBase);
	try {
		const r = await ops.get('/metrics',
		    { headers: { Origin: 'https://evil.example' } });
		assert.equal(r.status, 200, 'loopback is allowed');
		assert.match(r.text, /^beep_streams_open /m);
		assert.equal(r.headers['access-control-allow-origin'], undefined,
		    'a page of any origin, run in a browser on this host, ' +
		    'may read the metrics');
	} finally {
		ops.close();
	}
});
// /healthz keeps its CORS headers (a page may show the service's health),
// so its counters went to any page of any origin in a browser on the
// service's host, as /metrics's did: the browser's request comes from
// loopback, and ACAO * let the page read them (the Host check of test 68
// did not help: the page asks for 127.0.0.1 by name).  A browser names
// the page's origin on every cross-origin request; scrapers and health
// checks send no Origin.  So a request with an Origin gets the status
// alone, CORS headers and all.
test('/healthz\'s counters are not readable by a page of another origin',
    T, async (t) => {
	const stack = await startStack({}, t);
	const ops = new Client(stack.opsBase);
	try {
		const own = await ops.get('/healthz');
		assert.equal(typeof JSON.parse(own.text).streams, 'number',
		    `a health check from loopback gets the counters: ${own.text}`);
		const r = await ops.get('/healthz',
		    { headers: { Origin: 'https://evil.example' } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.headers['access-control-allow-origin'], '*',
		    'the status stays readable by pages');
		assert.deepEqual(JSON.parse(r.text), { status: 'ok' },
		    'a page of any origin, run in a browser on this host, ' +
		    'may read the counters');
	} finally {
		ops.close();
	}
});
