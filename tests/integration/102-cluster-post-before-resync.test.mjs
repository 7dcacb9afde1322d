// A message accepted by one node after Redis came back, before the node
// of the device's stream has registered the device again or subscribed
// its channel again.
//
// Node a has a stream of u/d; Redis goes and comes back with its data (a
// restart on its append-only file, or its connections dropped), and a's
// channel is held down (Redis refuses every channel from the moment it is
// back: its ACL file), or a itself is stopped (SIGSTOP) until b has
// posted.  A POST through b is answered 200 (202 when a's registration
// ran out meanwhile: held) and Redis keeps it in the device's stream; its
// publication reaches no one.  When a is back, it must deliver it from
// Redis, once, in id order, before what comes after it, with no `event:
// reset` ("messages were lost"), for Redis still holds everything (README,
// Cluster: "When Redis is back every node registers its devices again and
// reads, from each device's stream, what its channel lost: nothing is
// delivered twice").  Also when a delivered a message alone while Redis
// was away (its resync then moves the device above it, and tells the
// other holders: its own stream missed nothing).  A review (r32) saw such
// a POST end in a reset on a's stream; none of these orders does
// (2026-12-06): the file guards them.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
	startCluster, CLUSTER_QUICK, uid, postPath, poll,
} from './harness.mjs';

const T = { timeout: 90000 };
const ALLOWED = 'user default on nopass ~* &* +@all\n';
const NO_CHANNELS = 'user default on nopass ~* resetchannels +@all\n';

// Posts until a node's commands reach Redis again: a POST to a device
// nobody ever had is 404 then (503 while they are down).
async function commandsUp(c, u) {
	await poll(async () => {
		const r = await c.postJson(postPath(u, 'nobody'), { data: 'x' });
		return r.status === 404;
	}, { timeout: 20000, what: 'the node\'s commands up again' });
}

// The events of s up to the one whose data is `end`.
async function untilEnd(s) {
	const got = [];
	for (;;) {
		const e = await s.nextEvent(20000);
		got.push({ type: e.type, data: e.data, id: e.lastEventId });
		if (e.data === 'end')
			return got;
	}
}

const idLess = (x, y) => {
	const [a1, b1] = x.split('-').map(BigInt);
	const [a2, b2] = y.split('-').map(BigInt);
	return a1 < a2 || (a1 === a2 && b1 < b2);
};

