// The backend at its descriptor limit, for tests 19, 67 and 129: a read
// deadline holds a duplicate of its connection's descriptor, so a request
// that takes the last descriptor has none, and is read only once it has
// come whole (server_read_unguarded()).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { BEEP_BIN, poll } from './harness.mjs';
import { Rig, launch, waitLine, stop } from './fronts.mjs';
import {
	FcgiConn, requestParams, beginRecord, record, encodeParams, PARAMS, STDIN,
} from './fcgi.mjs';

export const READ_TIMEOUT = 2; // seconds, at the descriptor limit below
const LIMIT = 40;

// The backend's log lines at the limit: accept() failing (logged once
// until it recovers), and a request with no descriptor left for its read
// deadline closed at BEEP_READ_TIMEOUT before it had come.
export const ACCEPT_FAILING = /warn server: accept failing: EMFILE/;
export const CLOSED_UNREAD =
    /debug server: read deadline: EMFILE: connection closed unread/;

// How many of the backend's log lines match re, to its exit: it is
// stopped (SIGTERM) and its output read to the end, so that a line the
// process wrote before what the test saw (a close, a recovery), but not
// yet read from its pipe, is counted, and so is every line after.
export async function linesToExit(rig, re) {
	await stop(rig.backend);
	await rig.backend.drained;
	return rig.backend.lines.filter((l) => re.test(l)).length;
}

// A subscribe over a raw connection, written whole in one write: it needs
// no read deadline, so its stream holds one descriptor.
function rawStream(sock, i) {
	const c = new FcgiConn(sock);
	// A user each: one user's 33rd device would be refused (429), not
	// held open as a stream.
	const p = encodeParams(requestParams('GET',
	    `/subscribe/emfile${i}/device/d`));
	c.write(Buffer.concat([beginRecord(1), record(PARAMS, 1, p),
	    record(PARAMS, 1), record(STDIN, 1)]));
	return c;
}

// Connections in the backlog of the listening socket at path (ss's Recv-Q).
export function backlog(path) {
	const out = execFileSync('ss', ['-xlH', 'src', path], { encoding: 'utf8' });
	const f = out.trim().split(/\s+/);
	assert.equal(f[1], 'LISTEN', out);
	return Number(f[2]);
}

// Whether process pid holds every descriptor its limit allows and will
// free none by itself: /proc/<pid>/fd lists every number below `limit`
// (accept() has none left; one inherited above it, as a job server's pipe,
// does not count), and no socket among them twice past stdio (a read
// deadline's duplicate of its connection, which the connection's worker
// closes once its request is read or its stream starts). False too when
// an entry goes while it is read.
function descriptorsFull(pid, limit) {
	const dir = `/proc/${pid}/fd`;
	try {
		const fds = readdirSync(dir).map(Number).filter((fd) => fd < limit);
		if (fds.length < limit)
			return false;
		const sockets = fds.filter((fd) => fd > 2)
		    .map((fd) => readlinkSync(`${dir}/${fd}`))
		    .filter((to) => to.startsWith('socket:'));
		return new Set(sockets).size === sockets.length;
	} catch (e) {
		if (e.code === 'ENOENT')
			return false;
		throw e;
	}
}

// A backend at 40 descriptors (BEEP_READ_TIMEOUT 2 s), filled with raw
// streams until one is not served: every descriptor is taken, and the last
// stream tried waits in the backlog. Each stream is awaited until it is
// served or that state is reached: the backend's descriptors all held
// (read from /proc) with no duplicate to be closed, and then the stream
// still in the backlog (read in that order: accepted by the first look,
// it is out of the backlog at the second; not, it has no descriptor left
// to be accepted with, then or later). A starting stream may hold its deadline's duplicate
// for a moment, so accept() may fail then (served after the back-off's
// pause); that is not the state. Returns the rig, the streams and the
// waiting one; letting two streams go lets the waiting stream take one,
// and whatever is queued behind it the last, which leaves none for a read
// deadline.
export async function atDescriptorLimit(t, name) {
	const rig = new Rig(t, name);
	rig.backend = rig.track(launch('prlimit', [`--nofile=${LIMIT}:${LIMIT}`,
	    '--', BEEP_BIN, '--listen', `unix:${rig.sock}`], {
		cwd: rig.dir, tag: 'beep',
		env: { ...process.env, BEEP_READ_TIMEOUT: String(READ_TIMEOUT),
		    BEEP_LOG_LEVEL: 'debug', BEEP_MIN_IDLE: '2' },
	}));
	await waitLine(rig.backend, /\bready\b/);
	// prlimit execs the backend: same pid.
	const { pid } = rig.backend;
	const streams = [];
	t.after(() => streams.forEach((c) => c.destroy()));
	let full = false;
	for (let i = 0; i < LIMIT && !full; i++) {
		const c = rawStream(rig.sock, i);
		streams.push(c);
		await c.connected;
		let gone = false;
		c.closed.then(() => { gone = true; });
		// A bound on the awaited state only, not a guess at it.
		const got = await poll(() => {
			if (c.stdout.length > 0)
				return 'served';
			if (gone)
				return 'closed';
			return descriptorsFull(pid, LIMIT) &&
			    backlog(rig.sock) > 0 && c.stdout.length === 0 &&
			    'full';
		}, { what: `stream ${i} served or the descriptor limit reached`,
		    timeout: 30000 });
		assert.notEqual(got, 'closed', `stream ${i} closed unanswered:\n` +
		    rig.backend.lines.join('\n'));
		full = got === 'full';
	}
	assert.ok(full, `${LIMIT} streams served: the limit never reached`);
	await waitLine(rig.backend, ACCEPT_FAILING);
	const waiting = streams[streams.length - 1];
	assert.equal(waiting.stdout.length, 0);
	return { rig, streams, waiting };
}
