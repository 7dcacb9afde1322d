// Issue 8 (3, 6), through Caddy: memory that messages hold is bounded in
// time and in total, and a stop never accepts a message it then loses.
//   - Retained messages are trimmed on time by the backend's own tick, with
//     no further activity: /healthz message_bytes falls to 0.
//   - At BEEP_MAX_MESSAGE_MEMORY the oldest delivered (retained) messages
//     are evicted first, of whichever device; when held messages fill it,
//     a POST to a device away gets 503 with Retry-After and a JSON error,
//     deliveries work again once they drain, and a POST to a device that is
//     here makes room by dropping what is held for those away.
//   - A client that comes back to a backlog over its share and reads
//     nothing (its socket never read) cannot keep the budget full until
//     BEEP_WRITE_TIMEOUT: once its stream has taken nothing for a second,
//     it is ended, and posts to a device that reads are accepted again.
//   - Nor can one that reads that backlog on steadily, catching up each
//     second (so that rule leaves it): past its share while the budget is
//     full for BEEP_CATCH_UP_SECONDS, it is ended however it reads, and
//     posts to a device that reads are accepted again; with the clock at
//     an hour the same reads keep it, until they stop.
//   - During a stop, a POST never gets 200/202 for a message then lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import {
	startStack, uid, poll, postPath, subPath, openSub, isJson, withTimeout,
} from './harness.mjs';
import { metric } from './faults.mjs';
import { withinWindow } from './windows.mjs';
import { streamingCaddyfile } from './fronts.mjs';

const T = { timeout: 60000 };
const STUCK_MS = 5000;

async function subOk(stack, u, d, id) {
	const r = await openSub(stack, subPath(u, d),
	    id ? { 'Last-Event-ID': id } : {});
	assert.equal(r.status, 200, `subscribe ${u}/${d}: ${r.status} ${r.text}`);
	await r.stream.waitFor(() => r.stream.parser.resumeId !== '',
	    { what: 'the opening id' });
	return r.stream;
}

// Subscribes, leaves, and waits until the backend noticed (grace: 202s).
async function away(stack, c, u, d) {
	const s = await subOk(stack, u, d);
	const pos = s.parser.resumeId;
	s.close();
	await poll(async () => !(await c.devices(u)).includes(d),
	    { timeout: 15000, what: `${d} noticed gone` });
	return pos;
}

// Posts data(n) for n = 0, 1, ... to u's device d, away, while each is
// held (202), until the budget is full (503): how many were held.
async function holdUntilFull(c, u, d, data) {
	for (let n = 0; ; n++) {
		const r = await c.postJson(postPath(u, d), { data: data(n) });
		if (r.status !== 202) {
			assert.equal(r.status, 503, r.text);
			return n;
		}
	}
}

test('retained messages are trimmed on time, with no further activity',
    { timeout: 300000 }, async (t) => {
	// Delivered and seen retained within the replay window: again with a
	// longer one when that took longer (a loaded machine).
	const { c, s, replay } = await withinWindow(t, 1, async (replay) => {
		const stack = await startStack({ env: {
		    BEEP_REPLAY_SECONDS: String(replay) } }, t);
		const c = stack.client();
		const u = uid('trim');
		const s = await subOk(stack, u, 'd');
		// Each message is delivered after this, and trimmed a window
		// after its delivery at the earliest.
		const t0 = performance.now();
		for (let i = 0; i < 10; i++) {
			const r = await c.postJson(postPath(u, 'd'),
			    { data: `${i}`.repeat(1000) });
			assert.equal(r.status, 200, r.text);
		}
		for (let i = 0; i < 10; i++)
			assert.equal((await s.nextEvent()).data, `${i}`.repeat(1000));
		const h = await c.health();
		if (performance.now() - t0 >= replay * 1000) {
			s.close();
			return null;
		}
		assert.ok(h.message_bytes >= 10000, JSON.stringify(h));
		return { c, s, replay };
	}, 'replay window');
	// Only /healthz from now on: the tick alone must trim them.
	await poll(async () => (await c.health()).message_bytes === 0,
	    { timeout: 10000 + replay * 1000, what: 'message_bytes back to 0' });
	s.close();
});

