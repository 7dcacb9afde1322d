// Redis flushed while the nodes run (FLUSHALL, FLUSHDB, a clean-up of
// beep:* keys): the README's "Redis restarted empty (no persistence, or
// flushed)" case, told at once (every stream gets its reset).  The count of
// accepted messages (beep:w, ae87c98) starts again from 0 with the data,
// but each node keeps the highest count it was given before the flush.  The
// next restart of that Redis, with every write kept (an append-only file
// synced on every write, as the README advises), begins its run at the
// count Redis has, below the nodes' own: the node's PRUNE takes it for a
// Redis that lost accepted messages, deletes beep:born, and every stream of
// the cluster gets `event: reset` ("messages were lost") and lists get 503
// for the rebuild, although nothing was lost.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startCluster, CLUSTER_QUICK, uid, postPath, poll,
} from './harness.mjs';

const T = { timeout: 120000 };

describe('Redis flushed, then restarted with all its data', T, () => {
	test('the restart after a flush is not taken for a loss', T,
	    async (t) => {
		const cl = await startCluster({ nodes: 1, env: CLUSTER_QUICK,
		    persist: true }, t);
		const [a] = cl.nodes;
		const ca = a.client();
		const u = uid('flush');
		const s = await a.subscribe(u, 'phone');
		for (const data of ['m1', 'm2', 'm3']) {
			const r = await ca.postJson(postPath(u, 'phone'), { data });
			assert.equal(r.status, 200, r.text);
			assert.equal((await s.nextEvent(15000)).data, data);
		}

		// The flush is a loss, and told.
		assert.equal(cl.redis.cli('FLUSHALL'), 'OK');
		assert.equal((await s.nextEvent(15000)).type, 'reset');
		let r;
		await poll(async () => {
			r = await ca.postJson(postPath(u, 'phone'), { data: 'm4' });
			return r.status !== 503;
		}, { timeout: 30000, what: 'POST m4 answered' });
		assert.equal(r.status, 200, r.text);
		assert.equal((await s.nextEvent(15000)).data, 'm4');

		// A clean restart: every write is in the append-only file.
		const ups = () => a.backendLog.filter((l) =>
		    /redis commands: up/.test(l)).length;
		const before = ups();
		await cl.redis.stop('SIGTERM');
		await cl.redis.start();
		// The node's next command connection is to the new run (its
		// PRUNE and resync are queued before anything posted after).
		await poll(() => ups() > before,
		    { timeout: 20000, what: 'the node connected to the new run' });
		await poll(async () => {
			r = await ca.postJson(postPath(u, 'phone'), { data: 'm5' });
			return r.status !== 503;
		}, { timeout: 30000, what: 'POST m5 answered' });
		assert.equal(r.status, 200, r.text);
		const got = await s.eventsUntil('m5');
		s.close();
		const said = a.backendLog.filter((l) =>
		    /redis came back with older data/.test(l));
		assert.deepEqual(got, [], 'Redis restarted with every write ' +
		    'kept, and the stream was told messages were lost: the ' +
		    'node\'s count of accepted messages was from before the ' +
		    'flush, above the count Redis began again from ' +
		    `(${JSON.stringify(said)})`);
	});
});
