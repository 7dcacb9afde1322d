// Issue 9 stress, at the default settings through Caddy: 100 devices whose
// streams are cut at random (also before their first event) while 5,000
// messages are posted. Each client resumes only as EventSource does: with
// the last `id:` it parsed on the stream it lost, which may be the position
// the stream opened with (an id with no event), or the one it had before
// when that stream gave it nothing. Cut streams stay open on the backend
// until it notices (Caddy needs a few writes to the departed client for
// that), so a ghost may take messages meant for its successor, and a device
// may pile up ghosts past BEEP_MAX_STREAMS_PER_DEVICE (the oldest is then
// replaced, never refused). At the end every message answered 200/202 was
// received exactly once, in per-device order, with no reset and nothing
// dropped. The run itself is in stress.mjs, shared with 11-replay-stress.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { skipReason } from './harness.mjs';
import { runStress } from './stress.mjs';

const o = {
	users: 10, devices: 10,          // 100 devices
	perDevice: 50,                   // 5,000 messages
	senders: 10,
	cutEvents: [0, 8], cutMs: [0, 800],
	outageShare: 0.08, outageMs: [1000, 6000],
	eventSource: true,
	// Defaults (the harness turns only the POST rate limit off), but for
	// the streams per address: every client here is 127.0.0.1, and 100
	// devices with their ghosts exceed BEEP_MAX_STREAMS_PER_ADDRESS (256).
	env: { BEEP_MAX_STREAMS_PER_ADDRESS: '0' },
};

test(`${o.users * o.devices} devices cut at random (also before any ` +
    `event) while ${o.users * o.devices * o.perDevice} messages are posted, ` +
    'resuming as EventSource does: every accepted message exactly once, ' +
    'in order', { timeout: 180000, skip: skipReason(import.meta.url) },
async (t) => {
	const { stats } = await runStress(t, o);
	assert.equal(stats.subRetries, 0, 'every subscribe got 200 at once: ' +
	    JSON.stringify(stats.subStatus));
	assert.ok(stats.cutBeforeEvent > 0, 'some streams were cut before ' +
	    'their first event');
});
