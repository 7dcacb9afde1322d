// Delivery guarantees (issue 4) through Caddy: event ids, replay after a
// reconnect (Last-Event-ID header, ?lastEventId=, ?last_event_id=), `reset`
// for an id the service cannot resume from, the grace window (202, held
// messages, forgetting after BEEP_GRACE_SECONDS), and a stream closed for
// falling too far behind that recovers every message by replay.
//
// Ids are `<epoch>-<n>` (contract); the tests compare them as the pair
// (epoch, n) and otherwise treat them as opaque strings.
//
// Departures behind Caddy are seen only after a few keepalives, so every
// stack runs BEEP_KEEPALIVE=1 and the tests poll (bounded) for a device to be
// unlisted. The suites that need their own counters or limits have their own
// stack and run concurrently with the shared one.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, useStack, uid, postPath, subPath, poll } from
    './harness.mjs';
import { withinWindow } from './windows.mjs';

const T = { timeout: 90000 };
// Bound for a departure to be noticed (about 4 s behind Caddy 2.6 with
// BEEP_KEEPALIVE=1; slack for ASan).
const GONE = { timeout: 20000, interval: 50 };
const ID_RE = /^(\d+)-(\d+)$/;
// Later limits (per-sender POST rate, streams per device) out of the way:
// these tests post thousands of messages from one address and open many
// streams per device (a closed one stays until the backend notices).
const BASE_ENV = { BEEP_RATE: '0', BEEP_MAX_STREAMS_PER_DEVICE: '1000' };

// ---------------------------------------------------------------------------
// Helpers.

function parseId(id) {
	const m = ID_RE.exec(id);
	assert.ok(m, `event id ${JSON.stringify(id)} is <epoch>-<n>`);
	return [BigInt(m[1]), BigInt(m[2])];
}

// < 0, 0, > 0 like a comparator, on (epoch, n).
function cmpId(a, b) {
	const [ea, na] = parseId(a), [eb, nb] = parseId(b);
	if (ea !== eb)
		return ea < eb ? -1 : 1;
	return na < nb ? -1 : na > nb ? 1 : 0;
}

function assertIncreasing(ids, what) {
	for (let i = 1; i < ids.length; i++)
		assert.ok(cmpId(ids[i - 1], ids[i]) < 0,
		    `${what}: id ${ids[i]} after ${ids[i - 1]} is not greater`);
}

// POSTs one message; asserts the status is one of `want` and the body is
// {"id": "<epoch>-<n>"}. Returns { status, id, data, type }.
async function send(c, u, d, data, { want = [200], event, form = false } = {})
{
	const p = postPath(u, d);
	const r = form ?
	    await c.postForm(p, event ? { data, event } : { data }) :
	    await c.postJson(p, event ? { data, event } : { data });
	assert.ok(want.includes(r.status),
	    `POST ${u}/${d} ${JSON.stringify(data).slice(0, 40)}: expected ` +
	    `${want.join('/')}, got ${r.status} ${r.text.slice(0, 200)}`);
	let id;
	if (r.status === 200 || r.status === 202) {
		assert.match(r.headers['content-type'] || '', /^application\/json\b/i);
		const body = r.json();
		assert.equal(typeof body, 'object');
		assert.equal(typeof body.id, 'string',
		    `${r.status} body has a string id: ${r.text}`);
		parseId(body.id);
		id = body.id;
	}
	return { status: r.status, id, data, type: event || 'message' };
}

// Posts n messages `${tag}${i}`, each expected to answer one of `want`.
// With `named`, every other one has an event name (replay keeps it).
async function sendMany(c, u, d, tag, n, { named = false, ...opts } = {}) {
	const out = [];
	for (let i = 0; i < n; i++)
		out.push(await send(c, u, d, `${tag}${i}`, {
			...opts, event: named && i % 2 ? 'candidate' : undefined,
		}));
	return out;
}

// The next events of s are exactly `msgs` (data, type and id), in order.
async function expectEvents(s, msgs, what = '') {
	for (const [i, m] of msgs.entries()) {
		const ev = await s.nextEvent(15000);
		assert.equal(ev.type, m.type,
		    `${what} #${i}: type (data ${JSON.stringify(ev.data)})`);
		assert.equal(ev.data, m.data, `${what} #${i}: data`);
		assert.equal(ev.lastEventId, m.id,
		    `${what} #${i} (${m.data}): event id == the POST's id`);
	}
}

