// What a client with only HTTP access leaves in a cluster's Redis, against
// the worst cases the README's Cluster section states (What it costs), so
// that an operator who sizes Redis's maxmemory by them is not short (a
// review).  Measured with MEMORY USAGE on a real redis-server.
//
// A held message costs Redis what it is once encoded, not what its body
// was: a JSON body's numbers come back as jansson writes them, `0.1` as
// `0.10000000000000001`, five times its text.  The README said a device's
// messages cost at most BEEP_REPLAY_MAX × BEEP_MAX_BODY: a device of four
// held 1.3 MB of Redis, five times that, and one sender at its BEEP_RATE
// about 1 GB per node where the README said 200 MB.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startCluster, uid, postPath, subPath, listPath, poll }
    from './harness.mjs';

const T = { timeout: 120000 };
const GRACE = 10;          // BEEP_GRACE_SECONDS
const REPLAY_MAX = 32;     // BEEP_REPLAY_MAX
const REPLAY_BYTES = 524288; // BEEP_REPLAY_BYTES: one worst message
const MAX_BODY = 65536;    // BEEP_MAX_BODY, the default

// The README's Cluster section, from "What it costs" to the next
// paragraph.
function costs() {
	const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const start = text.indexOf('**What it costs.**');
	assert.ok(start >= 0, 'README has "**What it costs.**"');
	return text.slice(start, text.indexOf('\n\n', start)).replace(/\s+/g, ' ');
}

// The longest id BEEP_MAX_ID (256) takes, starting with prefix.
const longId = (prefix) => prefix + 'x'.repeat(256 - prefix.length);

// The body of at most BEEP_MAX_BODY whose message is the longest once
// encoded: an array of 0.1, which jansson writes back as
// 0.10000000000000001.
function worstBody() {
	const k = Math.floor((MAX_BODY - 10) / 4);
	const body = `{"data":[${Array(k).fill('0.1').join(',')}]}`;
	assert.ok(body.length <= MAX_BODY);
	return body;
}

