// Issue r32: what an operator relies on in /metrics.
//   - every metric the README's metrics table lists is in GET /metrics,
//     with the type and the labels the table gives, on a single node and
//     (the cluster's too) on a node of a cluster; the exposition parses as
//     the text format 0.0.4 (prom.mjs, strict);
//   - the counters no other test watches move when their event happens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
	ROOT, startStack, startRedis, startCluster, Client, uid, poll, postPath,
	listPath, subscribeSettled, CLUSTER_QUICK, skipReason,
} from './harness.mjs';
import { parseExposition } from './prom.mjs';
import { FcgiConn, requestParams } from './fcgi.mjs';

// Skipped under ThreadSanitizer (the Makefile's TSAN_SKIP): its subject is
// the README's metrics table, not the C the sanitizers watch.
const T = { timeout: 60000, skip: skipReason(import.meta.url) };

// The README's table: [{ name, type, labels: { label: [values] | null },
// cluster }], from its rows `| \`name{label="a"\|"b"}\` | type | what |`.
function readmeMetrics() {
	const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const rows = [];
	for (const line of text.split('\n')) {
		const m = /^\| `(beep_[a-z_]+)(\{[^`]*\})?` \| (\w+) \| (.*) \|$/
		    .exec(line);
		// A row of the table this does not read would go unchecked.
		if (!m && line.startsWith('| `beep_'))
			throw new Error(`a metrics row not read: ${line}`);
		if (!m)
			continue;
		const labels = {};
		for (const part of (m[2] || '').slice(1, -1).split(',')) {
			if (part === '')
				continue;
			const [k, v] = part.split('=');
			labels[k] = v === undefined ? null :
			    v.split('\\|').map((x) => JSON.parse(x));
		}
		rows.push({ name: m[1], type: m[3], labels,
		    cluster: /^cluster only/.test(m[4]) });
	}
	return rows;
}

async function scrape(stack) {
	const c = new Client(stack.opsBase);
	try {
		const r = await c.get('/metrics');
		assert.equal(r.status, 200, r.text);
		return parseExposition(r.text);
	} finally {
		c.close();
	}
}

function checkTable(m, { cluster }) {
	const rows = readmeMetrics();
	assert.ok(rows.length >= 39, `the README's table: ${rows.length} rows`);
	for (const row of rows) {
		if (row.cluster && !cluster) {
			assert.ok(!m.has(row.name), `${row.name}: cluster only`);
			continue;
		}
		const f = m.get(row.name);
		assert.ok(f, `${row.name} is exposed`);
		assert.equal(f.type, row.type, `${row.name}: type`);
		const own = f.samples.filter((s) => s.name === row.name ||
		    (row.type === 'histogram' && s.name === `${row.name}_bucket`));
		assert.ok(own.length > 0, `${row.name}: a sample`);
		for (const s of own) {
			const names = Object.keys(s.labels)
			    .filter((k) => !(row.type === 'histogram' && k === 'le'));
			assert.deepEqual(names.sort(), Object.keys(row.labels).sort(),
			    `${row.name}: labels`);
		}
		for (const [k, values] of Object.entries(row.labels)) {
			if (values === null)
				continue;
			assert.deepEqual(own.map((s) => s.labels[k]).sort(),
			    [...values].sort(), `${row.name}: ${k} values`);
		}
	}
	// Nothing exposed that the table does not list.
	for (const name of m.keys())
		assert.ok(rows.some((r) => r.name === name),
		    `${name} is in the README's table`);
}

test('every metric in the README\'s table, with its type and labels', T,
    async (t) => {
	const stack = await startStack({}, t);
	checkTable(await scrape(stack), { cluster: false });
});

test('a node of a cluster: the cluster\'s metrics too', T, async (t) => {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-100-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	const redis = await startRedis(dir);
	t.after(() => redis.stop());
	const stack = await startStack({ env: { BEEP_REDIS_URL: redis.url } }, t);
	await poll(async () => (await scrape(stack)).value('beep_redis_up') === 1,
	    { what: 'redis up' });
	checkTable(await scrape(stack), { cluster: true });
});