// Proves nothing else is pending on s: a marker posted now is the very next
// event. Returns the marker message.
async function expectNothingMore(c, s, u, d, what = '', want = [200]) {
	const end = await send(c, u, d, `end-${Math.random()}`, { want });
	const ev = await s.nextEvent(15000);
	assert.equal(ev.data, end.data,
	    `${what}: expected only the end marker, got ${ev.type} ` +
	    `${JSON.stringify(ev.data).slice(0, 80)} (id ${ev.lastEventId})`);
	assert.equal(ev.lastEventId, end.id);
	return end;
}

// The first event of s is a reset: named event, JSON reason, an id.
async function expectReset(s, what = '') {
	const ev = await s.nextEvent(15000);
	assert.equal(ev.type, 'reset',
	    `${what}: first event is a reset, got ${ev.type} ` +
	    `${JSON.stringify(ev.data).slice(0, 80)}`);
	let body;
	try { body = JSON.parse(ev.data); } catch {
		assert.fail(`${what}: reset data is not JSON: ${ev.data}`);
	}
	assert.ok(body && typeof body === 'object' && !Array.isArray(body),
	    `${what}: reset data is a JSON object: ${ev.data}`);
	assert.equal(typeof body.reason, 'string', `${what}: reset reason`);
	assert.ok(body.reason.length > 0, `${what}: reset reason not empty`);
	parseId(ev.lastEventId);
	// The reset is a complete event of its own: an `event: reset` line.
	assert.ok(s.fields.some(([f, v]) => f === 'event' && v === 'reset'),
	    `${what}: an "event: reset" field line`);
	return ev;
}

async function waitUnlisted(c, u, d) {
	await poll(async () => !(await c.devices(u)).includes(d),
	    { ...GONE, what: `${u}/${d} unlisted` });
}

// Subscribes with a resume id given as the header or a query parameter.
function resumeOpts(how, id) {
	if (how === 'header')
		return { path: '', headers: { 'Last-Event-ID': id } };
	return { path: `?${how}=${encodeURIComponent(id)}`, headers: {} };
}

async function subscribeFrom(stack, u, d, how, id) {
	const { path, headers } = resumeOpts(how, id);
	const s = await stack.open(subPath(u, d) + path, { headers });
	if (s.status !== 200)
		assert.fail(`subscribe ${u}/${d}${path}: ${s.status} ` +
		    await s.text().catch(() => s.rawText));
	await s.waitComments(1);
	return s;
}

const HEALTH_FIELDS = ['held', 'forgotten', 'dropped', 'resets'];

async function health(c) {
	const hz = await c.health();
	for (const k of HEALTH_FIELDS)
		assert.ok(Number.isInteger(hz[k]) && hz[k] >= 0,
		    `healthz.${k} is a count: ${JSON.stringify(hz)}`);
	return hz;
}

// ---------------------------------------------------------------------------

