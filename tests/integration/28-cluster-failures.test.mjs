// A cluster under failures (issue 10): a node killed with SIGKILL leaves the
// device list within BEEP_CLUSTER_TTL and what was posted for its devices
// waits for them elsewhere; Redis killed and restarted under load: no crash,
// deliveries on one node go on, what needs Redis answers 503 with a JSON
// error, /healthz, /readyz and /metrics say so, and cross-node delivery comes
// back by itself with nothing repeated, and nothing accepted lost without
// the stream being told (event: reset): with Redis's append-only file, and
// with Redis restarted empty.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
	startCluster, startRedis, uid, postPath, poll, Client,
} from './harness.mjs';

const T = { timeout: 180000 };
const ID_RE = /^(\d+)-(\d+)$/;
const TTL = 2;
const ENV = {
	BEEP_CLUSTER_TTL: String(TTL), BEEP_KEEPALIVE: '1',
	BEEP_REDIS_TIMEOUT: '1000', BEEP_MAX_STREAMS_PER_DEVICE: '1000',
};
// A dead node's devices leave the list within the TTL; slack for ASan.
const GONE = { timeout: TTL * 1000 + 10000, interval: 50 };

function cmpId(a, b) {
	const [am, as] = ID_RE.exec(a).slice(1).map(BigInt);
	const [bm, bs] = ID_RE.exec(b).slice(1).map(BigInt);
	return am !== bm ? (am < bm ? -1 : 1) : as < bs ? -1 : as > bs ? 1 : 0;
}

// A proxy in front of a real Redis (on a socket of its own), to be the
// network between the nodes and Redis.  silence(): nothing passes either
// way on the connections open now (a partition that does not close them);
// new ones work.  mode 'drip', for every connection: Redis's answers
// reach the node one byte every 40 ms (a congested link: every read makes
// progress within BEEP_REDIS_TIMEOUT, while a batch of answers takes
// longer), until mode is 'pass' again, when what waits goes at once.
// sent(text): resolves once a node has sent Redis bytes holding text.
// partition(): on the connections open now, what a node sends is held
// (TCP would send it again) and Redis's answers are lost; a node that
// gives one up closes only its own side.  heal(): what was held goes on
// to Redis, on each connection Redis still has.  Returns those links.
async function redisProxy(t) {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-proxy-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	const redis = await startRedis(dir);
	t.after(() => redis.stop());
	const links = [], waiters = [];
	const px = { mode: 'pass', sock: path.join(dir, 'proxy.sock') };
	const server = net.createServer((c) => {
		const up = net.connect(redis.socket);
		const link = { c, up, held: [], silent: false, cut: false,
		    queued: [] };
		links.push(link);
		c.on('data', (d) => {
			if (link.cut) {
				link.queued.push(d);
				return;
			}
			if (link.silent)
				return;
			up.write(d);
			const text = d.toString('latin1');
			for (const w of waiters)
				if (text.includes(w.text))
					w.resolve();
		});
		up.on('data', (d) => {
			if (link.silent || link.cut)
				return;
			if (px.mode === 'pass' && link.held.length === 0)
				c.write(d);
			else
				link.held.push(...d);
		});
		c.on('error', () => {});
		up.on('error', () => {});
		c.on('close', () => {
			if (!link.cut)
				up.destroy();
		});
		up.on('close', () => c.destroy());
	});
	const drip = setInterval(() => {
		for (const l of links) {
			if (l.held.length === 0)
				continue;
			const n = px.mode === 'drip' ? 1 : l.held.length;
			l.c.write(Buffer.from(l.held.splice(0, n)));
		}
	}, 40);
	await new Promise((r) => server.listen(px.sock, r));
	t.after(() => {
		clearInterval(drip);
		for (const l of links) {
			l.c.destroy();
			l.up.destroy();
		}
		server.close();
	});
	px.silence = () => {
		for (const l of links)
			l.silent = true;
	};
	px.sent = (text) => new Promise((resolve) => waiters.push({ text, resolve }));
	px.partition = () => {
		const cut = links.filter((l) => !l.up.destroyed);
		for (const l of cut)
			l.cut = true;
		return cut;
	};
	px.heal = (cut) => {
		for (const l of cut)
			if (!l.up.destroyed)
				for (const d of l.queued.splice(0))
					l.up.write(d);
	};
	return px;
}

// Two nodes that give up on Redis after 300 ms, a client of the second,
// and a new user.
async function quickTimeoutCluster(t) {
	const cl = await startCluster({ nodes: 2,
	    env: { ...ENV, BEEP_REDIS_TIMEOUT: '300' } }, t);
	const [a, b] = cl.nodes;
	return { cl, a, b, cb: b.client(), u: uid() };
}

