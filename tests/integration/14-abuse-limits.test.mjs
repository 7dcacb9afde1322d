// Issue 5 limits, through Caddy:
//   - POST rate per sender (token bucket BEEP_RATE/BEEP_BURST): the burst
//     passes, the next POST gets 429 with Retry-After and a JSON error, and
//     posts pass again once the bucket refilled (a bounded poll). Behind one
//     Caddy every test client is 127.0.0.1, so in BEEP_AUTH=none mode (sender
//     = client address) only the 429 and the recovery are checked; in jwt mode
//     two token users have separate buckets.
//   - streams per device (BEEP_MAX_STREAMS_PER_DEVICE): a new stream
//     replaces the oldest (which gets `event: replaced` and a long retry:,
//     then ends), never a 429 (EventSource would give up for good);
//     devices per user (BEEP_MAX_DEVICES_PER_USER, live or in grace) -> 429
//     with Retry-After.
//   - CORS allow-list: Access-Control-Allow-Credentials: true, and the
//     preflight allows the Authorization header.
//
// The harness turns the rate limit off (BEEP_RATE=0) unless a stack sets it.
// A token bucket is about time, so the burst assertion is bounded by the
// elapsed time measured here (at most BEEP_BURST + BEEP_RATE * seconds posts
// can pass), never by an assumed speed.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
	useStack, uid, poll, postPath, listPath, subPath, isJson, openSub,
} from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';

const T = { timeout: 60000 };
const RATE = 5, BURST = 5;
const SECRET = crypto.randomBytes(32).toString('hex');

const tokens = (v) => (v || '').split(',').map((x) => x.trim().toUpperCase())
    .filter(Boolean);

function assert429(r, what) {
	assert.equal(r.status, 429, `${what}: status (${r.text})`);
	const ra = r.headers['retry-after'];
	assert.ok(ra !== undefined, `${what}: Retry-After present`);
	assert.match(ra, /^\d+$/, `${what}: Retry-After is delta-seconds`);
	assert.ok(Number(ra) <= 3600, `${what}: Retry-After ${ra} is sane`);
	// A page on another origin reads it only when CORS exposes it.
	assert.ok(tokens(r.headers['access-control-expose-headers'])
	    .includes('RETRY-AFTER'), `${what}: Retry-After exposed`);
	assert.ok(isJson(r), `${what}: JSON error`);
	assert.equal(typeof JSON.parse(r.text).error, 'string', what);
}

async function subOk(stack, u, d, headers) {
	const s = await openSub(stack, subPath(u, d), headers);
	assert.equal(s.status, 200, `subscribe ${u}/${d}: ${s.text}`);
	return s.stream;
}

// Posts until the first 429 (at most `max` posts). Returns { passed (data
// of the 200s, in order), refused (the 429 answer), seconds }.
async function burst(c, u, d, headers = {}, max = 60) {
	const passed = [];
	const t0 = process.hrtime.bigint();
	for (let i = 0; i < max; i++) {
		const data = `${u}-m${i}`;
		const r = await c.postJson(postPath(u, d), { data }, { headers });
		if (r.status === 429) {
			const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
			return { passed, refused: r, seconds };
		}
		assert.equal(r.status, 200, `post ${i}: ${r.text}`);
		passed.push(data);
	}
	assert.fail(`no 429 after ${max} posts`);
}

function assertBurst(b, what) {
	assert429(b.refused, `${what}: post past the burst`);
	assert.ok(b.passed.length >= BURST,
	    `${what}: the burst of ${BURST} passes (passed ${b.passed.length})`);
	const bound = BURST + Math.floor(RATE * b.seconds);
	assert.ok(b.passed.length <= bound,
	    `${what}: at most ${BURST} + ${RATE}/s passed: ${b.passed.length} ` +
	    `in ${b.seconds.toFixed(3)} s (bound ${bound})`);
}

// Polls a post until it passes (the bucket refilled); every answer on the
// way is 429. Returns the data posted by the one that passed.
async function postWhenRefilled(c, u, d, headers = {}) {
	let n = 0;
	return poll(async () => {
		const data = `${u}-again${n++}`;
		const r = await c.postJson(postPath(u, d), { data }, { headers });
		if (r.status === 200)
			return data;
		assert429(r, 'while refilling');
		return false;
	}, { timeout: 15000, interval: 100, what: 'a post passes again' });
}

// ---------------------------------------------------------------------------

describe('POST rate, BEEP_AUTH=none (sender = client address)', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_RATE: String(RATE), BEEP_BURST: String(BURST),
	} });

	test('burst passes, then 429 + Retry-After, then recovery', T,
	    async () => {
		const c = h.stack.client();
		const u = uid('user');
		const s = await subOk(h.stack, u, 'd');
		const b = await burst(c, u, 'd');
		assertBurst(b, 'none mode');
		assert.equal(b.refused.headers['access-control-allow-origin'], '*',
		    'the 429 carries CORS');

		// Only POSTs are limited.
		assert.equal((await c.get('/healthz')).status, 200);
		assert.equal((await c.get(listPath(u))).status, 200);
		const other = await subOk(h.stack, u, 'other');

		const again = await postWhenRefilled(c, u, 'd');
		// Exactly the posts answered 200 were delivered, in order.
		const got = [];
		for (let i = 0; i < b.passed.length + 1; i++)
			got.push((await s.nextEvent()).data);
		assert.deepEqual(got, [...b.passed, again]);
		s.close();
		other.close();
	});
});

