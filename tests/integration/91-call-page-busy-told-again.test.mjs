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
import crypto from 'node:crypto';
import { startStack, sid } from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';
import {
	browserSkip, launchChromium, onlinePage, postEvent, postsTo,
	countDelivered,
} from './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([], import.meta.url);

test('a busy call page rung again for the same call (after the caller\'s ' +
    'reset) says busy again', { ...T, skip }, async (t) => {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const stack = await startStack({ env: { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ub = `bb${sid()}`, uc = `bc${sid()}`, ua = `ba${sid()}`;
	const browser = await launchChromium(t);
	const page = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(ub)}`, ub, 'laptop');
	const toA = postsTo(page, `/user/${ua}/`);
	const { settled } = await countDelivered(page, 'call');
	const ring = (user, callId) => postEvent(stack.base, ub, 'laptop',
	    'call', { callId, from: { user, device: 'phone' },
	    media: { audio: true, video: true } }, bearer(token(user)));

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