// Node a's first stream of u/phone while Redis hangs (SIGSTOP) past
// BEEP_REDIS_TIMEOUT: 503, and the node gives the connection up; then
// Redis resumes, and runs the SUB later (or never got it).
async function subscribeWhileRedisHangs(t, cl, a, u) {
	process.kill(cl.redis.child.pid, 'SIGSTOP');
	let resumed = false;
	t.after(() => {
		if (!resumed)
			process.kill(cl.redis.child.pid, 'SIGCONT');
	});
	const s = await a.open(`/subscribe/${u}/device/phone`);
	assert.equal(s.status, 503, await s.text());
	await poll(() => a.backendLog.some((l) =>
	    /redis commands: down/.test(l)), { timeout: 20000,
	    interval: 50, what: 'the node gives Redis up' });
	process.kill(cl.redis.child.pid, 'SIGCONT');
	resumed = true;
}

describe('cluster failures', T, () => {
	test('SIGKILL of a node: its devices leave the list within the TTL, ' +
	    'and what was posted for them waits', T, async (t) => {
		const cl = await startCluster({ nodes: 3, env: ENV }, t);
		const [a, b, k] = cl.nodes;
		const ca = a.client();
		const u = uid();
		const s = await k.subscribe(u, 'phone');
		const other = await b.subscribe(u, 'desk');
		// A user nobody posts to or lists again after the kill.
		const quiet = uid('quiet');
		await k.subscribe(quiet, 'watch');
		const redis = cl.redis.cli;
		assert.equal(redis('HLEN', `beep:u:${quiet}`), '1');
		const kName = (await k.client().health()).cluster.node;
		assert.equal(redis('SISMEMBER', `beep:r:${kName}`, quiet), '1');
		const r1 = await ca.postJson(postPath(u, 'phone'), { data: 'm1' });
		assert.equal(r1.status, 200);
		const ev = await s.nextEvent(15000);
		assert.equal(ev.data, 'm1');
		assert.deepEqual(await ca.devices(u), ['desk', 'phone']);

		// Its key says it is alive for the TTL at most (Redis expires
		// it), and the list follows the key: that is "within the TTL",
		// not a time the test measures (GONE's is a hang guard).
		const alive = `beep:n:${kName}`;
		const pttl = Number(redis('PTTL', alive));
		assert.ok(pttl > 0 && pttl <= TTL * 1000, `PTTL ${alive}: ${pttl}`);
		k.killedOnPurpose = true;
		await k.signalBackend('SIGKILL');
		await poll(async () => {
			const l = await ca.devices(u);
			return l.length === 1 && l[0] === 'desk';
		}, { ...GONE, what: 'the dead node\'s device unlisted' });
		assert.equal(redis('EXISTS', alive), '0',
		    'unlisted as its key expired');
		// Its device is in its grace period: held, not lost.
		const held = [];
		for (let i = 0; i < 3; i++) {
			const r = await ca.postJson(postPath(u, 'phone'),
			    { data: `h${i}` });
			assert.equal(r.status, 202, r.text);
			held.push(r.json().id);
		}
		// The browser comes back through another node with its last id.
		const back = await b.subscribe(u, 'phone',
		    { headers: { 'Last-Event-ID': ev.lastEventId } });
		for (let i = 0; i < 3; i++) {
			const e = await back.nextEvent(15000);
			assert.equal(e.data, `h${i}`);
			assert.equal(e.lastEventId, held[i]);
		}
		other.close();
		// The quiet user's registration by the dead node goes too (the
		// live nodes' heartbeats sweep it), and its device is in its
		// grace period, as if a POST had found it so; the dead node's
		// own records go with it.  Before, the field stayed for ever.
		await poll(async () => redis('EXISTS', `beep:u:${quiet}`) === '0',
		    { ...GONE, what: 'the dead node\'s registration swept' });
		assert.notEqual(redis('HGET', `beep:g:${quiet}`, 'watch'), '');
		await poll(async () => redis('SISMEMBER', 'beep:nodes', kName) ===
		    '0', { ...GONE, what: 'the dead node forgotten' });
		assert.equal(redis('EXISTS', `beep:r:${kName}`), '0');
		const r = await ca.postJson(postPath(quiet, 'watch'), { data: 'x' });
		assert.equal(r.status, 202, r.text);
	});

	test('Redis hung (SIGSTOP): answers within BEEP_REDIS_TIMEOUT, ' +
	    'then recovers', T, async (t) => {
		const cl = await startCluster({ nodes: 2,
		    env: { ...ENV, BEEP_REDIS_TIMEOUT: '300' } }, t);
		const [a, b] = cl.nodes;
		const ca = a.client(), cb = b.client();
		const u = uid();
		const s = await a.subscribe(u, 'd');
		const ok = [], maybe = [];
		const r0 = await cb.postJson(postPath(u, 'd'), { data: 'before' });
		assert.equal(r0.status, 200);
		ok.push({ id: r0.json().id, data: 'before' });
		process.kill(cl.redis.child.pid, 'SIGSTOP');
		let resumed = false;
		t.after(() => {
			if (!resumed)
				process.kill(cl.redis.child.pid, 'SIGCONT');
		});
		// Every request that needs Redis is answered (503) without
		// waiting for it; what may have reached Redis may still come.
		for (let i = 0; i < 5; i++) {
			const r = await cb.postJson(postPath(u, 'd'), { data: `x${i}` });
			if (r.status === 200) {
				ok.push({ id: r.json().id, data: `x${i}` });
				continue;
			}
			assert.equal(r.status, 503, r.text);
			assert.deepEqual(r.json(),
			    { error: 'cluster store (Redis) unreachable' });
			maybe.push(`x${i}`);
		}
		assert.ok(maybe.length > 0, 'a hung Redis gives 503');
		const l = await cb.get(`/user/${u}/devices`);
		assert.equal(l.status, 503);
		// Posts on the stream's own node are delivered there.
		await poll(async () => {
			const r = await ca.postJson(postPath(u, 'd'), { data: 'loc' });
			if (r.status === 200)
				ok.push({ id: r.json().id, data: 'loc' });
			// Until the node has seen Redis hang, a post waits for it
			// and gets 503; Redis runs it when it resumes.
			else
				maybe.push('loc');
			return r.status === 200;
		}, { timeout: 20000, what: 'a local post while Redis hangs' });

		process.kill(cl.redis.child.pid, 'SIGCONT');
		resumed = true;
		await poll(async () => {
			const r = await cb.postJson(postPath(u, 'd'), { data: 'after' });
			if (r.status === 200)
				ok.push({ id: r.json().id, data: 'after' });
			else
				maybe.push('after');
			return r.status === 200;
		}, { timeout: 20000, what: 'cross-node posts again' });
		// Accepted: each once, in id order; the 503 ones at most once.
		const got = [];
		const last = await cb.postJson(postPath(u, 'd'), { data: 'end' });
		assert.equal(last.status, 200);
		for (;;) {
			const e = await s.nextEvent(15000);
			if (e.data === 'end')
				break;
			got.push({ id: e.lastEventId, data: e.data });
		}
		for (let i = 1; i < got.length; i++)
			assert.ok(cmpId(got[i - 1].id, got[i].id) < 0, 'ids increase');
		const ids = got.map((e) => e.id);
		assert.equal(new Set(ids).size, ids.length, 'no duplicate');
		for (const m of ok)
			assert.equal(got.filter((e) => e.id === m.id).length, 1,
			    `accepted ${m.data} ${m.id} delivered once`);
		for (const e of got)
			assert.ok(ok.some((m) => m.id === e.id) ||
			    maybe.includes(e.data), `unexpected ${JSON.stringify(e)}`);
	});

	// A first stream's SUB sent to a Redis that hangs past
	// BEEP_REDIS_TIMEOUT: the subscribe gets 503, and Redis runs the SUB
	// when it resumes. The node did not count itself registered (no
	// answer), so it never sent the UNSUB: Redis held the node as the
	// device's holder for as long as it lived, the device listed, every
	// POST 200 and published to a node with no stream, lost (a review).
	test('a SUB whose answer was lost: the node undoes it, nothing is lost',
	    T, async (t) => {
		const { cl, a, b, cb, u } = await quickTimeoutCluster(t);
		await subscribeWhileRedisHangs(t, cl, a, u);
		// Whether the SUB ran or not, the device is not live anywhere.
		await poll(async () => {
			const l = await cb.get(`/user/${u}/devices`);
			return l.status === 200 && l.json().length === 0;
		}, { timeout: 20000, interval: 50, what: `${u}/phone not listed` });
		const r = await cb.postJson(postPath(u, 'phone'), { data: 'x' });
		assert.ok([202, 404].includes(r.status), `${r.status} ${r.text}`);
		// Held (the SUB ran, the UNSUB began its grace): it comes back.
		if (r.status === 202) {
			const back = await b.subscribe(u, 'phone');
			assert.equal((await back.nextEvent(15000)).data, 'x');
			back.close();
		}
	});

	// A node killed with a stream: POSTs get 200 until its heartbeat key
	// runs out (the stream is dead: nothing receives them), then 202.
	// The grace period began at the last message when the node was found
	// dead, so a device that came back without an id (a new EventSource,
	// an app restarted) got the 202s but never the 200s, and no reset (a
	// review; README: "both are delivered on its return").  The holding
	// now begins at the dead node's last heartbeat: what it delivered
	// after that may come again, before the rest.
	test('SIGKILL of a node: what was answered 200 meanwhile is held too',
	    T, async (t) => {
		const cl = await startCluster({ nodes: 2, env: ENV }, t);
		const [a, b] = cl.nodes;
		const cb = b.client();
		const u = uid();
		const s = await a.subscribe(u, 'phone');
		const r0 = await cb.postJson(postPath(u, 'phone'), { data: 'pre' });
		assert.equal(r0.status, 200, r0.text);
		assert.equal((await s.nextEvent(15000)).data, 'pre');
		a.killedOnPurpose = true;
		await a.signalBackend('SIGKILL');
		s.close();
		const want = [];
		for (let i = 0; i < 3; i++) {
			const r = await cb.postJson(postPath(u, 'phone'),
			    { data: `early${i}` });
			assert.equal(r.status, 200, r.text);
			want.push(`early${i}`);
		}
		await poll(async () => {
			const r = await cb.postJson(postPath(u, 'phone'),
			    { data: `late${want.length}` });
			assert.ok([200, 202].includes(r.status), r.text);
			want.push(`late${want.length}`);
			return r.status === 202;
		}, { timeout: 20000, interval: 200, what: 'held (202)' });
		const back = await b.subscribe(u, 'phone');
		// A message posted to the device now that it is back comes
		// after all it was held: what comes before it is what its
		// return brought (not what came within some quiet time, which
		// a loaded machine can stretch past).
		const end = await cb.postJson(postPath(u, 'phone'), { data: 'end' });
		assert.equal(end.status, 200, end.text);
		const got = [];
		for (;;) {
			const ev = await back.nextEvent(15000);
			assert.equal(ev.type, 'message', JSON.stringify(ev));
			if (ev.data === 'end')
				break;
			got.push(ev.data);
		}
		back.close();
		assert.deepEqual(got[0] === 'pre' ? got.slice(1) : got, want);
	});

	// A device in its grace period, with a message held for it, comes
	// back while Redis hangs past BEEP_REDIS_TIMEOUT: its first SUB gets
	// no answer in time (503), and runs when Redis resumes, ending the
	// grace period.  The node undoes it (UNSUB), which began a new grace
	// period from the last message: what had been held (202) was never
	// delivered, nor told, to the device when it came back (a review).
	test('a SUB undone after its grace period ended: what was held stays',
	    T, async (t) => {
		const { cl, a, b, cb, u } = await quickTimeoutCluster(t);
		(await b.subscribe(u, 'phone')).close();
		await poll(async () => {
			const l = await cb.get(`/user/${u}/devices`);
			return l.status === 200 && l.json().length === 0;
		}, { timeout: 20000, interval: 50, what: `${u}/phone gone` });
		const r1 = await cb.postJson(postPath(u, 'phone'), { data: 'held' });
		assert.equal(r1.status, 202, r1.text);
		await subscribeWhileRedisHangs(t, cl, a, u);
		// The SUB ran, then its UNSUB: a grace period again.
		await poll(async () => {
			const r = await cb.postJson(postPath(u, 'phone'),
			    { data: 'after' });
			assert.ok([200, 202, 503].includes(r.status), r.text);
			return r.status === 202;
		}, { timeout: 20000, interval: 200, what: 'held again' });
		const back = await b.subscribe(u, 'phone');
		assert.equal((await back.nextEvent(15000)).data, 'held');
		assert.equal((await back.nextEvent(15000)).data, 'after');
		back.close();
	});

	// A device with a stream on each node (two tabs, or a ghost left on
	// one node after the phone moved to the other).  While Redis is down
	// each node delivers a POST to its own stream alone (200): the other
	// stream cannot have it, and Redis never saw it.  When Redis is back
	// (with its data) each stream is told: `event: reset` above the id
	// of the message it missed, before what comes next; its own node's
	// message it got once, the other's never.
	test('Redis down: a message delivered on one node alone is no silent ' +
	    'gap for the device\'s stream on the other', T, async (t) => {
		const cl = await startCluster({ nodes: 2, env: ENV, persist: true },
		    t);
		const [a, b] = cl.nodes;
		const ca = a.client(), cb = b.client();
		const u = uid();
		const sA = await a.subscribe(u, 'd');
		const sB = await b.subscribe(u, 'd');
		const r0 = await ca.postJson(postPath(u, 'd'), { data: 'm0' });
		assert.equal(r0.status, 200);
		assert.equal((await sA.nextEvent(15000)).data, 'm0');
		assert.equal((await sB.nextEvent(15000)).data, 'm0');
		await cl.redis.stop('SIGKILL');
		rmSync(cl.redis.socket, { force: true });
		for (const c of [ca, cb])
			await poll(async () => (await c.health()).cluster.redis ===
			    'down', { timeout: 10000, what: 'healthz says redis down' });
		const local = {};
		for (const [name, c] of [['A', ca], ['B', cb]]) {
			await poll(async () => {
				const data = `on-${name}`;
				const r = await c.postJson(postPath(u, 'd'), { data });
				// One on its way as Redis died may get 503.
				if (r.status === 200)
					local[name] = { id: r.json().id, data };
				return r.status === 200;
			}, { timeout: 10000, what: `a local post on ${name}` });
		}
		await cl.redis.start();
		for (const c of [ca, cb])
			await poll(async () => (await c.health()).cluster.redis ===
			    'up', { timeout: 20000, what: 'healthz says redis up' });
		let end;
		await poll(async () => {
			end = await cb.postJson(postPath(u, 'd'), { data: 'end' });
			return end.status === 200;
		}, { timeout: 20000, what: 'cross-node posts again' });
		for (const [name, s, other] of [['A', sA, 'B'], ['B', sB, 'A']]) {
			const got = [];
			for (;;) {
				const e = await s.nextEvent(15000);
				if (e.data === 'end')
					break;
				got.push({ type: e.type, id: e.lastEventId, data: e.data });
			}
			const msgs = got.filter((e) => e.type !== 'reset');
			assert.deepEqual(msgs.map((e) => e.data), [local[name].data],
			    `stream on ${name}: ${JSON.stringify(got)}`);
			const resets = got.filter((e) => e.type === 'reset');
			assert.ok(resets.some((e) =>
			    cmpId(local[other].id, e.id) < 0), `stream on ${name} ` +
			    `told of the message on ${other}: ${JSON.stringify(got)}`);
			for (const e of resets)
				assert.deepEqual(JSON.parse(e.data),
				    { reason: 'messages were lost' });
			for (let i = 1; i < got.length; i++)
				assert.ok(cmpId(got[i - 1].id, got[i].id) < 0,
				    `ids increase: ${JSON.stringify(got)}`);
		}
	});

	// Redis as the README advises running it (append-only file, synced on
	// every write), and Redis restarted EMPTY (no persistence: what it
	// held is gone).  The promise is the same: every message answered
	// 200/202 is delivered once, in the order of its id, or the stream gets
	// `event: reset` after the place where it was lost: never a silent gap;
	// what is refused while Redis is needed and unreachable gets 503.
	// A connection to Redis can go silent without closing (a partition,
	// a NAT or firewall that forgets it, a host gone): here a proxy in
	// front of Redis stops passing anything on the connections open at
	// that moment, and new ones work. The channel's connection would
	// otherwise wait for messages for ever, and every POST to its node's
	// streams answered 200 would be lost without a reset; its PING, when
	// quiet for the heartbeat's period, finds it dead, and what it lost
	// comes back from the streams.
	test('a silent connection to Redis: found dead, nothing accepted lost',
	    T, async (t) => {
		const proxy = await redisProxy(t);
		const sock = proxy.sock;
		const cl = await startCluster({ nodes: 2, env: { ...ENV,
		    BEEP_REDIS_URL: `unix://${sock}` } }, t);
		const [a, b] = cl.nodes;
		const cb = b.client();
		const u = uid('silent');
		const s = await a.subscribe(u, 'd');
		const r0 = await cb.postJson(postPath(u, 'd'), { data: 'before' });
		assert.equal(r0.status, 200, r0.text);
		assert.equal((await s.nextEvent(15000)).data, 'before');
		proxy.silence();
		// Each POST through b until it is accepted (b's own command
		// connection is silent too, until its timeout).
		const sent = [];
		for (let i = 0; i < 5; i++) {
			const data = `after-${i}`;
			let r;
			do {
				r = await cb.postJson(postPath(u, 'd'), { data });
			} while (r.status === 503);
			assert.equal(r.status, 200, r.text);
			sent.push(data);
		}
		const got = [];
		while (got.length < sent.length) {
			const ev = await s.nextEvent(15000);
			assert.notEqual(ev.type, 'reset', 'nothing was lost');
			got.push(ev.data);
		}
		assert.deepEqual(got, sent);
		await poll(() => a.backendLog.some((l) => /redis channel: down: no answer to PING/.test(l)),
		    { what: 'the silent channel found dead' });
	});

	// A partition that heals: the SUB a node sent on the connection it
	// gave up reaches Redis later (TCP sends it again), after the UNSUB
	// the node sent on its next connection, and registers the node as the
	// device's holder for good. The next connection first closes the old
	// one in Redis (CLIENT KILL ID), so what Redis had not read of it
	// never runs.
	test('a partition that heals: a SUB held in it never runs after its ' +
	    'UNSUB', T, async (t) => {
		const proxy = await redisProxy(t);
		const cl = await startCluster({ nodes: 1, env: { ...ENV,
		    BEEP_REDIS_TIMEOUT: '300',
		    BEEP_REDIS_URL: `unix://${proxy.sock}` } }, t);
		const [a] = cl.nodes;
		const u = uid('cut');
		const cut = proxy.partition();
		const unsub = proxy.sent(u);
		const s = await a.open(`/subscribe/${u}/device/phone`);
		assert.equal(s.status, 503, await s.text());
		const held = cut.filter((l) =>
		    l.queued.some((d) => d.includes(u)));
		assert.equal(held.length, 1, 'the SUB, held in the partition');
		// The next connection's UNSUB, and the old one closed in Redis.
		await unsub;
		await poll(() => held[0].up.destroyed, { timeout: 20000,
		    interval: 50, what: 'the old connection closed in Redis' });
		proxy.heal(cut);
		const c = a.client();
		const r = await c.postJson(postPath(u, 'phone'), { data: 'x' });
		assert.equal(r.status, 404, `never served: ${r.text}`);
		assert.deepEqual(await c.devices(u), []);
	});

	// Scripts are loaded once a connection; flushed since (SCRIPT FLUSH, a
	// failover to a replica without them), every job failed NOSCRIPT and
	// the node's UNSUBs went again at once, for as long as the process
	// lived. A NOSCRIPT answer now gives the connection up: the next one
	// loads them again.
	test('scripts flushed from Redis: the node loads them again', T,
	    async (t) => {
		const cl = await startCluster({ nodes: 1, env: ENV,
		    check: { allowErrors: [/redis: NOSCRIPT/] } }, t);
		const [a] = cl.nodes;
		const c = a.client();
		const u = uid('flushed');
		const s = await a.subscribe(u, 'd');
		const redis = cl.redis.cli;
		assert.equal(redis('SCRIPT', 'FLUSH'), 'OK');
		let r;
		await poll(async () => {
			r = await c.postJson(postPath(u, 'd'), { data: 'back' });
			assert.ok([200, 503].includes(r.status), r.text);
			return r.status === 200;
		}, { timeout: 20000, interval: 50, what: 'a POST accepted again' });
		const ev = await s.nextEvent(15000);
		assert.deepEqual([ev.data, ev.lastEventId], ['back', r.json().id]);
		assert.ok(a.backendLog.some((l) => /NOSCRIPT\): loading them/
		    .test(l)), 'the node said why it reconnected');
	});

	// A Redis whose ACL denies the fence's commands (INFO and CLIENT are
	// @dangerous, which restricted users often lack): the node works on,
	// and says once that a connection it gives up is not closed first.
	test('an ACL without INFO and CLIENT: the node works, and says so', T,
	    async (t) => {
		const cl = await startCluster({ nodes: 1, env: ENV }, t);
		const [a] = cl.nodes;
		const c = a.client();
		const u = uid('acl');
		const s = await a.subscribe(u, 'd');
		// The node's connections closed and the ACL narrowed at once:
		// its next ones meet it.
		const out = cl.redis.cliInput('MULTI\nCLIENT KILL TYPE normal\n' +
		    'ACL SETUSER default -@dangerous\nEXEC\n');
		assert.match(out, /OK/, out);
		await poll(() => a.backendLog.some((l) =>
		    /redis refused INFO \(NOPERM/.test(l)), { timeout: 20000,
		    interval: 50, what: 'the refusal logged' });
		let r;
		await poll(async () => {
			r = await c.postJson(postPath(u, 'd'), { data: 'on' });
			return r.status === 200;
		}, { timeout: 20000, interval: 50, what: 'a POST accepted' });
		const ev = await s.nextEvent(15000);
		assert.deepEqual([ev.data, ev.lastEventId], ['on', r.json().id]);
		assert.equal(a.backendLog.filter((l) => /redis refused/.test(l))
		    .length, 1, 'said once');
	});

	// A POST whose request gave up (503) while it waited in the node's
	// queue for Redis must not be sent after all: its sender retries, and
	// the message would arrive twice.  Here Redis's answers drip, so the
	// batch in flight (p1) takes longer than BEEP_REDIS_TIMEOUT while
	// every read makes progress, and p2 waits behind it until its request
	// gives up.  Before, p2 was sent when p1's answer was in: in the
	// device's stream and delivered, after a 503.
	test('a POST given up while queued for Redis is never sent', T,
	    async (t) => {
		const proxy = await redisProxy(t);
		const cl = await startCluster({ nodes: 1, env: { ...ENV,
		    BEEP_REDIS_URL: `unix://${proxy.sock}` } }, t);
		const [a] = cl.nodes;
		const ca = a.client(), cb = a.client();
		const u = uid('queued'), tag = uid('p');
		const s = await a.subscribe(u, 'd');
		proxy.mode = 'drip';
		const p1sent = proxy.sent(`${tag}-1`);
		const p1 = ca.postJson(postPath(u, 'd'), { data: `${tag}-1` });
		await p1sent;
		const p2 = await cb.postJson(postPath(u, 'd'), { data: `${tag}-2` });
		assert.equal(p2.status, 503, p2.text);
		proxy.mode = 'pass';
		const r1 = await p1;
		// p1 was sent before its request gave up: 503, and it may be in.
		assert.ok([200, 503].includes(r1.status), r1.text);
		let r3;
		do {
			r3 = await cb.postJson(postPath(u, 'd'), { data: `${tag}-3` });
		} while (r3.status === 503);
		assert.equal(r3.status, 200, r3.text);
		const got = [];
		for (;;) {
			const ev = await s.nextEvent(15000);
			if (ev.type === 'reset')
				continue;
			got.push(ev.data);
			if (ev.data === `${tag}-3`)
				break;
		}
		assert.ok(!got.includes(`${tag}-2`), `p2 never delivered: ${got}`);
	});

	// A Redis that answers, but refuses every write for a while
	// (MISCONF when its disk is full, OOM at maxmemory, READONLY after a
	// failover, NOREPLICAS: min-replicas-to-write, used here).  A
	// registration it refused was sent again at once, as fast as Redis
	// answered, each answer logged at error level: one resync or one
	// departure made tens of thousands of commands and log lines a
	// second, on the node and in Redis, for as long as it lasted (a
	// review).  They now wait, longer each time, and go through once
	// Redis takes writes again.
	test('writes refused for a while: registrations retried, not in a loop',
	    T, async (t) => {
		const cl = await startCluster({ nodes: 2, env: ENV,
		    check: { allowErrors: [/redis: NOREPLICAS/] } }, t);
		const [a, b] = cl.nodes;
		const cb = b.client();
		const redis = cl.redis.cli;
		const commands = () => Number(/total_commands_processed:(\d+)/
		    .exec(redis('INFO', 'stats'))[1]);
		t.after(() => redis('CONFIG', 'SET', 'min-replicas-to-write', '0'));
		const u = uid('refused');
		const s = await a.subscribe(u, 'd');
		const refuse = async (what, act) => {
			assert.equal(redis('CONFIG', 'SET', 'min-replicas-to-write',
			    '1'), 'OK');
			const n0 = commands();
			await act();
			await new Promise((r) => setTimeout(r, 3000));
			const n = commands() - n0;
			// Its retries, a heartbeat a node, the probes': dozens.
			assert.ok(n < 300, `${what}: ${n} commands in 3 s`);
			assert.equal(redis('CONFIG', 'SET', 'min-replicas-to-write',
			    '0'), 'OK');
		};
		// The channel made again: the device's resync is refused.
		await refuse('resync', async () => {
			assert.match(redis('CLIENT', 'KILL', 'TYPE', 'pubsub'), /^\d+$/);
			await poll(() => a.backendLog.some((l) => /NOREPLICAS/.test(l)),
			    { timeout: 10000, what: 'the resync refused' });
		});
		// Held (202) while the node's key, which it could not refresh,
		// was gone; delivered once it registers again.
		const accepted = [];
		let r;
		await poll(async () => {
			r = await cb.postJson(postPath(u, 'd'), { data: 'again' });
			if (r.status === 200 || r.status === 202)
				accepted.push(r.json().id);
			return r.status === 200;
		}, { timeout: 20000, what: 'a POST accepted again' });
		for (const id of accepted) {
			const ev = await s.nextEvent(15000);
			assert.deepEqual([ev.data, ev.lastEventId], ['again', id]);
		}
		// The stream gone: its UNSUB is refused.
		await refuse('departure', async () => {
			s.close();
			await poll(async () => (await a.client().health()).streams === 0,
			    { timeout: 15000, what: 'the stream ended' });
		});
		// Once Redis takes writes, it goes through: the device's grace.
		await poll(async () => {
			r = await cb.postJson(postPath(u, 'd'), { data: 'held' });
			return r.status === 202;
		}, { timeout: 20000, what: 'the device in its grace period' });
	});

	test('Redis killed and restarted under load (append-only file)', T,
	    (t) => restartUnderLoad(t, true));
	test('Redis killed and restarted EMPTY under load', T,
	    (t) => restartUnderLoad(t, false));
});

