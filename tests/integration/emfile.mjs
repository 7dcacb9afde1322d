// The backend at its descriptor limit, for tests 19 and 67: a read
// deadline holds a duplicate of its connection's descriptor, so a request
// that takes the last descriptor has none, and is read only once it has
// come whole (server_read_unguarded()).
import assert from 'node:assert/strict';
import { BEEP_BIN, poll } from './harness.mjs';
import { Rig, launch, waitLine } from './fronts.mjs';
import {
	FcgiConn, requestParams, beginRecord, record, encodeParams, PARAMS, STDIN,
} from './fcgi.mjs';

export const READ_TIMEOUT = 2; // seconds, at the descriptor limit below
const LIMIT = 40;

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

// A backend at 40 descriptors (BEEP_READ_TIMEOUT 2 s), filled with raw
// streams until one is not served: every descriptor is taken, and the last
// stream tried waits in the backlog (accept() may fail for a moment while a
// starting stream holds its deadline's duplicate: served within the
// back-off's first pause; past its longest, 2 s, none is free). Returns
// the rig, the streams and the waiting one; letting two streams go lets
// the waiting stream take one, and whatever is queued behind it the last,
// which leaves none for a read deadline.
export async function atDescriptorLimit(t, name) {
	const rig = new Rig(t, name);
	rig.backend = rig.track(launch('prlimit', [`--nofile=${LIMIT}:${LIMIT}`,
	    '--', BEEP_BIN, '--listen', `unix:${rig.sock}`], {
		cwd: rig.dir, tag: 'beep',
		env: { ...process.env, BEEP_READ_TIMEOUT: String(READ_TIMEOUT),
		    BEEP_LOG_LEVEL: 'debug', BEEP_MIN_IDLE: '2' },
	}));
	await waitLine(rig.backend, /\bready\b/);
	const streams = [];
	t.after(() => streams.forEach((c) => c.destroy()));
	for (let i = 0; i < LIMIT; i++) {
		const c = rawStream(rig.sock, i);
		streams.push(c);
		await c.connected;
		const served = await poll(() => c.stdout.length > 0, {
			what: `stream ${i} answered`, timeout: 3500,
		}).catch(() => false);
		if (!served)
			break;
	}
	assert.ok(rig.backend.lines.some((l) =>
	    /accept failing: EMFILE/.test(l)), 'the descriptor limit reached');
	const waiting = streams[streams.length - 1];
	assert.equal(waiting.stdout.length, 0);
	return { rig, streams, waiting };
}
