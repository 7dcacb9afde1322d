// Issue 13, fault: a client that reads nothing (its socket buffers full),
// through Caddy. Its stream's thread blocks in a write; that delays no other
// stream, posts to the stuck device are still answered at once, and after
// BEEP_WRITE_TIMEOUT the backend gives the stream up by itself (the client
// never closes) and the device resumes from its last id losing nothing.
//
// "Stuck" is observed, not assumed or timed: the backend counts the bytes
// it has written to streams (beep_stream_written_bytes_total, counted when
// a write completes). Once big messages are queued for the stuck stream, a
// round of small messages to the other streams that leaves the counter
// less than one big message higher is a round during which the stuck
// stream's thread wrote nothing although it had messages to write: it was
// blocked. The test requires such rounds, every one delivered, before the
// stuck stream is closed. The queue bounds are raised so that the write
// timeout, not the queue overflow, is what ends it (healthz `overflows`
// stays put).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, postPath, poll } from './harness.mjs';
import {
	metric, round, readers, written, flood, UNBOUNDED_QUEUES,
} from './faults.mjs';

const BIG = 'x'.repeat(60000);
const OTHERS = 4;
const BATCH = 16;             // big posts to the stuck device per step
const STEPS = 100000;         // a bound only; the test timeout guards a hang

test('a client that reads nothing delays no other stream and is closed ' +
    'after BEEP_WRITE_TIMEOUT; it resumes losing nothing', { timeout: 180000 },
async (t) => {
	const stack = await startStack({ env: {
		...UNBOUNDED_QUEUES, BEEP_REPLAY_SECONDS: '600',
		BEEP_WRITE_TIMEOUT: '3', BEEP_KEEPALIVE: '1',
	} }, t);
	const c = stack.client({ maxSockets: OTHERS + 2 });
	const u = uid('stuck');
	const others = await readers(stack, u, OTHERS);
	const stuck = await stack.subscribe(u, 'stuck');
	const first = await c.postJson(postPath(u, 'stuck'), { data: 'first' });
	assert.equal(first.status, 200);
	const ev0 = await stuck.nextEvent();
	assert.equal(ev0.data, 'first');
	stuck.res.pause();                      // reads nothing from now on
	const overflows0 = (await c.health()).overflows;
	const streams0 = (await c.health()).streams;
	assert.equal(streams0, OTHERS + 1);

	// Bytes posted to the stuck device since it paused against every byte
	// the backend wrote to any stream since then: while the first is
	// larger, some of its messages are queued, not yet written.
	const wPause = await written(stack);
	const timeouts0 = await metric(stack, 'beep_stream_write_timeouts_total');
	let posted = 1, postedBytes = 0, blockedRounds = 0, closed = false;
	let queued = false;
	for (let step = 0; step < STEPS && !closed; step++) {
		if (!queued) {
			postedBytes += await flood(c, u, 'stuck', BATCH,
			    (i) => `${posted + i}:${BIG}`, postedBytes);
			posted += BATCH;
		}
		const w0 = await written(stack);
		queued = postedBytes > w0 - wPause;
		const open0 = (await c.health()).streams === streams0;
		await round(c, others, `step ${step}`);
		const w1 = await written(stack);
		const open1 = (await c.health()).streams === streams0;
		if (queued && open0 && open1 && w1 - w0 < BIG.length)
			blockedRounds++;
		closed = !open1;
	}
	assert.ok(closed, 'the stuck stream was never closed');
	assert.ok(blockedRounds >= 1, 'no round ran while the stuck stream ' +
	    'was blocked in a write');
	t.diagnostic(`${posted} messages (${postedBytes} bytes) to the stuck ` +
	    `device; ${blockedRounds} ` +
	    'rounds to the others delivered while it was blocked');

	const h = await c.health();
	assert.equal(h.overflows, overflows0, 'closed by the write timeout, ' +
	    'not by the queue bounds');
	assert.equal(await metric(stack, 'beep_stream_write_timeouts_total') -
	    timeouts0, 1, 'the write timeout is counted');
	assert.equal(h.streams, OTHERS);
	// The others still work, and the stuck device comes back by replay
	// from the id of the last event it read: everything posted since.
	await round(c, others, 'after');
	stuck.close();
	const back = await stack.subscribe(u, 'stuck',
	    { headers: { 'Last-Event-ID': ev0.lastEventId } });
	for (let i = 1; i < posted; i++) {
		const ev = await back.nextEvent(30000);
		assert.equal(ev.type, 'message');
		assert.equal(ev.data.slice(0, ev.data.indexOf(':')), String(i),
		    'replayed in order, none lost');
	}
	back.close();
	await poll(async () => (await c.health()).streams === OTHERS,
	    { timeout: 20000, what: 'the resumed stream gone' });
});
