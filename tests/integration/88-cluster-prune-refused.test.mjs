// A node's PRUNE on a new Redis run (test 63) refused by Redis with an
// error it gives before running a script (OOM at maxmemory with
// noeviction, READONLY from a replica not yet promoted by a failover,
// MISCONF, NOREPLICAS): the node notes it (prune_again) but only its next
// command connection prunes.  The connection stays up, Redis takes writes
// again (the replica is promoted, memory freed), and the resync that was
// refused with it is sent again (after 100 ms doubling to 2 s), the PRUNE
// never: for as long as the connection lives, a device whose stream
// closed after the snapshot stays listed with the node as its holder,
// every POST to it answered 200 and dropped by the node; and the new
// run's count of accepted messages is not noted before POSTs raise it (a
// loss it would have found is hidden).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startCluster, CLUSTER_QUICK, uid, postPath, poll,
} from './harness.mjs';

const T = { timeout: 120000 };
const ENV = { ...CLUSTER_QUICK, BEEP_GRACE_SECONDS: '600' };

describe('a PRUNE Redis refused', T, () => {
	test('is made again once Redis takes writes on the same connection',
	    T, async (t) => {
		const cl = await startCluster({ nodes: 1, env: ENV,
		    check: { allowErrors: [/redis: READONLY/] } }, t);
		const [a] = cl.nodes;
		const ca = a.client();
		const node = (await ca.health()).cluster.node;
		const u = uid('refused');
		const live = await a.subscribe(u, 'live');
		const gone = await a.subscribe(u, 'gone');
		assert.deepEqual((await ca.devices(u)).sort(), ['gone', 'live']);
		assert.equal(cl.redis.cli('SAVE'), 'OK');
		gone.close();
		await poll(async () => (await ca.devices(u)).length === 1,
		    { timeout: 20000, what: `${u}/gone in its grace period` });

		// Back from the snapshot, a replica (as a failover's new master
		// before its promotion: read only) when the node comes to it.
		const pid = a.backend.pid;
		process.kill(pid, 'SIGSTOP');
		t.after(() => { try { process.kill(pid, 'SIGCONT'); } catch {} });
		await cl.redis.crashAndRestart();
		assert.equal(cl.redis.cli('REPLICAOF', '127.0.0.1', '1'), 'OK');
		const mon = await cl.redis.monitor(t);
		process.kill(pid, 'SIGCONT');
		// The node's first script on the new run is its PRUNE: refused
		// at its first write.  Then the promotion, on the same run.
		const refused = () => Number((/errorstat_READONLY:count=(\d+)/
		    .exec(cl.redis.cli('INFO', 'errorstats')) || [0, 0])[1]);
		await poll(() => refused() > 0 &&
		    mon.text().includes(`"SMEMBERS" "beep:r:${node}"`),
		    { timeout: 20000, what: 'the PRUNE refused (READONLY)' });
		assert.equal(cl.redis.cli('REPLICAOF', 'NO', 'ONE'), 'OK');

		// The refused resync of the live device, sent again, runs, and
		// the node's heartbeat (refused too) sets its key again.
		await poll(() => mon.text().includes(`"SADD" "beep:r:${node}" "${u}"`) &&
		    cl.redis.cli('EXISTS', `beep:n:${node}`) === '1',
		    { timeout: 20000, what: 'the resync and heartbeat made again' });
		const listed = await ca.devices(u);
		const r = await ca.postJson(postPath(u, 'gone'), { data: 'x' });
		assert.deepEqual(listed, ['live'], 'a device whose only stream ' +
		    'closed after the snapshot is listed: the node\'s PRUNE, ' +
		    'refused (READONLY), was never made again on the ' +
		    'connection once Redis took writes, though its resync was ' +
		    '(and a POST to it got ' +
		    `${r.status}, published to a node with no stream of it)`);
		assert.equal(r.status, 202, r.text);
		live.close();
	});
});
