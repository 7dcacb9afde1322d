// Reading a request has a deadline for the whole of it (BEEP_READ_TIMEOUT,
// from when it starts arriving until its body is read), not per read: a body
// that keeps trickling in, or a too large one being drained, lets its worker
// go at the deadline. A too large body is drained only up to BEEP_MAX_DRAIN
// past BEEP_MAX_BODY.
// A kept-alive connection waiting for its next request is not reading one:
// it lives as long as the front keeps it (behind nginx with the shipped
// conf/nginx.conf), up to BEEP_IDLE_TIMEOUT.
//
// The shipped fronts read each body whole before the backend sees the
// request (Caddy's buffer_requests, nginx, lighttpd), so that slow clients
// hold none of its threads: the last test checks it through the shipped
// Caddyfile. The backend's own deadline is for a front that streams bodies
// (Caddy without buffer_requests, its default: STREAMING_CADDYFILE) and for
// any other peer of its socket.
//
// What the client sees: behind such a Caddy, which writes the whole body to
// the backend before it reads the answer, a request cut short gets Caddy's
// own 502; a front that reads while it writes (here a raw FastCGI client)
// gets 408 with a JSON error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import {
	startStack, uid, postPath, subPath, poll, openSub, toldByLines,
} from './harness.mjs';
import { Rig, rewrite, streamingCaddyfile } from './fronts.mjs';
import {
	FcgiConn, requestParams, record, beginRecord, encodeParams, readRecords,
	STDIN, STDOUT, PARAMS, END_REQUEST,
} from './fcgi.mjs';
import { withinWindow } from './windows.mjs';

const T = { timeout: 90000 };
const READ_TIMEOUT = 2;

