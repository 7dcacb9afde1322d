// web/beep-signal.js in real Chromium (Debian's, driven by playwright-core
// from tests/browser/): what its `state` events tell a page, against a stub
// server that serves the client and answers its subscribes as scripted (a
// stream the service ends on demand, with the `retry:` asked for).
//
// A page gives up from a `state` listener: it calls close() when the stream
// is lost ("connecting" after "open"), as an application that rather shows
// "offline" than retries in the background does. The client then went on
// with the attempt it was about to make: a subscribe after close(), and
// "open" after "closed", which stayed the client's state for good.
//
// A stream that ends (the service stopping, a token's exp, a network cut
// mid-stream) leaves the client without one until it comes back after the
// `retry:` the stream named; the client said "open" all that while (the
// call page showed "Online" for a device the service held messages for,
// 202), and "connecting" only as it asked again.
//
// A client closed stays reachable from the window (its pagehide and
// pageshow listeners) until the page is next hidden, and with it every
// listener the page gave it and all they hold (a peer connection, media, a
// call's state): an app open all day that connects again (another account,
// a device taken over) keeps each client it closed. What the next page of
// the tab resumes from is kept as it comes, not only on pagehide (test 56).
//
// A send made while the browser is offline, against the real service behind
// Caddy (the last two tests; DevTools' network emulation takes the page
// offline): it waits for "online" and is delivered once, or rejects once
// offlineWait is over.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startStack, sid, postPath } from './harness.mjs';
import { browserSkip, launchChromium } from './callpage.mjs';

const T = { timeout: 60000 };
const skip = browserSkip([], import.meta.url);
const CLIENT = readFileSync(path.join(ROOT, 'web/beep-signal.js'));

let server, base;
// The subscribes the stub got, and how it answers the nth (from 1).
const subscribes = [];
let answer = () => {};
// The headers of the POSTs (sends) it got.
const posts = [];

