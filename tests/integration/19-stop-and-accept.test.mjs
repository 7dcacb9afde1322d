// The accept loop: stopping with an inherited socket, and running out of
// descriptors.
//
// Stop: a socket inherited from systemd (LISTEN_FDS) or spawn-fcgi is shared
// with the next instance, so it is left open; the idle workers must stop
// accepting at once, so that connections made during the stop wait in the
// backlog for the next instance instead of being answered 503 (which
// EventSource treats as fatal). Emulated as in 09-fronts (Rig.startSupervisor
// in fronts.mjs): a supervisor holds the socket (from systemd-socket-activate)
// and starts two backends on it in turn; lighttpd in front opens a connection
// per request.
//
// The descriptor limit: accept() failing with EMFILE is logged once, the
// workers back off, and the recovery is logged once when descriptors free
// up; then connections are served again. A request that takes the last
// descriptor, which leaves none for its read deadline, is not read unless
// it has come whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import {
	BEEP_BIN, poll, withTimeout, uid, subPath,
} from './harness.mjs';
import {
	Rig, launch, waitLine, stop,
} from './fronts.mjs';
import {
	FcgiConn, requestParams, beginRecord, record, encodeParams, PARAMS, STDIN,
} from './fcgi.mjs';
import {
	atDescriptorLimit, backlog, linesToExit, ACCEPT_FAILING, CLOSED_UNREAD,
	READ_TIMEOUT,
} from './emfile.mjs';

const T = { timeout: 90000 };

test('during a stop, a new connection is served by the next instance', T,
    async (t) => {
	const rig = new Rig(t, 'lighttpd+stop');
	const { sup, generation, checkLog } = await rig.startSupervisor();
	await rig.startLighttpd();
	rig.backend = await generation(1);
	const c = rig.client();
	assert.equal((await c.health()).status, 'ok');

	// Hold the stop open: a request whose body never comes keeps
	// generation 1 stopping (it waits for requests in progress, 1.5 s).
	const held = new FcgiConn(rig.sock);
	t.after(() => held.destroy());
	await held.connected;
	held.begin();
	held.params(requestParams('POST', '/user/u/device/d', {
		CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '100',
	}));
	held.stdin('{"data":');
	// Generation 1 has it (the response to a request it reads).
	await poll(async () => (await c.health()).threads > 8,
	    { what: 'generation 1 took the held connection' });

	const exited = stop(rig.backend, 'SIGTERM', 10000);
	await waitLine(sup, /info server: no longer accepting: new connections wait/);
	// Made during the stop: it must wait for generation 2.
	const u = uid('stop');
	const s = await rig.open(subPath(u, 'd'));
	assert.equal(s.status, 200, s.status === 200 ? '' : await s.text());
	assert.match(s.headers['content-type'], /^text\/event-stream/);
	await s.waitComments(1, 10000);
	const e1 = await exited;
	assert.deepEqual([e1.code, e1.killed], [0, false]);
	// The stop did last: the held request was still in progress.
	assert.ok(sup.lines.some((l) => /1 requests still in progress at exit/
	    .test(l)), sup.lines.join('\n'));
	rig.backend = await generation(2);
	assert.deepEqual(await c.devices(u), ['d']);
	s.close();
	const e2 = await stop(rig.backend, 'SIGTERM', 10000);
	assert.deepEqual([e2.code, e2.killed], [0, false]);
	await withTimeout(sup.exited, 10000);
	checkLog();
});

// A GET over a fresh raw FastCGI connection: its status, or null.
async function rawGet(sock, uri) {
	const conn = new FcgiConn(sock);
	try {
		await conn.connected;
		conn.begin();
		conn.params(requestParams('GET', uri));
		conn.endStdin();
		return (await withTimeout(conn.response(), 10000)).status;
	} finally {
		conn.destroy();
	}
}

