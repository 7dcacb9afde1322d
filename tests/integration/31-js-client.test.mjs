// web/beep-signal.js, the browser client, run in Node (which has the same
// fetch, streams and TextDecoder) against the real backend behind Caddy,
// and against a stub server for stream endings the service does not make
// on demand:
//  - events by name and "message", exact JSON data, meta {id, from, event};
//  - send() resolves {id, held}, rejects with the service's error;
//  - reconnect with the last id: nothing lost, nothing twice;
//  - a reset event when the id is unknown;
//  - 503 (the service is full) is retried after Retry-After and recovers;
//    400 closes for good with the reason;
//  - JWT: the token goes in Authorization (never the URL), the sender is
//    stamped, /ice-servers names the verified user and needs the token;
//  - stub: an id:-only line sets the id sent on reconnect; `replaced` closes
//    for good with the reason, without reconnecting; retry: is obeyed; a
//    silent stream is reopened after idleTimeout; nothing is delivered
//    after close() or `replaced`, even from the same chunk; Retry-After
//    is waited with jitter; a POST or a stream's head never answered is
//    given up after `timeout` (and retried) and close() ends requests in
//    flight; the browser's "online" event reconnects at once; a keepalive
//    send (a page's last) does not wait behind the device's queue; a 200
//    that is not an event stream is retried and its connection let go;
//    reconnect() while a refusal is read goes again at once; a send made
//    or failing while offline (navigator.onLine false) waits for the
//    "online" event, up to offlineWait, in order, and close() ends the
//    wait; a Retry-After past what sendWait leaves fails a send at once;
//  - through a front that loses requests (a network down while the
//    browser says online): a send goes on within sendWait, past three
//    attempts, and never past it; one whose answer was lost is retried
//    and delivered once, under its first id (its idempotency key), on
//    one node and through another node of a cluster; 4xx is not retried.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { startStack, startCluster, CLUSTER_QUICK, poll, sid, withTimeout,
    skipReason } from './harness.mjs';
import { mint, claims } from './jwt.mjs';
import {
	connect, EventStreamParser, SignalError,
} from '../../web/beep-signal.js';
import { compareWithReference } from './sse-reference.mjs';

// Skipped under the sanitizers (the Makefile's SAN_SKIP): its subject is
// beep-signal.js.
const skip = skipReason(import.meta.url);
const T = { timeout: 40000, skip };

// Resolves with the first event `name` of sig: [args...].
const once = (sig, name, pred = () => true) => new Promise((resolve) => {
	const off = sig.on(name, (...args) => {
		if (pred(...args)) { off(); resolve(args); }
	});
});
const opened = (sig) => sig.state === 'open' ? Promise.resolve() :
    once(sig, 'state', (s) => s === 'open');
const closed = (sig) => sig.state === 'closed' ?
    Promise.resolve([sig.state, {}]) : once(sig, 'state', (s) => s === 'closed');

describe('open mode', { skip }, () => {
	let stack;
	const sigs = [];
	const open = (o) => { const s = connect({ base: stack.base, ...o }); sigs.push(s); return s; };
	before(async () => {
		stack = await startStack({ env: { BEEP_MAX_ID: '32' } });
	});
	after(async () => {
		for (const s of sigs)
			s.close();
		await stack.stopAndCheck();
	});

	test('events, data, meta, send, devices, iceServers', T, async () => {
		const u = sid();
		const sig = open({ user: u, device: 'd1' });
		const states = [];
		sig.on('state', (s) => states.push(s));
		await opened(sig);
		assert.deepEqual(states, ['connecting', 'open']);
		assert.deepEqual(await sig.devices(u), ['d1']);
		assert.deepEqual(await sig.iceServers(), []);

		const got = once(sig, 'offer');
		const r = await sig.send(u, 'd1', { type: 'offer', sdp: 'v=0\r\n' },
		    { event: 'offer' });
		assert.match(r.id, /^\d+-\d+$/);
		assert.equal(r.held, false);
		const [data, meta] = await got;
		assert.deepEqual(data, { type: 'offer', sdp: 'v=0\r\n' });
		assert.deepEqual(meta, { id: r.id, from: null, event: 'offer' });

		// A string that looks like JSON stays a string (envelope).
		const msg = once(sig, 'message');
		await sig.send(u, 'd1', '123');
		assert.equal((await msg)[0], '123');

		await assert.rejects(sig.send(u, 'nope', 'x'),
		    (e) => e.status === 404 && /device connection not found/.test(e.message));
		await assert.rejects(sig.send(u, 'd1', ''), (e) => e.status === 400);
	});

	test('reconnects with the last id: nothing lost, nothing twice', T, async () => {
		const u = sid();
		const sig = open({ user: u, device: 'd' });
		const seen = [];
		sig.on('n', (d) => seen.push(d));
		await opened(sig);
		await sig.send(u, 'd', 1, { event: 'n' });
		await poll(() => seen.length === 1, { what: 'first event' });
		sig.reconnect();
		await once(sig, 'state', (s) => s === 'connecting');
		// Posted while it is away (held or replayed), then after.
		await sig.send(u, 'd', 2, { event: 'n' });
		await opened(sig);
		await sig.send(u, 'd', 3, { event: 'n' });
		await poll(() => seen.length >= 3, { what: 'three events' });
		assert.deepEqual(seen, [1, 2, 3]);
	});

	test('an unknown last id starts with reset', T, async () => {
		const sig = open({ user: sid(), device: 'd', lastEventId: '1-1' });
		const [reason, meta] = await once(sig, 'reset');
		assert.equal(typeof reason, 'string');
		assert.match(meta.id, /^\d+-\d+$/);
	});

	test('400 closes for good, with the reason', T, async () => {
		const sig = open({ user: 'x'.repeat(33), device: 'd' });
		const [, info] = await closed(sig);
		assert.equal(info.status, 400);
		assert.match(info.reason, /ids must be/);
	});
});

describe('a full service (BEEP_MAX_STREAMS=1)', { skip }, () => {
	let stack;
	const sigs = [];
	before(async () => {
		// Keepalive 1 s: Caddy lets the backend see a departure soon.
		stack = await startStack({ env: { BEEP_MAX_STREAMS: '1',
		    BEEP_KEEPALIVE: '1' } });
	});
	after(async () => {
		for (const s of sigs)
			s.close();
		await stack.stopAndCheck();
	});

	test('503 is retried after Retry-After and recovers', T, async () => {
		const first = connect({ base: stack.base, user: sid(), device: 'd' });
		sigs.push(first);
		await opened(first);
		const second = connect({ base: stack.base, user: sid(), device: 'd' });
		sigs.push(second);
		const [err] = await once(second, 'error');
		assert.equal(err.status, 503);
		assert.equal(err.retryAfterMs, 5000);
		assert.equal(second.state, 'connecting');
		first.close();
		await withTimeout(opened(second), 25000);
	});
});

