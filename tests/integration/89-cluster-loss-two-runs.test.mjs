// Redis back from a snapshot that lost messages it had accepted (ae87c98):
// the loss is found by the node whose count of accepted messages (beep:w)
// is above where the new run's count began, at its first PRUNE of that run.
// But the run is compared with the count Redis has when the node comes to
// it: a node that was away for the whole of the run that lost them (a
// partition, a node paused, its connection failing) comes back to a later
// run of the same data, whose count the other nodes' POSTs have raised
// meanwhile past its own.  The count is the same number for two different
// messages (the one lost, and the one the restored Redis counted in its
// place): the loss is never found, and the client that comes back with its
// last id is not told that what was held for it is gone.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startCluster, CLUSTER_QUICK, uid, postPath, poll, leftInGrace,
} from './harness.mjs';

const T = { timeout: 120000 };
const ENV = { ...CLUSTER_QUICK, BEEP_GRACE_SECONDS: '600' };

describe('Redis back with older data, found by a node away meanwhile', T,
    () => {
	test('a loss is found by the node that saw it, on a later run', T,
	    async (t) => {
		const cl = await startCluster({ nodes: 2, env: ENV }, t);
		const [a, b] = cl.nodes;
		const ca = a.client(), cb = b.client();
		const nodeA = (await ca.health()).cluster.node;
		const nodeB = (await cb.health()).cluster.node;
		const u = uid('runs');
		const position = await leftInGrace(a, cb, u, 'phone');
		const other = await a.subscribe(u, 'other');

		// b's count: 'kept' is in the snapshot, 'after' is not.
		const r1 = await cb.postJson(postPath(u, 'phone'), { data: 'kept' });
		assert.equal(r1.status, 202, r1.text);
		assert.equal(cl.redis.cli('SAVE'), 'OK');
		const r2 = await cb.postJson(postPath(u, 'phone'),
		    { data: 'after' });
		assert.equal(r2.status, 202, r2.text);
		const bCount = Number(cl.redis.cli('GET', 'beep:w'));

		// b is away for the whole of the run that lost 'after'.
		const pid = b.backend.pid;
		process.kill(pid, 'SIGSTOP');
		t.after(() => { try { process.kill(pid, 'SIGCONT'); } catch {} });
		await cl.redis.crashAndRestart();
		assert.equal(Number(cl.redis.cli('GET', 'beep:w')), bCount - 1,
		    'the snapshot lost one accepted message');
		// a comes to the new run (its PRUNE, then its heartbeat), and
		// the call of another device goes on through it.
		await poll(() => cl.redis.cli('EXISTS', `beep:n:${nodeA}`) === '1',
		    { timeout: 20000, what: 'a on the new run' });
		for (const data of ['x1', 'x2']) {
			let r;
			await poll(async () => {
				r = await ca.postJson(postPath(u, 'other'), { data });
				return r.status !== 503;
			}, { timeout: 20000, what: `POST ${data} answered` });
			assert.equal(r.status, 200, r.text);
			assert.equal((await other.nextEvent(15000)).data, data);
		}
		assert.ok(Number(cl.redis.cli('GET', 'beep:w')) > bCount,
		    'the new run counted past b\'s count');

		// That run ends with every write kept (saved, then restarted
		// from it): b comes back to the next run.
		assert.equal(cl.redis.cli('SAVE'), 'OK');
		await cl.redis.crashAndRestart();
		const mon = await cl.redis.monitor(t);
		process.kill(pid, 'SIGCONT');
		await poll(() => mon.text().includes(`"SMEMBERS" "beep:r:${nodeB}"`) &&
		    cl.redis.cli('EXISTS', `beep:n:${nodeB}`) === '1',
		    { timeout: 20000, what: 'b\'s PRUNE and heartbeat' });

		// The device comes back with its last id.
		let back;
		await poll(async () => {
			try {
				back = await a.subscribe(u, 'phone',
				    { headers: { 'Last-Event-ID': position } });
				return true;
			} catch (e) {
				if (/: 503 /.test(e.message))
					return false;
				throw e;
			}
		}, { timeout: 30000, what: `${u}/phone back` });
		let end;
		await poll(async () => {
			end = await ca.postJson(postPath(u, 'phone'), { data: 'end' });
			return end.status !== 503;
		}, { timeout: 20000, what: 'POST end answered' });
		assert.equal(end.status, 200, end.text);
		const got = await back.eventsUntil('end');
		back.close();
		other.close();
		assert.ok(got.some((e) => e.data === 'after' ||
		    e.type === 'reset'), '"after" was answered 202 (held) and ' +
		    'lost with the first snapshot; b, which was given its count, ' +
		    'came back only to the next run, whose count a\'s POSTs had ' +
		    'raised past b\'s: no loss found, and the device, back with ' +
		    `its last id, got ${JSON.stringify(got)}, untold`);
	});
});
