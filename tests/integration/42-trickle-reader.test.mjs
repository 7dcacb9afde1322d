// Issue 13, fault: a reader that trickles, through Caddy. It reads its
// stream one byte at a time (about 20 kB/s), so bytes keep moving on every
// hop and no single write waits long for progress; but with megabytes
// queued for it, a send cannot complete within BEEP_WRITE_TIMEOUT. The
// backend's write deadline is for the whole send (fcgi_out: one deadline
// across the partial writes of a batch, on top of SO_SNDTIMEO per call),
// so the stream is closed although its client was still reading, and the
// others are not held up meanwhile.
//
// Queued is observed as in 41: bytes posted to the trickling device since
// the start exceed every byte the backend wrote to any stream since then
// (beep_stream_written_bytes_total). The queue bounds are raised so the
// deadline, not an overflow, ends the stream (healthz `overflows` unchanged).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack, uid, subPath, poll } from './harness.mjs';
import {
	round, readers, written, flood, UNBOUNDED_QUEUES,
} from './faults.mjs';

const BIG = 'x'.repeat(60000);
const OTHERS = 3;
const BATCH = 16;
const STEPS = 100000;         // a bound only; the test timeout guards a hang

// A client reading one byte per read() call, 40 reads every 2 ms.
function trickler(port, p) {
	const sock = net.connect(port, '127.0.0.1');
	const state = { sock, bytes: 0, closed: false, timer: null };
	sock.on('error', () => {});
	sock.on('close', () => { state.closed = true; clearInterval(state.timer); });
	sock.on('connect', () => {
		sock.write(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
		    'Accept: text/event-stream\r\n\r\n');
		sock.pause();
		state.timer = setInterval(() => {
			for (let i = 0; i < 40; i++) {
				const b = sock.read(1);
				if (b === null)
					break;
				state.bytes += b.length;
			}
		}, 2);
	});
	return state;
}

test('a reader that trickles a byte at a time is closed by the whole-send ' +
    'deadline while the others keep receiving', { timeout: 180000 },
async (t) => {
	const stack = await startStack({ env: {
		...UNBOUNDED_QUEUES, BEEP_WRITE_TIMEOUT: '2', BEEP_KEEPALIVE: '1',
	} }, t);
	const c = stack.client({ maxSockets: OTHERS + 2 });
	const u = uid('trickle');
	const others = await readers(stack, u, OTHERS);
	const tr = trickler(stack.port, subPath(u, 'slow'));
	t.after(() => { clearInterval(tr.timer); tr.sock.destroy(); });
	await poll(async () => (await c.health()).streams === OTHERS + 1,
	    { what: 'the trickler subscribed' });
	const streams0 = OTHERS + 1;
	const overflows0 = (await c.health()).overflows;

	const wStart = await written(stack);
	let postedBytes = 0, queuedRounds = 0, closed = false, queued = false;
	let bytesWhenQueued = -1;
	for (let step = 0; step < STEPS && !closed; step++) {
		if (!queued) {
			postedBytes += await flood(c, u, 'slow', BATCH,
			    (i) => `${step}.${i}:${BIG}`, postedBytes);
		}
		const w = await written(stack);
		queued = postedBytes > w - wStart;
		if (queued && bytesWhenQueued < 0)
			bytesWhenQueued = tr.bytes;
		await round(c, others, `step ${step}`);
		const open = (await c.health()).streams === streams0;
		if (queued && open)
			queuedRounds++;
		closed = !open;
	}
	assert.ok(closed, 'the trickling stream was never closed');
	assert.ok(queuedRounds >= 1, 'no round ran while messages were queued ' +
	    'for the trickler');
	const h = await c.health();
	assert.equal(h.overflows, overflows0, 'closed by the send deadline, ' +
	    'not by the queue bounds');
	assert.equal(h.streams, OTHERS);
	assert.ok(bytesWhenQueued >= 0 && tr.bytes > bytesWhenQueued,
	    `the trickler kept reading while its messages were queued ` +
	    `(${bytesWhenQueued} -> ${tr.bytes} bytes)`);
	t.diagnostic(`${postedBytes} bytes posted to the trickler, which read ` +
	    `${tr.bytes}; ${queuedRounds} rounds to the others meanwhile`);
	await round(c, others, 'after');
});
