// Issue 14: kept connections are parked between requests (but not in a
// cluster, where a request may wait for Redis). A front that
// keeps its FastCGI connections (nginx, lighttpd) holds no worker thread
// per idle connection: each waits in one epoll set, and one worker at a
// time waits for their next requests. These tests speak FastCGI straight
// to the backend's socket with FCGI_KEEP_CONN, as nginx does, and check
// that parking costs no request its answer: many idle kept connections
// hold no thread each and all serve again; one whose request comes slowly,
// or which becomes a stream, does not hold up the others parked; a stop
// closes them before the process ends; BEEP_IDLE_TIMEOUT closes the idle
// ones and no busy one; in a cluster, a request waiting for Redis holds up
// no other kept connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startStack, startRedis, uid, poll } from './harness.mjs';
import { procFigures } from './faults.mjs';
import {
	KeptConn as Kept, record, beginRecord, STDIN,
} from './fcgi.mjs';

const MIN_IDLE = 2;
const T = { timeout: 120000 };

const statusOf = (text) => Number(/^Status: (\d+)/m.exec(text)?.[1] ?? 200);

// The backend's /healthz, on a connection of its own.
async function fetchStatus(stack) {
	const [c] = await Kept.open(stack.socket, 1);
	const text = await c.ask('GET', '/healthz');
	c.destroy();
	return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
}

// A stack with BEEP_READ_TIMEOUT readTimeout (s), and n kept connections
// served once and parked: the workers that served them are back waiting
// (in accept(), or one for the parked connections), bar the one that
// serves the status request.
async function parked(t, n, readTimeout) {
	const stack = await startStack({ caddy: false, env: {
		BEEP_MIN_IDLE: String(MIN_IDLE),
		BEEP_READ_TIMEOUT: String(readTimeout), BEEP_LOG_LEVEL: 'debug',
	} }, t);
	const conns = await Kept.open(stack.socket, n);
	for (const c of conns)
		assert.equal(statusOf(await c.ask('GET', '/healthz')), 200);
	await poll(async () => {
		const s = await fetchStatus(stack);
		return s.threads - s.idle_threads === 1;
	}, { timeout: 20000, what: 'every other worker waiting' });
	return { stack, conns };
}

test('idle kept connections hold no thread each, and all serve again', T,
    async (t) => {
	const N = 64;
	const stack = await startStack({ caddy: false, env: {
		BEEP_MIN_IDLE: String(MIN_IDLE),
	} }, t);
	const pid = stack.backend.pid;
	const before = procFigures(pid);
	const conns = await Kept.open(stack.socket, N);
	// One request each, at once: each connection is then kept, idle.
	for (const a of await Promise.all(conns.map((c) =>
	    c.ask('GET', '/healthz'))))
		assert.equal(statusOf(a), 200, a);
	// The workers that served them end or wait; none stays per connection
	// (a thread each would be `before + N`).
	const idle = await poll(() => {
		const f = procFigures(pid);
		return f.threads <= before.threads + 2 * MIN_IDLE + 1 ? f : null;
	}, { timeout: 20000, interval: 100, what: 'threads back' })
	    .catch(() => procFigures(pid));
	t.diagnostic(`threads: ${before.threads} before, ${idle.threads} with ` +
	    `${N} idle kept connections`);
	assert.ok(idle.threads <= before.threads + 2 * MIN_IDLE + 1,
	    `threads ${before.threads} -> ${idle.threads} for ${N} idle ` +
	    'kept connections');
	// Every one serves its next request, twice over, all at once.
	for (let round = 0; round < 2; round++)
		for (const a of await Promise.all(conns.map((c, i) =>
		    c.ask('GET', `/user/${uid('k')}-${i}/devices`))))
			assert.equal(statusOf(a), 200, a);
	for (const c of conns)
		c.destroy();
	await poll(() => procFigures(pid).fds <= before.fds,
	    { timeout: 20000, interval: 100, what: 'connections closed' });
});

test('a kept connection whose request comes slowly does not hold up the ' +
    'others parked', T, async (t) => {
	// No read deadline within the test: only another worker serves b.
	// More slow ones than workers wait in accept() (2 * MIN_IDLE at
	// most): the watcher's turn of one of those to the parked ones, once a
	// second, cannot stand in for the worker started for them.
	const { stack, conns } = await parked(t, 2 * MIN_IDLE + 5, 600);
	const slow = conns.slice(0, -1), b = conns.at(-1);
	// Half of each slow one's next request: a worker that takes one blocks
	// in its read while b, parked, would have nobody waiting for it. One
	// worker waits for the parked connections, and one may be on its way
	// back (the status request's): without a worker started for them,
	// the slow ones would take every worker, and b's request would wait
	// for ever.
	const whole = Kept.request('POST', `/user/${uid('slow')}/device/d`,
	    '{"data":"x"}');
	const cut = 20;
	for (const c of slow)
		c.write(whole.subarray(0, cut));
	// b is served while the slow requests are still coming.
	assert.equal(statusOf(await b.ask('GET', '/healthz')), 200);
	for (const c of slow)
		assert.equal(c.answers.length, 1, 'answered before its request came');
	t.diagnostic('workers started for the parked ones: ' +
	    stack.backendLog.filter((l) =>
		/parked connections uncovered: a worker more/.test(l)).length);
	// The rest of each slow request: answered too (404: nobody subscribed).
	for (const c of slow) {
		c.write(whole.subarray(cut));
		await c.until(() => c.answers.length === 2, 'answered');
		assert.equal(statusOf(c.answers[1]), 404, c.answers[1]);
	}
	for (const c of conns)
		c.destroy();
});