test('at BEEP_MAX_MESSAGE_MEMORY: retained evicted first, then 503 + ' +
    'Retry-After; later deliveries work', T, async (t) => {
	const stack = await startStack({ env: {
		BEEP_MAX_MESSAGE_MEMORY: '65536', BEEP_KEEPALIVE: '1',
	} }, t);
	const c = stack.client();
	const u = uid('budget');
	const big = (tag, i) => `${tag}${i}:`.padEnd(10000, 'x');
	// a is here: four 10 KB messages delivered, retained for replay.
	const a = await subOk(stack, u, 'a');
	const aPos = a.parser.resumeId;
	for (let i = 0; i < 4; i++) {
		const r = await c.postJson(postPath(u, 'a'), { data: big('a', i) });
		assert.equal(r.status, 200, r.text);
		assert.equal((await a.nextEvent()).data, big('a', i));
	}
	// b is away: what is posted to it is held, until the budget is full.
	const bPos = await away(stack, c, u, 'b');
	const held = [];
	let refused = null;
	for (let i = 0; i < 20 && !refused; i++) {
		const r = await c.postJson(postPath(u, 'b'), { data: big('b', i) });
		if (r.status === 202)
			held.push(big('b', i));
		else
			refused = r;
	}
	assert.ok(refused, 'a POST was refused');
	assert.equal(refused.status, 503, refused.text);
	assert.match(refused.headers['retry-after'] || '', /^\d+$/);
	assert.ok(isJson(refused));
	assert.equal(typeof refused.json().error, 'string');
	const h = await c.health();
	// Every retained message went before anything was refused.
	assert.equal(h.evicted, 4, JSON.stringify(h));
	assert.equal(h.held, held.length);
	assert.equal(h.dropped, 0);
	assert.ok(h.message_bytes <= 65536, JSON.stringify(h));
	assert.ok(held.length >= 5, `${held.length} held`);
	// a's client replaying from before its messages: they are gone.
	const a2 = await subOk(stack, u, 'a', aPos);
	assert.equal((await a2.nextEvent()).type, 'reset');
	a2.close();
	// b comes back and gets everything held, in order.
	const b = await subOk(stack, u, 'b', bPos);
	for (const want of held)
		assert.equal((await b.nextEvent()).data, want);
	// Delivered, b's messages make room: posts are accepted again.
	const r1 = await c.postJson(postPath(u, 'a'), { data: big('a', 9) });
	assert.equal(r1.status, 200, r1.text);
	assert.equal((await a.nextEvent()).data, big('a', 9));
	const r2 = await c.postJson(postPath(u, 'b'), { data: 'small' });
	assert.equal(r2.status, 200, r2.text);
	assert.equal((await b.nextEvent()).data, 'small');
	a.close();
	b.close();
});

// A message the whole budget could never hold (a body within BEEP_MAX_BODY
// packs a few bytes longer; JSON numbers jansson writes back longer) is a
// 413, not a 503 its sender would retry for ever; and it evicts nothing:
// before, every retained message of every device went first, for nothing
// (their clients came back to a reset).
test('a message longer than BEEP_MAX_MESSAGE_MEMORY once encoded: 413, ' +
    'nothing evicted', T, async (t) => {
	const stack = await startStack({ env: {
		BEEP_MAX_MESSAGE_MEMORY: '65536', BEEP_MAX_BODY: '65536',
	} }, t);
	const c = stack.client();
	const u = uid('toolong');
	const a = await subOk(stack, u, 'a');
	const aPos = a.parser.resumeId;
	const r0 = await c.postJson(postPath(u, 'a'), { data: 'kept' });
	assert.equal(r0.status, 200, r0.text);
	assert.equal((await a.nextEvent()).data, 'kept');
	const b = await subOk(stack, u, 'b');
	// 65536 bytes of body: within BEEP_MAX_BODY, over the budget packed.
	const r = await c.postForm(postPath(u, 'b'), `data=${'x'.repeat(65531)}`);
	assert.equal(r.status, 413, r.text);
	assert.ok(isJson(r));
	assert.match(r.json().error, /BEEP_MAX_MESSAGE_MEMORY/);
	const h = await c.health();
	assert.equal(h.evicted, 0, JSON.stringify(h));
	// a's client resuming from its start still gets what it was sent.
	const a2 = await subOk(stack, u, 'a', aPos);
	assert.equal((await a2.nextEvent()).data, 'kept');
	// One that fits is delivered.
	const r2 = await c.postForm(postPath(u, 'b'), `data=${'y'.repeat(60000)}`);
	assert.equal(r2.status, 200, r2.text);
	assert.equal((await b.nextEvent()).data, 'y'.repeat(60000));
	a.close();
	a2.close();
	b.close();
});

