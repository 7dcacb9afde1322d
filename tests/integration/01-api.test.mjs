// The HTTP API through Caddy: health, subscribe headers and first comment,
// device list, POST as JSON and as form, JSON values vs strings, event names.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	useStack, startStack, uid, listPath, postPath,
} from './harness.mjs';

const h = useStack({ before, after });
const T = { timeout: 30000 };

// Every JSON answer, errors included, is kept by no cache: a device list
// or a 404 changes as streams come and go, and an authenticated user's
// answers are that user's.
function assertJsonType(r) {
	assert.match(r.headers['content-type'] || '', /^application\/json\b/i,
	    `content-type of ${r.status} answer`);
	assert.equal(r.headers['cache-control'], 'no-store',
	    `cache-control of ${r.status} answer`);
}

test('GET /healthz answers a JSON object with numeric counters', T, async () => {
	const c = h.stack.client();
	const r = await c.get('/healthz');
	assert.equal(r.status, 200);
	assertJsonType(r);
	const body = r.json();
	assert.equal(typeof body, 'object');
	assert.ok(body !== null && !Array.isArray(body));
	for (const k of ['users', 'devices', 'streams', 'threads']) {
		assert.equal(typeof body[k], 'number', `healthz.${k}`);
		assert.ok(Number.isInteger(body[k]) && body[k] >= 0, `healthz.${k}`);
	}
	assert.ok(body.threads >= 1, 'at least one thread');
});

// HEAD, as monitors probe with it: every GET route answers it as GET, with
// no body, but a stream, which a HEAD must not open.
test('HEAD on the GET routes: 200 without a body; not on a stream', T,
    async () => {
	const c = h.stack.client();
	for (const p of ['/healthz', '/readyz', listPath(uid('head')),
	    '/ice-servers']) {
		const r = await c.request('HEAD', p);
		assert.equal(r.status, 200, `HEAD ${p}`);
		assertJsonType(r);
		assert.equal(r.text, '', `HEAD ${p}: no body`);
	}
	const r = await c.request('HEAD', `/subscribe/${uid('head')}/device/d`);
	assert.equal(r.status, 405);
	assert.equal(r.headers.allow, 'GET, OPTIONS');
});

test('subscribe: SSE headers, then a comment at once', T, async () => {
	const u = uid('user'), d = uid('dev');
	const s = await h.stack.open(`/subscribe/${u}/device/${d}`);
	assert.equal(s.status, 200);
	assert.match(s.headers['content-type'] || '', /^text\/event-stream\b/i);
	assert.equal(s.headers['cache-control'], 'no-cache, no-transform');
	assert.equal(s.headers['x-accel-buffering'], 'no');
	// Default keepalive is 15 s: the comment arriving within the guard is
	// the initial one.
	await s.waitComments(1, 10000);
	assert.equal(s.rawText[0], ':', 'body starts with a comment line');
	// Naming the keepalive interval, for clients that watch for it.
	assert.match(s.rawText, /^: beep-signal keepalive=[0-9]+\n/);
	assert.equal(s.received, 0, 'no event before any post');
	s.close();
});

// EventSource keeps the last retry: it parsed as its wait before every
// later reconnect: a refusal's (5-10 s), a stop's or a replaced stream's
// (30 s) would stay so for good. Every stream starts with its own, before
// anything else: BEEP_RECONNECT_MS (2 s, as beep-signal.js waits when told
// none) plus up to half as much again.
test('subscribe: every stream starts with retry: BEEP_RECONNECT_MS, spread',
    T, async (t) => {
	const u = uid('user');
	for (const d of ['a', 'b', 'c']) {
		const s = await h.stack.subscribe(u, d);
		await s.waitComments(1, 10000);
		assert.equal(s.retries.length, 1, d);
		assert.ok(s.retry >= 2000 && s.retry <= 3000, `${d}: ${s.retry}`);
		assert.deepEqual(s.fields[0], ['retry', String(s.retry)],
		    `${d}: the first field`);
		s.close();
	}
	// 0: none at all (the browser's own wait).
	const none = await startStack({ env: { BEEP_RECONNECT_MS: '0' } }, t);
	const s = await none.subscribe(u, 'a');
	const r = await none.client().postJson(postPath(u, 'a'), { data: 1 });
	assert.equal(r.status, 200, r.text);
	assert.equal((await s.nextEvent()).data, '1');
	assert.deepEqual(s.retries, []);
	s.close();
});