// A parked connection's request is not looked at before it is read: the
// worker that takes it, leaving the others with nobody waiting, judges
// what its first read brings (server_judge()). A part only: its read
// deadline runs from there, and the others get a worker.
test('a kept connection whose request stops coming is cut at ' +
    'BEEP_READ_TIMEOUT, and the others parked are served', T, async (t) => {
	const { stack, conns } = await parked(t, 3, 1);
	const [a, ...others] = conns;
	// Its parameters begun, never ended.
	a.write(Kept.request('POST', `/user/${uid('cut')}/device/d`,
	    '{"data":"x"}').subarray(0, 20));
	for (const c of others)
		assert.equal(statusOf(await c.ask('GET', '/healthz')), 200);
	await a.until(() => a.closed, 'closed at its read deadline');
	assert.equal(a.answers.length, 1, 'no answer to the part');
	await poll(() => stack.backendLog.some((l) =>
	    /request not read within BEEP_READ_TIMEOUT \(1s\): connection closed/
		.test(l)), { what: 'the read deadline in the log' });
	for (const c of others)
		assert.equal(statusOf(await c.ask('GET', '/healthz')), 200);
	for (const c of conns)
		c.destroy();
});

// What a kept connection's first read brings is judged whole only at its
// own body's end (server_judge()). A first read that ends at the empty
// body of another id (multiplexed with it, its BEGIN_REQUEST before it),
// or inside the header of its own end, or short of the end of a body
// larger than libfcgi's 8 KiB buffer, leaves its read deadline armed:
// each is cut at BEEP_READ_TIMEOUT (a worker that read on with no
// deadline would hold it for ever), and the others parked are served.
test('a kept connection\'s request whose first read only looks whole is ' +
    'cut at BEEP_READ_TIMEOUT, and the others parked are served', T,
async (t) => {
	const { stack, conns } = await parked(t, 4, 1);
	const [b, ...cut] = conns;
	const get = Kept.request('GET', '/healthz');
	const end = record(STDIN, 1);
	const post = Kept.request('POST', `/user/${uid('big')}/device/d`,
	    JSON.stringify({ data: 'x'.repeat(10000) }));
	const parts = [
		Buffer.concat([get.subarray(0, get.length - end.length),
			beginRecord(2, true), record(STDIN, 2)]),
		get.subarray(0, get.length - 4),
		post.subarray(0, post.length - end.length),
	];
	cut.forEach((c, i) => c.write(parts[i]));
	for (let i = 0; i < 3; i++)
		assert.equal(statusOf(await b.ask('GET', '/healthz')), 200);
	for (const [i, c] of cut.entries()) {
		await c.until(() => c.closed, `part ${i} closed at its deadline`);
		// Nothing served: at most the 408 of a request cut short.
		for (const a of c.answers.slice(1))
			assert.ok(a === '' || statusOf(a) === 408, `part ${i}: ${a}`);
	}
	assert.ok(stack.backendLog.some((l) =>
	    /request not read within BEEP_READ_TIMEOUT \(1s\)/.test(l)));
	assert.equal(statusOf(await b.ask('GET', '/healthz')), 200);
	for (const c of conns)
		c.destroy();
});

test('a kept connection that becomes a stream does not hold up the others ' +
    'parked', T, async (t) => {
	const stack = await startStack({ caddy: false, env: {
		BEEP_MIN_IDLE: String(MIN_IDLE),
	} }, t);
	const u = uid('kstream');
	const [a, b] = await Kept.open(stack.socket, 2);
	assert.equal(statusOf(await a.ask('GET', '/healthz')), 200);
	assert.equal(statusOf(await b.ask('GET', '/healthz')), 200);
	// a's next request is a stream: its worker stays with it.
	a.write(Kept.request('GET', `/subscribe/${u}/device/d`));
	await a.until(() => /\r\n\r\n/.test(a.out), 'stream opened');
	// b, parked meanwhile, is served, and its message reaches a's stream.
	const r = await b.ask('POST', `/user/${u}/device/d`, '{"data":"hi"}');
	assert.equal(statusOf(r), 200, r);
	await a.until(() => /data: hi/.test(a.out), 'event on the stream');
	a.destroy();
	b.destroy();
});

