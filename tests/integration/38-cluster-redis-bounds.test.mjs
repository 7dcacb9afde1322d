// What a client that makes devices come and go leaves in a cluster's Redis
// (a review).  A device's metadata (beep:m:USER\x1fDEVICE: its last id,
// floor, where its holding began) is made by its first message; it outlived
// the last one by a day, whatever became of the device.  So a client that
// opened a stream of a new device, posted once and left, as fast as its
// BEEP_RATE allows on each node, left a key for each message for a day:
// with the longest ids (BEEP_MAX_ID) about 760 bytes of Redis each, at 100
// POSTs a second per node 6.5 GB a day from one address on each node, and
// Redis at its maxmemory (noeviction) refuses the whole cluster's writes.
// Now the metadata of a device no node holds outlives its grace period and
// its stream only; while a node holds the device it lasts the day, as
// before (ids in order across a clock step).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, uid, postPath, subPath, poll } from './harness.mjs';
import { withinWindow } from './windows.mjs';

const T = { timeout: 120000 };
// For cases that may start again with a longer grace period.
const TW = { timeout: 300000 };
const ENV = { BEEP_CLUSTER_TTL: '2', BEEP_KEEPALIVE: '1' };
// How long a key may take to go once its grace and replay (a few seconds
// here) are over: a guard, with slack for ASan and a loaded machine.
const GONE = { timeout: 30000, interval: 100 };
const DAY_MS = 24 * 3600 * 1000;

// The longest id BEEP_MAX_ID (256) takes, starting with prefix.
const longId = (prefix) => prefix + 'x'.repeat(256 - prefix.length);

// The metadata keys in Redis of the users whose ids start with prefix.
function metaKeys(cl, prefix) {
	return cl.redis.cli('--scan', '--pattern', `beep:m:${prefix}*`)
	    .split('\n').filter(Boolean);
}

// Through the front (spread over the nodes): n new devices, each a stream
// opened, one message posted to it (200) and the stream closed.  Returns
// their [user, device].
async function comeAndGo(cl, prefix, n) {
	const c = cl.client();
	const out = [];
	for (let i = 0; i < n; i++) {
		const u = longId(`${prefix}${i}-`), d = longId(`d${i}-`);
		const s = await cl.open(subPath(u, d));
		assert.equal(s.status, 200);
		await s.waitComments(1);
		const r = await c.postJson(postPath(u, d), { data: `m${i}` });
		assert.equal(r.status, 200, r.text);
		assert.equal((await s.nextEvent(15000)).data, `m${i}`);
		s.close();
		out.push([u, d]);
	}
	return out;
}

describe('devices that had a message come and go through the front', TW,
    () => {
	// The cluster, with a grace period of `grace` seconds: a case whose
	// set-up outlives it starts again with a longer one (withinWindow()),
	// on a new cluster.
	let cl = null, clGrace = 0;
	const withGrace = async (grace) => {
		if (cl && clGrace === grace)
			return cl;
		const old = cl;
		cl = null;
		await old?.stopAndCheck();
		cl = await startCluster({ nodes: 2, env: { ...ENV,
		    BEEP_GRACE_SECONDS: String(grace), BEEP_REPLAY_SECONDS: '1' } });
		clGrace = grace;
		return cl;
	};
	after(async () => { await cl?.stopAndCheck(); });
	// GONE, and the grace period.
	const gone = (grace) => ({ ...GONE,
	    timeout: GONE.timeout + grace * 1000 });

	test('their metadata goes once their grace and replay are over', TW,
	    async (t) => {
		// The devices came and went, and their keys were counted,
		// before the first one's grace (2 s) could be over.
		const { cl, prefix, devs, grace } = await withinWindow(t, 2,
		    async (grace) => {
			const cl = await withGrace(grace);
			const prefix = uid('churn');
			const t0 = performance.now();
			const devs = await comeAndGo(cl, prefix, 40);
			// One key each, while they are here or away.
			const keys = metaKeys(cl, prefix).length;
			if (keys < devs.length &&
			    performance.now() - t0 >= grace * 1000)
				return null;    // the first ones' may be over
			assert.equal(keys, devs.length);
			return { cl, prefix, devs, grace };
		}, 'grace period');
		const c = cl.client();
		await poll(async () => (await c.postJson(postPath(...devs[0]),
		    { data: 'late' })).status === 404,
		    { ...gone(grace), what: 'the first device forgotten' });
		// Then none (before, each for a day).
		await poll(() => metaKeys(cl, prefix).length === 0,
		    { ...gone(grace), what: 'no metadata left of the devices gone' });
		// Forgotten as on one node: a POST gets 404, and the device,
		// back without an id, starts afresh, with nothing replayed.
		const [u, d] = devs[devs.length - 1];
		assert.equal((await c.postJson(postPath(u, d),
		    { data: 'late' })).status, 404);
		const s = await cl.open(subPath(u, d));
		await s.waitComments(1);
		const r = await c.postJson(postPath(u, d), { data: 'new' });
		assert.equal(r.status, 200, r.text);
		assert.equal((await s.nextEvent(15000)).data, 'new');
		s.close();
	});

	test('a device back in its grace period keeps its metadata for the ' +
	    'day, and what was held', TW, async (t) => {
		// Away, a message held for it and back, within its grace
		// period (2 s).
		const { cl, m, back } = await withinWindow(t, 2,
		    async (grace) => {
			const cl = await withGrace(grace);
			const u = uid('back'), d = 'phone';
			const c = cl.client();
			const [a] = cl.nodes;
			const s = await a.subscribe(u, d);
			const r1 = await c.postJson(postPath(u, d), { data: 'one' });
			assert.equal(r1.status, 200, r1.text);
			assert.equal((await s.nextEvent(15000)).data, 'one');
			// Its grace period begins once its departure is seen,
			// after this: only past t0 + grace may it be forgotten.
			const t0 = performance.now();
			s.close();
			await poll(async () => (await c.devices(u)).length === 0,
			    { ...gone(grace), what: 'the device in its grace period' });
			const m = `beep:m:${u}\x1f${d}`;
			// Away: its metadata lasts past its grace and stream
			// only...
			const away = Number(cl.redis.cli('PTTL', m));
			const r2 = await c.postJson(postPath(u, d), { data: 'held' });
			if (r2.status === 404 &&
			    performance.now() - t0 >= grace * 1000)
				return null;    // forgotten: its grace was over
			assert.ok(away > 0 && away < DAY_MS, `PTTL ${away}`);
			assert.equal(r2.status, 202, r2.text);
			// ...and back, for the day again: it is held by a node.
			const back = await cl.nodes[1].subscribe(u, d,
			    { headers: { 'Last-Event-ID': r1.json().id } });
			const ev = await back.nextEvent(15000);
			if (ev.data !== 'held' &&
			    performance.now() - t0 >= grace * 1000) {
				back.close();   // forgotten before it came back
				return null;
			}
			assert.equal(ev.data, 'held');
			return { cl, m, back };
		}, 'grace period');
		const live = Number(cl.redis.cli('PTTL', m));
		assert.ok(live > DAY_MS - 600000, `PTTL ${live}`);
		back.close();
	});
});

