// Real browsers: headless Chromium (Debian's chromium, driven by
// playwright-core from tests/browser/, no browser download) against the
// real backend behind the real Caddy, and a real coturn for the relay test.
//
//  - two pages as two users connect a peer connection using only
//    /beep-signal.js and exchange data-channel messages both ways (the pages
//    are on another origin than the service, as a web app would be);
//  - the callee's signaling stream is down while the offer and candidates
//    are posted (mid-negotiation): it reconnects with its last id and the
//    call still connects;
//  - glare: both sides offer at once (their incoming offers are held until
//    both have sent theirs, so the collision is certain) and still connect;
//  - iceTransportPolicy "relay" through coturn (use-auth-secret) with the
//    credentials from GET /ice-servers: the selected pair is relay-relay;
//  - the call page driven as a person would: type names, click call and
//    accept, chat, decline, both calling each other at once; a screenshot of
//    each state (build/screenshots, or
//    BEEP_SCREENSHOTS=web/screenshots to refresh the README's);
//  - the call page's contact polls: one that hangs is not joined by more
//    (the page's clock run by the test);
//  - the call page: an accept lost, then a reset on the caller's stream:
//    the caller rings again, the callee accepts again, they connect; a
//    hang-up lost while the callee rings: its accept gets the hang-up;
//  - the back-forward cache (Chromium's, turned on): an app that closes its
//    client on pagehide and connects again on pageshow resumes; a new page
//    of the tab, long after the cached one left, resumes what the cached
//    page's frozen stream took meanwhile;
//  - a frozen page (the Page Lifecycle API, by Page.setWebLifecycleState;
//    its freeze and resume events checked, and that it ran no JavaScript
//    meanwhile): what was posted while it was frozen comes once, in order,
//    when it resumes; to beep-signal.js, which closed its stream on
//    `freeze` (posts held, 202), also when frozen past BEEP_REPLAY_SECONDS
//    (no reset; one new stream), and to a bare EventSource, which kept its
//    stream (200); an EventSource frozen past two keepalives and the write
//    timeout (1 s each) keeps its stream and loses nothing; frozen while
//    more comes than Chromium takes in, the service drops its stream (a
//    write past 1 s, or its queue full), holds the rest, and it gets every
//    message from its last id.
//
// Every process started here (chromium, coturn, backend, Caddy) is stopped
// by pid, also when a test fails.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { ROOT, startStack, poll, withTimeout, sid, Client }
    from './harness.mjs';
import { parseExposition } from './prom.mjs';
import { Rig, stop, TURNSERVER, startCoturn } from './fronts.mjs';
import { mint, claims } from './jwt.mjs';
import {
	CHROMIUM, playwright, browserSkip, goOnline, addContact,
} from './callpage.mjs';

const SHOTS = path.resolve(ROOT, process.env.BEEP_SCREENSHOTS ||
    'build/screenshots');
const T = { timeout: 90000 };
// The call page's Content-Security-Policy (the Caddyfile's @web handle).
const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "media-src 'self' blob: mediastream:; frame-ancestors 'none'; " +
    "base-uri 'none'; form-action 'self'";

const skip = browserSkip([TURNSERVER], import.meta.url);

// ---------------------------------------------------------------------------
// Processes: chromium (coturn is fronts.mjs's), stopped by pid.

const pids = new Set();
process.on('exit', () => {
	for (const pid of pids) {
		try { process.kill(-pid, 'SIGKILL'); } catch { }
		try { process.kill(pid, 'SIGKILL'); } catch { }
	}
});

function alive(pid) {
	try { process.kill(pid, 0); return true; } catch { return false; }
}

// SIGTERM to the process (and its group, when it leads one), SIGKILL after
// a bound; resolves when the pid is gone.
async function stopPid(pid, group = false) {
	const kill = (sig) => {
		if (group)
			try { process.kill(-pid, sig); } catch { }
		try { process.kill(pid, sig); } catch { }
	};
	kill('SIGTERM');
	try {
		await poll(() => !alive(pid), { timeout: 5000, what: `pid ${pid} gone` });
	} catch {
		kill('SIGKILL');
		await poll(() => !alive(pid), { timeout: 5000, what: `pid ${pid} killed` });
	}
	pids.delete(pid);
}

// bfcache: with the back-forward cache, which Playwright turns off by
// default (a page left is then always unloaded).
async function launchBrowser({ bfcache = false } = {}) {
	const server = await playwright.chromium.launchServer({
		executablePath: CHROMIUM,
		headless: true,
		ignoreDefaultArgs: bfcache ? ['--disable-back-forward-cache'] : [],
		// Playwright gives every launch a fresh temporary profile
		// (--user-data-dir) and removes it on close.
		args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
		    '--disable-background-networking', '--disable-component-update',
		    '--disable-sync', '--use-fake-ui-for-media-stream',
		    '--use-fake-device-for-media-stream'],
	});
	const pid = server.process().pid;
	pids.add(pid);
	const browser = await playwright.chromium.connect(server.wsEndpoint());
	return {
		browser,
		async stop() {
			await browser.close().catch(() => {});
			await withTimeout(server.close(), 10000, null).catch(() => {});
			if (alive(pid))
				await stopPid(pid, true);
			pids.delete(pid);
		},
	};
}

// ---------------------------------------------------------------------------
// Pages that use only /beep-signal.js and RTCPeerConnection.

// A blank page of another origin than the service's (an app server of its
// own on another loopback port), as a web app on its own site would be: the
// module, the stream and the posts are all cross-origin, preflights
// (Last-Event-ID) included.
let appServer = null, appBase = null;
async function startAppServer() {
	appServer = http.createServer((req, res) => {
		res.writeHead(200, { 'Content-Type': 'text/html' });
		res.end('<!doctype html><title>an app</title>');
	});
	await new Promise((r) => appServer.listen(0, '127.0.0.1', r));
	appBase = `http://127.0.0.1:${appServer.address().port}`;
}

async function blankPage(browser) {
	const context = await browser.newContext();
	const page = await context.newPage();
	page.on('pageerror', (e) => console.error('[page]', e.message));
	await page.goto(`${appBase}/blank.html`);
	return page;
}

// Runs in the page: a signaling connection and a peer connection with
// perfect negotiation over it. window.t holds the handles and a log.
async function prepare(page, opts) {
	await page.evaluate(async ({ base, user, device, peerUser, peerDevice,
	    polite, policy, hold }) => {
		const { connect } = await import(`${base}/beep-signal.js`);
		const log = { states: [], received: [], sent: [], held: [],
		    collisions: 0, resets: 0, errors: [], descriptionIds: [] };
		const sig = connect({ base, user, device });
		sig.on('state', (s) => log.states.push(s));
		await new Promise((resolve) => {
			const off = sig.on('state', (s) => {
				if (s === 'open') { off(); resolve(); }
			});
		});
		const iceServers = await sig.iceServers();
		const pc = new RTCPeerConnection({ iceServers,
		    iceTransportPolicy: policy });
		const channels = [];
		const watch = (dc) => {
			channels.push(dc);
			dc.onmessage = (e) => log.received.push(e.data);
		};
		pc.ondatachannel = (e) => watch(e.channel);
		let makingOffer = false, ignoreOffer = false, release;
		// Incoming messages are handled one at a time, in order; a held
		// start lets the test make both sides offer before either
		// sees the other's offer.
		let chain = hold ? new Promise((r) => { release = r; }) :
		    Promise.resolve();
		const send = async (event, data) => {
			const r = await sig.send(peerUser, peerDevice, data, { event });
			log.sent.push(event);
			if (r.held)
				log.held.push(event);
		};
		pc.onnegotiationneeded = async () => {
			try {
				makingOffer = true;
				await pc.setLocalDescription();
				await send('description', pc.localDescription.toJSON());
			} catch (e) {
				log.errors.push(`negotiation: ${e}`);
			} finally {
				makingOffer = false;
			}
		};
		pc.onicecandidate = ({ candidate }) => {
			if (candidate)
				send('candidate', candidate.toJSON()).catch((e) =>
				    log.errors.push(`candidate: ${e}`));
		};
		const then = (fn) => {
			chain = chain.then(fn).catch((e) => {
				if (!ignoreOffer)
					log.errors.push(String(e));
			});
		};
		sig.on('description', (d, meta) => then(async () => {
			log.descriptionIds.push(meta.id);
			const collision = d.type === 'offer' &&
			    (makingOffer || pc.signalingState !== 'stable');
			if (collision)
				log.collisions++;
			ignoreOffer = !polite && collision;
			if (ignoreOffer)
				return;
			await pc.setRemoteDescription(d);
			if (d.type === 'offer') {
				await pc.setLocalDescription();
				await send('description', pc.localDescription.toJSON());
			}
		}));
		sig.on('candidate', (c) => then(() => pc.addIceCandidate(c)));
		sig.on('reset', () => { log.resets++; pc.restartIce(); });
		window.t = {
			sig, pc, log, iceServers, channels,
			start() { watch(pc.createDataChannel(`chat-${user}`)); },
			release() { release?.(); },
			say(text) {
				const dc = channels.find((c) => c.readyState === 'open');
				dc.send(text);
			},
			async selectedPair() {
				const stats = await pc.getStats();
				let pair = null;
				stats.forEach((s) => {
					if (s.type === 'transport' && s.selectedCandidatePairId)
						pair = stats.get(s.selectedCandidatePairId);
				});
				if (!pair)
					return null;
				return {
					local: stats.get(pair.localCandidateId).candidateType,
					remote: stats.get(pair.remoteCandidateId).candidateType,
				};
			},
		};
	}, { policy: 'all', hold: false, ...opts });
}

