// Review (today's changes, 2026-12-06): /metrics and /healthz's counters
// are not readable by a web page through DNS rebinding either.
//
// 5aab398 and be2322d took the CORS header off /metrics and the counters
// "so that no web page in a browser on an allowed host can read it" (test
// 62): a page of another origin gets the answer but cannot read it. A page
// needs no CORS for its own origin, though: a site whose name first
// resolves to its server and then to 127.0.0.1 (DNS rebinding) serves a
// page from http://rebind.example:9180/ and, once the name points at
// loopback, fetches /metrics from "its own" origin. The browser connects
// from loopback, which BEEP_METRICS_ALLOW admits, and the operations site
// (`http://:9180`) and the backend answer whatever Host the request names:
// the page reads the version, users, devices, streams and traffic.
//
// What tells such a request apart is its Host: a name that is not this
// host's (a scraper or a health check asks by loopback address or
// `localhost`, or by the address OPS_BIND gives). The test asks the
// operations site for /metrics and /healthz as a rebound page does (its
// Host a foreign name, no Origin: same-origin GETs send none) and requires
// that the counters are not given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, Client } from './harness.mjs';

const T = { timeout: 60000 };

test('the counters are not given to a request for a foreign host name ' +
    '(a DNS-rebound page) on the operations site', T, async (t) => {
	const stack = await startStack({}, t);
	const ops = new Client(stack.opsBase);
	try {
		// The scraper's own request still gets them.
		const own = await ops.get('/metrics');
		assert.equal(own.status, 200, own.text);
		assert.match(own.text, /^beep_streams_open /m);

		const host = `rebind.example:${stack.opsPort}`;
		const m = await ops.get('/metrics', { headers: { Host: host } });
		assert.doesNotMatch(m.text, /^beep_streams_open /m,
		    `GET /metrics with Host: ${host} (a page whose name was ` +
		    're-pointed at 127.0.0.1, reading its own origin) got the ' +
		    `metrics: ${m.status}`);
		const h = await ops.get('/healthz', { headers: { Host: host } });
		assert.equal(JSON.parse(h.text).streams, undefined,
		    `GET /healthz with Host: ${host} got the counters: ${h.text}`);
	} finally {
		ops.close();
	}
});