// Clients that post to devices they keep away (subscribed once, then gone:
// in grace, their messages held) cannot make every post fail: once the
// budget is full, a POST to a device whose client is here makes room by
// dropping what waits for those away (the one away longest first), whose
// clients come back to a reset; a POST to one away still gets 503.
test('at BEEP_MAX_MESSAGE_MEMORY: held messages make room for a device ' +
    'that is here', T, async (t) => {
	const stack = await startStack({ env: {
		BEEP_MAX_MESSAGE_MEMORY: '65536', BEEP_KEEPALIVE: '1',
	} }, t);
	const c = stack.client();
	const u = uid('held');
	const big = (i) => `${i}:`.padEnd(10000, 'x');
	const here = await subOk(stack, u, 'here');
	const pos = await away(stack, c, u, 'away');
	const held = await holdUntilFull(c, u, 'away', big);
	assert.ok(held >= 5, `${held} held`);
	// The client that is here gets its message.
	const r = await c.postJson(postPath(u, 'here'), { data: big('here') });
	assert.equal(r.status, 200, r.text);
	assert.equal((await here.nextEvent()).data, big('here'));
	const h = await c.health();
	assert.equal(h.dropped, held, JSON.stringify(h));
	assert.equal(h.held, 0, JSON.stringify(h));
	// The one away comes back to a reset: what it missed is gone.
	const back = await subOk(stack, u, 'away', pos);
	assert.equal((await back.nextEvent()).type, 'reset');
	back.close();
	here.close();
});

// A POST whose body is still on its way: resolves { send(rest), answer }.
function slowPost(stack, p, body) {
	const buf = Buffer.from(body);
	const half = buf.length >> 1;
	const req = http.request({
		host: '127.0.0.1', port: stack.port, method: 'POST', path: p,
		agent: false, headers: {
			'Content-Type': 'application/json',
			'Content-Length': String(buf.length),
		},
	});
	const answer = new Promise((resolve, reject) => {
		req.on('response', (res) => {
			const chunks = [];
			res.on('data', (ch) => chunks.push(ch));
			res.on('end', () => resolve({ status: res.statusCode,
			    headers: res.headers,
			    text: Buffer.concat(chunks).toString() }));
		});
		req.on('error', reject);
	});
	answer.catch(() => {});
	req.flushHeaders();
	req.write(buf.subarray(0, half));
	return { answer, send: () => req.end(buf.subarray(half)) };
}

// Behind a front that passes bodies on as they come (Caddy without
// buffer_requests), so that the backend has begun both POSTs before the stop.
test('during a stop, a POST no live stream will deliver gets 503, not ' +
    '200/202', T, async (t) => {
	const stack = await startStack({ env: { BEEP_KEEPALIVE: '1' },
	    caddyfile: streamingCaddyfile(t) }, t);
	const c = stack.client();
	const u = uid('stop');
	await away(stack, c, u, 'gone');
	const live = await subOk(stack, u, 'live');
	const before = await c.postJson(postPath(u, 'live'), { data: 'before' });
	assert.equal(before.status, 200, before.text);
	assert.equal((await live.nextEvent()).data, 'before');
	// Two POSTs reach the backend before the stop, their bodies after it.
	// Requests in progress (the live stream, this /healthz): two more
	// once both POSTs are being read.  (Threads minus idle ones would
	// also count a worker just started, not yet waiting in accept().)
	const base = await c.health();
	const toGone = slowPost(stack, postPath(u, 'gone'),
	    JSON.stringify({ data: 'to gone' }));
	const toLive = slowPost(stack, postPath(u, 'live'),
	    JSON.stringify({ data: 'to live' }));
	await poll(async () => (await c.health()).requests >= base.requests + 2,
	    { timeout: 10000, what: 'both POSTs being read by the backend' });
	const stopped = stack.signalBackend('SIGTERM');
	// The live stream is told the service stops: the registry is closed.
	await live.waitFor(() => live.retries.length === 2,
	    { what: 'the stop (its retry:, after the start\'s)' });
	toGone.send();
	toLive.send();
	for (const [what, p] of [['gone', toGone], ['live', toLive]]) {
		const r = await p.answer;
		assert.equal(r.status, 503, `${what}: ${r.status} ${r.text}`);
		assert.match(r.headers['retry-after'] || '', /^\d+$/, what);
		assert.equal(typeof JSON.parse(r.text).error, 'string', what);
	}
	await stopped;
	await live.waitEnd();
	assert.ok(!live.events.some((e) => e.data === 'to live'));
});