test('accept at the descriptor limit: logged once, backs off, recovers', T,
    async (t) => {
	const rig = new Rig(t, 'emfile', { env: { BEEP_READ_TIMEOUT: '60' } });
	// Soft and hard limit: the backend cannot raise it.
	rig.backend = rig.track(launch('prlimit', ['--nofile=40:40', '--',
	    BEEP_BIN, '--listen', `unix:${rig.sock}`], {
		cwd: rig.dir, tag: 'beep',
		env: { ...process.env, BEEP_READ_TIMEOUT: '60' },
	}));
	await waitLine(rig.backend, /\bready\b/);
	assert.equal(await rawGet(rig.sock, '/healthz'), 200);

	// Connections that send nothing: each holds a descriptor (and one for
	// its read deadline) until the limit.
	const conns = [];
	t.after(() => conns.forEach((c) => c.destroy()));
	for (let i = 0; i < 40; i++) {
		const c = new FcgiConn(rig.sock);
		conns.push(c);
		await c.connected;
	}
	await waitLine(rig.backend, ACCEPT_FAILING);
	// At the limit: every descriptor below it taken, and a connection
	// waiting in the backlog that the workers keep failing to accept.
	const { pid } = rig.backend;
	const full = () => readdirSync(`/proc/${pid}/fd`).map(Number)
	    .filter((fd) => fd < 40).length === 40 && backlog(rig.sock) > 0;
	await poll(full, { what: 'every descriptor taken, one waiting' });
	// Held there longer than the back-off's longest pause (2 s), so that
	// the workers fail again (the scenario, not a wait for anything):
	// before the back-off each logged every failure (8 workers, every
	// 50 ms).
	await delay(3000);
	assert.ok(full(), 'still at the limit');

	// Free the descriptors: it recovers and serves.
	for (const c of conns)
		c.destroy();
	await waitLine(rig.backend, /info server: accept recovered after \d+ failures/);
	await poll(async () => (await rawGet(rig.sock, '/healthz')) === 200,
	    { what: 'served again', timeout: 15000 });
	// Its whole log, to its exit (which comes after every failure): the
	// failures were logged once, and the recovery.
	assert.equal(await linesToExit(rig, ACCEPT_FAILING), 1,
	    rig.backend.lines.join('\n'));
	assert.equal(rig.backend.lines.filter((l) =>
	    /accept recovered/.test(l)).length, 1);
	assert.ok(!rig.backend.lines.some((l) => /warn server: accept: /.test(l)));
	rig.checkBackendLog();
});

// free(): two streams go, the waiting one is served, and whatever is
// queued behind it takes the last descriptor.
async function atLimit(t, name) {
	const { rig, streams, waiting } = await atDescriptorLimit(t, name);
	const free = async () => {
		streams[0].destroy();
		streams[1].destroy();
		await poll(() => waiting.stdout.length > 0,
		    { what: 'the waiting stream served', timeout: 10000 });
	};
	return { rig, free };
}

// A read deadline holds a duplicate of its connection's descriptor. When
// the connection took the last one, the deadline fell back to SO_RCVTIMEO,
// a limit per read: a peer that sent a byte within each held its worker
// for good ("one deadline for the whole request, not per read", README),
// at the descriptor limit, where streams (a descriptor each) put a
// service under pressure. Such a request is now closed unread.
test('at the descriptor limit a request with no room for its read ' +
    'deadline is not read', T, async (t) => {
	const { rig, free } = await atLimit(t, 'emfile-deadline');

	// A request that trickles in, behind that stream in the backlog.
	const slow = new FcgiConn(rig.sock);
	t.after(() => slow.destroy());
	await slow.connected;
	slow.begin();
	slow.paramsPart(encodeParams(requestParams('POST', '/user/u/device/d',
	    { CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '1000' })));
	slow.write(record(PARAMS, 1));
	slow.stdin('{"data":"');
	let closed = false;
	slow.closed.then(() => { closed = true; });

	await free();
	// A byte every half second (the pace is the attack, not a wait):
	// within each read's limit, until the backend closes it. What is
	// asserted is why it closed (the whole request's deadline, its own
	// line), not how soon: the bound, 10 x BEEP_READ_TIMEOUT, is a hang
	// guard only (a limit per read holds it for good).
	const start = Date.now();
	while (!closed && Date.now() - start < 10 * READ_TIMEOUT * 1000) {
		slow.stdin('x');
		await Promise.race([delay(500), slow.closed]);
	}
	assert.ok(closed, 'a request trickled in was still being read ' +
	    `${Date.now() - start} ms after it started, its reads each ` +
	    `within BEEP_READ_TIMEOUT (${READ_TIMEOUT} s):\n` +
	    rig.backend.lines.join('\n'));
	assert.equal(slow.stdout.length, 0, 'closed unread, no answer');
	// Closed by its read deadline, the one for the whole request: one
	// such line in the backend's whole log, to its exit.
	assert.equal(await linesToExit(rig, CLOSED_UNREAD), 1,
	    'one request closed for its deadline: the trickled one');
	rig.checkBackendLog();
});

