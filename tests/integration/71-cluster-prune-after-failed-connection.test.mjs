// Review (2026-12-06, of e264b83): the PRUNE that a new Redis run calls for
// is forgotten when the node's first connection to that run fails after
// its fence read the run_id: the next connection finds the run already
// known and prunes nothing, and Redis back from an older snapshot keeps
// the node as the holder of a device whose stream closed (test 63's first
// case, back).
//
// redis_fence() notes the run as known (f->run, with CLIENT ID) before the
// connection's eviction check and script loading; only when all of them
// pass does the command thread queue the PRUNE. A Redis back from its
// snapshot answers INFO and CLIENT while it loads its data set and -LOADING
// to SCRIPT LOAD (a large RDB takes seconds; a node's first try comes
// within 100 ms), a refused eviction policy, a script refused by the ACL, a
// connection cut then: each makes the first connection fail after the
// fence, and the run is no longer new for the next one.
//
// The test makes the failure deterministic with the ACL (an --aclfile,
// which a restart reads again): SCRIPT refused on the restarted Redis, so
// the node's first connection to the new run fails at SCRIPT LOAD; then
// allowed. The device that left after the snapshot must not be listed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCluster, CLUSTER_QUICK, uid, poll } from './harness.mjs';

const T = { timeout: 120000 };
const ENV = {
	...CLUSTER_QUICK,
	BEEP_GRACE_SECONDS: '600',
};

test('a new Redis run whose first connection fails after the fence is ' +
    'still pruned', T, async (t) => {
	const dir = path.join('/tmp', `beep-acl-${process.pid}-${Date.now()}`);
	const aclfile = `${dir}.acl`;
	t.after(() => rmSync(aclfile, { force: true }));
	writeFileSync(aclfile, 'user default on nopass ~* &* +@all\n');
	const cl = await startCluster({ nodes: 1, env: ENV,
	    redisArgs: ['--aclfile', aclfile],
	    check: { allowErrors: [/SCRIPT LOAD/, /NOPERM/] } }, t);
	const [a] = cl.nodes;
	const ca = a.client();
	const u = uid('prune');
	const s = await a.subscribe(u, 'phone');
	assert.equal(cl.redis.cli('SAVE'), 'OK');
	s.close();
	await poll(async () => (await ca.devices(u)).length === 0,
	    { timeout: 20000, what: `${u}/phone gone from the list` });

	// Back from the snapshot, SCRIPT refused: the node's first connection
	// to the new run passes the fence, then fails at SCRIPT LOAD.
	writeFileSync(aclfile, 'user default on nopass ~* &* +@all -script\n');
	await cl.redis.stop('SIGKILL');
	rmSync(cl.redis.socket, { force: true });
	await cl.redis.start();
	// Redis's ACL LOG says when the node's SCRIPT LOAD was refused.
	await poll(() => /\bscript\b/.test(cl.redis.cli('ACL', 'LOG')),
	    { timeout: 20000, what: 'the node\'s SCRIPT LOAD refused' });
	assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', '+script'),
	    'OK');
	await poll(async () => (await ca.health()).cluster.redis === 'up',
	    { timeout: 20000, what: 'healthz says redis up' });
	// Its heartbeat has run on the new run, and what it queued before.
	const node = (await ca.health()).cluster.node;
	await poll(() => cl.redis.cli('EXISTS', `beep:n:${node}`) === '1',
	    { timeout: 20000, what: 'the node\'s heartbeat key back' });
	let listed;
	await poll(async () => {
		const r = await ca.get(`/user/${u}/devices`);
		listed = r.status === 200 ? r.json() : null;
		return listed !== null;
	}, { timeout: 20000, what: 'the list answered' });
	assert.deepEqual(listed, [], 'the device whose only stream closed ' +
	    'after the snapshot is listed (and POSTs to it 200, dropped): the ' +
	    'node\'s first connection to the new Redis run failed after its ' +
	    'fence had noted the run, so the next one took it for the same ' +
	    'run and ran no PRUNE');
});
