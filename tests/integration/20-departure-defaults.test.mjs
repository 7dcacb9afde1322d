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
import { Rig } from './fronts.mjs';

const T = { timeout: 60000 };

test('behind Caddy at the defaults: unlisted within 10 s', T, async (t) => {
	const stack = await startStack({}, t);
	const c = stack.client();
	const u = uid('gone');
	const stay = await stack.subscribe(u, 'stay');
	const leave = await stack.subscribe(u, 'leave');
	assert.deepEqual(await c.devices(u), ['leave', 'stay']);
	const left = Date.now();
	leave.close(); // the socket destroyed, as a vanishing phone's
	await poll(async () => !(await c.devices(u)).includes('leave'),
	    { timeout: 10000, interval: 100, what: 'unlisted within 10 s' });
	t.diagnostic(`unlisted after ${Date.now() - left} ms`);
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
	try {
		await poll(async () => !(await c.devices(u)).includes('leave'),
		    { timeout: 10000, interval: 100,
		      what: 'unlisted within 10 s under posts' });
	} finally {
		done = true;
		await poster;
	}
	t.diagnostic(`unlisted after ${Date.now() - left} ms; POSTs ` +
	    answered.join(' '));
	assert.equal(stay.ended, false);
});

test('behind nginx (conf/nginx.conf) at the defaults: unlisted at once', T,
    async (t) => {
	const rig = new Rig(t, 'nginx-gone');
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
	// Well within one keepalive interval (4 s): not noticed by a write.
	await poll(async () => !(await c.devices(u)).includes('leave'),
	    { timeout: 2000, interval: 50, what: 'unlisted at once' });
	t.diagnostic(`unlisted after ${Date.now() - left} ms`);
	rig.checkBackendLog();
});
