// Issue 13, fault: the backend is killed (SIGKILL) under load, through Caddy,
// while clients keep subscribing and senders keep posting.
//
// - While it is down, Caddy answers at once (502/503; the hang guard is the
//   only timing here) for subscribes and posts alike: nothing hangs.
// - A new backend is started on the same socket (as systemd's Restart= does);
//   every client comes back by itself and resubscribes with the last id it
//   parsed, as EventSource sends Last-Event-ID.
// - Messages accepted by the killed process and never written are lost (a
//   single node keeps them in memory): each client learns it from a `reset`
//   event at the start of its first stream on the new run, never from a
//   silent gap. Everything accepted by the new run arrives exactly once, in
//   order.
//
// What a browser does here: a 502/503 answer (or any non-200, or a 200 that
// is not text/event-stream) makes EventSource fail for good (readyState
// CLOSED, one `error` event), while a stream cut mid-way (the kill itself)
// is retried after ~3 s or the last `retry:`. So Caddy answers a subscribe
// from a bare EventSource (Accept: text/event-stream alone) with a 200
// stream that ends with `retry:` instead of its 502 (checked here; test 30
// has Chromium come back through it).
// The project's client, web/beep-signal.js, reads the stream with fetch()
// and retries 429/502/503/504 after Retry-After or a growing delay (0.5 s
// doubling to 30 s), sending the last id as Last-Event-ID; the clients here
// do the same with a fixed short delay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import {
	startStack, uid, postPath, subPath, poll, withTimeout, scaled,
	expectRefusedStream,
} from './harness.mjs';

const DEVICES = scaled(24, 6);
const RETRY_MS = 200;       // the clients' reconnection delay (EventSource: ~3 s)
const GUARD = 10000;        // hang guard for one request while the backend is down

// A client that behaves like EventSource (plus a retry after a non-200,
// see above): reconnects after RETRY_MS with the last id it parsed.
class EsClient {
	constructor(stack, user, device) {
		Object.assign(this, { stack, user, device });
		this.log = [];          // { type, data, id, run }
		this.statuses = [];     // non-200 answers while reconnecting
		this.lastId = '';
		this.current = null;    // the open stream, if any
		this.openRun = 0;       // backend run the current stream is on
		this.running = true;
		this.loop = this.run();
	}

	async run() {
		while (this.running) {
			const run = this.stack.run;
			const headers = this.lastId ? { 'Last-Event-ID': this.lastId } : {};
			let s;
			try {
				s = await this.stack.open(subPath(this.user, this.device),
				    { headers, timeout: GUARD });
			} catch (e) {
				this.statuses.push(`error: ${e.message}`);
				await delay(RETRY_MS);
				continue;
			}
			if (s.status !== 200) {
				this.statuses.push(s.status);
				await s.text(GUARD).catch(() => {});
				s.close();
				await delay(RETRY_MS);
				continue;
			}
			this.current = s;
			this.openRun = run;
			for (;;) {
				let ev;
				try {
					ev = await s.nextEvent(3600000);
				} catch {
					break;      // the stream ended
				}
				this.log.push({ type: ev.type, data: ev.data,
				    id: ev.lastEventId, run });
			}
			// The position the stream opened with counts too (an id with
			// no event sets EventSource's last event id).
			if (s.parser.resumeId)
				this.lastId = s.parser.resumeId;
			this.current = null;
			this.openRun = 0;
			s.close();
			await delay(RETRY_MS);
		}
	}

	// The id the client would resume from now.
	get resumeId() {
		return this.current?.parser.resumeId || this.lastId;
	}

	messages(run) {
		return this.log.filter((e) => e.type === 'message' &&
		    (run === undefined || e.run === run));
	}

	async stop() {
		this.running = false;
		this.current?.close();
		await this.loop;
	}
}

// Posts n, n+1, ... to one device, one at a time, until stopped; records
// every answer.
class Sender {
	constructor(client, user, device) {
		Object.assign(this, { client, user, device });
		this.answers = new Map();   // seq -> status (0: no answer)
		this.next = 0;
		this.running = true;
		this.loop = this.run();
	}

	async run() {
		while (this.running) {
			const seq = this.next++;
			let status = 0;
			try {
				const r = await this.client.postJson(
				    postPath(this.user, this.device),
				    { data: `${this.device}:${seq}` }, { timeout: GUARD });
				status = r.status;
			} catch { /* no answer: unknown */ }
			this.answers.set(seq, status);
			if (status !== 200 && status !== 202)
				await delay(RETRY_MS);
		}
	}

	accepted() {
		return [...this.answers].filter(([, st]) => st === 200 || st === 202)
		    .map(([seq]) => seq);
	}

	async stop() {
		this.running = false;
		await this.loop;
	}
}

