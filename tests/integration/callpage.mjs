// Real Chromium (Debian's, driven by playwright-core from tests/browser/, no
// browser download) on the call page (/, web/app.js) behind the real
// backend: the rig of the call-page tests (30, 74-78, 90, 91). The
// browsers launched here are closed after their test; test 30 launches its
// own (it needs their pids, and the back-forward cache).
//
// Not a test file (the runner only picks up *.test.mjs).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
	ROOT, CADDYFILE, skipReason, subPath, postPath, isJson,
} from './harness.mjs';

export const CHROMIUM = process.env.BEEP_CHROMIUM || '/usr/bin/chromium';

// playwright-core from tests/browser/, or null when it is not installed
// (the tests then skip).
export const playwright = (() => {
	try {
		const require = createRequire(path.join(ROOT,
		    'tests/browser/package.json'));
		return require('playwright-core');
	} catch {
		return null;
	}
})();

// node:test's `skip` for a browser test: false when it can run, else what
// is missing (playwright-core, Chromium, or one of `programs`, further
// files the test runs).
export function browserSkip(programs = [], fileUrl = null) {
	const listed = fileUrl && skipReason(fileUrl);
	if (listed)
		return listed;
	const missing = !playwright ?
	    'playwright-core (npm ci in tests/browser)' :
	    [CHROMIUM, ...programs].find((p) => !existsSync(p));
	return missing ? `missing ${missing}: make test-deps installs it` :
	    false;
}

// Launches headless Chromium, closed after the test t; media: a fake
// camera and microphone, granted without asking (for calls that connect).
// Returns the playwright Browser.
export async function launchChromium(t, { media = false } = {}) {
	const fakeMedia = ['--use-fake-ui-for-media-stream',
	    '--use-fake-device-for-media-stream'];
	const browser = await playwright.chromium.launch({
		executablePath: CHROMIUM, headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
		    '--disable-background-networking',
		    '--disable-component-update', '--disable-sync',
		    ...(media ? fakeMedia : [])],
	});
	t.after(() => browser.close());
	return browser;
}

// Joins as (user, device) on a call page already loaded, as a person
// would; resolves null once the app shows, or what the join form says
// when the page could not go online.
export async function tryOnline(page, user, device) {
	await page.fill('#join-user', user);
	await page.fill('#join-device', device);
	await page.click('#join-go');
	const shown = await page.waitForSelector(
	    '#app:not([hidden]), #join-error:not([hidden])');
	return await shown.getAttribute('id') === 'app' ? null :
	    await shown.textContent();
}

// As tryOnline, and asserts that the page went online.
export async function goOnline(page, user, device) {
	const error = await tryOnline(page, user, device);
	assert.equal(error, null, `${user}/${device} did not go online`);
}

// A new page in context (a browser profile: its localStorage is the
// context's) on the call page at url (…/#token=… with JWTs), online as
// (user, device). before(page), when given, runs before the page loads
// (routes, listeners). Page errors are logged. Returns the page.
export async function onlinePage(context, url, user, device, { before } = {}) {
	const page = await context.newPage();
	page.on('pageerror', (e) => console.error('[call page]', e.message));
	if (before)
		await before(page);
	await page.goto(url);
	await goOnline(page, user, device);
	return page;
}

// Adds `user` as a contact; resolves the selector of the button that calls
// their `device` once it shows online.
export async function addContact(page, user, device) {
	await page.fill('#find-user', user);
	await page.click('#find-go');
	const button = `.contact[data-user="${user}"] ` +
	    `button[data-device="${device}"]`;
	await page.waitForSelector(button);
	return button;
}

// The users in the page's contact list, in its order.
export const contactsOf = (page) => page.$$eval('#contacts .contact',
    (lis) => lis.map((li) => li.dataset.user));

// POSTs { event, data } to (user, device) at base as a caller's page
// would, with `headers` (a bearer token, or none in open mode); asserts
// that it was taken (200).
export async function postEvent(base, user, device, event, data,
    headers = {}) {
	const r = await fetch(`${base}/user/${user}/device/${device}`, {
		method: 'POST',
		headers: { ...headers, 'Content-Type': 'application/json' },
		body: JSON.stringify({ event, data }),
	});
	assert.equal(r.status, 200);
}

// The bodies of the POSTs the page makes to a URL that holds `fragment`
// (e.g. `/user/NAME/`), parsed, in order: an array that grows as they go.
export function postsTo(page, fragment) {
	const bodies = [];
	page.on('request', (r) => {
		if (r.method() === 'POST' && r.url().includes(fragment))
			bodies.push(r.postDataJSON());
	});
	return bodies;
}

