// A caller whose signaling stream lost messages (a reset: its phone
// changed networks, its replay window passed) rings the same call again
// (web/app.js, the client's "reset" handler: ring(call)), since the
// callee's answer may have been among them. A callee page that had
// declined says the decline again (ed7ca68, test 74). A callee page that
// is busy (in another call, or ringing) says "busy" once per call and
// sender for a ring's 45 s (9f5909f, 536b658): its first "busy" uses that
// one answer, so when the first was lost the ring after the reset is met
// with silence, and the caller's page shows "Calling…" until "did not
// answer" 45 s later, never told the other is in a call. The ring of the
// same call again must be told busy again (once, as a decline is).
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy, JWT authentication on; the
// caller is raw POSTs as its page sends them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import crypto from 'node:crypto';
import { ROOT, startStack, sid } from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';

const CHROMIUM = process.env.BEEP_CHROMIUM || '/usr/bin/chromium';
const T = { timeout: 90000 };

let playwright = null;
try {
	const require = createRequire(path.join(ROOT, 'tests/browser/package.json'));
	playwright = require('playwright-core');
} catch { /* reported as a skip below */ }
const skip = !playwright ? 'missing playwright-core (npm ci in tests/browser)' :
    !existsSync(CHROMIUM) ? `missing ${CHROMIUM}` : false;

test('a busy call page rung again for the same call (after the caller\'s ' +
    'reset) says busy again', { ...T, skip }, async (t) => {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const stack = await startStack({ env: { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ub = `bb${sid()}`, uc = `bc${sid()}`, ua = `ba${sid()}`;
	const browser = await playwright.chromium.launch({
		executablePath: CHROMIUM, headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
		    '--disable-background-networking', '--disable-component-update',
		    '--disable-sync'],
	});
	t.after(() => browser.close());
	const page = await (await browser.newContext()).newPage();
	page.on('pageerror', (e) => console.error('[call page]', e.message));
	const toA = [];
	page.on('request', (r) => {
		if (r.method() === 'POST' && r.url().includes(`/user/${ua}/`))
			toA.push(r.postDataJSON());
	});
	await page.goto(`${stack.base}/#token=${token(ub)}`);
	await page.fill('#join-user', ub);
	await page.fill('#join-device', 'laptop');
	await page.click('#join-go');
	await page.waitForSelector('#app:not([hidden])');
	await page.evaluate(() => {
		window.rings = 0;
		window.beepApp.sig.on('call', () => { window.rings++; });
	});
	const ring = async (user, callId) => {
		const r = await fetch(`${stack.base}/user/${ub}/device/laptop`, {
			method: 'POST',
			headers: { ...bearer(token(user)),
			    'Content-Type': 'application/json' },
			body: JSON.stringify({ event: 'call', data: { callId,
			    from: { user, device: 'phone' },
			    media: { audio: true, video: true } } }),
		});
		assert.equal(r.status, 200);
	};
	const settled = async (n) => {
		await page.waitForFunction((k) => window.rings === k, n);
		await page.waitForFunction(() =>
		    window.beepApp.sig.sendQueues.size === 0);
	};

	// Carol's call rings on B's page: B is busy for anyone else.
	await ring(uc, 'carol-1');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	// Alice calls: told busy.
	await ring(ua, 'alice-1');
	await settled(2);
	const busy = () => toA.filter((a) => a.event === 'decline' &&
	    a.data && a.data.callId === 'alice-1' && a.data.reason === 'busy');
	assert.equal(busy().length, 1, 'the first ring is told busy');
	// Alice's stream had a reset, the busy lost with it: her page rings
	// the same call again.
	await ring(ua, 'alice-1');
	await settled(3);
	assert.equal(busy().length, 2, 'the ring of the same call after the ' +
	    'caller\'s reset got no answer: the busy page told this call ' +
	    'busy once already (tellAgain), so a caller that lost that ' +
	    'answer rings on until "did not answer", never told the other ' +
	    'is in a call (a decline is said again in this case)');
});