// The same limit, but a legitimate POST: an SDP offer of some 12 KB (a
// video call with simulcast and its candidates), written whole in one
// write. It needs no deadline at all (no read of it can block), but it is
// larger than the backend's look at a request (8 KiB), so it is never seen
// "whole": the worker polls it for BEEP_READ_TIMEOUT, then closes it
// unread. On 3a4a231 it was read (a limit per read) and answered.
test('at the descriptor limit a large POST that has come whole is ' +
    'answered', T, async (t) => {
	const { rig, free } = await atLimit(t, 'emfile-large');

	// The offer, whole, in one write, behind that stream in the backlog.
	const body = Buffer.from(JSON.stringify({ data: {
		type: 'offer', sdp: 'a=candidate:1 1 udp 2122260223 ' +
		    '192.0.2.1 54321 typ host\r\n'.repeat(400) } }));
	assert.ok(body.length > 8192 && body.length < 65535);
	const post = new FcgiConn(rig.sock);
	t.after(() => post.destroy());
	await post.connected;
	post.write(Buffer.concat([beginRecord(1),
	    record(PARAMS, 1, encodeParams(requestParams('POST',
	        '/user/emfile5/device/d', {
		        CONTENT_TYPE: 'application/json',
		        CONTENT_LENGTH: String(body.length) }))),
	    record(PARAMS, 1), record(STDIN, 1, body), record(STDIN, 1)]));

	await free();
	const r = await withTimeout(post.response(), 4 * READ_TIMEOUT * 1000);
	assert.equal(r.status, 200,
	    `a whole ${body.length}-byte POST at the descriptor limit: ` +
	    `status ${r.status} (closed unread: ${!r.ended || r.head === ''})`);
	rig.checkBackendLog();
});

// The thread limit (RLIMIT_NPROC, enforced for a user that is not root, as
// systemd's DynamicUser runs it): at it, a worker cannot start another,
// and one that became a stream left no worker to accept, so POSTs (and
// /healthz) waited unanswered until a stream ended. A new stream is now
// refused while no worker is idle and none could be started: 503 "no
// thread free for a stream" (to an EventSource, the refused event it comes
// back from), and the worker goes on accepting. The start warns of the
// limit. Run as nobody under prlimit, as root passes any RLIMIT_NPROC.
// kept: a connection kept by the front (FCGI_KEEP_CONN, as nginx's
// fastcgi_keep_conn and lighttpd send) is parked first: its waiting worker
// accepts nothing, so it must not count as one free for new connections (a
// review found the refusal never came then).
for (const kept of [false, true]) {
	test('at the thread limit: streams refused, POSTs still answered' +
	    (kept ? ', a kept connection parked' : ''), T, async (t) => {
		await atThreadLimit(t, kept);
	});
}