describe('what an attacker leaves in a cluster\'s Redis', T, () => {
	let cl = null;
	const R = (...a) => cl.redis.cli(...a);
	const keysOf = (prefix) => R('--scan', '--pattern', `*${prefix}*`)
	    .split('\n').filter(Boolean);
	const mem = (k) => Number(R('MEMORY', 'USAGE', k, 'SAMPLES', '0'));
	// used_memory and used_memory_peak: what Redis holds, and the most
	// it held, for a moment, since it started (nothing resets it).
	const usage = () => {
		const t = R('INFO', 'memory');
		const f = (k) => Number(t.match(new RegExp(`^${k}:(\\d+)`, 'm'))[1]);
		return { used: f('used_memory'), peak: f('used_memory_peak') };
	};
	// What the README says a message may cost Redis, in BEEP_MAX_BODYs.
	const factor = () => {
		const m = costs().match(new RegExp('at most `BEEP_REPLAY_MAX` × ' +
		    '(?:(\\d+) × )?`BEEP_MAX_BODY`'));
		assert.ok(m, 'README states what a device\'s messages cost Redis');
		return m[1] ? Number(m[1]) : 1;
	};
	before(async () => {
		cl = await startCluster({ nodes: 1, env: {
			BEEP_GRACE_SECONDS: String(GRACE),
			BEEP_REPLAY_MAX: String(REPLAY_MAX),
			BEEP_REPLAY_BYTES: String(REPLAY_BYTES),
			BEEP_KEEPALIVE: '1',
		} });
	});
	after(async () => { await cl?.stopAndCheck(); });

	// A stream of [user, device] opened and closed: the device's grace
	// period begins in Redis (beep:g:USER).
	async function comeAndGo(u, d) {
		const s = await cl.open(subPath(u, d));
		assert.equal(s.status, 200);
		await s.waitComments(1);
		s.close();
		await poll(() => R('EXISTS', `beep:g:${u}`) === '1',
		    { what: `beep:g of ${u.slice(0, 8)}`, timeout: 15000 });
	}

	// n messages at their worst posted to [user, device] in its grace
	// period (202): their ids.
	async function fill(u, d, n) {
		const c = cl.client();
		const body = worstBody(), ids = [];
		for (let i = 0; i < n; i++) {
			const r = await c.postJson(postPath(u, d), body);
			assert.equal(r.status, 202, r.text);
			ids.push(r.json().id);
		}
		return ids;
	}

	test('requests to devices never connected leave nothing', T,
	    async () => {
		const p = uid('never-');
		const before = R('DBSIZE');
		const c = cl.client();
		for (let i = 0; i < 20; i++) {
			const u = longId(`${p}${i}-`), d = longId('d-');
			const r = await c.postJson(postPath(u, d), { data: 'x' });
			assert.equal(r.status, 404, r.text);
			assert.equal((await c.get(listPath(u))).status, 200);
		}
		assert.deepEqual(keysOf(p), []);
		assert.equal(R('DBSIZE'), before);
	});

	// Before the others: what Redis held at its peak is measured from
	// what it holds, which must not have come down since (nothing resets
	// used_memory_peak), as it does when a stream of another test expires.
	test('a subscribe makes Redis read no more than its replay keeps and ' +
	    '8 messages', T, async () => {
		const f = factor();
		const u = uid('replay-'), d = 'd';
		await comeAndGo(u, d);
		const ids = await fill(u, d, REPLAY_MAX);
		const before = usage();
		// From its first message: the newest that fit BEEP_REPLAY_BYTES,
		// after a reset.
		const s = await cl.open(subPath(u, d),
		    { headers: { 'Last-Event-ID': ids[0] } });
		assert.equal(s.status, 200);
		const e = await s.nextEvent(15000);
		assert.equal(e.type, 'reset');
		assert.equal(JSON.parse(e.data).reason, 'event id too old');
		const read = usage().peak - before.used;
		const bound = REPLAY_BYTES + 8 * f * MAX_BODY;
		assert.ok(read <= bound, `Redis held ${read} bytes more for a ` +
		    `subscribe's replay of ${REPLAY_BYTES}: over ${bound}`);
		s.close();
	});

	// A message at its worst first in a device's stream: every POST to
	// the device for its retention read it whole, to see whether it was
	// past the age (650 us of Redis's time a POST where it was 90, here).
	test('a small POST reads no other message of Redis\'s', T, async () => {
		const u = uid('first-'), d = 'd';
		const s = await cl.open(subPath(u, d));
		assert.equal(s.status, 200);
		await s.waitComments(1);
		const c = cl.client();
		let r = await c.postJson(postPath(u, d), worstBody());
		assert.equal(r.status, 200, r.text);
		// What Redis holds, up to the most it held: that peak, not this
		// POST's, would be measured otherwise.
		for (let i = 0; usage().peak - usage().used > 16384; i++) {
			assert.ok(i < 100, 'Redis\'s memory reaches its peak');
			const pad = 'p'.repeat(500);
			cl.redis.cliInput(Array.from({ length: 1000 },
			    (_, j) => `SET x118-pad:${i}:${j} ${pad}`).join('\n'));
		}
		const before = usage();
		r = await c.postJson(postPath(u, d), { data: 'small' });
		assert.equal(r.status, 200, r.text);
		const read = usage().peak - before.used;
		assert.ok(read < MAX_BODY, `Redis held ${read} bytes more for a ` +
		    `POST of a few bytes`);
		s.close();
	});

	test('a device that came and went: its grace entry, within the ' +
	    'README\'s bound, gone after its grace period', T, async () => {
		const m = costs().match(new RegExp('`beep:g:USER` for ' +
		    '`BEEP_GRACE_SECONDS` and a second[^:]*: up to (\\d+) KB'));
		assert.ok(m, 'README states what a device that came and went ' +
		    'costs Redis');
		const bound = Number(m[1]) * 1024;
		const p = uid('cg-');
		const users = [];
		for (let i = 0; i < 3; i++) {
			const u = longId(`${p}${i}-`), d = longId('d-');
			await comeAndGo(u, d);
			users.push(u);
		}
		const keys = keysOf(p).sort();
		assert.deepEqual(keys, users.map((u) => `beep:g:${u}`).sort());
		// Nor are they left among the users a node registers (beep:r).
		const regs = R('--scan', '--pattern', 'beep:r:*').split('\n')
		    .filter(Boolean);
		for (const r of regs) {
			for (const u of users)
				assert.equal(R('SISMEMBER', r, u), '0');
		}
		for (const k of keys) {
			assert.ok(mem(k) <= bound, `${mem(k)} bytes > ${bound}`);
			const ttl = Number(R('PTTL', k));
			assert.ok(ttl > 0 && ttl <= (GRACE + 1) * 1000, `PTTL ${ttl}`);
		}
		await poll(() => keysOf(p).length === 0, { what: 'keys gone',
		    timeout: (GRACE + 1) * 1000 + 20000, interval: 200 });
	});

	test('a device\'s held messages at their worst: within the README\'s ' +
	    'bound', T, async () => {
		const f = factor();
		const u = uid('worst-'), d = 'd';
		await comeAndGo(u, d);
		await fill(u, d, REPLAY_MAX + 2);
		const k = `beep:s:${u}\x1f${d}`;
		assert.equal(R('XLEN', k), String(REPLAY_MAX));
		const used = mem(k);
		const bound = REPLAY_MAX * f * MAX_BODY;
		assert.ok(used <= bound, `a device's ${REPLAY_MAX} messages of ` +
		    `${worstBody().length} bytes cost Redis ${used} bytes, over ` +
		    `the README's BEEP_REPLAY_MAX × ${f} × BEEP_MAX_BODY ` +
		    `(${bound})`);
	});
});
