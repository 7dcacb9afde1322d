// The call page (/) signed in with the `beep_token` session cookie, whose
// JWT expires (the service ends the stream at its exp, test 69) and is not
// refreshed: the client tries again with its backoff, and each try is a
// 401 (test 36: it comes back by itself once the cookie is refreshed). The
// page listened to the client's states only, and said "Reconnecting…" for
// ever, where before that change it said "You are offline: credentials
// expired": it must say that its user is signed out (the pill, the banner
// when no call is in progress, the banner's detail during a connected
// call, whose media goes on), keep saying so, and be Online again by
// itself once a stream opens with a refreshed cookie. With a token from
// the URL fragment (fixed) the client closes on the 401: the page says it
// is offline, and why, as before; during a connected call, in the call's
// banner, which keeps its Hang up (the offline banner took its place, and
// the call went on with no way to end it but leaving the page).
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real service and Caddy, JWT authentication
// on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, sid } from './harness.mjs';
import { mint, claims, nowSec, withinLife } from './jwt.mjs';
import {
	browserSkip, launchChromium, onlinePage, goOnline, tryOnline,
	addContact,
} from './callpage.mjs';

const T = { timeout: 300000 };
const skip = browserSkip([], import.meta.url);
// A session that ends within the test: its first life (withinLife()
// lengthens it when a loaded machine's set-up outlives it).
const LIFE_S = 3;

async function setUp(t) {
	const SECRET = crypto.randomBytes(32).toString('hex');
	// Contacts' devices listed: a call is placed by clicking one.
	const stack = await startStack({ env: { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET, BEEP_JWT_LEEWAY: '0',
	    BEEP_JWT_QUERY: '0', BEEP_LIST_POLICY: 'any' } }, t);
	const token = (sub, extra) => mint(claims(sub, extra), { key: SECRET });
	return { stack, token };
}

// As the site's login does: the session cookie, set (or refreshed) for
// the page's origin.
const setCookie = (page, tok) => page.evaluate((v) => {
	document.cookie = `beep_token=${v}; path=/`;
}, tok);

// Counts the 401s the page's client (window.beepApp.sig) reports from now
// on; resolves a function that waits until n have come. The page's own
// listener was added first, so when the test's sees one the page has
// handled it.
async function count401(page) {
	await page.evaluate(() => {
		window.refused401 = 0;
		window.beepApp.sig.on('error', (e) => {
			if (e.status === 401)
				window.refused401++;
		});
	});
	return (n) => page.waitForFunction((k) => window.refused401 >= k, n,
	    { timeout: 0 });
}

// What the page shows, and its client's state.
const shown = (page) => page.evaluate(() => ({
	state: window.beepApp.sig.state,
	pill: document.getElementById('sigstate').textContent,
	phase: document.body.dataset.phase,
	title: document.getElementById('banner-title').textContent,
	detail: document.getElementById('banner-detail').textContent,
}));

const untilPill = (page, text) => page.waitForFunction((s) =>
    document.getElementById('sigstate').textContent === s, text,
    { timeout: 0 });

test('an expired session cookie: the page says signed out, and is back ' +
    'by itself once the cookie is refreshed', { ...T, skip }, async (t) => {
	const { stack, token } = await setUp(t);
	const browser = await launchChromium(t);
	// Online, and the test's count of 401s on, before the session ends.
	const { page, u, refusedN } = await withinLife(t, LIFE_S,
	    async (exp) => {
		const u = `se${sid()}`;
		const context = await browser.newContext();
		const page = await context.newPage();
		page.on('pageerror', (e) => console.error('[call page]',
		    e.message));
		await page.goto(`${stack.base}/`);
		await setCookie(page, token(u, { exp }));
		const error = await tryOnline(page, u, 'laptop');
		if (error === null) {
			const refusedN = await count401(page);
			const { pill } = await shown(page);
			if (nowSec() < exp) {
				assert.equal(pill, 'Online');
				return { page, u, refusedN };
			}
		} else {
			assert.equal(error, 'Could not go online: credentials ' +
			    'expired');
		}
		await context.close();
		return null;
	});

	// The session ends: the stream with it, and the client's next try
	// is refused.
	await refusedN(1);
	let s = await shown(page);
	assert.equal(s.pill, 'Signed out', 'the page does not say that its ' +
	    `session ended: ${JSON.stringify(s)}`);
	assert.equal(s.phase, 'signedout', JSON.stringify(s));
	assert.equal(s.title, 'You are signed out');
	assert.match(s.detail, /sign in again/i);

	// Tried again (as the browser's `online` event does at once): still
	// refused, still said.
	await page.evaluate(() => window.beepApp.sig.reconnect());
	await refusedN(2);
	s = await shown(page);
	assert.equal(s.pill, 'Signed out', JSON.stringify(s));
	assert.equal(s.phase, 'signedout', JSON.stringify(s));

	// The site's login refreshes the session: the client's next try
	// opens a stream, and the page is online again by itself.
	await setCookie(page, token(u));
	await untilPill(page, 'Online');
	s = await shown(page);
	assert.equal(s.phase, 'idle', JSON.stringify(s));
	assert.equal(s.title, 'No call');
	assert.equal(s.state, 'open');
});