async function atThreadLimit(t, withKept) {
	const rig = new Rig(t, 'nproc');
	chmodSync(rig.dir, 0o777);
	rig.backend = rig.track(launch('prlimit', ['--nproc=40:40', '--',
	    'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
	    BEEP_BIN, '--listen', `unix:${rig.sock}`, '--socket-mode', '0666'], {
		cwd: rig.dir, tag: 'beep', env: process.env,
	}));
	await waitLine(rig.backend, /\bready\b/);
	assert.ok(rig.backend.lines.some((l) =>
	    /warn server: RLIMIT_NPROC is 40, below the \d+ workers/.test(l)),
	    rig.backend.lines.join('\n'));
	const kept = [];
	for (let i = 0; withKept && i < 2; i++) {
		const k = new FcgiConn(rig.sock);
		t.after(() => k.destroy());
		await k.connected;
		k.begin(1, true);
		k.params(requestParams('GET', '/healthz'));
		k.endStdin();
		await poll(() => k.ended, { what: 'the kept /healthz answered' });
		kept.push(k);
	}

	// Streams until one is refused; each holds its worker.
	const streams = [];
	t.after(() => streams.forEach((c) => c.destroy()));
	const head = (c) => poll(() => c.stdout.includes('\r\n\r\n') ||
	    c.ended, { what: 'a response head', timeout: 10000 });
	let refused = null;
	for (let i = 0; i < 60 && !refused; i++) {
		const c = new FcgiConn(rig.sock);
		await c.connected;
		c.begin();
		c.params(requestParams('GET', subPath(`nproc${i}`, 'd')));
		c.endStdin();
		await head(c);
		if (/^Status: 503/m.test(c.stdout.toString('latin1')))
			refused = c;
		else
			streams.push(c);
	}
	assert.ok(refused, 'a stream refused before 60');
	const r = await refused.response();
	assert.deepEqual(JSON.parse(r.body),
	    { error: 'no thread free for a stream' });
	assert.match(r.head, /^Retry-After: \d+/m);
	assert.ok(streams.length > 0);

	// A POST to an open stream, on a new connection, is answered, and the
	// stream has it.
	const post = new FcgiConn(rig.sock);
	await post.connected;
	post.begin();
	const body = '{"data":"still here"}';
	post.params(requestParams('POST', '/user/nproc0/device/d', {
		CONTENT_TYPE: 'application/json', CONTENT_LENGTH: body.length }));
	post.stdin(body);
	post.endStdin();
	assert.equal((await withTimeout(post.response(), 10000)).status, 200);
	await poll(() => streams[0].stdout.toString('latin1')
	    .includes('data: still here'), { what: 'the message on its stream' });
	assert.equal(await rawGet(rig.sock, '/healthz'), 200);
	// The failed thread starts are logged.
	assert.ok(rig.backend.lines.some((l) => /pthread_create: /.test(l)));
	if (!withKept)
		return;

	// It passes: the streams leave, and a stream on a kept connection is
	// taken again.  (A review saw the last failed start remembered until
	// the next start, and such a stream refused while another kept
	// connection was parked: now a start is tried again before a refusal.
	// That race is not reproduced here every time.)
	// Asked on the other kept connection: a new one would be accepted,
	// and its accept start a worker (which succeeds now, and clears it).
	refused.destroy();
	streams.forEach((c) => c.destroy());
	await poll(async () => {
		const k1 = kept[1];
		k1.stdout = Buffer.alloc(0);
		k1.ended = false;
		k1.begin(1, true);
		k1.params(requestParams('GET', '/healthz'));
		k1.endStdin();
		await poll(() => k1.ended, { what: 'a kept /healthz' });
		return /"streams":0\b/.test(k1.stdout.toString('latin1'));
	}, { what: 'every stream gone', timeout: 20000 });
	const k = kept[0];
	k.stdout = Buffer.alloc(0);
	k.ended = false;
	k.begin(1, true);
	k.params(requestParams('GET', subPath('after', 'd')));
	k.endStdin();
	await head(k);
	assert.match(k.stdout.toString('latin1'), /text\/event-stream/);
}
