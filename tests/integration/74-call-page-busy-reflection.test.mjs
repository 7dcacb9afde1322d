// The call page (/) as the target of a hostile user with an account.
//
// A page in a call (or ringing) answers every `call` of another call id
// with a `decline` "busy" of its own: a POST, made with the page user's
// credentials and paid from that user's BEEP_RATE bucket (by verified user,
// shared by all their devices). So whoever knows a device's name (the call
// page defaults to "laptop" and "phone") makes that device's page post one
// message per message they post to it: a stranger at their own rate keeps
// the victim's bucket empty, and the victim's own signaling (its
// candidates, descriptions, hang-up, the calls it makes from any of its
// devices) gets 429 and fails; the page also queues each answer behind the
// last one to that sender, without bound. Answers the page gives without
// its user must stay within a small budget (here: 8 in a ring's 45 s),
// whoever rings and however often.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy, JWT authentication on.

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
const RINGS = 20;
// Answers the page may give by itself within one ring's time.
const MOST_UNASKED = 8;
const skip = browserSkip([], import.meta.url);

// The stack, a browser, and the victim's call page online as (ua,
// laptop); `answers` collects what the page posts to the stranger um, and
// settled(n) waits for the rings its client delivered.
async function setUp(t, { open = false } = {}) {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const stack = await startStack({ env: { BEEP_RATE: '100',
	    BEEP_BURST: '200', ...(open ? {} : { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET }) } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ua = `va${sid()}`, um = `vm${sid()}`;
	const browser = await launchChromium(t);
	const page = await onlinePage(await browser.newContext(),
	    open ? `${stack.base}/` : `${stack.base}/#token=${token(ua)}`,
	    ua, 'laptop');
	// A prefix: also the senders `${um}-N` the open-mode test claims.
	const answers = postsTo(page, `/user/${um}`);
	const { settled } = await countDelivered(page, 'call');
	// The stranger rings the victim's laptop with call id callId, as
	// `from` (in open mode the sender is what the message claims).
	const headers = open ? {} : bearer(token(um));
	const ring = (callId, from = { user: um, device: 'm' }) =>
	    postEvent(stack.base, ua, 'laptop', 'call', { callId, from,
	    media: { audio: true } }, headers);
	return { page, answers, ring, settled, um, stack, headers };
}

test('a busy call page answers a few of a stranger\'s rings, not one ' +
    'POST for each', { ...T, skip }, async (t) => {
	const { page, answers, ring, settled } = await setUp(t);
	// The stranger rings, then rings again and again with new call ids.
	await ring('ring-0');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	for (let i = 1; i <= RINGS; i++)
		await ring(`ring-${i}`);
	await settled(RINGS + 1);

	const busy = answers.filter((a) => a.event === 'decline' &&
	    a.data && a.data.reason === 'busy');
	assert.ok(busy.length <= MOST_UNASKED,
	    `the page posted ${busy.length} "busy" declines for ${RINGS} rings ` +
	    'from one stranger: every message anyone posts to a busy device ' +
	    'makes its page post one of its own, from its user\'s rate ' +
	    'budget, which a stranger can so keep empty (the victim\'s own ' +
	    'signaling then gets 429)');
	assert.ok(busy.length >= 1, 'the first callers are told busy');
	assert.equal(await page.evaluate(() => document.body.dataset.phase),
	    'ringing', 'the first ring rings on');
});

test('a declined call rung again and again is declined again once, not ' +
    'once for each', { ...T, skip }, async (t) => {
	const { page, answers, ring, settled } = await setUp(t);
	await ring('declined-1');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await page.click('#decline');
	await page.waitForFunction(() => document.body.dataset.phase === 'ended');
	// The same call again (as after a reset, when the decline may have
	// been lost), and again.
	for (let i = 0; i < RINGS; i++)
		await ring('declined-1');
	await settled(RINGS + 1);

	const declines = answers.filter((a) => a.event === 'decline');
	assert.ok(declines.length <= 2,
	    `the page posted ${declines.length} declines for one call rung ` +
	    `${RINGS} times more: the caller it declined makes it post once ` +
	    'for every ring, from its user\'s rate budget');
	assert.ok(declines.length >= 2, 'a ring after the decline is told ' +
	    'again (the decline may have been lost)');
});

// A caller whose call the page accepted may ring again with that call (its
// stream got a reset, and the accept may have been lost with it): the page
// accepts again, and sends its offer again (or restarts ICE) while not
// connected. It did so for every ring: a caller, once answered, made the
// page post one accept and one description (or an ICE restart's offer and
// candidates) for each message it posted, from the page user's rate
// budget, for as long as the call lasted.
test('an accepted call rung again and again is accepted again once, not ' +
    'once for each', { ...T, skip }, async (t) => {
	const { page, answers, ring, settled, um, stack, headers } =
	    await setUp(t);
	// The caller's device is online: the page's answers reach it.
	const caller = await stack.subscribe(um, 'm', { headers });
	t.after(() => caller.close());
	await ring('accepted-1');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await page.click('#accept');
	// Its offer out (its description's send queued as the offer is
	// set), and every send answered.
	await page.waitForFunction(() =>
	    window.beepApp.call?.pc?.signalingState === 'have-local-offer' &&
	    window.beepApp.sig.sendQueues.size === 0);
	const answered = (event) => answers.filter((a) => a.event === event &&
	    a.data.callId === 'accepted-1').length;
	const before = { accept: answered('accept'),
	    description: answered('description') };
	assert.deepEqual(before, { accept: 1, description: 1 },
	    'the page accepted and offered');
	for (let i = 0; i < RINGS; i++)
		await ring('accepted-1');
	await settled(RINGS + 1);

	const again = answered('accept') - before.accept;
	const offers = answered('description') - before.description;
	assert.ok(again <= 1 && offers <= 1,
	    `the page accepted ${again} more times and sent ${offers} more ` +
	    `descriptions for ${RINGS} rings of the call it accepted: its ` +
	    'caller makes it post once or twice for every ring, from its ' +
	    'user\'s rate budget');
	assert.equal(again, 1, 'a ring after the accept is accepted again ' +
	    '(the accept may have been lost)');
	assert.equal(offers, 1, 'and the unanswered offer goes again');
});

// In open mode the sender is what a message claims: a stranger that claims
// a new sender for each ring is a new sender each time. The page's
// answers go out from its own address, whose rate budget (BEEP_RATE by
// address in open mode) every client behind that address shares.
test('a busy call page answers at most a few rings of many claimed ' +
    'senders', { ...T, skip }, async (t) => {
	const { page, answers, ring, settled, um } = await setUp(t,
	    { open: true });
	await ring('many-0');
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	for (let i = 1; i <= RINGS; i++)
		await ring(`many-${i}`, { user: `${um}-${i}`, device: 'm' });
	await settled(RINGS + 1);
	const busy = answers.filter((a) => a.event === 'decline');
	assert.ok(busy.length <= MOST_UNASKED,
	    `the page posted ${busy.length} "busy" declines for ${RINGS} rings ` +
	    'claiming as many senders: each ring anyone posts still makes the ' +
	    'page post once, from its address\'s rate budget');
	assert.ok(busy.length >= 1, 'the first callers are told busy');
});
