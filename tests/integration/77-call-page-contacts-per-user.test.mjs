// The call page (/) keeps the contacts a user adds in the browser's
// localStorage, so that they are there on the next visit. It kept one list
// for the browser, whoever goes online: on a shared computer (a family's,
// a front desk's, a kiosk) the next person to use the page saw the list of
// people the last one calls, and each contact's devices as they come
// online, and their own additions went into that same list for the next
// one to see. A user's contacts are theirs: the next user of the page
// starts with their own list.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy; two users, one after the other,
// in one browser profile.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sid } from './harness.mjs';
import {
	browserSkip, launchChromium, onlinePage, contactsOf,
} from './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([], import.meta.url);

test('the next user of the call page does not get the last one\'s contacts',
    { ...T, skip }, async (t) => {
	const stack = await startStack({}, t);
	const browser = await launchChromium(t);
	// One browser profile: one localStorage for both users.
	const context = await browser.newContext();
	const ua = `ca${sid()}`, uc = `cc${sid()}`, secret = `friend${sid()}`;
	const online = (user) => onlinePage(context, `${stack.base}/`, user,
	    'laptop');

	const alice = await online(ua);
	await alice.fill('#find-user', secret);
	await alice.click('#find-go');
	await alice.waitForSelector(`.contact[data-user="${secret}"]`);
	await alice.close();

	// Another person, the same browser.
	const carol = await online(uc);
	assert.deepEqual(await contactsOf(carol), [],
	    `${uc} sees the contacts of the page's last user (${ua}): who they ` +
	    'call, and when those people are online');
	await carol.close();

	// Alice, back, still has hers.
	const again = await online(ua);
	await again.waitForSelector(`.contact[data-user="${secret}"]`);
	assert.deepEqual(await contactsOf(again), [secret]);
});
