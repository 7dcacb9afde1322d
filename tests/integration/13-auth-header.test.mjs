// Issue 5, BEEP_AUTH=header through a real Caddy running the example
// conf/Caddyfile.forward-auth (BEEP_FA_CADDYFILE overrides the path): Caddy
// drops any client-sent X-User-Claim, asks an auth service (forward_auth), and
// on 2xx copies the service's X-User-Claim ({"userid":..,"clientid":..}) into
// the request for the backend; any other answer goes back to the client.
//
// The auth service is a stub started here on a free loopback port
// (AUTH_UPSTREAM=127.0.0.1:PORT). It decides by the Authorization header:
//   Bearer ok.<base64url JSON>   200 with X-User-Claim: that JSON
//   Bearer raw.<base64url text>  200 with X-User-Claim: that text
//   Bearer anon                  200 without X-User-Claim (an auth service
//                                that lets anonymous requests through)
//   Cookie fa_session=ok.<...>   as Bearer ok.<...> (a session cookie, which
//                                the call page's requests carry by themselves)
//   anything else                401 {"error":"auth stub: ..."}
// and lets /healthz and OPTIONS through (whether or not Caddy asks it then).
//
// What is checked: without valid credentials the stub's 401 comes back, also
// with a forged X-User-Claim; authenticated as A with a forged claim for B the
// request acts as A (403 on B's streams and list, envelope "from" A); clientid
// pins the device; a pass without a claim, or a malformed claim (also one
// nested too deep or longer than BEEP_MAX_TOKEN), is no
// identity (401); the stub never sees the client's X-User-Claim; healthz and
// OPTIONS stay open; the call page is served as the Caddyfile serves it, and
// goes online in Chromium by the identity service's session cookie.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
	startStack, uid, ROOT, postPath, listPath, subPath, isJson, openSub,
	expectRefusedStream,
} from './harness.mjs';
import {
	browserSkip, launchChromium, goOnline, checkWebFiles,
} from './callpage.mjs';

const T = { timeout: 60000 };
const FA_CADDYFILE = path.resolve(ROOT,
    process.env.BEEP_FA_CADDYFILE || 'conf/Caddyfile.forward-auth');
const b64u = (x) => Buffer.from(x).toString('base64url');

// ---------------------------------------------------------------------------
// The auth stub.

function startAuthStub() {
	const seen = [];            // { method, uri, headers } of each ask
	const server = http.createServer((req, res) => {
		const uri = req.headers['x-forwarded-uri'] || '';
		const method = req.headers['x-forwarded-method'] || '';
		seen.push({ method, uri, headers: { ...req.headers } });
		req.resume();
		if (method === 'OPTIONS' || uri.split('?')[0] === '/healthz') {
			res.writeHead(200);
			res.end();
			return;
		}
		const m = /^Bearer (ok|raw)\.([A-Za-z0-9_-]*)$/
		    .exec(req.headers.authorization || '') ||
		    /(?:^|; )fa_session=(ok)\.([A-Za-z0-9_-]*)(?:;|$)/
		    .exec(req.headers.cookie || '');
		if (m) {
			res.writeHead(200, { 'X-User-Claim':
			    Buffer.from(m[2], 'base64url').toString('utf8') });
			res.end();
			return;
		}
		if (req.headers.authorization === 'Bearer anon') {
			res.writeHead(200);
			res.end();
			return;
		}
		const body = '{"error":"auth stub: no valid credentials"}';
		res.writeHead(401, { 'Content-Type': 'application/json',
		    'WWW-Authenticate': 'Bearer realm="stub"',
		    'Content-Length': Buffer.byteLength(body) });
		res.end(body);
	});
	return new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => resolve({
			port: server.address().port,
			seen,
			close() {
				server.closeAllConnections();
				return new Promise((r) => server.close(() => r()));
			},
		}));
	});
}

// Authorization for an identity the stub vouches for.
const as = (userid, clientid) => ({ Authorization: 'Bearer ok.' +
    b64u(JSON.stringify(clientid === undefined ? { userid } :
        { userid, clientid })) });
const rawClaim = (text) => ({ Authorization: `Bearer raw.${b64u(text)}` });
const forged = (userid, clientid) => ({ 'X-User-Claim': JSON.stringify(
    clientid === undefined ? { userid } : { userid, clientid }) });