// The budget held by a client that never reads, through Caddy: a device
// away is held messages (its backlog to be), then comes back with its
// Last-Event-ID on a raw TCP connection that is never read, so that the
// backend's writes block once the socket buffers between it, Caddy and the
// client are full.  With more than half the budget not delivered, a POST
// to it gets 503 "device backlogged": it is past its share.  A second
// device's stream that never reads (its own user's) fills the rest of the
// budget, within its share.  A POST to a device that reads then gets 503
// "message memory full" at first; once the stuck stream has taken nothing
// for BEEP_STUCK_MS (5 s here, not the default second: the first POST
// must find it not yet stuck, and a loaded machine took more than a
// second to get there; no sooner than that after it opened), while
// further behind than its share
// counting its backlog, the next such POST ends it as if it overflowed:
// what it held is dropped first and the POST is accepted, long before
// BEEP_WRITE_TIMEOUT (an hour here) would free anything.  The second
// stream, within its share, is not ended.  The reading device's stream is
// never ended, gets the message once and in order, and the stuck client,
// coming back with the id it had, gets a reset: what it missed is gone.
test('at BEEP_MAX_MESSAGE_MEMORY: a stream that stopped reading with a ' +
    'backlog past its share is ended, and posts to a device that reads ' +
    'are accepted again', T, async (t) => {
	// The second stream's share (a quarter of the budget: two streams
	// behind share half of it) must hold what fills the budget: what each
	// of the two takes into the socket buffers (Caddy's send buffer grows
	// to tcp_wmem's maximum; the client's receive buffer, never read,
	// stays at tcp_rmem's default; the unix socket's is wmem_default), and
	// what the held messages left; the queue is beyond both shares.
	const sysctl = (f) => readFileSync(`/proc/sys/net/${f}`, 'utf8')
	    .trim().split(/\s+/).map(Number);
	const buffers = sysctl('ipv4/tcp_wmem')[2] + sysctl('ipv4/tcp_rmem')[1] +
	    sysctl('core/wmem_default')[0];
	const QUEUE = Math.max(4 * 2 ** 20, 4 * buffers), BUDGET = 2 * QUEUE;
	const stack = await startStack({ env: {
		BEEP_MAX_MESSAGE_MEMORY: String(BUDGET),
		BEEP_STREAM_QUEUE_BYTES: String(QUEUE),
		BEEP_STREAM_QUEUE: '100000',
		BEEP_REPLAY_BYTES: String(2 * BUDGET), BEEP_REPLAY_MAX: '100000',
		BEEP_REPLAY_SECONDS: '600', BEEP_GRACE_SECONDS: '600',
		BEEP_WRITE_TIMEOUT: '3600', BEEP_KEEPALIVE: '1',
		BEEP_STUCK_MS: String(STUCK_MS),
	} }, t);
	const c = stack.client();
	const u = uid('laggard');
	const big = (tag, i) => `${tag}${i}:`.padEnd(60000, 'x');
	const index = (data) => Number(data.slice(1, data.indexOf(':')));
	const here = await subOk(stack, u, 'here');
	const r0 = await c.postJson(postPath(u, 'here'), { data: 'r0' });
	assert.equal(r0.status, 200, r0.text);
	assert.equal((await here.nextEvent()).data, 'r0');
	// The stuck device's client leaves; its messages are held until the
	// budget is full.
	const pos = await away(stack, c, u, 'stuck');
	const heldCount = await holdUntilFull(c, u, 'stuck', (i) => big('s', i));
	assert.ok(heldCount * 60000 > QUEUE, `${heldCount} held`);
	// Back on a raw connection that is never read: not even Node reads
	// into its own buffer (paused before it connects).
	const streams0 = (await c.health()).streams;
	// A stream on a raw connection that is never read: not even Node
	// reads into its own buffer (paused before it connects).
	const rawSub = async (path, headers, n0) => {
		const sock = net.connect({ host: '127.0.0.1', port: stack.port });
		sock.pause();
		sock.write(`GET ${path} HTTP/1.1\r\n` +
		    `Host: 127.0.0.1:${stack.port}\r\n` +
		    `Accept: text/event-stream\r\n${headers}\r\n`);
		await poll(async () => (await c.health()).streams === n0 + 1,
		    { timeout: 10000, what: `${path} registered` });
		return sock;
	};
	const u2 = uid('pad');
	let raw, pad;
	try {
		const opened = Date.now();
		raw = await rawSub(subPath(u, 'stuck'), `Last-Event-ID: ${pos}\r\n`,
		    streams0);
		// More than half the budget is not delivered, and the stuck
		// stream is past its share: a POST to it is refused for now.
		const refused = await c.postJson(postPath(u, 'stuck'),
		    { data: 'more' });
		assert.equal(refused.status, 503, refused.text);
		assert.equal(refused.json().error, 'device backlogged');
		assert.match(refused.headers['retry-after'] || '', /^\d+$/);
		assert.equal(await metric(stack, 'beep_messages_backlogged_total'),
		    1);
		// What it took (into the socket buffers) was delivered and is
		// evicted as room is needed; posts to a second stream that never
		// reads take that room (within its share) until the budget is
		// full.
		pad = await rawSub(subPath(u2, 'pad'), '', streams0 + 1);
		let padded = 0;
		for (const size of [60000, 1000]) {
			for (;;) {
				const r = await c.postJson(postPath(u2, 'pad'),
				    { data: `p${padded}:`.padEnd(size, 'x') });
				if (r.status !== 200) {
					assert.equal(r.status, 503, r.text);
					break;
				}
				padded++;
			}
		}
		const full = await c.health();
		t.diagnostic(`${heldCount} held for the stuck device, ${padded} ` +
		    `to the second; ${JSON.stringify(full)}`);
		assert.equal(full.overflows, 0, 'not ended by its queue');
		assert.deepEqual(await c.devices(u), ['here', 'stuck'],
		    'the stuck stream is live');
		assert.ok(full.message_bytes + 60000 > BUDGET,
		    `the budget is full: ${full.message_bytes}`);
		// (1) A device that reads is refused while it stays so.
		let tries = 0;
		const first = await c.postJson(postPath(u, 'here'),
		    { data: big('r', tries++) });
		assert.equal(first.status, 503, first.text);
		assert.equal(first.json().error, 'message memory full');
		assert.ok((await c.health()).message_bytes + 60000 > BUDGET);
		// (2) Until the stuck stream is ended, each is refused; then
		// one is accepted, long before the write timeout.
		const ok = await poll(async () => {
			const data = big('r', tries++);
			const r = await c.postJson(postPath(u, 'here'), { data });
			if (r.status === 200)
				return { data, id: r.json().id };
			assert.equal(r.status, 503, r.text);
			assert.equal(r.json().error, 'message memory full');
			return false;
		}, { timeout: 15000 + STUCK_MS, interval: 100,
		    what: 'a POST to the reading device accepted' });
		// Not before BEEP_STUCK_MS: it counts from no sooner than the
		// stream opened (a lower bound, which load cannot break).
		assert.ok(Date.now() - opened >= STUCK_MS,
		    `ended ${Date.now() - opened} ms after it opened`);
		const after = await c.health();
		t.diagnostic(`accepted after ${tries - 1} refusals; ` +
		    JSON.stringify(after));
		assert.equal(after.overflows, 1, 'the stuck stream was ended');
		assert.deepEqual(await c.devices(u), ['here'],
		    'the stuck device has no live stream');
		assert.deepEqual(await c.devices(u2), ['pad'],
		    'the stream within its share is live');
		assert.ok(after.dropped > 0, 'what it held was dropped');
		assert.equal(await metric(stack,
		    'beep_stream_write_timeouts_total'), 0,
		    'not by the write timeout');
		const next = await c.postJson(postPath(u, 'here'), { data: 'r-next' });
		assert.equal(next.status, 200, next.text);
		// Delivered once, in order, and nothing that was refused.
		const got = await here.nextEvent();
		assert.deepEqual([got.data, got.lastEventId], [ok.data, ok.id]);
		const got2 = await here.nextEvent();
		assert.deepEqual([got2.data, got2.lastEventId],
		    ['r-next', next.json().id]);
		assert.equal(here.events.length, 0);
		// (3) Its stream was never ended nor restarted.
		assert.equal(here.ended, false);
		assert.equal(here.positions.length, 1);
		// The stuck connection was a 200 event stream all along.
		raw.resume();
		const head = await withTimeout(new Promise((resolve) => {
			let got = '';
			raw.on('data', (ch) => {
				got += ch.toString('latin1');
				if (got.includes('\r\n\r\n'))
					resolve(got);
			});
		}), 10000);
		assert.match(head, /^HTTP\/1\.1 200 /);
		assert.match(head, /\r\ncontent-type: text\/event-stream/i);
	} finally {
		raw?.destroy();
		pad?.destroy();
	}
	// Their threads, blocked in a write, are released by the clients
	// leaving.
	await poll(async () => (await c.health()).streams === streams0,
	    { timeout: 10000, what: 'the stuck streams closed' });
	// (4) Its client comes back with the id it had: a reset, then what
	// is still held for it, in order, then what comes next.
	const back = await subOk(stack, u, 'stuck', pos);
	const reset = await back.nextEvent();
	assert.equal(reset.type, 'reset');
	assert.equal(typeof JSON.parse(reset.data).reason, 'string');
	const last = await c.postJson(postPath(u, 'stuck'), { data: 'end' });
	assert.equal(last.status, 200, last.text);
	let prev = -1;
	for (;;) {
		const ev = await back.nextEvent();
		if (ev.data === 'end')
			break;
		assert.equal(ev.type, 'message');
		assert.ok(index(ev.data) > prev, 'in order');
		prev = index(ev.data);
	}
	back.close();
	here.close();
});

