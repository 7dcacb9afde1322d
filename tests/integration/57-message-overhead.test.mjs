// Review (resource exhaustion, 2026-12-06), through Caddy: BEEP_MAX_MESSAGE_MEMORY
// bounds the memory that held messages take, whatever their size.
//
// README (Delivery guarantees, Memory): "All messages kept (queued for
// streams, held for devices in grace, retained for replay) count against
// BEEP_MAX_MESSAGE_MEMORY". What counts is each message's frame only
// (struct registry_msg's len: the packed event, 8 bytes for `data=x`);
// the message's own struct (~100 bytes: refcount, ids, times, list links),
// its allocation's header and its slot in the device's ring are not. So
// tiny messages (a hang-up, a short ICE candidate) take several times the
// budget: measured on HEAD, 32,768 one-byte messages held for a device
// away filled a 256 KiB budget (message_bytes 262,144, then 503 "message
// memory full") and grew the backend's RSS by 3.7 MB, 14.7 times the
// budget; at the default 256 MiB that is ~3.7 GB, and with the larger
// replay or grace windows an operator may set, a POST rate that reaches it.
//
// The test holds tiny messages for a device away until the budget refuses
// one (503), and requires the backend's RSS growth to stay within twice
// the budget plus 1 MiB (the control: 4,000 requests that hold nothing grew
// it by ~0.2 MB).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, poll, postPath, SANITIZER } from './harness.mjs';
import { procFigures } from './faults.mjs';

const BUDGET = 256 * 1024;
const PARALLEL = 8;
const BOUND = 200000; // posts: a bound only, the budget refuses first

test('tiny held messages stay within BEEP_MAX_MESSAGE_MEMORY in memory, ' +
    'not only in frame bytes', { timeout: 180000 }, async (t) => {
	const stack = await startStack({ env: {
		BEEP_MAX_MESSAGE_MEMORY: String(BUDGET),
		BEEP_REPLAY_MAX: '100000', BEEP_GRACE_SECONDS: '600',
	} }, t);
	const c = stack.client({ maxSockets: PARALLEL });
	const u = uid('tiny');
	const s = await stack.subscribe(u, 'd');
	s.close();
	await poll(async () => !(await c.devices(u)).includes('d'),
	    { timeout: 15000, what: 'd noticed gone (in its grace period)' });
	const before = procFigures(stack.backend.pid).rssKib;
	let held = 0, refused = null;
	while (!refused && held < BOUND) {
		const rs = await Promise.all(Array.from({ length: PARALLEL },
		    () => c.postForm(postPath(u, 'd'), 'data=x')));
		for (const r of rs) {
			if (r.status === 202)
				held++;
			else
				refused = refused || r;
		}
	}
	assert.ok(refused, `${held} held and none refused`);
	assert.equal(refused.status, 503, refused.text);
	const after = procFigures(stack.backend.pid).rssKib;
	const h = await c.health();
	t.diagnostic(`${held} held; message_bytes ${h.message_bytes}; RSS ` +
	    `${before} -> ${after} KiB`);
	// A sanitizer's allocator keeps what is freed and pads blocks: RSS
	// says nothing there.
	if (SANITIZER) {
		t.diagnostic(`RSS not checked under ${SANITIZER}`);
		return;
	}
	const allowedKib = (2 * BUDGET) / 1024 + 1024;
	assert.ok(after - before <= allowedKib,
	    `${held} held messages grew the backend by ${after - before} KiB ` +
	    `with BEEP_MAX_MESSAGE_MEMORY at ${BUDGET / 1024} KiB (allowed ` +
	    `${allowedKib}): the budget counts each message's frame ` +
	    `(message_bytes ${h.message_bytes}), not the ~100 bytes of its ` +
	    'struct, allocation and ring slot');
});
