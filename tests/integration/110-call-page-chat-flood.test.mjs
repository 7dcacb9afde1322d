// The call page (/) shows its peer's chat messages (the call's data
// channel) in its chat log. It kept every one, whole: a peer's page sends
// at most 2,000 characters a message (the chat field's maxlength), but a
// hostile peer, past the Accept, sends what it likes, as fast as the
// channel goes (up to 256 KiB a message in Chromium, tens of MB a second
// on a LAN): the log grew by an element for each, whole, without bound,
// as far as the tab's memory goes. The log now keeps the latest MOST_CHAT
// (200) entries, each at
// most CHAT_CHARS (2,000) characters, as many as the page lets its own
// user send.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/,
// a fake camera) on two call pages behind the real Caddy, open mode: the
// hostile peer is a call page whose data channel the test drives.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sid } from './harness.mjs';
import {
	browserSkip, launchChromium, onlinePage, addContact,
} from './callpage.mjs';

const T = { timeout: 120000 };
const MOST_CHAT = 200;
const CHAT_CHARS = 2000;
const FLOOD = 600;
const skip = browserSkip([], import.meta.url);

const phase = (page, want) => page.waitForFunction((p) =>
    document.body.dataset.phase === p, want);

test('a peer that floods the chat does not grow the page without bound',
    { ...T, skip }, async (t) => {
	const stack = await startStack({}, t);
	const ua = `ca${sid()}`, um = `cm${sid()}`;
	const browser = await launchChromium(t, { media: true });
	const victim = await onlinePage(await browser.newContext(),
	    `${stack.base}/`, ua, 'laptop');
	const peer = await onlinePage(await browser.newContext(),
	    `${stack.base}/`, um, 'phone');
	await peer.click(await addContact(peer, ua, 'laptop'));
	await phase(victim, 'ringing');
	await victim.click('#accept');
	await phase(victim, 'connected');
	await phase(peer, 'connected');
	await victim.waitForSelector('#chat-input:not([disabled])');
	await peer.waitForSelector('#chat-input:not([disabled])');
	// What the victim's channel takes in, counted beside the page.
	await victim.evaluate(() => {
		window.chatIn = 0;
		window.beepApp.call.dc.addEventListener('message', () => {
			window.chatIn++;
		});
	});

	// The peer sends FLOOD messages of 8,000 characters each, numbered,
	// through its channel, waiting only for its buffer to drain.
	await peer.evaluate(async ([n, size]) => {
		const dc = window.beepApp.call.dc;
		for (let i = 0; i < n; i++) {
			if (dc.bufferedAmount > 1 << 20)
				await new Promise((r) => {
					dc.bufferedAmountLowThreshold = 1 << 18;
					dc.addEventListener('bufferedamountlow', r,
					    { once: true });
				});
			dc.send(`${i} `.padEnd(size, 'x'));
		}
	}, [FLOOD, 8000]);
	await victim.waitForFunction((n) => window.chatIn === n, FLOOD);

	const log = await victim.$$eval('#chat-log li', (lis) =>
	    lis.map((li) => ({ kind: li.className, text: li.textContent })));
	assert.ok(log.length <= MOST_CHAT,
	    `the page holds ${log.length} chat entries after ${FLOOD} ` +
	    'messages of its peer: a peer grows it without bound');
	const longest = Math.max(...log.map((e) => e.text.length));
	assert.ok(longest <= CHAT_CHARS + 1,
	    `a chat entry of ${longest} characters (a page sends at most ` +
	    `${CHAT_CHARS})`);
	// The latest are kept, in order, the last one last.
	const last = log.at(-1);
	assert.match(last.kind, /theirs/);
	assert.match(last.text, new RegExp(`^${FLOOD - 1} x`));
	// And the call goes on: the victim still chats, and hangs up.
	await victim.fill('#chat-input', 'enough');
	await victim.press('#chat-input', 'Enter');
	await peer.waitForSelector('.msg.theirs:has-text("enough")');
	await victim.click('#hangup');
	await phase(peer, 'ended');
});
