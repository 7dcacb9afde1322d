// The call page (/) takes its STUN/TURN servers from /ice-servers and, per
// the README, "when that fails, the call or restart goes on with the last
// servers that came (or none: direct paths only)". A list the browser
// refuses is such a failure: Chromium's RTCPeerConnection constructor
// throws (SyntaxError, InvalidAccessError) on the whole list for one URL it
// cannot parse (stun:h:3478?transport=udp, turn://h, a port of 99999,
// which the service took at start-up until 2026-12-06) or one username
// over 509 bytes. The page made its peer connection with that list
// unguarded: both pages stayed in "connecting" for good, with no timer
// armed, no words, and a hang-up button as the only way out; the call
// never connected although the peers reach each other directly.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// on the call page behind the real Caddy; /ice-servers answered, for both
// pages, with a list Chromium refuses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sid } from './harness.mjs';
import {
	browserSkip, launchChromium, onlinePage, addContact,
} from './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([], import.meta.url);

test('a call connects when the browser refuses the ICE servers it was ' +
    'given', { ...T, skip }, async (t) => {
	const stack = await startStack({ env: { BEEP_KEEPALIVE: '1' } }, t);
	const browser = await launchChromium(t, { media: true });
	const refusedList = { iceServers: [
		{ urls: ['stun:127.0.0.1:3478?transport=udp'] },
	] };
	const open = async (user, device) => {
		const errors = [];
		const page = await onlinePage(await browser.newContext(),
		    `${stack.base}/`, user, device, { before: (p) => {
			p.on('pageerror', (e) => errors.push(e.message));
			return p.route('**/ice-servers*', (r) => r.fulfill({
			    json: refusedList,
			    headers: { 'Cache-Control': 'no-store' } }));
		} });
		return { page, errors };
	};
	const ua = `ra${sid()}`, ub = `rb${sid()}`;
	const alice = await open(ua, 'laptop');
	const bob = await open(ub, 'phone');
	// The list is one Chromium refuses, as the page gets it.
	const thrown = await bob.page.evaluate(async () => {
		const { iceServers } = await (await fetch('/ice-servers')).json();
		try {
			new RTCPeerConnection({ iceServers }).close();
			return null;
		} catch (e) {
			return e.name;
		}
	});
	assert.equal(thrown, 'SyntaxError');

	await alice.page.click(await addContact(alice.page, ub, 'phone'));
	await bob.page.waitForFunction(() => document.body.dataset.phase === 'ringing');
	await bob.page.click('#accept');
	const phaseOf = (p) => p.evaluate(() => [document.body.dataset.phase,
	    document.getElementById('banner-title').textContent].join(': '));
	// Connected (loopback: no server needed), or at least failed in words:
	// never left "connecting" with nothing armed to end it. The page's own
	// timers end a call not connected within 2 x 15 s in words, so 40 s
	// is only the bound of the wait, not a threshold.
	const settled = (p) => p.waitForFunction(() =>
	    ['connected', 'failed'].includes(document.body.dataset.phase),
	    null, { timeout: 40000 }).then(() => true, () => false);
	const [a, b] = await Promise.all([settled(alice.page), settled(bob.page)]);
	assert.ok(a && b, 'the call never settled: caller ' +
	    `"${await phaseOf(alice.page)}", callee "${await phaseOf(bob.page)}"; ` +
	    `page errors: ${[...alice.errors, ...bob.errors].join('; ')}`);
	assert.equal(await phaseOf(bob.page), `connected: Connected with ${ua} (laptop)`,
	    'the peers reach each other directly: the call connects without ' +
	    'the servers');
});
