// The shipped cluster fronts, run for real in front of two nodes joined by a
// real Redis:
// - conf/Caddyfile.cluster: FastCGI to every node's socket, round robin,
//   lb_try_duration (test 27 runs it too, in front of three);
// - conf/nginx-cluster.conf: FastCGI to every node's socket, least_conn,
//   fastcgi_next_upstream on a node that cannot be reached;
// - conf/Caddyfile.compose: compose.yaml's front, HTTP to each node's own
//   Caddy (the shipped Caddyfile), round robin, active health checks: of
//   /readyz for new streams (/subscribe/*), of /healthz for the rest.
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
// And conf/Caddyfile.compose as compose.yaml runs it (Redis over TCP, the
// per-address limits off) with both nodes full of streams
// (BEEP_MAX_STREAMS, which one client can reach): a new stream gets the
// front's own refusal, while a POST through the front to a stream open on
// either node still gets 200 and arrives, and device lists answer.  With
// one check of /readyz for every request, the front answered all of them
// 503 itself as soon as the nodes were full.
// And, as compose.yaml runs it, with one node cut off from Redis (a proxy
// between them that stops passing anything, on its open connections and
// on new ones): the node lives, its /healthz answers 200 "degraded", and it
// answers a POST to a stream on the other node 503 "cluster store (Redis)
// unreachable".  The front's check of /healthz (health_body "status":"ok")
// takes it out: after a bounded wait, 20 POSTs in a row through the front
// answer 200, then 10 more all do, device lists answer, and the stream
// (on the other node) gets every POST answered 200, once, in order, and
// none refused.  Without health_body, round robin kept sending every
// second POST to that node: 503.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
	ROOT, startCluster, startStack, caddyEnv, poll, uid, subPath, postPath,
	listPath, freePort, expectRefusedStream, skipReason,
} from './harness.mjs';
import {
	Rig, launch, stop, waitLine, NGINX_CLUSTER_CONF,
} from './fronts.mjs';

// Skipped under ThreadSanitizer (the Makefile's TSAN_SKIP): its subject is
// the shipped cluster front configurations, not the C the sanitizers watch.
const T = { timeout: 120000, skip: skipReason(import.meta.url) };
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

// compose.yaml's front (conf/Caddyfile.compose) on rig, in front of the
// nodes' own Caddies.
function startComposeFront(rig, nodes) {
	const home = path.join(rig.dir, 'caddy');
	return rig.startFront('caddy', (port) => launch('caddy',
	    ['run', '--config', path.join(ROOT, 'conf', 'Caddyfile.compose'),
		'--adapter', 'caddyfile'], {
		cwd: rig.dir, tag: 'caddy-compose',
		env: { ...caddyEnv(home, port, ''),
		    BEEP_NODES: nodes.map((n) => new URL(n.base).host).join(' ') },
	}));
}

// Redis and nodes as compose.yaml runs them: Redis over TCP, each node
// (backend and its own Caddy) with BEEP_REDIS_URL, the limits per client
// address off (every client comes from the front's address).  Returns
// { url, port, nodes, addNode(env, url), onStop(fn) }; after the test,
// also when it fails: the nodes stopped (and their logs and exits
// checked), then each onStop(fn), then Redis, by pid, and the temp dir
// removed.  Register the front's rig before: its hook runs first.
async function startComposeCluster(t) {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-compose-'));
	const cl = { nodes: [], stops: [], redis: null };
	t.after(async () => {
		const errors = [];
		const step = (fn) => Promise.resolve().then(fn)
		    .catch((e) => errors.push(e));
		for (const n of cl.nodes)
			await step(() => n.stopAndCheck());
		for (const fn of cl.stops)
			await step(fn);
		if (cl.redis)
			await step(() => stop(cl.redis));
		rmSync(dir, { recursive: true, force: true });
		if (errors.length > 0)
			throw errors[0];
	});
	cl.port = await freePort();
	cl.url = `redis://127.0.0.1:${cl.port}/0`;
	cl.redis = launch('redis-server', ['--port', String(cl.port),
	    '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
	    '--dir', dir], { cwd: dir, env: process.env, tag: 'redis' });
	await waitLine(cl.redis, /ready to accept connections/i);
	cl.onStop = (fn) => cl.stops.push(fn);
	cl.addNode = async (env = {}, url = cl.url) => {
		const n = await startStack({ env: { BEEP_REDIS_URL: url,
		    BEEP_MAX_STREAMS_PER_ADDRESS: '0', BEEP_RATE: '0', ...env } });
		cl.nodes.push(n);
		return n;
	};
	return cl;
}

