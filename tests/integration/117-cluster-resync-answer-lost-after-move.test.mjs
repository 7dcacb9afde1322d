// A resync that moved the device, whose answer was lost with its
// connection.
//
// Node a has a stream of u/d and reaches Redis through a TCP relay of the
// test's (b reaches it directly).  The relay cuts a off: a delivers a POST
// to its own stream alone, and b, which still reaches Redis, posts "x"
// (200: a is still the device's holder; its channel is down, so "x" is in
// the device's Redis stream only).  The relay lets a back, and forwards
// a's resync (the SUB that carries a's "delivered alone": its reset frame)
// to Redis, which runs it: the device moves above everything, and the
// answer replays "x".  The relay never passes that answer on: once Redis
// has run the script (the device's last id has moved), it closes a's
// connection.  a sends the same resync again on its next connection.
//
// Its stream must get "x", once, in order, and no reset: Redis holds
// everything a's stream missed (README, Cluster: "A message delivered on
// one node alone while Redis was down").  A review (r39) found the second
// resync moving the device again past "x", which the first move had
// trimmed: a reset, and "x", answered 200, never delivered there; nor
// "end", posted after the first move while a's gate held its channel's
// messages back, which the second move trimmed too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
	startCluster, startStack, freePort, CLUSTER_QUICK, uid, postPath, poll,
} from './harness.mjs';

const T = { timeout: 90000 };
// The heartbeat key outlives the outage: "x" is answered 200.
const ENV = { ...CLUSTER_QUICK, BEEP_CLUSTER_TTL: '60' };

// A relay from a TCP port to Redis's unix socket.  cut(): every
// connection closed, new ones closed at once; resume(): relayed again.
// loseAnswer(marker, ran): the first request that holds marker is sent on,
// what Redis answers on that connection from then on is dropped, and once
// ran() resolves true the connection is closed.
async function relay(socket) {
	const port = await freePort();
	const conns = new Set();
	let down = false, arm = null;
	const server = net.createServer((c) => {
		if (down) {
			c.destroy();
			return;
		}
		const up = net.connect({ path: socket });
		const pair = { c, up, swallow: false, seen: '' };
		conns.add(pair);
		const end = () => {
			c.destroy();
			up.destroy();
			conns.delete(pair);
		};
		c.on('error', end).on('close', end);
		up.on('error', end).on('close', end);
		up.on('data', (d) => {
			if (!pair.swallow)
				c.write(d);
		});
		c.on('data', (d) => {
			up.write(d);
			if (arm === null)
				return;
			pair.seen = (pair.seen + d.toString('latin1')).slice(-65536);
			if (!pair.seen.includes(arm.marker))
				return;
			const { ran, done } = arm;
			arm = null;
			pair.swallow = true;
			poll(ran, { timeout: 10000, what: 'Redis ran the resync' })
			    .then(() => { end(); done(true); }, () => done(false));
		});
	});
	await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
	return {
		url: `redis://127.0.0.1:${port}`,
		cut() {
			down = true;
			for (const p of conns) {
				p.c.destroy();
				p.up.destroy();
			}
		},
		resume() { down = false; },
		loseAnswer(marker, ran) {
			return new Promise((done) => { arm = { marker, ran, done }; });
		},
		close() {
			for (const p of conns) {
				p.c.destroy();
				p.up.destroy();
			}
			return new Promise((resolve) => server.close(resolve));
		},
	};
}

test('a lone-delivery resync whose answer is lost delivers what it ' +
    'replayed', T, async (t) => {
	const cl = await startCluster({ nodes: 1, env: ENV }, t);
	const [b] = cl.nodes;
	const r = await relay(cl.redis.socket);
	t.after(() => r.close());
	const a = await startStack({ env: { ...ENV, BEEP_REDIS_URL: r.url } }, t);
	const ca = a.client(), cb = b.client();
	await poll(async () => (await ca.health()).cluster.redis === 'up',
	    { timeout: 20000, what: 'a up' });
	const u = uid('rl');
	const meta = `beep:m:${u}\x1fd`;
	const s = await a.subscribe(u, 'd');
	const r0 = await cb.postJson(postPath(u, 'd'), { data: 'before' });
	assert.equal(r0.status, 200, r0.text);
	assert.equal((await s.nextEvent(15000)).data, 'before');

	// a cut off from Redis: it delivers alone; b posts through Redis.
	r.cut();
	await poll(async () => {
		const p = await ca.postJson(postPath(u, 'd'), { data: 'alone' });
		assert.ok(p.status === 200 || p.status === 503, p.text);
		return p.status === 200;
	}, { timeout: 10000, what: 'a delivers alone' });
	assert.equal((await s.nextEvent(15000)).data, 'alone');
	const rx = await cb.postJson(postPath(u, 'd'), { data: 'x' });
	assert.equal(rx.status, 200, rx.text);
	const last = cl.redis.cli('HGET', meta, 'last');
	assert.notEqual(last, '');

	// a back: its first resync runs in Redis, and its answer is lost.
	// The resync carries the reset frame a's SUB sends with "here" (the
	// scripts' source, which a loads first, has no such JSON).
	const lost = r.loseAnswer('{"reason":"messages were lost"}',
	    () => cl.redis.cli('HGET', meta, 'last') !== last);
	r.resume();
	assert.equal(await lost, true, 'the resync ran, its answer dropped');

	await poll(async () => {
		const p = await cb.postJson(postPath(u, 'd'), { data: 'end' });
		return p.status === 200;
	}, { timeout: 20000, what: 'a POST to the device answered 200' });
	const got = [];
	for (;;) {
		const e = await s.nextEvent(20000).catch((err) => {
			err.message += `; a's stream had: ${JSON.stringify(got)}` +
			    `\na's log:\n${a.backendLog.join('\n')}`;
			throw err;
		});
		got.push({ type: e.type, data: e.data, id: e.lastEventId });
		// A reset says it all: nothing was lost.
		if (e.type !== 'message' || e.data === 'end')
			break;
	}
	assert.deepEqual(got.map((e) => `${e.type}:${e.data}`),
	    ['message:x', 'message:end'],
	    `"x" once, in order, no reset: ${JSON.stringify(got)}`);
});