describe('POST rate, BEEP_AUTH=jwt (sender = token user), CORS allow-list',
    () => {
	const ORIGIN = 'https://app.example';
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
		BEEP_RATE: String(RATE), BEEP_BURST: String(BURST),
		BEEP_CORS_ORIGINS: `${ORIGIN},https://other.example`,
	} });
	const tok = (u, extra) => mint(claims(u, extra), { key: SECRET });

	test('two users have separate buckets', T, async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob'), target = uid('t');
		const s = await subOk(h.stack, target, 'd', bearer(tok(target)));
		const b = await burst(c, target, 'd', bearer(tok(alice)));
		assertBurst(b, 'alice');
		// Bob's bucket is full whatever the time: his whole burst passes.
		const bobs = [];
		for (let i = 0; i < BURST; i++) {
			const data = `bob-${i}`;
			const r = await c.postJson(postPath(target, 'd'), { data },
			    { headers: bearer(tok(bob)) });
			assert.equal(r.status, 200, `bob's post ${i}: ${r.text}`);
			bobs.push(data);
		}
		const again = await postWhenRefilled(c, target, 'd',
		    bearer(tok(alice)));
		const got = [];
		for (let i = 0; i < b.passed.length + BURST + 1; i++)
			got.push((await s.nextEvent()).data);
		assert.deepEqual(got, [...b.passed, ...bobs, again]);
		s.close();
	});

	test('allow-list: credentials allowed for listed origins; preflight ' +
	    'allows Authorization', T, async () => {
		const c = h.stack.client();
		const u = uid('u');
		const t = tok(u);
		const o = { Origin: ORIGIN };
		const answers = [
			['healthz', await c.get('/healthz', { headers: o })],
			['list (cookie)', await c.get(listPath(u), { headers:
			    { ...o, Cookie: `beep_token=${t}` } })],
			['list 401', await c.get(listPath(u), { headers: o })],
			['post 401', await c.postJson(postPath(u, 'd'), { data: 'x' },
			    { headers: o })],
		];
		const s = await openSub(h.stack, subPath(u, 'd'),
		    { ...o, Cookie: `beep_token=${t}` });
		assert.equal(s.status, 200, s.text);
		answers.push(['subscribe (cookie)', s]);
		const p = await c.postJson(postPath(u, 'd'), { data: 'x' },
		    { headers: { ...o, Cookie: `beep_token=${t}` } });
		assert.equal(p.status, 200, p.text);
		answers.push(['post (cookie)', p]);
		for (const [what, r] of answers) {
			assert.equal(r.headers['access-control-allow-origin'], ORIGIN,
			    `${what}: ACAO`);
			assert.equal(r.headers['access-control-allow-credentials'],
			    'true', `${what}: Access-Control-Allow-Credentials`);
			assert.ok(tokens(r.headers.vary).includes('ORIGIN'),
			    `${what}: Vary ${r.headers.vary}`);
		}
		for (const [route, m] of [[subPath(u, 'd'), 'GET'],
		    [listPath(u), 'GET'], [postPath(u, 'd'), 'POST']]) {
			const r = await c.options(route, { headers: { ...o,
			    'Access-Control-Request-Method': m,
			    'Access-Control-Request-Headers': 'authorization, content-type',
			} });
			assert.equal(r.status, 204, `OPTIONS ${route}: ${r.text}`);
			assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
			assert.equal(r.headers['access-control-allow-credentials'],
			    'true', `OPTIONS ${route}: credentials`);
			const allowed = tokens(r.headers['access-control-allow-headers']);
			for (const hdr of ['AUTHORIZATION', 'CONTENT-TYPE'])
				assert.ok(allowed.includes(hdr), `OPTIONS ${route}: ` +
				    `Allow-Headers ${r.headers['access-control-allow-headers']}` +
				    ` has ${hdr}`);
		}
		// An unlisted origin is not allowed at all.
		const x = await c.get('/healthz',
		    { headers: { Origin: 'https://evil.example' } });
		assert.equal(x.headers['access-control-allow-origin'], undefined);
		s.stream.close();
	});
});

describe('BEEP_CORS_ORIGINS=* (default): no credentials', () => {
	const h = useStack({ before, after });

	test('ACAO * never comes with Access-Control-Allow-Credentials', T,
	    async () => {
		const c = h.stack.client();
		for (const r of [
			await c.get('/healthz', { headers: { Origin: 'https://a.example' } }),
			await c.options(listPath('u'), { headers: {
			    Origin: 'https://a.example',
			    'Access-Control-Request-Method': 'GET' } }),
		]) {
			assert.equal(r.headers['access-control-allow-origin'], '*');
			assert.equal(r.headers['access-control-allow-credentials'],
			    undefined);
		}
	});
});