const get = (page, expr) => page.evaluate(expr);

async function waitConnected(page, what) {
	await page.waitForFunction(() =>
	    window.t.pc.connectionState === 'connected', null,
	{ timeout: 30000 }).catch(async (e) => {
		const l = await get(page, () => ({
		    state: window.t.pc.connectionState,
		    ice: window.t.pc.iceConnectionState, ...window.t.log }));
		throw new Error(`${what}: not connected: ${JSON.stringify(l)}\n${e}`);
	});
}

// Both pages connected, then a message each way over the data channel.
async function chatBothWays(a, b) {
	await waitConnected(a, 'caller');
	await waitConnected(b, 'callee');
	for (const [from, to, text] of [[a, b, 'hello from a'],
	    [b, a, 'hi from b']]) {
		// A channel may open a moment after the transport.
		await from.waitForFunction(() => window.t.channels
		    .some((c) => c.readyState === 'open'), null, { timeout: 15000 });
		await from.evaluate((s) => window.t.say(s), text);
		await to.waitForFunction((s) => window.t.log.received.includes(s),
		    text, { timeout: 15000 });
	}
}

async function pair(browser, base, opts = {}) {
	const a = await blankPage(browser);
	const b = await blankPage(browser);
	const ua = `a-${sid()}`, ub = `b-${sid()}`;
	// Roles fixed by name: the caller here is impolite.
	await prepare(a, { base, user: ua, device: 'laptop', peerUser: ub,
	    peerDevice: 'phone', polite: false, ...opts });
	await prepare(b, { base, user: ub, device: 'phone', peerUser: ua,
	    peerDevice: 'laptop', polite: true, ...opts });
	return { a, b, ua, ub, close: () => Promise.all([a.context().close(),
	    b.context().close()]) };
}

const log = (page) => get(page, () => window.t.log);

// ---------------------------------------------------------------------------
// The call page (/), driven as a person would.

// The call pages open now: when a phase is not reached, all say where they
// are.
const callPages = new Set();

// A fresh browser context on the call page at url (/#token=... with JWTs).
// Its Content-Security-Policy violations are kept in window.cspViolations.
async function callPage(browser, url) {
	const context = await browser.newContext({
		viewport: { width: 1100, height: 720 } });
	const page = await context.newPage();
	callPages.add(page);
	page.on('close', () => callPages.delete(page));
	page.on('pageerror', (e) => console.error('[call page]', e.message));
	// Warnings say what went wrong when a phase is not reached.
	page.on('console', (m) => {
		if (m.type() === 'warning' || m.type() === 'error')
			console.error(`[call page ${m.type()}]`, m.text());
	});
	await page.addInitScript(() => {
		window.cspViolations = [];
		document.addEventListener('securitypolicyviolation', (e) =>
		    window.cspViolations.push(`${e.violatedDirective} ` +
		    `${e.blockedURI}`));
	});
	await page.goto(url);
	return page;
}

const violations = (page) => get(page, () => window.cspViolations);

async function diagnose(page) {
	return page.evaluate(async () => {
		const pc = window.beepApp.pc;
		const out = [document.body.dataset.phase,
		    document.getElementById('banner-title').textContent,
		    document.getElementById('banner-detail').textContent,
		    document.getElementById('sigstate').textContent];
		if (pc) {
			out.push(`pc ${pc.connectionState}/` +
			    `${pc.iceConnectionState}/${pc.signalingState}/` +
			    `${pc.iceGatheringState}`);
			const st = await pc.getStats();
			st.forEach((x) => {
				if (x.type === 'local-candidate' ||
				    x.type === 'remote-candidate')
					out.push(`${x.type} ${x.candidateType} ` +
					    `${x.address}:${x.port} ${x.protocol}`);
				if (x.type === 'candidate-pair')
					out.push(`pair ${x.state} nominated=${x.nominated}`);
			});
		}
		return out;
	}).catch((e) => [`(${e.message})`]);
}

// Waits for the page's phase (document.body.dataset.phase).
function phase(page, want) {
	return page.waitForFunction((w) => document.body.dataset.phase === w,
	    want, { timeout: 30000 }).catch(async (e) => {
		const now = [];
		for (const p of callPages)
			now.push(`--- ${p === page ? 'this page' : 'another'}:`,
			    ...await diagnose(p));
		throw new Error(`phase ${want} not reached:\n${now.join('\n')}\n${e}`);
	});
}


// From a click on `button` of the caller's page to both pages connected.
async function callAndConnect(caller, callee, button) {
	await caller.click(button);
	await phase(callee, 'ringing');
	await callee.click('#accept');
	await phase(caller, 'connected');
	await phase(callee, 'connected');
}

// The service takes the first message the page posts with `event` (and a
// body that `also` matches, when given) with a 200, and loses it, as a
// restarted service would; the page sees a send that went. Every other
// post goes on (by fallback, so that losses on one page add up). Resolves
// { count, lost }: how many such messages were posted, the lost one
// included, and a promise of the loss.
async function loseFirst(page, event, also = null) {
	const seen = { count: 0 };
	let lost;
	seen.lost = new Promise((r) => { lost = r; });
	await page.route('**/user/*/device/*', async (r) => {
		const body = r.request().postData() || '';
		if (!body.includes(`"event":"${event}"`) ||
		    (also && !also.test(body)) || ++seen.count > 1)
			return r.fallback();
		await r.fulfill({ json: { id: '1-1' } });
		lost();
	});
	return seen;
}

// The page's stream resumes from an id the service does not know, as after
// a restart that lost what it held: resolves once the page is told (a
// reset).
function resetStream(page) {
	return page.evaluate(() => new Promise((resolve) => {
		const sig = window.beepApp.sig;
		const off = sig.on('reset', () => { off(); resolve(); });
		sig.lastEventId = '1-1';
		sig.reconnect();
	}));
}

// ---------------------------------------------------------------------------

