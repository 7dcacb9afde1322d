// Issue 8 (7), through Caddy: one client address cannot take every stream.
// BEEP_MAX_STREAMS_PER_ADDRESS (default 256, 0 = off) counts open streams per
// REMOTE_ADDR in open mode (every test client here is 127.0.0.1):
//   - at a small limit (4): 4 streams accepted, the 5th gets 429 with
//     Retry-After and a JSON error (EventSource, Accept: text/event-stream
//     alone, gets it as an event stream that it comes back from); a stream that ends gives its place back
//     (a bounded poll: behind Caddy the backend learns of a departure at
//     its next writes); POST and list are not limited by it;
//   - at the default: 256 accepted, the 257th 429;
//   - 0 turns it off;
//   - with BEEP_AUTH=jwt the per-user limits apply instead: one address
//     may hold more streams than the address limit.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
	useStack, uid, poll, postPath, subPath, isJson, openSub,
	expectRefusedStream,
} from './harness.mjs';
import { mint, claims } from './jwt.mjs';

const T = { timeout: 120000 };

function assert429(r, what) {
	assert.equal(r.status, 429, `${what}: status (${r.text})`);
	assert.match(r.headers['retry-after'] || '', /^\d+$/,
	    `${what}: Retry-After`);
	assert.match(r.headers['access-control-expose-headers'] || '',
	    /(^|,\s*)Retry-After(\s*,|$)/i, `${what}: Retry-After exposed`);
	assert.ok(isJson(r), `${what}: JSON error`);
	assert.match(JSON.parse(r.text).error, /address/, what);
}

// Opens n streams (distinct users and devices), in batches; returns them.
async function openMany(stack, n, headersFor = () => ({})) {
	const streams = [];
	for (let i = 0; i < n; i += 32) {
		const batch = [];
		for (let j = i; j < Math.min(n, i + 32); j++) {
			const u = uid('a');
			batch.push(openSub(stack, subPath(u, 'd'), headersFor(u)));
		}
		for (const s of await Promise.all(batch)) {
			assert.equal(s.status, 200, `stream ${streams.length}: ${s.text}`);
			streams.push(s.stream);
		}
	}
	return streams;
}

describe('a small limit (4)', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_MAX_STREAMS_PER_ADDRESS: '4', BEEP_KEEPALIVE: '1',
	} });

	test('4 accepted, the 5th 429; an ended stream frees its place', T,
	    async () => {
		const streams = await openMany(h.stack, 4);
		assert429(await openSub(h.stack, subPath(uid('x'), 'd')), '5th');
		// EventSource, which would give up for good on the 429, gets
		// the refusal as a stream it comes back from.
		await expectRefusedStream(h.stack, subPath(uid('x'), 'd'), 429,
		    'too many streams from this address');
		// Not limited: POST and list.
		const c = h.stack.client();
		const r = await c.postJson(postPath(uid('x'), 'd'), { data: 1 });
		assert.equal(r.status, 404, r.text);
		assert.equal((await c.health()).streams, 4);
		// One ends: the backend notices (a keepalive write fails), and
		// one more fits, and only one.
		streams.shift().close();
		const again = await poll(async () => {
			const s = await openSub(h.stack, subPath(uid('y'), 'd'));
			return s.status === 200 ? s : null;
		}, { timeout: 20000, interval: 200, what: 'a freed place' });
		streams.push(again.stream);
		assert429(await openSub(h.stack, subPath(uid('z'), 'd')),
		    'after the freed place was taken');
		for (const s of streams)
			s.close();
		// All end: all places come back.
		await poll(async () => (await c.health()).streams === 0,
		    { timeout: 20000, interval: 200, what: 'streams ended' });
		const more = await openMany(h.stack, 4);
		for (const s of more)
			s.close();
	});
});

// A blip: every client behind one address (a NAT) loses its connection
// and reconnects at once, with Last-Event-ID, as EventSource does.  Behind
// Caddy the old streams stay open (ghosts) until a write to them fails,
// here not for a minute: they held every place, and each reconnect got
// the 429 on which EventSource gives up for good.  A reconnect to a
// device whose old stream is from the same address takes its place.
describe('at the limit (3), reconnects after a blip behind Caddy', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_MAX_STREAMS_PER_ADDRESS: '3', BEEP_KEEPALIVE: '60',
	} });

	test('each reconnect takes its ghost\'s place; a new device does not',
	    T, async () => {
		const c = h.stack.client();
		const u = uid('nat'), devices = ['d1', 'd2', 'd3'];
		const last = {};
		for (const d of devices) {
			const s = await h.stack.subscribe(u, d);
			const r = await c.postJson(postPath(u, d), { data: `a-${d}` });
			assert.equal(r.status, 200, r.text);
			last[d] = (await s.nextEvent()).lastEventId;
			s.close(); // the client is gone; its stream is a ghost
		}
		const replaced0 = (await c.health()).replaced;
		// Sent during the blip: taken by the ghosts, replayed later.
		for (const d of devices) {
			const r = await c.postJson(postPath(u, d), { data: `b-${d}` });
			assert.equal(r.status, 200, r.text);
		}
		assert.equal((await c.health()).streams, 3, 'three ghosts');
		assert429(await openSub(h.stack, subPath(u, 'd4')),
		    'a new device at the limit');
		const back = [];
		for (const d of devices) {
			const r = await openSub(h.stack, subPath(u, d),
			    { 'Last-Event-ID': last[d] });
			assert.equal(r.status, 200, `reconnect of ${d}: ${r.text}`);
			back.push(r.stream);
			assert.equal((await r.stream.nextEvent()).data, `b-${d}`,
			    `${d}: what the ghost took is replayed`);
		}
		assert.equal((await c.health()).replaced, replaced0 + 3);
		// The ghosts end (replaced) and give their places back.
		await poll(async () => (await c.health()).streams === 3,
		    { timeout: 20000, interval: 100, what: 'ghosts ended' });
		assert429(await openSub(h.stack, subPath(u, 'd4')),
		    'still at the limit');
		for (const [i, d] of devices.entries()) {
			const r = await c.postJson(postPath(u, d), { data: `c-${d}` });
			assert.equal(r.status, 200, r.text);
			assert.equal((await back[i].nextEvent()).data, `c-${d}`);
		}
		for (const s of back)
			s.close();
	});
});

describe('the default (256)', () => {
	const h = useStack({ before, after }, { env: {} });

	test('256 accepted, the 257th 429', T, async () => {
		const streams = await openMany(h.stack, 256);
		assert429(await openSub(h.stack, subPath(uid('x'), 'd')), '257th');
		for (const s of streams)
			s.close();
	});
});

describe('0: off', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_MAX_STREAMS_PER_ADDRESS: '0',
	} });

	test('more streams than a small limit', T, async () => {
		const streams = await openMany(h.stack, 8);
		for (const s of streams)
			s.close();
	});
});

describe('with BEEP_AUTH=jwt the per-user limits apply', () => {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
		BEEP_MAX_STREAMS_PER_ADDRESS: '2',
	} });

	test('one address, several users: more than 2 streams', T, async () => {
		const streams = await openMany(h.stack, 4, (u) =>
		    ({ Authorization: `Bearer ${mint(claims(u), { key: SECRET })}` }));
		for (const s of streams)
			s.close();
	});
});