before(async () => {
	server = http.createServer((req, res) => {
		if (req.url === '/beep-signal.js') {
			res.writeHead(200, { 'Content-Type': 'text/javascript' });
			res.end(CLIENT);
		} else if (req.url.startsWith('/subscribe/')) {
			subscribes.push(req.headers);
			answer(res, subscribes.length);
		} else if (req.method === 'POST') {
			posts.push(req.headers);
			req.resume();
			res.writeHead(200, { 'Content-Type': 'application/json' });
			res.end('{"id":"1-2"}');
		} else {
			res.writeHead(200, { 'Content-Type': 'text/html' });
			res.end('<!doctype html><title>blank</title>');
		}
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	base = `http://127.0.0.1:${server.address().port}`;
});
after(async () => {
	server.closeAllConnections();
	await new Promise((r) => server.close(r));
});

// A stream as the service opens it: its retry: and its position.
const open = (res, retry) => {
	res.writeHead(200, { 'Content-Type': 'text/event-stream' });
	res.write(`: beep-signal keepalive=4\n\nretry: ${retry}\n` +
	    'id: 1-1\nevent: position\ndata:\n\n');
};

// A Chromium page on the stub's origin (closed with the browser after t).
async function blankPage(t) {
	const browser = await launchChromium(t);
	const page = await browser.newPage();
	page.on('pageerror', (e) => console.error('[page]', e.message));
	await page.goto(`${base}/blank.html`);
	return page;
}

test('close() from a state listener: no request after it, and the state ' +
    'stays closed', { ...T, skip }, async (t) => {
	subscribes.length = 0;
	answer = (res) => open(res, 2000);
	const page = await blankPage(t);
	const r = await page.evaluate(async () => {
		const { connect } = await import('/beep-signal.js');
		// The subscribes the page asks for, as fetch() is called.
		const subs = [];
		const realFetch = window.fetch;
		window.fetch = (url, init) => {
			const p = realFetch(url, init);
			if (String(url).includes('/subscribe/'))
				subs.push(p.catch(() => {}));
			return p;
		};
		const sig = connect({ base: '', user: 'u', device: 'd',
		    resume: false });
		const states = [];
		let atClose = -1;
		const gaveUp = new Promise((resolve) => sig.on('state', (s) => {
			states.push(s);
			// Lost after it was open: the page gives up.
			if (s === 'connecting' && states.includes('open')) {
				sig.close();
				atClose = subs.length;
				resolve();
			}
		}));
		await new Promise((resolve) => sig.on('state',
		    (s) => s === 'open' && resolve()));
		// The stream is lost (as after a network change).
		sig.reconnect();
		await gaveUp;
		// A request the client makes after the listener returns is
		// asked within the microtasks that follow it (no token to
		// wait for): a task later, it has been.
		await new Promise((resolve) => setTimeout(resolve, 0));
		const after = subs.length - atClose;
		// Its head, if one was asked for, and what the client does
		// with it.
		await Promise.all(subs);
		await new Promise((resolve) => setTimeout(resolve, 0));
		return { after, states, state: sig.state };
	});
	assert.equal(r.after, 0, 'a subscribe was asked for after close() ' +
	    `(states: ${JSON.stringify(r.states)})`);
	assert.deepEqual(r.states, ['connecting', 'open', 'connecting',
	    'closed']);
	assert.equal(r.state, 'closed');
});

test('a stream that ended: connecting while it waits its retry:, not open',
    { ...T, skip }, async (t) => {
	subscribes.length = 0;
	// The first stream ends at once, naming a long retry: (10 min, so
	// that its wait stands out among the client's timers); the next
	// stays open.
	answer = (res, n) => {
		open(res, n === 1 ? 600000 : 2000);
		if (n === 1)
			res.end();
	};
	const page = await blankPage(t);
	await page.evaluate(async () => {
		const { connect } = await import('/beep-signal.js');
		// The client's state when it starts to wait that retry:
		// (a timer of more than a minute: the others are seconds).
		window.waiting = null;
		const realTimeout = window.setTimeout;
		window.setTimeout = (fn, ms, ...args) => {
			if (ms > 60000 && window.waiting === null)
				window.waiting = window.sig.state;
			return realTimeout(fn, ms, ...args);
		};
		window.states = [];
		window.sig = connect({ base: '', user: 'u', device: 'd',
		    resume: false });
		window.sig.on('state', (s) => window.states.push(s));
	});
	await page.waitForFunction(() => window.waiting !== null);
	const r = await page.evaluate(() => ({ waiting: window.waiting,
	    states: window.states }));
	assert.equal(r.waiting, 'connecting', 'the stream ended, and the ' +
	    'client waits its retry: with none, saying it is open ' +
	    `(states: ${JSON.stringify(r.states)})`);
	assert.deepEqual(r.states, ['connecting', 'open', 'connecting']);
	assert.equal(subscribes.length, 1, 'it obeys retry: (10 min)');
	await page.evaluate(() => window.sig.close());
});

test('a closed client is let go, with what its listeners hold',
    { ...T, skip }, async (t) => {
	subscribes.length = 0;
	answer = (res) => open(res, 2000);
	const page = await blankPage(t);
	await page.evaluate(async () => {
		const { connect } = await import('/beep-signal.js');
		// What an app's listener holds (a call's state, its media).
		const held = new ArrayBuffer(8 << 20);
		// The default: the next page of the tab resumes.
		const sig = connect({ base: '', user: 'u', device: 'd' });
		sig.on('message', () => held.byteLength);
		await new Promise((resolve) => sig.on('state',
		    (s) => s === 'open' && resolve()));
		sig.close();
		window.refs = { sig: new WeakRef(sig), held: new WeakRef(held) };
	});
	// A full collection, in a task of its own (a WeakRef keeps its
	// target until the job that made it ends).
	const cdp = await page.context().newCDPSession(page);
	await cdp.send('HeapProfiler.collectGarbage');
	const kept = await page.evaluate(() => ({
		sig: window.refs.sig.deref() !== undefined,
		held: window.refs.held.deref() !== undefined,
	}));
	assert.deepEqual(kept, { sig: false, held: false }, 'a closed client, ' +
	    'and what its listeners hold, stays reachable from the window');
});

// A page's last send (keepalive: true, from pagehide) asks the token
// function at once, outside any promise: one that throws (no session any
// more) made send() throw, where every other failure rejects, and a page
// that hangs up with `sig.send(...).catch(...)` stopped there, its own
// pagehide work after it undone.
test('a keepalive send whose token function throws rejects, not throws',
    { ...T, skip }, async (t) => {
	subscribes.length = 0;
	answer = (res) => open(res, 2000);
	const page = await blankPage(t);
	const r = await page.evaluate(async () => {
		const { connect } = await import('/beep-signal.js');
		let ask = 0;
		const sig = connect({ base: '', user: 'u', device: 'd',
		    resume: false, token: () => {
			// The stream's token; then the session is gone.
			if (ask++ === 0)
				return 'ok';
			throw new Error('no session');
		} });
		await new Promise((resolve) => sig.on('state',
		    (s) => s === 'open' && resolve()));
		let p, thrown = null;
		try {
			p = sig.send('v', 'e', {}, { event: 'hangup',
			    keepalive: true });
		} catch (e) {
			thrown = e.message;
		}
		const rejected = p instanceof Promise ?
		    await p.then(() => null, (e) => e.message) : null;
		sig.close();
		return { thrown, rejected };
	});
	assert.deepEqual(r, { thrown: null, rejected: 'no session' });
});

// A token function that answers with a promise (it fetches a fresh token)
// cannot be awaited by a page's last send, whose fetch must start before
// pagehide returns: the send goes with the token of the client's last
// request (its stream's), not with none (a 401, and the peer never hears
// the hang-up), and a rejection of that promise is not left unhandled.
test('a keepalive send with an async token function goes with the last ' +
    'token', { ...T, skip }, async (t) => {
	subscribes.length = 0;
	posts.length = 0;
	answer = (res) => open(res, 2000);
	const page = await blankPage(t);
	const r = await page.evaluate(async () => {
		const { connect } = await import('/beep-signal.js');
		const unhandled = [];
		window.addEventListener('unhandledrejection', (e) => {
			unhandled.push(String(e.reason && e.reason.message));
			e.preventDefault();
		});
		let ask = 0;
		const sig = connect({ base: '', user: 'u', device: 'd',
		    resume: false, token: async () => {
			// The stream's token; then the refresh fails.
			if (ask++ === 0)
				return 'tok-1';
			throw new Error('refresh failed');
		} });
		await new Promise((resolve) => sig.on('state',
		    (s) => s === 'open' && resolve()));
		const sent = await sig.send('v', 'e', {}, { event: 'hangup',
		    keepalive: true });
		sig.close();
		// Past a turn of the event loop, where an unhandled rejection
		// is reported.
		await new Promise((resolve) => setTimeout(resolve, 0));
		return { sent, unhandled };
	});
	assert.deepEqual(r, { sent: { id: '1-2', held: false },
	    unhandled: [] });
	assert.equal(posts.length, 1);
	assert.equal(posts[0].authorization, 'Bearer tok-1');
});

// One device connected twice on one page (two parts of an app that each
// connect): each client is one of the device's streams and gets every
// message, so each resumes from the id the page before kept; the first
// must not take it from the second, which would start past what the old
// page's stream took, untold.
test('two clients of one device on one page both resume from the kept id',
    { ...T, skip }, async (t) => {
	subscribes.length = 0;
	answer = (res) => open(res, 2000);
	const page = await blankPage(t);
	await page.evaluate(async () => {
		// What the page before kept (the client's own format).
		sessionStorage.setItem('beep-signal:|u|d',
		    JSON.stringify({ id: '7-7', at: Date.now() }));
		const { connect } = await import('/beep-signal.js');
		const a = connect({ base: '', user: 'u', device: 'd' });
		const b = connect({ base: '', user: 'u', device: 'd' });
		const opened = (s) => new Promise((resolve) => s.on('state',
		    (x) => x === 'open' && resolve()));
		await Promise.all([opened(a), opened(b)]);
		a.close();
		b.close();
	});
	assert.deepEqual(subscribes.map((h) => h['last-event-id']),
	    ['7-7', '7-7']);
});

// A send made while the browser is offline (a phone between Wi-Fi and LTE,
// a tunnel), against the real service behind Caddy, the page taken offline
// by DevTools' network emulation (Network.emulateNetworkConditions,
// offline: true, by Playwright's setOffline): Chromium then says
// navigator.onLine false and fires "offline", every fetch fails at once, and
// going back fires "online". The send's first attempt fails; it waits for
// "online" (offlineWait, 30 s by default), then goes again and is delivered,
// once. Before, its three attempts failed in some 3 s and it rejected though
// the network came back a moment later. Not back within offlineWait: it
// rejects, saying so.

// A page of the service's origin, its client connected as (user, 'd') and
// open, with `opts` for connect(). In the page: window.sig; window.net, the
// "offline" and "online" events with navigator.onLine as each came;
// window.posts, how each POST the page makes ended ('failed <message>',
// 'answered <status>'); window.waits, how many "online" listeners were
// added from now on (the client's own, for its stream, was added by
// connect()); window.send(to, data) sends, window.settled its outcome
// ({ ok } or { err }) once it has one.
async function offlinePage(t, stack, user, opts = {}) {
	const browser = await launchChromium(t);
	const context = await browser.newContext();
	const page = await context.newPage();
	page.on('pageerror', (e) => console.error('[page]', e.message));
	await page.goto(`${stack.base}/healthz`);
	await page.evaluate(async ({ user, opts }) => {
		const { connect } = await import('/beep-signal.js');
		window.net = [];
		for (const type of ['offline', 'online'])
			addEventListener(type, () => window.net.push(
			    `${type} ${navigator.onLine}`));
		window.posts = [];
		const ended = (how) => window.posts.push(how);
		const realFetch = window.fetch;
		window.fetch = (url, init) => {
			const p = realFetch(url, init);
			if (init?.method === 'POST')
				p.then((r) => ended(`answered ${r.status}`),
				    (e) => ended(`failed ${e.message}`));
			return p;
		};
		window.sig = connect({ base: '', user, device: 'd',
		    resume: false, ...opts });
		await new Promise((resolve) => window.sig.on('state',
		    (s) => s === 'open' && resolve()));
		window.waits = 0;
		const realAdd = window.addEventListener;
		window.addEventListener = function (type, ...rest) {
			if (type === 'online')
				window.waits++;
			return realAdd.call(this, type, ...rest);
		};
		window.settled = null;
		window.send = (to, data) => {
			window.sig.send(to, 'd', data).then(
			    (ok) => { window.settled = { ok }; },
			    (e) => { window.settled = { err: e.message }; });
		};
	}, { user, opts });
	t.after(() => page.evaluate(() => window.sig.close()).catch(() => {}));
	// Offline, as Chromium says it to the page.
	const offline = async () => {
		await context.setOffline(true);
		await page.waitForFunction(() => window.net.length > 0);
		assert.deepEqual(await page.evaluate(() => ({ net: window.net,
		    onLine: navigator.onLine })),
		{ net: ['offline false'], onLine: false },
		'the emulation makes the page offline');
	};
	return { context, page, offline };
}

// The events s gets up to one whose data is `end` (posted now), that one
// left out: [data, id] each.
async function gotUntilEnd(stack, s, user) {
	const c = stack.client();
	const r = await c.postJson(postPath(user, 'd'), { data: 'end' });
	assert.equal(r.status, 200, r.text);
	const got = [];
	for (;;) {
		const e = await s.nextEvent();
		if (e.data === 'end')
			return got;
		got.push([e.data, e.lastEventId]);
	}
}

test('a send made offline waits for "online", then is delivered once',
    { ...T, skip }, async (t) => {
	const stack = await startStack({}, t);
	const from = sid(), to = sid();
	// The device sent to, its stream open.
	const s = await stack.subscribe(to, 'd');
	const { context, page, offline } = await offlinePage(t, stack, from);
	await offline();
	await page.evaluate((to) => window.send(to, 'while offline'), to);
	// Its first attempt failed, and the client listens for "online";
	// or the send ended without.
	await page.waitForFunction(() => window.waits > 0 ||
	    window.settled !== null);
	const waiting = await page.evaluate(() => ({ settled: window.settled,
	    posts: window.posts, waits: window.waits }));
	assert.deepEqual(waiting, { settled: null,
	    posts: ['failed Failed to fetch'], waits: 1 },
	'the send, its first attempt failed offline, waits for "online"');
	await context.setOffline(false);
	await page.waitForFunction(() => window.settled !== null);
	const r = await page.evaluate(() => ({ settled: window.settled,
	    posts: window.posts, net: window.net, onLine: navigator.onLine }));
	assert.ok(r.settled.ok, `the send: ${JSON.stringify(r.settled)}`);
	assert.match(r.settled.ok.id, /^\d+-\d+$/);
	assert.deepEqual(r, { settled: { ok: { id: r.settled.ok.id,
	    held: false } }, posts: ['failed Failed to fetch', 'answered 200'],
	net: ['offline false', 'online true'], onLine: true });
	assert.deepEqual(await gotUntilEnd(stack, s, to),
	    [['while offline', r.settled.ok.id]], 'delivered once');
});

test('a send offline past offlineWait rejects, saying so',
    { ...T, skip }, async (t) => {
	const stack = await startStack({}, t);
	const from = sid(), to = sid();
	const s = await stack.subscribe(to, 'd');
	const { page, offline } = await offlinePage(t, stack, from,
	    { offlineWait: 500 });
	await offline();
	await page.evaluate((to) => window.send(to, 'lost'), to);
	await page.waitForFunction(() => window.settled !== null);
	assert.deepEqual(await page.evaluate(() => ({ settled: window.settled,
	    posts: window.posts, net: window.net, onLine: navigator.onLine })),
	{ settled: { err: 'send: offline for 500 ms' },
	    posts: ['failed Failed to fetch'], net: ['offline false'],
	    onLine: false });
	assert.deepEqual(await gotUntilEnd(stack, s, to), [], 'not delivered');
});