describe('browsers through Caddy', { skip }, () => {
	let chrome, turn, stack;

	before(async () => {
		turn = await startCoturn();
		stack = await startStack({ env: {
			BEEP_KEEPALIVE: '1',
			BEEP_TURN_URLS: `turn:127.0.0.1:${turn.port}?transport=udp`,
			BEEP_TURN_SECRET: turn.secret,
			BEEP_TURN_TTL: '600',
		} });
		await startAppServer();
		chrome = await launchBrowser();
	});

	after(async () => {
		await chrome?.stop();
		await stack?.stopAndCheck();
		await turn?.stop();
		appServer?.closeAllConnections();
		await new Promise((r) => appServer ? appServer.close(r) : r());
	});

	// Alice on her laptop and Bob on his phone, each on a call page of
	// this stack, online under users of their own (prefix, then "a" or
	// "b"): runs body with them, then closes both pages, whatever it
	// threw.
	async function onCall(prefix, body) {
		const alice = await callPage(chrome.browser, `${stack.base}/`);
		const bob = await callPage(chrome.browser, `${stack.base}/`);
		const ua = `${prefix}a${sid()}`, ub = `${prefix}b${sid()}`;
		try {
			await goOnline(alice, ua, 'laptop');
			await goOnline(bob, ub, 'phone');
			await body({ alice, bob, ua, ub });
		} finally {
			await alice.context().close();
			await bob.context().close();
		}
	}

	test('the front serves the client and the call page', T, async () => {
		for (const [p, type] of [['/', /^text\/html/],
		    ['/beep-signal.js', /^text\/javascript/],
		    ['/app.js', /^text\/javascript/], ['/style.css', /^text\/css/]]) {
			const r = await fetch(stack.base + p);
			assert.equal(r.status, 200, p);
			assert.match(r.headers.get('content-type'), type, p);
			// The page's own files carry its security headers; the
			// client, imported by apps of other origins, does not.
			const page = p !== '/beep-signal.js';
			assert.equal(r.headers.get('content-security-policy'),
			    page ? CSP : null, p);
			assert.equal(r.headers.get('x-content-type-options'),
			    page ? 'nosniff' : null, p);
			assert.equal(r.headers.get('referrer-policy'),
			    page ? 'no-referrer' : null, p);
			// A window that opens the page (a link from another
			// site) gets no handle on it, nor it on its opener.
			assert.equal(r.headers.get('cross-origin-opener-policy'),
			    page ? 'same-origin' : null, p);
			assert.equal(r.headers.get('access-control-allow-origin'), '*', p);
		}
		const r = await fetch(`${stack.base}/nope`);
		assert.equal(r.status, 404);
		assert.deepEqual(await r.json(), { error: 'not found' });
	});

	test('GET /ice-servers: TURN REST credentials coturn accepts', T, async () => {
		const r = await fetch(`${stack.base}/ice-servers?user=carol`);
		assert.equal(r.status, 200);
		assert.equal(r.headers.get('cache-control'), 'no-store');
		const { iceServers } = await r.json();
		assert.equal(iceServers.length, 1);
		const [s] = iceServers;
		assert.deepEqual(s.urls, [`turn:127.0.0.1:${turn.port}?transport=udp`]);
		const [exp, user] = s.username.split(':');
		assert.equal(user, 'carol');
		const now = Date.now() / 1000;
		assert.ok(Number(exp) > now + 590 && Number(exp) < now + 610,
		    `expiry ${exp} is now + BEEP_TURN_TTL`);
		const { createHmac } = await import('node:crypto');
		assert.equal(s.credential, createHmac('sha1', turn.secret)
		    .update(s.username).digest('base64'));
		// A user that does not decode, or hides bytes after a %00
		// (once cut there and accepted as "a").
		for (const q of ['%00', 'a%00%01%02', 'a%00%0A%1B', '%zz', 'a%0A']) {
			const bad = await fetch(`${stack.base}/ice-servers?user=${q}`);
			assert.equal(bad.status, 400, q);
			assert.deepEqual(await bad.json(), { error: 'bad user' }, q);
		}
		const anon = await (await fetch(`${stack.base}/ice-servers`)).json();
		assert.match(anon.iceServers[0].username, /^\d+:anonymous$/);
	});

	test('two pages connect with beep-signal.js and chat both ways', T, async () => {
		const p = await pair(chrome.browser, stack.base);
		try {
			await p.a.evaluate(() => window.t.start());
			await chatBothWays(p.a, p.b);
			const la = await log(p.a), lb = await log(p.b);
			assert.deepEqual(la.errors, []);
			assert.deepEqual(lb.errors, []);
			// The offer went through the service, with an event id.
			assert.match(lb.descriptionIds[0], /^\d+-\d+$/);
			assert.deepEqual(la.states, ['connecting', 'open']);
		} finally {
			await p.close();
		}
	});

	test('a signaling reconnect mid-negotiation still connects', T, async () => {
		const p = await pair(chrome.browser, stack.base);
		try {
			// The callee's stream goes down and cannot come back...
			await p.b.route('**/subscribe/**', (r) => r.abort());
			await p.b.evaluate(() => window.t.sig.reconnect());
			await p.b.waitForFunction(() => window.t.sig.state === 'connecting');
			// Once the service sees it gone (Caddy notices a departed
			// client after a few keepalives), posts to it are held.
			await poll(async () => !(await stack.client().devices(p.ub))
			    .includes('phone'), { timeout: 20000, what: 'callee away' });
			// ...while the caller posts its offer and candidates.
			await p.a.evaluate(() => window.t.start());
			await p.a.waitForFunction(() =>
			    window.t.log.sent.includes('description') &&
			    window.t.log.sent.includes('candidate'));
			assert.equal(await get(p.b, () => window.t.log.descriptionIds.length), 0,
			    'the callee saw nothing while down');
			assert.ok((await log(p.a)).held.includes('description'),
			    'the offer was held for the callee');
			// Back: it resumes after its last id and gets all of it.
			await p.b.unroute('**/subscribe/**');
			await p.b.evaluate(() => window.t.sig.reconnect());
			await chatBothWays(p.a, p.b);
			const lb = await log(p.b);
			// Down, then up again (a backoff attempt may race the
			// reconnect() above and add one more round), never closed.
			assert.deepEqual(lb.states.slice(0, 3), ['connecting', 'open',
			    'connecting']);
			assert.equal(lb.states.at(-1), 'open');
			assert.ok(!lb.states.includes('closed'));
			assert.equal(lb.resets, 0, 'nothing was lost');
			assert.deepEqual(lb.errors, []);
		} finally {
			await p.close();
		}
	});

	test('glare: both offer at once and still connect', T, async () => {
		const p = await pair(chrome.browser, stack.base, { hold: true });
		try {
			await p.a.evaluate(() => window.t.start());
			await p.b.evaluate(() => window.t.start());
			const offered = () => window.t.pc.signalingState === 'have-local-offer' &&
			    window.t.log.sent.includes('description');
			await p.a.waitForFunction(offered);
			await p.b.waitForFunction(offered);
			await p.a.evaluate(() => window.t.release());
			await p.b.evaluate(() => window.t.release());
			await chatBothWays(p.a, p.b);
			const la = await log(p.a), lb = await log(p.b);
			assert.ok(la.collisions >= 1 && lb.collisions >= 1,
			    `both saw an offer collision (${la.collisions}, ${lb.collisions})`);
			assert.deepEqual(lb.errors, []);
			assert.deepEqual(la.errors, []);
		} finally {
			await p.close();
		}
	});

	test('relay only, through coturn with /ice-servers credentials', T, async () => {
		const p = await pair(chrome.browser, stack.base, { policy: 'relay' });
		try {
			const servers = await get(p.a, () => window.t.iceServers);
			assert.match(servers[0].username, /^\d+:a-/);
			await p.a.evaluate(() => window.t.start());
			await chatBothWays(p.a, p.b);
			assert.deepEqual(await get(p.a, () => window.t.selectedPair()),
			    { local: 'relay', remote: 'relay' });
			assert.deepEqual(await get(p.b, () => window.t.selectedPair()),
			    { local: 'relay', remote: 'relay' });
		} finally {
			await p.close();
		}
	});

	test('the call page, as a person uses it', T, async () => {
		mkdirSync(SHOTS, { recursive: true });
		const shot = (page, name) => page.screenshot({
			path: path.join(SHOTS, `${name}.png`), fullPage: true });
		const alice = await callPage(chrome.browser, `${stack.base}/`);
		const bob = await callPage(chrome.browser, `${stack.base}/`);
		// This stack is this file's: the other tests use other names.
		const ua = 'alice', ub = 'bob';
		try {
			await alice.fill('#join-user', ua);
			await alice.fill('#join-device', 'laptop');
			await shot(alice, '1-join');
			await alice.click('#join-go');
			await bob.fill('#join-user', ub);
			await bob.fill('#join-device', 'phone');
			await bob.click('#join-go');
			await alice.waitForSelector('#app:not([hidden])');
			await bob.waitForSelector('#app:not([hidden])');
			assert.equal(await alice.textContent('#sigstate'), 'Online');

			// Alice adds Bob and sees his phone online.
			await alice.fill('#find-user', ub);
			await alice.click('#find-go');
			const callButton = `.contact[data-user="${ub}"] button[data-device="phone"]`;
			await alice.waitForSelector(callButton);
			await shot(alice, '2-online');

			// She calls; his page rings.
			await alice.click(callButton);
			await phase(alice, 'calling');
			await shot(alice, '3-calling');
			await phase(bob, 'ringing');
			assert.match(await bob.textContent('#banner-title'),
			    new RegExp(`${ua} \\(laptop\\) is calling`));
			await shot(bob, '4-ringing');

			// He accepts. Her page holds its ICE-server request a moment,
			// so that "connecting" can be seen; then connected, and they
			// chat.
			let release;
			const held = new Promise((r) => { release = r; });
			await alice.route('**/ice-servers*', async (r) => {
				await held;
				await r.continue();
			});
			await bob.click('#accept');
			await phase(alice, 'connecting');
			await shot(alice, '5-connecting');
			release();
			await phase(alice, 'connected');
			await alice.unroute('**/ice-servers*');
			await phase(bob, 'connected');
			await alice.waitForSelector('#chat-input:not([disabled])');
			await alice.fill('#chat-input', 'Hi Bob! Can you hear me?');
			await alice.click('#chat-send');
			await bob.waitForSelector('.msg.theirs:has-text("Hi Bob! Can you hear me?")');
			await bob.waitForSelector('#chat-input:not([disabled])');
			await bob.fill('#chat-input', 'Loud and clear.');
			await bob.press('#chat-input', 'Enter');
			await alice.waitForSelector('.msg.theirs:has-text("Loud and clear.")');
			// The fake camera is playing on both sides.
			await alice.waitForFunction(() =>
			    document.getElementById('remote-video').videoWidth > 0);
			await shot(alice, '6-connected');

			// Her signaling drops: the page says so and comes back.
			await alice.route('**/subscribe/**', (r) => r.abort());
			await alice.evaluate(() => window.beepApp.sig.reconnect());
			await alice.waitForFunction(() =>
			    document.getElementById('sigstate').textContent === 'Reconnecting…');
			await shot(alice, '7-reconnecting');
			await alice.unroute('**/subscribe/**');
			await alice.evaluate(() => window.beepApp.sig.reconnect());
			await alice.waitForFunction(() =>
			    document.getElementById('sigstate').textContent === 'Online');
			// The call itself never depended on it.
			assert.equal(await alice.evaluate(() => window.beepApp.phase), 'connected');

			// She hangs up; he sees it.
			await alice.click('#hangup');
			await phase(bob, 'ended');
			assert.match(await bob.textContent('#banner-title'), /hung up/);

			// She calls again and he declines: a failed call, in words.
			await alice.click(callButton);
			await phase(bob, 'ringing');
			await bob.click('#decline');
			await phase(alice, 'failed');
			assert.match(await alice.textContent('#banner-title'),
			    /declined the call/);
			await shot(alice, '8-failed');

			// Both call each other at once (their "call" messages are
			// held until both have clicked): one call, connected.
			await bob.fill('#find-user', ua);
			await bob.click('#find-go');
			const callAlice = `.contact[data-user="${ua}"] button[data-device="laptop"]`;
			await bob.waitForSelector(callAlice);
			let go;
			const both = new Promise((r) => { go = r; });
			const hold = async (r) => {
				if (/"event":"call"/.test(r.request().postData() || ''))
					await both;
				await r.continue();
			};
			await alice.route('**/user/*/device/*', hold);
			await bob.route('**/user/*/device/*', hold);
			await alice.click(callButton);
			await bob.click(callAlice);
			await phase(alice, 'calling');
			await phase(bob, 'calling');
			go();
			await phase(alice, 'connected');
			await phase(bob, 'connected');
			await alice.unroute('**/user/*/device/*');
			await bob.unroute('**/user/*/device/*');
			await bob.waitForSelector('#chat-input:not([disabled])');
			await bob.fill('#chat-input', 'We called at once!');
			await bob.press('#chat-input', 'Enter');
			await alice.waitForSelector('.msg.theirs:has-text("We called at once!")');
			await bob.click('#hangup');
			await phase(alice, 'ended');
			// The page's Content-Security-Policy let all of it work.
			assert.deepEqual(await violations(alice), []);
			assert.deepEqual(await violations(bob), []);
		} finally {
			await alice.context().close();
			await bob.context().close();
		}
	});

	test('the call page: ICE servers for each call, a failure not kept, ' +
	    'fresh ones before an ICE restart', T, async () => {
		const alice = await callPage(chrome.browser, `${stack.base}/`);
		const bob = await callPage(chrome.browser, `${stack.base}/`);
		const ua = `ia${sid()}`, ub = `ib${sid()}`;
		const servers = (page) => get(page, () =>
		    window.beepApp.pc.getConfiguration().iceServers);
		// Bob's first request fails; Alice's second (the restart's)
		// gets a list of its own, to be seen in her configuration.
		let aliceAsked = 0, bobAsked = 0;
		const STUN = [{ urls: ['stun:127.0.0.1:9'] }];
		await alice.route('**/ice-servers*', async (r) => {
			if (++aliceAsked === 2)
				await r.fulfill({ json: { iceServers: STUN } });
			else
				await r.continue();
		});
		await bob.route('**/ice-servers*', async (r) => {
			if (++bobAsked === 1)
				await r.fulfill({ status: 400,
				    json: { error: 'refused for the test' } });
			else
				await r.continue();
		});
		try {
			await goOnline(alice, ua, 'laptop');
			await goOnline(bob, ub, 'phone');
			const callBob = await addContact(alice, ub, 'phone');
			await callAndConnect(alice, bob, callBob);
			assert.equal((await servers(alice))[0].username.split(':')[1], ua);
			assert.deepEqual(await servers(bob), [], 'its request failed');

			// Messages were lost (a reset): fresh servers, then the
			// restart.
			const asked = alice.waitForRequest('**/ice-servers*');
			await alice.evaluate(() => window.beepApp.sig.emit('reset', 'test'));
			await asked;
			await alice.waitForFunction((want) => JSON.stringify(
			    window.beepApp.pc.getConfiguration().iceServers.map((s) =>
			    ({ urls: s.urls }))) === want, JSON.stringify(STUN));

			// The next call asks again, on both sides: Bob's failure
			// was not kept.
			await alice.click('#hangup');
			await phase(bob, 'ended');
			await callAndConnect(alice, bob, callBob);
			assert.equal((await servers(bob))[0].username.split(':')[1], ub);
			assert.equal((await servers(alice))[0].username.split(':')[1], ua);
			assert.deepEqual([aliceAsked, bobAsked], [3, 2]);
			await alice.click('#hangup');
			await phase(bob, 'ended');
		} finally {
			await alice.context().close();
			await bob.context().close();
		}
	});

	test('the call page: a call message that arrives twice rings once',
	    T, async () => {
		await onCall('d', async ({ alice, bob, ub }) => {
			await bob.evaluate(() => {
				window.calls = 0;
				window.beepApp.sig.on('call', () => window.calls++);
			});
			const callBob = await addContact(alice, ub, 'phone');
			// The service takes her first "call" but its answer is lost:
			// the client sends it again, and Bob gets it twice. The
			// service knows a retry by its idempotency key and delivers
			// it once, so the retry here goes without it, as a copy the
			// service cannot know (a retry past the replay window, a
			// node delivering alone while Redis is down): the page's own
			// guard is what is tested. With `holdRetry`, that second
			// copy waits for release().
			const unkeyed = (body) => {
				const o = JSON.parse(body);
				assert.equal(typeof o.key, 'string', 'a send has a key');
				delete o.key;
				return JSON.stringify(o);
			};
			let lose = true, holdRetry = false, release, retried;
			const retryOut = new Promise((r) => { retried = r; });
			await alice.route('**/user/*/device/*', async (r) => {
				if (!/"event":"call"/.test(r.request().postData())) {
					await r.continue();
				} else if (lose) {
					lose = false;
					await r.fetch();
					await r.abort('connectionreset');
				} else {
					if (holdRetry) {
						retried();
						await new Promise((go) => { release = go; });
					}
					await r.continue({
					    postData: unkeyed(r.request().postData()) });
				}
			});
			await alice.click(callBob);
			await bob.waitForFunction(() => window.calls === 2);
			await phase(bob, 'ringing');
			// Not "busy" in his own call: she is still calling him, and
			// his accept connects them.
			await bob.click('#accept');
			await phase(alice, 'connected');
			await phase(bob, 'connected');
			await alice.click('#hangup');
			await phase(bob, 'ended');

			// Again, and he declines before the second copy comes: it
			// does not ring again (the page's listener runs before the
			// count's).
			lose = true;
			holdRetry = true;
			await alice.click(callBob);
			await phase(bob, 'ringing');
			await retryOut;
			await bob.click('#decline');
			await phase(alice, 'failed');
			release();
			await bob.waitForFunction(() => window.calls === 4);
			assert.equal(await get(bob, () => document.body.dataset.phase),
			    'ended');
		});
	});

	test('the call page: leaving the page mid-call hangs up, even with a ' +
	    'send still out', T, async () => {
		await onCall('r', async ({ alice, bob, ua, ub }) => {
			await callAndConnect(alice, bob, await addContact(alice, ub,
			    'phone'));
			// A send of Bob's to her that has no answer yet: the ones
			// queued behind it wait their turn.
			let held, seen;
			const out = new Promise((r) => { seen = r; });
			const pattern = '**/user/*/device/*';
			await bob.route(pattern, (r) => { held = r; seen(); });
			await bob.evaluate((u) => {
				window.beepApp.sig.send(u, 'laptop', { slow: 1 },
				    { event: 'note' }).catch(() => {});
			}, ua);
			await out;
			await bob.unroute(pattern);
			// He reloads: the hang-up goes anyway, and she sees it.
			await bob.reload();
			await phase(alice, 'ended');
			assert.match(await alice.textContent('#banner-title'), /hung up/);
			await held.abort().catch(() => {});
		});
	});

	// The contacts are polled every 4 s; a poll that hangs (each request
	// has 10 s, and is tried three times) was joined by a new request for
	// the same contact at every tick, and they piled up, taking the
	// connections the call's own messages need (a review).
	test('the call page: a contact poll that hangs is not joined by more',
	    T, async () => {
		const alice = await callPage(chrome.browser, `${stack.base}/`);
		const ua = `pa${sid()}`, ub = `pb${sid()}`;
		try {
			// The page's time is the test's from here: the polls'
			// ticks come when the test runs them.
			await alice.clock.install();
			// The page's requests for his devices: how many are out
			// at once, at most; and the network holds them.
			await alice.evaluate(() => {
				const fetch = window.fetch;
				window.asked = window.out = window.mostOut = 0;
				window.fetch = (url, ...rest) => {
					if (!/\/devices$/.test(url))
						return fetch(url, ...rest);
					window.asked++;
					window.mostOut = Math.max(window.mostOut,
					    ++window.out);
					return fetch(url, ...rest).finally(() => window.out--);
				};
			});
			const held = [];
			let seen;
			const first = new Promise((r) => { seen = r; });
			const devices = `**/user/${ub}/devices`;
			await alice.route(devices, (r) => { held.push(r); seen(); });
			await goOnline(alice, ua, 'laptop');
			await alice.fill('#find-user', ub);
			await alice.click('#find-go');
			await first;
			// Two ticks while the first request hangs.
			await alice.clock.runFor(2 * 4000);
			assert.equal(await get(alice, () => window.mostOut), 1);
			// Answered at last: the polls go on.
			await alice.unroute(devices);
			for (const r of held)
				await r.continue().catch(() => {});  // one given up
			await alice.waitForSelector(`.contact[data-user="${ub}"] ` +
			    '.contact-status:text-is("offline")');
			const asked = await get(alice, () => window.asked);
			await alice.clock.runFor(4000);
			assert.equal(await get(alice, () => window.asked), asked + 1);
			assert.equal(await get(alice, () => window.mostOut), 1);
		} finally {
			await alice.context().close();
		}
	});

	// His accept is lost, and her stream says that messages were lost
	// (a reset) while she is still calling: she rings again (the same
	// call), he answers again, and they connect; she went on ringing
	// until "did not answer" (a review). With his offer, which followed
	// the accept, lost too (a loaded machine: found in CI under ASan,
	// where the candidates came through without their offer and the call
	// failed), he sends his unanswered offer again, its description now
	// with the candidates gathered.
	for (const offerLost of [false, true]) {
		test('the call page: an accept ' +
		    (offerLost ? 'and the offer after it ' : '') +
		    'lost in a reset, sent again', T, async () => {
			await acceptLostInReset(offerLost);
		});
	}

	async function acceptLostInReset(offerLost) {
		await onCall('l', async ({ alice, bob, ub }) => {
			const callBob = await addContact(alice, ub, 'phone');
			// The service takes his first accept (and offer) with a
			// 200, and loses it.
			const accepts = await loseFirst(bob, 'accept');
			const offers = offerLost ? await loseFirst(bob,
			    'description', /"type":"offer"/) : null;
			await alice.click(callBob);
			await phase(bob, 'ringing');
			await bob.click('#accept');
			await Promise.all([accepts.lost, offers?.lost]);
			// Her stream is reset, as after a restart that lost the
			// accept.
			await resetStream(alice);
			await phase(alice, 'connected');
			await phase(bob, 'connected');
			assert.equal(accepts.count, 2, 'he answered again');
			if (offerLost)
				assert.ok(offers.count >= 2, 'his offer went again');
			await alice.click('#hangup');
			await phase(bob, 'ended');
		});
	}

	// His decline is lost, and her stream says that messages were lost
	// while she is still calling: she rings again, and his page, done
	// with that call, declines it again at once; she rang on until "did
	// not answer" (45 s; a review).
	test('the call page: a decline lost in a reset is sent again', T,
	    async () => {
		await onCall('d', async ({ alice, bob, ub }) => {
			const callBob = await addContact(alice, ub, 'phone');
			const declines = await loseFirst(bob, 'decline');
			await alice.click(callBob);
			await phase(bob, 'ringing');
			await bob.click('#decline');
			await declines.lost;
			await resetStream(alice);
			await phase(alice, 'failed');
			assert.match(await alice.textContent('body'), /declined/);
			assert.equal(declines.count, 2, 'he declined again');
		});
	});

	// Her hang-up is lost while his page rings, and his stream says that
	// messages were lost (a reset): he rings on (a call behind a reset is
	// most often still on), and if he accepts, her page, done with that
	// call, says so at once; he waited 30 s for a connection and was told
	// "no network path" (a review).
	test('the call page: accepting a call its caller left ends at once',
	    T, async () => {
		await onCall('h', async ({ alice, bob, ua, ub }) => {
			const callBob = await addContact(alice, ub, 'phone');
			// The service takes her hang-up (200), and loses it.
			const hangups = await loseFirst(alice, 'hangup');
			await alice.click(callBob);
			await phase(bob, 'ringing');
			await alice.click('#hangup');
			await hangups.lost;
			await resetStream(bob);
			assert.equal(await get(bob, () => document.body.dataset.phase),
			    'ringing');
			await bob.click('#accept');
			await phase(bob, 'ended');
			assert.equal(await bob.textContent('#banner-title'),
			    `${ua} (laptop) hung up`);
			assert.equal(hangups.count, 2, 'she said it again');
		});
	});

	test('the call page with JWTs without a device claim: a contact\'s ' +
	    'device typed, the call rings and connects', T, async (t) => {
		const SECRET = crypto.randomBytes(32).toString('hex');
		// BEEP_LIST_POLICY is the default: your own devices only.
		const auth = await startStack({ env: { BEEP_AUTH: 'jwt',
		    BEEP_JWT_SECRET: SECRET, BEEP_KEEPALIVE: '1' } }, t);
		const token = (sub) => mint(claims(sub), { key: SECRET });
		const ua = `ja${sid()}`, ub = `jb${sid()}`;
		const alice = await callPage(chrome.browser,
		    `${auth.base}/#token=${token(ua)}`);
		const bob = await callPage(chrome.browser,
		    `${auth.base}/#token=${token(ub)}`);
		try {
			// Read, then out of the address bar (and the history).
			for (const page of [alice, bob])
				assert.equal(await get(page, () => location.href),
				    `${auth.base}/`);
			await goOnline(alice, ua, 'laptop');
			await goOnline(bob, ub, 'phone');
			// The service lists her own devices only: she types his.
			await alice.fill('#find-user', ub);
			await alice.click('#find-go');
			const row = `.contact[data-user="${ub}"]`;
			await alice.waitForSelector(`${row} input.contact-device`);
			assert.match(await alice.textContent(row),
			    /lists only your own devices/);
			await alice.fill(`${row} input.contact-device`, 'phone');
			await alice.click(`${row} button.contact-dial`);
			// The sender is the service's stamp ({user, device: null})
			// with the device the message names.
			await phase(bob, 'ringing');
			assert.equal(await bob.textContent('#banner-title'),
			    `${ua} (laptop) is calling`);
			await bob.click('#accept');
			await phase(alice, 'connected');
			await phase(bob, 'connected');
			await alice.click('#hangup');
			await phase(bob, 'ended');
			assert.equal(await bob.textContent('#banner-title'),
			    `${ua} (laptop) hung up`);
			assert.deepEqual(await violations(alice), []);
		} finally {
			await alice.context().close();
			await bob.context().close();
		}
	});
});

