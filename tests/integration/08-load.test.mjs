// Load: 200 subscribers (20 users x 10 devices), 2,000 posts from 8 concurrent
// senders through Caddy over keep-alive connections. Devices are partitioned
// among senders and each sender waits for a post's answer before the next one,
// so per device the order is defined: nothing may be lost, duplicated or
// reordered. An end marker per device proves there is nothing extra.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, postPath } from './harness.mjs';

const USERS = 20, DEVICES = 10, SENDERS = 8, PER_DEVICE = 10;
const T = { timeout: 90000 };

test(`${USERS * DEVICES} streams, ${USERS * DEVICES * PER_DEVICE} posts, ` +
    `${SENDERS} senders: exactly once, in order`, T, async (t) => {
	const stack = await startStack({}, t);
	const run = uid('load');
	const targets = [];
	for (let u = 0; u < USERS; u++)
		for (let d = 0; d < DEVICES; d++)
			targets.push({ user: `${run}-u${u}`, device: `d${d}`,
			    key: `u${u}/d${d}` });

	// Open the streams, a bounded number at a time.
	const streams = new Map();
	for (let i = 0; i < targets.length; i += 50) {
		await Promise.all(targets.slice(i, i + 50).map(async (tg) => {
			streams.set(tg.key, await stack.subscribe(tg.user, tg.device,
			    { timeout: 30000 }));
		}));
	}
	const probe = stack.client({ maxSockets: 1 });
	const hz = await probe.health();
	assert.equal(hz.streams, targets.length, JSON.stringify(hz));
	assert.equal(hz.devices, targets.length);
	assert.equal(hz.users, USERS);

	// Each sender owns every SENDERS-th device and posts round-robin over
	// them, one request in flight per sender.
	const failures = [];
	const senders = Array.from({ length: SENDERS }, (_, s) => (async () => {
		const c = stack.client({ maxSockets: 1 });
		const mine = targets.filter((_, i) => i % SENDERS === s);
		for (let seq = 0; seq < PER_DEVICE; seq++) {
			for (const tg of mine) {
				const r = await c.postJson(postPath(tg.user, tg.device),
				    { data: { key: tg.key, seq }, event: 'sig' },
				    { timeout: 30000 });
				if (r.status !== 200 && failures.length < 20)
					failures.push(`${tg.key}#${seq}: ${r.status} ${r.text}`);
			}
		}
		for (const tg of mine) {
			const r = await c.postJson(postPath(tg.user, tg.device),
			    { data: 'end' }, { timeout: 30000 });
			if (r.status !== 200 && failures.length < 20)
				failures.push(`${tg.key}#end: ${r.status} ${r.text}`);
		}
	})());
	await Promise.all(senders);
	assert.deepEqual(failures, [], 'every post answered 200');

	// Per device: seq 0..PER_DEVICE-1 in order, then the end marker.
	const problems = [];
	await Promise.all(targets.map(async (tg) => {
		const s = streams.get(tg.key);
		const got = [];
		for (;;) {
			const ev = await s.nextEvent(30000);
			if (ev.data === 'end' && ev.type === 'message')
				break;
			let m;
			try { m = JSON.parse(ev.data); } catch {
				m = { bad: ev.data };
			}
			if (ev.type !== 'sig' || m.key !== tg.key)
				problems.push(`${tg.key}: foreign event ${ev.type} ${ev.data}`);
			got.push(m.seq);
			if (got.length > PER_DEVICE * 2)
				break;
		}
		const want = Array.from({ length: PER_DEVICE }, (_, i) => i);
		if (JSON.stringify(got) !== JSON.stringify(want))
			problems.push(`${tg.key}: got seq ${JSON.stringify(got)}`);
	}));
	assert.deepEqual(problems.slice(0, 20), [],
	    `${problems.length} devices with lost/duplicated/reordered messages`);

	const after = await probe.health();
	assert.equal(after.streams, targets.length, 'no stream lost under load');
});

test('burst: 8 senders x 100 posts to one device with 2 streams', T,
    async (t) => {
	const stack = await startStack({}, t);
	const u = uid('burst'), d = 'hot';
	const streams = [await stack.subscribe(u, d), await stack.subscribe(u, d)];
	const N = 100;
	await Promise.all(Array.from({ length: SENDERS }, async (_, sender) => {
		const c = stack.client({ maxSockets: 1 });
		for (let seq = 0; seq < N; seq++) {
			const r = await c.postJson(postPath(u, d),
			    { data: `${sender}:${seq}` }, { timeout: 30000 });
			assert.equal(r.status, 200, r.text);
		}
	}));
	const c = stack.client();
	assert.equal((await c.postJson(postPath(u, d), { data: 'end' })).status,
	    200);
	for (const s of streams) {
		const next = new Array(SENDERS).fill(0);
		let n = 0;
		for (;;) {
			const ev = await s.nextEvent(30000);
			if (ev.data === 'end')
				break;
			const [sender, seq] = ev.data.split(':').map(Number);
			assert.equal(seq, next[sender],
			    `sender ${sender}: order on one stream`);
			next[sender]++;
			n++;
		}
		assert.equal(n, SENDERS * N, 'nothing lost or duplicated');
		assert.deepEqual(next, new Array(SENDERS).fill(N));
	}
});