test('device list: [] for unknown user, live devices sorted-equal', T, async () => {
	const c = h.stack.client();
	const unknown = await c.get(listPath(uid('nobody')));
	assert.equal(unknown.status, 200);
	assertJsonType(unknown);
	assert.deepEqual(unknown.json(), []);

	const u = uid('user');
	const s1 = await h.stack.subscribe(u, 'phone');
	const s2 = await h.stack.subscribe(u, 'laptop');
	const s3 = await h.stack.subscribe(u, 'laptop'); // same device twice
	const other = await h.stack.subscribe(uid('other'), 'phone');
	const r = await c.get(listPath(u));
	assert.equal(r.status, 200);
	assertJsonType(r);
	const list = r.json();
	assert.ok(Array.isArray(list));
	assert.deepEqual(list.slice().sort(), ['laptop', 'phone'],
	    'each live device once, and only this user\'s');
	for (const s of [s1, s2, s3, other])
		s.close();
});

test('POST JSON string delivers the data as is; answer is {"id":...}', T, async () => {
	const c = h.stack.client();
	const u = uid('user'), d = uid('dev');
	const s = await h.stack.subscribe(u, d);
	const r = await c.postJson(postPath(u, d), { data: 'hello world' });
	assert.equal(r.status, 200, r.text);
	assertJsonType(r);
	assert.match(r.json().id, /^\d+-\d+$/, 'answer is {"id": "<epoch>-<n>"}');
	const ev = await s.nextEvent();
	assert.equal(ev.type, 'message');
	assert.equal(ev.data, 'hello world');

	// Content-Type with a charset parameter is accepted.
	const r2 = await c.postJson(postPath(u, d), { data: 'with charset' },
	    { headers: { 'Content-Type': 'application/json; charset=utf-8' } });
	assert.equal(r2.status, 200, r2.text);
	assert.equal((await s.nextEvent()).data, 'with charset');

	// A JSON string that looks like JSON stays verbatim (no re-encoding).
	const looks = '{ "a" : 1 ,  "b":[1, 2] }';
	assert.equal((await c.postJson(postPath(u, d), { data: looks })).status,
	    200);
	assert.equal((await s.nextEvent()).data, looks);
	assert.equal((await c.postJson(postPath(u, d), { data: '42' })).status,
	    200);
	assert.equal((await s.nextEvent()).data, '42');
	s.close();
});

test('POST JSON non-string values arrive as compact JSON text', T, async () => {
	const c = h.stack.client();
	const u = uid('user'), d = uid('dev');
	const s = await h.stack.subscribe(u, d);
	// Raw request bodies with whitespace, so compaction is observable.
	const cases = [
		['{"data": 42}', '42'],
		['{"data": -7}', '-7'],
		['{"data": 1.5}', '1.5'],
		['{"data": true}', 'true'],
		['{"data": false}', 'false'],
		['{"data": { "a" : 1 }}', '{"a":1}'],
		['{"data": [ 1 , 2 ]}', '[1,2]'],
		['{"data": {"sdp": "v=0", "type": "offer", "n": [1, {"x": null}]}}',
		    '{"sdp":"v=0","type":"offer","n":[1,{"x":null}]}'],
		['{"data": {}}', '{}'],
		['{"data": []}', '[]'],
		['{"data": "\\u00e9\\n"}', '\u00e9\n'],
	];
	for (const [body, want] of cases) {
		const r = await c.postJson(postPath(u, d), body);
		assert.equal(r.status, 200, `${body}: ${r.text}`);
		const ev = await s.nextEvent();
		assert.equal(ev.data, want, body);
		assert.equal(ev.type, 'message');
	}
	s.close();
});