describe('BEEP_MAX_STREAMS_PER_DEVICE=2', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_MAX_STREAMS_PER_DEVICE: '2', BEEP_KEEPALIVE: '1',
	} });

	// The replaced stream's last words: the event, a long retry:, the end.
	async function expectReplaced(s, what) {
		const ev = await s.nextEvent();
		assert.equal(ev.type, 'replaced', `${what}: event ${JSON.stringify(ev)}`);
		assert.equal(typeof JSON.parse(ev.data).reason, 'string', what);
		assert.ok(s.retry >= 10000, `${what}: retry ${s.retry}`);
		await s.waitEnd();
		assert.equal(s.events.length, 0, `${what}: nothing after it`);
	}

	test('a 3rd stream on a device replaces the oldest; other devices are ' +
	    'fine', T, async () => {
		const c = h.stack.client();
		const u = uid('user');
		const a1 = await subOk(h.stack, u, 'd');
		const a2 = await subOk(h.stack, u, 'd');
		const a3 = await subOk(h.stack, u, 'd');
		await expectReplaced(a1, 'a1 by a3');
		const a4 = await subOk(h.stack, u, 'd');
		await expectReplaced(a2, 'a2 by a4');
		// Other devices, of the user or of others, have their own count.
		const e1 = await subOk(h.stack, u, 'e');
		const e2 = await subOk(h.stack, u, 'e');
		const e3 = await subOk(h.stack, u, 'e');
		await expectReplaced(e1, 'e1 by e3');
		const v = await subOk(h.stack, uid('other'), 'd');
		assert.deepEqual(await c.devices(u), ['d', 'e']);
		// The two newest streams of d get what is posted to it.
		const r = await c.postJson(postPath(u, 'd'), { data: 'both' });
		assert.equal(r.status, 200, r.text);
		assert.equal((await a3.nextEvent()).data, 'both');
		assert.equal((await a4.nextEvent()).data, 'both');
		const r2 = await c.postJson(postPath(u, 'e'), { data: 'e' });
		assert.equal(r2.status, 200, r2.text);
		assert.equal((await e2.nextEvent()).data, 'e');
		assert.equal((await e3.nextEvent()).data, 'e');
		const h1 = await c.health();
		assert.ok(h1.replaced >= 3, `replaced counted: ${h1.replaced}`);
		for (const s of [a3, a4, e2, e3, v])
			s.close();
	});
});

describe('BEEP_MAX_DEVICES_PER_USER=2 (grace 30 s)', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_MAX_DEVICES_PER_USER: '2', BEEP_KEEPALIVE: '1',
	} });

	test('a 3rd device -> 429; more streams on a known device are fine; ' +
	    'a device in grace still counts', T, async () => {
		const c = h.stack.client();
		const u = uid('user');
		const a = await subOk(h.stack, u, 'a');
		const b = await subOk(h.stack, u, 'b');
		assert429(await openSub(h.stack, subPath(u, 'c')), '3rd device');
		const a2 = await subOk(h.stack, u, 'a');
		const x = await subOk(h.stack, uid('other'), 'c');
		assert.deepEqual(await c.devices(u), ['a', 'b']);
		const miss = await c.postJson(postPath(u, 'c'), { data: 'x' });
		assert.equal(miss.status, 404, `the refused device does not exist: ` +
		    miss.text);
		// b leaves: unlisted, but in its grace window it still counts.
		b.close();
		await poll(async () => !(await c.devices(u)).includes('b'),
		    { timeout: 15000, what: 'b gone from the list' });
		const held = await c.postJson(postPath(u, 'b'), { data: 'held' });
		assert.equal(held.status, 202, `b is in grace: ${held.text}`);
		assert429(await openSub(h.stack, subPath(u, 'c')),
		    '3rd device while b is in grace');
		// b itself may come back.
		const b2 = await subOk(h.stack, u, 'b');
		assert.equal((await b2.nextEvent()).data, 'held');
		for (const s of [a, a2, b2, x])
			s.close();
	});
});

describe('BEEP_MAX_DEVICES_PER_USER=2, BEEP_GRACE_SECONDS=1', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_MAX_DEVICES_PER_USER: '2', BEEP_KEEPALIVE: '1',
		BEEP_GRACE_SECONDS: '1',
	} });

	test('a device forgotten after its grace frees its place', T, async () => {
		const u = uid('user');
		const a = await subOk(h.stack, u, 'a');
		const b = await subOk(h.stack, u, 'b');
		assert429(await openSub(h.stack, subPath(u, 'c')), '3rd device');
		b.close();
		const c3 = await poll(async () => {
			const s = await openSub(h.stack, subPath(u, 'c'));
			if (s.status === 200)
				return s.stream;
			assert429(s, 'while b still counts');
			return false;
		}, { timeout: 20000, interval: 250, what: 'room for device c' });
		assert.deepEqual(await h.stack.client().devices(u), ['a', 'c']);
		a.close();
		c3.close();
	});
});