// A raw HTTP/1.1 POST to Caddy whose body of `total` bytes arrives in
// chunks of `chunk` bytes every `every` ms: each chunk is a whole FastCGI
// record's worth, so the backend's reads keep making progress. Resolves
// with the status Caddy answered (null if none) once the connection closes.
function tricklePost(port, p, { total, chunk, every }) {
	return new Promise((resolve) => {
		const sock = net.connect(port, '127.0.0.1');
		let got = '', sent = 0, timer = null;
		sock.on('error', () => {});
		sock.on('data', (d) => { got += d.toString('latin1'); });
		sock.on('close', () => {
			clearInterval(timer);
			const m = /^HTTP\/1\.1 (\d+)/.exec(got);
			resolve(m ? Number(m[1]) : null);
		});
		sock.on('connect', () => {
			sock.write(`POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
			    'Content-Type: application/json\r\n' +
			    `Content-Length: ${total}\r\nConnection: close\r\n\r\n`);
			timer = setInterval(() => {
				const n = Math.min(chunk, total - sent);
				if (n <= 0 || sock.destroyed) {
					clearInterval(timer);
					return;
				}
				sock.write(Buffer.alloc(n, 0x20));
				sent += n;
			}, every);
		});
	});
}

const CUT = / warn server: request not read within BEEP_READ_TIMEOUT \(2s\)/;

// Through Caddy: one body under BEEP_MAX_BODY (the backend would answer 404
// once it had it all), one over it (413 once drained); each takes ~4 s to
// arrive, twice BEEP_READ_TIMEOUT, while no single read waits long.
for (const [what, maxBody] of [['a body', '1000000'],
    ['a too large body being drained', '65536']]) {
	test(`${what} that keeps trickling in is cut at BEEP_READ_TIMEOUT`, T,
	    async (t) => {
		const stack = await startStack({ env: {
			BEEP_READ_TIMEOUT: String(READ_TIMEOUT),
			BEEP_WRITE_TIMEOUT: '60', BEEP_MAX_BODY: maxBody,
		}, caddyfile: streamingCaddyfile(t) }, t);
		const c = stack.client();
		const status = await tricklePost(c.port,
		    postPath(uid('slow'), 'd'),
		    { total: 900000, chunk: 66000, every: 300 });
		// Logged once the connection is let go (bounded).
		await poll(() => stack.backendLog.some((l) => CUT.test(l)),
		    { what: 'the read deadline in the log' });
		// Caddy's own answer, never the backend's for a whole request.
		assert.ok(![200, 202, 404, 413].includes(status), `status ${status}`);
		// The worker is free: the service answers at once.
		assert.equal((await c.health()).status, 'ok');
	});
}

test('a too large body is drained only up to BEEP_MAX_DRAIN', T, async (t) => {
	const stack = await startStack({ env: { BEEP_MAX_DRAIN: '200000' },
	    caddyfile: streamingCaddyfile(t) }, t);
	const c = stack.client();
	const p = postPath(uid('big'), 'd');
	// Within the drain bound: drained, and the client gets the JSON 413.
	const r = await c.postJson(p, JSON.stringify({ data: 'x'.repeat(100000) }));
	assert.equal(r.status, 413, r.text);
	assert.match(r.json().error, /too large/);
	assert.ok(!stack.backendLog.some((l) => /BEEP_MAX_DRAIN/.test(l)));
	// Past it: read no further; the connection is closed (Caddy, still
	// writing the body, answers 502 itself).
	let status = null;
	try {
		status = (await c.postJson(p,
		    JSON.stringify({ data: 'x'.repeat(500000) }))).status;
	} catch { /* the connection may be reset */ }
	assert.notEqual(status, 200);
	await poll(() => stack.backendLog.some((l) =>
	    /info server: request body over BEEP_MAX_BODY \+ BEEP_MAX_DRAIN \(265536 bytes\)/
		.test(l)), { what: 'the drain bound in the log' });
	assert.equal((await c.health()).status, 'ok');
});

// The drain bound counts from BEEP_MAX_BODY: a body a POST may have is
// always drained, so that its answer reaches the client however small
// BEEP_MAX_DRAIN is (counted from 0, a BEEP_MAX_DRAIN below BEEP_MAX_BODY
// closed the connection on a refused POST's body, and on one just over
// BEEP_MAX_BODY, and the client got the front's 502).
test('the drain bound counts past BEEP_MAX_BODY', T, async (t) => {
	const stack = await startStack({ env: { BEEP_MAX_BODY: '100000',
	    BEEP_MAX_DRAIN: '16' }, caddyfile: streamingCaddyfile(t) }, t);
	const c = stack.client();
	const p = postPath(uid('bound'), 'd');
	const body = (n) => '{"data":"' + 'x'.repeat(n - 11) + '"}';
	assert.equal(body(50000).length, 50000);
	// A refused POST's body, longer than BEEP_MAX_DRAIN: its 404.
	let r = await c.postJson('/v1/nowhere', body(50000));
	assert.equal(r.status, 404, r.text);
	assert.deepEqual(r.json(), { error: 'not found' });
	// A too large body at the bound, announced or chunked: the JSON 413.
	for (const chunked of [false, true]) {
		r = await c.postJson(p, body(100016), { chunked });
		assert.equal(r.status, 413, `${chunked}: ${r.text}`);
		assert.deepEqual(r.json(), { error: 'body too large' });
	}
	assert.ok(!stack.backendLog.some((l) => /BEEP_MAX_DRAIN/.test(l)));
	// Well past it (Caddy still writing): the connection is closed.
	let status = null;
	try {
		status = (await c.postJson(p, body(600000))).status;
	} catch { /* the connection may be reset */ }
	assert.notEqual(status, 200);
	await poll(() => stack.backendLog.some((l) => new RegExp(
	    'info server: request body over BEEP_MAX_BODY \\+ ' +
	    'BEEP_MAX_DRAIN \\(100016 bytes\\)').test(l)),
	    { what: 'the drain bound in the log' });
	assert.equal((await c.health()).status, 'ok');
});

// The shipped Caddyfile reads a body whole before the backend sees it, up
// to its max_size (128 KB), and Caddy 2.6 passes a longer one cut there (with
// the length its client announced, if any). Whatever the size, the client
// gets the backend's JSON 413: what comes is drained, not what is announced
// (one announced past BEEP_MAX_DRAIN was not read at all, and the close left
// Caddy a reset on a TCP socket: 502).
test('a body past the front\'s own limit gets the JSON 413', T, async (t) => {
	const stack = await startStack({}, t);
	const c = stack.client();
	const p = postPath(uid('cut'), 'd');
	for (const size of [150000, 1100000]) {
		for (const chunked of [false, true]) {
			const r = await c.postJson(p,
			    JSON.stringify({ data: 'x'.repeat(size) }), { chunked });
			assert.equal(r.status, 413, `${size} ${chunked}: ${r.text}`);
			assert.deepEqual(r.json(), { error: 'body too large' });
		}
	}
	assert.ok(!stack.backendLog.some((l) => /BEEP_MAX_DRAIN/.test(l)));
});

// A backend with a 1 s read deadline, and a raw FastCGI connection to it
// that has begun a request.
async function rawRequest(t, env = {}) {
	const stack = await startStack({ env: { BEEP_READ_TIMEOUT: '1',
	    BEEP_WRITE_TIMEOUT: '60', ...env } }, t);
	const conn = new FcgiConn(stack.socket);
	t.after(() => conn.destroy());
	await conn.connected;
	conn.begin();
	return { stack, conn };
}

// With its CORS headers: a page on another origin reads the 408, not a
// CORS failure.
test('a front that reads while it writes gets 408 with a JSON error', T,
    async (t) => {
	const origin = 'https://app.example';
	const { conn } = await rawRequest(t, { BEEP_CORS_ORIGINS: origin });
	conn.params(requestParams('POST', postPath(uid('raw'), 'd'), {
		CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '100',
		HTTP_ORIGIN: origin,
	}));
	conn.stdin('{"data":"only the start');
	const r = await conn.response();
	assert.equal(r.status, 408, r.head);
	assert.match(r.head, /^Content-Type: application\/json/m);
	assert.match(r.head, /^Cache-Control: no-store/m);
	assert.match(r.head,
	    new RegExp(`^Access-Control-Allow-Origin: ${origin}\r?$`, 'm'));
	assert.match(JSON.parse(r.body).error, /not received in time/);
	assert.ok(r.ended, 'the request was ended (FCGI_END_REQUEST)');
});

test('parameters that never end: the connection is closed at the deadline',
    T, async (t) => {
	const { stack, conn } = await rawRequest(t);
	conn.paramsPart(Buffer.from([14, 4, ...Buffer.from('REQUEST_METHOD')]));
	// Nothing more: without a whole-request deadline this waits for ever.
	const r = await conn.response();
	assert.equal(r.status, null);
	// Logged right after the connection is closed (bounded).
	await poll(() => stack.backendLog.some((l) =>
	    /request not read within BEEP_READ_TIMEOUT \(1s\): connection closed/
		.test(l)), { what: 'the read deadline in the log' });
});

// A client that opens connections by the dozen and never finishes a
// request on them has each given up: a body cut short (408 at
// BEEP_READ_TIMEOUT), nothing sent at all (closed then), a body cut short
// and the connection closed (a streaming front whose client went away), a
// body past BEEP_MAX_BODY + BEEP_MAX_DRAIN. The log says so at most once
// a second for each kind, with a count of the rest, not a line each: at
// the client's rate, a flood would fill the disk, and hide (or, past
// journald's rate limit, drop) the one line that mattered.
test('a burst of requests not read whole: a few lines, not one each',
    { timeout: 300000 }, async (t) => {
	const N = 30;
	// The first N closed before their read deadline (READ_TIMEOUT at
	// first): again with a longer one when that took longer (a loaded
	// machine).
	const { stack, t0 } = await withinWindow(t, READ_TIMEOUT,
	    async (readTimeout) => {
		const stack = await startStack({ env: {
			BEEP_READ_TIMEOUT: String(readTimeout),
			BEEP_WRITE_TIMEOUT: '60', BEEP_RATE: '0',
			BEEP_MAX_BODY: '1024', BEEP_MAX_DRAIN: '16',
		} }, t);
		const c = stack.client();
		const conns = [];
		t.after(() => conns.forEach((x) => x.destroy()));
		const open = async (body) => {
			const conn = new FcgiConn(stack.socket);
			conns.push(conn);
			await conn.connected;
			if (body !== undefined) {
				conn.begin();
				conn.params(requestParams('POST',
				    postPath(uid('burst'), 'd'), {
					CONTENT_TYPE: 'application/json',
					CONTENT_LENGTH: '4000',
				}));
				conn.stdin(body);
			}
			return conn;
		};
		// Closed once the backend reads their bodies (one request
		// each, and the health check's), not before: else they arrive
		// whole; and before their read deadline, which begins after t0.
		const t0 = performance.now();
		const gone = [];
		for (let i = 0; i < N; i++)
			gone.push(await open('{"data":"only the start'));
		await poll(async () => (await c.health()).requests === N + 1,
		    { what: 'every body being read' });
		gone.forEach((x) => x.sock.end());
		const late = performance.now() - t0 >= readTimeout * 1000;
		const answers = [];
		for (let i = 0; i < N; i++) {
			answers.push(await open('{"data":"only the start'));
			answers.push(await open());
			const big = await open(`{"data":"${'x'.repeat(3989)}"}`);
			big.endStdin();
			answers.push(big);
		}
		const statuses = (await Promise.all(conns.map((x) =>
		    x.response()))).map((r) => r.status);
		const want = [...gone.map(() => null),
		    ...answers.map((_, i) => [408, null, 413][i % 3])];
		if (late && statuses.slice(0, N).some((st) => st !== null)) {
			await stack.stop();
			return null;      // some of the first N met their deadline
		}
		assert.deepEqual(statuses, want);
		return { stack, t0 };
	}, 'read deadline');
	const kinds = [
	    [/request not read within BEEP_READ_TIMEOUT/, 2 * N],
	    [/request body: read failed/, N],
	    [/request body over BEEP_MAX_BODY \+ BEEP_MAX_DRAIN/, N]];
	const told = toldByLines;
	const linesOf = (re) => stack.backendLog.filter((l) => re.test(l));
	// Every one told, by the line of its second or the summary after it,
	// before the stop: a connection closed for its deadline is logged
	// just after libfcgi closes it, which the client may see first, and
	// a stop at that instant (the stop waits for requests, not for a
	// connection that never began one) would sum up before its count.
	await poll(() => kinds.every(([re, count]) =>
	    told(linesOf(re)) >= count), { timeout: 15000,
	    what: 'every one told in the log' });
	await stack.stop();
	// The seconds in which its lines could come: from before the first
	// request to the stop.
	const span = Math.ceil((performance.now() - t0) / 1000);
	for (const [re, count] of kinds) {
		const lines = linesOf(re);
		// A line each would be 2N (not read in time), or N; a kind
		// has a line a second at most (LOG_LIMIT_MS), a summary
		// included: as many as the burst took seconds, and one, on a
		// loaded machine too, and fewer than one each.
		assert.ok(lines.length >= 1 && lines.length <= span + 1 &&
		    lines.length < count, `${re}: ${lines.length} lines in ` +
		    `${span} s:\n${lines.join('\n')}`);
		// Every one told, once (nothing more at the stop).
		assert.equal(told(lines), count, `${re}:\n${lines.join('\n')}`);
	}
});

// A request that has come whole is read with no deadline; records that
// only look like a request's end (an end record alone, before any
// BEGIN_REQUEST: libfcgi reads on for one) must not pass for one. The
// backend is stopped while the record is written, so that it is there
// when the backend first looks at the connection.
test('an end record with no request before it: closed at the deadline', T,
    async (t) => {
	const stack = await startStack({ env: { BEEP_READ_TIMEOUT: '1' } }, t);
	const pid = stack.backend.pid;
	await stopBackend(t, pid);
	const conn = new FcgiConn(stack.socket);
	t.after(() => conn.destroy());
	await conn.connected;
	await new Promise((resolve) => conn.sock.write(record(STDIN, 1), resolve));
	process.kill(pid, 'SIGCONT');
	const r = await conn.response();
	assert.equal(r.status, null);
	await poll(() => stack.backendLog.some((l) =>
	    /request not read within BEEP_READ_TIMEOUT \(1s\): connection closed/
		.test(l)), { what: 'the read deadline in the log' });
});

// SIGSTOP reaches the threads one after another: wait until none runs, so
// that what is written next is all there when the backend first looks.
async function stopBackend(t, pid) {
	process.kill(pid, 'SIGSTOP');
	t.after(() => { try { process.kill(pid, 'SIGCONT'); } catch {} });
	const stopped = (tid) => {
		try {
			return /^\S+ \(.*\) [tT] /s.test(fs.readFileSync(
			    `/proc/${pid}/task/${tid}/stat`, 'utf8'));
		} catch {
			return true; // the thread has ended
		}
	};
	await poll(() => fs.readdirSync(`/proc/${pid}/task`).every(stopped),
	    { what: 'every thread of the backend stopped' });
}

// A peer whose request libfcgi cannot read. libfcgi's close would read on
// until the peer is 2 s silent (its wait for the front to close first),
// past any deadline; so with sendOn, each 100 ms, the peer sends a record's
// worth more, on a half-open socket (it does not end its side when the
// backend ends its own), as a hostile one would. The connection must
// close: a write fails once the backend has closed it or stopped reading.
async function peerOn(t, stack, head, { sendOn }) {
	const pid = stack.backend.pid;
	await stopBackend(t, pid);
	const sock = net.connect({ path: stack.socket, allowHalfOpen: true });
	t.after(() => sock.destroy());
	let ended = false;
	readRecords(sock, (type) => { ended ||= type === END_REQUEST; });
	sock.on('error', () => {}); // EPIPE, once the backend has let go
	const closed = new Promise((resolve) => sock.once('close', resolve));
	await once(sock, 'connect');
	// Written while the backend is stopped: all there at its first look.
	await new Promise((resolve) => sock.write(head, resolve));
	process.kill(pid, 'SIGCONT');
	const timer = setInterval(() => {
		if (sendOn && !sock.destroyed)
			sock.write(record(PARAMS, 1, Buffer.from('more')));
		else if (sock.readableEnded && !sock.destroyed)
			sock.write(record(PARAMS, 1)); // fails once it is closed
	}, 100);
	t.after(() => clearInterval(timer));
	await closed;
	clearInterval(timer);
	return { ended };
}

const POST_PARAMS = () => encodeParams(requestParams('POST',
    postPath(uid('raw'), 'd'), {
	CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '100',
}));

// Whole to the look before reading (its BEGIN_REQUEST first, its body's
// end record last), so read with no deadline; but libfcgi cannot read
// it. A parameter cut short fails its FCGX_Accept_r(). The body's end
// record where the parameters go ends them for libfcgi, which then
// reopens that failed stream for the body: a POST's body read would wait
// for ever on a peer that sends nothing more.
for (const [what, params, sendOn] of [
	['a parameter cut short', Buffer.concat([
		record(PARAMS, 1, Buffer.from([14, 4, ...Buffer.from('REQUEST')])),
		record(PARAMS, 1)]), true],
	['no end of its parameters, the peer silent',
	    record(PARAMS, 1, POST_PARAMS()), false],
	['no end of its parameters, the peer sending on',
	    record(PARAMS, 1, POST_PARAMS()), true]]) {
	test(`a whole request with ${what}: closed`, T, async (t) => {
		const stack = await startStack(
		    { env: { BEEP_READ_TIMEOUT: '1' } }, t);
		const { ended } = await peerOn(t, stack, Buffer.concat(
		    [beginRecord(1, true), params, record(STDIN, 1)]),
		    { sendOn });
		assert.ok(!ended, 'no request: nothing answered');
		assert.equal((await stack.client().health()).status, 'ok');
	});
}

// A request whose body has a record of another type (FCGI_PARAMS): the
// body's read fails, the backend answers, and the connection closes
// (libfcgi's rule for a failed input) after the read deadline is over.
test('a body libfcgi cannot read: answered, closed, though the peer sends on',
    T, async (t) => {
	const stack = await startStack({ env: { BEEP_READ_TIMEOUT: '1' } }, t);
	const { ended } = await peerOn(t, stack, Buffer.concat([
		beginRecord(1, true),
		record(PARAMS, 1, POST_PARAMS()),
		record(PARAMS, 1),
		record(STDIN, 1, Buffer.from('{"data":')),
		record(PARAMS, 1, Buffer.from('not a body record')),
	]), { sendOn: true });
	assert.ok(ended, 'the request was answered (FCGI_END_REQUEST)');
	assert.equal((await stack.client().health()).status, 'ok');
});

// A stream on a connection the front does not keep (Caddy's), ended by the
// backend (a newer stream of its device replaces it): its connection
// closes, though the peer sends on (the stream's request was read whole at
// its start; libfcgi's close would wait on the peer for ever).
test('a stream ended on a connection not kept: closed, though the peer ' +
    'sends on', T, async (t) => {
	const stack = await startStack(
	    { env: { BEEP_MAX_STREAMS_PER_DEVICE: '1' } }, t);
	const user = uid('replaced');
	const sock = net.connect({ path: stack.socket, allowHalfOpen: true });
	t.after(() => sock.destroy());
	let out = '', ended = false, wake = () => {};
	readRecords(sock, (type, content) => {
		if (type === STDOUT)
			out += content.toString('latin1');
		ended ||= type === END_REQUEST;
	}, () => wake());
	const until = (pred) => new Promise((resolve) => {
		wake = () => { if (pred()) resolve(); };
		wake();
	});
	sock.on('error', () => {}); // EPIPE, once the backend has let go
	const closed = new Promise((resolve) => sock.once('close', resolve));
	await once(sock, 'connect');
	sock.write(Buffer.concat([
		beginRecord(1, false),
		record(PARAMS, 1, encodeParams(requestParams('GET',
		    `/subscribe/${user}/device/d`))),
		record(PARAMS, 1), record(STDIN, 1),
	]));
	await until(() => /\r\n\r\n:/.test(out));
	await stack.subscribe(user, 'd');
	await until(() => ended);
	const timer = setInterval(() => {
		if (!sock.destroyed)
			sock.write(record(PARAMS, 1, Buffer.from('more')));
	}, 100);
	t.after(() => clearInterval(timer));
	await closed;
	clearInterval(timer);
});

// A POST whose body starts now and ends when finish() is called, straight
// to the front on its own connection. finish() resolves with the status.
async function slowPost(port, p, start, rest) {
	const sock = net.connect(port, '127.0.0.1');
	sock.on('error', () => {});
	await once(sock, 'connect');
	let got = '';
	sock.on('data', (d) => { got += d.toString('latin1'); });
	const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
	await new Promise((resolve) => sock.write(
	    `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
	    'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n' +
	    `Connection: close\r\n\r\n${chunk(start)}`, resolve));
	return {
		sock,
		async finish() {
			sock.write(`${chunk(rest)}0\r\n\r\n`);
			await once(sock, 'close');
			const m = /^HTTP\/1\.1 (\d+)/.exec(got);
			return m ? Number(m[1]) : null;
		},
	};
}

// Slow clients through the shipped Caddyfile: more requests with a body on
// its way at once than the backend could have threads (BEEP_MAX_STREAMS=1,
// BEEP_MIN_IDLE=1: 259 workers at most) hold none of them, since Caddy reads
// each body whole before the backend sees the request (buffer_requests).
// Without it each held a worker until BEEP_READ_TIMEOUT (5 minutes here),
// and a POST to a live stream waited behind them.
test('slow bodies by the hundred through the shipped Caddyfile hold no ' +
    'backend thread', T, async (t) => {
	const stack = await startStack({ env: { BEEP_MAX_STREAMS: '1',
	    BEEP_MIN_IDLE: '1', BEEP_READ_TIMEOUT: '300' } }, t);
	const c = stack.client();
	const u = uid('slowbodies');
	const sub = await openSub(stack, subPath(u, 'd'));
	assert.equal(sub.status, 200);
	const SLOW = 300;
	const slow = [];
	t.after(() => slow.forEach((s) => s.sock.destroy()));
	for (let i = 0; i < SLOW; i++)
		slow.push(await slowPost(c.port, postPath(u, 'd'),
		    '{"data":"slow-', `${i}"}`));
	// While every one of them is on its way: answered, and delivered.
	const r = await c.postJson(postPath(u, 'd'), { data: 'fast' });
	assert.equal(r.status, 200, r.text);
	assert.equal((await sub.stream.nextEvent(10000)).data, 'fast');
	// The stream and this request: nothing else is the backend's.
	assert.equal((await c.health()).requests, 2);
	// Each slow one, once whole, reaches the backend and its stream.
	const statuses = [];
	for (const s of slow)
		statuses.push(await s.finish());
	assert.deepEqual(statuses, Array(SLOW).fill(200));
	const got = [];
	for (let i = 0; i < SLOW; i++)
		got.push((await sub.stream.nextEvent(10000)).data);
	assert.deepEqual(got, slow.map((_, i) => `slow-${i}`));
	sub.stream.close();
});

// ---------------------------------------------------------------------------
// Kept-alive connections behind nginx (conf/nginx.conf: fastcgi_keep_conn).

// The inodes of the backend's connected sockets: not its listener, nor its
// stdio (node's pipes are socket pairs).
function backendConns(pid) {
	const listening = new Set();
	for (const line of fs.readFileSync('/proc/net/unix', 'utf8')
	    .split('\n').slice(1)) {
		const f = line.trim().split(/\s+/);
		// Flags __SO_ACCEPTCON (00010000): a listening socket.
		if (f.length >= 7 && f[3] === '00010000')
			listening.add(f[6]);
	}
	const conns = new Set();
	for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
		if (Number(fd) <= 2)
			continue;
		let target;
		try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch {
			continue;
		}
		const m = /^socket:\[(\d+)\]$/.exec(target);
		if (m && !listening.has(m[1]))
			conns.add(m[1]);
	}
	return conns;
}

// nginx's keepalive_timeout in these tests (s): the test idles 3 s, past
// the backend's 1 s timeouts (3 times them: a loaded machine's timers are
// late), and must look before nginx's own timer, in another process,
// closes the connection: 3 s to spare (with 3 s here, 1 s).
const NGINX_IDLE = 6;

function shortKeepalive(site) {
	return rewrite(site, /keepalive_timeout\s+\d+s;/,
	    `keepalive_timeout ${NGINX_IDLE}s;`, 'nginx keepalive_timeout');
}

test('an idle kept connection lives as long as nginx keeps it', T,
    async (t) => {
	// Reads and writes time out at 1 s: the idle wait must not.
	const rig = new Rig(t, 'nginx-keep', { env: {
		BEEP_READ_TIMEOUT: '1', BEEP_WRITE_TIMEOUT: '1',
	} });
	await rig.startListen();
	await rig.startNginx({ edit: shortKeepalive });
	const c = rig.client();
	const p = postPath(uid('keep'), 'nobody');
	let r = await c.postJson(p, { data: 'x' });
	assert.equal(r.status, 404, r.text);
	const kept = backendConns(rig.backend.pid);
	assert.ok(kept.size >= 1, 'nginx keeps a FastCGI connection');

	// Idle past the backend's read and write timeouts, within nginx's.
	await delay(3000);
	const still = backendConns(rig.backend.pid);
	for (const ino of kept)
		assert.ok(still.has(ino), 'the backend kept the idle connection');
	// A POST nginx sends on it is served (not 502).
	r = await c.postJson(p, { data: 'y' });
	assert.equal(r.status, 404, r.text);

	// nginx closes it at its keepalive_timeout: the backend lets it go.
	await poll(() => [...kept].every((ino) =>
	    !backendConns(rig.backend.pid).has(ino)),
	    { timeout: 15000, what: 'the backend closed its end after nginx' });
	r = await c.postJson(p, { data: 'z' });
	assert.equal(r.status, 404, r.text);
	rig.checkBackendLog();
});

test('BEEP_IDLE_TIMEOUT closes a kept connection idle that long', T,
    async (t) => {
	const rig = new Rig(t, 'nginx-idle', { env: { BEEP_IDLE_TIMEOUT: '1' } });
	await rig.startListen();
	await rig.startNginx();
	const c = rig.client();
	const p = postPath(uid('idle'), 'nobody');
	assert.equal((await c.postJson(p, { data: 'x' })).status, 404);
	const kept = backendConns(rig.backend.pid);
	assert.ok(kept.size >= 1);
	await poll(() => [...kept].every((ino) =>
	    !backendConns(rig.backend.pid).has(ino)),
	    { timeout: 10000, what: 'the idle connection closed' });
	// nginx saw it go and opens another.
	assert.equal((await c.postJson(p, { data: 'y' })).status, 404);
	rig.checkBackendLog();
});
