// The call page used to keep one contact list for the browser
// (localStorage "beep.contacts"); since f2bb9cf each user has their own
// ("beep.contacts:<user>"), and the list of before is meant to go "to the
// user who was last online with it" (web/app.js, loadContacts()). It goes
// to them only when they are the first to go online after the upgrade:
// when someone else is first (the shared computer the change is for), the
// old list is removed and given to no one, and its owner finds their
// contacts gone for good.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy; one browser profile, its storage
// as the page before f2bb9cf left it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sid } from './harness.mjs';
import {
	browserSkip, launchChromium, onlinePage, contactsOf,
} from './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([], import.meta.url);

test('the contacts of before the per-user lists stay their owner\'s when ' +
    'another user goes online first', { ...T, skip }, async (t) => {
	const stack = await startStack({}, t);
	const browser = await launchChromium(t);
	const context = await browser.newContext();
	const ua = `la${sid()}`, uc = `lc${sid()}`, friend = `friend${sid()}`;

	// The storage the page before f2bb9cf left: alice was its last user,
	// her contacts in the browser's one list.
	const old = await context.newPage();
	await old.goto(`${stack.base}/`);
	await old.evaluate(([user, friend]) => {
		localStorage.clear();
		localStorage.setItem('beep.user', user);
		localStorage.setItem('beep.device', 'laptop');
		localStorage.setItem('beep.contacts', JSON.stringify([friend]));
	}, [ua, friend]);
	await old.close();

	const online = (user) => onlinePage(context, `${stack.base}/`, user,
	    'laptop');

	// Carol uses the upgraded page first: she gets none of alice's.
	const carol = await online(uc);
	assert.deepEqual(await contactsOf(carol), []);
	await carol.close();

	// Alice, next: her contacts must still be hers.
	const alice = await online(ua);
	assert.deepEqual(await contactsOf(alice), [friend],
	    `${ua}'s contacts, kept in the browser's one list before the ` +
	    `per-user lists, were deleted when ${uc} went online first: ` +
	    'loadContacts() removes the old list without giving it to its ' +
	    'last user');
	await alice.close();
});