// A TCP proxy to Redis on port: the network between one node and Redis.
// partition(): from then on nothing passes either way, neither bytes nor
// the end of a connection, on the connections open now and on any the
// node opens later (they connect, and hear nothing): Redis sees nothing
// more of the node.  Resolves with { url, partition() }; closed, with
// every connection, by cl's onStop.
async function redisLink(cl, port) {
	const socks = new Set();
	let cut = false;
	const server = net.createServer((c) => {
		socks.add(c);
		c.on('error', () => {});
		c.on('close', () => socks.delete(c));
		if (cut) {
			c.resume();
			return;
		}
		const up = net.connect(port, '127.0.0.1');
		socks.add(up);
		up.on('error', () => {});
		up.on('close', () => socks.delete(up));
		c.on('data', (d) => { if (!cut) up.write(d); });
		up.on('data', (d) => { if (!cut) c.write(d); });
		c.on('close', () => { if (!cut) up.destroy(); });
		up.on('close', () => { if (!cut) c.destroy(); });
	});
	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', resolve);
	});
	cl.onStop(() => {
		for (const sk of socks)
			sk.destroy();
		return new Promise((resolve) => server.close(() => resolve()));
	});
	return {
		url: `redis://127.0.0.1:${server.address().port}/0`,
		partition: () => { cut = true; },
	};
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
	await startComposeFront(rig, cl.nodes);
	// The nodes' Caddies read each body whole before their backend sees
	// it (buffer_requests): an aborted one reaches no backend.
	await checkFront(rigFront(rig, { buffersBodies: true,
	    streamsBodies: true }), cl);
});

test('conf/Caddyfile.compose with both nodes full of streams: new ones ' +
    'refused, POSTs to the open ones delivered', T, async (t) => {
	const MAX = 2;
	// Hooks run in the order registered: the rig's (the front, and its
	// streams) first, then the nodes and Redis.
	const rig = new Rig(t, 'caddy-compose-full');
	const cl = await startComposeCluster(t);
	const nodes = [];
	for (let i = 0; i < 2; i++)
		nodes.push(await cl.addNode({ BEEP_MAX_STREAMS: String(MAX) }));
	await startComposeFront(rig, nodes);
	const c = rig.client();
	const nc = nodes.map((n) => n.client());

	// Streams through the front until both nodes are full.  One that
	// reaches a node already full before the front's check saw it gets
	// that refusal (503); each held stream is registered (its first
	// comment) before the next.
	const held = [];
	await poll(async () => {
		const ready = await Promise.all(nc.map(async (x) =>
		    (await x.get('/readyz')).status));
		if (ready.every((st) => st === 503))
			return true;
		const u = uid('full');
		const s = await rig.open(subPath(u, 'd'));
		if (s.status === 200) {
			await s.waitComments(1, 10000);
			held.push({ u, s });
		} else {
			const text = await s.text();
			assert.equal(s.status, 503, `a stream refused: ${text}`);
		}
		return false;
	}, { timeout: 30000, what: 'both nodes full of streams' });
	assert.equal(held.length, 2 * MAX);
	for (const x of nc)
		assert.equal((await x.health()).streams, MAX);

	// A new stream: a node's own refusal until the front's check of
	// /readyz has taken both nodes out of /subscribe/*, then the front's.
	const late = subPath(uid('late'), 'd');
	const refusal = await poll(async () => {
		const s = await rig.open(late,
		    { headers: { Accept: 'text/event-stream' } });
		assert.equal(s.status, 200, 'refused as a stream');
		assert.equal(await s.done, 'end');
		assert.deepEqual(s.events.map((e) => e.type), ['refused']);
		const told = JSON.parse(s.events[0].data);
		assert.ok(['too many streams', 'backend unavailable']
		    .includes(told.error), JSON.stringify(told));
		return told.error === 'backend unavailable' && s;
	}, { timeout: 30000, interval: 100,
	    what: 'the front\'s own refusal of a new stream' });
	assert.match(refusal.headers['content-type'], /^text\/event-stream/);
	assert.deepEqual(JSON.parse(refusal.events[0].data),
	    { error: 'backend unavailable', status: 503 });

	// Every other request still reaches a node: a POST through the front
	// to each held stream (two on each node; whichever node the front
	// picks, through Redis when it is the other) gets 200 and arrives,
	// and its user's device list answers.
	for (const [i, { u, s }] of held.entries()) {
		const r = await c.postJson(postPath(u, 'd'), { data: `full-${i}` });
		assert.equal(r.status, 200,
		    `POST through the front to a held stream: ${r.status} ${r.text}`);
		assert.equal((await s.nextEvent(15000)).data, `full-${i}`);
		const l = await c.get(listPath(u));
		assert.equal(l.status, 200,
		    `device list through the front: ${l.status} ${l.text}`);
		assert.deepEqual(l.json(), ['d']);
	}

	const panics = rig.front.lines.filter((l) => /panic/i.test(l));
	assert.deepEqual(panics, [], 'the compose front panicked');
});

