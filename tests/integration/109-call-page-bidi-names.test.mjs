// The call page (/) puts a caller's names inside its own sentences:
// "<user> (<device>) is calling", "<user> (<device>) hung up". An id is
// any UTF-8 without control characters, and with authentication on the
// device of a token that pins none is whatever the message names: a
// bidirectional override in it (U+202E, RIGHT-TO-LEFT OVERRIDE) reached
// past the name, to the end of the banner, and the page's own words after
// it were shown reversed ("... (enohp) is calling" read
// "... (gnillac si )phone"): a caller chose how the page's sentence about
// it reads. Each name is now isolated (as <bdi> is): what it holds orders
// its own text only.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy, JWT authentication on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, sid } from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';
import { browserSkip, launchChromium, onlinePage, postEvent }
    from './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([], import.meta.url);

// Where the words `tail` at the end of element sel are drawn, and where
// what comes before them is: { text, tail: [left, right], head: [left,
// right] } in px, from the text as laid out (ranges over its text nodes,
// whatever elements hold them).
const layout = (page, sel, tail) => page.$eval(sel, (el, words) => {
	const text = el.textContent;
	const at = text.lastIndexOf(words);
	const nodes = [];
	const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
	for (let n = walk.nextNode(); n; n = walk.nextNode())
		nodes.push(n);
	// A range over [from, to) of the element's text.
	const span = (from, to) => {
		const r = document.createRange();
		let seen = 0;
		for (const n of nodes) {
			const len = n.data.length;
			if (from >= seen && from <= seen + len)
				r.setStart(n, from - seen);
			if (to >= seen && to <= seen + len) {
				r.setEnd(n, to - seen);
				break;
			}
			seen += len;
		}
		const rects = [...r.getClientRects()].filter((q) => q.width > 0);
		return [Math.min(...rects.map((q) => q.left)),
		    Math.max(...rects.map((q) => q.right))];
	};
	return { text, tail: span(at, text.length), head: span(0, at) };
}, tail);

test('a bidi override in a caller\'s device name does not reorder the ' +
    'page\'s words', { ...T, skip }, async (t) => {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const stack = await startStack({ env: { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ua = `ba${sid()}`, um = `bm${sid()}`;
	const browser = await launchChromium(t);
	const page = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(ua)}`, ua, 'laptop');
	// um's token pins no device: the page shows the one the call names.
	const device = '\u202Eenohp';
	const callId = `bidi-${sid()}`;
	const post = (event, data) => postEvent(stack.base, ua, 'laptop',
	    event, data, bearer(token(um)));
	await post('call', { callId, from: { user: um, device },
	    media: { audio: true } });
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');

	const ring = await layout(page, '#banner-title', ' is calling');
	// The words are the same, in their order, for a screen reader or a
	// copy...
	assert.equal(ring.text, `${um} (${device}) is calling`);
	// ...and drawn after the name, where they belong.
	assert.ok(ring.tail[0] >= ring.head[1] - 0.5,
	    `" is calling" is drawn at ${ring.tail.join('-')} px, inside the ` +
	    `caller's name at ${ring.head.join('-')} px: the name's override ` +
	    'reversed the page\'s own words');

	// The user takes the call, and the caller hangs up: "... hung up" (a
	// caller that hangs up while the page rings leaves a missed call
	// instead, the name at the sentence's end: test 123). The caller's
	// device online, so that the page's accept reaches it.
	const caller = await stack.subscribe(um, device,
	    { headers: bearer(token(um)) });
	t.after(() => caller.close());
	await page.click('#accept');
	await page.waitForFunction(() =>
	    document.body.dataset.phase === 'connecting');
	// As the caller's page sends it (a call's messages count from its
	// peer only: test 120).
	await post('hangup', { callId, from: { user: um, device } });
	await page.waitForFunction(() => document.body.dataset.phase === 'ended');
	const gone = await layout(page, '#banner-title', ' hung up');
	assert.equal(gone.text, `${um} (${device}) hung up`);
	assert.ok(gone.tail[0] >= gone.head[1] - 0.5,
	    `" hung up" is drawn at ${gone.tail.join('-')} px, inside the ` +
	    `caller's name at ${gone.head.join('-')} px`);
});

// The page's own line, "<user> on <device>", held the user's names without
// isolation: a user named with an override had " on laptop" drawn inside
// it. And an avatar's initial was the name's first UTF-16 unit: a name
// starting with an emoji showed half of its surrogate pair (a box).
test('the user\'s own names are isolated too, and an avatar shows a ' +
    'whole emoji', { ...T, skip }, async (t) => {
	const SECRET = crypto.randomBytes(32).toString('hex');
	const stack = await startStack({ env: { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET } }, t);
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const ua = `\u202Eba${sid()}`, um = `\u{1F600}m${sid()}`;
	const browser = await launchChromium(t);
	const page = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(ua)}`, ua, 'laptop');
	const me = await layout(page, '#me', ' on laptop');
	assert.equal(me.text, `${ua} on laptop`);
	assert.ok(me.tail[0] >= me.head[1] - 0.5,
	    `" on laptop" is drawn at ${me.tail.join('-')} px, inside the ` +
	    `user's own name at ${me.head.join('-')} px`);

	const callId = `emoji-${sid()}`;
	await postEvent(stack.base, ua, 'laptop', 'call', { callId,
	    from: { user: um, device: 'phone' }, media: { audio: true } },
	    bearer(token(um)));
	await page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	assert.equal(await page.textContent('#remote-initial'), '\u{1F600}');
});