async function restartUnderLoad(t, persist) {
	const cl = await startCluster({ nodes: 2, env: ENV, persist }, t);
	const [a, b] = cl.nodes;
	const ca = a.client(), cb = b.client();
	const ops = new Client(a.opsBase);
	t.after(() => ops.close());
	const u = uid();
	const s = await a.subscribe(u, 'd');
	// Posters on both nodes, all the time, until told to stop.
	// { id, data } answered 200, or 202: held while the node of the
	// stream had not beaten since the restart (its key may expire
	// while Redis is down), delivered when it registers again.
	const accepted = [];
	// Answered 503: not accepted, but one in flight when Redis was
	// killed may have been run and kept (append-only file) and is then
	// delivered once Redis is back (README, "Failure behaviour").
	const maybe = new Set();
	const refused = { a: 0, b: 0 };
	let stop = false, n = 0;
	const poster = async (c, tag) => {
		while (!stop) {
			const data = `${tag}${n++}`;
			const r = await c.postJson(postPath(u, 'd'), { data });
			if (r.status === 200 || r.status === 202) {
				accepted.push({ id: r.json().id, data });
			} else {
				// Never a 404 for a device that is live all along.
				assert.equal(r.status, 503, `${data}: ${r.text}`);
				assert.deepEqual(r.json(),
				    { error: 'cluster store (Redis) unreachable' });
				maybe.add(data);
				refused[tag]++;
			}
		}
	};
	const load = [poster(ca, 'a'), poster(cb, 'b')];
	await poll(() => accepted.length >= 50, { what: '50 posts' });

	await cl.redis.stop('SIGKILL');
	rmSync(cl.redis.socket, { force: true });
	// Down: said once by every figure.
	await poll(async () => (await ca.health()).cluster.redis === 'down',
	    { timeout: 10000, what: 'healthz says redis down' });
	const h = await ca.health();
	assert.equal(h.status, 'degraded');
	assert.equal((await ops.get('/readyz')).status, 503);
	assert.match((await ops.get('/metrics')).text, /^beep_redis_up 0$/m);
	// Local delivery goes on: posts on the stream's node succeed.
	const before = accepted.length;
	await poll(() => accepted.filter((m) => m.data[0] === 'a').length >
	    0 && accepted.length >= before + 20,
	    { timeout: 20000, what: 'local posts while Redis is down' });
	// The other node cannot reach the stream: 503.
	await poll(() => refused.b > 0, { what: 'a 503 on the other node' });
	const r = await cb.get(`/user/${u}/devices`);
	assert.equal(r.status, 503);

	await cl.redis.start();
	// Back within bounded polling: both nodes post again, the list
	// is right again.
	const mark = accepted.length;
	await poll(() => accepted.slice(mark).some((m) => m.data[0] === 'b'),
	    { timeout: 20000, what: 'cross-node posts accepted again' });
	await poll(async () => (await ca.health()).cluster.redis === 'up',
	    { timeout: 10000, what: 'healthz says redis up' });
	// While presence is rebuilt (Redis restarted empty) the list is not
	// known: 503, never a list without the live device.
	await poll(async () => {
		const l = await cb.get(`/user/${u}/devices`);
		if (l.status === 503) {
			assert.deepEqual(l.json(),
			    { error: 'cluster store (Redis) unreachable' });
			assert.ok(l.headers['retry-after'], 'Retry-After');
			return false;
		}
		assert.equal(l.status, 200, l.text);
		assert.deepEqual(l.json(), ['d']);
		return true;
	}, { timeout: 20000, interval: 100, what: 'the list right again' });
	assert.equal((await ops.get('/readyz')).status, 200);
	stop = true;
	await Promise.all(load);

	// A marker posted last ends the stream's share of the test.
	const last = await cb.postJson(postPath(u, 'd'), { data: 'last' });
	assert.equal(last.status, 200);
	const got = [];
	for (;;) {
		const e = await s.nextEvent(15000);
		if (e.data === 'last')
			break;
		got.push({ type: e.type, id: e.lastEventId, data: e.data });
	}
	// Ids increase, resets included; nothing twice.
	for (let i = 1; i < got.length; i++)
		assert.ok(cmpId(got[i - 1].id, got[i].id) < 0,
		    `ids increase: ${JSON.stringify(got.slice(i - 1, i + 1))}`);
	const resets = got.filter((e) => e.type === 'reset');
	for (const e of resets)
		assert.deepEqual(JSON.parse(e.data),
		    { reason: 'messages were lost' });
	const msgs = got.filter((e) => e.type !== 'reset');
	assert.equal(new Set(msgs.map((e) => e.data)).size, msgs.length,
	    'no message twice');
	// What arrives was accepted, with the id it was answered, or refused.
	const byData = new Map(accepted.map((m) => [m.data, m]));
	for (const e of msgs) {
		const m = byData.get(e.data);
		if (m !== undefined)
			assert.equal(e.id, m.id, `${e.data}: the id it was answered`);
		else
			assert.ok(maybe.has(e.data), `unexpected ${JSON.stringify(e)}`);
	}
	// An accepted message that did not arrive: a reset comes after its
	// place in the order, never a silent gap.
	const arrived = new Set(msgs.map((e) => e.data));
	const missing = accepted.filter((m) => !arrived.has(m.data));
	for (const m of missing)
		assert.ok(resets.some((e) => cmpId(m.id, e.id) < 0),
		    `accepted ${m.data} ${m.id} lost without a reset after it`);
	if (!persist) {
		// Redis cannot say what it lost: the stream is told.
		assert.ok(resets.length > 0, 'a reset after Redis lost its data');
	}
	t.diagnostic(`accepted ${accepted.length}, missing ${missing.length}, ` +
	    `resets ${resets.length}, refused ${refused.a + refused.b}`);
	// Where each loss sits: the events around its place in the order.
	for (const m of missing) {
		const after = got.findIndex((e) => cmpId(m.id, e.id) < 0);
		t.diagnostic(`missing ${m.data} ${m.id} between ` +
		    JSON.stringify(got.slice(Math.max(0, after - 2), after + 2)));
	}
	assert.ok(refused.b > 0);
	assert.match((await ops.get('/metrics')).text,
	    /^beep_redis_reconnects_total [1-9]\d*$/m);
}