// A front that reads while it writes (here a raw FastCGI client) gets 408
// for a POST whose body did not come within BEEP_READ_TIMEOUT (test 18):
// a POST answered, which beep_posts_total counts by its code.
test('a POST answered 408 is counted as one', T, async (t) => {
	const stack = await startStack({ env: { BEEP_READ_TIMEOUT: '1',
	    BEEP_WRITE_TIMEOUT: '60' } }, t);
	const before = await scrape(stack);
	const conn = await FcgiConn.open(stack.socket, t);
	conn.begin();
	conn.params(requestParams('POST', postPath(uid('cut'), 'd'), {
		CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '100',
	}));
	conn.stdin('{"data":"only the start');
	const r = await conn.response();
	assert.equal(r.status, 408, r.head);
	const m = await scrape(stack);
	const d = (code) => m.value('beep_posts_total', { code }) -
	    before.value('beep_posts_total', { code });
	assert.equal(d('408'), 1, 'the 408');
	const all = m.get('beep_posts_total').samples
	    .reduce((n, s) => n + s.value, 0) - before.get('beep_posts_total')
	    .samples.reduce((n, s) => n + s.value, 0);
	assert.equal(all, 1, 'that POST alone');
});

test('requests in progress and devices forgotten move', T, async (t) => {
	const stack = await startStack({ env: { BEEP_GRACE_SECONDS: '1',
	    BEEP_KEEPALIVE: '1' } }, t);
	// A request is counted until its worker is done with it, a moment
	// after its client has the answer (startStack()'s readiness checks,
	// an earlier scrape): idle is the scrape alone.
	const inProgress = (n, what) => poll(async () => {
		const x = await scrape(stack);
		return x.value('beep_requests_in_progress') === n && x;
	}, { what });
	const before = await inProgress(1, 'only the scrape in progress');
	const u = uid('f');
	const s = await stack.subscribe(u, 'd');
	// The stream, and the scrape itself.
	await inProgress(2, 'the stream counted in progress');
	s.close();
	const m = await poll(async () => {
		const x = await scrape(stack);
		return x.value('beep_devices_forgotten_total') >
		    before.value('beep_devices_forgotten_total') && x;
	}, { what: 'the device forgotten after its grace', timeout: 20000 });
	assert.equal(m.value('beep_devices_forgotten_total') -
	    before.value('beep_devices_forgotten_total'), 1);
	await inProgress(1, 'the stream no longer in progress');
	assert.equal((await stack.client().devices(u)).length, 0);
});

// One node of a cluster: a message held in Redis for a device in its
// grace period is replayed to its next stream; with Redis gone, a POST to
// a device with a stream here is delivered here alone, and a listing,
// which needs Redis, is answered 503.
test('the cluster\'s counters move', T, async (t) => {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-100-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	const redis = await startRedis(dir);
	t.after(() => redis.child.exitInfo || redis.stop());
	const stack = await startStack({ env: { BEEP_REDIS_URL: redis.url,
	    BEEP_CLUSTER_TTL: '2', BEEP_KEEPALIVE: '1',
	    BEEP_REDIS_TIMEOUT: '1000' } }, t);
	const c = stack.client();
	await poll(async () => (await scrape(stack)).value('beep_redis_up') === 1,
	    { what: 'redis up' });
	const before = await scrape(stack);
	const d = (m, name) => m.value(name) - before.value(name);
	const u = uid('c');
	const s1 = await subscribeSettled(stack, u, 'd');
	s1.close();
	await poll(async () => (await c.devices(u)).length === 0,
	    { what: 'the device in its grace period', timeout: 20000 });
	const held = await c.postJson(postPath(u, 'd'), { data: 'held' });
	assert.equal(held.status, 202, held.text);
	const s2 = await subscribeSettled(stack, u, 'd');
	assert.equal((await s2.nextEvent(10000)).data, 'held');
	let m = await scrape(stack);
	assert.equal(d(m, 'beep_cluster_replayed_total'), 1, 'replayed');

	await redis.stop();
	await poll(async () => (await scrape(stack)).value('beep_redis_up') === 0,
	    { what: 'redis down', timeout: 20000 });
	// The channel may be found down before the command connection: a
	// POST meanwhile goes to Redis, and is answered 503 (test 28).
	let refused = 0;
	await poll(async () => {
		const r = await c.postJson(postPath(u, 'd'), { data: 'local' });
		assert.ok([200, 503].includes(r.status), r.text);
		refused += r.status === 503;
		return r.status === 200;
	}, { what: 'a POST delivered here alone', timeout: 20000 });
	assert.equal((await s2.nextEvent(10000)).data, 'local');
	const list = await c.get(listPath(u));
	assert.equal(list.status, 503, list.text);
	m = await scrape(stack);
	assert.equal(d(m, 'beep_cluster_local_posts_total'), 1, 'local');
	assert.equal(d(m, 'beep_cluster_unreachable_total'), refused + 1,
	    'unreachable');
	s2.close();
});

