// Departure (BEEP_KEEPALIVE=1): a subscriber that goes away is unlisted once the
// backend notices (bounded poll); two streams on one device both get every
// message and closing one leaves the other working and listed; re-subscribing
// works; /healthz counts return to 0.
//
// Noticing a departure behind Caddy takes seconds, so each test has its own
// stack (exact counts, no interference) and the tests run concurrently.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, postPath, poll } from './harness.mjs';

const T = { timeout: 60000 };
// Grace 0: a departed device is forgotten at once (10-replay tests grace).
const stackFor = (t) => startStack(
    { env: { BEEP_KEEPALIVE: '1', BEEP_GRACE_SECONDS: '0' } }, t);
// Bound for a departure to show. Behind Caddy 2.6 it takes a few keepalive
// writes (measured: about 4 s with BEEP_KEEPALIVE=1); slack for ASan.
const GONE = { timeout: 15000, interval: 50 };

async function waitUnlisted(c, u, d) {
	await poll(async () => !(await c.devices(u)).includes(d),
	    { ...GONE, what: `${u}/${d} unlisted` });
}

async function waitStreams(c, n) {
	await poll(async () => (await c.health()).streams === n,
	    { ...GONE, what: `healthz streams == ${n}` });
}

describe('departure', { concurrency: true }, () => {
	test('keepalive comments arrive every BEEP_KEEPALIVE seconds', T, async (t) => {
		const stack = await stackFor(t);
		const s = await stack.subscribe(uid('user'), 'd');
		const first = s.comments;
		await s.waitComments(first + 2, 10000);
		assert.equal(s.received, 0, 'comments are not events');
		s.close();
	});

	test('a client that leaves is unlisted; posts to it then get 404', T,
	    async (t) => {
		const stack = await stackFor(t);
		const c = stack.client();
		const u = uid('user');
		const stay = await stack.subscribe(u, 'stay');
		const leave = await stack.subscribe(u, 'leave');
		assert.deepEqual(await c.devices(u), ['leave', 'stay']);
		leave.close();
		await waitUnlisted(c, u, 'leave');
		assert.deepEqual(await c.devices(u), ['stay']);
		const r = await c.postJson(postPath(u, 'leave'), { data: 'x' });
		assert.equal(r.status, 404, r.text);
		const ok = await c.postJson(postPath(u, 'stay'), { data: 'still here' });
		assert.equal(ok.status, 200);
		assert.equal((await stay.nextEvent()).data, 'still here');
		stay.close();
		await waitUnlisted(c, u, 'stay');
		assert.deepEqual(await c.devices(u), []);
	});

	// Leaving is how every stream ends behind Caddy, whose reverse proxy
	// logged each as an ERROR ("aborting with incomplete response ...
	// broken pipe"): a line per client departure, which anyone can make
	// at will by opening streams and dropping them, in an error log an
	// operator alerts on.  The shipped Caddyfile leaves that logger out.
	test('clients that leave are no errors in the front\'s log', T,
	    async (t) => {
		const stack = await stackFor(t);
		const c = stack.client();
		const u = uid('user');
		const streams = [];
		for (let i = 0; i < 5; i++)
			streams.push(await stack.subscribe(u, `d${i}`));
		for (const s of streams)
			s.close();
		for (let i = 0; i < 5; i++)
			await waitUnlisted(c, u, `d${i}`);
		const errors = stack.caddyLog.filter((l) =>
		    /"level":"error"|aborting with incomplete response/.test(l));
		assert.deepEqual(errors, []);
	});

	test('two streams on one device: both get every message; one leaves', T,
	    async (t) => {
		const stack = await stackFor(t);
		const c = stack.client();
		const u = uid('user'), d = 'tablet';
		const base = (await c.health()).streams;
		const s1 = await stack.subscribe(u, d);
		const s2 = await stack.subscribe(u, d);
		assert.deepEqual(await c.devices(u), [d], 'listed once');
		assert.equal((await c.health()).streams, base + 2);
		for (let i = 0; i < 10; i++) {
			const r = await c.postJson(postPath(u, d), { data: `m${i}` });
			assert.equal(r.status, 200);
		}
		for (const s of [s1, s2])
			for (let i = 0; i < 10; i++)
				assert.equal((await s.nextEvent()).data, `m${i}`);

		s1.close();
		await waitStreams(c, base + 1);
		assert.deepEqual(await c.devices(u), [d], 'still listed with one stream');
		for (let i = 10; i < 15; i++) {
			const r = await c.postJson(postPath(u, d), { data: `m${i}` });
			assert.equal(r.status, 200, r.text);
		}
		for (let i = 10; i < 15; i++)
			assert.equal((await s2.nextEvent()).data, `m${i}`);
		// s2 kept getting keepalives while s1 was reaped.
		const seen = s2.comments;
		await s2.waitComments(seen + 1);
		assert.equal(s2.ended, false);

		s2.close();
		await waitUnlisted(c, u, d);
		await waitStreams(c, base);
	});

	test('re-subscribe after close works, also before the old one is reaped', T,
	    async (t) => {
		const stack = await stackFor(t);
		const c = stack.client();
		const u = uid('user'), d = 'phone';
		const old = await stack.subscribe(u, d);
		old.close();
		await waitUnlisted(c, u, d);

		// Subscribe again after the departure was noticed.
		const again = await stack.subscribe(u, d);
		assert.deepEqual(await c.devices(u), [d]);
		let r = await c.postJson(postPath(u, d), { data: 'welcome back' });
		assert.equal(r.status, 200);
		assert.equal((await again.nextEvent()).data, 'welcome back');

		// Close and re-open at once: the new stream works while the old one
		// is still being noticed, and stays listed after the old one goes.
		const base = (await c.health()).streams;
		again.close();
		const third = await stack.subscribe(u, d);
		r = await c.postJson(postPath(u, d), { data: 'third' });
		assert.equal(r.status, 200);
		assert.equal((await third.nextEvent()).data, 'third');
		await waitStreams(c, base);      // the closed one reaped, third counted
		assert.deepEqual(await c.devices(u), [d]);
		r = await c.postJson(postPath(u, d), { data: 'after reap' });
		assert.equal(r.status, 200);
		assert.equal((await third.nextEvent()).data, 'after reap');
		third.close();
		await waitUnlisted(c, u, d);
	});

	test('many users and devices leave: /healthz returns to zero', T, async (t) => {
		const stack = await stackFor(t);
		const c = stack.client();
		const streams = [];
		const users = [uid('a'), uid('b'), uid('c')];
		for (const u of users)
			for (const d of ['x', 'y', 'z'])
				streams.push(await stack.subscribe(u, d));
		const hz = await c.health();
		assert.ok(hz.streams >= 9 && hz.devices >= 9 && hz.users >= 3,
		    JSON.stringify(hz));
		for (const s of streams)
			s.close();
		await poll(async () => {
			const x = await c.health();
			return x.streams === 0 && x.devices === 0 && x.users === 0 && x;
		}, { ...GONE, what: 'healthz users/devices/streams back to 0' });
		for (const u of users)
			assert.deepEqual(await c.devices(u), []);
	});
});
