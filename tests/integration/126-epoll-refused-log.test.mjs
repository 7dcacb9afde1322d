// When the kernel refuses to watch a connection (epoll_ctl fails: ENOSPC
// once fs.epoll.max_user_watches is reached, ENOMEM), it refuses every
// one after it, at the rate clients connect: a stream's connection (its
// departure is then noticed on write only) and a kept connection (closed
// after its answer) are each a line the traffic repeats at will. They are
// limited as the other such kinds are (README, Operations, Logs; test 18):
// a few lines, each saying how many were held back, and a summary of those
// after the last, so that every one is told, once. The service goes on:
// the streams get their events, the kept connections their answers.
// The refusal is injected by an LD_PRELOAD shim (epoll-faults.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startStack, toldByLines, uid } from './harness.mjs';
import { readers, round } from './faults.mjs';
import { FcgiConn } from './fcgi.mjs';
import { epollFaultEnv } from './epoll-faults.mjs';

const T = { timeout: 120000 };
const N = 40;

function shimEnv(t) {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-epoll-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	return epollFaultEnv(dir);
}

// The lines of the log matching re, for n refusals in a run that took ms:
// one a second at most (a line let through or a summary, each starting
// its second), and the summary at the stop; each counted, the counts
// adding up to n.
function assertLimited(log, re, n, ms) {
	const lines = log.filter((l) => re.test(l));
	assert.ok(lines.length >= 1 && lines.length <= Math.floor(ms / 1000) + 2,
	    `${re}: ${lines.length} lines for ${n} in ${ms} ms:\n` +
	    lines.join('\n'));
	const counted = toldByLines(lines);
	assert.equal(counted, n, `${re}:\n${lines.join('\n')}`);
	assert.ok(lines.some((l) => / more not logged in the last \d+ s: /
	    .test(l)), `${re}: no summary of those held back:\n` +
	    lines.join('\n'));
}

test('streams whose connections epoll refuses: a few lines, counted, and ' +
    'the streams get their events', T, async (t) => {
	const stack = await startStack({ env: shimEnv(t) }, t);
	const began = Date.now();
	// Two users: a user's devices are bounded (BEEP_MAX_DEVICES).
	const rs = [...await readers(stack, uid('ep'), N / 2),
	    ...await readers(stack, uid('ep'), N / 2)];
	const client = stack.client();
	await round(client, rs, 'streams epoll refused');
	// Stopped: every line it was to write (the summaries) is in.
	await stack.stop();
	assertLimited(stack.backendLog,
	    /epoll_ctl.*departures are noticed on write only/, N,
	    Date.now() - began);
});

test('kept connections epoll refuses: a few lines, counted, and each got ' +
    'its answer', T, async (t) => {
	const stack = await startStack({ caddy: false, env: shimEnv(t) }, t);
	const began = Date.now();
	const conns = Array.from({ length: N },
	    () => new FcgiConn(stack.socket));
	t.after(() => conns.forEach((c) => c.destroy()));
	await Promise.all(conns.map((c) => c.connected));
	conns.forEach((c) => c.sendWhole('GET', '/healthz', true));
	// Answered, then closed: it could not be parked.
	for (const r of await Promise.all(conns.map((c) => c.response()))) {
		assert.equal(r.status, 200, r.head);
		assert.ok(r.ended, 'answered whole');
	}
	await stack.stop();
	assertLimited(stack.backendLog,
	    /epoll_ctl.*a kept connection/, N, Date.now() - began);
});
