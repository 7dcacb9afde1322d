// One caller's rings one after another ring 45 s (RING_TIMEOUT_MS) in all:
// the time they rang, not the time since the first began. A caller that
// rang 5 s, hung up (a wrong device, a slip) and rang again 41 s later,
// within a minute (MUTE_MS) of its first ring's end, had rung 5 s: its
// second ring was answered "busy" at once (since + 45 s had passed), the
// user never saw it, and the caller was told the user was in another call.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy, with the page's clock the test's
// (playwright's page.clock), as in test 119.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, sid } from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';
import {
	browserSkip, launchChromium, onlinePage, postEvent, postsTo,
	countDelivered,
} from './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([], import.meta.url);

// The call page of user a (prefix pa) online, its clock the test's, and a
// caller m (prefix pm): send(event, callId) posts m's call messages to it.
async function ringing(t, pa, pm) {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const stack = await startStack({ env: { BEEP_KEEPALIVE: '120',
	    BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ua = `${pa}${sid()}`, um = `${pm}${sid()}`;
	const browser = await launchChromium(t);
	const page = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(ua)}`, ua, 'laptop',
	    { before: (p) => p.clock.install() });
	return {
		page,
		answers: postsTo(page, `/user/${um}/`),
		calls: await countDelivered(page, 'call'),
		hangups: await countDelivered(page, 'hangup'),
		send: (event, callId) => postEvent(stack.base, ua, 'laptop',
		    event, { callId, from: { user: um, device: 'm' },
		    media: { audio: true } }, bearer(token(um))),
		phase: () => page.evaluate(() => document.body.dataset.phase),
	};
}

test('a caller that rang briefly and rings again soon after rings for ' +
    'what is left of 45 s of ringing', { ...T, skip }, async (t) => {
	const { page, answers, calls, hangups, send, phase } =
	    await ringing(t, 'ra', 'rm');

	await send('call', 'm-1');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await page.clock.runFor(5000);
	await send('hangup', 'm-1');
	await hangups.reached(1);
	assert.equal(await phase(), 'ended');
	// 41 s later (within MUTE_MS of that ring's end) it rings again.
	await page.clock.runFor(41000);
	await send('call', 'm-2');
	await calls.settled(2);
	assert.equal(await phase(), 'ringing', 'a caller that had rung 5 s ' +
	    'was told busy 46 s after its first ring began: the time between ' +
	    'its rings counted as ringing');
	assert.equal(answers.filter((a) => a.event === 'decline').length, 0);
	// It rings what is left of 45 s: 40 s.
	await page.clock.runFor(39000);
	assert.equal(await phase(), 'ringing');
	await page.clock.runFor(2000);
	assert.equal(await phase(), 'ended');
	assert.match(await page.textContent('#banner-title'), /Missed call/);
});

// Counting the time rings rang, a caller that rings and hangs up at once
// would ring the page again and again: each ring counts as at least 5 s
// (RING_MIN_MS in web/app.js), so such rings ring 9 times, then "busy".
test('a caller that rings and hangs up at once rings the page 9 times one ' +
    'after another, then is told busy', { ...T, skip }, async (t) => {
	const { page, answers, calls, hangups, send, phase } =
	    await ringing(t, 'rb', 'rn');

	for (let i = 1; i <= 9; i++) {
		await send('call', `m-${i}`);
		await page.waitForFunction(() =>
		    document.body.dataset.phase === 'ringing');
		await send('hangup', `m-${i}`);
		await hangups.reached(i);
		assert.equal(await phase(), 'ended');
		await page.clock.runFor(1000);
	}
	await send('call', 'm-10');
	await calls.settled(10);
	assert.equal(await phase(), 'ended', 'a caller that rings and hangs ' +
	    'up at once rings the page for every ring it sends');
	assert.equal(answers.filter((a) => a.event === 'decline' &&
	    a.data.callId === 'm-10' && a.data.reason === 'busy').length, 1);
});
