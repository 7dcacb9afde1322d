// A send the call page makes while the browser is offline waits for the
// network (beep-signal.js's offlineWait, 30 s), then rejects with "send:
// offline for 30000 ms"; the page ends a call that is not yet connected,
// "Lost contact", and its detail showed that raw text, milliseconds and
// all. It now says so as the page says other things: "no network for
// 30 s". The page reads the wait from the rejection (offlineMs), not from
// its text: a pattern on the text missed a wait that is no whole number
// of ms ("offline for 1500.5 ms" was shown raw), so the client's
// offlineWait is set to one here too.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy, with the page's clock the test's
// (playwright's page.clock), as in test 123; the browser context offline
// (playwright's setOffline: navigator.onLine false, every fetch failing).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, sid } from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';
import { browserSkip, launchChromium, onlinePage, postEvent } from
    './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([], import.meta.url);

// wait: the client's offlineWait (undefined: its default, 30 s); run: ms
// of the page's clock that passes it; want: the banner's detail.
for (const [wait, run, want] of [[undefined, 31000, 'no network for 30 s'],
    [1500.5, 2000, 'no network for 2 s']]) {
	test('a call accepted offline ends "Lost contact", its detail in ' +
	    `words (offlineWait ${wait ?? 'default'})`, { ...T, skip },
	    async (t) => {
		await acceptOffline(t, wait, run, want);
	});
}

async function acceptOffline(t, wait, run, want) {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const stack = await startStack({ env: { BEEP_KEEPALIVE: '120',
	    BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ua = `oa${sid()}`, um = `om${sid()}`;
	const browser = await launchChromium(t, { media: true });
	const context = await browser.newContext();
	const page = await onlinePage(context,
	    `${stack.base}/#token=${token(ua)}`, ua, 'laptop',
	    { before: (p) => p.clock.install() });

	if (wait !== undefined)
		await page.evaluate((w) => {
			window.beepApp.sig.offlineWait = w;
		}, wait);
	await postEvent(stack.base, ua, 'laptop', 'call', { callId: 'm-1',
	    from: { user: um, device: 'm' }, media: { audio: true } },
	    bearer(token(um)));
	await page.waitForFunction(() => document.body.dataset.phase ===
	    'ringing');
	await context.setOffline(true);
	await page.click('#accept');
	// The accept's first attempt fails at once; the send then waits for
	// "online", at most offlineWait on the page's clock.
	await page.waitForFunction(() =>
	    window.beepApp.sig.sendQueues.size > 0);
	await page.clock.runFor(run);
	await page.waitForFunction(() => document.body.dataset.phase ===
	    'failed');
	assert.match(await page.textContent('#banner-title'), /Lost contact/);
	const detail = await page.textContent('#banner-detail');
	assert.doesNotMatch(detail, /\d+ ms|offline for/,
	    `the detail is the client's raw error: ${detail}`);
	assert.equal(detail, want);
}
