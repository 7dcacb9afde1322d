// BEEP_MAX_STREAMS=3: a 4th subscribe is answered 503 with Retry-After at once,
// while posts, lists and health still work; once a stream has gone a new
// subscribe succeeds. A device with a live stream is not refused: its new
// stream takes the old one's place.
//
// Freeing a slot waits for a departure (seconds behind Caddy), so each test
// has its own stack and the tests run concurrently.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, postPath, subPath, poll } from './harness.mjs';

const T = { timeout: 60000 };
// Debug: the log names why each stream ended, for a failure's message.
const stackFor = (t) => startStack({ env: { BEEP_MAX_STREAMS: '3',
    BEEP_KEEPALIVE: '1', BEEP_LOG_LEVEL: 'debug' } }, t);

async function expect503(stack, u, d) {
	// The hang guard is the only timing here: 503 must be an answer, not
	// a stream that never starts.
	const s = await stack.open(subPath(u, d), { timeout: 10000 });
	const text = await s.text(10000);
	assert.equal(s.status, 503, `subscribe past the limit: ${s.status} ${text}`);
	const ra = s.headers['retry-after'];
	assert.ok(ra !== undefined, 'Retry-After present');
	assert.ok(/^\d+$/.test(ra) || !Number.isNaN(Date.parse(ra)),
	    `Retry-After is delta-seconds or a date: ${ra}`);
	assert.match(s.headers['content-type'] || '', /^application\/json\b/i);
	assert.equal(typeof JSON.parse(text).error, 'string');
	assert.equal(s.headers['access-control-allow-origin'], '*');
	assert.match(s.headers['access-control-expose-headers'] || '',
	    /(^|,\s*)Retry-After(\s*,|$)/i, 'Retry-After exposed to CORS');
}

// A stack at the limit: one user's devices a, b and c subscribed.
async function fullStack(t) {
	const stack = await stackFor(t);
	const u = uid('user');
	const open = [];
	for (const d of ['a', 'b', 'c'])
		open.push(await stack.subscribe(u, d));
	return { stack, c: stack.client(), u, open };
}

