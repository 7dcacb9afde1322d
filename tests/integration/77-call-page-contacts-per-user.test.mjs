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
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ROOT, startStack, sid } from './harness.mjs';

const CHROMIUM = process.env.BEEP_CHROMIUM || '/usr/bin/chromium';
const T = { timeout: 90000 };

let playwright = null;
try {
	const require = createRequire(path.join(ROOT, 'tests/browser/package.json'));
	playwright = require('playwright-core');
} catch { /* reported as a skip below */ }
const skip = !playwright ? 'missing playwright-core (npm ci in tests/browser)' :
    !existsSync(CHROMIUM) ? `missing ${CHROMIUM}` : false;

test('the next user of the call page does not get the last one\'s contacts',
    { ...T, skip }, async (t) => {
	const stack = await startStack({}, t);
	const browser = await playwright.chromium.launch({
		executablePath: CHROMIUM, headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
		    '--disable-background-networking', '--disable-component-update',
		    '--disable-sync'],
	});
	t.after(() => browser.close());
	// One browser profile: one localStorage for both users.
	const context = await browser.newContext();
	const ua = `ca${sid()}`, uc = `cc${sid()}`, secret = `friend${sid()}`;
	const online = async (user) => {
		const page = await context.newPage();
		await page.goto(`${stack.base}/`);
		await page.fill('#join-user', user);
		await page.fill('#join-device', 'laptop');
		await page.click('#join-go');
		await page.waitForSelector('#app:not([hidden])');
		return page;
	};
	const contactsOf = (page) => page.$$eval('#contacts .contact',
	    (lis) => lis.map((li) => li.dataset.user));

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