// Reads a raw connection, paused, at a steady rate: `step` bytes every
// `every` ms on average (what Node read ahead comes first: a tick is
// skipped while what was read is ahead).  { got, tail, stop(), drain(),
// ended }: stop() reads no more; drain() reads all there is, to its end.
function trickle(sock, step, every) {
	const tr = { got: 0, quota: 0, tail: '', free: false };
	tr.ended = new Promise((resolve) => sock.once('end', resolve));
	sock.on('data', (ch) => {
		tr.got += ch.length;
		tr.tail = (tr.tail + ch.toString('latin1')).slice(-16);
		if (!tr.free && tr.got >= tr.quota)
			sock.pause();
	});
	const timer = setInterval(() => {
		tr.quota += step;
		if (tr.got < tr.quota)
			sock.resume();
	}, every);
	tr.stop = () => {
		clearInterval(timer);
		sock.pause();
	};
	tr.drain = () => {
		clearInterval(timer);
		tr.free = true;
		sock.resume();
	};
	return tr;
}

// The second clock, BEEP_CATCH_UP_SECONDS, through Caddy: a device away is
// held messages (its backlog to be: nearly the whole budget), then comes
// back with its Last-Event-ID on a raw TCP connection read at a steady
// rate.  Caddy's send buffer lets the backend's writes on only when about
// a third of it (some 1.5 MB here) has drained, however slowly the client
// reads: read at 2.5 MB/s, the backend's stream takes such a batch about
// every 0.6 s, so it catches up within each second and the one-second
// stuck rule never ends it, while its backlog stays far past its share.
// A second device's stream that never reads (its own user's) takes the
// room that leaves, within its share: every 100 ms it is posted to until
// memory is full (a 503 "message memory full": a walk over the streams,
// which sees the first one past its share).  With BEEP_CATCH_UP_SECONDS
// at 2 it is ended that long after it was first seen so, although it
// read on; posts to a device that reads are then accepted.  With an hour,
// the same reads keep it for three times as long, until its client stops
// reading (then the stuck rule ends it).
const CATCH_UP = 2, WINDOW = 3 * CATCH_UP * 1000;
const READ_STEP = 256 * 1024, READ_EVERY = 100;   // ~2.5 MB/s

