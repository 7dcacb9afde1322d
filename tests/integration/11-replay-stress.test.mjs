// Stress (issue 4): 500 devices whose streams are cut at random from the
// client side while 20,000 messages are posted through Caddy, keepalives
// every second. Each client reconnects with the id of the last event it
// received (the Last-Event-ID header), so it cuts only once it has one. At
// the end every message answered 200/202 was received exactly once, in
// per-device order, and nothing was reset, dropped or forgotten. A client
// that cuts and reconnects at once may find its device still live (the
// backend has not yet noticed the old stream gone; behind Caddy that takes
// a few keepalives): replay by id is exact either way. The run itself is in
// stress.mjs, shared with 16-flaky-stress (which resumes as EventSource
// does, at the defaults).
import { test } from 'node:test';
import { scaled, skipReason } from './harness.mjs';
import { runStress } from './stress.mjs';

const o = {
	// BEEP_TEST_SCALE (0.25 under ThreadSanitizer) scales the devices.
	users: scaled(50), devices: 10,  // 500 devices
	perDevice: 40,                   // 20,000 messages
	senders: 10,
	cutEvents: [1, 12], cutMs: [50, 1500],
	outageShare: 0.08, outageMs: [1000, 6000],
	eventSource: false,
	env: {
		BEEP_KEEPALIVE: '1', BEEP_GRACE_SECONDS: '600',
		BEEP_REPLAY_SECONDS: '600', BEEP_MAX_STREAMS: '30000',
		// Later limits out of the way: every post comes from one
		// address, and a device's cut streams stay open until the
		// backend notices (several per device at a time).
		BEEP_RATE: '0', BEEP_MAX_STREAMS_PER_DEVICE: '1000',
		// 500 devices' streams, all from 127.0.0.1.
		BEEP_MAX_STREAMS_PER_ADDRESS: '0',
	},
};

test(`${o.users * o.devices} devices cut at random while ` +
    `${o.users * o.devices * o.perDevice} messages are posted: every ` +
    'accepted message exactly once, in order',
{ timeout: 180000, skip: skipReason(import.meta.url) },
async (t) => {
	await runStress(t, o);
});