// EventSource never retries an answer that is not a 200 event stream (it
// closes for good). Chromium's own EventSource, with no script of ours,
// must come back by itself and get its messages:
// - from a stream refused for now (429, 503), which reaches it as an event
//   stream that ends with a retry: field;
// - from the backend out of reach behind Caddy (a restart without socket
//   activation, a crash), where Caddy answers a subscribe 502 itself: the
//   Caddyfile gives it a stream that brings it back after retry: with the
//   id it had, so that it resumes on the new run (which tells it, by a
//   reset, that what the old run held is gone); the same behind lighttpd,
//   whose own 503 conf/lighttpd-stream-down.lua answers so. (Chromium
//   keeps its id through a response without one anyway; that the front
//   gives it back, for clients of the WHATWG model, expectRefusedStream
//   checks.)
describe('EventSource comes back by itself', { skip }, () => {
	let chrome;

	before(async () => { chrome = await launchBrowser(); });
	after(async () => { await chrome?.stop(); });

	// A page of the service's origin (any will do) with an EventSource on
	// url, whose events it records in window.es.
	async function eventSourcePage(context, base, url) {
		const page = await context.newPage();
		page.on('pageerror', (e) => console.error('[page]', e.message));
		await page.goto(`${base}/healthz`);
		await page.evaluate((u) => {
			window.es = { refused: [], resets: 0, messages: [],
			    closed: false };
			const es = new EventSource(u);
			es.addEventListener('refused', (e) => window.es.refused
			    .push({ ...JSON.parse(e.data), id: e.lastEventId }));
			es.addEventListener('reset', () => { window.es.resets++; });
			es.onmessage = (e) => window.es.messages
			    .push({ data: e.data, id: e.lastEventId });
			es.onerror = () => {
				if (es.readyState === EventSource.CLOSED)
					window.es.closed = true;
			};
		}, url);
		return page;
	}

	// Waits for the page's first refusal; returns it.
	async function refusal(page, timeout) {
		await poll(() => get(page, () => window.es.refused.length > 0),
		    { timeout, interval: 100, what: 'the refusal' });
		return get(page, () => window.es.refused[0]);
	}

	// POSTs data until the page's stream takes it (200), then waits for
	// the page to have it; asserts it never closed for good.
	async function cameBack(page, c, user, data) {
		await poll(async () => (await c.postJson(
		    `/user/${user}/device/phone`, { data })).status === 200,
		    { timeout: 60000, interval: 250,
		      what: 'the page subscribed again' });
		await poll(() => page.evaluate((d) => window.es.messages
		    .some((m) => m.data === d), data),
		    { timeout: 10000, interval: 100, what: 'the message' });
		assert.equal(await get(page, () => window.es.closed), false,
		    'EventSource never closed for good');
	}

	test('refused for now: comes back after retry:', T, async (t) => {
		const stack = await startStack({ env: {
			BEEP_MAX_STREAMS_PER_ADDRESS: '1',
			BEEP_KEEPALIVE: '1',
		} }, t);
		const user = `es-${sid()}`;
		// The one place this address (the loopback) has.
		const held = await stack.subscribe(`held-${sid()}`, 'd');
		const context = await chrome.browser.newContext();
		try {
			const page = await eventSourcePage(context, stack.base,
			    `/subscribe/${user}/device/phone`);
			assert.deepEqual(await refusal(page, 20000),
			    { error: 'too many streams from this address', status: 429,
			      id: '' });
			// The place frees once the backend notices (a keepalive's
			// write fails behind Caddy); the page comes back on its own.
			held.close();
			await cameBack(page, stack.client(), user, 'hello');
		} finally {
			await context.close();
		}
	});

	test('the backend out of reach: comes back after the restart, with ' +
	    'its last id', T, async (t) => {
		const stack = await startStack({ env: { BEEP_KEEPALIVE: '1' } }, t);
		const user = `down-${sid()}`;
		const c = stack.client();
		const context = await chrome.browser.newContext();
		try {
			const page = await eventSourcePage(context, stack.base,
			    `/subscribe/${user}/device/phone`);
			await cameBack(page, c, user, 'before');
			const [first] = await get(page, () => window.es.messages);

			// Down: the stream ends, EventSource reconnects (~3 s) and
			// meets the front's own 502, as a stream.
			await stack.signalBackend('SIGKILL');
			assert.deepEqual(await refusal(page, 30000),
			    { error: 'backend unavailable', status: 502, id: first.id });

			// Up again on the same socket: the page comes back by itself,
			// with the old run's id: told what was lost.
			await stack.restartBackend();
			await cameBack(page, c, user, 'after');
			assert.ok((await get(page, () => window.es.resets)) > 0,
			    'a reset: it resumed from the id it had');
		} finally {
			await context.close();
		}
	});

	// The same behind lighttpd (conf/lighttpd.conf), whose own 503 the
	// stream-down script answers as nginx and Caddy do.
	test('the backend out of reach behind lighttpd: comes back after ' +
	    'the restart, with its last id', T, async (t) => {
		const rig = new Rig(t, 'lighttpd-browser',
		    { env: { BEEP_KEEPALIVE: '1' } });
		await rig.startListen();
		await rig.startLighttpd();
		const user = `down-${sid()}`;
		const c = rig.client();
		const context = await chrome.browser.newContext();
		try {
			const page = await eventSourcePage(context, rig.base,
			    `/subscribe/${user}/device/phone`);
			await cameBack(page, c, user, 'before');
			const [first] = await get(page, () => window.es.messages);

			// lighttpd ends the stream; EventSource reconnects and
			// meets lighttpd's own 503 (a socket nobody listens on),
			// as a stream.
			await stop(rig.backend, 'SIGKILL');
			assert.deepEqual(await refusal(page, 30000),
			    { error: 'backend unavailable', status: 503, id: first.id });

			// A new backend on the same socket path.
			await rig.startListen();
			await cameBack(page, c, user, 'after');
			assert.ok((await get(page, () => window.es.resets)) > 0,
			    'a reset: it resumed from the id it had');
		} finally {
			await context.close();
		}
		rig.checkBackendLog();
	});
});

