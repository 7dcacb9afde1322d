// The call page (/) keeps the description and candidate messages of the
// current call that come before its peer connection exists (the caller
// waits for its camera and microphone, the callee has not answered yet),
// to apply them once it does. It kept every one: a caller (any user who
// knows a device's name) that rings and then posts candidates for its call
// while the callee's page rings made that page keep each of them, up to
// BEEP_MAX_BODY (64 KiB) apiece, for as long as the ring lasts (45 s): at
// the default BEEP_RATE (100/s, bursts of 200) some 4,700 messages, near
// 300 MB in a phone's tab, and as much again for each accomplice the
// caller gives its call id. In this page's protocol nothing of the peer's
// comes before an accept but the offer, its answer and their candidates:
// a bound of a few hundred loses nothing.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy, JWT authentication on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, sid } from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';
import {
	browserSkip, launchChromium, onlinePage, postEvent, countDelivered,
} from './callpage.mjs';

const T = { timeout: 120000 };
const FLOOD = 600;
const MOST_PENDING = 256;
const skip = browserSkip([], import.meta.url);

test('a ringing call page keeps a bounded number of its caller\'s messages',
    { ...T, skip }, async (t) => {
	const SECRET = crypto.randomBytes(32).toString('hex');
	// No rate limit: the test posts in seconds what the default rate
	// lets a caller post within one ring.
	const stack = await startStack({ env: { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET, BEEP_RATE: '0' } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ua = `pa${sid()}`, um = `pm${sid()}`;
	const browser = await launchChromium(t);
	const page = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(ua)}`, ua, 'laptop');
	const candidates = await countDelivered(page, 'candidate');
	const post = (event, data) => postEvent(stack.base, ua, 'laptop',
	    event, data, bearer(token(um)));
	const callId = `flood-${sid()}`;
	await post('call', { callId, from: { user: um, device: 'm' },
	    media: { audio: true } });
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	// Candidates of 60 KB for the call that rings, while it rings, from
	// its caller (the page takes a call's messages from its peer only:
	// test 120).
	const junk = 'x'.repeat(60000);
	// One after another, each taken by the page's stream before the next
	// (a burst past the stream's queue, BEEP_STREAM_QUEUE_BYTES, would end
	// the stream instead).
	for (let i = 0; i < FLOOD; i++) {
		await post('candidate', { callId, from: { user: um,
		    device: 'm' }, candidate: { candidate:
		    `${i} ${junk}`, sdpMid: '0', sdpMLineIndex: 0 } });
		await candidates.reached(i + 1);
	}
	const kept = await page.evaluate(() => ({
		n: window.beepApp.call.pending.length,
		bytes: window.beepApp.call.pending.reduce((s, m) =>
		    s + JSON.stringify(m.data).length, 0),
	}));
	assert.ok(kept.n <= MOST_PENDING,
	    `the ringing page keeps ${kept.n} of its caller's messages ` +
	    `(${Math.round(kept.bytes / 1e6)} MB) for a call not answered: ` +
	    'a caller grows the callee\'s tab without bound while it rings');
	assert.equal(await page.evaluate(() => document.body.dataset.phase),
	    'ringing');
});
