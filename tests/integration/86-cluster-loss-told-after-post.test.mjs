// Redis back from a snapshot that lost messages it had accepted (held,
// 202): the node with the higher count of accepted messages finds the loss
// at its PRUNE (ae87c98), deletes beep:born and names the other nodes in
// beep:resync, so that at their next heartbeat they register their devices
// again and "a stream of one whose last id from Redis is below the new
// base() is told" (cluster_lua.c), "on subscribe or at that heartbeat"
// (README, Cluster, Redis back with older data).
//
// A stream that subscribed on the new run before the loss was found, with
// its client's last id, was replayed what the snapshot kept and not told
// (the loss was not known yet).  If the device is posted to between the
// finding and its node's next heartbeat (the call goes on: ICE candidates,
// a hang-up), the stream's newest id from Redis is then above the new
// base(), and the resync finds nothing lost: the held message is lost for
// good, untold.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startCluster, startStack, CLUSTER_QUICK, uid, postPath, listPath, poll,
	snapshotLoss,
} from './harness.mjs';

const T = { timeout: 120000 };
const ENV = { ...CLUSTER_QUICK, BEEP_GRACE_SECONDS: '600' };

describe('Redis back with older data: the loss is told', T, () => {
	test('a stream subscribed before the loss was found is told at its ' +
	    'node\'s resync, also when posted to meanwhile', T, async (t) => {
		// b: the node that posts (its count is the higher one).
		const cl = await startCluster({ nodes: 1, env: ENV }, t);
		const [b] = cl.nodes;
		// a: the node of the stream; its heartbeat (every 20 s) does
		// not come on its own while the test runs: its resync is made
		// to happen by closing its command connection (below).
		const a = await startStack({ env: { BEEP_REDIS_URL: cl.redis.url,
		    ...ENV, BEEP_CLUSTER_TTL: '60' } });
		cl.nodes.push(a);
		const ca = a.client(), cb = b.client();
		const nodeA = (await ca.health()).cluster.node;
		const u = uid('told');

		// b is away while Redis restarts from its snapshot: a comes
		// back first, and the device's client with it.
		const { back, mon, found } = await snapshotLoss(cl, a, b, u,
		    'phone', t);
		// a's command connection (b has none yet).
		const idA = cl.redis.cli('CLIENT', 'LIST').split('\n')
		    .filter((l) => / sub=0 /.test(l) && !/ flags=\S*O/.test(l) &&
		        !/ cmd=client/.test(l))
		    .map((l) => /^id=(\d+) /.exec(l)[1]);
		assert.equal(idA.length, 1, `a's command connection: ${idA}`);

		await found();

		// The call goes on before a's next heartbeat.
		const r3 = await cb.postJson(postPath(u, 'phone'), { data: 'm3' });
		assert.equal(r3.status, 200, r3.text);
		assert.equal((await back.nextEvent(15000)).data, 'm3');

		// a's heartbeat: on a new command connection, at once.  Its
		// command thread does not read an idle connection, so a finds
		// it closed at its next command (a listing: 503), not only at
		// its next heartbeat, 20 s on (as test 92).
		const from = mon.text().length;
		assert.match(cl.redis.cli('CLIENT', 'KILL', 'ID', idA[0]), /^1$/);
		const poke = await ca.get(listPath(uid('poke')));
		assert.equal(poke.status, 503, poke.text);
		await poll(() => mon.text().indexOf(`"SADD" "beep:r:${nodeA}" "${u}"`,
		    from) >= 0, { timeout: 20000, what: 'a\'s resync of the device' });

		const r4 = await cb.postJson(postPath(u, 'phone'), { data: 'm4' });
		assert.equal(r4.status, 200, r4.text);
		const got = await back.eventsUntil('m4');
		back.close();
		assert.ok(got.some((e) => e.type === 'reset'), '"after" was ' +
		    'answered 202 and lost with the snapshot; the device came ' +
		    'back with its last id before the loss was found, and was ' +
		    'never told: its node\'s resync (beep:resync) found its ' +
		    'newest id (m3, posted after the finding) above the new ' +
		    `beep:born, so nothing lost; events after m3: ` +
		    JSON.stringify(got));
	});
});