// Counts the messages of `event` the page's client (window.beepApp.sig)
// delivers from now on. Returns { reached(n): resolves once n have come;
// settled(n): once n have come and the page has sent every answer it
// queued }.
export async function countDelivered(page, event) {
	await page.evaluate((ev) => {
		window.delivered = window.delivered || {};
		window.delivered[ev] = 0;
		window.beepApp.sig.on(ev, () => { window.delivered[ev]++; });
	}, event);
	const reached = (n) => page.waitForFunction(([ev, k]) =>
	    window.delivered[ev] === k, [event, n]);
	return {
		reached,
		async settled(n) {
			await reached(n);
			await page.waitForFunction(() =>
			    window.beepApp.sig.sendQueues.size === 0);
		},
	};
}

// The call page's files through the front c talks to, as the Caddyfile
// serves them: each with its type, no-cache and CORS, the page's own with
// its Content-Security-Policy and other headers, /beep-signal.js (imported
// by apps of other origins) without them; any method but GET and HEAD gets
// 405 with "Allow: GET, HEAD", not the file. An API path whose id the front
// decodes and resolves to one of them (%2F and ".." steps), sent with the
// headers `api` (credentials, where the front wants them), reaches the
// backend, which refuses it in JSON, and any other path gets its JSON 404.
// site: the front sends only the API to the backend, and keeps every other
// path for the site it serves (conf/lighttpd-web.conf): a path that is not
// one of the files but resolves to one (its "..", "%2F" or "//") gets none
// of them, whatever the site answers.
export async function checkWebFiles(c, { api = {}, site = false } = {}) {
	// The Caddyfile's policy, where it is written (the file it imports).
	const caddy = [CADDYFILE, path.join(ROOT, 'conf', 'caddy-web.conf')]
	    .filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8'))
	    .join('\n');
	const csp = /Content-Security-Policy "([^"]+)"/.exec(caddy)[1];
	for (const [p, type] of [['/', /^text\/html/],
	    ['/index.html', /^text\/html/], ['/app.js', /^text\/javascript/],
	    ['/style.css', /^text\/css/],
	    ['/beep-signal.js', /^text\/javascript/]]) {
		const r = await c.get(p);
		assert.equal(r.status, 200, `${p}: ${r.status} ${r.text.slice(0, 80)}`);
		assert.match(r.headers['content-type'], type, p);
		const page = p !== '/beep-signal.js';
		assert.deepEqual([r.headers['content-security-policy'],
		    r.headers['x-content-type-options'],
		    r.headers['referrer-policy'],
		    r.headers['cross-origin-opener-policy']],
		    page ? [csp, 'nosniff', 'no-referrer', 'same-origin'] :
		    [undefined, undefined, undefined, undefined], p);
		assert.equal(r.headers['cache-control'], 'no-cache', p);
		assert.equal(r.headers['access-control-allow-origin'], '*', p);
		// Files, which take no request: any other method gets 405 and
		// what they take, as the backend answers a method a path does
		// not take, never the file as if the request had been taken.
		for (const [method, body] of [['POST', 'data=x'], ['PUT', 'x']]) {
			const w = await c.request(method, p, { body, headers:
			    { 'Content-Type': 'application/x-www-form-urlencoded' } });
			assert.deepEqual([w.status, w.headers.allow,
			    w.text === r.text], [405, 'GET, HEAD', false],
			    `${method} ${p}: ${w.status} ${w.text.slice(0, 80)}`);
		}
	}
	// Ids that a front resolves to a file of web/: the backend's 400.
	for (const [p, post] of [[subPath('u', '../../../beep-signal.js')],
	    [postPath('u', '../../../app.js'), true],
	    [subPath('u', '../../../index.html')], [subPath('u', '../../..')]]) {
		const r = await (post ? c.postJson(p, { data: 'x' },
		    { headers: api }) : c.get(p, { headers: api }));
		assert.equal(r.status, 400, `${p}: ${r.status} ${r.text.slice(0, 80)}`);
		assert.ok(isJson(r), p);
	}
	if (site) {
		const bodies = new Set();
		for (const p of ['/beep-signal.js', '/app.js', '/index.html'])
			bodies.add((await c.get(p)).text);
		for (const p of ['/x/..%2Fbeep-signal.js', '/x/../app.js',
		    '//app.js', '/./index.html', '/%2e/style.css', '/x/..',
		    '/%61pp.js', '/web/app.js']) {
			const r = await c.get(p);
			assert.ok(r.status !== 200 && !bodies.has(r.text),
			    `${p}: ${r.status} ${r.text.slice(0, 80)}`);
		}
		return;
	}
	const r = await c.get('/nope', { headers: api });
	assert.deepEqual([r.status, r.json()], [404, { error: 'not found' }]);
}