test('conf/Caddyfile.compose with one node cut off from Redis: POSTs and ' +
    'device lists through the front go to the other', T, async (t) => {
	const rig = new Rig(t, 'caddy-compose-degraded');
	const cl = await startComposeCluster(t);
	const a = await cl.addNode();
	const link = await redisLink(cl, cl.port);
	const b = await cl.addNode({}, link.url);
	await startComposeFront(rig, [a, b]);
	const c = rig.client();
	const ca = a.client(), cb = b.client();

	// A stream held by node a; node b reaches it through Redis.
	const u = uid('cut');
	const s = await a.subscribe(u, 'd');
	const before = await cb.postJson(postPath(u, 'd'), { data: 'before' });
	assert.equal(before.status, 200, `through b, before: ${before.text}`);
	assert.equal((await s.nextEvent(15000)).data, 'before');

	// Node b cut off from Redis: alive, and says so (200, "degraded").
	link.partition();
	await poll(async () => (await cb.health()).status === 'degraded',
	    { timeout: 30000, what: 'b\'s /healthz says degraded' });
	const refused = await cb.postJson(postPath(u, 'd'), { data: 'refused' });
	assert.deepEqual([refused.status, refused.json()],
	    [503, { error: 'cluster store (Redis) unreachable' }],
	    'b refuses a POST to a stream on a');

	// Through the front, until its check of /healthz ("status":"ok") has
	// taken b out: round robin sends every second POST to b (503) until
	// then.
	const answered = [];
	let round = 0;
	await poll(async () => {
		const st = await postAll(c, u, 'd', `r${round}`, POSTS);
		st.forEach((code, i) => answered.push([`r${round}-${i}`, code]));
		round++;
		return st.every((code) => code === 200);
	}, { timeout: 30000, interval: 100,
	    what: `${POSTS} POSTs in a row through the front answered 200 ` +
	    'with b cut off from Redis' });
	for (const [, code] of answered)
		assert.ok(code === 200 || code === 503, `only b's refusals: ${code}`);

	// From then on every one of them, and every device list, answered.
	const after = await postAll(c, u, 'd', 'after', 10);
	assert.deepEqual(after, Array(10).fill(200), 'POSTs with b out');
	for (let i = 0; i < 10; i++) {
		const l = await c.get(listPath(u));
		assert.equal(l.status, 200, `device list: ${l.status} ${l.text}`);
		assert.deepEqual(l.json(), ['d']);
	}
	assert.equal((await cb.health()).status, 'degraded', 'b still cut off');

	// Each POST answered 200 arrived once, in order; none refused did.
	assert.deepEqual(await drain(s, ca, u, 'd'), [
		...answered.filter(([, code]) => code === 200).map(([d]) => d),
		...after.map((_, i) => `after-${i}`),
	], 'every 200 once, in order, and nothing refused');

	const panics = rig.front.lines.filter((l) => /panic/i.test(l));
	assert.deepEqual(panics, [], 'the compose front panicked');
});
