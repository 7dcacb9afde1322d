// A node that falls behind its channel: Redis cuts it.
//
// Redis closes a pub/sub connection whose output buffer passes
// `client-output-buffer-limit pubsub` (32 MB, or 8 MB for 60 s, by
// default). A node stalled (SIGSTOP here; a long pause, a slow network in
// production) while other nodes accept POSTs for its streams' devices,
// each answered 200 and published to its channel, is cut. Here Redis runs
// with a low limit (1 MB, or 512 KB for 1 s), so that a little data does
// it. Node a has streams of two devices; it is stopped; b posts to them
// until Redis has closed a's channel, and a few more (published to no
// one). Once a goes on, it must find its channel closed, subscribe again
// and resync: every message answered 200 reaches its stream once, in
// order, with no reset (Redis still holds them all; README, Cluster:
// "When Redis is back every node registers its devices again and reads,
// from each device's stream, what its channel lost"). So too when it is
// a's command connection that Redis closed meanwhile (CLIENT KILL), alone
// or with its channel. And when Redis trimmed part of what a missed
// (BEEP_REPLAY_MAX below the backlog): a reset where the gap is, then
// what Redis kept, in order; never a silent gap (a's stream, closed for
// falling behind when the resync's reset and replay are more than it may
// hold, is opened again with its last id, as EventSource does; the reset
// comes there). Without the resync at a
// new subscription the cases with the channel cut end with a gap (checked
// by hand, 2026-12-08).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startCluster, startStack, CLUSTER_QUICK, uid, postPath, poll,
	metricOf,
} from './harness.mjs';

const T = { timeout: 120000 };
// A registration outlives the stop (its heartbeat key: BEEP_CLUSTER_TTL);
// a stream may hold a whole replay (about 0.7 MB a device here: half of
// the limit and of what the kernel's socket buffers held), as many
// messages and bytes as a device keeps for it (BEEP_REPLAY_MAX,
// BEEP_REPLAY_BYTES: 256, 4 MB).
const ENV = {
	...CLUSTER_QUICK, BEEP_CLUSTER_TTL: '60',
	BEEP_STREAM_QUEUE: '256', BEEP_STREAM_QUEUE_BYTES: '4194304',
};
const PAD = 'x'.repeat(16384);

// The node's connections made again (beep_redis_reconnects_total), from
// its loopback operations site.
function reconnects(node) {
	return metricOf(node, 'beep_redis_reconnects_total');
}

// Redis's clients now: id -> { sub: whether subscribed }, redis-cli's own
// connection left out.
function clients(redis) {
	const out = new Map();
	for (const line of redis.cli('CLIENT', 'LIST').split('\n')) {
		const f = Object.fromEntries(line.split(' ')
		    .map((kv) => kv.split('=')).map(([k, ...v]) => [k, v.join('=')]));
		if (f.id && f.cmd !== 'client|list')
			out.set(f.id, { sub: Number(f.sub) > 0 });
	}
	return out;
}

// The events of s up to the one whose data is `end`; a stream that ends
// (closed for falling behind) is opened again with the last id it had
// (last, at first), as EventSource does: reopen(id).  Returns { got,
// reopened }.
async function untilEnd(s, last, reopen) {
	const got = [];
	let reopened = 0;
	for (;;) {
		let e;
		try {
			e = await s.nextEvent(30000);
		} catch (err) {
			if (!s.ended)
				throw err;
			s = await reopen(last);
			reopened++;
			continue;
		}
		got.push({ type: e.type, data: e.data.split(':')[0],
		    id: e.lastEventId });
		last = e.lastEventId;
		if (e.data === 'end')
			return { got, reopened };
	}
}

const idLess = (x, y) => {
	const [a1, b1] = x.split('-').map(BigInt);
	const [a2, b2] = y.split('-').map(BigInt);
	return a1 < a2 || (a1 === a2 && b1 < b2);
};

// got (untilEnd()) against want (the labels answered 200, in order): each
// message once, in order, and a message missing only where a reset came
// after the last one delivered before it.  Returns the count of resets.
function noSilentGap(dev, got, want) {
	const brief = JSON.stringify(got.map((e) => `${e.type} ${e.data}`));
	let next = 0, told = false, resets = 0;
	for (const [k, e] of got.entries()) {
		if (k > 0)
			assert.ok(idLess(got[k - 1].id, got[k].id),
			    `${dev}: ids increase: ${brief}`);
		if (e.type === 'reset') {
			told = true;
			resets++;
			continue;
		}
		assert.equal(e.type, 'message', brief);
		const at = want.indexOf(e.data, next);
		assert.ok(at >= 0, `${dev}: ${e.data} once, in order: ${brief}`);
		assert.ok(at === next || told,
		    `${dev}: ${want.slice(next, at)} missing, untold: ${brief}`);
		next = at + 1;
		told = false;
	}
	assert.equal(next, want.length, `${dev}: ends with end: ${brief}`);
	return resets;
}

