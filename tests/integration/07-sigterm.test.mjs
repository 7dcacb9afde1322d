// SIGTERM: every open stream gets a final `retry:` field and ends; the backend
// exits with code 0. (The contract promises 2 s; the guard here is only a
// generous hang guard, not a timing assertion.)  SIGINT and SIGHUP (a
// terminal that closes) stop it the same way: SIGHUP once killed it at
// once, with no retry: for its streams and its socket file left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, postPath, runBinary } from './harness.mjs';

const T = { timeout: 60000 };

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
	test(`${sig}: streams get retry and end, backend exits 0`, T, async (t) => {
		const stack = await startStack({}, t);
		const c = stack.client();
		const u = uid('user');
		const streams = [
			await stack.subscribe(u, 'a'),
			await stack.subscribe(u, 'b'),
			await stack.subscribe(u, 'b'),
			await stack.subscribe(uid('other'), 'c'),
		];
		// Delivery still works right before the signal.
		const r = await c.postJson(postPath(u, 'b'), { data: 'last words' });
		assert.equal(r.status, 200);
		for (const s of streams.slice(1, 3))
			assert.equal((await s.nextEvent()).data, 'last words');

		const exited = stack.signalBackend(sig, 20000);
		for (const s of streams) {
			// The start's retry:, then the stop's.
			await s.waitFor(() => s.retries.length === 2,
			    { timeout: 20000, what: 'the stop\'s retry field' });
			await s.waitEnd(20000);
			assert.ok(Number.isInteger(s.retry) && s.retry >= 1000 &&
			    s.retry < 5000, `retry ${s.retry}`);
			const retryFields = s.fields.filter(([f]) => f === 'retry');
			assert.equal(retryFields.length, 2, 'one retry field each');
			assert.match(retryFields[1][1], /^\d+$/);
			assert.equal(s.events.length, 0, 'no stray event');
		}
		const exit = await exited;
		assert.equal(exit.killed, false, 'exited by itself (no SIGKILL)');
		assert.equal(exit.signal, null, `died of signal ${exit.signal}`);
		assert.equal(exit.code, 0, 'exit code');
		// Caddy now answers without a backend; the stack's after-hook
		// checks the backend log for errors and sanitizer reports.
	});
}

test('SIGTERM with no stream open: exits 0', T, async (t) => {
	const stack = await startStack({}, t);
	assert.equal((await stack.client().health()).streams, 0);
	const exit = await stack.signalBackend('SIGTERM', 20000);
	assert.deepEqual([exit.code, exit.signal, exit.killed], [0, null, false]);
});

// Started under nohup (SIGHUP ignored), SIGHUP must stay ignored: a blocked
// signal is never discarded, so waiting for it would stop the service
// nohup was asked to keep.  SIGHUP then SIGTERM, sent together: sigwait()
// takes the lowest pending first, so the log says which one stopped it.
test('SIGHUP stops it, unless it was started under nohup', T, async () => {
	const args = ['--listen', 'unix:@DIR@/beep.sock'];
	for (const [prefix, want] of [[[], 'Hangup'], [['nohup'], 'Terminated']]) {
		const r = await runBinary(args,
		    { prefix, signals: ['SIGHUP', 'SIGTERM'] });
		const what = prefix.length ? 'under nohup' : 'plain';
		assert.ok(r.sawReady, `${what}: started (${r.stderr})`);
		assert.deepEqual([r.code, r.signal], [0, null], `${what}: exit`);
		assert.match(r.stderr, new RegExp(`main: ${want}: stopping`),
		    `${what}: stopped by ${want}`);
	}
});