async function trickleStack(t, catchUp) {
	// The second stream's share (a quarter of the budget: two streams
	// behind share half of it) must hold all the first takes, which the
	// second takes as room: what fills the socket buffers (tcp_wmem's
	// maximum, doubled for what Caddy, the unix socket and the client's
	// receive buffer hold) and what it reads in the longer test (three
	// clocks and the fill before them, ~8 s here); the queue is beyond
	// both shares.
	const wmem = Number(readFileSync('/proc/sys/net/ipv4/tcp_wmem', 'utf8')
	    .trim().split(/\s+/)[2]);
	const taken = 2 * wmem +
	    (3 * CATCH_UP + 3) * READ_STEP * (1000 / READ_EVERY);
	const BUDGET = 4 * taken, QUEUE = BUDGET / 2;
	const stack = await startStack({ env: {
		BEEP_MAX_MESSAGE_MEMORY: String(BUDGET),
		BEEP_STREAM_QUEUE_BYTES: String(QUEUE),
		BEEP_STREAM_QUEUE: '100000',
		BEEP_REPLAY_BYTES: String(2 * BUDGET), BEEP_REPLAY_MAX: '100000',
		BEEP_REPLAY_SECONDS: '600', BEEP_GRACE_SECONDS: '600',
		BEEP_WRITE_TIMEOUT: '3600', BEEP_KEEPALIVE: '1',
		BEEP_CATCH_UP_SECONDS: String(catchUp),
	} }, t);
	const c = stack.client();
	const u = uid('trickle'), u2 = uid('pad');
	const big = (tag, i) => `${tag}${i}:`.padEnd(60000, 'x');
	const here = await subOk(stack, u, 'here');
	const pos = await away(stack, c, u, 'lag');
	const n = await holdUntilFull(c, u, 'lag', (i) => big('l', i));
	assert.ok(n * 60000 > BUDGET / 2, `${n} held`);
	const streams0 = (await c.health()).streams;
	// A stream on a raw connection, paused before it connects;
	// Connection: close, so that Caddy closes it once the stream ends.
	const rawSub = async (p, headers, n0) => {
		const sock = net.connect({ host: '127.0.0.1', port: stack.port });
		sock.pause();
		t.after(() => sock.destroy());
		sock.write(`GET ${p} HTTP/1.1\r\n` +
		    `Host: 127.0.0.1:${stack.port}\r\nConnection: close\r\n` +
		    `Accept: text/event-stream\r\n${headers}\r\n`);
		await poll(async () => (await c.health()).streams === n0 + 1,
		    { timeout: 10000, what: `${p} registered` });
		return sock;
	};
	const raw = await rawSub(subPath(u, 'lag'), `Last-Event-ID: ${pos}\r\n`,
	    streams0);
	// Read from before anything is seen behind.
	const tr = trickle(raw, READ_STEP, READ_EVERY);
	t.after(() => tr.stop());
	await rawSub(subPath(u2, 'pad'), '', streams0 + 1);
	// Posts to the second device until memory is full (a 503 "message
	// memory full", which walks the streams: never "device backlogged",
	// within its share), or `most` are accepted: more room than reading
	// makes in a while (one stream was ended).  Returns whether full.
	let padded = 0;
	const fill = async (most = 50) => {
		for (let i = 0; i < most; i++) {
			const r = await c.postJson(postPath(u2, 'pad'),
			    { data: big('p', padded++) });
			if (r.status !== 200) {
				assert.equal(r.status, 503, r.text);
				assert.equal(r.json().error, 'message memory full',
				    'the second stream is within its share');
				return true;
			}
		}
		return false;
	};
	assert.ok(await fill(Infinity));
	const full = await c.health();
	t.diagnostic(`budget ${BUDGET}: ${n} held for the reading device, ` +
	    `${padded - 1} to the second; ${tr.got} read; ` +
	    JSON.stringify(full));
	assert.equal(full.overflows, 0);
	assert.deepEqual(await c.devices(u), ['here', 'lag']);
	return { stack, c, u, u2, big, here, tr, fill, written: () =>
	    metric(stack, 'beep_stream_written_bytes_total') };
}

