// A node whose Redis command connection is down keeps its reconnection
// backoff (100 ms doubling to 2 s) whatever else happens meanwhile.  The
// command thread sleeps it out on the condition variable that work wakes
// it by (cl->wake): each device whose last stream ended during the outage
// signalled it, and each signal cut the backoff short into a reconnection
// at once.  So the streams a node's clients close during an outage, one
// after another, came back to Redis as one connection each: a Redis
// restarting (or refusing, as here) is hammered at the rate clients leave.
//
// Here Redis refuses the node's command connection (an ACL without
// SCRIPT: its scripts cannot load, so each connection fails once made)
// while its channel, a connection of its own, stays up; every connection
// Redis accepts is counted (INFO stats), less the one each redis-cli call
// makes.  Once the backoff has grown to 2 s, streams are closed one by
// one, each awaited until the node has seen it go: the node may make no
// more connections over that time than its backoff allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, subPath, uid, poll, CLUSTER_QUICK } from './harness.mjs';
import { FcgiConn } from './fcgi.mjs';

const T = { timeout: 120000 };
const BACKOFF_MAX_MS = 2000;
const STREAMS = 12;

test('streams ending while the commands are down do not cut the backoff',
    T, async (t) => {
	const cl = await startCluster({ nodes: 1, env: CLUSTER_QUICK,
	    check: { allowErrors: [/redis: NOPERM/] } }, t);
	const [a] = cl.nodes;
	const c = a.client();
	// Connections Redis accepted other than the cli's own.
	let calls = 0;
	const attempts = () => {
		calls++;
		const n = Number(/total_connections_received:(\d+)/
		    .exec(cl.redis.cli('INFO', 'stats'))[1]);
		return n - calls;
	};

	// A device each, by raw FastCGI (a departure seen at once, where a
	// front would hold it until its next write), registered in Redis.
	const u = uid('backoff');
	const conns = [];
	for (let i = 0; i < STREAMS; i++) {
		const conn = await FcgiConn.open(a.socket, t);
		conn.sendWhole('GET', subPath(u, `d${i}`));
		await poll(() => conn.headCame(), { what: `stream d${i}` });
		const st = /^Status: (\d+)/m.exec(conn.stdout.toString('latin1'));
		assert.equal(st ? Number(st[1]) : 200, 200, `stream d${i}`);
		conns.push(conn);
	}
	await poll(async () => (await c.health()).streams === STREAMS,
	    { what: 'every stream open' });

	cl.redis.cli('ACL', 'SETUSER', 'default', '-script');
	calls++;
	cl.redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
	calls++;
	await poll(async () => (await c.health()).cluster.redis === 'down',
	    { timeout: 10000, what: 'the commands down' });
	// Six failed connections: 100 + 200 + 400 + 800 + 1600 ms slept
	// between them, and 2 s from then on.
	const down = attempts();
	await poll(() => attempts() >= down + 6, { timeout: 20000,
	    what: 'the backoff grown to its most' });

	const t0 = Date.now();
	const before = attempts();
	for (let i = 0; i < STREAMS; i++) {
		conns[i].destroy();
		await poll(async () =>
		    (await c.health()).streams === STREAMS - i - 1,
		{ what: `stream d${i} gone` });
	}
	const made = attempts() - before;
	const elapsed = Date.now() - t0;
	const allowed = Math.floor(elapsed / BACKOFF_MAX_MS) + 1;
	t.diagnostic(`${made} connections in ${elapsed} ms`);
	assert.ok(made <= allowed,
	    `${made} connections in ${elapsed} ms while ${STREAMS} streams ` +
	    `ended; the backoff allows ${allowed}`);

	// Redis lets it in again: the node comes back, and its devices go.
	cl.redis.cli('ACL', 'SETUSER', 'default', '+script');
	await poll(async () => (await c.health()).cluster.redis === 'up',
	    { timeout: 10000, what: 'the commands up again' });
	await poll(async () => (await c.devices(u)).length === 0,
	    { timeout: 10000, what: 'the devices unregistered' });
});
