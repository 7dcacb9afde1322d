// The Express service routed with Express 4's defaults (`strict: false`):
// each API path matched with or without one trailing slash, so a client
// that joins its URLs with a final "/" (`/user/bob/devices/`, a
// subscribe URL built as a directory) worked. Through the default Caddy
// such a request must reach the same route, not a 404: an EventSource
// that gets a 404 gives up for good, and a POST's 404 says that the
// device is gone. The routes that were not the Express service's
// (/healthz, /readyz, /metrics, /ice-servers) keep their exact paths; in
// particular /metrics/ stays unanswered on the public site.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useStack, uid, subPath, postPath, listPath } from './harness.mjs';

const h = useStack({ before, after });
const T = { timeout: 30000 };

test('a trailing slash on subscribe, list and POST routes as without it',
    T, async () => {
	const c = h.stack.client();
	const u = uid('slash'), d = 'phone';
	// As EventSource asks: Accept: text/event-stream alone.
	const s = await h.stack.open(`${subPath(u, d)}/`,
	    { headers: { Accept: 'text/event-stream' } });
	const body = s.status === 200 ? '' : await s.text();
	assert.equal(s.status, 200, 'GET /subscribe/:user/device/:device/ is ' +
	    `a stream, as Express (strict: false) routed it; got ${s.status} ` +
	    `${body} (EventSource gives up for good on a non-200)`);
	assert.match(s.headers['content-type'] || '', /^text\/event-stream\b/i);
	await s.waitComments(1);

	const l = await c.get(`${listPath(u)}/`);
	assert.equal(l.status, 200, `GET /user/:user/devices/: ${l.text}`);
	assert.deepEqual(l.json(), [d], 'the device listed');

	const r = await c.postForm(`${postPath(u, d)}/`, { data: 'hi' });
	assert.equal(r.status, 200, 'POST /user/:user/device/:device/ ' +
	    `delivers, as Express routed it; got ${r.status} ${r.text} ` +
	    '(a 404 tells an old client the device is gone)');
	const ev = await s.nextEvent();
	assert.equal(ev.data, 'hi');
	s.close();
});

test('only one slash, and only on the API routes of the Express service',
    T, async () => {
	const c = h.stack.client();
	const u = uid('slash');
	// Two slashes never matched an Express route either.
	const two = await c.get(`${listPath(u)}//`);
	assert.equal(two.status, 404, `GET /user/:user/devices//: ${two.text}`);
	// Not the Express service's: exact paths, and /metrics never on the
	// public site.
	const m = await c.get('/metrics/');
	assert.equal(m.status, 404, `/metrics/ on the public site: ${m.text}`);
	assert.doesNotMatch(m.text, /^# (HELP|TYPE)/m, '/metrics/ body');
	const hz = await c.get('/healthz/');
	assert.equal(hz.status, 404, `/healthz/: ${hz.text}`);
});
