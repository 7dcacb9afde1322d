// A departed device leaves the device list within 10 s behind Caddy at the
// default settings, also while it is posted to, and at once behind nginx
// (conf/nginx.conf).
//
// Caddy 2.6 closes its FastCGI connection only on the 4th record it relays
// after its client left; the backend writes a keepalive every
// BEEP_KEEPALIVE (4 s) as 3 records, so 2 keepalives do it (see README,
// Deployment). nginx closes the FastCGI connection as soon as its client
// goes, and the backend's watcher sees the hangup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { startStack, uid, poll, subPath, postPath } from './harness.mjs';
import { Rig, waitLine } from './fronts.mjs';

const T = { timeout: 60000 };
const KEEPALIVE = 4000;   // BEEP_KEEPALIVE's default (ms)
const SLACK = 2000;       // past the 2nd keepalive: 10 s in all at the defaults

// Polls until u's device `leave` is unlisted, within SLACK of the second
// keepalive after it left: 10 s after it, as the stream `stay` of the
// same user, opened together with it, receives them (their keepalives go
// out together). The bound counts from that event, not from the close:
// how late a loaded machine (ASan, TSan, a busy CI) sends keepalives and
// Caddy passes them on is not the backend's notice (8.7 s measured from
// the close under ASan with the CPUs busy, against 10).  Returns when the
// second keepalive came (0: not yet), from the close.
async function unlistedWithin2(c, u, stay, k0, left, what) {
	// The interval is the default: counted from the keepalives, the bound
	// no longer sees it (at 6 s the 10 s would be passed).
	assert.match(stay.rawText, new RegExp(
	    `^: beep-signal keepalive=${KEEPALIVE / 1000}\n`));
	let second = 0;
	stay.waitComments(k0 + 2, 60000).then(() => {
		second = Date.now();
	}, () => {});
	await poll(async () => {
		const asked = Date.now();
		if (!(await c.devices(u)).includes('leave'))
			return true;
		assert.ok(second === 0 || asked - second <= SLACK,
		    `${what}: still listed ${asked - second} ms after the ` +
		    `second keepalive since it left (${asked - left} ms after)`);
		return false;
	}, { timeout: 6 * KEEPALIVE, interval: 100, what });
	return second === 0 ? 0 : second - left;
}

test('behind Caddy at the defaults: unlisted within 10 s', T, async (t) => {
	const stack = await startStack({}, t);
	const c = stack.client();
	const u = uid('gone');
	const stay = await stack.subscribe(u, 'stay');
	const leave = await stack.subscribe(u, 'leave');
	assert.deepEqual(await c.devices(u), ['leave', 'stay']);
	const k0 = stay.comments;
	const left = Date.now();
	leave.close(); // the socket destroyed, as a vanishing phone's
	const second = await unlistedWithin2(c, u, stay, k0, left,
	    'unlisted within 2 keepalives (10 s)');
	t.diagnostic(`unlisted after ${Date.now() - left} ms; the 2nd ` +
	    `keepalive came after ${second || '(not yet)'} ms`);
	assert.deepEqual(await c.devices(u), ['stay']);
	assert.equal(stay.ended, false);
});

// A message is one record: posted to a little more often than each
// keepalive (ICE candidates during a call), a departed device got no
// keepalive at all when each message put it off, and Caddy noticed only
// the 4th message, nearly 3 intervals after the first (11.4 s), every
// POST meanwhile answered 200 and delivered to no one.
test('behind Caddy at the defaults, posted to every 3.8 s: unlisted within ' +
    '10 s', T, async (t) => {
	const stack = await startStack({}, t);
	const c = stack.client();
	const u = uid('gone');
	const stay = await stack.subscribe(u, 'stay');
	const leave = await stack.subscribe(u, 'leave');
	assert.deepEqual(await c.devices(u), ['leave', 'stay']);
	const k0 = stay.comments;
	const left = Date.now();
	leave.close();
	let done = false;
	const answered = [];
	// The posts' pace is the scenario (a peer's traffic), not a wait.
	const poster = (async () => {
		for (let i = 0; !done; i++) {
			const r = await c.postJson(postPath(u, 'leave'),
			    { data: `candidate ${i}` });
			answered.push(`${r.status}@${Date.now() - left}`);
			await delay(3800);
		}
	})();
	let second;
	try {
		second = await unlistedWithin2(c, u, stay, k0, left,
		    'unlisted within 2 keepalives (10 s) under posts');
	} finally {
		done = true;
		await poster;
	}
	t.diagnostic(`unlisted after ${Date.now() - left} ms; the 2nd ` +
	    `keepalive came after ${second || '(not yet)'} ms; POSTs ` +
	    answered.join(' '));
	assert.equal(stay.ended, false);
});

test('behind nginx (conf/nginx.conf) at the defaults: unlisted at once', T,
    async (t) => {
	// debug: the backend logs why each stream ended.
	const rig = new Rig(t, 'nginx-gone', { env: { BEEP_LOG_LEVEL: 'debug' } });
	await rig.startListen();
	await rig.startNginx();
	const c = rig.client();
	const u = uid('gone');
	const s = await rig.open(subPath(u, 'leave'));
	assert.equal(s.status, 200);
	await s.waitComments(1, 5000);
	assert.deepEqual(await c.devices(u), ['leave']);
	const left = Date.now();
	s.close();
	// At once: noticed by its connection's hang-up, which nginx makes as
	// its client goes, not by the write of a keepalive (every 4 s) that
	// fails. The stream's end says which; the bound is a hang guard.
	await poll(async () => !(await c.devices(u)).includes('leave'),
	    { timeout: 20000, interval: 50, what: 'unlisted' });
	t.diagnostic(`unlisted after ${Date.now() - left} ms`);
	const ended = await waitLine(rig.backend, / stream \d+ ended: /);
	assert.match(ended, / ended: its connection hung up$/,
	    'noticed by a write, not at once');
	assert.equal(rig.backend.lines.filter((l) =>
	    / stream \d+ ended: /.test(l)).length, 1, 'one stream ended');
	rig.checkBackendLog();
});
