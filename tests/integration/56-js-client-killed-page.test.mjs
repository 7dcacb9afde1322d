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
import { loadClientInTab, newPage } from './tab.mjs';
import { startStack, poll, sid, postPath, skipReason } from './harness.mjs';

const { connect } = await loadClientInTab();

// Skipped under the sanitizers (the Makefile's SAN_SKIP): its subject is
// beep-signal.js.
const skip = skipReason(import.meta.url);
const T = { timeout: 60000, skip };

// A stack, a user's device on it, and a POST to it (its status).
async function setUp(t) {
	const stack = await startStack({}, t);
	const c = stack.client();
	const u = sid(), d = 'phone';
	const post = async (data) => (await c.postJson(postPath(u, d),
	    { data })).status;
	return { stack, u, d, post };
}

// The tab's first page: connected, "hello" posted and handled.
async function firstPageWithHello({ stack, u, d, post }) {
	newPage();
	const page = connect({ base: stack.base, user: u, device: d });
	const got = [];
	page.on('message', (data) => got.push(data));
	await poll(() => page.state === 'open' && page.lastEventId !== '',
	    { what: 'first page open' });
	assert.equal(await post('hello'), 200);
	await poll(() => got.includes('hello'), { what: 'hello handled' });
	return page;
}

// The tab's next page: what it gets (resets as "reset: reason") up to a
// marker posted once it is open.
async function nextPageGets({ stack, u, d, post }) {
	newPage();
	const page = connect({ base: stack.base, user: u, device: d });
	const got = [];
	page.on('reset', (reason) => got.push(`reset: ${reason}`));
	page.on('message', (data) => got.push(data));
	try {
		await poll(() => page.state === 'open',
		    { what: 'next page\'s stream open' });
		assert.equal(await post('marker'), 200);
		await poll(() => got.includes('marker'),
		    { what: 'marker delivered' });
	} finally {
		page.close();
	}
	return got;
}

test('a page killed in the background and loaded again gets what its ' +
    'dead stream took, or a reset', T, async (t) => {
	const tab = await setUp(t);
	const page1 = await firstPageWithHello(tab);
	// Killed: its connection closed by the browser, no event to the page
	// (page1.close() ends the fetch as the browser does, and dispatches
	// nothing).
	page1.close();
	// The old stream is still open behind Caddy for a few seconds.
	assert.equal(await tab.post('offer'), 200,
	    'taken by the killed page\'s stream (a ghost behind Caddy)');
	// The user comes back to the tab: the page loads again.
	const got = await nextPageGets(tab);
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
	const tab = await setUp(t);
	const page1 = await firstPageWithHello(tab);
	const helloId = page1.lastEventId;
	page1.close();

	// Loaded again: it resumes where the first left, nothing new comes.
	newPage();
	const page2 = connect({ base: tab.stack.base, user: tab.u,
	    device: tab.d });
	assert.equal(page2.lastEventId, helloId, 'resumed from hello\'s id');
	const seen2 = [];
	page2.on('message', (data) => seen2.push(data));
	// Open: its head came, which the service writes once the stream is
	// registered, with its position (hello's id).
	await poll(() => page2.state === 'open', { what: 'second page open' });
	// Killed too, before anything new came to it.
	page2.close();
	assert.equal(await tab.post('offer'), 200,
	    'taken by a killed page\'s stream (a ghost behind Caddy)');

	// The third page of the tab.
	const got = await nextPageGets(tab);
	assert.deepEqual(seen2, []);
	assert.ok(got[0] === 'offer' || got[0].startsWith('reset'),
	    'the third page gets the offer the second page\'s stream took ' +
	    '(the second page, which resumed from hello\'s id, must keep it ' +
	    `for the next): ${JSON.stringify(got)}`);
});
