// Review (2026-12-06, of e264b83): a node whose Redis user may not run
// INFO (an ACL such as `+@all -@dangerous`, the usual hardening: INFO is
// @dangerous) prunes all its registrations at every reconnection of its
// command connection, to the same Redis run too.
//
// e264b83 removes a node's registrations when its command connection
// reaches a Redis run other than the one it last knew (INFO's run_id), then
// registers its streams again. redis_fence() takes a run_id it could not
// read ('' when INFO is refused) for a new run: new_run is true on every
// connection. So a network blip, a Redis client-timeout kill, a proxy's
// idle cut (the same Redis, nothing lost) makes the node run PRUNE: every
// device it holds is delisted and, with no other holder, begins its grace
// period (POSTs from every node 202, "held"; 404 with BEEP_GRACE_SECONDS
// 0, "that device's connection was not found", for a device whose stream
// is open) until its SYNC comes back, one per device: on a node with
// thousands of streams, for as long as thousands of scripts take. README
// says an ACL without INFO costs only the fence.
//
// The test: one node, INFO denied to its user, a stream open; its command
// connection is killed (CLIENT KILL) and comes back to the same Redis
// run. Redis's MONITOR shows the scripts' commands: PRUNE's
// `DEL beep:r:<node>` must not be among them. A POST through the node
// after it reconnected (queued behind a PRUNE, if one was queued) marks
// where to stop looking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startCluster, CLUSTER_QUICK, uid, postPath, poll,
	metricOf,
} from './harness.mjs';

const T = { timeout: 60000 };
const ENV = CLUSTER_QUICK;

// The node's figure, from its loopback operations site.
function reconnects(node) {
	return metricOf(node, 'beep_redis_reconnects_total');
}

test('a node reconnected to the same Redis run, INFO denied by the ACL, ' +
    'does not remove its registrations', T, async (t) => {
	const cl = await startCluster({ nodes: 1, env: ENV }, t);
	const [a] = cl.nodes;
	const c = a.client();
	const u = uid('prune');
	const s = await a.subscribe(u, 'd');
	const node = (await c.health()).cluster.node;
	assert.ok(node, 'the node id in /healthz');
	assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', '-info'), 'OK');

	const mon = await cl.redis.monitor(t);

	// The node's command connection: a client that is neither subscribed
	// (flag P), nor MONITOR (flag O), nor this CLIENT LIST (U: a Unix
	// socket's).
	const n0 = await reconnects(a);
	const list = cl.redis.cli('CLIENT', 'LIST');
	const ids = list.split('\n')
	    .filter((l) => / flags=[NU]+ /.test(l) && !/ cmd=client\|list /.test(l))
	    .map((l) => /^id=(\d+)/.exec(l)[1]);
	assert.equal(ids.length, 1, `one command connection: ${list}`);
	const from = mon.text().length;
	assert.equal(cl.redis.cli('CLIENT', 'KILL', 'ID', ids[0]), '1');
	await poll(async () => await reconnects(a) > n0,
	    { timeout: 20000, what: 'the command connection made again' });

	// Queued after a PRUNE, if the reconnection queued one.
	const r = await c.postJson(postPath(u, 'd'), { data: 'after-reconnect' });
	assert.ok(r.status === 200 || r.status === 202, `${r.status} ${r.text}`);
	assert.equal((await s.nextEvent(15000)).data, 'after-reconnect');
	await poll(() => mon.text().includes('after-reconnect', from),
	    { what: 'the POST in MONITOR' });
	const upTo = mon.text().indexOf('after-reconnect', from);
	const pruned = mon.text().slice(from, upTo).split('\n')
	    .filter((l) => l.includes(`"DEL" "beep:r:${node}"`));
	assert.deepEqual(pruned, [], 'the node reconnected to the same Redis ' +
	    'run (a killed connection, nothing lost) and ran PRUNE all the ' +
	    'same: with INFO denied its run_id is never known, so every ' +
	    'connection is taken for a new run, and every device it holds is ' +
	    'delisted and held (202; 404 with no grace) until its resync');
	assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', '+info'), 'OK');
});
