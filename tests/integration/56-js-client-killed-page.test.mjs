// web/beep-signal.js (in Node, with a tab's sessionStorage and a window
// shimmed, as test 50) behind Caddy at the default settings: a page whose
// renderer is killed without a word, then loaded again in the same tab.
//
// That is how a phone loses a page: Chrome on Android and Safari on iOS
// kill the process of a tab in the background when memory is short (the
// Page Lifecycle API's "discarded" state), and load the page again when the
// user comes back to the tab. No pagehide, no unload, no JavaScript at all
// runs on the way out; the tab's sessionStorage is kept. The browser closes
// the page's connections, so behind Caddy its stream stays open for a few
// seconds (a ghost), and a message posted then is answered 200 and taken by
// that dead stream.
//
// The client keeps the id the next page of the tab resumes from only on
// pagehide, which never came: the next page starts without an id, as a
// fresh subscription, past the message, and is not told (no reset). With
// the id it would get the message by replay (the service keeps it 30 s).
// The README tells bare EventSource users to store the id "as it comes,
// not only on pagehide"; its own client does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, poll, sid, postPath } from './harness.mjs';

class Storage {
	constructor() { this.m = new Map(); }
	get length() { return this.m.size; }
	key(i) { return [...this.m.keys()][i] ?? null; }
	getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
	setItem(k, v) { this.m.set(k, String(v)); }
	removeItem(k) { this.m.delete(k); }
}
// The tab: its sessionStorage outlives its pages; each page has a window.
globalThis.sessionStorage = new Storage();
globalThis.window = new EventTarget();
const { connect } = await import('../../web/beep-signal.js');

const T = { timeout: 60000 };

test('a page killed in the background and loaded again gets what its ' +
    'dead stream took, or a reset', T, async (t) => {
	const stack = await startStack({}, t);
	const c = stack.client();
	const u = sid(), d = 'phone';
	const post = async (data) => {
		const r = await c.postJson(postPath(u, d), { data });
		return r.status;
	};

	// The first page: connected, a message handled.
	globalThis.window = new EventTarget();
	const page1 = connect({ base: stack.base, user: u, device: d });
	const got1 = [];
	page1.on('message', (data) => got1.push(data));
	await poll(() => page1.state === 'open' && page1.lastEventId !== '',
	    { what: 'first page open' });
	assert.equal(await post('hello'), 200);
	await poll(() => got1.includes('hello'), { what: 'hello handled' });

	// Killed: its connection closed by the browser, no event to the page
	// (page1.close() ends the fetch as the browser does, and dispatches
	// nothing).
	page1.close();
	// The old stream is still open behind Caddy for a few seconds.
	assert.equal(await post('offer'), 200,
	    'taken by the killed page\'s stream (a ghost behind Caddy)');

	// The user comes back to the tab: the page loads again.
	globalThis.window = new EventTarget();
	const page2 = connect({ base: stack.base, user: u, device: d });
	const got = [];
	page2.on('reset', (reason) => got.push(`reset: ${reason}`));
	page2.on('message', (data) => got.push(data));
	try {
		await poll(() => page2.state === 'open',
		    { what: 'next page\'s stream open' });
		assert.equal(await post('marker'), 200);
		await poll(() => got.includes('marker'),
		    { what: 'marker delivered' });
	} finally {
		page2.close();
	}
	assert.ok(got[0] === 'offer' || got[0].startsWith('reset'),
	    'the next page of the tab gets the offer the killed page\'s stream ' +
	    'took (the service replays it from the id of "hello"), or is told ' +
	    `of its loss; it started afresh past it: ${JSON.stringify(got)}`);
});

// The same, for a page that was itself loaded again and resumed, and is
// killed before anything new came to it: its stream opened at the id it
// resumed from (its position), which it must keep for the next page too.
test('a page that resumed, killed before anything new came, and loaded ' +
    'again gets what its dead stream took, or a reset', T, async (t) => {
	const stack = await startStack({}, t);
	const c = stack.client();
	const u = sid(), d = 'phone';
	const post = async (data) => {
		const r = await c.postJson(postPath(u, d), { data });
		return r.status;
	};
	// A page that handled a message, then killed.
	globalThis.window = new EventTarget();
	const page1 = connect({ base: stack.base, user: u, device: d });
	const got1 = [];
	page1.on('message', (data) => got1.push(data));
	await poll(() => page1.state === 'open' && page1.lastEventId !== '',
	    { what: 'first page open' });
	assert.equal(await post('hello'), 200);
	await poll(() => got1.includes('hello'), { what: 'hello handled' });
	const helloId = page1.lastEventId;
	page1.close();

	// Loaded again: it resumes where the first left, nothing new comes.
	globalThis.window = new EventTarget();
	const page2 = connect({ base: stack.base, user: u, device: d });
	assert.equal(page2.lastEventId, helloId, 'resumed from hello\'s id');
	const seen2 = [];
	page2.on('message', (data) => seen2.push(data));
	// Open: its head came, which the service writes once the stream is
	// registered, with its position (hello's id).
	await poll(() => page2.state === 'open', { what: 'second page open' });
	// Killed too, before anything new came to it.
	page2.close();
	assert.equal(await post('offer'), 200,
	    'taken by a killed page\'s stream (a ghost behind Caddy)');

	// The third page of the tab.
	globalThis.window = new EventTarget();
	const page3 = connect({ base: stack.base, user: u, device: d });
	const got = [];
	page3.on('reset', (reason) => got.push(`reset: ${reason}`));
	page3.on('message', (data) => got.push(data));
	try {
		await poll(() => page3.state === 'open',
		    { what: 'third page\'s stream open' });
		assert.equal(await post('marker'), 200);
		await poll(() => got.includes('marker'),
		    { what: 'marker delivered' });
	} finally {
		page3.close();
	}
	assert.deepEqual(seen2, []);
	assert.ok(got[0] === 'offer' || got[0].startsWith('reset'),
	    'the third page gets the offer the second page\'s stream took ' +
	    '(the second page, which resumed from hello\'s id, must keep it ' +
	    `for the next): ${JSON.stringify(got)}`);
});
