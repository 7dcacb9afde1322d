// One caller's rings one after another ring 90 s (two rings' time) in all:
// the time they rang, not the time since the first began. A caller that
// rang 5 s, hung up (a wrong device, a slip) and rang again 41 s later,
// within a minute (MUTE_MS) of its first ring's end, had rung 5 s: its
// second ring was answered "busy" at once (since + 45 s had passed), the
// user never saw it, and the caller was told the user was in another call.
//
// A missed call (the callee's page rang its 45 s, unanswered) then spent a
// caller's whole allowance: its page ended the ring without a word to the
// caller (who rang on, "Calling…"), and the caller's call back at once was
// answered "busy", its page saying the callee was "in another call". Now
// the callee's page tells the caller "unanswered" (its page says "did not
// answer") and a call back at once rings again, in full.
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
	countDelivered, addContact,
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

// The caller's call "m-1" rings the page for 5 s, then the caller hangs up:
// the page's call has ended.
async function rangBriefly({ page, hangups, send, phase }) {
	await send('call', 'm-1');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await page.clock.runFor(5000);
	await send('hangup', 'm-1');
	await hangups.reached(1);
	assert.equal(await phase(), 'ended');
}

test('a caller that rang briefly and rings again soon after rings in full',
    { ...T, skip }, async (t) => {
	const rig = await ringing(t, 'ra', 'rm');
	const { page, answers, calls, send, phase } = rig;

	await rangBriefly(rig);
	// 41 s later (within MUTE_MS of that ring's end) it rings again.
	await page.clock.runFor(41000);
	await send('call', 'm-2');
	await calls.settled(2);
	assert.equal(await phase(), 'ringing', 'a caller that had rung 5 s ' +
	    'was told busy 46 s after its first ring began: the time between ' +
	    'its rings counted as ringing');
	assert.equal(answers.filter((a) => a.event === 'decline').length, 0);
	// It rings a whole ring's 45 s: its allowance (90 s) has room.
	await page.clock.runFor(44000);
	assert.equal(await phase(), 'ringing', 'the second ring of a caller ' +
	    'that had rung 5 s rang only what was left of 45 s');
	await page.clock.runFor(2000);
	assert.equal(await phase(), 'ended');
	assert.match(await page.textContent('#banner-title'), /Missed call/);
});

test('a missed call ends the ringing on both sides, and the caller calling ' +
    'back at once rings again', { ...T, skip }, async (t) => {
	const SECRET = crypto.randomBytes(32).toString('hex');
	// Listed to others, so that the caller's page shows the callee's
	// device to call.
	const stack = await startStack({ env: { BEEP_KEEPALIVE: '120',
	    BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
	    BEEP_LIST_POLICY: 'any' } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ua = `mb${sid()}`, um = `mc${sid()}`;
	const browser = await launchChromium(t);
	// The callee's clock is the test's; the caller's runs on, its own
	// 45 s ("did not answer") far beyond this test's steps.
	const callee = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(ua)}`, ua, 'laptop',
	    { before: (p) => p.clock.install() });
	const caller = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(um)}`, um, 'phone');
	const answers = postsTo(callee, `/user/${um}/`);
	const calls = await countDelivered(callee, 'call');
	const declines = await countDelivered(caller, 'decline');
	const phase = (p) => p.evaluate(() => document.body.dataset.phase);
	const button = await addContact(caller, ua, 'laptop');

	await caller.click(button);
	await callee.waitForFunction(() =>
	    document.body.dataset.phase === 'ringing');
	const callId = await caller.evaluate(() => window.beepApp.call.id);
	// The callee's page rings its 45 s: a missed call.
	await callee.clock.runFor(45000);
	assert.equal(await phase(callee), 'ended');
	assert.match(await callee.textContent('#banner-title'), /Missed call/);
	await callee.waitForFunction(() =>
	    window.beepApp.sig.sendQueues.size === 0);
	assert.deepEqual(answers.filter((a) => a.event === 'decline')
	    .map((a) => [a.data.callId, a.data.reason]),
	    [[callId, 'unanswered']], 'the callee\'s page ended its ring ' +
	    'without a word to the caller, whose page rang on ("Calling…")');
	await declines.reached(1);
	assert.equal(await phase(caller), 'failed');
	assert.match(await caller.textContent('#banner-title'),
	    /did not answer/);

	// The caller calls back at once.
	await caller.click(button);
	await calls.settled(2);
	assert.equal(await phase(callee), 'ringing', 'a caller calling back ' +
	    'at once after a missed call did not ring: its missed call had ' +
	    'spent its ringing, and it was told busy');
	assert.equal(answers.filter((a) => a.event === 'decline').length, 1);
	assert.equal(await phase(caller), 'calling');
	assert.doesNotMatch(await caller.textContent('#banner-title'),
	    /another call/);
	// A whole ring again.
	await callee.clock.runFor(44000);
	assert.equal(await phase(callee), 'ringing');
});

// Counting the time rings rang, a caller that rings and hangs up at once
// would ring the page again and again: each ring counts as at least 10 s
// (RING_MIN_MS in web/app.js), so such rings ring 9 times, then are told
// to try later ("later": not "busy", the user is in no call).
test('a caller that rings and hangs up at once rings the page 9 times one ' +
    'after another, then is told to try later', { ...T, skip }, async (t) => {
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
	assert.deepEqual(answers.filter((a) => a.event === 'decline')
	    .map((a) => [a.data.callId, a.data.reason]), [['m-10', 'later']],
	    'the caller past its rings was told the user was in another call');
});

// A caller that hangs up while the page rings leaves a missed call, as a
// ring that runs its 45 s does (and as a phone shows it): the page said
// "… hung up", as for a call the user had taken, and the user never saw
// that someone had tried to reach them. The page answers nothing: the
// caller has gone.
test('a caller that hangs up while the page rings leaves a missed call',
    { ...T, skip }, async (t) => {
	const rig = await ringing(t, 'rc', 'ro');
	const { page, answers } = rig;

	await rangBriefly(rig);
	const title = await page.textContent('#banner-title');
	assert.match(title, /^Missed call from /, 'a caller that hung up ' +
	    `while the page rang: "${title}", not a missed call`);
	assert.doesNotMatch(title, /hung up/);
	await page.waitForFunction(() =>
	    window.beepApp.sig.sendQueues.size === 0);
	assert.deepEqual(answers, [], 'the page answered a caller that had ' +
	    'hung up');
});