test(`backend SIGKILLed under load behind Caddy: ${DEVICES} clients get ` +
    '502/503 at once, come back by themselves after a restart on the same ' +
    'socket, with a reset where messages were lost, never a silent gap',
{ timeout: 180000 }, async (t) => {
	const stack = await startStack({ env: {
		BEEP_KEEPALIVE: '1', BEEP_MAX_STREAMS_PER_ADDRESS: '0',
	} }, t);
	stack.run = 1;
	const u = uid('kill');
	const devices = Array.from({ length: DEVICES }, (_, i) => `d${i}`);
	const c = stack.client({ maxSockets: DEVICES + 2 });
	const clients = devices.map((d) => new EsClient(stack, u, d));
	t.after(() => Promise.all(clients.map((cl) => cl.stop())));
	await poll(async () => clients.every((cl) => cl.openRun === 1),
	    { timeout: 30000, what: 'every client subscribed' });
	const senders = devices.map((d) => new Sender(c, u, d));
	t.after(() => Promise.all(senders.map((s) => s.stop())));
	await poll(() => clients.every((cl) => cl.messages(1).length >= 3),
	    { timeout: 30000, what: 'every client received 3 messages' });

	// The kill, under load.
	const killed = await stack.signalBackend('SIGKILL');
	assert.equal(killed.signal, 'SIGKILL');
	stack.run = 2;

	// Down: every stream ends, and the front answers each request (hang
	// guard only) with 502 or 503, for subscribes, posts and /healthz.
	await poll(() => clients.every((cl) => cl.openRun !== 1),
	    { timeout: 30000, what: 'every stream of the killed run ended' });
	const probe = stack.client({ maxSockets: 1 });
	for (const r of [
		await withTimeout(probe.get(subPath(u, 'probe')), GUARD),
		await withTimeout(probe.postJson(postPath(u, 'd0'), { data: 'x' }),
		    GUARD),
		await withTimeout(probe.get('/healthz'), GUARD),
	])
		assert.ok(r.status === 502 || r.status === 503,
		    `front while the backend is down: ${r.status} ${r.text}`);
	// EventSource would take that 502 as final: it gets instead a stream
	// that tells it why and brings it back after retry: (the Caddyfile's
	// handle_errors), with the id it came with.
	await expectRefusedStream(stack, subPath(u, 'probe'), 502,
	    'backend unavailable', { front: true });
	await poll(() => clients.every((cl) => cl.statuses.some((s) =>
	    s === 502 || s === 503)), { timeout: 30000,
	    what: 'every client was answered 502/503 while reconnecting' });
	for (const cl of clients)
		assert.ok(cl.statuses.every((s) => s === 502 || s === 503),
		    `only 502/503 answers while down: ${cl.statuses}`);
	const beforeRestart = new Map(clients.map((cl) => [cl, cl.resumeId]));

	// A new run on the same socket: everyone comes back by itself.
	await stack.restartBackend();
	await poll(() => clients.every((cl) => cl.openRun === 2),
	    { timeout: 60000, what: 'every client resubscribed to the new run' });
	await poll(async () => (await c.health()).streams === DEVICES,
	    { timeout: 30000, what: `healthz.streams == ${DEVICES}` });
	await poll(() => clients.every((cl) => cl.messages(2).length >= 3),
	    { timeout: 30000, what: 'every client received 3 new messages' });
	await Promise.all(senders.map((s) => s.stop()));

	// Everything accepted by the new run arrives (exactly once, in order:
	// checked below); wait for the last of them.
	const firstNew = new Map(clients.map((cl, i) => {
		const seqs = cl.messages(2).map((e) => Number(e.data.split(':')[1]));
		return [senders[i], Math.min(...seqs)];
	}));
	await poll(() => senders.every((s, i) => {
		const got = new Set(clients[i].messages()
		    .map((e) => Number(e.data.split(':')[1])));
		return s.accepted().filter((q) => q >= firstNew.get(s))
		    .every((q) => got.has(q));
	}), { timeout: 30000, what: 'every message accepted by the new run' });

	for (const [i, cl] of clients.entries()) {
		const s = senders[i];
		const accepted = new Set(s.accepted());
		const what = `${cl.device}`;
		// The first thing on the new run, presenting an id of the killed
		// run, is a reset.
		const first2 = cl.log.find((e) => e.run === 2);
		assert.ok(beforeRestart.get(cl), `${what}: had an id to resume from`);
		assert.equal(first2?.type, 'reset', `${what}: the new run starts ` +
		    `with a reset: ${JSON.stringify(first2)}`);
		// Walk the log: no duplicate, increasing, and every accepted
		// message skipped between two received ones is excused by a
		// reset between them.
		let last = -1, resetSince = false;
		const seen = new Set();
		for (const e of cl.log) {
			if (e.type === 'reset') {
				resetSince = true;
				continue;
			}
			assert.equal(e.type, 'message', `${what}: ${JSON.stringify(e)}`);
			const [dev, q] = e.data.split(':');
			const seq = Number(q);
			assert.equal(dev, cl.device, `${what}: foreign message`);
			assert.ok(!seen.has(seq), `${what}: duplicate ${seq}`);
			assert.ok(seq > last, `${what}: ${seq} after ${last}`);
			seen.add(seq);
			if (!resetSince) {
				for (let k = last + 1; k < seq; k++)
					assert.ok(!accepted.has(k), `${what}: message ${k} ` +
					    `accepted (${s.answers.get(k)}) but skipped ` +
					    `without a reset (got ${seq} after ${last})`);
			}
			last = seq;
			resetSince = false;
		}
		// Nothing accepted after the last received is missing (the wait
		// above), and the new run lost nothing.
		for (const k of accepted)
			if (k > last)
				assert.fail(`${what}: accepted ${k} never arrived`);
	}
	await Promise.all(clients.map((cl) => cl.stop()));
	t.diagnostic(`clients answered 502/503 while down: ` +
	    `${clients.reduce((n, cl) => n + cl.statuses.length, 0)}`);
});
