// A subscribe's replay is paid from its sender's BEEP_RATE bucket (as
// POSTs are: the token's user, else the client's address), one token per
// BEEP_MAX_BODY bytes replayed, after the replay is known: the bucket may
// go into debt, and while it is in debt the sender's subscribes (and
// POSTs) get 429 with Retry-After. In a cluster such a replay is read
// from Redis, up to BEEP_REPLAY_BYTES each time (README, Cluster, What it
// costs): a client that filled its device and reopened its stream in a
// loop with its first id kept Redis, and every node, busy at no cost to
// itself (a review, 2026-12-08).
//
// Every client here is 127.0.0.1: one sender. BEEP_RATE=1, a token a
// second, so the seconds the test takes change the counts below by that
// many tokens at most:
//   - a device's client that reconnects 20 times, each time with its
//     last id and one small message to replay, is never refused: 20 POST
//     tokens and a few thousandths of a token of replays (BEEP_BURST=30);
//   - 60 messages of 60,000 bytes (60 tokens of BEEP_BURST=185; 125
//     left; 3.6 MB, within BEEP_REPLAY_BYTES) replayed from the device's
//     first id cost about 55.1 tokens a subscribe: the first three are
//     served (125, 69.9, 14.8 left before each), the fourth comes in debt
//     (-40.3: refused unless the test took 40 s) and gets 429 with
//     Retry-After, as a JSON reader and as
//     EventSource (an event stream it comes back from), and so does a
//     POST: the debt is the sender's. On a single node, and on a node of
//     a cluster, each of whose replays is read from Redis (the device's
//     first stream on the node: the one before has gone, and the node
//     has told Redis).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	useStack, startCluster, uid, postPath, subPath, isJson, poll,
} from './harness.mjs';

const T = { timeout: 120000 };
const BIG = 'x'.repeat(60000);
const N = 60;
const ENV = {
	BEEP_RATE: '1', BEEP_BURST: '185', BEEP_KEEPALIVE: '1',
	BEEP_MAX_STREAMS_PER_DEVICE: '100', BEEP_GRACE_SECONDS: '600',
};

// Opens (u, d) on `on` (a stack, a cluster) from id; reads its replay up
// to the message whose data is `until` (null: to its position); closes
// it; resolves with its last event id. Asserts 200.
async function replay(on, u, d, id, until, what) {
	const s = await on.open(subPath(u, d),
	    { headers: id ? { 'Last-Event-ID': id } : {} });
	if (s.status !== 200) {
		const text = await s.text().catch(() => s.rawText);
		assert.fail(`${what}: ${s.status} ${text}`);
	}
	let last;
	if (until === null) {
		await s.waitFor(() => s.positions.length > 0,
		    { what: `${what}: its position` });
		last = s.positions[0].lastEventId;
	} else {
		let e;
		do
			e = await s.nextEvent(15000);
		while (e.data !== until);
		last = e.lastEventId;
	}
	s.close();
	return last;
}

// Fills (u, d) with N messages of BIG, replays them from its first id
// until its sender owes; then a subscribe and a POST are refused.
// gone(u): resolves once the stream closed last has gone (in a cluster,
// its node told Redis, so that the next is the device's first there),
// after the first, and with each, after every replay.
async function fillAndReplay(on, c, gone, each) {
	const u = uid('filler');
	const first = await replay(on, u, 'd', null, null, 'first stream');
	await gone(u);
	for (let i = 0; i < N; i++) {
		const r = await c.postJson(postPath(u, 'd'), { data: `${i}:${BIG}` });
		assert.equal(r.status, 202, `POST ${i}: ${r.text}`);
	}
	for (let i = 0; i < 3; i++) {
		await replay(on, u, 'd', first, `${N - 1}:${BIG}`, `replay ${i}`);
		if (each)
			await gone(u);
	}

	const r = await on.open(subPath(u, 'd'),
	    { headers: { 'Last-Event-ID': first, Accept: 'application/json' } });
	if (r.status !== 429)
		r.close();
	assert.equal(r.status, 429, 'the fourth replay, in debt, is refused');
	const text = await r.text();
	assert.match(JSON.parse(text).error, /too many requests/);
	const wait = Number(r.headers['retry-after']);
	assert.ok(wait >= 1 && wait <= 41, `Retry-After ${wait}`);

	const es = await on.open(subPath(u, 'd'),
	    { headers: { 'Last-Event-ID': first, Accept: 'text/event-stream' } });
	assert.equal(es.status, 200);
	assert.equal(await es.done, 'end');
	const ev = es.events.find((e) => e.type === 'refused');
	assert.ok(ev, 'EventSource gets a refused event');
	assert.equal(JSON.parse(ev.data).status, 429);
	assert.ok(es.retry >= 1000, `retry: ${es.retry}`);

	const p = await c.postJson(postPath(u, 'd'), { data: 'after' });
	assert.equal(p.status, 429, `a POST in debt: ${p.text}`);
	assert.ok(isJson(p));
}

describe('a client reconnecting with small replays', () => {
	const h = useStack({ before, after },
	    { env: { ...ENV, BEEP_BURST: '30' } });

	test('is never refused', T, async () => {
		const c = h.stack.client();
		const u = uid('legit');
		let id = await replay(h.stack, u, 'd', null, null, 'first stream');
		for (let i = 0; i < 20; i++) {
			const r = await c.postJson(postPath(u, 'd'), { data: `m${i}` });
			assert.ok(r.status === 200 || r.status === 202,
			    `POST ${i}: ${r.status} ${r.text}`);
			id = await replay(h.stack, u, 'd', id, `m${i}`,
			    `reconnect ${i}`);
		}
	});
});

describe('a single node', () => {
	const h = useStack({ before, after }, { env: ENV });

	test('a replay past the bucket puts it in debt: the next subscribe ' +
	    'and POST get 429', T, async () => {
		const c = h.stack.client();
		await fillAndReplay(h.stack, c, (u) => poll(
		    async () => (await c.devices(u)).length === 0,
		    { timeout: 20000, what: `${u}'s stream gone` }), false);
	});
});

describe('a node of a cluster', () => {
	let cl;
	before(async () => {
		cl = await startCluster({ nodes: 1, env: ENV });
	});
	after(async () => { await cl?.stopAndCheck(); });

	test('a replay from Redis past the bucket puts it in debt: the next ' +
	    'subscribe and POST get 429', T, async () => {
		const c = cl.client();
		await fillAndReplay(cl, c, (u) => poll(
		    () => cl.redis.cli('EXISTS', `beep:g:${u}`) === '1',
		    { timeout: 20000, what: `${u}'s grace in Redis` }), true);
	});
});
