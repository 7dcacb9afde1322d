// A kept connection's request that a worker takes from the parked ones,
// leaving the others nobody waiting, is judged on libfcgi's first read of
// it (server_judge(), 2026-12-07), not peeked at first. When that read
// brings part of it and no descriptor is left for its read deadline (the
// backend at its limit: emfile.mjs), the worker waits for the rest as for
// any request with no deadline (server_read_unguarded(), looking past
// what was read): served once it has come, closed unread at
// BEEP_READ_TIMEOUT if it does not; the others parked are served
// meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poll, uid } from './harness.mjs';
import {
	atDescriptorLimit, linesToExit, CLOSED_UNREAD, READ_TIMEOUT,
} from './emfile.mjs';
import { KeptConn as Kept } from './fcgi.mjs';

const T = { timeout: 90000 };

const statusOf = (text) => Number(/^Status: (\d+)/m.exec(text)?.[1] ?? 200);

// The backend at its descriptor limit, three kept connections served once
// and parked, then a's next request sent in part. Their first requests
// wait in the backlog with the waiting stream until four streams go: each
// has come whole when its worker looks, so none armed a read deadline
// (whose duplicate descriptor a kept connection keeps for its next
// request, deadline_pause()), and the four take every descriptor freed.
async function partAtLimit(t, name) {
	const { rig, streams, waiting } = await atDescriptorLimit(t, name);
	const conns = await Kept.open(rig.sock, 3);
	t.after(() => conns.forEach((c) => c.destroy()));
	for (const c of conns)
		c.write(Kept.request('GET', '/healthz'));
	streams.slice(0, 4).forEach((c) => c.destroy());
	await poll(() => /\r\n\r\n:/.test(waiting.stdout.toString('latin1')),
	    { what: 'the waiting stream opened', timeout: 10000 });
	for (const c of conns) {
		await c.until(() => c.answers.length === 1 || c.closed,
		    'first answer');
		assert.equal(statusOf(c.answers[0]), 200, c.answers[0]);
	}
	const whole = Kept.request('POST', `/user/${uid('judged')}/device/d`,
	    '{"data":"x"}');
	const cut = 20;
	conns[0].write(whole.subarray(0, cut));
	// The others parked are served while a's request waits.
	for (const c of conns.slice(1))
		assert.equal(statusOf(await c.ask('GET', '/healthz')), 200);
	return { rig, conns, rest: whole.subarray(cut) };
}

test('at the descriptor limit, a kept connection\'s request judged on ' +
    'its first read is served once the rest comes', T, async (t) => {
	const { rig, conns: [a], rest } = await partAtLimit(t, 'kept-judged');
	a.write(rest);
	await a.until(() => a.answers.length === 2 || a.closed, 'answered');
	assert.equal(a.answers.length, 2, 'closed unanswered');
	assert.equal(statusOf(a.answers[1]), 404, a.answers[1]);
	assert.equal(await linesToExit(rig, CLOSED_UNREAD), 0,
	    rig.backend.lines.join('\n'));
});

test('at the descriptor limit, a kept connection\'s request judged on ' +
    'its first read whose rest never comes is closed unread', T,
async (t) => {
	const { rig, conns: [a] } = await partAtLimit(t, 'kept-judged-cut');
	await poll(() => rig.backend.lines.some((l) => CLOSED_UNREAD.test(l)),
	    { what: 'closed unread', timeout: 4 * READ_TIMEOUT * 1000 });
	await a.until(() => a.closed, 'closed', 4 * READ_TIMEOUT * 1000);
	assert.equal(a.answers.length, 1, 'no answer to the part');
});
