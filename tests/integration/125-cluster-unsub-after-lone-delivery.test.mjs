// A node that delivered a POST to its own stream alone, while cut off
// from Redis, has that stream close before Redis is back: its UNSUB (no
// stream is left to resync) carries the lone delivery, and moves the
// device above everything to tell the other holders.
//
// Node a reaches Redis through a TCP relay of the test's (b reaches it
// directly).  The relay cuts a off: a delivers "alone" to its stream, and
// the stream's client leaves.  b posts "x": 200, a is still the device's
// holder (its heartbeat key outlives the outage), and no stream takes it
// (a's channel is down too: "x" is in the device's Redis stream only).
// The relay lets a back: its UNSUB runs, the device is in its grace
// period, and "after" is held (202).  The client comes back without an
// id, through b.
//
// It must get "x" (answered 200, taken by no stream), then "after", and
// no reset: its stream had everything up to "alone".  A review (r43) found
// the UNSUB's move taking "x" with it, and holding from above it: lost,
// untold (README, Cluster: "What they had is what they took").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	clusterBehindRelay, CLUSTER_QUICK, uid, subPath, postPath, poll,
} from './harness.mjs';

const T = { timeout: 90000 };
const ENV = {
	...CLUSTER_QUICK, BEEP_CLUSTER_TTL: '60', BEEP_GRACE_SECONDS: '600',
};

test('a POST after a lone-delivering stream closed reaches the client ' +
    'back without an id', T, async (t) => {
	const { b, ca, cb, relay, streamOnA, deliverAlone } =
	    await clusterBehindRelay(ENV, t);
	const u = uid('lone');
	const s = await streamOnA(u);

	// a cut off from Redis: it delivers alone.
	await deliverAlone(u, s);
	// The client leaves: a's stream ends; its UNSUB waits for Redis.
	s.close();
	await poll(async () => (await ca.health()).streams === 0,
	    { timeout: 20000, what: 'a\'s stream ended' });

	// a still the holder: 200, taken by no stream.
	const rx = await cb.postJson(postPath(u, 'd'), { data: 'x' });
	assert.equal(rx.status, 200, rx.text);

	// a back: its UNSUB runs, and the device is in its grace period.
	relay.resume();
	await poll(async () => (await cb.devices(u)).length === 0,
	    { timeout: 20000, what: 'a\'s UNSUB' });
	const r2 = await cb.postJson(postPath(u, 'd'), { data: 'after' });
	assert.equal(r2.status, 202, r2.text);

	const back = await b.open(subPath(u, 'd'));
	assert.equal(back.status, 200);
	const got = await back.eventsUntil('after');
	back.close();
	const seen = got.map((e) => `${e.type}:${e.data}`);
	assert.ok(seen.includes('message:x'), '"x" (answered 200, taken by ' +
	    `no stream) lost; events: ${JSON.stringify(seen)}`);
	assert.ok(!got.some((e) => e.type === 'reset'),
	    `a reset: nothing was lost; events: ${JSON.stringify(seen)}`);
});