test('signed out during a connected call: the call goes on, its banner ' +
    'says so', { ...T, skip }, async (t) => {
	const { stack, token } = await setUp(t);
	const ua = `sa${sid()}`, ub = `sb${sid()}`;
	const browser = await launchChromium(t, { media: true });
	// Alice with the session cookie, Bob with a token in the fragment.
	const alice = await (await browser.newContext()).newPage();
	alice.on('pageerror', (e) => console.error('[call page]', e.message));
	await alice.goto(`${stack.base}/`);
	await setCookie(alice, token(ua));
	await goOnline(alice, ua, 'laptop');
	const bob = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(ub)}`, ub, 'phone');
	await alice.click(await addContact(alice, ub, 'phone'));
	await bob.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await bob.click('#accept');
	const connected = (p) => p.waitForFunction(() =>
	    document.body.dataset.phase === 'connected', null, { timeout: 0 });
	await Promise.all([connected(alice), connected(bob)]);

	// Her session has expired when her stream is next opened.
	const refusedN = await count401(alice);
	await setCookie(alice, token(ua, { exp: nowSec() - 60 }));
	await alice.evaluate(() => window.beepApp.sig.reconnect());
	await refusedN(1);
	let s = await shown(alice);
	assert.equal(s.pill, 'Signed out', JSON.stringify(s));
	assert.equal(s.phase, 'connected', 'the call goes on');
	assert.equal(s.title, `Connected with ${ub} (phone)`);
	assert.match(s.detail, /signed out/i, 'the call\'s banner does not ' +
	    `say that the page is signed out: ${JSON.stringify(s)}`);
	assert.equal(await alice.isVisible('#hangup'), true);

	await setCookie(alice, token(ua));
	await untilPill(alice, 'Online');
	s = await shown(alice);
	assert.equal(s.phase, 'connected', JSON.stringify(s));
	assert.doesNotMatch(s.detail, /signed out/i, JSON.stringify(s));
	await alice.click('#hangup');
	await bob.waitForFunction(() => document.body.dataset.phase === 'ended');
});

test('an expired token from the URL fragment: offline, saying why',
    { ...T, skip }, async (t) => {
	const { stack, token } = await setUp(t);
	const browser = await launchChromium(t);
	// Online before the token expires.
	const page = await withinLife(t, LIFE_S, async (exp) => {
		const u = `sf${sid()}`;
		const context = await browser.newContext();
		const page = await context.newPage();
		page.on('pageerror', (e) => console.error('[call page]',
		    e.message));
		await page.goto(`${stack.base}/#token=${token(u, { exp })}`);
		const error = await tryOnline(page, u, 'laptop');
		if (error === null)
			return page;
		assert.equal(error, 'Could not go online: credentials expired');
		await context.close();
		return null;
	});
	await untilPill(page, 'Offline');
	const s = await shown(page);
	assert.equal(s.phase, 'failed', JSON.stringify(s));
	assert.equal(s.title, 'You are offline');
	// The service's reason: the token expired.
	assert.match(s.detail, /credentials expired/, JSON.stringify(s));
	assert.equal(s.state, 'closed');
});

test('an expired token from the URL fragment during a connected call: the ' +
    'call goes on, with its Hang up', { ...T, skip }, async (t) => {
	const { stack, token } = await setUp(t);
	const ua = `sc${sid()}`, ub = `sd${sid()}`;
	const browser = await launchChromium(t, { media: true });
	const alice = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(ua)}`, ua, 'laptop');
	const bob = await onlinePage(await browser.newContext(),
	    `${stack.base}/#token=${token(ub)}`, ub, 'phone');
	await alice.click(await addContact(alice, ub, 'phone'));
	await bob.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await bob.click('#accept');
	const connected = (p) => p.waitForFunction(() =>
	    document.body.dataset.phase === 'connected', null, { timeout: 0 });
	await Promise.all([connected(alice), connected(bob)]);

	// Her token has expired when her stream is next opened: the
	// service refuses it (401), and the client, whose token is fixed,
	// closes.
	const expired = token(ua, { exp: nowSec() - 60 });
	await alice.route('**/subscribe/**', (r) => r.continue({ headers: {
	    ...r.request().headers(), authorization: `Bearer ${expired}` } }));
	await alice.evaluate(() => window.beepApp.sig.reconnect());
	await untilPill(alice, 'Offline');
	const s = await shown(alice);
	assert.equal(s.phase, 'connected', 'the call goes on, but the page ' +
	    `shows it no more: ${JSON.stringify(s)}`);
	assert.equal(s.title, `Connected with ${ub} (phone)`);
	assert.match(s.detail, /offline/i, JSON.stringify(s));
	assert.equal(await alice.isVisible('#hangup'), true,
	    'no Hang up for a call whose media goes on');
	await alice.click('#hangup');
	assert.equal(await alice.evaluate(() => window.beepApp.call), null);
	const after = await shown(alice);
	assert.equal(after.phase, 'ended', JSON.stringify(after));
});

// A link whose token has already expired: the page cannot go online, and
// its join form says why in the service's words (the 401's reason, a
// token that verified but expired), not the client's request name.
test('a link with an expired token: the join form says the credentials ' +
    'expired', { ...T, skip }, async (t) => {
	const { stack, token } = await setUp(t);
	const u = `sj${sid()}`;
	const browser = await launchChromium(t);
	const page = await (await browser.newContext()).newPage();
	await page.goto(`${stack.base}/#token=${token(u,
	    { exp: nowSec() - 60 })}`);
	await page.fill('#join-user', u);
	await page.fill('#join-device', 'laptop');
	await page.click('#join-go');
	await page.waitForSelector('#join-error:not([hidden])');
	const error = await page.textContent('#join-error');
	assert.equal(error, 'Could not go online: credentials expired');
	assert.equal(await page.evaluate(() => window.beepApp.sig.state),
	    'closed');
});