// A page reloaded while a message is posted to its device. Behind Caddy the
// service learns that the old page's stream has gone only at its next write
// (here never: no keepalive within the test), so the POST is answered 200
// and goes to that dead stream; the reloaded page must still get it.
// beep-signal.js keeps the last id in the tab's sessionStorage on pagehide
// and the next page's connect() resumes from it.
describe('a reloaded page', { skip }, () => {
	let chrome, stack;

	before(async () => {
		chrome = await launchBrowser();
		stack = await startStack({ env: { BEEP_KEEPALIVE: '300' } });
	});
	after(async () => {
		await chrome?.stop();
		await stack?.stopAndCheck();
	});

	// In page: connect as (user, phone) with opts; the messages it gets go
	// to window.got. Resolves the id it starts at (its position).
	// closeOnHide: the page closes the client on pagehide, its listener
	// added before the client's own.
	const open = (page, user, opts = {}, closeOnHide = false) =>
	    page.evaluate(async ({ user, opts, closeOnHide }) => {
		const { connect } = await import('/beep-signal.js');
		window.got = [];
		if (closeOnHide)
			window.addEventListener('pagehide', () => window.sig.close());
		window.sig = connect({ base: '', user, device: 'phone', ...opts });
		window.sig.on('message', (d) => window.got.push(d));
		// Open, then its first event (the position) read.
		await new Promise((resolve) => {
			const check = () => window.sig.state === 'open' &&
			    window.sig.lastEventId ? resolve() : setTimeout(check, 20);
			check();
		});
		return window.sig.lastEventId;
	}, { user, opts, closeOnHide });

	// Opens a page, reloads it, and POSTs while the old stream is a ghost:
	// resolves the page and the POST's answer.
	async function reloadAndPost(context, user, closeOnHide = false) {
		const page = await context.newPage();
		page.on('pageerror', (e) => console.error('[page]', e.message));
		await page.goto(`${stack.base}/healthz`);
		assert.notEqual(await open(page, user, {}, closeOnHide), '',
		    'a position');
		await page.reload();
		const r = await stack.client().postJson(
		    `/user/${user}/device/phone`, { data: 'during the reload' });
		assert.equal(r.status, 200, 'the old stream, a ghost, took it');
		return { page, id: r.json().id };
	}

	test('beep-signal.js: the reloaded page gets what its old stream ' +
	    'took', T, async () => {
		const context = await chrome.browser.newContext();
		try {
			const user = `rl-${sid()}`;
			const { page } = await reloadAndPost(context, user);
			await open(page, user);
			await poll(() => get(page, () => window.got.includes(
			    'during the reload')), { timeout: 10000, interval: 100,
			    what: 'the message posted during the reload' });
			assert.deepEqual(await get(page, () => window.got),
			    ['during the reload']);
		} finally {
			await context.close();
		}
	});

	test('a page that closes the client on pagehide resumes too', T,
	    async () => {
		const context = await chrome.browser.newContext();
		try {
			const user = `rl-${sid()}`;
			const { page } = await reloadAndPost(context, user, true);
			await open(page, user);
			await poll(() => get(page, () => window.got.includes(
			    'during the reload')), { timeout: 10000, interval: 100,
			    what: 'the message posted during the reload' });
		} finally {
			await context.close();
		}
	});

	test('resume: false starts after it (what the default prevents)', T,
	    async () => {
		const context = await chrome.browser.newContext();
		try {
			const user = `rl-${sid()}`;
			const { page, id } = await reloadAndPost(context, user);
			assert.equal(await open(page, user, { resume: false }), id,
			    'a stream without an id starts after the message');
		} finally {
			await context.close();
		}
	});
});

