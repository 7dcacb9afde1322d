// Review 23: the end of a JWT-authorised stream at its token's exp
// (3d2b314, test 69).
//
// 1. A token whose exp is far in the future (1e16, a "never" some issuers
//    write) ends its stream as soon as it opens: stream_until() multiplies
//    the seconds left by 1000 in a long long, which overflows (undefined
//    behaviour; here it wraps negative, and a negative time left is "now").
//    EventSource then reconnects every few seconds, each stream ending at
//    once, and what is posted meanwhile is taken and released unwritten.
//
// 2. A stream whose writer is still busy when its token expires (a slow
//    reader, a backlog) goes back to registry_wait(), which takes the next
//    batch (messages posted while the token was valid, each answered 200),
//    and then finds the expiry and releases the batch unwritten.  Taken,
//    those messages count as delivered: the device's next stream (a page
//    that opens a new EventSource with a fresh token, no Last-Event-ID)
//    starts past them, untold (no reset), where messages the stream never
//    took are held for it.  A stream that ends because its credentials
//    expired must leave what it did not write untaken.
//
// Through Caddy with the shipped Caddyfile.  Both fail on HEAD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
	startStack, uid, postPath, subPath, openSub,
} from './harness.mjs';
import { UNBOUNDED_QUEUES } from './faults.mjs';
import { mint, claims, nowSec, bearer, withinLife } from './jwt.mjs';

const T = { timeout: 300000 };
const SECRET = crypto.randomBytes(32).toString('hex');
// The busy stream's token's first life (withinLife() lengthens it when
// a loaded machine's flood outlives it).
const LIFE_S = 4;

// Resolves once the wall clock (as the service reads it, CLOCK_REALTIME)
// has passed ms (Unix time in milliseconds).
async function clockPasses(ms) {
	while (Date.now() <= ms)
		await new Promise((r) => setTimeout(r, ms - Date.now() + 1));
}

test('a token whose exp is far in the future (1e16) keeps its stream open',
    T, async (t) => {
	const stack = await startStack({ env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET, BEEP_KEEPALIVE: '1',
	} }, t);
	const c = stack.client();
	t.after(() => c.close());
	const u = uid('far'), sender = uid('sender');
	const far = mint(claims(u, { exp: 1e16 }), { key: SECRET });
	const s = await openSub(stack, subPath(u, 'laptop'), bearer(far));
	assert.equal(s.status, 200, s.text);
	t.after(() => s.stream.close());
	const r = await c.postJson(postPath(u, 'laptop'), { data: 'hello' },
	    { headers: bearer(mint(claims(sender), { key: SECRET })) });
	// 202 (held for a device in grace) is the symptom, told below.
	assert.ok(r.status === 200 || r.status === 202, r.text);
	let ev = null, why = '';
	try {
		ev = await s.stream.nextEvent();
	} catch (e) {
		why = e.message;
	}
	assert.equal(ev?.data, 'hello',
	    'a stream whose token expires in the year 3e8 ended before its ' +
	    `first message (POST ${r.status}; ${why}): the seconds left ` +
	    'times 1000 overflow ' +
	    'stream_until()\'s long long');
});

const BIG = 'x'.repeat(60000);
const N = 300;    // 18 MB: more than Caddy's and the kernel's buffers hold
const data = (i) => `${String(i).padStart(4, '0')}:${BIG}`;
const label = (d) => (d.length > 20 ? d.slice(0, 4) : d);

test('a stream that expires with its writer busy leaves what it did not ' +
    'write for the device\'s next stream', T, async (t) => {
	const stack = await startStack({ env: {
		...UNBOUNDED_QUEUES, BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
		BEEP_JWT_LEEWAY: '0', BEEP_WRITE_TIMEOUT: '600',
		BEEP_GRACE_SECONDS: '600',
	} }, t);
	const c = stack.client();
	t.after(() => c.close());
	const sender = uid('sender');
	const st = mint(claims(sender), { key: SECRET });
	const p = (u) => subPath(u, 'laptop');
	// The flood posted while the token is valid (each answered 200), to a
	// stream that reads nothing for now; again with a longer life when
	// the flood did not finish before exp (a loaded machine).
	const { u, exp, s1 } = await withinLife(t, LIFE_S, async (exp) => {
		const u = uid('busy');
		const short = mint(claims(u, { exp }), { key: SECRET });
		const s1 = await openSub(stack, p(u), bearer(short));
		if (s1.status === 401 && nowSec() >= exp) {
			assert.match(s1.text, /credentials expired/);
			return null;
		}
		assert.equal(s1.status, 200, s1.text);
		s1.stream.res.pause();                  // reads nothing for now
		for (let i = 0; i < N; i++) {
			const r = await c.postJson(postPath(u, 'laptop'),
			    { data: data(i) }, { headers: bearer(st) });
			// Past exp the stream may have ended (202: held).
			if (r.status !== 200 && nowSec() >= exp)
				break;
			assert.equal(r.status, 200, r.text);
		}
		if (nowSec() >= exp) {
			s1.stream.close();
			return null;
		}
		return { u, exp, s1 };
	});
	t.after(() => s1.stream.close());
	// Past the token's exp (+ 0 leeway), the stream's writer still
	// blocked: then it reads on, and the service ends the stream.
	await clockPasses(exp * 1000);
	s1.stream.res.resume();
	await s1.stream.waitEnd(60000);
	// It ends with the refused event that says why (test 69).
	const last = s1.stream.events.at(-1);
	assert.equal(last?.type, 'refused', JSON.stringify(last));
	const first = s1.stream.events.filter((e) => e.type === 'message')
	    .map((e) => e.data);
	assert.ok(first.length < N, 'setup: the flood did not hold the ' +
	    'stream\'s writer past the token\'s exp (all written before)');
	// A fresh token, no Last-Event-ID: the device's next stream.
	const fresh = mint(claims(u), { key: SECRET });
	const s2 = await openSub(stack, p(u), bearer(fresh));
	assert.equal(s2.status, 200, s2.text);
	t.after(() => s2.stream.close());
	const r = await c.postJson(postPath(u, 'laptop'), { data: 'marker' },
	    { headers: bearer(st) });
	assert.equal(r.status, 200, r.text);
	const second = (await s2.stream.eventsUntil('marker', 60000));
	assert.ok(second.every((e) => e.type === 'message'),
	    `the next stream was told of a loss: ${JSON.stringify(
	        second.filter((e) => e.type !== 'message'))}`);
	const got = [...first, ...second.map((e) => e.data)];
	const want = Array.from({ length: N }, (_, i) => data(i));
	const missing = want.filter((d) => !got.includes(d)).map(label);
	assert.deepEqual(missing, [],
	    `messages posted while the token was valid (each answered 200) ` +
	    `were delivered to no stream: the expired stream took them ` +
	    `(registry_wait()) and released them unwritten; its first stream ` +
	    `got ${first.length}, the next ${second.length} of ${N}`);
	assert.deepEqual(got.map(label), want.map(label),
	    'every message once, in order, across the two streams');
});
