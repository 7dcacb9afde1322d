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
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import crypto from 'node:crypto';
import { ROOT, startStack, sid } from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';

const CHROMIUM = process.env.BEEP_CHROMIUM || '/usr/bin/chromium';
const T = { timeout: 120000 };
const FLOOD = 600;
const MOST_PENDING = 256;

let playwright = null;
try {
	const require = createRequire(path.join(ROOT, 'tests/browser/package.json'));
	playwright = require('playwright-core');
} catch { /* reported as a skip below */ }
const skip = !playwright ? 'missing playwright-core (npm ci in tests/browser)' :
    !existsSync(CHROMIUM) ? `missing ${CHROMIUM}` : false;

test('a ringing call page keeps a bounded number of its caller\'s messages',
    { ...T, skip }, async (t) => {
	const SECRET = crypto.randomBytes(32).toString('hex');
	// No rate limit: the test posts in seconds what the default rate
	// lets a caller post within one ring.
	const stack = await startStack({ env: { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET, BEEP_RATE: '0' } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ua = `pa${sid()}`, um = `pm${sid()}`;
	const browser = await playwright.chromium.launch({
		executablePath: CHROMIUM, headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
		    '--disable-background-networking', '--disable-component-update',
		    '--disable-sync'],
	});
	t.after(() => browser.close());
	const page = await (await browser.newContext()).newPage();
	page.on('pageerror', (e) => console.error('[call page]', e.message));
	await page.goto(`${stack.base}/#token=${token(ua)}`);
	await page.fill('#join-user', ua);
	await page.fill('#join-device', 'laptop');
	await page.click('#join-go');
	await page.waitForSelector('#app:not([hidden])');
	await page.evaluate(() => {
		window.candidates = 0;
		window.beepApp.sig.on('candidate', () => { window.candidates++; });
	});
	const post = async (event, data) => {
		const r = await fetch(`${stack.base}/user/${ua}/device/laptop`, {
			method: 'POST',
			headers: { ...bearer(token(um)),
			    'Content-Type': 'application/json' },
			body: JSON.stringify({ event, data }),
		});
		assert.equal(r.status, 200);
	};
	const callId = `flood-${sid()}`;
	await post('call', { callId, from: { user: um, device: 'm' },
	    media: { audio: true } });
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	// Candidates of 60 KB for the call that rings, while it rings.
	const junk = 'x'.repeat(60000);
	// One after another, each taken by the page's stream before the next
	// (a burst past the stream's queue, BEEP_STREAM_QUEUE_BYTES, would end
	// the stream instead).
	for (let i = 0; i < FLOOD; i++) {
		await post('candidate', { callId, candidate: { candidate:
		    `${i} ${junk}`, sdpMid: '0', sdpMLineIndex: 0 } });
		await page.waitForFunction((n) => window.candidates === n, i + 1);
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
