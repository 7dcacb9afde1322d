// A call's messages on the call page (/) are taken only from the call's
// peer: the sender the service stamps on each message (with
// authentication: the token's user, and its device when the token pins
// one, else the device the message's `from` names for that same user), in
// open mode the sender the message claims (`from`). The page took a
// decline, hangup, description or candidate of the current call from any
// sender that knew the call's id, and an accept with no sender it could
// tell at all (a token that pins no device, and no `from` of its user's).
// The page now names itself (`from`) in every message it sends, so that
// its peer can tell it in open mode too.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy; the other parties are raw
// POSTs as their pages send them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, sid } from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';
import {
	browserSkip, launchChromium, onlinePage, postEvent, countDelivered,
} from './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([], import.meta.url);

async function setUp(t, { open = false } = {}) {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const stack = await startStack({ env: open ? {} : { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET } }, t);
	const token = (sub, extra) => mint(claims(sub, extra), { key: SECRET });
	const ua = `sa${sid()}`;
	const browser = await launchChromium(t);
	const page = await onlinePage(await browser.newContext(),
	    open ? `${stack.base}/` : `${stack.base}/#token=${token(ua)}`,
	    ua, 'laptop');
	// post(event, data, as): to the page, with the token of `as` (a user,
	// or [user, device] for a token that pins the device).
	const post = (event, data, as) => postEvent(stack.base, ua, 'laptop',
	    event, data, open ? {} : bearer(Array.isArray(as) ?
	    token(as[0], { device: as[1] }) : token(as)));
	const phase = () => page.evaluate(() => document.body.dataset.phase);
	const pending = () => page.evaluate(() =>
	    window.beepApp.call.pending.map((m) => m.data.candidate.candidate));
	return { stack, page, post, phase, pending, token };
}

// The page calls uc's phone, which a stream of the test's holds open (the
// service lists only one's own devices: the page dials by hand), once its
// call is posted. Resolves the call's id.
async function dial(t, stack, page, token, uc) {
	const callee = await stack.subscribe(uc, 'phone',
	    { headers: bearer(token(uc)) });
	t.after(() => callee.close());
	await page.fill('#find-user', uc);
	await page.click('#find-go');
	const row = `.contact[data-user="${uc}"]`;
	await page.fill(`${row} .contact-device`, 'phone');
	await page.click(`${row} .contact-dial`);
	await page.waitForFunction(() => window.beepApp.phase === 'calling' &&
	    window.beepApp.sig.sendQueues.size === 0);
	return page.evaluate(() => window.beepApp.call.id);
}

const candidate = (n) => ({ candidate: `candidate:${n} 1 udp 1 192.0.2.1 ` +
    `${9000 + n} typ host`, sdpMid: '0', sdpMLineIndex: 0 });

test('a ringing page takes its call\'s messages from its caller only ' +
    '(authentication on)', { ...T, skip }, async (t) => {
	const { page, post, phase, pending } = await setUp(t);
	const um = `sm${sid()}`, ux = `sx${sid()}`;
	const m = { user: um, device: 'm' }, x = { user: ux, device: 'x' };
	const callId = `c-${sid()}`;
	const candidates = await countDelivered(page, 'candidate');
	const hangups = await countDelivered(page, 'hangup');
	await post('call', { callId, from: m, media: { audio: true } }, um);
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	// A stranger who knows the call's id: as itself, and claiming the
	// caller (its token names its own user: no sender the page can tell).
	await post('candidate', { callId, from: x, candidate: candidate(1) }, ux);
	await post('candidate', { callId, from: m, candidate: candidate(2) }, ux);
	// The caller's, with no `from` and a token that pins no device: not
	// told either.
	await post('candidate', { callId, candidate: candidate(3) }, um);
	// The caller's own.
	await post('candidate', { callId, from: m, candidate: candidate(4) }, um);
	await candidates.reached(4);
	assert.deepEqual(await pending(), [candidate(4).candidate],
	    'the ringing page keeps candidates of its call from senders other ' +
	    'than its caller, to apply them once it accepts');
	await post('hangup', { callId, from: x }, ux);
	await post('hangup', { callId, from: m }, ux);
	await hangups.reached(2);
	assert.equal(await phase(), 'ringing', 'a stranger who knows the ' +
	    'call\'s id hung up the call for its caller');
	await post('hangup', { callId, from: m }, um);
	await page.waitForFunction(() => document.body.dataset.phase === 'ended');
	// Its caller hung up while it rang: a missed call (test 123).
	assert.match(await page.textContent('#banner-title'), /Missed call/);
});