// The back-forward cache (Chromium's; Playwright turns it off unless asked):
// a page left for another is frozen (beep-signal.js closes its stream on
// `freeze`), but behind Caddy the service learns it went only at its next
// writes, and with BEEP_KEEPALIVE at 600 it goes on delivering to it (200)
// until the page is shown again (it reopens its stream with its last id)
// or evicted (the new page of the tab must resume from where the old one
// left). Pages of an app server of their own (a page
// with Cache-Control: no-store is not cached), one origin for both, so
// that they share the tab's sessionStorage.
describe('the back-forward cache', { skip }, () => {
	let chrome, stack, site, siteBase;

	before(async () => {
		chrome = await launchBrowser({ bfcache: true });
		stack = await startStack({ env: { BEEP_KEEPALIVE: '300' } });
		site = http.createServer((req, res) => {
			res.writeHead(200, { 'Content-Type': 'text/html' });
			res.end('<!doctype html><title>a page</title>');
		});
		await new Promise((r) => site.listen(0, '127.0.0.1', r));
		siteBase = `http://127.0.0.1:${site.address().port}`;
	});
	after(async () => {
		await chrome?.stop();
		await stack?.stopAndCheck();
		site?.closeAllConnections();
		await new Promise((r) => site ? site.close(r) : r());
	});

	// In page: connect as (user, phone); messages go to window.got, the
	// id each connect() started from to window.starts. reopen: the app
	// closes the client on pagehide and connects again on a pageshow from
	// the cache (the usual advice for connections and the cache), its
	// listeners added after its first connect(). Every pagehide's
	// `persisted` goes to sessionStorage "persisted".
	const open = (page, user, reopen = false) =>
	    page.evaluate(async ({ base, user, reopen }) => {
		const { connect } = await import(`${base}/beep-signal.js`);
		window.got = [];
		window.starts = [];
		const start = () => {
			window.sig = connect({ base, user, device: 'phone' });
			window.starts.push(window.sig.lastEventId);
			window.sig.on('message', (d) => window.got.push(d));
			window.sig.on('reset', () => window.got.push('(reset)'));
		};
		start();
		addEventListener('pagehide', (e) =>
		    sessionStorage.setItem('persisted', String(e.persisted)));
		if (reopen) {
			addEventListener('pagehide', () => window.sig.close());
			addEventListener('pageshow', (e) => {
				if (e.persisted)
					start();
			});
		}
		await new Promise((resolve) => {
			const check = () => window.sig.state === 'open' &&
			    window.sig.lastEventId ? resolve() : setTimeout(check, 20);
			check();
		});
	}, { base: stack.base, user, reopen });

	const post = async (user, data) => {
		const r = await stack.client().postJson(
		    `/user/${user}/device/phone`, { data });
		assert.equal(r.status, 200, 'the old page\'s stream took it');
	};

	// A page of the site, its stream open and its first message read;
	// then left for another page of the site, into the cache.
	async function openAndLeave(context, user, reopen = false) {
		const page = await context.newPage();
		page.on('pageerror', (e) => console.error('[page]', e.message));
		await page.goto(`${siteBase}/a`);
		await open(page, user, reopen);
		await post(user, 'before');
		await poll(() => get(page, () => window.got.length === 1),
		    { timeout: 10000, interval: 50, what: 'the first message' });
		await page.goto(`${siteBase}/b`);
		assert.equal(await get(page, () =>
		    sessionStorage.getItem('persisted')), 'true',
		    'the page went into the back-forward cache');
		return page;
	}

	test('an app that closes on pagehide and connects again on pageshow ' +
	    'resumes', T, async () => {
		const context = await chrome.browser.newContext();
		try {
			const user = `bf-${sid()}`;
			const page = await openAndLeave(context, user, true);
			await post(user, 'while away');
			await page.goBack({ waitUntil: 'commit' });
			await poll(() => get(page, () => window.starts?.length === 2),
			    { timeout: 10000, interval: 50, what: 'connect() again' });
			const [first, again] = await get(page, () => window.starts);
			assert.equal(first, '');
			assert.notEqual(again, '', 'it resumed where the first left');
			await poll(() => get(page, () =>
			    window.got.includes('while away')), { timeout: 10000,
			    interval: 100, what: 'the message posted while away' });
			assert.deepEqual(await get(page, () => window.got),
			    ['before', 'while away']);
		} finally {
			await context.close();
		}
	});

	test('a new page, long after the cached one left, resumes what its ' +
	    'stream took meanwhile', T, async () => {
		const context = await chrome.browser.newContext();
		try {
			const user = `bf-${sid()}`;
			const page = await openAndLeave(context, user);
			// The old page left 31 s ago (its stream, frozen in the
			// cache, went on taking messages all the while).
			await page.evaluate(() => {
				for (let i = 0; i < sessionStorage.length; i++) {
					const k = sessionStorage.key(i);
					if (!k.startsWith('beep-signal:'))
						continue;
					const v = JSON.parse(sessionStorage.getItem(k));
					v.at -= 31000;
					sessionStorage.setItem(k, JSON.stringify(v));
				}
			});
			await post(user, 'while away');
			// A new page of the tab (the cached one evicted, or the
			// app opened again): it must start where the old one left.
			await page.goto(`${siteBase}/a`);
			await open(page, user);
			await poll(() => get(page, () =>
			    window.got.includes('while away')), { timeout: 10000,
			    interval: 100, what: 'the message posted while away' });
			assert.deepEqual(await get(page, () => window.got),
			    ['while away']);
		} finally {
			await context.close();
		}
	});
});

