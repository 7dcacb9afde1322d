// A Redis with a memory limit and an eviction policy, as an operator sets
// one (`maxmemory` with `volatile-lru`: the default of the managed Redis
// services, AWS ElastiCache, Azure Cache, Google Memorystore; or
// `allkeys-lru`, the common advice for a cache).  At the limit Redis
// evicts keys that have a time to live, which are exactly the cluster's
// own: the nodes' heartbeat keys, each device's stream (what it holds and
// can replay), its metadata (last id, floor, where holding began) and its
// user's grace periods.  The README says nothing of it: `maxmemory` is
// named only for the OOM that `noeviction` gives.  The promise does not
// change: a POST answered 202 is delivered when its device comes back, or
// the device is told (event: reset); a node that cannot keep it must not
// accept it (503), or must not use such a Redis.
//
// The eviction is made certain, not left to LRU's sampling: keys without
// a time to live (another application's) fill Redis past the limit, and a
// write refused with OOM shows that Redis evicted everything it could.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startCluster, CLUSTER_QUICK, uid, postPath, subPath, poll,
} from './harness.mjs';
import { SseStream } from './sse.mjs';

const T = { timeout: 120000 };
const ENV = {
	...CLUSTER_QUICK,
	BEEP_GRACE_SECONDS: '600',
};
const FILLERS = 100; // of 100 KB each: past the 8 MB limit

test('maxmemory with volatile-lru: a message held (202) is delivered or ' +
    'told', T, async (t) => {
	const cl = await startCluster({ nodes: 2, env: ENV, redisArgs: [
		'--maxmemory', '8mb', '--maxmemory-policy', 'volatile-lru'] }, t);
	const [a, b] = cl.nodes;
	const cb = b.client();
	const u = uid('evict');
	const first = await SseStream.open(b.base, subPath(u, 'phone'));
	if (first.status === 503) {
		// The node will not work on a Redis that evicts its keys: it
		// accepts nothing, so it loses nothing.  That is a fix too.
		const r = await cb.postJson(postPath(u, 'phone'), { data: 'x' });
		assert.equal(r.status, 503, r.text);
		return;
	}
	assert.equal(first.status, 200);
	await first.waitComments(1, 10000);
	first.close();
	await poll(async () => (await cb.devices(u)).length === 0,
	    { timeout: 20000, what: `${u}/phone in its grace period` });
	const r = await cb.postJson(postPath(u, 'phone'), { data: 'held' });
	assert.ok([202, 503].includes(r.status), r.text);
	if (r.status === 503)
		return;

	// Another application's keys (no TTL) past the limit.  The script
	// runs whole (Redis checks memory before a command, not within it);
	// the next write makes Redis evict every key with a TTL, then refuse.
	assert.equal(cl.redis.cli('EVAL', `for i = 1, ${FILLERS} do ` +
	    "redis.call('SET', 'filler:' .. i, string.rep('x', 100000)) end " +
	    "return 'OK'", '0'), 'OK');
	assert.match(cl.redis.cli('SET', 'probe', '1'), /OOM/,
	    'Redis evicted all it could and refuses writes');
	// The other application frees its memory again.
	const fillers = Array.from({ length: FILLERS }, (_, i) =>
	    `filler:${i + 1}`);
	assert.equal(cl.redis.cli('DEL', ...fillers), String(FILLERS));

	// The device comes back (an app restarted: no id), through a node
	// as soon as one takes it.
	let back;
	await poll(async () => {
		const s = await SseStream.open(a.base, subPath(u, 'phone'));
		if (s.status === 200) {
			back = s;
			return true;
		}
		s.close();
		assert.equal(s.status, 503);
		return false;
	}, { timeout: 30000, what: 'the device subscribed again' });
	t.after(() => back.close());
	await poll(async () => {
		const e = await cb.postJson(postPath(u, 'phone'), { data: 'end' });
		return e.status === 200;
	}, { timeout: 30000, what: 'the device live again' });
	const got = await back.eventsUntil('end');
	assert.ok(got.some((e) => e.data === 'held' || e.type === 'reset'),
	    `"held" was answered 202; Redis (maxmemory-policy volatile-lru) ` +
	    `evicted the cluster's keys, and the device came back to neither ` +
	    `it nor a reset: ${JSON.stringify(got)}`);
});