test('a calling page takes a decline or an accept from its callee only, and ' +
    'not an accept with no sender it can tell', { ...T, skip }, async (t) => {
	const { stack, page, post, phase, token } = await setUp(t);
	const uc = `sc${sid()}`, ux = `sx${sid()}`;
	const c = { user: uc, device: 'phone' };
	const callId = await dial(t, stack, page, token, uc);
	const declines = await countDelivered(page, 'decline');
	const accepts = await countDelivered(page, 'accept');
	// A stranger who knows the call's id declines it, as itself and
	// claiming the callee.
	await post('decline', { callId, from: { user: ux, device: 'x' },
	    reason: 'declined' }, ux);
	await post('decline', { callId, from: c, reason: 'declined' }, ux);
	await declines.reached(2);
	assert.equal(await phase(), 'calling', 'a stranger who knows the ' +
	    'call\'s id declined it for the callee');
	// Accepts with no sender the page can tell: the callee's user with a
	// token that pins no device and no `from`, and a stranger claiming
	// the callee.
	await post('accept', { callId }, uc);
	await post('accept', { callId, from: c }, ux);
	await accepts.reached(2);
	assert.equal(await phase(), 'calling', 'the page took an accept whose ' +
	    'sender it cannot tell');
	// The callee's, its device stamped by its token.
	await post('accept', { callId }, [uc, 'phone']);
	await page.waitForFunction(() => window.beepApp.phase === 'connecting');
});

test('in open mode a ringing page takes its call\'s messages from the ' +
    'sender its caller claims only', { ...T, skip }, async (t) => {
	const { page, post, phase, pending } = await setUp(t, { open: true });
	const um = `om${sid()}`;
	const m = { user: um, device: 'm' };
	const callId = `c-${sid()}`;
	const candidates = await countDelivered(page, 'candidate');
	const hangups = await countDelivered(page, 'hangup');
	await post('call', { callId, from: m, media: { audio: true } });
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await post('candidate', { callId, from: { user: um, device: 'other' },
	    candidate: candidate(1) });
	await post('candidate', { callId, candidate: candidate(2) });
	await post('candidate', { callId, from: m, candidate: candidate(3) });
	await candidates.reached(3);
	assert.deepEqual(await pending(), [candidate(3).candidate]);
	await post('hangup', { callId });
	await post('hangup', { callId, from: { user: `x${um}`, device: 'm' } });
	await hangups.reached(2);
	assert.equal(await phase(), 'ringing', 'a hang-up that does not claim ' +
	    'the caller ended its call');
	await post('hangup', { callId, from: m });
	await page.waitForFunction(() => document.body.dataset.phase === 'ended');
});

// Both called each other at once (glare): the page makes the two calls
// one, known by both ids, and goes on under the smaller. The peer's own
// call had the larger id, and the peer hung that call up: the page took
// only the id it had kept, so it waited for an offer that never came
// (the call's timer is stopped at the merge), until the user hung up.
test('after both called at once, the peer\'s hang-up of its own call ends ' +
    'the call', { ...T, skip }, async (t) => {
	const { stack, page, post, phase, token } = await setUp(t);
	const uc = `gc${sid()}`;
	const c = { user: uc, device: 'phone' };
	const mine = await dial(t, stack, page, token, uc);
	// The peer's call, with an id above the page's (a UUID's characters
	// are all below '~').
	const theirs = `~${sid()}`;
	await post('call', { callId: theirs, from: c, media: { audio: true } },
	    [uc, 'phone']);
	await page.waitForFunction(() => window.beepApp.call &&
	    window.beepApp.call.ids.size === 2);
	assert.equal(await page.evaluate(() => window.beepApp.call.id), mine);
	const hangups = await countDelivered(page, 'hangup');
	await post('hangup', { callId: theirs, from: c }, [uc, 'phone']);
	await hangups.reached(1);
	assert.equal(await phase(), 'ended', 'the peer hung up the call it ' +
	    'placed, and the page, which had merged it into its own, waited on');
});