// opts: outage(cl), what takes Redis away and brings it back; local: a
// POST to a while Redis is away (delivered by a alone); freeze: a is
// stopped (SIGSTOP) from before the outage until after the POSTs, so that
// it registers nothing meanwhile; expire: and its registration runs out
// (its heartbeat key) before b posts (202: held); env: the nodes'.
async function scenario(t, { outage, local = false, freeze = false,
    expire = false, env = CLUSTER_QUICK }) {
	const acl = path.join(os.tmpdir(), `beep-102-${process.pid}-` +
	    `${uid('a')}.acl`);
	writeFileSync(acl, ALLOWED);
	t.after(() => rmSync(acl, { force: true }));
	const cl = await startCluster({ nodes: 2, env, persist: true,
	    redisArgs: ['--aclfile', acl] }, t);
	const [a, b] = cl.nodes;
	const ca = a.client(), cb = b.client();
	const nodeA = (await ca.health()).cluster.node;
	const u = uid('pr');
	const s = await a.subscribe(u, 'd');
	const r0 = await cb.postJson(postPath(u, 'd'), { data: 'before' });
	assert.equal(r0.status, 200, r0.text);
	assert.equal((await s.nextEvent(15000)).data, 'before');
	const want = ['before'];

	if (local) {
		// Redis away: a delivers a POST to its own stream alone.
		await cl.redis.stop();
		// A 503 (the node finds its connection gone at this POST; Redis
		// is stopped: it ran nowhere) is sent again.
		await poll(async () => {
			const r = await ca.postJson(postPath(u, 'd'),
			    { data: 'alone' });
			assert.ok(r.status === 200 || r.status === 503, r.text);
			return r.status === 200;
		}, { timeout: 10000, what: 'a delivers alone' });
		assert.equal((await s.nextEvent(15000)).data, 'alone');
		want.push('alone');
	}
	const pid = a.backend.pid;
	if (freeze) {
		process.kill(pid, 'SIGSTOP');
		t.after(() => { try { process.kill(pid, 'SIGCONT'); } catch {} });
	}
	// Redis back with its data, every channel refused from then on.
	writeFileSync(acl, NO_CHANNELS);
	await outage(cl);
	if (!freeze)
		await poll(async () =>
			(await ca.health()).cluster.redis === 'down',
		    { timeout: 10000, what: 'a\'s channel down' });
	await commandsUp(cb, u);
	if (expire)
		await poll(() => cl.redis.cli('EXISTS', `beep:n:${nodeA}`) === '0',
		    { timeout: 20000, what: 'a\'s heartbeat key gone' });

	for (let i = 0; i < 3; i++) {
		const r = await cb.postJson(postPath(u, 'd'), { data: `m${i}` });
		if (expire)
			assert.equal(r.status, 202, `m${i}: ${r.text}`);
		else if (freeze)
			assert.equal(r.status, 200, `m${i}: ${r.text}`);
		else
			assert.ok(r.status === 200 || r.status === 202,
			    `m${i}: ${r.status} ${r.text}`);
		want.push(`m${i}`);
	}
	// Stopped, a has registered nothing again (otherwise its
	// registration, with its channel still refused, may have run since
	// and replayed them already: the same guarantee).
	if (freeze)
		assert.equal(s.events.length, 0, 'nothing reached a yet');

	// The channels allowed again (a goes on): a registers again.
	assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', 'allchannels'),
	    'OK');
	writeFileSync(acl, ALLOWED);
	if (freeze)
		process.kill(pid, 'SIGCONT');
	await poll(async () => (await ca.health()).cluster.redis === 'up',
	    { timeout: 20000, what: 'a up again' });
	await poll(async () => {
		const r = await cb.postJson(postPath(u, 'd'), { data: 'end' });
		return r.status === 200;
	}, { timeout: 20000, what: 'a POST to the device answered 200' });
	want.push('end');
	const got = await untilEnd(s);
	assert.deepEqual(got.map((e) => e.type), got.map(() => 'message'),
	    `no reset: Redis held every message: ${JSON.stringify(got)}`);
	assert.deepEqual(['before', ...(local ? ['alone'] : []),
	    ...got.map((e) => e.data)], want,
	    `every message answered 200/202 delivered once, in order: ` +
	    `${JSON.stringify(got)}`);
	for (let i = 1; i < got.length; i++)
		assert.ok(idLess(got[i - 1].id, got[i].id),
		    `ids increase: ${JSON.stringify(got)}`);
}

const restart = async (cl) => {
	await cl.redis.stop();
	await cl.redis.start();
};
const drop = async (cl) => {
	assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', 'resetchannels'),
	    'OK');
	cl.redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
};
// Redis already stopped (local): started again.
const back = async (cl) => {
	await cl.redis.start();
};

describe('a POST accepted before its stream\'s node resubscribed', T, () => {
	test('after a restart that kept the data', T, (t) =>
		scenario(t, { outage: restart }));
	test('after the connections were dropped', T, (t) =>
		scenario(t, { outage: drop }));
	test('a stopped meanwhile', T, (t) =>
		scenario(t, { outage: restart, freeze: true,
		    env: { ...CLUSTER_QUICK, BEEP_CLUSTER_TTL: '60' } }));
	test('a stopped meanwhile, its registration run out', T, (t) =>
		scenario(t, { outage: restart, freeze: true, expire: true }));
	test('a delivered alone while Redis was away', T, (t) =>
		scenario(t, { outage: back, local: true }));
	test('a delivered alone, then stopped', T, (t) =>
		scenario(t, { outage: back, local: true, freeze: true,
		    env: { ...CLUSTER_QUICK, BEEP_CLUSTER_TTL: '60' } }));
	test('a delivered alone, then stopped, its registration run out', T,
	    (t) => scenario(t, { outage: back, local: true, freeze: true,
		expire: true }));
});
