// The call page (/) shows the names of whoever calls it, and of its
// contacts' devices, as they come: a user or device id is up to
// BEEP_MAX_ID (256) bytes, and in open mode a caller's `from` (with
// authentication on, the device part of an unpinned token's) is whatever
// the message says. A name without a space did not wrap: the ringing
// banner grew as wide as the name, and its Accept and Decline buttons
// (Hang up, in a call) went off the right of the window, past a
// horizontal scroll of thousands of pixels; a contact's "Call <device>"
// button did the same to the contacts card. Any caller (anyone, in open
// mode) could so hide the page's answers to its ring.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy, open mode.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sid } from './harness.mjs';
import {
	browserSkip, launchChromium, onlinePage, postEvent, addContact,
} from './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([], import.meta.url);

// Where an element is, and whether it is the one a click at its centre
// lands on, without scrolling.
const placed = (page, sel) => page.$eval(sel, (el) => {
	const r = el.getBoundingClientRect();
	const hit = document.elementFromPoint(r.left + r.width / 2,
	    r.top + r.height / 2);
	return { left: r.left, right: r.right, width: innerWidth,
	    hit: hit === el || el.contains(hit) };
});

test('a long caller or device name keeps the call page within its window',
    { ...T, skip }, async (t) => {
	const stack = await startStack({}, t);
	const ua = `la${sid()}`;
	// Ids without a space: a user as long as the page lets one type
	// (64), a device of BEEP_MAX_ID bytes; both valid for the service.
	const long = (p, n) => `${p}${sid()}`.padEnd(n, 'W');
	const um = long('lm', 64), dm = long('dm', 256);
	const browser = await launchChromium(t);
	const page = await onlinePage(await browser.newContext(),
	    `${stack.base}/`, ua, 'laptop');
	const sub = await stack.subscribe(um, dm);
	t.after(() => sub.close());

	const call = await addContact(page, um, dm);
	const contact = await placed(page, call);
	assert.ok(contact.right <= contact.width && contact.hit,
	    `the contact's Call button spans ${contact.left}-${contact.right} ` +
	    `px of a ${contact.width} px window`);

	await postEvent(stack.base, ua, 'laptop', 'call', { callId: `c-${sid()}`,
	    from: { user: um, device: dm }, media: { audio: true } });
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	for (const sel of ['#accept', '#decline']) {
		const b = await placed(page, sel);
		assert.ok(b.left >= 0 && b.right <= b.width && b.hit,
		    `${sel} spans ${b.left}-${b.right} px of a ${b.width} px ` +
		    'window: a caller\'s name hides the page\'s answers to it');
	}
	const wide = await page.evaluate(() =>
	    document.documentElement.scrollWidth - innerWidth);
	assert.ok(wide <= 0, `the page is ${wide} px wider than its window`);
	// The whole name is still there to read.
	assert.match(await page.textContent('#banner-title'),
	    new RegExp(`^${um} \\(${dm}\\) is calling$`));
});