// A node of a cluster with room for fewer messages than a device's
// backlog held in Redis: its next stream replays what fits after the
// hole and begins with `event: reset` (the cluster's decision, not its
// registry's), which beep_stream_resets_total counts as any other.
test('a cluster\'s stream that begins with a reset is counted', T,
    async (t) => {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-100-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	const redis = await startRedis(dir);
	t.after(() => redis.stop());
	const stack = await startStack({ env: { BEEP_REDIS_URL: redis.url,
	    BEEP_MAX_MESSAGE_MEMORY: '65536', BEEP_KEEPALIVE: '1' } }, t);
	const c = stack.client();
	await poll(async () => (await scrape(stack)).value('beep_redis_up') === 1,
	    { what: 'redis up' });
	const before = await scrape(stack);
	const u = uid('cut');
	const s1 = await subscribeSettled(stack, u, 'd');
	s1.close();
	await poll(async () => (await c.devices(u)).length === 0,
	    { what: 'the device in its grace period', timeout: 20000 });
	// 4 x 30 KB held in Redis; the node has room for 64 KiB.
	for (let i = 0; i < 4; i++) {
		const r = await c.postJson(postPath(u, 'd'),
		    { data: `${i}:${'x'.repeat(30000)}` });
		assert.equal(r.status, 202, r.text);
	}
	const s2 = await subscribeSettled(stack, u, 'd');
	const first = await s2.nextEvent(10000);
	assert.equal(first.type, 'reset');
	assert.deepEqual(JSON.parse(first.data), { reason: 'messages were lost' });
	const m = await scrape(stack);
	assert.equal(m.value('beep_stream_resets_total') -
	    before.value('beep_stream_resets_total'), 1);
	s2.close();
});

// The scenario of test 28: a device with a stream on each of two nodes,
// Redis killed, a POST delivered on each node alone, Redis back with its
// data: each stream is sent `event: reset` during its life, and its node's
// beep_stream_resets_total counts each reset its stream got.
test('a cluster\'s reset sent during a stream is counted', T, async (t) => {
	// Two streams of one device, one a node (as test 28).
	const cl = await startCluster({ nodes: 2, persist: true,
	    env: { ...CLUSTER_QUICK, BEEP_MAX_STREAMS_PER_DEVICE: '2' } }, t);
	const [a, b] = cl.nodes;
	const ca = a.client(), cb = b.client();
	const before = [await scrape(a), await scrape(b)];
	const u = uid('mid');
	const sA = await a.subscribe(u, 'd');
	const sB = await b.subscribe(u, 'd');
	const r0 = await ca.postJson(postPath(u, 'd'), { data: 'm0' });
	assert.equal(r0.status, 200, r0.text);
	for (const s of [sA, sB])
		assert.equal((await s.nextEvent(15000)).data, 'm0');
	await cl.redis.stop('SIGKILL');
	rmSync(cl.redis.socket, { force: true });
	for (const c of [ca, cb])
		await poll(async () => (await c.health()).cluster.redis === 'down',
		    { timeout: 10000, what: 'redis down' });
	for (const c of [ca, cb]) {
		await poll(async () => (await c.postJson(postPath(u, 'd'),
		    { data: 'alone' })).status === 200,
		{ timeout: 10000, what: 'a post delivered alone' });
	}
	await cl.redis.start();
	// Both nodes back on Redis first: a POST before a node's resync is
	// below the position the resync moves the device to (told as lost).
	for (const c of [ca, cb])
		await poll(async () => (await c.health()).cluster.redis === 'up',
		    { timeout: 20000, what: 'redis up' });
	let end;
	await poll(async () => {
		end = await cb.postJson(postPath(u, 'd'), { data: 'end' });
		return end.status === 200;
	}, { timeout: 20000, what: 'cross-node posts again' });
	for (const [i, node, s] of [[0, a, sA], [1, b, sB]]) {
		const got = await s.eventsUntil('end');
		const resets = got.filter((e) => e.type === 'reset').length;
		assert.ok(resets > 0, `node ${i}'s stream was told: ` +
		    JSON.stringify(got));
		const m = await scrape(node);
		assert.equal(m.value('beep_stream_resets_total') -
		    before[i].value('beep_stream_resets_total'), resets,
		    `node ${i}: ${JSON.stringify(got)}`);
	}
});
