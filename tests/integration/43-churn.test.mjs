// Issue 13, fault: 5,000 subscribe/unsubscribe cycles through Caddy leave
// the backend's threads, open descriptors and resident memory where they
// were after a warm-up, within stated tolerances:
//   - threads: at most BEEP_MIN_IDLE more (the idle pool may settle
//     anywhere between BEEP_MIN_IDLE and 2 x BEEP_MIN_IDLE workers);
//   - descriptors: at most 2 more (none per stream may remain);
//   - RSS: at most 8 MiB more (glibc's per-thread arenas and the
//     registry's tables reach their size in the warm-up; a leak of even
//     2 KiB per cycle would show 10 MiB); not under a sanitizer, whose own
//     memory dominates RSS.
// Each of 32 lanes reuses its own device (no device accumulates; grace 0
// forgets it at once), and departures are noticed within a few keepalive
// intervals (BEEP_KEEPALIVE=1); the figures are read once healthz says no
// stream is left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startStack, uid, subPath, poll, scaled, skipReason, SANITIZER,
} from './harness.mjs';
import { procFigures } from './faults.mjs';

const CYCLES = scaled(5000, 500);
const WARMUP = scaled(400, 100);
const LANES = 32;
const MIN_IDLE = 8;
const RSS_SLACK_KIB = 8 * 1024;

async function cycles(stack, user, n) {
	let next = 0;
	await Promise.all(Array.from({ length: LANES }, async (_, lane) => {
		while (next < n) {
			next++;
			const s = await stack.open(subPath(user, `l${lane}`),
			    { timeout: 30000 });
			assert.equal(s.status, 200, `subscribe: ${s.status}`);
			await s.waitComments(1, 30000);
			s.close();
			stack.streams.delete(s);
		}
	}));
}

test(`${CYCLES} subscribe/unsubscribe cycles leave threads, descriptors ` +
    'and RSS where they started',
{ timeout: 600000, skip: skipReason(import.meta.url) }, async (t) => {
	const stack = await startStack({ env: {
		BEEP_KEEPALIVE: '1', BEEP_GRACE_SECONDS: '0',
		BEEP_MIN_IDLE: String(MIN_IDLE), BEEP_MAX_STREAMS_PER_ADDRESS: '0',
	} }, t);
	const c = stack.client({ maxSockets: 2 });
	const u = uid('churn');
	const pid = stack.backend.pid;
	const settled = async () => {
		await poll(async () => {
			const h = await c.health();
			return h.streams === 0 && h.devices === 0;
		}, { timeout: 60000, interval: 200,
		    what: 'no stream and no device left' });
	};

	await cycles(stack, u, WARMUP);
	await settled();
	const before = procFigures(pid);
	await cycles(stack, u, CYCLES);
	await settled();
	// The pool shrinks as workers finish; wait for it (bounded).
	const after = await poll(() => {
		const f = procFigures(pid);
		return f.threads <= before.threads + MIN_IDLE &&
		    f.fds <= before.fds + 2 ? f : null;
	}, { timeout: 30000, interval: 200,
	    what: 'threads and descriptors back to the warm-up figures' })
	    .catch(() => procFigures(pid));
	t.diagnostic(`after ${WARMUP} warm-up cycles: ${JSON.stringify(before)}; ` +
	    `after ${CYCLES} more: ${JSON.stringify(after)}`);
	assert.ok(after.threads <= before.threads + MIN_IDLE,
	    `threads ${before.threads} -> ${after.threads}`);
	assert.ok(after.fds <= before.fds + 2, `fds ${before.fds} -> ${after.fds}`);
	// Under a sanitizer RSS says nothing about our memory (shadow memory,
	// ASan's quarantine of freed blocks, TSan's per-thread state); there
	// LeakSanitizer (at exit) and valgrind (unit tests) look for leaks.
	if (SANITIZER)
		t.diagnostic(`RSS not checked under ${SANITIZER}`);
	else
		assert.ok(after.rssKib <= before.rssKib + RSS_SLACK_KIB,
		    `RSS ${before.rssKib} -> ${after.rssKib} KiB`);
	const h = await c.health();
	assert.equal(h.streams, 0);
});
