// Helpers shared by the fault tests (40-45): the backend's own counters and
// process figures, a round of messages to streams that read, and the
// flooding of a stream that does not keep up (41, 42).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { Client, postPath } from './harness.mjs';

// One sample of the backend's Prometheus metrics (the ops site, loopback).
export async function metric(stack, name) {
	const c = new Client(stack.opsBase, { maxSockets: 1 });
	try {
		const r = await c.get('/metrics');
		assert.equal(r.status, 200, r.text);
		const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.text);
		assert.ok(m, `metric ${name} missing`);
		return Number(m[1]);
	} finally {
		c.close();
	}
}

// Threads, open descriptors and RSS (KiB) of a process, from /proc.
export function procFigures(pid) {
	const status = readFileSync(`/proc/${pid}/status`, 'utf8');
	const field = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm')
	    .exec(status)[1]);
	return {
		threads: field('Threads'),
		rssKib: field('VmRSS'),
		fds: readdirSync(`/proc/${pid}/fd`).length,
	};
}

// Posts one small message to each (user, device, stream) and awaits it on
// its stream: the streams that read keep receiving.
let roundNo = 0;
export async function round(client, readers, what) {
	const tag = `round-${++roundNo}`;
	await Promise.all(readers.map(async ({ user, device, stream }) => {
		const r = await client.postJson(postPath(user, device),
		    { data: `${tag}:${device}` });
		assert.equal(r.status, 200, `${what}: post to ${device}: ${r.text}`);
		const ev = await stream.nextEvent(30000);
		assert.equal(ev.data, `${tag}:${device}`, `${what}: ${device}`);
	}));
}

// Queue, replay and memory bounds raised out of the way, so that a stream
// that does not keep up is ended by the write deadline, not by an overflow
// (41, 42: healthz `overflows` stays put).
export const UNBOUNDED_QUEUES = {
	BEEP_STREAM_QUEUE: '1000000', BEEP_STREAM_QUEUE_BYTES: '1073741824',
	BEEP_REPLAY_MAX: '100000', BEEP_REPLAY_BYTES: '1073741824',
	BEEP_MAX_MESSAGE_MEMORY: '1073741824',
};

// Streams of n devices of user, o0 to o(n-1), that read: readers for
// round().
export async function readers(stack, user, n) {
	const out = [];
	for (let i = 0; i < n; i++)
		out.push({ user, device: `o${i}`,
		    stream: await stack.subscribe(user, `o${i}`) });
	return out;
}

// Bytes the backend has written to streams (counted when a write
// completes): what tells queued from written in 41 and 42.
export function written(stack) {
	return metric(stack, 'beep_stream_written_bytes_total');
}

// Posts `batch` messages to (user, device), data(i) for the i-th, each
// answered 200; returns the bytes posted. `sofar`, the bytes posted before:
// at 256 MiB the device's stream evidently never blocked.
export async function flood(client, user, device, batch, data, sofar) {
	assert.ok(sofar < 256 * 2 ** 20, 'never blocked: 256 MiB posted and ' +
	    'every byte written');
	let bytes = 0;
	for (let i = 0; i < batch; i++) {
		const d = data(i);
		const r = await client.postJson(postPath(user, device), { data: d });
		assert.equal(r.status, 200, `post to ${device}: ${r.status} ${r.text}`);
		bytes += d.length;
	}
	return bytes;
}
