// A cluster node's two Redis threads (commands, channel) are started by
// cluster_new() without a look at pthread_create()'s result. When the
// start fails (a thread limit at start: RLIMIT_NPROC, a container's pids
// limit, TasksMax), the node says it is ready and that Redis's channel is
// up, and then answers every request 503 "cluster store (Redis)
// unreachable" for as long as it runs, Redis being fine, with no line that
// says why: no command thread will ever run. A node that cannot start its
// threads must not start (the workers' and the watcher's failed starts
// already make it exit 1, "could not start"). The fault is injected at the
// first thread start of the process, the command thread's
// (thread-faults.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from './harness.mjs';
import { Rig, waitLine } from './fronts.mjs';
import { threadFaultEnv } from './thread-faults.mjs';

test('a node whose Redis threads cannot start does not start', {
	timeout: 60000,
}, async (t) => {
	const rig = new Rig(t, 'cluster-thread-fault');
	const redis = await startRedis(rig.dir);
	t.after(() => redis.stop());
	rig.env = { BEEP_REDIS_URL: redis.url,
	    ...threadFaultEnv(rig.dir, { nth: 1 }) };
	rig.launchBackend();
	// Whichever comes first: the exit, or the word that it is ready.
	const outcome = await Promise.race([
		rig.backend.exited.then((e) => ({ exited: e })),
		waitLine(rig.backend, /\bready on\b/).then(() => ({ ready: true }),
		    () => ({ exited: null })),
	]);
	assert.ok(!outcome.ready, 'the node started (ready) with no Redis ' +
	    'command thread: every request would be answered 503 "cluster ' +
	    'store (Redis) unreachable" for good, with nothing logged of ' +
	    'why (fails on HEAD):\n' + rig.backend.lines.join('\n'));
	const e = await rig.backend.exited;
	assert.equal(e.code, 1, JSON.stringify(e));
	assert.ok(rig.backend.lines.some((l) =>
	    /error cluster: .*pthread_create/.test(l)),
	    'the failed start is logged:\n' + rig.backend.lines.join('\n'));
});