test('POST form data and event; JSON event field', T, async () => {
	const c = h.stack.client();
	const u = uid('user'), d = uid('dev');
	const s = await h.stack.subscribe(u, d);

	let r = await c.postForm(postPath(u, d), { data: 'form hello & = +' });
	assert.equal(r.status, 200, r.text);
	assert.match(r.json().id, /^\d+-\d+$/, 'answer is {"id": "<epoch>-<n>"}');
	let ev = await s.nextEvent();
	assert.equal(ev.data, 'form hello & = +');
	assert.equal(ev.type, 'message');

	r = await c.postForm(postPath(u, d), 'data=%7B%22x%22%3A1%7D&event=offer');
	assert.equal(r.status, 200, r.text);
	ev = await s.nextEvent();
	assert.equal(ev.data, '{"x":1}', 'form data is a string, verbatim');
	assert.equal(ev.type, 'offer');

	// '+' is a space in form encoding.
	r = await c.postForm(postPath(u, d), 'event=ice-candidate&data=a+b');
	assert.equal(r.status, 200, r.text);
	ev = await s.nextEvent();
	assert.equal(ev.data, 'a b');
	assert.equal(ev.type, 'ice-candidate');

	r = await c.postJson(postPath(u, d), { data: { sdp: 'x' }, event: 'answer' });
	assert.equal(r.status, 200, r.text);
	ev = await s.nextEvent();
	assert.equal(ev.type, 'answer');
	assert.equal(ev.data, '{"sdp":"x"}');

	const name = 'A-z_0.9-'.padEnd(64, 'x');
	r = await c.postJson(postPath(u, d), { data: 'long name', event: name });
	assert.equal(r.status, 200, r.text);
	ev = await s.nextEvent();
	assert.equal(ev.type, name);

	// An event name does not stick to the next message.
	r = await c.postJson(postPath(u, d), { data: 'plain again' });
	assert.equal(r.status, 200);
	ev = await s.nextEvent();
	assert.equal(ev.type, 'message');
	assert.equal(ev.data, 'plain again');
	assert.equal(ev.lastEventId, r.json().id, 'the event carries the id the POST answered');
	s.close();
});

test('messages to one device arrive in order, only on that device', T, async () => {
	const c = h.stack.client();
	const u = uid('user');
	const a = await h.stack.subscribe(u, 'a');
	const b = await h.stack.subscribe(u, 'b');
	for (let i = 0; i < 20; i++) {
		const r = await c.postJson(postPath(u, 'a'), { data: `a${i}` });
		assert.equal(r.status, 200);
	}
	assert.equal((await c.postJson(postPath(u, 'b'), { data: 'b0' })).status,
	    200);
	for (let i = 0; i < 20; i++)
		assert.equal((await a.nextEvent()).data, `a${i}`);
	assert.equal((await b.nextEvent()).data, 'b0',
	    'b gets only its own message');
	// Marker proves nothing else was queued for b.
	assert.equal((await c.postJson(postPath(u, 'b'), { data: 'end' })).status,
	    200);
	assert.equal((await b.nextEvent()).data, 'end');
	a.close();
	b.close();
});

test('ids with %2F, spaces and UTF-8 are one segment each', T, async () => {
	const c = h.stack.client();
	const u = `${uid('team')}/a b`, d = 'caf\u00e9 \u{1F4F1}/1';
	const s = await h.stack.subscribe(u, d);
	assert.deepEqual(await c.devices(u), [d]);
	const r = await c.postJson(postPath(u, d), { data: 'slash ok' });
	assert.equal(r.status, 200, r.text);
	assert.equal((await s.nextEvent()).data, 'slash ok');
	s.close();
});

test('a query string (e.g. a token) does not change the route', T, async () => {
	const c = h.stack.client();
	const u = uid('user'), d = uid('dev');
	const s = await h.stack.open(`/subscribe/${u}/device/${d}?token=abc&x=1`);
	assert.equal(s.status, 200, await (s.status === 200 ? '' : s.text()));
	await s.waitComments(1);
	const l = await c.get(`/user/${u}/devices?t=1`);
	assert.equal(l.status, 200, l.text);
	assert.deepEqual(l.json(), [d], 'device listed under its id, no query');
	const r = await c.postJson(`/user/${u}/device/${d}?token=abc`,
	    { data: 'with query' });
	assert.equal(r.status, 200, r.text);
	assert.equal((await s.nextEvent()).data, 'with query');
	s.close();
});
