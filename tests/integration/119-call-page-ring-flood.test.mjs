// A ring flood on an idle call page. Anyone who knows a device's name
// (anyone at all in open mode) can ring it, hang up, and ring again with a
// new call id, as often as they like. The page rang for each: while it
// rang the user could place no call (startCall returned, the Call buttons
// were disabled) and every other caller was told "busy", and Decline did
// not stop the next ring. Now:
//  - a caller the user declined does not ring again for 60 s (MUTE_MS in
//    web/app.js): its rings are answered "declined", within the page's
//    budget of unasked answers, and the page stays as it is;
//  - a caller's rings one after another (each within 60 s of the end of
//    the last) ring 90 s (two rings' time) in all, then are told "later"
//    (try later: not "busy", the user is in no call) until it has been
//    quiet for 60 s;
//  - callers one after another (rings each within 60 s of the end of the
//    last) are at most 3, and ring 135 s in all: past them a new caller
//    is told "later" until the page has been quiet for 60 s; a caller in
//    the user's contacts still rings;
//  - a ring does not stop the user from placing a call: the Call buttons
//    stay enabled, and calling tells the ringing caller "busy".
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy. The page's clock is the test's
// (playwright's page.clock): the service's keepalive is set long, so that
// the time the test moves on does not make the client take its stream for
// silent.

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
const RING_TIMEOUT_MS = 45000;
const MUTE_MS = 60000;
const skip = browserSkip([], import.meta.url);

