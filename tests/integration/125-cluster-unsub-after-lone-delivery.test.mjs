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
import net from 'node:net';
import {
	startCluster, startStack, freePort, CLUSTER_QUICK, uid, subPath,
	postPath, poll,
} from './harness.mjs';

const T = { timeout: 90000 };
const ENV = {
	...CLUSTER_QUICK, BEEP_CLUSTER_TTL: '60', BEEP_GRACE_SECONDS: '600',
};

// A relay from a TCP port to Redis's unix socket.  cut(): every
// connection closed, new ones closed at once; resume(): relayed again.
async function relay(socket) {
	const port = await freePort();
	const conns = new Set();
	let down = false;
	const server = net.createServer((c) => {
		if (down) {
			c.destroy();
			return;
		}
		const up = net.connect({ path: socket });
		const pair = { c, up };
		conns.add(pair);
		const end = () => {
			c.destroy();
			up.destroy();
			conns.delete(pair);
		};
		c.on('error', end).on('close', end);
		up.on('error', end).on('close', end);
		c.pipe(up);
		up.pipe(c);
	});
	await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
	const closeAll = () => {
		for (const p of conns) {
			p.c.destroy();
			p.up.destroy();
		}
	};
	return {
		url: `redis://127.0.0.1:${port}`,
		cut() {
			down = true;
			closeAll();
		},
		resume() { down = false; },
		close() {
			closeAll();
			return new Promise((resolve) => server.close(resolve));
		},
	};
}

test('a POST after a lone-delivering stream closed reaches the client ' +
    'back without an id', T, async (t) => {
	const cl = await startCluster({ nodes: 1, env: ENV }, t);
	const [b] = cl.nodes;
	const r = await relay(cl.redis.socket);
	t.after(() => r.close());
	const a = await startStack({ env: { ...ENV, BEEP_REDIS_URL: r.url } }, t);
	const ca = a.client(), cb = b.client();
	await poll(async () => (await ca.health()).cluster.redis === 'up',
	    { timeout: 20000, what: 'a up' });
	const u = uid('lone');
	const s = await a.subscribe(u, 'd');
	const r0 = await cb.postJson(postPath(u, 'd'), { data: 'before' });
	assert.equal(r0.status, 200, r0.text);
	assert.equal((await s.nextEvent(15000)).data, 'before');

	// a cut off from Redis: it delivers alone.
	r.cut();
	await poll(async () => {
		const p = await ca.postJson(postPath(u, 'd'), { data: 'alone' });
		assert.ok(p.status === 200 || p.status === 503, p.text);
		return p.status === 200;
	}, { timeout: 10000, what: 'a delivers alone' });
	assert.equal((await s.nextEvent(15000)).data, 'alone');
	// The client leaves: a's stream ends; its UNSUB waits for Redis.
	s.close();
	await poll(async () => (await ca.health()).streams === 0,
	    { timeout: 20000, what: 'a\'s stream ended' });

	// a still the holder: 200, taken by no stream.
	const rx = await cb.postJson(postPath(u, 'd'), { data: 'x' });
	assert.equal(rx.status, 200, rx.text);

	// a back: its UNSUB runs, and the device is in its grace period.
	r.resume();
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
