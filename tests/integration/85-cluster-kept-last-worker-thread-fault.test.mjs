// In a cluster a worker keeps its kept connection and waits on it for the
// front's next request (srv->hold), up to BEEP_IDLE_TIMEOUT (75 s). At a
// thread limit (RLIMIT_NPROC, a container's pids limit, TasksMax) the last
// worker in accept() does the same: after one request on a new kept
// connection (nginx opens one whenever its kept ones are busy) it waits on
// it, and no worker is left in accept(): requests on new connections wait
// in the listening socket's backlog until that connection idles out or a
// stream ends, past nginx's fastcgi_read_timeout (60 s, then 504). The
// thread fault is injected (thread-faults.mjs) once the pool is up; every
// request is sent whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withTimeout, subPath, poll, startRedis } from './harness.mjs';
import { Rig } from './fronts.mjs';
import { FcgiConn } from './fcgi.mjs';
import { startUnderThreadFault } from './thread-faults.mjs';

const T = { timeout: 60000 };
// A hang guard: an idle backend answers /healthz within milliseconds.
const ANSWER_GUARD = 10000;

test('in a cluster at a thread limit, the last worker in accept() does ' +
    'not wait on a kept connection', T, async (t) => {
	const rig = new Rig(t, 'cluster-kept-thread-fault');
	const redis = await startRedis(rig.dir);
	t.after(() => redis.stop());
	const threads = await startUnderThreadFault(rig, t,
	    { BEEP_MIN_IDLE: '2', BEEP_REDIS_URL: redis.url });
	// Up: Redis's command and channel connections both.
	await poll(async () => {
		const c = await FcgiConn.open(rig.sock, t);
		c.sendWhole('GET', '/readyz', false);
		return (await withTimeout(c.response(), 10000)).status === 200;
	}, { what: 'the node ready (Redis up)', timeout: 20000 });

	// Threads cannot start from here on.
	threads.fail();
	// Streams on new connections until one is refused ("no thread free
	// for a stream": no worker idle, none can start); the worker that
	// refused it goes back to accept(), the last one there.
	let refused = false;
	for (let i = 0; !refused; i++) {
		assert.ok(i < 20, 'no stream refused after 20');
		const s = await FcgiConn.open(rig.sock, t);
		s.sendWhole('GET', subPath('cl-last-worker', `d${i}`), false);
		await poll(() => s.headCame(), { what: 'a stream head' });
		refused = /^Status: 503/m.test(s.stdout.toString('latin1'));
		if (refused)
			await withTimeout(s.response(), 10000);
	}
	assert.ok(rig.backend.lines.some((l) =>
	    /error server: pthread_create: /.test(l)));

	// A new kept connection (as nginx opens one): one request.
	const k1 = await FcgiConn.open(rig.sock, t);
	k1.sendWhole('GET', '/healthz', true);
	await poll(() => k1.ended, { what: 'the kept /healthz' });

	// A request on a new connection must be answered.
	const c = await FcgiConn.open(rig.sock, t);
	c.sendWhole('GET', '/healthz', false);
	const r = await withTimeout(c.response(), ANSWER_GUARD, null);
	threads.heal();
	assert.ok(r !== null && r.status === 200, 'a request on a new ' +
	    `connection was not answered within ${ANSWER_GUARD} ms: the last ` +
	    'worker waits on the kept connection it served (BEEP_IDLE_TIMEOUT), ' +
	    'and none is left in accept() (fails on HEAD)');
});