describe('stream limit', { concurrency: true }, () => {
	test('past BEEP_MAX_STREAMS: 503 + Retry-After; the rest still works', T,
	    async (t) => {
		const { stack, c, u, open } = await fullStack(t);
		assert.equal((await c.health()).streams, 3);

		for (let i = 0; i < 3; i++)
			await expect503(stack, u, `d${i}`);
		await expect503(stack, uid('other'), 'x');

		// Refused subscribes left nothing behind.
		assert.deepEqual(await c.devices(u), ['a', 'b', 'c'],
		    `backend log:\n${stack.backendLog.join('\n')}`);
		assert.equal((await c.health()).streams, 3);
		for (const [i, d] of ['a', 'b', 'c'].entries()) {
			const r = await c.postJson(postPath(u, d), { data: `to ${d}` });
			assert.equal(r.status, 200, r.text);
			assert.equal((await open[i].nextEvent()).data, `to ${d}`);
		}
		const missing = await c.postJson(postPath(u, 'd0'), { data: 'x' });
		assert.equal(missing.status, 404);

		// One leaves; once the backend noticed, a new subscribe succeeds.
		open[1].close();
		await poll(async () => (await c.health()).streams === 2,
		    { timeout: 15000, what: 'streams == 2' });
		const fresh = await stack.subscribe(u, 'fresh');
		assert.equal(fresh.status, 200);
		let r = await c.postJson(postPath(u, 'fresh'), { data: 'in' });
		assert.equal(r.status, 200);
		assert.equal((await fresh.nextEvent()).data, 'in');
		await expect503(stack, u, 'one-too-many');

		// The survivors were not disturbed.
		r = await c.postJson(postPath(u, 'a'), { data: 'a again' });
		assert.equal(r.status, 200);
		assert.equal((await open[0].nextEvent()).data, 'a again');

		for (const s of [open[0], open[2], fresh])
			s.close();
		await poll(async () => (await c.health()).streams === 0,
		    { timeout: 15000, what: 'streams == 0' });
	});

	// Behind Caddy a page that reloads leaves its old stream open until a
	// later write to it fails: at the limit, the reconnect of a device
	// with a live stream takes that stream's place rather than being
	// refused by its own ghost (until 2026-12-05: 503 for 5 to 10 s, per
	// ghost). A device with no stream is still refused.
	test('at BEEP_MAX_STREAMS a device\'s reconnect takes its ghost\'s place',
	    T, async (t) => {
		const { stack, c, u, open } = await fullStack(t);
		await expect503(stack, u, 'd');
		const again = await stack.subscribe(u, 'a');
		assert.equal(again.status, 200);
		const ev = await open[0].nextEvent();
		assert.equal(ev.type, 'replaced', JSON.stringify(ev));
		assert.ok(open[0].retry >= 10000, `retry ${open[0].retry}`);
		await open[0].waitEnd();
		const r = await c.postJson(postPath(u, 'a'), { data: 'to a' });
		assert.equal(r.status, 200, r.text);
		assert.equal((await again.nextEvent()).data, 'to a');
		await poll(async () => (await c.health()).streams === 3,
		    { timeout: 15000, what: 'streams == 3' });
		await expect503(stack, u, 'd');
		assert.deepEqual(await c.devices(u), ['a', 'b', 'c']);
		for (const s of [again, open[1], open[2]])
			s.close();
	});

	test('the limit is reusable: fill, drain, fill again', T, async (t) => {
		const stack = await stackFor(t);
		const c = stack.client();
		for (let round = 0; round < 2; round++) {
			const u = uid('round');
			const open = [];
			for (const d of ['x', 'y', 'z'])
				open.push(await stack.subscribe(u, d));
			await expect503(stack, u, 'w');
			for (const s of open)
				s.close();
			await poll(async () => (await c.health()).streams === 0,
			    { timeout: 15000, what: 'streams == 0' });
		}
	});

	test('concurrent subscribes never exceed the limit', T, async (t) => {
		const stack = await stackFor(t);
		const c = stack.client();
		const u = uid('race');
		const tries = await Promise.all(Array.from({ length: 8 }, (_, i) =>
		    stack.open(subPath(u, `d${i}`))));
		const ok = tries.filter((s) => s.status === 200);
		const refused = tries.filter((s) => s.status === 503);
		assert.equal(ok.length + refused.length, tries.length,
		    `statuses ${tries.map((s) => s.status)}`);
		assert.equal(ok.length, 3, 'exactly BEEP_MAX_STREAMS admitted');
		for (const s of ok)
			await s.waitComments(1);
		assert.equal((await c.health()).streams, 3);
		assert.equal((await c.devices(u)).length, 3);
		for (const s of tries)
			s.close();
	});
});

// Devices in grace are made by subscribing and leaving, which nothing else
// bounds (a client doing so under new names made 20,000 in 4 s, each kept
// for BEEP_GRACE_SECONDS): past BEEP_MAX_DEVICES a new device takes the
// place of the device whose grace ends first.
test('past BEEP_MAX_DEVICES: a new device takes the place of the one whose grace ends first',
    T, async (t) => {
	const stack = await startStack({ env: { BEEP_MAX_DEVICES: '2',
	    BEEP_KEEPALIVE: '1' } }, t);
	const c = stack.client();
	const [a, b] = [uid('a'), uid('b')];
	// a, then b, subscribe and leave: both in grace, a's ends first.
	for (const u of [a, b]) {
		const s = await stack.subscribe(u, 'd');
		s.close();
		await poll(async () => (await c.devices(u)).length === 0,
		    { timeout: 10000, interval: 50, what: `${u}/d in grace` });
	}
	const post = async (u) => (await c.postJson(postPath(u, 'd'),
	    { data: 'x' })).status;
	assert.deepEqual([await post(a), await post(b)], [202, 202]);
	const s = await stack.subscribe(uid('new'), 'd');
	assert.deepEqual([await post(a), await post(b)], [404, 202],
	    'a forgotten, b still held');
	const health = await c.health();
	assert.equal(health.forgotten, 1);
	assert.equal(health.dropped, 1, 'what a held, dropped');
	// b back: every device live, none to make room: 503, nothing lost.
	const back = await stack.subscribe(b, 'd');
	assert.equal((await back.nextEvent()).data, 'x');
	await expect503(stack, uid('more'), 'd');
	assert.equal(await post(b), 200);
	s.close();
	back.close();
});
