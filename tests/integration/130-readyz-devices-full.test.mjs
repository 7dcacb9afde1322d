// Review r109: /readyz and beep_ready at BEEP_MAX_DEVICES.
//   - a node whose devices fill BEEP_MAX_DEVICES, none of them in its grace
//     period to give way (every one live), refuses every new device's
//     subscribe with 503 `too many devices`: /readyz says so too (503, that
//     error), and beep_ready is 0, so a load balancer sends it no new
//     streams; a new stream of a device it has is still taken (as at
//     BEEP_MAX_STREAMS a live device's is);
//   - once a device is in its grace period, and so can give way to a new
//     one, /readyz is 200 again and a new device's subscribe is taken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startStack, uid, poll, subPath, openSub, Client, isJson,
} from './harness.mjs';
import { parseExposition } from './prom.mjs';

const T = { timeout: 60000 };

test('/readyz is 503 while BEEP_MAX_DEVICES refuses new devices', T,
    async (t) => {
	const stack = await startStack({ env: { BEEP_MAX_DEVICES: '2',
	    BEEP_MAX_STREAMS: '100', BEEP_MAX_STREAMS_PER_DEVICE: '4',
	    BEEP_GRACE_SECONDS: '60', BEEP_KEEPALIVE: '1' } }, t);
	const ops = new Client(stack.opsBase);
	t.after(() => ops.close());
	const c = stack.client();
	const ready = async () => {
		const r = await ops.get('/metrics');
		assert.equal(r.status, 200, r.text);
		return parseExposition(r.text).value('beep_ready');
	};
	const u = uid('full');
	assert.equal((await c.get('/readyz')).status, 200);
	const a = await stack.subscribe(u, 'a');
	const b = await stack.subscribe(u, 'b');
	// What a new device gets now.
	const refused = await openSub(stack, subPath(uid('new'), 'd'));
	assert.equal(refused.status, 503, refused.text);
	assert.match(refused.text, /too many devices/);
	// What /readyz and beep_ready say.
	const r = await c.get('/readyz');
	assert.equal(r.status, 503, r.text);
	assert.ok(isJson(r));
	assert.deepEqual(r.json(), { error: 'too many devices' });
	assert.equal(await ready(), 0, 'beep_ready');
	// Liveness is unaffected; a device here still gets a stream.
	assert.equal((await c.get('/healthz')).status, 200);
	const a2 = await openSub(stack, subPath(u, 'a'));
	assert.equal(a2.status, 200, a2.text);
	a2.stream.close();
	// Device b in its grace period: it gives way to a new device.
	b.close();
	await poll(async () => (await c.get('/readyz')).status === 200,
	    { what: '/readyz 200 once a device is in grace', timeout: 20000 });
	assert.equal(await ready(), 1, 'beep_ready');
	const n = await openSub(stack, subPath(uid('new'), 'd'));
	assert.equal(n.status, 200, n.text);
	n.stream.close();
	a.close();
});