// cutSub: Redis cuts a's channel at its output limit; cutCmd: a's command
// connection is closed (CLIENT KILL) while a is stopped; replayMax: the
// nodes' BEEP_REPLAY_MAX, when below what a misses (a reset is due).
async function scenario(t, { cutSub, cutCmd, replayMax }) {
	const env = replayMax ? { ...ENV, BEEP_REPLAY_MAX: replayMax,
	    BEEP_STREAM_QUEUE: replayMax } : ENV;
	const cl = await startCluster({ nodes: 1, env, redisArgs: [
	    '--client-output-buffer-limit', 'pubsub 1mb 512kb 1'] }, t);
	const [b] = cl.nodes;
	const before = clients(cl.redis);
	const a = await startStack({ env: { ...env,
	    BEEP_REDIS_URL: cl.redis.url } }, t);
	const ca = a.client(), cb = b.client();
	await poll(async () => (await ca.health()).cluster.redis === 'up',
	    { timeout: 20000, what: 'a up' });
	// a's two connections: its channel, its commands.
	let subId, cmdId;
	await poll(() => {
		const now = [...clients(cl.redis)].filter(([id]) => !before.has(id));
		subId = now.find(([, c]) => c.sub)?.[0];
		cmdId = now.find(([, c]) => !c.sub)?.[0];
		return subId !== undefined && cmdId !== undefined;
	}, { timeout: 10000, what: 'a\'s connections in CLIENT LIST' });

	const u = uid('slow');
	const devs = ['d0', 'd1'];
	const streams = [];
	const want = [[], []];
	const lastIds = [];
	for (const [i, d] of devs.entries()) {
		streams.push(await a.subscribe(u, d));
		const r = await cb.postJson(postPath(u, d), { data: 'before' });
		assert.equal(r.status, 200, r.text);
		const e = await streams[i].nextEvent(15000);
		assert.equal(e.data, 'before');
		lastIds.push(e.lastEventId);
	}

	const reconnected = await reconnects(a);
	const pid = a.backend.pid;
	process.kill(pid, 'SIGSTOP');
	t.after(() => { try { process.kill(pid, 'SIGCONT'); } catch {} });
	if (cutCmd)
		assert.equal(cl.redis.cli('CLIENT', 'KILL', 'ID', cmdId), '1');
	let n = 0;
	const post = async () => {
		const i = n % 2;
		const label = `m${n++}`;
		const r = await cb.postJson(postPath(u, devs[i]),
		    { data: `${label}:${PAD}` });
		assert.equal(r.status, 200, `${label}: ${r.text}`);
		want[i].push(label);
	};
	if (cutSub) {
		// Until Redis has closed a's channel (a bound: 8 MB).
		while (clients(cl.redis).has(subId)) {
			assert.ok(n < 512, 'Redis never cut a\'s channel');
			await post();
		}
		// Redis says why (its log, read as it comes).
		await poll(() => cl.redis.log.some((l) =>
		    /closed ASAP for overcoming of output buffer limits/.test(l)),
		    { timeout: 10000, what: 'Redis\'s line on the cut' });
	}
	// Published to no one (cut), or waiting in a's channel.
	for (let k = 0; k < 4; k++)
		await post();
	assert.equal(streams[0].received + streams[1].received, 2,
	    'nothing more reached a while it was stopped');

	process.kill(pid, 'SIGCONT');
	if (cutSub)
		await poll(() => a.backendLog.some((l) =>
		    /redis channel: down/.test(l)), { timeout: 20000,
		    what: 'a finds its channel closed' });
	// The last through a itself: its commands must work again (a 503
	// while it finds its command connection closed is sent again).  202
	// when the stream was closed for falling behind (replayMax: the
	// resync's reset and replay at once are more than it may hold).
	for (const [i, d] of devs.entries()) {
		await poll(async () => {
			const r = await ca.postJson(postPath(u, d),
			    { data: 'end' });
			assert.ok(r.status === 200 || r.status === 503 ||
			    (replayMax && r.status === 202), `${r.status} ${r.text}`);
			return r.status !== 503;
		}, { timeout: 20000, what: `${d}: a POST through a accepted` });
		want[i].push('end');
	}
	for (const [i, s] of streams.entries()) {
		const { got, reopened } = await untilEnd(s, lastIds[i], (id) =>
			a.subscribe(u, devs[i], { headers: { 'Last-Event-ID': id } }));
		const brief = JSON.stringify(got.map((e) => `${e.type} ${e.data}`));
		const resets = noSilentGap(devs[i], got, want[i]);
		// Redis held every message, or trimmed some (a reset due).
		assert.equal(resets, replayMax ? 1 : 0, `${devs[i]}: resets: ` +
		    brief);
		if (!replayMax)
			assert.equal(reopened, 0, `${devs[i]}: one stream: ${brief}`);
	}
	// Each cut told in a's metrics.
	assert.equal(await reconnects(a) - reconnected,
	    (cutSub ? 1 : 0) + (cutCmd ? 1 : 0), 'beep_redis_reconnects_total');
	if (cutSub)
		assert.ok(!clients(cl.redis).has(subId), 'a subscribed anew');
	if (cutCmd)
		assert.ok(!clients(cl.redis).has(cmdId), 'a connected anew');
}

describe('a node that falls behind its channel', T, () => {
	test('its channel cut at Redis\'s output limit: resynced, nothing lost',
	    T, (t) => scenario(t, { cutSub: true, cutCmd: false }));
	test('its command connection closed: nothing lost', T,
	    (t) => scenario(t, { cutSub: false, cutCmd: true }));
	test('both closed: resynced, nothing lost', T,
	    (t) => scenario(t, { cutSub: true, cutCmd: true }));
	test('its channel cut, Redis trimmed part of what it missed: a reset ' +
	    'there, never a silent gap', T,
	    (t) => scenario(t, { cutSub: true, cutCmd: false, replayMax: '16' }));
});