// Posts to the reading device are accepted again, and it gets them.
async function hereAccepts(x) {
	for (const tag of ['r0', 'r1']) {
		const r = await x.c.postJson(postPath(x.u, 'here'),
		    { data: x.big(tag, '') });
		assert.equal(r.status, 200, r.text);
		assert.equal((await x.here.nextEvent()).data, x.big(tag, ''));
	}
	assert.equal(x.here.ended, false);
}

test('at BEEP_MAX_MESSAGE_MEMORY: a stream past its share that reads ' +
    'steadily is ended after BEEP_CATCH_UP_SECONDS, and posts to a device ' +
    'that reads are accepted again', T, async (t) => {
	const x = await trickleStack(t, CATCH_UP);
	const read0 = x.tr.got, written0 = await x.written();
	// Posts to the second device walk the streams until one ends it
	// (within three times its clock: the budget holds no more reading).
	let walks = 0;
	await poll(async () => {
		await x.fill();
		walks++;
		return (await x.c.health()).overflows > 0;
	}, { timeout: WINDOW, interval: READ_EVERY,
	    what: 'the reading stream ended' });
	const after = await x.c.health();
	t.diagnostic(`ended after ${walks} walks; ${x.tr.got - read0} read ` +
	    `meanwhile, ${(await x.written()) - written0} written; ` +
	    JSON.stringify(after));
	assert.equal(after.overflows, 1, 'one stream ended');
	assert.ok(x.tr.got > read0, 'its client read on');
	assert.ok((await x.written()) > written0, 'its stream took on');
	assert.ok(after.dropped > 0, 'what it had not taken was dropped');
	assert.deepEqual(await x.c.devices(x.u), ['here'],
	    'the reading device has no live stream');
	assert.deepEqual(await x.c.devices(x.u2), ['pad'],
	    'the stream within its share is live');
	assert.equal(await metric(x.stack, 'beep_stream_write_timeouts_total'),
	    0, 'not by the write timeout');
	await hereAccepts(x);
	// Its client, reading on, comes to the end of its stream: Caddy ends
	// the response (its last chunk) and closes the connection.
	x.tr.drain();
	await withTimeout(x.tr.ended, 20000);
	assert.ok(x.tr.tail.endsWith('\r\n0\r\n\r\n'), JSON.stringify(x.tr.tail));
});

