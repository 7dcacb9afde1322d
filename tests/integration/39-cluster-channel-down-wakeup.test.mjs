// A node whose Redis channel is down while its commands work (an ACL that
// refuses the channel, as in test 65; or the channel's thread still in its
// reconnection backoff after a Redis restart that the command connection
// has come back from).  The channel's thread then sleeps out its backoff
// on the condition variable the command thread waits on for work
// (cl->wake), and a request's job signals it to one of them: when the
// signal went to the channel's thread, the command thread slept on until
// its next heartbeat (a third of BEEP_CLUSTER_TTL), the request gave up
// after BEEP_REDIS_TIMEOUT, and a POST Redis would have answered at once
// got 503 "cluster store (Redis) unreachable" (about one in two, back to
// back: the channel's thread is the older waiter after each answer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startCluster, refuseChannel, uid, postPath,
} from './harness.mjs';

const T = { timeout: 120000 };

test('with the channel down, every POST is answered by Redis, none 503',
    T, async (t) => {
	// Heartbeats every 10 s: the command thread sleeps that long when
	// no job wakes it.
	const cl = await startCluster({ nodes: 1,
	    env: { BEEP_CLUSTER_TTL: '30', BEEP_REDIS_TIMEOUT: '1000' },
	    check: { allowErrors: [/redis: NOPERM/] } }, t);
	const [a] = cl.nodes;
	const c = a.client();
	// Its SUBSCRIBE refused again: the channel's thread is in its
	// backoff, asleep.
	await refuseChannel(cl, c);
	// A device no one holds: the POST script answers 404 at once.
	const u = uid('wake');
	const answers = [];
	for (let i = 0; i < 8; i++) {
		const r = await c.postJson(postPath(u, 'nobody'), { data: `m${i}` });
		answers.push(`${r.status} ${r.text}`);
	}
	assert.deepEqual(answers.filter((x) => !x.startsWith('404 ')), [],
	    `answers: ${JSON.stringify(answers)}`);
	assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', 'allchannels'),
	    'OK');
});