test('a stop closes parked connections, and exits 0', T, async (t) => {
	const stack = await startStack({ caddy: false, env: {
		BEEP_MIN_IDLE: String(MIN_IDLE), BEEP_READ_TIMEOUT: '600',
	} }, t);
	const conns = await Kept.open(stack.socket, 4);
	for (const c of conns)
		assert.equal(statusOf(await c.ask('GET', '/healthz')), 200);
	// A POST whose body is still coming keeps the stop waiting (up to its
	// 2 s), so that the process does not end, closing everything, before
	// the parked connections are closed by the stop itself.
	const [slow] = await Kept.open(stack.socket, 1);
	const whole = Kept.request('POST', `/user/${uid('stop')}/device/d`,
	    '{"data":"x"}');
	slow.write(whole.subarray(0, whole.length - 16));
	await poll(async () => (await fetchStatus(stack)).requests >= 2,
	    { timeout: 20000, what: 'the POST being read' });
	process.kill(stack.backend.pid, 'SIGTERM');
	for (const c of conns)
		await c.until(() => c.closed, 'closed at the stop');
	assert.equal(stack.backend.exitInfo, null,
	    'the parked connections closed before the process ended');
	slow.write(whole.subarray(whole.length - 16));
	await slow.until(() => slow.answers.length === 1 || slow.closed,
	    'the POST finished');
	const exit = await stack.signalBackend('SIGTERM');
	assert.equal(stack.backendExit.code, 0, JSON.stringify(exit));
});

// The idle limit of parked connections is a sweep of the oldest, once a
// second: it closes each idle one, however many, and no busy one.
test('BEEP_IDLE_TIMEOUT closes the parked connections idle that long, ' +
    'none busy', T, async (t) => {
	const IDLE = 2; // s; the busy connection asks every 200 ms
	const stack = await startStack({ caddy: false, env: {
		BEEP_MIN_IDLE: String(MIN_IDLE), BEEP_IDLE_TIMEOUT: String(IDLE),
	} }, t);
	const idle = await Kept.open(stack.socket, 3);
	const [busy] = await Kept.open(stack.socket, 1);
	t.after(() => [...idle, busy].forEach((c) => c.destroy()));
	for (const c of idle)
		assert.equal(statusOf(await c.ask('GET', '/healthz')), 200);
	// Parked after the idle ones, again and again, until they are closed.
	let asked = 0;
	const closed = Promise.all(idle.map((c) =>
	    c.until(() => c.closed, 'the idle connection closed')));
	let done = false;
	closed.then(() => { done = true; }, () => { done = true; });
	while (!done) {
		assert.equal(statusOf(await busy.ask('GET', '/healthz')), 200);
		asked++;
		await new Promise((r) => setTimeout(r, 200));
	}
	await closed;
	t.diagnostic(`the busy connection asked ${asked} times meanwhile`);
	assert.ok(asked >= 2, `asked ${asked} times`);
	assert.equal(busy.closed, false, 'the busy connection was closed');
	assert.equal(statusOf(await busy.ask('GET', '/healthz')), 200);
});

test('in a cluster, a request waiting for Redis holds up no other kept ' +
    'connection', T, async (t) => {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-kept-'));
	const redis = await startRedis(dir);
	let stopped = false;
	t.after(async () => {
		if (stopped)
			process.kill(redis.child.pid, 'SIGCONT');
		await redis.stop();
		rmSync(dir, { recursive: true, force: true });
	});
	const stack = await startStack({ caddy: false, env: {
		BEEP_MIN_IDLE: String(MIN_IDLE), BEEP_REDIS_URL: redis.url,
		BEEP_REDIS_TIMEOUT: '20000',
	} }, t);
	const [a, b] = await Kept.open(stack.socket, 2);
	assert.equal(statusOf(await a.ask('GET', '/healthz')), 200);
	assert.equal(statusOf(await b.ask('GET', '/healthz')), 200);
	// The node has reached Redis (until then a POST gets 503 at once, not
	// a wait: a slow start on a loaded machine made a answer early).
	await poll(async () => statusOf(await b.ask('GET', '/readyz')) === 200,
	    { what: 'the node ready, Redis reached' });
	// Redis hangs: a POST on a waits for it (BEEP_REDIS_TIMEOUT).
	process.kill(redis.child.pid, 'SIGSTOP');
	stopped = true;
	a.write(Kept.request('POST', `/user/${uid('cl')}/device/d`,
	    '{"data":"x"}'));
	// b's request, sent after it, is answered while a waits.
	assert.equal(statusOf(await b.ask('GET', '/healthz')), 200);
	assert.equal(a.answers.length, 1, 'a answered while Redis hung');
	process.kill(redis.child.pid, 'SIGCONT');
	stopped = false;
	await a.until(() => a.answers.length === 2, 'a answered');
	a.destroy();
	b.destroy();
});
