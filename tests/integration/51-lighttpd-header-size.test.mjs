// What a browser sends, lighttpd must pass: the request headers of a page
// whose cookie jar grew (cookies a parent domain sets reach the service too),
// or that carries a large token, the way nginx and Caddy pass them.
//
// lighttpd 1.4 bounds a request's header block as a whole
// (server.max-request-field-size, 8 KiB by default), where nginx bounds each
// line (8 KiB) and Caddy the block at 60 KB. A browser's own headers take
// about 1 KiB, so behind conf/lighttpd.conf a cookie jar of about 7 KiB, or a
// token well within BEEP_MAX_TOKEN (8192), got lighttpd's own 431, an HTML
// page without Access-Control-Allow-Origin: fetch() saw a network error and
// EventSource gave up for good, while the same request through nginx or
// Caddy was answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Rig } from './fronts.mjs';
import { listPath, subPath, isJson, skipReason } from './harness.mjs';
import { mint, claims } from './jwt.mjs';

// Skipped under ThreadSanitizer (the Makefile's TSAN_SKIP): its subject is
// lighttpd's configuration, not the C the sanitizers watch.
const T = { timeout: 60000, skip: skipReason(import.meta.url) };

// The headers a current Chromium sends with a cross-origin fetch(), without
// its cookies: about 700 bytes.
const BROWSER = {
	Origin: 'https://app.example',
	Referer: 'https://app.example/call',
	'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 ' +
	    '(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
	Accept: '*/*',
	'Accept-Language': 'en-GB,en-US;q=0.9,en;q=0.8',
	'Accept-Encoding': 'gzip, deflate, br',
	'Sec-Ch-Ua': '"Not_A Brand";v="8", "Chromium";v="120"',
	'Sec-Ch-Ua-Mobile': '?0',
	'Sec-Ch-Ua-Platform': '"Linux"',
	'Sec-Fetch-Dest': 'empty',
	'Sec-Fetch-Mode': 'cors',
	'Sec-Fetch-Site': 'cross-site',
};

// A jar of n analytics-style cookies of `size` bytes each, as one header.
const jar = (n, size) => Array.from({ length: n },
    (_, i) => `_c${i}=${'v'.repeat(size)}`).join('; ');

test('lighttpd passes the headers of a browser with a grown cookie jar',
    T, async (t) => {
	const rig = new Rig(t, 'lighttpd-headers',
	    { env: { BEEP_CORS_ORIGINS: 'https://app.example' } });
	await rig.startListen();
	await rig.startLighttpd();
	const c = rig.client();
	// 8,000 bytes of cookies in one Cookie line (under nginx's 8 KiB a
	// line), about 8.5 KiB of headers in all; then 3 lines of 7.5 KiB
	// or more, which nginx passes too.
	for (const [what, extra] of [
	    ['an 8,000-byte cookie jar', { Cookie: jar(15, 530) }],
	    ['three 7.5 KiB header lines', { Cookie: jar(15, 530),
		'X-Trace-A': 'a'.repeat(7500), 'X-Trace-B': 'b'.repeat(7500) }],
	]) {
		const r = await c.get(listPath('u'),
		    { headers: { ...BROWSER, ...extra } });
		assert.equal(r.status, 200, `${what}: lighttpd's own answer ` +
		    `instead of the backend's: ${r.status} ` +
		    `${r.headers['content-type']} ${r.text.slice(0, 80)}`);
		assert.ok(isJson(r), what);
		assert.equal(r.headers['access-control-allow-origin'],
		    'https://app.example', `${what}: readable by the page`);
	}
	rig.checkBackendLog();
});

test('lighttpd passes a cookie token within BEEP_MAX_TOKEN from a browser',
    T, async (t) => {
	const secret = crypto.randomBytes(32).toString('hex');
	const rig = new Rig(t, 'lighttpd-token', { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: secret,
		BEEP_CORS_ORIGINS: 'https://app.example',
	} });
	await rig.startListen();
	await rig.startLighttpd();
	// A token of 8,000 bytes (claims an identity provider adds: roles,
	// groups), within BEEP_MAX_TOKEN's default of 8192 and within the
	// 8 KiB line nginx takes.
	const extra = { groups: [] };
	let token = mint(claims('u', extra), { key: secret });
	for (let i = 0; token.length < 8000; i++) {
		extra.groups.push(`group-${i}`);
		token = mint(claims('u', extra), { key: secret });
	}
	assert.ok(token.length <= 8192, `token ${token.length} bytes`);
	const c = rig.client();
	const r = await c.get(listPath('u'), { headers: { ...BROWSER,
	    Cookie: `beep_token=${token}` } });
	assert.equal(r.status, 200, `a ${token.length}-byte cookie token: ` +
	    `lighttpd's own answer instead of the backend's: ${r.status} ` +
	    `${r.headers['content-type']} ${r.text.slice(0, 80)}`);
	// EventSource with credentials: the stream opens, not a 431 it
	// would never retry.
	const s = await rig.open(subPath('u', 'd'), { headers: {
	    ...BROWSER, Accept: 'text/event-stream',
	    Cookie: `beep_token=${token}` } });
	assert.equal(s.status, 200, `subscribe: ${s.status}`);
	await s.waitComments(1);
	s.close();
	rig.checkBackendLog();
});
