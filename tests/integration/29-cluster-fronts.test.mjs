// The cluster fronts shipped beside conf/Caddyfile.cluster (test 27), run
// for real in front of two nodes joined by a real Redis:
// - conf/nginx-cluster.conf: FastCGI to every node's socket, least_conn,
//   fastcgi_next_upstream on a node that cannot be reached;
// - conf/Caddyfile.compose: compose.yaml's front, HTTP to each node's own
//   Caddy (the shipped Caddyfile), round robin, active health checks of
//   /readyz.
// For each:
// - a stream opened through the front gets every POST sent through it,
//   once, in order, whichever node each lands on;
// - with one node's backend stopped, the front serves every request from
//   the other after at most one refused: every POST it answers 200 arrives
//   once, in order, and none it refused arrives;
// - with every backend stopped, a bare EventSource gets a stream it comes
//   back from (the front's or the node Caddy's refusal), anyone else the
//   status;
// - the front logs no panic (Debian 12's Caddy 2.6.2 panics on each active
//   health check over FastCGI, which is why conf/Caddyfile.cluster has
//   none; here they go over HTTP and work).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
	ROOT, startCluster, caddyEnv, poll, uid, subPath, postPath,
	expectRefusedStream,
} from './harness.mjs';
import {
	Rig, launch, NGINX_CLUSTER_CONF,
} from './fronts.mjs';

const T = { timeout: 120000 };
const ENV = { BEEP_CLUSTER_TTL: '2', BEEP_KEEPALIVE: '1' };
const POSTS = 20;

// Posts data-0 .. data-(n-1) to (u, d) through c; resolves with the
// statuses.
async function postAll(c, u, d, prefix, n) {
	const statuses = [];
	for (let i = 0; i < n; i++)
		statuses.push((await c.postJson(postPath(u, d),
		    { data: `${prefix}-${i}` })).status);
	return statuses;
}

// What s received, in order, up to and including a sentinel posted
// straight to the node that holds it (so nothing is still on its way).
async function drain(s, holder, u, d) {
	const sentinel = `sentinel-${uid()}`;
	const r = await holder.postJson(postPath(u, d), { data: sentinel });
	assert.equal(r.status, 200, r.text);
	const got = [];
	for (;;) {
		const ev = await s.nextEvent(15000);
		if (ev.data === sentinel)
			return got;
		got.push(ev.data);
	}
}

// The checks, the same through either front. front: a Rig whose front
// runs; cl: the cluster behind it.
async function checkFront(t, rig, cl) {
	const c = rig.client();
	const [n0, n1] = cl.nodes;

	// Through the front: every POST, once, in order, whichever node.
	const u = uid('front');
	const s = await rig.open(subPath(u, 'phone'));
	assert.equal(s.status, 200);
	await s.waitComments(1, 5000);
	const sent = await postAll(c, u, 'phone', 'up', POSTS);
	assert.deepEqual(sent, Array(POSTS).fill(200));
	assert.deepEqual(await drain(s, n0.client(), u, 'phone'),
	    sent.map((_, i) => `up-${i}`));
	s.close();

	// One backend stopped: the other serves what the front sends on.
	const v = uid('half');
	const held = await n1.open(subPath(v, 'phone'));
	assert.equal(held.status, 200);
	await held.waitComments(1, 5000);
	const exit = await n0.signalBackend('SIGTERM');
	assert.equal(exit.code, 0, JSON.stringify(exit));
	const answered = [];
	let round = 0;
	await poll(async () => {
		const st = await postAll(c, v, 'phone', `r${round}`, POSTS);
		st.forEach((code, i) => answered.push([`r${round}-${i}`, code]));
		round++;
		return st.every((code) => code === 200);
	}, { timeout: 30000, interval: 100,
	    what: `${POSTS} POSTs in a row answered 200 with a node down` });
	for (const [, code] of answered)
		assert.ok(code === 200 || code === 502 || code === 503,
		    `only the down node's refusals: ${code}`);
	assert.deepEqual(await drain(held, n1.client(), v, 'phone'),
	    answered.filter(([, code]) => code === 200).map(([data]) => data),
	    'every 200 once, in order, and nothing refused');
	// The front takes the dead node out at its first failure (nginx:
	// max_fails=1; the compose Caddy: unhealthy_status 502), not at its
	// next health check: at most one POST refused.
	const refused = answered.filter(([, code]) => code !== 200).length;
	assert.ok(refused <= 1, `${rig.name}: ${refused} POSTs refused before ` +
	    'the front kept to the live node');

	// Every backend stopped: EventSource still gets a stream it retries.
	assert.equal((await n1.signalBackend('SIGTERM')).code, 0);
	held.close();
	const p = subPath(uid('down'), 'd');
	await poll(async () => [502, 503].includes((await c.get(p)).status),
	    { timeout: 30000, interval: 100, what: 'the front refuses' });
	await expectRefusedStream(rig, p, [502, 503], 'backend unavailable',
	    { front: true });

	const panics = rig.front.lines.filter((l) => /panic/i.test(l));
	assert.deepEqual(panics, [], `${rig.name} panicked`);
}

test('conf/nginx-cluster.conf in front of two nodes', T, async (t) => {
	const cl = await startCluster({ nodes: 2, env: ENV }, t);
	const rig = new Rig(t, 'nginx-cluster');
	await rig.startNginx({ conf: NGINX_CLUSTER_CONF, sockets: {
		'/run/beep-signal/a.sock': cl.nodes[0].socket,
		'/run/beep-signal/b.sock': cl.nodes[1].socket,
	} });
	await checkFront(t, rig, cl);
});

test('conf/Caddyfile.compose in front of two nodes\' Caddies', T,
    async (t) => {
	const cl = await startCluster({ nodes: 2, env: ENV }, t);
	const rig = new Rig(t, 'caddy-compose');
	const home = path.join(rig.dir, 'caddy');
	await rig.startFront('caddy', (port) => launch('caddy',
	    ['run', '--config', path.join(ROOT, 'conf', 'Caddyfile.compose'),
		'--adapter', 'caddyfile'], {
		cwd: rig.dir, tag: 'caddy-compose',
		env: { ...caddyEnv(home, port, ''),
		    BEEP_NODES: cl.nodes.map((n) => new URL(n.base).host)
			.join(' ') },
	}));
	await checkFront(t, rig, cl);
});