// The same claim under names a FastCGI gateway could map to the same
// HTTP_X_USER_CLAIM parameter.
const forgedVariants = (userid) => [
	forged(userid),
	{ 'x-user-claim': JSON.stringify({ userid }) },
	{ X_User_Claim: JSON.stringify({ userid }) },
	{ 'X-User_Claim': JSON.stringify({ userid }) },
	{ 'X_User-Claim': JSON.stringify({ userid }) },
];

// ---------------------------------------------------------------------------

function assertError(r, status, what) {
	assert.equal(r.status, status, `${what}: status (${r.text})`);
	assert.ok(isJson(r), `${what}: JSON error`);
	assert.equal(typeof JSON.parse(r.text).error, 'string', what);
}

// The stub's own 401 (Caddy passed the auth service's answer on).
function assertStub401(r, what) {
	assertError(r, 401, what);
	assert.match(JSON.parse(r.text).error, /^auth stub:/,
	    `${what}: the auth service's answer`);
}

const post = (c, u, d, body, headers = {}) =>
    c.postJson(postPath(u, d), body, { headers });
const list = (c, u, headers = {}) => c.get(listPath(u), { headers });

function envelope(ev, what) {
	assert.ok(!ev.data.includes('\n'), `${what}: one line`);
	const v = JSON.parse(ev.data);
	assert.deepEqual(Object.keys(v).sort(), ['data', 'from'], what);
	return v;
}

// ---------------------------------------------------------------------------