describe('JWT', { skip }, () => {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const TURN_SECRET = crypto.randomBytes(32).toString('hex');
	const token = (sub) => mint(claims(sub), { key: SECRET });
	let stack;
	const sigs = [];
	before(async () => {
		stack = await startStack({ env: { BEEP_AUTH: 'jwt',
		    BEEP_JWT_SECRET: SECRET, BEEP_JWT_QUERY: '0',
		    BEEP_TURN_URLS: 'stun:127.0.0.1:3478,turn:127.0.0.1:3478',
		    BEEP_TURN_SECRET: TURN_SECRET } });
	});
	after(async () => {
		for (const s of sigs)
			s.close();
		await stack.stopAndCheck();
	});

	test('token in Authorization; sender stamped; ice for the user', T, async () => {
		const a = sid(), b = sid();
		// A function: asked before every request (a fresh token).
		const sa = connect({ base: stack.base, user: a, device: 'x',
		    token: () => token(a) });
		const sb = connect({ base: stack.base, user: b, device: 'y',
		    token: token(b) });
		sigs.push(sa, sb);
		await opened(sa);
		await opened(sb);
		const got = once(sb, 'hello');
		await sa.send(b, 'y', { hi: 1 }, { event: 'hello' });
		const [data, meta] = await got;
		assert.deepEqual(data, { hi: 1 });
		assert.deepEqual(meta.from, { user: a, device: null });

		const ice = await sa.iceServers();
		assert.deepEqual(ice[0], { urls: ['stun:127.0.0.1:3478'] });
		// ?user= (sent by the client) does not choose the user here.
		assert.match(ice[1].username, new RegExp(`^\\d+:${a}$`));
		assert.equal(ice[1].credential, crypto.createHmac('sha1', TURN_SECRET)
		    .update(ice[1].username).digest('base64'));
		const r = await fetch(`${stack.base}/ice-servers?user=mallory`);
		assert.equal(r.status, 401);
	});

	test('no token: closed, in words', T, async () => {
		const sig = connect({ base: stack.base, user: sid(), device: 'd' });
		sigs.push(sig);
		const [, info] = await closed(sig);
		assert.equal(info.status, 401);
		assert.match(info.reason, /authentication required/);
	});
});

