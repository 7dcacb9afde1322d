// Helpers shared by the fault tests (40-45): the backend's own counters and
// process figures, and a round of messages to streams that read.
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