describe('with no grace period (BEEP_GRACE_SECONDS=0)', T, () => {
	let cl;
	before(async () => {
		cl = await startCluster({ nodes: 1, env: { ...ENV,
		    BEEP_GRACE_SECONDS: '0', BEEP_REPLAY_SECONDS: '1' } });
	});
	after(async () => { await cl.stopAndCheck(); });

	test('a device gone leaves no metadata once its stream is over', T,
	    async () => {
		const prefix = uid('nograce');
		const devs = await comeAndGo(cl, prefix, 5);
		assert.equal(metaKeys(cl, prefix).length, devs.length);
		await poll(() => metaKeys(cl, prefix).length === 0,
		    { ...GONE, what: 'no metadata left of the devices gone' });
	});
});

// The limits of the configuration table on streams, devices and POSTs are
// each node's, as the README says (Cluster): behind a front that spreads
// requests over N nodes a client gets up to N times each.  Asked of each
// node directly, so that the count does not depend on the front's choice.
describe('the limits are each node\'s', T, () => {
	let cl;
	before(async () => {
		cl = await startCluster({ nodes: 2, env: { ...ENV,
		    BEEP_MAX_DEVICES_PER_USER: '2',
		    BEEP_MAX_STREAMS_PER_ADDRESS: '3',
		    BEEP_RATE: '1', BEEP_BURST: '3' } });
	});
	after(async () => { await cl.stopAndCheck(); });

	// A refused subscribe's status and error (a plain client: no
	// EventSource Accept header).
	async function refused(node, u, d) {
		const s = await node.open(subPath(u, d));
		const body = await s.text();
		return `${s.status} ${JSON.parse(body).error}`;
	}

	test('devices per user, streams per address and the burst, on each',
	    T, async () => {
		const u = uid('limits');
		const c = cl.client();
		let n = 0;
		for (const node of cl.nodes) {
			// This node's share of the user's devices...
			await node.subscribe(u, `d${n++}`);
			await node.subscribe(u, `d${n++}`);
			assert.equal(await refused(node, u, `d${n}`),
			    '429 too many devices for this user');
			// ...and of the address's streams.
			await node.subscribe(uid('other'), 'x');
			assert.equal(await refused(node, uid('other'), 'y'),
			    '429 too many streams from this address');
		}
		// Twice BEEP_MAX_DEVICES_PER_USER, cluster-wide.
		assert.equal((await c.devices(u)).length, 4);
		// Each node's sender bucket starts full: twice BEEP_BURST.
		for (const node of cl.nodes) {
			const nc = node.client();
			for (let i = 0; i < 3; i++) {
				const r = await nc.postJson(postPath(u, 'd0'),
				    { data: `b${i}` });
				assert.equal(r.status, 200, r.text);
			}
		}
	});
});
