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
import {
	clusterBehindRelay, CLUSTER_QUICK, uid, postPath, poll,
} from './harness.mjs';

const T = { timeout: 90000 };
// The heartbeat key outlives the outage: "x" is answered 200.
const ENV = { ...CLUSTER_QUICK, BEEP_CLUSTER_TTL: '60' };

test('a lone-delivery resync whose answer is lost delivers what it ' +
    'replayed', T, async (t) => {
	const { cl, a, cb, relay, streamOnA, deliverAlone } =
	    await clusterBehindRelay(ENV, t);
	const u = uid('rl');
	const meta = `beep:m:${u}\x1fd`;
	const s = await streamOnA(u);

	// a cut off from Redis: it delivers alone; b posts through Redis.
	await deliverAlone(u, s);
	const rx = await cb.postJson(postPath(u, 'd'), { data: 'x' });
	assert.equal(rx.status, 200, rx.text);
	const last = cl.redis.cli('HGET', meta, 'last');
	assert.notEqual(last, '');

	// a back: its first resync runs in Redis, and its answer is lost.
	// The resync carries the reset frame a's SUB sends with "here" (the
	// scripts' source, which a loads first, has no such JSON).
	const lost = relay.loseAnswer('{"reason":"messages were lost"}',
	    () => cl.redis.cli('HGET', meta, 'last') !== last);
	relay.resume();
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
