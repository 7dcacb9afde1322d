// The shipped cluster fronts, run for real in front of two nodes joined by a
// real Redis:
// - conf/Caddyfile.cluster: FastCGI to every node's socket, round robin,
//   lb_try_duration (test 27 runs it too, in front of three);
// - conf/nginx-cluster.conf: FastCGI to every node's socket, least_conn,
//   fastcgi_next_upstream on a node that cannot be reached;
// - conf/Caddyfile.compose: compose.yaml's front, HTTP to each node's own
//   Caddy (the shipped Caddyfile), round robin, active health checks of
//   /readyz.
// For each:
// - a client cannot take nodes out: requests it aborts mid-body, or sends
//   over the front's size limit, leave every node in service (Caddy 2.6's
//   passive health checks counted them as the node's failures: two took a
//   whole cluster out, and everyone got 503);
// - a stream opened through the front gets every POST sent through it,
//   once, in order, whichever node each lands on;
// - with one node's backend stopped, the front comes to serve every
//   request from the other: every POST it answers 200 arrives once, in
//   order, and none it refused arrives;
// - with every backend stopped, a bare EventSource gets a stream it comes
//   back from (the front's or the node Caddy's refusal), anyone else the
//   status;
// - the front logs no panic (Debian 12's Caddy 2.6.2 panics on each active
//   health check over FastCGI, which is why conf/Caddyfile.cluster has
//   none; the compose front's go over HTTP and work).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
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

// A POST whose body never comes whole: its head and part of its body,
// then, once a node is reading it (its /healthz counts a request more than
// its own; a front that reads bodies whole first, as nginx does, never
// passes it on: bodyless), the connection closes.
async function abortedPost(base, nodes, bodyless) {
	const u = new URL(base);
	const sock = net.connect(Number(u.port), u.hostname);
	await new Promise((resolve, reject) => {
		sock.once('connect', resolve);
		sock.once('error', reject);
	});
	sock.on('error', () => {});
	sock.write(`POST ${postPath(uid('abort'), 'd')} HTTP/1.1\r\n` +
	    'Host: beep\r\nContent-Type: application/json\r\n' +
	    'Content-Length: 100000\r\n\r\n{"data":"');
	const reading = async () => (await Promise.all(nodes.map(async (n) =>
	    (await n.client().health()).requests))).some((r) => r > 1);
	if (!bodyless)
		await poll(reading, { timeout: 10000, what: 'a node reading it' });
	sock.destroy();
	await poll(async () => !(await reading()),
	    { timeout: 10000, what: 'no node reading it' });
}

// The checks, the same through every front. front: { name, base, open,
// client, lines }; cl: the cluster behind it.
async function checkFront(front, cl) {
	const c = front.client();
	const [n0, n1] = cl.nodes;

	// No client takes a node out: a request it breaks is not the node's
	// failure.
	for (let i = 0; i < 4; i++)
		await abortedPost(front.base, cl.nodes, front.buffersBodies);
	const big = await c.postJson(postPath(uid('big'), 'd'),
	    { data: 'x'.repeat(1100000) });
	// The node's JSON 413 (or nginx's own, alike); the compose front,
	// which passes a body on as it comes, has its 502 when the node's
	// Caddy stops reading it past its own limit.
	if (front.streamsBodies)
		assert.ok(big.status === 413 || big.status === 502,
		    `over the limit: ${big.status}`);
	else
		assert.deepEqual([big.status, big.json()],
		    [413, { error: 'body too large' }], `over the limit`);
	for (let i = 0; i < 4; i++) {
		const h = await c.get('/healthz');
		assert.equal(h.status, 200, `${front.name}: every node still in ` +
		    `service after broken requests: ${h.status} ${h.text}`);
	}

	// Through the front: every POST, once, in order, whichever node.
	const u = uid('front');
	const s = await front.open(subPath(u, 'phone'));
	assert.equal(s.status, 200);
	await s.waitComments(1, 5000);
	const sent = await postAll(c, u, 'phone', 'up', POSTS);
	assert.deepEqual(sent, Array(POSTS).fill(200));
	// A body of unknown length (chunked), which Caddy's cluster front
	// reads whole before a node is chosen.
	const chunked = await c.postJson(postPath(u, 'phone'),
	    { data: 'chunked' }, { chunked: true });
	assert.equal(chunked.status, 200, `chunked: ${chunked.text}`);
	assert.deepEqual(await drain(s, n0.client(), u, 'phone'),
	    [...sent.map((_, i) => `up-${i}`), 'chunked']);
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

	// Every backend stopped: EventSource still gets a stream it retries.
	assert.equal((await n1.signalBackend('SIGTERM')).code, 0);
	held.close();
	const p = subPath(uid('down'), 'd');
	await poll(async () => [502, 503].includes((await c.get(p)).status),
	    { timeout: 30000, interval: 100, what: 'the front refuses' });
	await expectRefusedStream(front, p, [502, 503], 'backend unavailable',
	    { front: true });

	const panics = front.lines().filter((l) => /panic/i.test(l));
	assert.deepEqual(panics, [], `${front.name} panicked`);
}

// A front rig as checkFront() takes it.
const rigFront = (rig, extra = {}) => ({
	name: rig.name, base: rig.base, open: (p, o) => rig.open(p, o),
	client: () => rig.client(), lines: () => rig.front.lines, ...extra,
});

test('conf/Caddyfile.cluster in front of two nodes', T, async (t) => {
	const cl = await startCluster({ nodes: 2, env: ENV }, t);
	await checkFront({
		name: 'caddy-cluster', base: cl.base, open: cl.open,
		client: () => cl.client(), lines: () => cl.frontLog,
		buffersBodies: true,
	}, cl);
});

test('conf/nginx-cluster.conf in front of two nodes', T, async (t) => {
	const cl = await startCluster({ nodes: 2, env: ENV }, t);
	const rig = new Rig(t, 'nginx-cluster');
	await rig.startNginx({ conf: NGINX_CLUSTER_CONF, sockets: {
		'/run/beep-signal/a.sock': cl.nodes[0].socket,
		'/run/beep-signal/b.sock': cl.nodes[1].socket,
	} });
	await checkFront(rigFront(rig, { buffersBodies: true }), cl);
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
	// The nodes' Caddies read each body whole before their backend sees
	// it (buffer_requests): an aborted one reaches no backend.
	await checkFront(rigFront(rig, { buffersBodies: true,
	    streamsBodies: true }), cl);
});