describe('BEEP_AUTH=header behind Caddy forward_auth', () => {
	let stub, stack;

	before(async () => {
		assert.ok(existsSync(FA_CADDYFILE),
		    `the forward-auth example Caddyfile: ${FA_CADDYFILE}`);
		stub = await startAuthStub();
		stack = await startStack({
			env: { BEEP_AUTH: 'header', BEEP_KEEPALIVE: '1' },
			caddyfile: FA_CADDYFILE,
			caddyEnv: { AUTH_UPSTREAM: `127.0.0.1:${stub.port}` },
		});
	});
	after(async () => {
		try {
			if (stack)
				await stack.stopAndCheck();
		} finally {
			if (stub)
				await stub.close();
		}
	});

	test('no valid credentials: the auth service\'s 401, forged claim or not',
	    T, async () => {
		const c = stack.client();
		const alice = uid('alice');
		const live = await openSub(stack, subPath(alice, 'phone'), as(alice));
		assert.equal(live.status, 200, live.text);
		for (const creds of [{}, { Authorization: 'Bearer wrong' },
		    { Authorization: 'Basic YWxpY2U6cHc=' }]) {
			for (const claim of [{}, ...forgedVariants(alice)]) {
				const h = { ...creds, ...claim };
				const what = JSON.stringify(h);
				assertStub401(await openSub(stack, subPath(alice, 'phone'), h),
				    `${what}: subscribe`);
				assertStub401(await post(c, alice, 'phone',
				    { data: 'forged' }, h), `${what}: post`);
				assertStub401(await list(c, alice, h), `${what}: list`);
			}
		}
		// Nothing got through to the stream.
		const r = await post(c, alice, 'phone', { data: 'real' }, as(alice));
		assert.equal(r.status, 200, r.text);
		assert.equal((await live.stream.nextEvent()).data, 'real');
		assert.equal(live.stream.received, 1);
		live.stream.close();
	});

	test('authenticated as A, a forged claim for B: acts as A', T, async () => {
		const c = stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const bobStream = await openSub(stack,
		    `${subPath(bob, 'tablet')}?envelope=1`, as(bob));
		assert.equal(bobStream.status, 200, bobStream.text);
		// Repeated: if a variant reached the backend next to the real claim
		// (Caddy's FastCGI transport maps X_User_Claim, X-User_Claim and
		// X_User-Claim to HTTP_X_USER_CLAIM too), which one wins depends on
		// the order of a map.
		for (let i = 0; i < 4; i++) {
			for (const claim of [...forgedVariants(bob),
			    forged(bob, 'tablet')]) {
				const h = { ...as(alice), ...claim };
				const what = JSON.stringify(claim);
				assertError(await openSub(stack, subPath(bob, 'tablet'), h),
				    403, `${what}: subscribe as bob`);
				assertError(await list(c, bob, h), 403, `${what}: list bob`);
				const r = await post(c, bob, 'tablet', { data: what }, h);
				assert.equal(r.status, 200, `${what}: post: ${r.text}`);
				const e = envelope(await bobStream.stream.nextEvent(), what);
				assert.deepEqual(e, { from: { user: alice, device: null },
				    data: what }, `${what}: the sender is alice`);
			}
		}
		// And alice is alice: her own stream and list work with the forgery.
		const h = { ...as(alice), ...forged(bob) };
		const own = await openSub(stack, subPath(alice, 'phone'), h);
		assert.equal(own.status, 200, own.text);
		const l = await list(c, alice, h);
		assert.equal(l.status, 200, l.text);
		assert.deepEqual(l.json(), ['phone']);
		// Bob's list shows only his own device.
		const lb = await list(c, bob, as(bob));
		assert.equal(lb.status, 200, lb.text);
		assert.deepEqual(lb.json(), ['tablet']);
		own.stream.close();
		bobStream.stream.close();
	});

	test('the auth service never sees the client\'s X-User-Claim', T,
	    async () => {
		const c = stack.client();
		const alice = uid('alice');
		const before_ = stub.seen.length;
		await list(c, alice, { ...as(alice), ...forged('mallory') });
		await list(c, alice, forged('mallory'));
		const asks = stub.seen.slice(before_);
		assert.ok(asks.length >= 2, 'Caddy asked the auth service');
		for (const a of asks)
			assert.equal(a.headers['x-user-claim'], undefined,
			    `the stub got a client X-User-Claim: ${JSON.stringify(a)}`);
	});

	test('clientid pins the device', T, async () => {
		const c = stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const phone = as(alice, 'phone');
		const s = await openSub(stack, subPath(alice, 'phone'), phone);
		assert.equal(s.status, 200, s.text);
		assertError(await openSub(stack, subPath(alice, 'laptop'), phone),
		    403, 'pinned phone subscribes laptop');
		assertError(await openSub(stack, subPath(alice, 'laptop'),
		    { ...phone, ...forged(alice, 'laptop') }), 403,
		    'pinned phone with a forged clientid laptop');
		const b = await openSub(stack, `${subPath(bob, 'b')}?envelope=1`,
		    as(bob));
		assert.equal(b.status, 200, b.text);
		const r = await post(c, bob, 'b', { data: 'hi' }, phone);
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(envelope(await b.stream.nextEvent(), 'pinned'),
		    { from: { user: alice, device: 'phone' }, data: 'hi' });
		s.stream.close();
		b.stream.close();
	});

	test('a pass without a claim, or a malformed claim, is no identity: 401',
	    T, async () => {
		const c = stack.client();
		const alice = uid('alice');
		const live = await openSub(stack, subPath(alice, 'p'), as(alice));
		assert.equal(live.status, 200, live.text);
		const cases = [
			['pass without a claim', { Authorization: 'Bearer anon' }],
			['pass without a claim + forged claim',
			    { Authorization: 'Bearer anon', ...forged(alice) }],
			// Names that differ from X-User-Claim only by '_' for '-' are
			// not stripped by a `request_header -X-User-Claim`, and a
			// FastCGI gateway maps them to the same HTTP_X_USER_CLAIM
			// (which copy wins may vary per request: hence the repeats).
			...forgedVariants(alice).slice(1).flatMap((claim) =>
			    Array.from({ length: 6 }, () => [
				    `pass without a claim + forged ${Object.keys(claim)[0]}`,
				    { Authorization: 'Bearer anon', ...claim }])),
			['not JSON', rawClaim('alice')],
			['JSON array', rawClaim(JSON.stringify([alice]))],
			['no userid', rawClaim(JSON.stringify({ clientid: 'p' }))],
			['userid not a string', rawClaim('{"userid":42}')],
			['userid null', rawClaim('{"userid":null}')],
			['userid empty', rawClaim('{"userid":""}')],
			['userid with a control character',
			    rawClaim(JSON.stringify({ userid: `${alice}\u0001` }))],
			['clientid not a string', rawClaim(JSON.stringify(
			    { userid: alice, clientid: 7 }))],
			// Issue 8: bounded before it is parsed (this one overflowed
			// a worker's stack inside jansson and ended the process).
			['nested 1,700 deep', rawClaim('['.repeat(1700))],
			['a valid claim past BEEP_MAX_TOKEN (8192 bytes)',
			    rawClaim(JSON.stringify({ userid: alice,
			        pad: 'p'.repeat(8192) }))],
		];
		for (const [what, h] of cases) {
			assertError(await openSub(stack, subPath(alice, 'p'), h), 401,
			    `${what}: subscribe`);
			assertError(await post(c, alice, 'p', { data: what }, h), 401,
			    `${what}: post`);
			assertError(await list(c, alice, h), 401, `${what}: list`);
		}
		const r = await post(c, alice, 'p', { data: 'real' }, as(alice));
		assert.equal(r.status, 200, r.text);
		assert.equal((await live.stream.nextEvent()).data, 'real');
		assert.equal(live.stream.received, 1, 'nothing else was delivered');
		live.stream.close();
	});

	// The call page and /beep-signal.js, served as the Caddyfile serves
	// them (the rules it imports), before forward auth: public files, as
	// on every other front.  The page holds no credentials, but its
	// requests carry the identity service's session cookie by themselves,
	// so it goes online as the user the service names.  The file sent
	// every path to the auth service and the backend: / was the stub's 401.
	test('the call page goes online by the identity service\'s cookie', T,
	    async (t) => {
		const c = stack.client();
		const alice = uid('alice');
		await checkWebFiles(c, { api: as(alice) });
		if (browserSkip()) {
			t.diagnostic(`no browser check: ${browserSkip()}`);
			return;
		}
		const browser = await launchChromium(t);
		const context = await browser.newContext();
		await context.addCookies([{ name: 'fa_session', url: stack.base,
		    value: `ok.${b64u(JSON.stringify({ userid: alice }))}` }]);
		const page = await context.newPage();
		await page.goto(`${stack.base}/`);
		await goOnline(page, alice, 'laptop');
		await page.waitForSelector('#sigstate.pill-on');
		// The backend took the stream as alice's, by the cookie alone.
		const l = await list(c, alice, as(alice));
		assert.deepEqual([l.status, l.json()], [200, ['laptop']], l.text);
	});

	test('healthz and OPTIONS stay open', T, async () => {
		const c = stack.client();
		const r = await c.get('/healthz');
		assert.equal(r.status, 200, r.text);
		for (const [p, m] of [[subPath('u', 'd'), 'GET'],
		    [listPath('u'), 'GET'], [postPath('u', 'd'), 'POST']]) {
			const o = await c.options(p, { headers: {
				Origin: 'https://app.example',
				'Access-Control-Request-Method': m,
				'Access-Control-Request-Headers': 'authorization' } });
			assert.equal(o.status, 204, `OPTIONS ${p}: ${o.text}`);
		}
	});
});