describe('stream endings (stub server)', { skip }, () => {
	let server, base;
	const requests = [];
	let script = () => {};
	before(async () => {
		server = http.createServer((req, res) => {
			requests.push({ url: req.url, headers: req.headers });
			script(req, res, requests.length);
		});
		await new Promise((r) => server.listen(0, '127.0.0.1', r));
		base = `http://127.0.0.1:${server.address().port}`;
	});
	after(async () => {
		server.closeAllConnections();
		await new Promise((r) => server.close(r));
	});
	const sse = (res, text, end = true) => {
		res.writeHead(200, { 'Content-Type': 'text/event-stream' });
		res.write(text);
		if (end)
			res.end();
	};
	// Records the delays the client asks of setTimeout, with Math.random
	// fixed at 0.5 so that they are exact (1 s of Retry-After is 1.5 s);
	// restore() puts both back.
	const recordDelays = () => {
		const delays = [];
		const { setTimeout: realTimeout } = globalThis;
		const realRandom = Math.random;
		globalThis.setTimeout = (fn, ms, ...args) => {
			delays.push(ms);
			return realTimeout(fn, ms, ...args);
		};
		Math.random = () => 0.5;
		return {
			delays,
			restore() {
				globalThis.setTimeout = realTimeout;
				Math.random = realRandom;
			},
		};
	};

	test('an id:-only line sets the id sent on reconnect; retry: obeyed', T, async () => {
		requests.length = 0;
		script = (req, res, n) => {
			if (n === 1)
				sse(res, ': hi\n\nretry: 50\nid: 7-3\n\n');
			else
				sse(res, ': again\n\n', false);
		};
		const sig = connect({ base, user: 'u', device: 'd' });
		try {
			await poll(() => requests.length >= 2, { what: 'a reconnect' });
			assert.equal(requests[0].headers['last-event-id'], undefined);
			assert.equal(requests[1].headers['last-event-id'], '7-3');
			assert.equal(requests[1].url, '/subscribe/u/device/d?envelope=1');
		} finally {
			sig.close();
		}
	});

	test('the opening position sets the id and is not passed on', T,
	    async () => {
		requests.length = 0;
		script = (req, res, n) => {
			if (n === 1)
				sse(res, ': hi\n\nretry: 50\n\n' +
				    'id: 5-1\nevent: position\ndata: \n\n');
			else
				sse(res, ': again\n\n', false);
		};
		const sig = connect({ base, user: 'u', device: 'd' });
		const got = [];
		sig.on('position', (d) => got.push(d));
		try {
			await poll(() => requests.length >= 2, { what: 'a reconnect' });
			assert.equal(requests[1].headers['last-event-id'], '5-1');
			assert.deepEqual(got, []);
		} finally {
			sig.close();
		}
	});

	// An EventSource keeps its last event id across connections (WHATWG:
	// the buffer "does not get reset"; Chromium and Firefox start each
	// connection's parser with it): an event without an id field, as the
	// first of a stream (a front's or proxy's own, a newer service's),
	// leaves it as it was. The client started each stream's parser
	// afresh and took that event's empty id for its own, so that it came
	// back with no Last-Event-ID: afresh, past what its last stream took
	// meanwhile, untold.
	test('an event without an id keeps the id of the stream before', T,
	    async () => {
		requests.length = 0;
		script = (req, res, n) => {
			if (n === 1)
				sse(res, 'retry: 50\n' +
				    'id: 6-1\nevent: position\ndata: \n\n');
			else if (n === 2)
				sse(res, 'retry: 50\nevent: note\ndata: x\n\n');
			else
				sse(res, ': again\n\n', false);
		};
		const sig = connect({ base, user: 'u', device: 'd' });
		const notes = [];
		sig.on('note', (d, meta) => notes.push([d, meta.id]));
		try {
			await poll(() => requests.length >= 3,
			    { what: 'two reconnects' });
			assert.equal(requests[1].headers['last-event-id'], '6-1');
			assert.deepEqual(notes, [['x', '6-1']]);
			assert.equal(requests[2].headers['last-event-id'], '6-1');
			assert.equal(sig.lastEventId, '6-1');
		} finally {
			sig.close();
		}
	});

	// A token function's own AbortError (a refresh whose fetch the app
	// aborts on its own timer, or with a controller already aborted) is
	// a failure like any other: the client took it for its own abort
	// (reconnect()) and went again at once, with no backoff and no
	// `error`: a request storm to the refresh endpoint, and with a
	// function that rejects at once a loop of promise jobs only, which
	// hangs the page. Closed at the third call, so that the test ends on
	// HEAD too.
	test('a token function\'s AbortError waits the backoff, is told', T,
	    async () => {
		const timing = recordDelays();
		const { delays } = timing;
		let calls = 0, sig;
		const errors = [];
		try {
			sig = connect({ base, user: 'u', device: 'd',
			    token: () => {
				if (++calls === 3)
					sig.close();
				return Promise.reject(new DOMException(
				    'refresh aborted', 'AbortError'));
			    } });
			sig.on('error', (e) => errors.push(e.message));
			await closed(sig);
			assert.equal(calls, 3);
			assert.deepEqual(errors, ['refresh aborted',
			    'refresh aborted']);
			// The backoff's first two steps (Math.random fixed).
			assert.ok(delays.includes(500) && delays.includes(1000),
			    `delays: ${delays}`);
		} finally {
			timing.restore();
			sig?.close();
		}
	});

	// The id kept for the next client of the tab (sessionStorage) was
	// kept after each chunk of the stream: a listener that closes its
	// client and connects the device again at once (to change its token,
	// say) had its new client take the id kept before that chunk, and
	// the event it was handling came again: delivered twice.
	test('close() in a listener keeps the id delivered for the next ' +
	    'connect()', T, async () => {
		const store = new Map();
		globalThis.sessionStorage = {
			getItem: (k) => store.get(k) ?? null,
			setItem: (k, v) => store.set(k, String(v)),
			removeItem: (k) => store.delete(k),
		};
		requests.length = 0;
		let first;
		script = (req, res, n) => {
			if (n === 1) {
				first = res;
				sse(res, 'id: 1-0\nevent: position\ndata: \n\n', false);
			} else {
				sse(res, ': again\n\n', false);
			}
		};
		const sig = connect({ base, user: 'u', device: 'd' });
		let next = null;
		sig.on('hangup', () => {
			sig.close();
			next = connect({ base, user: 'u', device: 'd' });
		});
		try {
			await poll(() => sig.lastEventId === '1-0',
			    { what: 'the position' });
			first.write('id: 1-1\nevent: hangup\ndata: 1\n\n');
			await poll(() => requests.length >= 2,
			    { what: 'the next client\'s stream' });
			assert.equal(requests[1].headers['last-event-id'], '1-1');
		} finally {
			sig.close();
			next?.close();
			delete globalThis.sessionStorage;
		}
	});

	test('a refusal whose body stalls is given up after timeout', T,
	    async () => {
		requests.length = 0;
		script = (req, res, n) => {
			if (n === 1) {
				// The head, then nothing: a proxy that stalls.
				res.writeHead(503, { 'Content-Type': 'application/json',
				    'Retry-After': '1' });
				res.write('{"err');
			} else {
				sse(res, ': again\n\n', false);
			}
		};
		const sig = connect({ base, user: 'u', device: 'd', timeout: 300 });
		try {
			const [err] = await once(sig, 'error');
			assert.match(err.message, /no answer within 300 ms/);
			await opened(sig);
			assert.equal(requests.length, 2);
		} finally {
			sig.close();
		}
	});

	test('replaced: closed with the reason, no reconnect', T, async () => {
		requests.length = 0;
		script = (req, res) => sse(res, 'id: 9-1\n\nretry: 100\n' +
		    'event: replaced\ndata: {"reason":"a newer stream of this device"}\n\n');
		const sig = connect({ base, user: 'u', device: 'd' });
		const [, info] = await closed(sig);
		assert.equal(info.reason, 'a newer stream of this device');
		assert.equal(info.replaced, true);
		// Well past retry: still one request.
		await new Promise((r) => setTimeout(r, 400));
		assert.equal(requests.length, 1);
	});

	test('nothing is delivered after close() or replaced, even in the same ' +
	    'chunk', T, async () => {
		// One write: the three events reach the parser together.
		script = (req, res) => sse(res, 'id: 1-1\nevent: hangup\ndata: 1\n\n' +
		    'id: 1-2\nevent: call\ndata: 2\n\n', false);
		const sig = connect({ base, user: 'u', device: 'd' });
		const got = [];
		sig.on('hangup', (d) => { got.push(['hangup', d]); sig.close(); });
		sig.on('call', (d) => got.push(['call', d]));
		// close() runs inside the parser's loop over the chunk: what
		// awaits "closed" goes on after that loop is over.
		await closed(sig);
		assert.deepEqual(got, [['hangup', 1]]);
		assert.equal(sig.lastEventId, '1-1');

		script = (req, res) => sse(res, 'id: 2-1\nevent: replaced\ndata: {}\n\n' +
		    'id: 2-2\nevent: call\ndata: 3\n\n', false);
		const other = connect({ base, user: 'u', device: 'd' });
		const calls = [];
		other.on('call', (d) => calls.push(d));
		const [, info] = await closed(other);
		assert.equal(info.replaced, true);
		assert.deepEqual(calls, []);
		assert.equal(other.lastEventId, '2-1');
	});

	test('idleTimeout: a silent stream is reopened with its id', T, async () => {
		requests.length = 0;
		script = (req, res) => sse(res, 'id: 4-2\n\n', false);
		const sig = connect({ base, user: 'u', device: 'd', idleTimeout: 300 });
		try {
			const [err] = await once(sig, 'error');
			assert.match(err.message, /no data for 300 ms/);
			await poll(() => requests.length >= 2, { what: 'a reconnect' });
			assert.equal(requests[1].headers['last-event-id'], '4-2');
		} finally {
			sig.close();
		}
	});

	// On by default: a connection that dies without a word (a NAT, a
	// phone changing networks) was noticed only when TCP gave up, some
	// 15 minutes later.  Its 60 s are made short here by the timer, until
	// one has fired (the stream opened again is as silent, and would be
	// reopened every few milliseconds, a request in flight at the end).
	test('idleTimeout: on by default, 60 s', T, async () => {
		requests.length = 0;
		script = (req, res) => sse(res, 'id: 4-3\n\n', false);
		const { setTimeout: realTimeout } = globalThis;
		let fired = false;
		globalThis.setTimeout = (fn, ms, ...args) =>
			ms === 60000 && !fired
			    ? realTimeout(() => { fired = true; fn(...args); }, 10)
			    : realTimeout(fn, ms, ...args);
		const sig = connect({ base, user: 'u', device: 'd' });
		try {
			const [err] = await once(sig, 'error');
			assert.match(err.message, /no data for 60000 ms/);
			await poll(() => requests.length >= 2, { what: 'a reconnect' });
			assert.equal(requests[1].headers['last-event-id'], '4-3');
		} finally {
			globalThis.setTimeout = realTimeout;
			sig.close();
		}
	});

	// BEEP_KEEPALIVE may be up to an hour: with the 60 s default a
	// silent stream of such a service was reopened every minute.  The
	// service names its keepalive in its first comment, and a stream is
	// taken for dead only past three of them.
	test('idleTimeout: at least three of the keepalives the service names',
	    T, async () => {
		requests.length = 0;
		script = (req, res) => sse(res,
		    ': beep-signal keepalive=120\n\nid: 4-4\n\n', false);
		const timing = recordDelays();
		const sig = connect({ base, user: 'u', device: 'd' });
		try {
			await poll(() => timing.delays.includes(360000),
			    { what: 'the idle timer at three keepalives' });
			const after = timing.delays.indexOf(360000);
			assert.ok(!timing.delays.slice(after).includes(60000),
			    `${timing.delays}`);
			assert.equal(requests.length, 1);
		} finally {
			timing.restore();
			sig.close();
		}
	});

	test('Retry-After is waited with jitter, on the stream and on sends', T,
	    async () => {
		// Retry-After 1 s is waited 1.5 s (without jitter: 1 s, and a
		// refused crowd comes back in one millisecond).
		const timing = recordDelays();
		const { delays } = timing;
		requests.length = 0;
		let posts = 0;
		script = (req, res, n) => {
			const refuse = req.method === 'POST' ? ++posts === 1 : n === 1;
			if (refuse) {
				res.writeHead(503, { 'Content-Type': 'application/json',
				    'Retry-After': '1' });
				res.end('{"error":"full"}');
			} else if (req.method === 'POST') {
				res.writeHead(200, { 'Content-Type': 'application/json' });
				res.end('{"id":"1-1"}');
			} else {
				sse(res, ': ok\n\n', false);
			}
		};
		let sig;
		try {
			sig = connect({ base, user: 'u', device: 'd' });
			const [err] = await once(sig, 'error');
			assert.equal(err.retryAfterMs, 1000);
			await opened(sig);
			assert.ok(delays.includes(1500), `stream: ${delays}`);
			delays.length = 0;
			assert.deepEqual(await sig.send('v', 'e', 1), { id: '1-1',
			    held: false });
			assert.equal(posts, 2);
			assert.ok(delays.includes(1500), `send: ${delays}`);
		} finally {
			timing.restore();
			sig?.close();
		}
	});

	// The stub answers GETs with a stream; POSTs by answer(n) (n counts
	// them): respond(res, n) (by default an id), or nothing ever. Resolves
	// the events posted, in order.
	const idAnswer = (res, n) => {
		res.writeHead(200, { 'Content-Type': 'application/json' });
		res.end(`{"id":"1-${n}"}`);
	};
	const poster = (answer, respond = idAnswer) => {
		const events = [];
		script = (req, res) => {
			if (req.method !== 'POST')
				return sse(res, ': ok\n\n', false);
			let body = '';
			req.on('data', (c) => { body += c; });
			req.on('end', () => {
				events.push(JSON.parse(body).event);
				if (answer(events.length))
					respond(res, events.length);
			});
		};
		return events;
	};

	test('a POST never answered is retried after `timeout`; the sends ' +
	    'queued behind it go on', T, async () => {
		const events = poster((n) => n > 1);
		const sig = connect({ base, user: 'u', device: 'd', timeout: 300 });
		try {
			const first = sig.send('v', 'e', { n: 1 }, { event: 'candidate' });
			const hangup = sig.send('v', 'e', {}, { event: 'hangup' });
			assert.deepEqual(await first, { id: '1-2', held: false });
			assert.deepEqual(await hangup, { id: '1-3', held: false });
			assert.deepEqual(events, ['candidate', 'candidate', 'hangup']);
		} finally {
			sig.close();
		}
	});

	// The service answered 200 (queued), and the answer's body was cut or
	// stalled: the POST was accepted, and sent again it would arrive twice
	// (it was, as a network error). Its id is not known.
	for (const how of ['cut', 'stalled'])
		test(`a POST answered 200 whose body is ${how} is not sent again`, T,
		    async () => {
			const events = poster(() => true, (res) => {
				res.writeHead(200, { 'Content-Type': 'application/json',
				    'Content-Length': '13' });
				// Once the head and 3 bytes are out, the connection
				// ends short of Content-Length.
				res.write('{"i', () => {
					if (how === 'cut')
						res.socket.end();
				});
			});
			const sig = connect({ base, user: 'u', device: 'd',
			    timeout: 300 });
			try {
				assert.deepEqual(await sig.send('v', 'e', { n: 1 },
				    { event: 'offer' }), { id: undefined, held: false });
				assert.deepEqual(events, ['offer'], 'sent once');
			} finally {
				sig.close();
			}
		});

	// A token function that never settles (a refresh with no timeout of
	// its own) held the stream and every send for ever, past `timeout`
	// and close() (a review).
	test('a token that never comes: each attempt ends at `timeout`, ' +
	    'close() ends the rest', T, async () => {
		script = (req, res) => sse(res, ': ok\n\n', false);
		const before = requests.length;
		let asked = 0;
		// sendWait 0: three attempts of `timeout` each.  Within a
		// budget the last attempt has what is left of it, so its
		// message named a time that depended on the machine's pace.
		const sig = connect({ base, user: 'u', device: 'd', timeout: 200,
		    sendWait: 0, token: () => {
			asked++;
			return new Promise(() => {});
		} });
		try {
			await assert.rejects(sig.send('v', 'e', { n: 1 }),
			    (e) => /^send: no token within 200 ms$/.test(e.message));
			const pending = sig.send('v', 'e', { n: 2 });
			while (asked < 5)       // the stream's and the sends'
				await new Promise((r) => setImmediate(r));
			sig.close();
			await assert.rejects(pending,
			    (e) => e.message === 'send: closed');
		} finally {
			sig.close();
		}
		assert.equal(requests.length, before, 'nothing sent without one');
	});

	test('keepalive: a page\'s last send goes out at once, outside the ' +
	    'queue', T, async () => {
		let seen;
		const out = new Promise((r) => { seen = r; });
		const events = poster((n) => {
			seen();
			return n > 1;
		});
		const sig = connect({ base, user: 'u', device: 'd' });
		try {
			// The first send has no answer: the queue to that device
			// waits for it.
			sig.send('v', 'e', 1, { event: 'note' }).catch(() => {});
			sig.send('v', 'e', 2, { event: 'queued' }).catch(() => {});
			await out;
			assert.deepEqual(await sig.send('v', 'e', {}, { event: 'hangup',
			    keepalive: true }), { id: '1-2', held: false });
			assert.deepEqual(events, ['note', 'hangup']);
		} finally {
			sig.close();
		}
	});

	test('close() ends the requests in flight', T, async () => {
		let seen;
		const posted = new Promise((r) => { seen = r; });
		poster(() => { seen(); return false; });
		const sig = connect({ base, user: 'u', device: 'd' });
		const send = sig.send('v', 'e', 1);
		await posted;
		sig.close();
		await assert.rejects(send, (e) => e.status === 0 &&
		    e.message === 'send: closed');
		await assert.rejects(sig.devices('v'), /devices: closed/);
	});

	test('close() ends a send waiting to retry (Retry-After)', T,
	    async () => {
		// The delays asked of setTimeout, to close() during the wait.
		const timing = recordDelays();
		const { delays } = timing;
		requests.length = 0;
		script = (req, res) => {
			if (req.method !== 'POST')
				return sse(res, ': ok\n\n', false);
			res.writeHead(503, { 'Content-Type': 'application/json',
			    'Retry-After': '600' });
			res.end('{"error":"full"}');
		};
		// A budget that the Retry-After fits in (past it, the send
		// fails at once: the test above).
		const sig = connect({ base, user: 'u', device: 'd',
		    sendWait: 2 ** 31 - 1 });
		try {
			const send = sig.send('v', 'e', 1);
			// Waiting 600 s and up to as long again before retrying.
			await poll(() => delays.some((ms) => ms >= 600000),
			    { what: 'the send waiting to retry' });
			sig.close();
			await assert.rejects(send, (e) => e.message === 'send: closed');
			assert.equal(requests.filter((r) => r.url.startsWith('/user/'))
			    .length, 1, 'not sent again');
		} finally {
			timing.restore();
			sig.close();
		}
	});

	test('iceServers({ attempts, timeout }): one short try', T, async () => {
		requests.length = 0;
		script = (req, res) => {
			if (!req.url.startsWith('/ice-servers'))
				sse(res, ': ok\n\n', false);
			// /ice-servers: never answered.
		};
		const sig = connect({ base, user: 'u', device: 'd' });
		try {
			await assert.rejects(sig.iceServers({ attempts: 1,
			    timeout: 300 }), (e) => e.status === 0 &&
			    /no answer within 300 ms/.test(e.message));
			assert.equal(requests.filter((r) =>
			    r.url.startsWith('/ice-servers')).length, 1);
		} finally {
			sig.close();
		}
	});

	test('a stream whose head never comes is reopened after `timeout`', T,
	    async () => {
		requests.length = 0;
		script = (req, res, n) => {
			if (n > 1)
				sse(res, ': ok\n\n', false);
		};
		const sig = connect({ base, user: 'u', device: 'd', timeout: 300 });
		try {
			const [err] = await once(sig, 'error');
			assert.equal(err.message, 'subscribe: no answer within 300 ms');
			assert.equal(err.status, 0);
			await opened(sig);
			assert.equal(requests.length, 2);
		} finally {
			sig.close();
		}
	});

	// A front that answers 200 with another type (a proxy's error page
	// sent slowly, a stream of its own) is refused and retried; its body,
	// never read, kept its connection open for as long as the front kept
	// sending (in a browser over HTTP/1.1, six of them block the origin).
	test('a 200 that is not an event stream is let go, not left open', T,
	    async () => {
		requests.length = 0;
		let closedFirst;
		const letGo = new Promise((r) => { closedFirst = r; });
		script = (req, res, n) => {
			if (n > 1)
				return sse(res, ': ok\n\n', false);
			res.on('close', closedFirst);
			res.writeHead(200, { 'Content-Type': 'text/plain' });
			res.write('not a stream\n');    // and no end
		};
		// The client's answers, to see what became of the first body.
		const realFetch = globalThis.fetch;
		const answers = [];
		globalThis.fetch = async (...args) => {
			const res = await realFetch(...args);
			answers.push(res);
			return res;
		};
		const sig = connect({ base, user: 'u', device: 'd' });
		try {
			const [err] = await once(sig, 'error');
			assert.equal(err.message, 'subscribe: not an event stream');
			// Nothing left to read: the client ended the body...
			const read = await answers[0].body.getReader().read()
			    .catch((e) => e);
			assert.ok(read instanceof Error || read.done,
			    'the body is still open');
			// ...and its connection.
			await letGo;
			await opened(sig);
			assert.equal(requests.length, 2);
		} finally {
			globalThis.fetch = realFetch;
			sig.close();
		}
	});

	test('back online: reconnects at once, backoff reset; close() stops ' +
	    'listening', T, async () => {
		// A browser's window, for its "online" event.
		const listeners = new Map();
		globalThis.window = {
			addEventListener: (name, fn) => listeners.set(name, fn),
			removeEventListener: (name, fn) => {
				if (listeners.get(name) === fn)
					listeners.delete(name);
			},
		};
		const timing = recordDelays();
		const { delays } = timing;
		requests.length = 0;
		// Refused for ten minutes (the backoff doubles to 1 s); when
		// back online, one network failure, then the stream.
		script = (req, res, n) => {
			if (n === 1) {
				res.writeHead(503, { 'Content-Type': 'application/json',
				    'Retry-After': '600' });
				res.end('{"error":"full"}');
			} else if (n === 2) {
				req.socket.destroy();
			} else {
				sse(res, ': ok\n\n', false);
			}
		};
		let sig;
		try {
			sig = connect({ base, user: 'u', device: 'd' });
			await once(sig, 'error');
			delays.length = 0;
			listeners.get('online')();
			await opened(sig);
			assert.equal(requests.length, 3);
			// After the failure: the first step of the backoff again.
			assert.ok(delays.includes(500), `delays: ${delays}`);
			sig.close();
			assert.equal(listeners.has('online'), false,
			    'close() removed its listener');
		} finally {
			timing.restore();
			delete globalThis.window;
			sig?.close();
		}
	});

	// A phone offline for a moment (Wi-Fi to LTE, a tunnel): a stand-in
	// `navigator.onLine` and `window` (its "online" listeners), and a
	// fetch that fails at once while offline, as a browser's does.
	// listening() resolves when the next "online" listener is added.
	const offlineBrowser = () => {
		const listeners = new Map();
		let added = null;
		globalThis.navigator = { onLine: false };
		globalThis.window = {
			addEventListener(name, fn) {
				if (!listeners.has(name))
					listeners.set(name, new Set());
				listeners.get(name).add(fn);
				if (name === 'online')
					added?.();
			},
			removeEventListener(name, fn) {
				listeners.get(name)?.delete(fn);
			},
		};
		const realFetch = globalThis.fetch;
		globalThis.fetch = async (...args) => {
			if (globalThis.navigator.onLine === false)
				throw new TypeError('fetch failed');
			return realFetch(...args);
		};
		return {
			listeners,
			listening: () => new Promise((r) => { added = r; }),
			online() {
				globalThis.navigator.onLine = true;
				for (const fn of [...(listeners.get('online') || [])])
					fn({ type: 'online' });
			},
			restore() {
				globalThis.fetch = realFetch;
				delete globalThis.window;
				delete globalThis.navigator;
			},
		};
	};
	// 'settled' when p settles first, or what `other` resolves with.
	const first = (p, other) => Promise.race([
		p.then(() => 'settled', () => 'settled'), other]);

	// A send made while offline failed after its three attempts, some
	// 3 s, though the network came back a moment later (a review: the
	// call page then ended a call in an ICE restart, "Lost contact").
	test('offline: a send waits for "online", then goes; the sends ' +
	    'behind it keep their order', T, async () => {
		const events = poster(() => true);
		const net = offlineBrowser();
		const sig = connect({ base, user: 'u', device: 'd' });
		try {
			const waiting = net.listening();
			const offer = sig.send('v', 'e', { n: 1 }, { event: 'offer' });
			const cand = sig.send('v', 'e', { n: 2 },
			    { event: 'candidate' });
			assert.equal(await first(offer, waiting.then(() => 'waits')),
			    'waits', 'the send gave up while offline');
			assert.deepEqual(events, [], 'nothing sent while offline');
			net.online();
			assert.deepEqual(await offer, { id: '1-1', held: false });
			assert.deepEqual(await cand, { id: '1-2', held: false });
			assert.deepEqual(events, ['offer', 'candidate']);
		} finally {
			sig.close();
			net.restore();
		}
	});

	test('offline: a send whose attempt fails as the device goes offline ' +
	    'waits for "online", its attempts not spent', T, async () => {
		const events = poster(() => true);
		const net = offlineBrowser();
		globalThis.navigator.onLine = true;
		const sig = connect({ base, user: 'u', device: 'd' });
		const realFetch = globalThis.fetch;
		let failed = 0;
		globalThis.fetch = (url, init) => {
			// The network goes as the POST goes out.
			if (init?.method === 'POST' && failed++ === 0)
				globalThis.navigator.onLine = false;
			return realFetch(url, init);
		};
		try {
			const waiting = net.listening();
			const sent = sig.send('v', 'e', { n: 1 }, { event: 'offer' });
			assert.equal(await first(sent, waiting.then(() => 'waits')),
			    'waits', 'the send gave up while offline');
			net.online();
			assert.deepEqual(await sent, { id: '1-1', held: false });
			assert.deepEqual(events, ['offer']);
		} finally {
			sig.close();
			net.restore();
		}
	});

	test('offline: the wait is bounded (offlineWait); close() ends it at ' +
	    'once', T, async () => {
		const events = poster(() => true);
		const net = offlineBrowser();
		let sig, sig2;
		try {
			sig = connect({ base, user: 'u', device: 'd',
			    offlineWait: 200 });
			await assert.rejects(sig.send('v', 'e', 1), (e) =>
			    e.status === 0 && e.offlineMs === 200 &&
			    e.message === 'send: offline for 200 ms');
			// Never online: no listener is left behind.
			assert.equal(net.listeners.get('online').size, 1,
			    'only the stream\'s');
			sig.close();
			sig2 = connect({ base, user: 'u', device: 'd' });
			const waiting = net.listening();
			const sent = sig2.send('v', 'e', 1);
			const queued = sig2.send('v', 'e', 2);
			assert.equal(await first(sent, waiting.then(() => 'waits')),
			    'waits');
			sig2.close();
			await assert.rejects(sent, (e) => e.message === 'send: closed');
			await assert.rejects(queued,
			    (e) => e.message === 'send: closed');
			assert.equal(net.listeners.get('online').size, 0);
			assert.deepEqual(events, []);
		} finally {
			sig?.close();
			sig2?.close();
			net.restore();
		}
	});

	// The rejection carries the wait it gave up after as offlineMs, a
	// number, whatever the option's form (a fraction of a ms too): the
	// call page words it from there ("no network for 2 s"), where a
	// pattern on the message missed "offline for 150.5 ms". Other
	// rejections have offlineMs 0.
	test('offline: the rejection carries the wait as offlineMs', T,
	    async () => {
		const events = poster(() => true);
		const net = offlineBrowser();
		let sig;
		try {
			sig = connect({ base, user: 'u', device: 'd',
			    offlineWait: 150.5 });
			await assert.rejects(sig.send('v', 'e', 1), (e) =>
			    e instanceof SignalError && e.status === 0 &&
			    e.offlineMs === 150.5 &&
			    e.message === 'send: offline for 150.5 ms');
			// Not offline: a plain failure, no offlineMs.
			await assert.rejects(sig.send('v', 'e', ''), (e) =>
			    e instanceof SignalError && e.status === 400 &&
			    e.offlineMs === 0);
			assert.deepEqual(events, []);
		} finally {
			sig?.close();
			net.restore();
		}
	});

	// setTimeout() takes at most 2^31 - 1 ms: past it a timer fires at
	// once (Node) or wraps (a browser's ToInt32), so an offlineWait of
	// 2^31 ms (some 25 days) ended the wait at once and a send made
	// offline failed at once, "offline for 2147483648 ms" (a review).
	test('offlineWait is a number of ms from 0 to 2147483647', T,
	    async () => {
		for (const bad of [-1, NaN, Infinity, '30000', 2 ** 31, 1e12])
			assert.throws(() => connect({ base, user: 'u',
			    device: 'd', offlineWait: bad }), (e) =>
			    e instanceof TypeError &&
			    /offlineWait must be a number of ms/.test(e.message),
			    `offlineWait ${String(bad)} was taken`);
		for (const ok of [0, 2 ** 31 - 1])
			connect({ base, user: 'u', device: 'd',
			    offlineWait: ok }).close();
	});

	test('sendWait is a number of ms from 0 to 2147483647', T,
	    async () => {
		for (const bad of [-1, NaN, Infinity, '15000', 2 ** 31])
			// Closed when taken (before the change), so that no
			// stream is left reconnecting.
			assert.throws(() => connect({ base, user: 'u',
			    device: 'd', sendWait: bad }).close(), (e) =>
			    e instanceof TypeError &&
			    /sendWait must be a number of ms/.test(e.message),
			    `sendWait ${String(bad)} was taken`);
		for (const ok of [0, 2 ** 31 - 1])
			connect({ base, user: 'u', device: 'd',
			    sendWait: ok }).close();
	});

	// A refusal whose Retry-After is past what is left of the send's
	// budget fails the send at once, with the service's answer: waited,
	// the send would outlive its budget (and hold the sends behind it).
	// A Retry-After of 600 s, and the waits the client asks of setTimeout
	// looked at: one that waited 3 s (the Retry-After this had before)
	// found its budget spent after it and failed with the same error,
	// passing.
	test('Retry-After past what sendWait leaves: rejected at once, the ' +
	    'refusal its error', T, async () => {
		let posts = 0;
		script = (req, res) => {
			if (req.method !== 'POST')
				return sse(res, ': ok\n\n', false);
			posts++;
			res.writeHead(503, { 'Content-Type': 'application/json',
			    'Retry-After': '600' });
			res.end('{"error":"message memory full"}');
		};
		const timing = recordDelays();
		const waited = () => timing.delays.some((ms) => ms >= 600000);
		const sig = connect({ base, user: 'u', device: 'd',
		    sendWait: 2000 });
		try {
			let settled = false;
			const send = sig.send('v', 'e', 1);
			send.then(() => { settled = true; },
			    () => { settled = true; });
			await poll(() => settled || waited(),
			    { what: 'the send settled (or waiting to retry)' });
			assert.ok(!waited(), 'waited a Retry-After past sendWait');
			await assert.rejects(send, (e) =>
			    e.status === 503 && e.retryAfterMs === 600000 &&
			    /message memory full/.test(e.message));
			assert.equal(posts, 1, 'not sent again');
		} finally {
			timing.restore();
			sig.close();
		}
	});

	// reconnect() while a refusal's body is read, before its Retry-After
	// wait begins, goes again at once, as during the wait itself (a
	// review: it was lost, and the client waited out Retry-After).
	test('reconnect() while a 503 is read goes again at once', T,
	    async () => {
		const timing = recordDelays();
		const { delays } = timing;
		requests.length = 0;
		script = (req, res, n) => {
			if (n > 1)
				return sse(res, ': ok\n\n', false);
			res.writeHead(503, { 'Content-Type': 'application/json',
			    'Retry-After': '600' });
			res.write('{"error":');    // the rest does not come
		};
		// The refusal's head is in: the client is reading its body.
		let headIn;
		const head = new Promise((r) => { headIn = r; });
		const realFetch = globalThis.fetch;
		globalThis.fetch = async (...args) => {
			const res = await realFetch(...args);
			headIn();
			return res;
		};
		let sig;
		try {
			sig = connect({ base, user: 'u', device: 'd' });
			const failed = once(sig, 'error');
			await head;
			sig.reconnect();
			const [err] = await failed;
			assert.equal(err.status, 503);
			assert.equal(err.retryAfterMs, 600000);
			assert.ok(!delays.some((ms) => ms >= 600000),
			    `waits Retry-After: ${delays}`);
			await opened(sig);
			assert.equal(requests.length, 2);
		} finally {
			globalThis.fetch = realFetch;
			timing.restore();
			sig?.close();
		}
	});

	test('the parser: CR, LF, CRLF split across chunks; data lines', () => {
		const out = [];
		const p = new EventStreamParser((t, d, id) => out.push([t, d, id]),
		    () => {});
		for (const chunk of ['data: a\r', '\ndata: b\rid: 1\r\n\r', '\n',
		    'event: x\ndata\n\n: c\n\nid: 2\n\n'])
			p.feed(chunk);
		assert.deepEqual(out, [['message', 'a\nb', '1'], ['x', '', '1']]);
		assert.equal(p.lastEventId, '2');
	});

	// The parser as subscribe() drives it (a TextDecoder per stream, the
	// reads of fetch()), against a reference written from the standard's
	// steps: every stream of up to 4 pieces (field names, ':', ' ', CR,
	// LF, NUL, a BOM, a digit) cut in two at every byte, with an empty
	// read between or a byte a read, then random longer ones: the events
	// (type, data, lastEventId), the id a reconnection sends and retry:.
	// Also with an id from before (the buffer a reconnection starts with).
	test('the parser: as the WHATWG steps say, however the stream is read',
	    () => {
		const parse = (chunks, id) => {
			const out = { events: [], retries: [] };
			const decoder = new TextDecoder();
			const p = new EventStreamParser(
			    (type, data, lastEventId) =>
				out.events.push({ type, data, lastEventId }),
			    (ms) => out.retries.push(ms), () => {}, id);
			for (const c of chunks)
				p.feed(decoder.decode(c, { stream: true }));
			out.lastEventId = p.lastEventId;
			return out;
		};
		assert.equal(compareWithReference(parse), null);
		assert.equal(compareWithReference(parse, { lastEventId: '7' }),
		    null);
	});
});

