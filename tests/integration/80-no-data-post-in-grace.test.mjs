// A POST without data asks "is that device there?" (test 59: the Express
// service looked the device up first, 404, and only then at the data,
// 400; Beep's Flutter client maps 404 to NO_DEVICE). A device whose
// stream has just ended is, for this service, still there: a POST with
// data to it within BEEP_GRACE_SECONDS is accepted (202), held and
// delivered when it comes back (README, The API: "404: no such device
// (never connected, or its grace window is over)"); the Express service,
// which never forgot a device, answered such a probe 400 too. So the
// probe must not answer 404 "device gone" for the very device a POST
// with data is accepted for: a client that asks first would give up on
// a peer that is only reconnecting (a network hand-over, a page reload),
// which is what the grace window is for.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	useStack, startCluster, CLUSTER_QUICK, uid, postPath, poll, leftInGrace,
} from './harness.mjs';

const h = useStack({ before, after }, {
	env: { BEEP_KEEPALIVE: '1', BEEP_GRACE_SECONDS: '60' },
});
const T = { timeout: 60000 };

test('no data to a device in its grace window: 400 (it is there), as ' +
    'one with data is held (202)', T, async () => {
	const c = h.stack.client();
	const u = uid('grace'), d = 'phone';
	const s = await h.stack.subscribe(u, d);
	s.close();
	await poll(async () => (await c.devices(u)).length === 0,
	    { timeout: 20000, what: `${u}/${d} in its grace period` });

	const probe = await c.request('POST', postPath(u, d),
	    { headers: { 'Content-Type': 'application/json' }, body: '{}' });
	const held = await c.postForm(postPath(u, d), { data: 'held' });
	assert.equal(held.status, 202, `a POST with data in grace: ${held.text}`);
	assert.equal(probe.status, 400, 'a POST without data to a device in ' +
	    'its grace window (a POST with data to it is accepted, 202, and ' +
	    `delivered when it returns) must not say "device gone": got ` +
	    `${probe.status} ${probe.text}`);

	// Nothing of the probe was held: only "held" comes on return.
	const back = await h.stack.subscribe(u, d);
	assert.equal((await back.nextEvent()).data, 'held');
	back.close();
});

test('in a cluster too: no data to a device in its grace window, posted ' +
    'from another node: 400', T, async (t) => {
	const cl = await startCluster({ nodes: 2,
	    env: { ...CLUSTER_QUICK, BEEP_GRACE_SECONDS: '60' } }, t);
	const [a, b] = cl.nodes;
	const cb = b.client();
	const u = uid('cgrace'), d = 'phone';
	await leftInGrace(a, cb, u, d);
	const probe = await cb.request('POST', postPath(u, d),
	    { headers: { 'Content-Type': 'application/json' }, body: '{}' });
	const held = await cb.postForm(postPath(u, d), { data: 'held' });
	assert.equal(held.status, 202, `a POST with data in grace: ${held.text}`);
	assert.equal(probe.status, 400, 'a POST without data to a device in ' +
	    'its grace window, through another node, must not say "device ' +
	    `gone": got ${probe.status} ${probe.text}`);
	// Never there: 404 still.
	const none = await cb.request('POST', postPath(u, 'never'),
	    { headers: { 'Content-Type': 'application/json' }, body: '{}' });
	assert.equal(none.status, 404, none.text);
});