// Without the forward-auth front, a client's own X-User-Claim (any spelling)
// is never an identity: the backend reads only its FastCGI parameter.
test('header mode ignores a client-sent X-User-Claim reaching the backend', T,
    async (t) => {
	const stack = await startStack({ env: { BEEP_AUTH: 'header' } }, t);
	const c = stack.client();
	const bob = uid('bob');
	for (const name of ['X-User-Claim', 'X_User_Claim', 'X-User_Claim']) {
		const r = await list(c, bob,
		    { [name]: JSON.stringify({ userid: bob }) });
		assert.equal(r.status, 401, `${name}: ${r.text}`);
	}
});

// The auth service out of reach: forward_auth fails and Caddy answers 502
// itself, which EventSource would take as final; a bare EventSource gets
// the Caddyfile's stream that brings it back after retry: (as with the
// backend out of reach, test 40), anyone else the 502.
test('forward auth out of reach: EventSource gets a stream it retries', T,
    async (t) => {
	const stub = await startAuthStub();
	const port = stub.port;
	await stub.close();
	const stack = await startStack({
		env: { BEEP_AUTH: 'header' },
		caddyfile: FA_CADDYFILE,
		caddyEnv: { AUTH_UPSTREAM: `127.0.0.1:${port}` },
	}, t);
	await expectRefusedStream(stack, subPath(uid('fa'), 'd'), 502,
	    'backend unavailable', { front: true });
});