// A front that a test can make lose things, between the client and the
// stack: POSTs to the API pass, are lost before the service sees them
// ('refuse': the connection is dropped at once, as on a network gone
// down) or after ('lose': sent on and answered, then the connection is
// dropped before the answer reaches the client, as on a network that
// went down meanwhile). Each POST takes the next of `plan` ('pass' once
// it is spent); `posts` counts those that reached the service.
async function lossyFront(upstream) {
	const front = { plan: [], posts: 0 };
	const up = new URL(upstream);
	const server = http.createServer((req, res) => {
		const how = req.method === 'POST' ? front.plan.shift() ?? 'pass' :
		    'pass';
		if (how === 'refuse') {
			req.socket.destroy();
			return;
		}
		const fwd = http.request({ host: up.hostname, port: up.port,
		    path: req.url, method: req.method, headers: req.headers },
		(ures) => {
			if (req.method === 'POST')
				front.posts++;
			if (how === 'lose') {
				ures.resume();
				ures.on('end', () => req.socket.destroy());
				return;
			}
			res.writeHead(ures.statusCode, ures.headers);
			ures.pipe(res);
		});
		fwd.on('error', () => req.socket.destroy());
		res.on('close', () => fwd.destroy());
		req.pipe(fwd);
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	front.base = `http://127.0.0.1:${server.address().port}`;
	front.close = () => {
		server.closeAllConnections();
		return new Promise((r) => server.close(r));
	};
	return front;
}

describe('a phone on a bad network (a front that loses requests)', { skip },
    () => {
	let stack, front;
	const sigs = [];
	const open = (o) => { const s = connect(o); sigs.push(s); return s; };
	before(async () => {
		stack = await startStack();
		front = await lossyFront(stack.base);
	});
	after(async () => {
		for (const s of sigs)
			s.close();
		await front.close();
		await stack.stopAndCheck();
	});

	// The POST reached the service and was queued; its answer was lost
	// with the network. The client sends it again, and the device gets it
	// once, under its first id: the retry is answered with that id, not
	// delivered again (before, it came twice, and every app had to be
	// idempotent).
	test('a send whose answer was lost is retried and delivered once', T,
	    async () => {
		const u = sid();
		const peer = open({ base: stack.base, user: u, device: 'd' });
		const seen = [];
		peer.on('n', (d, meta) => seen.push([d, meta.id]));
		await opened(peer);
		const sig = open({ base: front.base, user: u, device: 'phone' });
		await opened(sig);
		front.plan = ['lose'];
		front.posts = 0;
		const r = await sig.send(u, 'd', 1, { event: 'n' });
		assert.equal(front.posts, 2, 'sent, its answer lost, sent again');
		const r2 = await sig.send(u, 'd', 2, { event: 'n' });
		await poll(() => seen.some(([d]) => d === 2), { what: 'the second' });
		assert.deepEqual(seen, [[1, r.id], [2, r2.id]]);
	});

	// A network that is down while the browser says it is online (a
	// Wi-Fi to cellular hand-over, a dead access point): every attempt
	// fails at once. The send goes on trying within its budget
	// (sendWait, 15 s by default), not three attempts (some 3 s: the call
	// page ended a call that an ICE restart would have kept), and arrives
	// once, though one of its attempts got through with its answer lost.
	test('a send goes on past three lost attempts within sendWait, and ' +
	    'arrives once', T, async () => {
		const u = sid();
		const peer = open({ base: stack.base, user: u, device: 'd' });
		const seen = [];
		peer.on('n', (d, meta) => seen.push([d, meta.id]));
		await opened(peer);
		const sig = open({ base: front.base, user: u, device: 'phone' });
		await opened(sig);
		front.plan = ['refuse', 'lose', 'refuse', 'refuse'];
		front.posts = 0;
		const r = await sig.send(u, 'd', 1, { event: 'n' });
		assert.equal(front.plan.length, 0, 'every attempt made');
		assert.equal(front.posts, 2, 'the lost answer, and the last');
		const r2 = await sig.send(u, 'd', 2, { event: 'n' });
		await poll(() => seen.some(([d]) => d === 2), { what: 'the second' });
		assert.deepEqual(seen, [[1, r.id], [2, r2.id]]);
	});

	// Its budget ends the send, failing with its last error, and close()
	// ends it sooner; the sends queued behind it go on in order.
	test('a send never outlives sendWait; close() ends its wait', T,
	    async () => {
		const u = sid();
		const peer = open({ base: stack.base, user: u, device: 'd' });
		await opened(peer);
		const sig = open({ base: front.base, user: u, device: 'phone',
		    sendWait: 1500 });
		await opened(sig);
		front.plan = Array(1000).fill('refuse');
		try {
			await assert.rejects(sig.send(u, 'd', 1),
			    (e) => e.status === 0 && !/closed/.test(e.message));
			const p = sig.send(u, 'd', 2);
			sig.close();
			await assert.rejects(p, /send: closed/);
		} finally {
			front.plan = [];
		}
	});

	// What a retry cannot change is not retried: the POST reaches the
	// service once.
	test('4xx is not retried', T, async () => {
		const u = sid();
		const sig = open({ base: front.base, user: u, device: 'phone' });
		await opened(sig);
		front.posts = 0;
		await assert.rejects(sig.send(u, 'nope', 1), (e) => e.status === 404);
		await assert.rejects(sig.send(u, 'phone', 'x'.repeat(70000)),
		    (e) => e.status === 413);
		assert.equal(front.posts, 2);
	});
});

// The same in a cluster: the POST is Redis's script, which keeps each
// key with its entry; the sender's node is not the device's.
describe('a phone on a bad network, in a cluster', { skip }, () => {
	let cl, front;
	const sigs = [];
	const open = (o) => { const s = connect(o); sigs.push(s); return s; };
	before(async () => {
		cl = await startCluster({ nodes: 2, env: CLUSTER_QUICK });
		front = await lossyFront(cl.nodes[1].base);
	});
	after(async () => {
		for (const s of sigs)
			s.close();
		await front.close();
		await cl.stopAndCheck();
	});

	test('a send whose answers were lost is retried and delivered once, ' +
	    'through another node', T, async () => {
		const u = sid();
		const peer = open({ base: cl.nodes[0].base, user: u, device: 'd' });
		const seen = [];
		peer.on('n', (d, meta) => seen.push([d, meta.id]));
		await opened(peer);
		const sig = open({ base: front.base, user: u, device: 'phone' });
		await opened(sig);
		front.plan = ['lose', 'refuse', 'lose'];
		front.posts = 0;
		const r = await sig.send(u, 'd', 1, { event: 'n' });
		assert.equal(front.posts, 3, 'two answers lost, the last one came');
		const r2 = await sig.send(u, 'd', 2, { event: 'n' });
		await poll(() => seen.some(([d]) => d === 2), { what: 'the second' });
		assert.deepEqual(seen, [[1, r.id], [2, r2.id]]);
	});
});