test('at BEEP_MAX_MESSAGE_MEMORY: with BEEP_CATCH_UP_SECONDS an hour, the ' +
    'same reads keep the stream, until they stop', T, async (t) => {
	const x = await trickleStack(t, 3600);
	const read0 = x.tr.got, written0 = await x.written();
	// For the window in which the other test's stream is ended (three
	// times its clock, from the first walk: the last post of
	// trickleStack's fill), nothing is ended, and walks go on to the end.
	const until = Date.now() + WINDOW;
	let walks = 0, late = 0;
	// Each walk posts until memory is full: reading frees room in bursts
	// (Caddy and the sockets take a few MB at a time), so the cap is far
	// past what one burst frees: 400 posts, 24 MB.
	while (Date.now() < until) {
		assert.ok(await x.fill(400), 'memory full');
		walks++;
		if (Date.now() > until - CATCH_UP * 1000)
			late++;
		const h = await x.c.health();
		assert.equal(h.overflows, 0, `not ended: ${JSON.stringify(h)}`);
		await delay(READ_EVERY);
	}
	t.diagnostic(`${walks} walks, ${late} in the last ${CATCH_UP} s; ` +
	    `${x.tr.got - read0} read, ${(await x.written()) - written0} ` +
	    `written`);
	assert.ok(late > 0, 'walks went on to the end');
	assert.ok(x.tr.got > read0, 'its client read on');
	assert.ok((await x.written()) > written0, 'its stream took on');
	assert.deepEqual(await x.c.devices(x.u), ['here', 'lag'],
	    'the reading stream is live');
	// Its client stops reading: the stuck rule ends it.
	x.tr.stop();
	await poll(async () => {
		await x.fill();
		return (await x.c.health()).overflows > 0;
	}, { timeout: 20000, interval: READ_EVERY,
	    what: 'the stream that stopped reading ended' });
	assert.equal((await x.c.health()).overflows, 1);
	assert.deepEqual(await x.c.devices(x.u), ['here']);
	assert.deepEqual(await x.c.devices(x.u2), ['pad']);
	await hereAccepts(x);
});