// The stack, a browser, and the victim's page online as (ua, laptop), its
// clock installed; `answers` collects what it posts to the caller um.
async function setUp(t, { open = false } = {}) {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const stack = await startStack({ env: { BEEP_KEEPALIVE: '120',
	    ...(open ? {} : { BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET }) } },
	    t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ua = `fa${sid()}`, um = `fm${sid()}`, uc = `fc${sid()}`;
	const browser = await launchChromium(t);
	const page = await onlinePage(await browser.newContext(),
	    open ? `${stack.base}/` : `${stack.base}/#token=${token(ua)}`,
	    ua, 'laptop', { before: (p) => p.clock.install() });
	const answers = postsTo(page, `/user/${um}/`);
	const calls = await countDelivered(page, 'call');
	const hangups = await countDelivered(page, 'hangup');
	const as = (user) => open ? {} : bearer(token(user));
	const ring = (callId, user = um) => postEvent(stack.base, ua, 'laptop',
	    'call', { callId, from: { user, device: 'm' },
	    media: { audio: true } }, as(user));
	const hangUp = (callId, user = um) => postEvent(stack.base, ua,
	    'laptop', 'hangup', { callId, from: { user, device: 'm' } },
	    as(user));
	const phase = () => page.evaluate(() => document.body.dataset.phase);
	const declined = (callId, reason) => answers.filter((a) =>
	    a.event === 'decline' && a.data && a.data.callId === callId &&
	    a.data.reason === reason).length;
	return { stack, page, answers, calls, hangups, ring, hangUp, phase,
	    declined, ua, um, uc };
}

test('a caller the user declined does not ring again for a while, and is ' +
    'told declined', { ...T, skip }, async (t) => {
	const { page, calls, ring, phase, declined, uc } = await setUp(t);
	await ring('m-1');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await page.click('#decline');
	await page.waitForFunction(() => document.body.dataset.phase === 'ended');
	// The same caller rings again at once, with a new call id.
	await ring('m-2');
	await calls.settled(2);
	assert.equal(await phase(), 'ended', 'the caller the user just ' +
	    'declined rang again, with a new call id: Decline did not stop ' +
	    'the next ring, and a caller can keep the page ringing (busy for ' +
	    'everyone else) for as long as it likes');
	assert.equal(declined('m-2', 'declined'), 1,
	    'the muted caller is told declined');
	// Another caller still rings.
	await ring('c-1', uc);
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await page.click('#decline');
	await page.waitForFunction(() => document.body.dataset.phase === 'ended');
	// A while later the declined caller rings again.
	await page.clock.runFor(MUTE_MS + 1000);
	await ring('m-3');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	assert.equal(declined('m-3', 'declined'), 0);
});

test('one caller\'s rings one after another ring 90 s in all, then it is ' +
    'told to try later', { ...T, skip }, async (t) => {
	const { page, answers, calls, hangups, ring, hangUp, phase, declined } =
	    await setUp(t);
	await ring('m-1');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await page.clock.runFor(30000);
	// The caller hangs up and rings again, with a new call id.
	await hangUp('m-1');
	await hangups.reached(1);
	assert.equal(await phase(), 'ended');
	await ring('m-2');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	// A whole ring's time, unanswered: a missed call, told to the caller.
	await page.clock.runFor(RING_TIMEOUT_MS);
	assert.equal(await phase(), 'ended');
	assert.match(await page.textContent('#banner-title'), /Missed call/);
	await page.waitForFunction(() =>
	    window.beepApp.sig.sendQueues.size === 0);
	assert.equal(declined('m-2', 'unanswered'), 1, 'the page ended a ' +
	    'missed call without a word to its caller');
	// It calls back at once: it rings what is left of 90 s, 15 s.
	await ring('m-3');
	await calls.settled(3);
	assert.equal(await phase(), 'ringing', 'a caller calling back at once ' +
	    'after a missed call was told busy');
	await page.clock.runFor(14000);
	assert.equal(await phase(), 'ringing');
	await page.clock.runFor(2000);
	assert.equal(await phase(), 'ended', 'a caller that hangs up and ' +
	    'rings again with a new call id rings for 45 s more each time: ' +
	    'it keeps the page ringing, and busy for anyone else, for as long ' +
	    'as it likes');
	// And it does not ring again at once: told to try later, not busy.
	await ring('m-4');
	await calls.settled(4);
	assert.equal(await phase(), 'ended');
	assert.equal(declined('m-4', 'later'), 1, 'the caller past its rings ' +
	    'was told the user was in another call');
	assert.equal(answers.filter((a) => a.event === 'decline' &&
	    a.data.reason === 'busy').length, 0);
	// Quiet for a while, it rings again.
	await page.clock.runFor(MUTE_MS + 1000);
	await ring('m-5');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
});

// Many callers (many accounts; in open mode, many claimed names) kept a
// page ringing one after another for as long as they liked, each within
// its own allowance. Now: three callers one after another, and a fourth
// is told "later", its page saying so in words (not "in another call");
// past 135 s of ringing one after another, from two callers, a third is
// told "later" too; someone in the user's contacts still rings.
test('past three callers, or 135 s of ringing, one after another a new ' +
    'caller is told to try later; a contact still rings', { ...T, skip },
    async (t) => {
	const { stack, page, calls, hangups, ring, hangUp, phase, ua } =
	    await setUp(t, { open: true });
	const all = postsTo(page, '/user/');
	const told = (callId) => all.filter((a) => a.event === 'decline' &&
	    a.data && a.data.callId === callId).map((a) => a.data.reason);
	// Three callers ring and hang up, one after another.
	for (let i = 1; i <= 3; i++) {
		const user = `a${i}${sid()}`;
		await ring(`a-${i}`, user);
		await page.waitForFunction(() =>
		    document.body.dataset.phase === 'ringing');
		await hangUp(`a-${i}`, user);
		await hangups.reached(i);
	}
	// A fourth, from its own call page.
	const caller = await onlinePage(await page.context().browser()
	    .newContext(), `${stack.base}/`, `a4${sid()}`, 'phone');
	const declines = await countDelivered(caller, 'decline');
	const button = await addContact(caller, ua, 'laptop');
	await caller.click(button);
	await calls.settled(4);
	assert.equal(await phase(), 'ended', 'a fourth caller one after ' +
	    'another rang the page: callers taking turns keep it ringing ' +
	    'for ever');
	await declines.reached(1);
	assert.equal(await caller.evaluate(() => document.body.dataset.phase),
	    'failed');
	const said = await caller.textContent('#banner');
	assert.doesNotMatch(said, /another call/);
	assert.match(said, /try again/i);

	// Quiet for a while: two callers' missed calls, one after another,
	// then the first's again, ring 135 s; a third caller is told later.
	await page.clock.runFor(MUTE_MS + 1000);
	const [b1, b2] = [`b1${sid()}`, `b2${sid()}`];
	for (const [i, user] of [b1, b2, b1].entries()) {
		await ring(`b-${i}`, user);
		await page.waitForFunction(() =>
		    document.body.dataset.phase === 'ringing');
		await page.clock.runFor(RING_TIMEOUT_MS);
		assert.equal(await phase(), 'ended');
	}
	await ring('b-3', `b3${sid()}`);
	await calls.settled(8);
	assert.equal(await phase(), 'ended', 'two callers taking turns keep ' +
	    'the page ringing for ever');
	assert.deepEqual(told('b-3'), ['later']);
	// A contact of the user's rings all the same.
	const friend = `f${sid()}`;
	const sub = await stack.subscribe(friend, 'm');
	t.after(() => sub.close());
	await addContact(page, friend, 'm');
	await ring('f-1', friend);
	await calls.settled(9);
	assert.equal(await phase(), 'ringing', 'a contact of the user\'s was ' +
	    'told to try later: strangers ringing kept the user\'s own ' +
	    'people out');
	assert.deepEqual(told('f-1'), []);
	await page.click('#decline');
	await page.waitForFunction(() => document.body.dataset.phase === 'ended');
	// Quiet for a while, a new caller rings again.
	await page.clock.runFor(MUTE_MS + 1000);
	await ring('c-1', `c1${sid()}`);
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
});

test('a ringing page can still place a call; the ringing caller is told ' +
    'busy', { ...T, skip }, async (t) => {
	const { stack, page, ring, declined, uc } = await setUp(t,
	    { open: true });
	const callee = await stack.subscribe(uc, 'phone');
	t.after(() => callee.close());
	const button = await addContact(page, uc, 'phone');
	await ring('m-1');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	assert.equal(await page.isDisabled(button), false, 'while the page ' +
	    'rings its Call buttons are disabled: a caller that rings again ' +
	    'and again keeps its user from calling anyone');
	await page.click(button);
	await page.waitForFunction(() => document.body.dataset.phase === 'calling');
	assert.deepEqual(await page.evaluate(() => window.beepApp.call.peer),
	    { user: uc, device: 'phone' });
	await page.waitForFunction(() =>
	    window.beepApp.sig.sendQueues.size === 0);
	assert.equal(declined('m-1', 'busy'), 1, 'the ringing caller is told ' +
	    'busy');
});

test('calling a caller the user declined lets it ring again', { ...T, skip },
    async (t) => {
	const { stack, page, calls, ring, phase, um } = await setUp(t,
	    { open: true });
	await ring('m-1');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await page.click('#decline');
	await page.waitForFunction(() => document.body.dataset.phase === 'ended');
	// The user calls them back, and hangs up.
	const caller = await stack.subscribe(um, 'm');
	t.after(() => caller.close());
	const button = await addContact(page, um, 'm');
	await page.click(button);
	await page.waitForFunction(() => document.body.dataset.phase === 'calling');
	await page.click('#hangup');
	await page.waitForFunction(() => document.body.dataset.phase === 'ended');
	// They ring: the page rings, within MUTE_MS of the decline.
	await ring('m-2');
	await calls.settled(2);
	assert.equal(await phase(), 'ringing', 'the user called the caller ' +
	    'it had declined, and it is still muted');
});
