// One slow reader holds back no other device's replay expiry, through
// Caddy (the registry fix of 2026-12-05, eaf29f4; test_registry's
// expiry_passes_slow_reader is the unit test). Delivered messages sit on
// one registry-wide list in delivery order; the once-a-second sweep used
// to stop at the first that a live stream of its device had not taken, so
// a client of device a that resumed from an old id and then read slowly
// kept every later message of every device past BEEP_REPLAY_SECONDS. Now
// such messages are overdue (beep_messages_overdue) and the sweep goes on.
//
// a1 reads a's stream; a2 resumes a from an id before m1 (it gets m1 by
// replay), then reads nothing more (its response paused, as in 41). a is
// flooded with 60 kB messages, which a1 takes (delivered: their window
// starts), until the backend has written a2 at least BEHIND messages less
// than a1 (beep_stream_written_bytes_total against the bytes a1 and b
// received): a2's thread is blocked in a write, Caddy's and the kernel's
// buffers full, and the flood's tail untaken by it. Then device b's stream
// takes as many messages as the flood had (NB = F). a2 took at most F - 1
// of the flood, so the expired count can pass 1 + NB (m1, then b's) only
// if b's messages expired behind a2: on the code before the fix it stops
// at m1 and what a2 took. Then, with a2 still stuck: every message since
// the start has expired or is overdue, and some are overdue. Last, a2
// reads on and gets every flood message once, in order, then a marker; and
// things settle: nothing overdue, no message bytes, all expired, nothing
// evicted, dropped, overflowed or timed out.
//
// Events and counters are awaited (poll()), never slept for; the poll
// bounds are hang guards, several windows long.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, postPath, poll, Client } from './harness.mjs';
import { flood, UNBOUNDED_QUEUES } from './faults.mjs';
import { parseExposition } from './prom.mjs';
import { withinWindow } from './windows.mjs';

const BIG = 'x'.repeat(60000);
const BATCH = 16;             // flood posts between two looks at a2
const BEHIND = 8;             // messages a2 must be behind (in bytes)

const aData = (i) => `${String(i).padStart(6, '0')}:${BIG}`;
const label = (data) => (data.length > 20 ? `${data.slice(0, 7)}…` : data);

