// SSE framing: whatever the data holds, it arrives as exactly one message whose
// spec-parsed data is the original text with every line break (CR, LF, CRLF)
// turned into LF. No field or event can be injected through the data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useStack, uid, postPath } from './harness.mjs';

const h = useStack({ before, after });
const T = { timeout: 30000 };

const normalise = (s) => s.replace(/\r\n|\r|\n/g, '\n');

const CASES = [
	['LF', 'a\nb'],
	['CR', 'a\rb'],
	['CRLF', 'a\r\nb'],
	['mixed breaks', 'one\rtwo\nthree\r\nfour\n\rfive'],
	['trailing LF', 'trailing\n'],
	['trailing CRLF', 'trailing\r\n'],
	['trailing CR', 'trailing\r'],
	['leading LF', '\nleading'],
	['only a LF', '\n'],
	['only a CR', '\r'],
	['only a CRLF', '\r\n'],
	['only breaks', '\n\n\n'],
	['empty lines inside', 'a\n\n\nb'],
	['CR CR inside', 'a\r\r\rb'],
	['leading space kept', ' one space'],
	['two leading spaces', '  two'],
	['spaces after break', 'a\n  b'],
	['colon first', ':not a comment'],
	['colon after break', 'x\n: also not a comment'],
	['looks like fields', 'data: x\nevent: y\nid: 7\nretry: 1'],
	['injection LF', 'x\n\nevent: evil\ndata: pwned'],
	['injection CR', 'x\r\revent: evil\rdata: pwned'],
	['injection CRLF', 'x\r\n\r\nevent: evil\r\ndata: pwned\r\n\r\n'],
	['injection id/retry', 'y\nid: 666\nretry: 1\n\nid: 777'],
	['UTF-8', 'h\u00e9llo w\u00f6rld \u65e5\u672c\u8a9e \u{1F389} \u{1F1FA}\u{1F1F8}'],
	['LS/PS are not breaks', 'a\u2028b\u2029c\u0085d'],
	['tab and quotes', 'tab\there "quoted" \\back\\slash'],
	['long line', 'x'.repeat(20000)],
	['many lines', Array.from({ length: 300 }, (_, i) => `line ${i}`).join('\n')],
	['SDP-like', 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n' +
	    't=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n'],
];

async function roundTrip(c, s, u, d, post, data, want) {
	const r = await post(c, postPath(u, d), data);
	assert.equal(r.status, 200, `post ${JSON.stringify(data)}: ${r.text}`);
	const ev = await s.nextEvent();
	assert.equal(ev.data, want, `data for ${JSON.stringify(data)}`);
	assert.equal(ev.type, 'message', `type for ${JSON.stringify(data)}`);
	assert.equal(s.events.length, 0,
	    `exactly one event for ${JSON.stringify(data)}`);
}

const viaJson = (c, p, data) => c.postJson(p, { data });
const viaForm = (c, p, data) => c.postForm(p, { data });

for (const [kind, post] of [['JSON', viaJson], ['form', viaForm]]) {
	test(`framing via ${kind}: every case is one message, breaks as LF`, T,
	    async () => {
		const c = h.stack.client();
		const u = uid('user'), d = uid('dev');
		const s = await h.stack.subscribe(u, d);
		for (const [name, data] of CASES) {
			await roundTrip(c, s, u, d, post, data, normalise(data))
			    .catch((e) => { e.message = `${name}: ${e.message}`; throw e; });
		}
		// A marker after all cases: nothing else arrived in between.
		const r = await c.postJson(postPath(u, d), { data: 'marker' });
		assert.equal(r.status, 200);
		const ev = await s.nextEvent();
		assert.equal(ev.data, 'marker');
		assert.equal(s.received, CASES.length + 1, 'no extra events');
		assert.match(ev.lastEventId, /^\d+-\d+$/, 'the server\'s own id; none injected');
		// The stream's own retry: first of all fields, and no other.
		assert.equal(s.retries.length, 1, 'no retry injected');
		assert.equal(s.fields[0][0], 'retry', 'the start\'s retry: first');
		const names = new Set(s.fields.map(([f]) => f));
		assert.deepEqual([...names].sort(), ['data', 'event', 'id', 'retry'],
		    'only data fields, the server\'s ids and its retry: on the wire');
		// The one event field: the start's position.
		assert.deepEqual(s.fields.filter(([f]) => f === 'event'),
		    [['event', 'position']], 'no event name injected');
		assert.equal(s.positions.length, 1);
		s.close();
	});
}

test('framing with an event name: data lines and event line stay together', T,
    async () => {
	const c = h.stack.client();
	const u = uid('user'), d = uid('dev');
	const s = await h.stack.subscribe(u, d);
	const data = 'x\n\nevent: evil\ndata: pwned\r\n';
	let r = await c.postJson(postPath(u, d), { data, event: 'offer' });
	assert.equal(r.status, 200);
	let ev = await s.nextEvent();
	assert.equal(ev.type, 'offer');
	assert.equal(ev.data, normalise(data));
	r = await c.postForm(postPath(u, d), { data: 'a\rb', event: 'ice' });
	assert.equal(r.status, 200);
	ev = await s.nextEvent();
	assert.equal(ev.type, 'ice');
	assert.equal(ev.data, 'a\nb');
	r = await c.postJson(postPath(u, d), { data: 'after' });
	ev = await s.nextEvent();
	assert.equal(ev.type, 'message');
	assert.equal(ev.data, 'after');
	assert.equal(s.received, 3);
	s.close();
});

test('JSON values with breaks inside strings are compact and one message', T,
    async () => {
	const c = h.stack.client();
	const u = uid('user'), d = uid('dev');
	const s = await h.stack.subscribe(u, d);
	// Inside compact JSON text a break can only appear escaped.
	const value = { sdp: 'v=0\r\nm=audio\n', list: ['a\rb'] };
	const r = await c.postJson(postPath(u, d), { data: value });
	assert.equal(r.status, 200);
	const ev = await s.nextEvent();
	assert.equal(ev.data, JSON.stringify(value));
	assert.deepEqual(JSON.parse(ev.data), value);
	s.close();
});

test('NUL in the data: refused (400) or delivered whole, never cut', T,
    async () => {
	const c = h.stack.client();
	const u = uid('user'), d = uid('dev');
	const s = await h.stack.subscribe(u, d);
	const want = 'a\u0000b';
	let delivered = 0;
	for (const r of [await c.postJson(postPath(u, d), '{"data":"a\\u0000b"}'),
	    await c.postForm(postPath(u, d), 'data=a%00b')]) {
		assert.ok(r.status === 200 || r.status === 400,
		    `NUL: ${r.status} ${r.text}`);
		if (r.status === 200) {
			delivered++;
			assert.equal((await s.nextEvent()).data, want);
		}
	}
	assert.equal((await c.postJson(postPath(u, d), { data: 'end' })).status,
	    200);
	assert.equal((await s.nextEvent()).data, 'end');
	assert.equal(s.received, delivered + 1);
	s.close();
});

test('a body of mostly line breaks (SSE text several times the body)', T,
    async () => {
	const c = h.stack.client();
	const u = uid('user'), d = uid('dev');
	const s = await h.stack.subscribe(u, d);
	for (const data of ['\n'.repeat(30000), `a${'\r'.repeat(25000)}b`,
	    'x\r\n'.repeat(12000)]) {
		const r = await c.postJson(postPath(u, d), { data });
		assert.equal(r.status, 200, r.text);
		const ev = await s.nextEvent();
		assert.equal(ev.data.length, normalise(data).length);
		assert.equal(ev.data, normalise(data));
	}
	s.close();
});