describe('delivery guarantees', { concurrency: true }, () => {

describe('ids, replay and reset (BEEP_REPLAY_MAX=8)', { concurrency: 1 },
    () => {
	const REPLAY_MAX = 8;
	const h = useStack({ before, after }, {
		env: {
			...BASE_ENV, BEEP_KEEPALIVE: '1', BEEP_GRACE_SECONDS: '60',
			BEEP_REPLAY_MAX: String(REPLAY_MAX),
			BEEP_REPLAY_SECONDS: '600',
		},
	});

	test('healthz has numeric held, forgotten, dropped, resets', T,
	    async () => {
		await health(h.stack.client());
	});

	test('every event has an id; ids increase; POST answers {"id"}', T,
	    async () => {
		const c = h.stack.client();
		const u = uid('ids');
		const s1 = await h.stack.subscribe(u, 'a');
		const s2 = await h.stack.subscribe(u, 'a');     // same device
		const sb = await h.stack.subscribe(u, 'b');
		const sent = [];
		for (let i = 0; i < 20; i++) {
			sent.push(await send(c, u, 'a', `m${i}`, {
				event: i % 3 === 0 ? 'offer' : undefined,
				form: i % 2 === 1,
			}));
		}
		// A JSON value that is not a string, and multi-line data.
		sent.push(await send(c, u, 'a', { a: [1, 2] }));
		sent[sent.length - 1].data = '{"a":[1,2]}';
		sent.push(await send(c, u, 'a', 'two\nlines'));
		const other = await sendMany(c, u, 'b', 'b', 5);

		for (const s of [s1, s2])
			await expectEvents(s, sent, 'device a');
		await expectEvents(sb, other, 'device b');
		// One `id:` line per event, nothing shared between events, and
		// one first, alone: the position the stream started at.
		for (const s of [s1, s2, sb]) {
			const idFields = s.fields.filter(([f]) => f === 'id');
			assert.equal(idFields.length, s.received + 1,
			    'the opening position, then one id field per event');
		}
		assertIncreasing(sent.map((m) => m.id), 'device a');
		assertIncreasing(other.map((m) => m.id), 'device b');
		const all = [...sent, ...other].map((m) => m.id);
		assert.equal(new Set(all).size, all.length, 'ids never reused');
		// Ids of one run share an epoch; it is a plausible time in ms.
		const epochs = new Set(all.map((id) => parseId(id)[0]));
		assert.equal(epochs.size, 1, 'one epoch per run');
		const [epoch] = epochs;
		assert.ok(epoch > 1577836800000n && epoch <= BigInt(Date.now()),
		    `epoch ${epoch} is the start time in ms`);
		for (const s of [s1, s2, sb])
			s.close();
	});

	for (const how of ['header', 'lastEventId', 'last_event_id']) {
		test(`resume by ${how} after missing N messages (another stream ` +
		    'kept the device live): exactly those N, then live', T,
		    async () => {
			const c = h.stack.client();
			const u = uid('resume'), d = 'phone';
			const keep = await h.stack.subscribe(u, d);
			const s = await h.stack.subscribe(u, d);
			const before = await sendMany(c, u, d, 'old', 3);
			await expectEvents(s, before, 'before the cut');
			await expectEvents(keep, before, 'keeper');
			const last = before[2].id;
			s.close();

			const N = 5;
			const missed = await sendMany(c, u, d, 'missed', N,
			    { named: true });
			await expectEvents(keep, missed, 'keeper');
			const rs0 = (await health(c)).resets;

			const back = await subscribeFrom(h.stack, u, d, how, last);
			await expectEvents(back, missed, `replay (${how})`);
			const live = await sendMany(c, u, d, 'live', 2);
			await expectEvents(back, live, 'live after replay');
			await expectNothingMore(c, back, u, d, 'after live');
			assert.equal(back.events.length, 0);
			assert.ok(!back.fields.some(([f, v]) =>
			    f === 'event' && v === 'reset'), 'no reset');
			assert.equal((await health(c)).resets, rs0, 'resets unchanged');
			keep.close();
			back.close();
		});
	}

	test('resume when nothing was missed: no replay, no reset', T,
	    async () => {
		const c = h.stack.client();
		const u = uid('uptodate'), d = 'd';
		const keep = await h.stack.subscribe(u, d);
		const seen = await sendMany(c, u, d, 's', 2);
		await expectEvents(keep, seen);
		const s = await subscribeFrom(h.stack, u, d, 'header', seen[1].id);
		await expectNothingMore(c, s, u, d, 'resumed at the newest id');
		keep.close();
		s.close();
	});

	test('the header wins over the query parameter', T, async () => {
		const c = h.stack.client();
		const u = uid('wins'), d = 'd';
		const keep = await h.stack.subscribe(u, d);
		const msgs = await sendMany(c, u, d, 'w', 4);
		await expectEvents(keep, msgs);
		// Header: resume after w0; query: garbage or a later id.
		for (const q of ['garbage', msgs[2].id]) {
			for (const name of ['lastEventId', 'last_event_id']) {
				const s = await h.stack.open(subPath(u, d) +
				    `?${name}=${encodeURIComponent(q)}`,
				    { headers: { 'Last-Event-ID': msgs[0].id } });
				assert.equal(s.status, 200);
				await expectEvents(s, msgs.slice(1),
				    `header w0, ${name}=${q}`);
				s.close();
			}
		}
		keep.close();
	});

	test(`an id older than the ${REPLAY_MAX} retained: reset first, then ` +
	    'live; exactly the retained window still replays', T, async () => {
		const c = h.stack.client();
		const u = uid('old'), d = 'd';
		const keep = await h.stack.subscribe(u, d);
		const msgs = await sendMany(c, u, d, 'o', REPLAY_MAX + 4);
		await expectEvents(keep, msgs);
		const rs0 = (await health(c)).resets;

		// After msgs[2], REPLAY_MAX + 1 were missed: one is gone.
		const s = await subscribeFrom(h.stack, u, d, 'header', msgs[2].id);
		await expectReset(s, 'id older than retained');
		const live = await sendMany(c, u, d, 'after-reset', 2);
		await expectEvents(s, live, 'live after reset (no old replay)');
		const end = await expectNothingMore(c, s, u, d);
		assert.equal((await health(c)).resets, rs0 + 1, 'resets + 1');
		s.close();

		// After the message just before the window, exactly the
		// REPLAY_MAX retained ones were missed: they replay, no reset.
		const all = [...msgs, ...live, end];
		const from = all.length - REPLAY_MAX - 1;
		const ok = await subscribeFrom(h.stack, u, d, 'lastEventId',
		    all[from].id);
		await expectEvents(ok, all.slice(from + 1), 'whole window');
		await expectNothingMore(c, ok, u, d);
		assert.equal((await health(c)).resets, rs0 + 1, 'no new reset');
		keep.close();
		ok.close();
	});

	test('unknown ids (other epoch, garbage, not yet issued): reset first',
	    T, async () => {
		const c = h.stack.client();
		const u = uid('unknown'), d = 'd';
		const keep = await h.stack.subscribe(u, d);
		const [m] = await sendMany(c, u, d, 'seed', 1);
		await expectEvents(keep, [m]);
		const [epoch, n] = parseId(m.id);
		const bad = [
			`${epoch - 1n}-${n}`, `${epoch + 1n}-1`, `1-${n}`, `0-0`,
			`${epoch}-${n + 1000000n}`,               // not yet issued
			`${epoch}-99999999999999999999999`,       // overflows u64
			`99999999999999999999999-${n}`,
			'garbage', '-', '12345', `${m.id}-1`, `x${m.id}`,
			`${epoch}-`, `-${n}`, `${epoch}-${n}x`, `${epoch}_${n}`,
			`${epoch}--${n}`, `${epoch}-+${n}`, '9'.repeat(300),
		];
		const rs0 = (await health(c)).resets;
		let resets = 0;
		for (const [i, id] of bad.entries()) {
			const how = ['header', 'lastEventId', 'last_event_id'][i % 3];
			const s = await subscribeFrom(h.stack, u, d, how, id);
			await expectReset(s, `${how}=${id}`);
			resets++;
			const live = await send(c, u, d, `live-${i}`);
			await expectEvents(keep, [live]);
			await expectEvents(s, [live], `live after reset (${id})`);
			s.close();
		}
		// Query values that do not decode: a bad escape, and a %00,
		// which once cut the value short (a known id then resumed).
		for (const raw of ['lastEventId=%zz', `lastEventId=${m.id}%00x`,
		    `last_event_id=${m.id}%00`, 'lastEventId=%']) {
			const s = await h.stack.open(subPath(u, d) + `?${raw}`);
			assert.equal(s.status, 200, raw);
			await expectReset(s, raw);
			resets++;
			s.close();
		}
		// A never-seen device with an id: reset too.
		const fresh = await subscribeFrom(h.stack, u, uid('new'), 'header',
		    m.id);
		await expectReset(fresh, 'id on a device that never had messages');
		resets++;
		assert.equal((await health(c)).resets, rs0 + resets,
		    `resets + ${resets}`);
		fresh.close();
		keep.close();
	});

	test('the reset id resumes: a reconnect after it replays, no reset', T,
	    async () => {
		const c = h.stack.client();
		const u = uid('resetid'), d = 'd';
		const keep = await h.stack.subscribe(u, d);
		const s = await subscribeFrom(h.stack, u, d, 'header', 'garbage');
		const reset = await expectReset(s);
		// What a browser would do: reconnect with the last id it saw.
		s.close();
		const missed = await sendMany(c, u, d, 'r', 3);
		await expectEvents(keep, missed);
		const back = await subscribeFrom(h.stack, u, d, 'header',
		    reset.lastEventId);
		await expectEvents(back, missed, 'replay after the reset id');
		await expectNothingMore(c, back, u, d);
		keep.close();
		back.close();
	});

	test('a fresh subscription without an id replays nothing, no reset', T,
	    async () => {
		const c = h.stack.client();
		const u = uid('fresh'), d = 'd';
		const keep = await h.stack.subscribe(u, d);
		const old = await sendMany(c, u, d, 'history', 5);
		await expectEvents(keep, old);
		const rs0 = (await health(c)).resets;
		const s = await h.stack.subscribe(u, d);
		const live = await sendMany(c, u, d, 'now', 2);
		await expectEvents(s, live, 'live only');
		await expectNothingMore(c, s, u, d);
		// A device never seen before: no reset either.
		const nd = uid('dev');
		const n = await h.stack.subscribe(u, nd);
		await expectNothingMore(c, n, u, nd, 'new device');
		assert.equal((await health(c)).resets, rs0, 'no reset counted');
		for (const x of [keep, s, n])
			assert.ok(!x.fields.some(([f, v]) =>
			    f === 'event' && v === 'reset'), 'no reset event');
		keep.close();
		s.close();
		n.close();
	});

	// Grace (BEEP_GRACE_SECONDS=60 here): the only stream ends, posts get
	// 202 and wait; the device comes back and gets them.
	for (const how of ['header', 'lastEventId', 'none']) {
		test(`grace: device returns (${how === 'none' ? 'no id' : how}) ` +
		    'and gets every held message, in order, once', T, async () => {
			const c = h.stack.client();
			const u = uid('grace'), d = 'phone';
			const s = await h.stack.subscribe(u, d);
			const seen = await sendMany(c, u, d, 'seen', 2);
			await expectEvents(s, seen);
			s.close();
			await waitUnlisted(c, u, d);

			const held = await sendMany(c, u, d, 'held', 5,
			    { want: [202], named: true });
			assertIncreasing([...seen, ...held].map((m) => m.id), 'ids');
			assert.deepEqual(await c.devices(u), [], 'not listed in grace');
			assert.ok((await health(c)).held >= held.length, 'held counted');
			const rs0 = (await health(c)).resets;

			const back = how === 'none' ? await h.stack.subscribe(u, d) :
			    await subscribeFrom(h.stack, u, d, how, seen[1].id);
			await expectEvents(back, held, `held messages (${how})`);
			assert.deepEqual(await c.devices(u), [d], 'listed again');
			const live = await sendMany(c, u, d, 'live', 2);
			await expectEvents(back, live, 'live after held');
			await expectNothingMore(c, back, u, d);
			assert.equal((await health(c)).resets, rs0, 'no reset');

			// Held messages went to that stream: a second return (after
			// this one leaves) does not get them again.
			back.close();
			await waitUnlisted(c, u, d);
			const again = await h.stack.subscribe(u, d);
			await expectNothingMore(c, again, u, d, 'no second delivery');
			again.close();
		});
	}

	test('grace: an unknown id on return gets reset, then the held ones', T,
	    async () => {
		const c = h.stack.client();
		const u = uid('gracereset'), d = 'phone';
		const s = await h.stack.subscribe(u, d);
		s.close();
		await waitUnlisted(c, u, d);
		const held = await sendMany(c, u, d, 'held', 3, { want: [202] });
		const back = await subscribeFrom(h.stack, u, d, 'last_event_id',
		    'not-an-id');
		await expectReset(back, 'garbage id in grace');
		await expectEvents(back, held, 'held after reset');
		await expectNothingMore(c, back, u, d);
		back.close();
	});
});

describe('held past the retention bound (BEEP_REPLAY_MAX=4)', () => {
	test('oldest held dropped and counted; the return starts with a reset, ' +
	    'then the rest', T, async (t) => {
		const Q = 4, N = 7;
		const stack = await startStack({ env: { ...BASE_ENV,
		    BEEP_KEEPALIVE: '1', BEEP_GRACE_SECONDS: '120',
		    BEEP_STREAM_QUEUE: String(Q), BEEP_REPLAY_MAX: String(Q) } },
		    t);
		const c = stack.client();
		const u = uid('bound');
		const seen = {};
		for (const d of ['noid', 'withid']) {
			const s = await stack.subscribe(u, d);
			[seen[d]] = await sendMany(c, u, d, 'seen', 1);
			await expectEvents(s, [seen[d]]);
			s.close();
		}
		for (const d of ['noid', 'withid'])
			await waitUnlisted(c, u, d);
		const hz0 = await health(c);
		const held = {};
		for (const d of ['noid', 'withid'])
			held[d] = await sendMany(c, u, d, `${d}-`, N, { want: [202] });
		const hz1 = await health(c);
		assert.equal(hz1.dropped - hz0.dropped, 2 * (N - Q),
		    `the oldest ${N - Q} of each device dropped: ` +
		    JSON.stringify(hz1));
		assert.equal(hz1.held - hz0.held, 2 * Q, 'held: the newest Q each');

		const a = await stack.subscribe(u, 'noid');
		await expectReset(a, 'no id, held messages were dropped');
		await expectEvents(a, held.noid.slice(N - Q), 'the rest (no id)');
		await expectNothingMore(c, a, u, 'noid');
		const b = await subscribeFrom(stack, u, 'withid', 'header',
		    seen.withid.id);
		await expectReset(b, 'id from before the dropped ones');
		await expectEvents(b, held.withid.slice(N - Q), 'the rest (id)');
		await expectNothingMore(c, b, u, 'withid');
		assert.equal((await health(c)).resets, hz1.resets + 2);
		a.close();
		b.close();
	});
});

describe('restart', () => {
	test('ids of a new run are greater; an id of the old run resets', T,
	    async (t) => {
		const env = { ...BASE_ENV, BEEP_KEEPALIVE: '1' };
		const u = uid('restart'), d = 'd';
		const one = await startStack({ env }, t);
		const c1 = one.client();
		const s1 = await one.subscribe(u, d);
		const [old] = await sendMany(c1, u, d, 'old', 1);
		await expectEvents(s1, [old]);
		await one.stopAndCheck();

		const two = await startStack({ env }, t);
		const c2 = two.client();
		const s2 = await subscribeFrom(two, u, d, 'header', old.id);
		await expectReset(s2, 'id of the previous run');
		const [fresh] = await sendMany(c2, u, d, 'new', 1);
		await expectEvents(s2, [fresh], 'live after reset');
		assert.ok(cmpId(old.id, fresh.id) < 0,
		    `new run's id ${fresh.id} > old run's ${old.id}`);
		assert.notEqual(parseId(old.id)[0], parseId(fresh.id)[0],
		    'a new epoch');
		s2.close();
	});
});

describe('grace expiry (BEEP_GRACE_SECONDS=2)', () => {
	test('after grace: POST 404, forgotten counted, old id resets',
	    { timeout: 300000 },
	    async (t) => {
		// Held and counted within grace: again with a longer one when
		// the device was forgotten before that was done (a loaded
		// machine).
		const { stack, c, u, d, seen, hz0, hz1, held, grace } =
		    await withinWindow(t, 2, async (grace) => {
			const stack = await startStack({ env: { ...BASE_ENV,
			    BEEP_KEEPALIVE: '1',
			    BEEP_GRACE_SECONDS: String(grace) } }, t);
			const c = stack.client();
			const u = uid('expire'), d = 'tab';
			const s = await stack.subscribe(u, d);
			const [seen] = await sendMany(c, u, d, 'seen', 1);
			await expectEvents(s, [seen]);
			const hz0 = await health(c);
			s.close();
			await waitUnlisted(c, u, d);

			// Within grace (the device was unlisted a moment ago).
			const held = await sendMany(c, u, d, 'held', 3,
			    { want: [202, 404] });
			assert.deepEqual(await c.devices(u), []);
			const hz1 = await health(c);
			if (hz1.forgotten > hz0.forgotten)
				return null;       // forgotten before it was counted
			assert.deepEqual(held.map((m) => m.status), [202, 202, 202]);
			return { stack, c, u, d, seen, hz0, hz1, held, grace };
		}, 'grace period');
		assert.equal(hz1.held, hz0.held + 3, 'held counts the waiting ones');

		// Forgotten after the grace + the ~1 s expiry tick (bounded
		// poll).
		const hz2 = await poll(async () => {
			const x = await health(c);
			return x.forgotten > hz1.forgotten && x;
		}, { timeout: 15000 + grace * 1000,
		    what: 'healthz.forgotten increased' });
		assert.equal(hz2.forgotten, hz1.forgotten + 1, 'one device forgotten');
		assert.equal(hz2.held, hz0.held, 'held messages gone with it');
		assert.equal(hz2.dropped, hz1.dropped + held.length,
		    'its held messages counted as dropped');
		const r = await c.postJson(postPath(u, d), { data: 'too late' });
		assert.equal(r.status, 404, `after grace: ${r.status} ${r.text}`);
		assert.equal(typeof r.json().error, 'string');
		assert.deepEqual(await c.devices(u), []);

		// Coming back with its last id: the messages are gone -> reset,
		// then live only (nothing of the forgotten ones).
		const back = await subscribeFrom(stack, u, d, 'header', seen.id);
		await expectReset(back, 'device forgotten since');
		await expectNothingMore(c, back, u, d, 'after reset');
		assert.equal((await health(c)).resets, hz2.resets + 1);
		back.close();
	});
});

// Queue overflow: a reader that stops reading makes the backend block on its
// socket once Caddy's and the kernel's buffers are full (a few MB: what the
// backend has written there counts as delivered); past BEEP_STREAM_QUEUE
// messages (or BEEP_STREAM_QUEUE_BYTES) further, the stream is closed and
// POSTs answer 202 (the device is not live). Every message answered 200/202
// must then reach the client exactly once, through replay. BEEP_REPLAY_MAX
// and BEEP_REPLAY_SECONDS are far above what is missed (about 1,000 4 KiB
// messages), so no reset is due. Each limit is tried as the trigger with the
// other one out of the way.
const TRIGGERS = {
	messages: { BEEP_STREAM_QUEUE: '16',
	    BEEP_STREAM_QUEUE_BYTES: String(64 * 1024 * 1024) },
	bytes: { BEEP_STREAM_QUEUE: '100000',
	    BEEP_STREAM_QUEUE_BYTES: String(64 * 1024) },
};
const overflowEnv = (trigger) => ({
	...BASE_ENV, ...TRIGGERS[trigger], BEEP_KEEPALIVE: '1',
	BEEP_REPLAY_MAX: '20000', BEEP_REPLAY_SECONDS: '600',
	BEEP_REPLAY_BYTES: String(256 * 1024 * 1024), BEEP_GRACE_SECONDS: '120',
});
const BIG = 'x'.repeat(4096);
const OVERFLOW_BOUND = 15000;     // posts (60 MB): far past any buffering
const EXTRA_HELD = 3;             // posts after the first 202 (< the queue)

// Subscribes, receives one message (its id is where replay resumes), pauses
// the socket, then posts 4 KiB messages until the first 202, and a few more.
async function overflowOnce(stack, c, u, d) {
	const s = await stack.subscribe(u, d);
	const first = await send(c, u, d, 'first');
	await expectEvents(s, [first], 'before pausing');
	s.res.pause();                    // stop reading: backpressure
	const sent = [];
	for (let i = 0; ; i++) {
		assert.ok(i < OVERFLOW_BOUND,
		    `no 202 after ${OVERFLOW_BOUND} posts to a paused reader`);
		const m = await send(c, u, d, `${i}:${BIG}`, { want: [200, 202] });
		sent.push(m);
		if (m.status === 202)
			break;
	}
	for (let i = 0; i < EXTRA_HELD; i++)
		sent.push(await send(c, u, d, `held${i}`, { want: [202] }));
	assert.deepEqual(await c.devices(u), [], 'overflowed device not listed');
	assertIncreasing([first, ...sent].map((m) => m.id), 'ids');
	return { s, first, sent };
}

function sameMessages(got, want, what) {
	const brief = (m) => `${m.id} ${String(m.data).slice(0, 12)}`;
	assert.equal(got.length, want.length,
	    `${what}: received ${got.length} messages, ${want.length} accepted`);
	for (let i = 0; i < want.length; i++) {
		if (got[i].lastEventId !== want[i].id || got[i].data !== want[i].data)
			assert.fail(`${what}: #${i}: got ${brief({ id:
			    got[i].lastEventId, data: got[i].data })}, want ` +
			    brief(want[i]));
	}
}

async function collect(s, n, what) {
	const out = [];
	for (let i = 0; i < n; i++) {
		const ev = await s.nextEvent(15000).catch((e) => {
			throw new Error(`${what}: after ${out.length} of ${n}: ` +
			    e.message);
		});
		assert.notEqual(ev.type, 'reset',
		    `${what}: reset after ${out.length} events: ${ev.data}`);
		out.push(ev);
	}
	return out;
}

describe('queue overflow', { concurrency: true }, () => {
	for (const trigger of Object.keys(TRIGGERS)) {
		test(`${trigger} bound: a paused reader that resumes is drained, ` +
		    'closed (warn), and replay recovers the rest exactly once', T,
		    async (t) => {
			const stack = await startStack({ env: overflowEnv(trigger) }, t);
			const c = stack.client({ maxSockets: 1 });
			const u = uid('slow'), d = 'reader';
			const { s, first, sent } = await overflowOnce(stack, c, u, d);

			s.res.resume();
			await s.waitEnd(30000);
			await poll(() => stack.backendLog.some((l) =>
			    / warn .*fell too far behind/.test(l)),
			{ timeout: 10000, what: 'warn "fell too far behind" logged' });
			const gotOld = s.events.splice(0);
			assert.ok(gotOld.every((e) => e.type === 'message'));
			const lastId = gotOld.length ? gotOld.at(-1).lastEventId :
			    first.id;

			const back = await subscribeFrom(stack, u, d, 'header', lastId);
			const rest = await collect(back, sent.length - gotOld.length,
			    `replay after overflow (${gotOld.length} of ` +
			    `${sent.length} read before the close)`);
			sameMessages([...gotOld, ...rest], sent, 'old stream + replay');
			await expectNothingMore(c, back, u, d, 'after replay');
			back.close();
		});

		test(`${trigger} bound: a paused reader that gives up; reconnecting ` +
		    'with the id seen before pausing recovers every message once', T,
		    async (t) => {
			const stack = await startStack({ env: overflowEnv(trigger) }, t);
			const c = stack.client({ maxSockets: 1 });
			const u = uid('stuck'), d = 'reader';
			const { s, first, sent } = await overflowOnce(stack, c, u, d);
			s.close();
			// The stream's thread is released (not stuck on the dead
			// socket).
			await poll(async () => (await health(c)).streams === 0,
			    { ...GONE, what: 'healthz.streams back to 0' });

			for (const how of ['header', 'last_event_id']) {
				const back = await subscribeFrom(stack, u, d, how, first.id);
				const got = await collect(back, sent.length,
				    `replay after overflow (${how})`);
				sameMessages(got, sent, `replay (${how})`);
				const end = await expectNothingMore(c, back, u, d,
				    'after replay');
				sent.push(end);
				back.close();
			}
		});
	}

	test('one of two streams overflows: the device stays live (200), the ' +
	    'overflowed one recovers everything by replay', T, async (t) => {
		const stack = await startStack({ env: overflowEnv('messages') }, t);
		const c = stack.client({ maxSockets: 1 });
		const u = uid('two'), d = 'reader';
		const keep = await stack.subscribe(u, d);
		const slow = await stack.subscribe(u, d);
		const first = await send(c, u, d, 'first');
		await expectEvents(slow, [first]);
		await expectEvents(keep, [first], 'the keeper');
		slow.res.pause();
		// Post until the backend gives up on the paused stream (healthz
		// `overflows`, a counter from before the contract; 3,000 posts,
		// 12 MB, are far past the few MB of buffering if it is missing).
		// The keeper reads each message before the next is posted, so it
		// never falls behind (a slow backend, under a sanitizer, could
		// otherwise let it overflow too), and every answer is 200.
		const sent = [];
		const overflows = async () => (await c.health()).overflows;
		const overflows0 = await overflows();
		for (let i = 0; ; i++) {
			sent.push(await send(c, u, d, `${i}:${BIG}`));
			await expectEvents(keep, sent.slice(-1), 'the keeper');
			if (overflows0 === undefined ? i >= 3000 :
			    i % 64 === 63 && await overflows() > overflows0)
				break;
			assert.ok(i < OVERFLOW_BOUND, 'the paused stream never overflowed');
		}
		const tail = await sendMany(c, u, d, 'tail', 3);
		sent.push(...tail);
		assert.deepEqual(await c.devices(u), [d], 'still listed');
		await expectEvents(keep, tail, 'the keeper');
		slow.close();
		const back = await subscribeFrom(stack, u, d, 'header', first.id);
		sameMessages(await collect(back, sent.length, 'replay'), sent,
		    'replay for the overflowed stream');
		await expectNothingMore(c, back, u, d);
		keep.close();
		back.close();
	});

	test('retention: BEEP_REPLAY_MAX messages, whatever the queue bytes',
	    T, async (t) => {
		// The contract bounds what a device retains for replay by
		// BEEP_REPLAY_MAX and BEEP_REPLAY_SECONDS only; the queue limits
		// bound a stream's backlog and what is held in grace.
		const stack = await startStack({ env: { ...BASE_ENV,
		    BEEP_KEEPALIVE: '1', BEEP_STREAM_QUEUE_BYTES: String(64 * 1024),
		    BEEP_REPLAY_MAX: '256', BEEP_REPLAY_SECONDS: '600' } }, t);
		const c = stack.client({ maxSockets: 1 });
		const u = uid('keep'), d = 'd';
		const keep = await stack.subscribe(u, d);
		const msgs = [];
		for (let i = 0; i < 30; i++) {
			msgs.push(await send(c, u, d, `${i}:${BIG}`));
			await expectEvents(keep, [msgs[i]]);   // never behind
		}
		// 25 missed (100 KiB), far fewer than BEEP_REPLAY_MAX.
		const back = await subscribeFrom(stack, u, d, 'header', msgs[4].id);
		sameMessages(await collect(back, 25, 'replay of 25 x 4 KiB'),
		    msgs.slice(5), 'replay');
		await expectNothingMore(c, back, u, d);
		keep.close();
		back.close();
	});

	test('an overflowed device: 202s are counted as held, nothing dropped',
	    T, async (t) => {
		const stack = await startStack({ env: overflowEnv('messages') }, t);
		const c = stack.client({ maxSockets: 1 });
		const u = uid('held'), d = 'reader';
		const hz0 = await health(c);
		const { s, sent } = await overflowOnce(stack, c, u, d);
		const hz = await health(c);
		const waiting = sent.filter((m) => m.status === 202).length;
		assert.ok(hz.held >= waiting, `healthz.held ${hz.held} counts the ` +
		    `${waiting} messages answered 202: ${JSON.stringify(hz)}`);
		assert.equal(hz.dropped, hz0.dropped,
		    `no message answered 200/202 dropped: ${JSON.stringify(hz)}`);
		s.close();
	});
});

});