test('a slow reader of one device holds back no other device\'s replay ' +
    'expiry; it reads on and gets everything once, in order',
{ timeout: 300000 }, async (t) => {
	// Up to a2's resume by replay of m1, within m1's window (its first
	// attempt 1 s): again with a longer window when that took longer (a
	// loaded machine).
	const { replay, c, scrape, m0, u, a1, a2, b, got } = await withinWindow(t,
	    1, async (replay) => {
		const stack = await startStack({ env: {
			...UNBOUNDED_QUEUES, BEEP_REPLAY_SECONDS: String(replay),
			BEEP_WRITE_TIMEOUT: '600',
		} }, t);
		const c = stack.client();
		const ops = new Client(stack.opsBase, { maxSockets: 1 });
		t.after(() => ops.close());
		const scrape = async () => {
			const r = await ops.get('/metrics');
			assert.equal(r.status, 200, r.text);
			return parseExposition(r.text);
		};
		const m0 = await scrape();
		const u = uid('slowexp');

		const a1 = await stack.subscribe(u, 'a');
		const p0 = await a1.waitFor(() => a1.parser.resumeId,
		    { what: 'a1\'s opening id' });
		const b = await stack.subscribe(u, 'b');
		// The bytes a1 and b received.
		const got = { a1: 0, b: 0 };
		a1.res.on('data', (chunk) => { got.a1 += chunk.length; });
		b.res.on('data', (chunk) => { got.b += chunk.length; });

		// m1 is delivered after t0, and expires a window after that at
		// the earliest.
		const t0 = performance.now();
		const r1 = await c.postJson(postPath(u, 'a'), { data: 'm1' });
		assert.equal(r1.status, 200, r1.text);
		assert.equal((await a1.nextEvent()).data, 'm1');
		// m1 was delivered a moment ago: its window is open, a2
		// replays it.
		const a2 = await stack.subscribe(u, 'a',
		    { headers: { 'Last-Event-ID': p0 } });
		const e1 = await a2.nextEvent();
		if (e1.data !== 'm1' && performance.now() - t0 >= replay * 1000) {
			for (const s of [a1, a2, b])
				s.close();
			return null;      // m1's window may be over: a reset
		}
		assert.deepEqual([e1.type, e1.data], ['message', 'm1'],
		    'a2 resumed from its old id by replay');
		return { replay, c, scrape, m0, u, a1, a2, b, got };
	}, 'replay window');
	a2.res.pause();                       // reads nothing from now on
	const delta = (s, name) => s.value(name) - m0.value(name);
	const expired = (s) => delta(s, 'beep_messages_expired_total');
	// Poll bound: ten windows and sweeps.
	const GUARD = 10000 * replay;

	// What the backend wrote a2 since w0, against what a1 got: a1 and b
	// have received all that was written to them (awaited), a keepalive
	// in transit aside.
	const w0 = (await scrape()).value('beep_stream_written_bytes_total');
	const a1b0 = got.a1, bb0 = got.b;
	const behind = async () => {
		const w = (await scrape())
		    .value('beep_stream_written_bytes_total');
		const a2w = (w - w0) - (got.a1 - a1b0) - (got.b - bb0);
		return (got.a1 - a1b0) - a2w;
	};
	let F = 0, lag = 0;
	while (lag < BEHIND * BIG.length) {
		await flood(c, u, 'a', BATCH, (i) => aData(F + i),
		    F * BIG.length);
		for (let i = 0; i < BATCH; i++) {
			const ev = await a1.nextEvent(30000);
			assert.ok(ev.data === aData(F + i),
			    `a1: flood ${F + i}, got ${label(ev.data)}`);
		}
		F += BATCH;
		lag = await behind();
	}

	// b's messages, delivered after every one of a's.
	const NB = F;
	for (let i = 0; i < NB; i++) {
		const r = await c.postJson(postPath(u, 'b'), { data: `b${i}` });
		assert.equal(r.status, 200, r.text);
	}
	for (let i = 0; i < NB; i++)
		assert.equal((await b.nextEvent()).data, `b${i}`);
	lag = await behind();
	assert.ok(lag >= 2 * BIG.length, `a2 is still behind (${lag} bytes): ` +
	    'some flood message it has not taken');
	t.diagnostic(`flood of ${F} messages to a; a2 behind by ${lag} bytes`);

	// Fails before the fix: the sweep stops at a2's first untaken message.
	let last = null;
	try {
		await poll(async () => {
			last = await scrape();
			return expired(last) >= 1 + NB;
		}, { timeout: GUARD, what: 'b\'s messages expired' });
	} catch (e) {
		const n = expired(last);
		assert.fail(`b's ${NB} messages were kept past their ${replay} s ` +
		    `window behind a2, which lags on a: ${n} expired (m1, ` +
		    `and the ${n - 1} of the flood's ${F} that a2 took), ` +
		    `where m1 and b's alone are ${1 + NB} (${e.message})`);
	}
	// a2 still stuck: what it has not taken is overdue, the rest expired.
	const posted = 1 + F + NB;
	const s = await poll(async () => {
		const x = await scrape();
		return expired(x) + x.value('beep_messages_overdue') ===
		    posted && x;
	}, { timeout: GUARD, what: 'every message expired or overdue' });
	const overdue = s.value('beep_messages_overdue');
	assert.ok(overdue > 0 && overdue < F, `a2 lags: ${overdue} overdue`);
	assert.ok(s.value('beep_message_memory_bytes') > 0);
	assert.equal(s.value('beep_streams_open'), 3, 'a2 is still open');
	assert.equal(a2.events.length, 0, 'a2 read nothing meanwhile');
	t.diagnostic(`${overdue} overdue while a2 lagged`);

	// a2 reads on: every flood message once, in order, then the marker.
	a2.res.resume();
	for (let i = 0; i < F; i++) {
		const ev = await a2.nextEvent(30000);
		assert.ok(ev.type === 'message' && ev.data === aData(i),
		    `a2: flood ${i}, got ${ev.type} ${label(ev.data)}`);
	}
	const rEnd = await c.postJson(postPath(u, 'a'), { data: 'end' });
	assert.equal(rEnd.status, 200, rEnd.text);
	assert.equal((await a2.nextEvent()).data, 'end', 'a2: nothing twice');
	assert.equal((await a1.nextEvent()).data, 'end');

	const fin = await poll(async () => {
		const x = await scrape();
		return x.value('beep_messages_overdue') === 0 &&
		    x.value('beep_message_memory_bytes') === 0 && x;
	}, { timeout: GUARD, what: 'nothing overdue, no message bytes' });
	assert.equal(expired(fin), posted + 1, 'all expired, the marker too');
	for (const name of ['beep_messages_evicted_total',
	    'beep_messages_dropped_total', 'beep_stream_overflows_total',
	    'beep_stream_write_timeouts_total', 'beep_stream_resets_total'])
		assert.equal(delta(fin, name), 0, name);
	assert.equal(fin.value('beep_streams_open'), 3);
});