// A frozen page (the Page Lifecycle API: Chromium freezes a tab left in the
// background, or to save energy; DevTools' Page.setWebLifecycleState does it
// here): it runs no JavaScript. What came while it was frozen it must get
// once, in order, when it resumes. A stream left open (a bare
// EventSource's) takes it: the service goes on writing to it and
// Chromium's network stack goes on reading it, so the service takes it for
// neither gone nor stuck. Chromium 156 never resolves a fetch() body read
// again once data reached the stream while the page was frozen (an
// EventSource goes on), and what a stream took is replayed only for
// BEEP_REPLAY_SECONDS: beep-signal.js closes its stream on `freeze`, so
// that the service holds what comes (202), and opens it again with its
// last id on `resume`.
//
// Not in a Playwright context: Playwright turns on focus emulation
// (Emulation.setFocusEmulationEnabled) in every page of its own contexts,
// which holds the page visible, and Chromium does not freeze a visible page:
// Page.setWebLifecycleState then answers and nothing happens (no `freeze`
// event, timers and the stream run on). So this Chromium is started here,
// with a DevTools port, and driven over CDP in its default context with
// noDefaults (no emulation set up); every test checks that the `freeze` and
// `resume` events fired and that no JavaScript ran in between.
describe('a frozen page', { skip }, () => {
	let chrome;

	before(async () => { chrome = await launchFreezable(); });
	after(async () => { await chrome?.stop(); });

	// Chromium, headless, with a DevTools port in a temporary profile;
	// Playwright connects over CDP. Stopped by pid (its process group).
	async function launchFreezable() {
		const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-frozen-'));
		const child = spawn(CHROMIUM, ['--headless', '--no-sandbox',
		    '--disable-gpu', '--no-first-run',
		    '--disable-background-networking',
		    '--disable-component-update', '--disable-sync',
		    `--user-data-dir=${dir}`, '--remote-debugging-port=0',
		    'about:blank'], { stdio: 'ignore', detached: true });
		pids.add(child.pid);
		const exited = new Promise((r) => child.once('exit', r));
		let browser = null;
		const stopIt = async () => {
			await browser?.close().catch(() => {});
			await stopPid(child.pid, true);
			await withTimeout(exited, 5000, null);
			rmSync(dir, { recursive: true, force: true });
		};
		try {
			const port = await poll(() => {
				if (child.exitCode !== null)
					throw new Error(`chromium exited: ${child.exitCode}`);
				try {
					return readFileSync(path.join(dir,
					    'DevToolsActivePort'), 'utf8').split('\n')[0];
				} catch { return false; }
			}, { timeout: 20000, what: 'chromium\'s DevTools port' });
			browser = await playwright.chromium.connectOverCDP(
			    `http://127.0.0.1:${port}`, { noDefaults: true });
		} catch (e) {
			await stopIt();
			throw e;
		}
		return { context: browser.contexts()[0], stop: stopIt };
	}

	// A page of the service's origin connected as (user, phone) with
	// beep-signal.js (sig: true, the default): the ids of the messages it
	// gets go to window.got (a reset as "(reset)"), its states to
	// window.states, how many subscribe requests it made to
	// window.subscribes. With es: a bare EventSource on (user, tablet)
	// too (or alone, with sig: false), its events' ids in window.es (a
	// reset as "(reset)"). Each freeze and resume event goes to
	// window.life with how many messages the page had then (window.got's,
	// or window.es's without sig). Resolves the page and a CDP session.
	async function frozenPage(stack, user, { sig = true, es = false } = {}) {
		const page = await chrome.context.newPage();
		page.on('pageerror', (e) => console.error('[page]', e.message));
		await page.goto(`${stack.base}/healthz`);
		await page.evaluate(async ({ user, sig, es }) => {
			window.got = [];
			window.states = [];
			window.life = [];
			window.es = [];
			window.subscribes = 0;
			const had = () => (sig ? window.got : window.es).length;
			for (const type of ['freeze', 'resume'])
				document.addEventListener(type, () =>
				    window.life.push([type, had()]));
			if (es) {
				const source = new EventSource(
				    `/subscribe/${user}/device/tablet`);
				source.onmessage = (e) => window.es.push(e.lastEventId);
				source.addEventListener('reset', () =>
				    window.es.push('(reset)'));
				await new Promise((resolve) => {
					source.onopen = resolve;
				});
			}
			if (!sig)
				return;
			const fetch0 = window.fetch;
			window.fetch = (url, init) => {
				if (String(url).includes('/subscribe/'))
					window.subscribes++;
				return fetch0(url, init);
			};
			const { connect } = await import('/beep-signal.js');
			window.sig = connect({ base: '', user, device: 'phone' });
			window.sig.on('message', (d, meta) => window.got.push(meta.id));
			window.sig.on('reset', () => window.got.push('(reset)'));
			window.sig.on('state', (s) => window.states.push(s));
			// Open, and its first event (the position) read.
			await new Promise((resolve) => {
				const check = () => window.sig.state === 'open' &&
				    window.sig.lastEventId ? resolve() :
				    setTimeout(check, 20);
				check();
			});
		}, { user, sig, es });
		const cdp = await chrome.context.newCDPSession(page);
		return { page, cdp };
	}

	// Freezes the page; asserts its `freeze` event fired with `had`
	// messages handled. (Runtime.evaluate runs in a frozen page.)
	async function freeze(page, cdp, had) {
		await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
		assert.deepEqual(await get(page, () => window.life),
		    [['freeze', had]], 'the page was frozen');
	}

	// Unfreezes it and waits until window[list] has every id of `ids`
	// (polled); asserts the `resume` event fired before it handled any
	// more.
	async function resume(page, cdp, had, ids, { timeout = 20000,
	    list = 'got' } = {}) {
		await cdp.send('Page.setWebLifecycleState', { state: 'active' });
		await poll(() => page.evaluate(({ n, list }) =>
		    window[list].length >= n, { n: ids.length, list }),
		    { timeout, interval: 100,
		    what: `${ids.length} messages after the page resumed` })
		    .catch(async (e) => {
			const s = await get(page, () => ({ got: window.got,
			    es: window.es.length, states: window.states,
			    life: window.life }));
			throw new Error(`${e.message}: ${JSON.stringify(s)}`);
		});
		assert.deepEqual(await get(page, () => window.life),
		    [['freeze', had], ['resume', had]], 'resumed, nothing ' +
		    'handled while frozen');
	}

	// The service's metrics (the loopback operations site).
	async function metrics(stack) {
		const ops = new Client(stack.opsBase, { maxSockets: 1 });
		try {
			const r = await ops.get('/metrics');
			assert.equal(r.status, 200, r.text);
			return parseExposition(r.text);
		} finally {
			ops.close();
		}
	}

	async function post(c, user, device, data) {
		const r = await c.postJson(`/user/${user}/device/${device}`,
		    { data });
		return { status: r.status, id: r.json().id };
	}

	// The service's view: open streams, and whether (user, device) is
	// listed (it has a live stream).
	async function listed(c, user, device) {
		const r = await c.get(`/user/${user}/devices`);
		assert.equal(r.status, 200, r.text);
		return r.json().includes(device);
	}

	test('messages posted while it is frozen come once, in order, when ' +
	    'it resumes: beep-signal.js closed its stream (held, 202), a bare ' +
	    'EventSource kept it (200)', T, async (t) => {
		const stack = await startStack({ env: { BEEP_KEEPALIVE: '1' } },
		    t);
		const c = stack.client();
		const user = `fz-${sid()}`;
		const { page, cdp } = await frozenPage(stack, user, { es: true });
		try {
			const first = await post(c, user, 'phone', 'before');
			await poll(() => get(page, () => window.got.length === 1),
			    { timeout: 10000, interval: 50, what: 'the first message' });
			await freeze(page, cdp, 1);
			// The client closed its stream on `freeze`; behind Caddy
			// the service sees it gone within two keepalives.
			await poll(async () => !await listed(c, user, 'phone'),
			    { timeout: 10000, interval: 100,
			    what: 'the frozen client\'s stream gone' });
			assert.ok(await listed(c, user, 'tablet'),
			    'the EventSource\'s stream is still open');
			const m0 = await metrics(stack);
			const ids = [first.id], esIds = [];
			for (let i = 0; i < 5; i++) {
				const r = await post(c, user, 'phone', `frozen ${i}`);
				assert.equal(r.status, 202, 'held for the frozen ' +
				    'client, its stream closed');
				ids.push(r.id);
				const e = await post(c, user, 'tablet', `frozen ${i}`);
				assert.equal(e.status, 200, 'the EventSource\'s ' +
				    'stream took it');
				esIds.push(e.id);
			}
			// Five written to the EventSource's stream, five held;
			// the page ran none of it.
			await poll(async () => (await metrics(stack)).value(
			    'beep_events_delivered_total') -
			    m0.value('beep_events_delivered_total') === 5,
			    { timeout: 10000, what: 'the five events written' });
			assert.equal((await metrics(stack)).value(
			    'beep_messages_held'), 5);
			assert.deepEqual(await get(page, () => [window.got,
			    window.es]), [[first.id], []], 'no JavaScript ran');

			await resume(page, cdp, 1, ids);
			assert.deepEqual(await get(page, () => window.got), ids,
			    'each message once, in order');
			// The bare EventSource goes on with the same stream.
			await poll(() => page.evaluate((n) => window.es.length >= n,
			    esIds.length), { timeout: 10000, interval: 100,
			    what: 'the EventSource\'s messages' });
			assert.deepEqual(await get(page, () => window.es), esIds);
		} finally {
			await page.close();
		}
	});

	test('frozen longer than BEEP_REPLAY_SECONDS: what was posted ' +
	    'meanwhile was held (202) and comes once, in order, with no reset',
	T, async (t) => {
		const stack = await startStack({ env: { BEEP_KEEPALIVE: '1',
		    BEEP_REPLAY_SECONDS: '1', BEEP_GRACE_SECONDS: '60' } }, t);
		const c = stack.client();
		const user = `fz-${sid()}`;
		const { page, cdp } = await frozenPage(stack, user);
		try {
			const first = await post(c, user, 'phone', 'before');
			assert.equal(first.status, 200);
			await poll(() => get(page, () => window.got.length === 1),
			    { timeout: 10000, interval: 50, what: 'the first message' });
			await freeze(page, cdp, 1);
			// Closed by the freeze, the stream is seen gone within
			// two keepalives (behind Caddy; at once behind nginx).
			// Left open (no close on `freeze`), it stays, and the
			// posts below get 200: asserted there.
			await poll(async () => !await listed(c, user, 'phone'),
			    { timeout: 10000, interval: 100,
			    what: 'the frozen page\'s stream gone' }).catch(() => {});
			const ids = [first.id];
			for (let i = 0; i < 3; i++) {
				const r = await post(c, user, 'phone', `frozen ${i}`);
				assert.equal(r.status, 202, 'held for the device: the ' +
				    'freeze closed its stream');
				ids.push(r.id);
			}
			// Frozen past the replay window: nothing delivered is kept
			// any longer (the message before the freeze expired), so a
			// message the frozen stream had taken could no longer be
			// replayed (the page would come back to a reset).
			const m0 = await metrics(stack);
			await poll(async () => {
				const m = await metrics(stack);
				return m.value('beep_messages_expired_total') >= 1 &&
				    m.value('beep_messages_published_total') -
				    m.value('beep_messages_held') -
				    m.value('beep_messages_expired_total') === 0;
			}, { timeout: 10000, interval: 200,
			    what: 'every delivered message expired' });
			assert.equal(m0.value('beep_messages_held'), 3);
			assert.deepEqual(await get(page, () => window.got),
			    [first.id], 'no JavaScript ran');

			await resume(page, cdp, 1, ids);
			assert.deepEqual(await get(page, () => window.got), ids,
			    'each message once, in order, and no reset');
			// One new stream: a retry pending since the freeze does
			// not open another beside the one `resume` opened (past
			// the longest retry delay: 2 s, jittered up to 2.5 s).
			await new Promise((r) => setTimeout(r, 3000));
			assert.equal(await get(page, () => window.subscribes), 2,
			    'one stream before the freeze, one after');
			assert.deepEqual(await get(page, () => [window.got,
			    window.sig.state]), [ids, 'open']);
			const m = await metrics(stack);
			assert.equal(m.value('beep_streams_open'), 1);
			assert.equal(m.value('beep_stream_resets_total'), 0);
			assert.equal(m.value('beep_messages_held'), 0);
		} finally {
			await page.close();
		}
	});

	// The two tests below are about a frozen page that keeps its stream
	// open, as a bare EventSource does (and a page in the back-forward
	// cache): beep-signal.js closes its own on `freeze`.
	test('frozen past two keepalives and the write timeout: an ' +
	    'EventSource\'s stream is kept, and nothing is lost', T,
	async (t) => {
		const stack = await startStack({ env: { BEEP_KEEPALIVE: '1',
		    BEEP_WRITE_TIMEOUT: '1' } }, t);
		const c = stack.client();
		const user = `fz-${sid()}`;
		const { page, cdp } = await frozenPage(stack, user,
		    { sig: false, es: true });
		try {
			await freeze(page, cdp, 0);
			const m0 = await metrics(stack);
			const ids = [];
			for (let i = 0; i < 5; i++) {
				const r = await post(c, user, 'tablet', `frozen ${i}`);
				assert.equal(r.status, 200);
				ids.push(r.id);
			}
			// Three more keepalives (":\n\n") written after the five
			// events: over 2 s frozen, past the 2 keepalives within
			// which behind Caddy a client gone is noticed and past
			// the 1 s a write may take.
			const delivered = (m) => m.value('beep_events_delivered_total');
			const written = (m) => m.value('beep_stream_written_bytes_total');
			const m1 = await poll(async () => {
				const m = await metrics(stack);
				return delivered(m) - delivered(m0) === 5 && m;
			}, { timeout: 10000, what: 'the five events written' });
			const m2 = await poll(async () => {
				const m = await metrics(stack);
				return written(m) >= written(m1) + 9 && m;
			}, { timeout: 15000, what: 'three more keepalives written' });
			assert.equal(m2.value('beep_streams_open'), 1,
			    'the frozen page\'s stream is still open');
			assert.equal(m2.value('beep_stream_write_timeouts_total'), 0);
			assert.deepEqual(await get(page, () => window.es), [],
			    'no JavaScript ran');

			await resume(page, cdp, 0, ids, { list: 'es' });
			assert.deepEqual(await get(page, () => window.es), ids,
			    'each message once, in order');
		} finally {
			await page.close();
		}
	});

	test('frozen while more comes than Chromium takes in: the service ' +
	    'drops an EventSource\'s stream, which resumes from its last id', T,
	async (t) => {
		const stack = await startStack({ env: { BEEP_KEEPALIVE: '1',
		    BEEP_WRITE_TIMEOUT: '1', BEEP_REPLAY_MAX: '100000',
		    BEEP_REPLAY_BYTES: String(256 << 20) } }, t);
		const c = stack.client();
		const user = `fz-${sid()}`;
		const { page, cdp } = await frozenPage(stack, user,
		    { sig: false, es: true });
		try {
			await freeze(page, cdp, 0);
			// 60 kB messages until the service gives the stream up
			// (a write past 1 s, or its queue full): a 202, held for
			// the device, away now; then a few more, held too.
			const pad = 'x'.repeat(60000);
			const ids = [];
			let held = 0;
			for (let i = 0; held < 3; i++) {
				assert.ok(i < 2000, 'the stream was never dropped');
				const r = await post(c, user, 'tablet', `${i} ${pad}`);
				assert.ok(r.status === 200 || r.status === 202,
				    `post ${i}: ${r.status}`);
				ids.push(r.id);
				if (r.status === 202)
					held++;
			}
			const m = await metrics(stack);
			assert.ok(m.value('beep_stream_write_timeouts_total') +
			    m.value('beep_stream_overflows_total') >= 1,
			    'the service closed the frozen page\'s stream');
			assert.deepEqual(await get(page, () => window.es), [],
			    'no JavaScript ran');

			await resume(page, cdp, 0, ids, { timeout: 60000,
			    list: 'es' });
			const got = await get(page, () => window.es);
			assert.equal(got.length, ids.length);
			assert.ok(got.every((id, i) => id === ids[i]),
			    'each message once, in order (no reset)');
		} finally {
			await page.close();
		}
	});
});
