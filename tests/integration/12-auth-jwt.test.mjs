// Issue 5, BEEP_AUTH=jwt through Caddy, with tokens minted here (jwt.mjs):
//   - where a token may come from: Authorization: Bearer, the cookie
//     (BEEP_JWT_COOKIE), ?access_token= on subscribe only (and not on POST or
//     list; not at all with BEEP_JWT_QUERY=0);
//   - what is refused with 401 + `WWW-Authenticate: Bearer` (+ a JSON error):
//     no token, expired, not yet valid, bad signature, `alg: none`, another
//     alg than configured (incl. HS256 keyed with the RSA/EC public key PEM
//     against RS256/ES256: algorithm confusion), missing exp, wrong iss/aud;
//   - who may do what: subscribe only as yourself (device pinned by the
//     `device` claim) else 403; list yourself only (403) unless
//     BEEP_LIST_POLICY=any; POST needs an identity (401), to anyone;
//   - the stamped sender: ?envelope=1 wraps data as
//     {"from":{"user","device"},"data"} with the verified sender, which a
//     sender cannot forge; without it the data is unchanged (also replayed
//     and held messages keep their sender);
//   - healthz and OPTIONS stay open; RS256, ES256, HS384, HS512 happy paths;
//   - BEEP_AUTH=none keeps the open API (envelope "from" is null);
//   - refused configurations do not start.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
	useStack, startStack, uid, poll, runBinary, postPath, listPath, subPath,
	isJson, openSub, assertRefusedStart,
} from './harness.mjs';
import {
	mint, unsigned, tamper, claims, nowSec, rsaPair, ecPair, keyDir, bearer,
	b64u,
} from './jwt.mjs';

const T = { timeout: 60000 };
const SECRET = crypto.randomBytes(32).toString('hex');

// Key files for the RS256/ES256 stacks, written before the stacks start.
const keys = keyDir();
after(() => keys.remove());
const RSA = rsaPair();
const RSA_OTHER = rsaPair();
const EC = ecPair();
const EC_OTHER = ecPair();
const RSA_PEM_FILE = keys.write('rsa.pub.pem', RSA.publicPem);
const EC_PEM_FILE = keys.write('ec.pub.pem', EC.publicPem);
const RSA_OTHER_PEM_FILE = keys.write('rsa-other.pub.pem',
    RSA_OTHER.publicPem);

const hs = (payload, alg = 'HS256', key = SECRET) =>
    mint(payload, { alg, key });

// ---------------------------------------------------------------------------
// Answers and their checks.

function assertError(r, status, what) {
	assert.equal(r.status, status, `${what}: status (${r.text})`);
	assert.ok(isJson(r), `${what}: JSON error (content-type ` +
	    `${r.headers['content-type']})`);
	let body;
	try { body = JSON.parse(r.text); } catch {
		assert.fail(`${what}: error body is not JSON: ${r.text}`);
	}
	assert.equal(typeof body.error, 'string', `${what}: {"error": "..."}`);
}

// 401 with `WWW-Authenticate: Bearer`; `refused`: a token was given and
// refused, so the challenge says error="invalid_token".
function assert401(r, what, { refused = false } = {}) {
	assertError(r, 401, what);
	const wa = r.headers['www-authenticate'];
	assert.ok(wa !== undefined, `${what}: WWW-Authenticate present`);
	assert.match(wa, /^Bearer(\s|,|$)/i, `${what}: WWW-Authenticate: ${wa}`);
	if (refused)
		assert.match(wa, /error="invalid_token"/,
		    `${what}: WWW-Authenticate: ${wa}`);
}

function assertPosted(r, what, status = 200) {
	assert.equal(r.status, status, `${what}: ${r.text}`);
	assert.equal(typeof r.json().id, 'string', `${what}: {"id": ...}`);
}

const post = (c, u, d, body, headers = {}) =>
    c.postJson(postPath(u, d), body, { headers });
const list = (c, u, headers = {}) => c.get(listPath(u), { headers });
// As a browser sends it from the service's own pages: with the cookie,
// Sec-Fetch-Site: same-origin (cross-site cookie requests are refused, see
// 22-csrf-cookie).
const cookie = (t, name = 'beep_token') =>
    ({ Cookie: `theme=dark; ${name}=${t}; lang=en`,
        'Sec-Fetch-Site': 'same-origin' });

// Checks the three request kinds with `headers` are refused with 401.
async function assertAll401(stack, c, headers, what, opts) {
	const u = uid('victim');
	assert401(await openSub(stack, subPath(u, 'd'), headers),
	    `${what}: subscribe`, opts);
	assert401(await post(c, u, 'd', { data: 'x' }, headers),
	    `${what}: post`, opts);
	assert401(await list(c, u, headers), `${what}: list`, opts);
}

// An envelope event: one line of compact JSON, parsed.
function envelope(ev, what) {
	assert.ok(!ev.data.includes('\n'), `${what}: envelope is one line: ` +
	    JSON.stringify(ev.data));
	let v;
	try { v = JSON.parse(ev.data); } catch {
		assert.fail(`${what}: envelope is not JSON: ${ev.data}`);
	}
	assert.equal(ev.data, JSON.stringify(v), `${what}: compact JSON`);
	assert.deepEqual(Object.keys(v).sort(), ['data', 'from'],
	    `${what}: envelope keys`);
	return v;
}

// ---------------------------------------------------------------------------

describe('HS256: where the token comes from', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'HS256', BEEP_JWT_SECRET: SECRET,
		BEEP_KEEPALIVE: '1',
	} });

	test('Bearer: subscribe as yourself, post to anyone, list yourself', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const ta = hs(claims(alice)), tb = hs(claims(bob));
		const s = await openSub(h.stack, subPath(alice, 'phone'), bearer(ta));
		assert.equal(s.status, 200, s.text);
		assertPosted(await post(c, alice, 'phone', { data: 'hello' },
		    bearer(tb)), 'bob -> alice');
		assert.equal((await s.stream.nextEvent()).data, 'hello');
		assertPosted(await post(c, alice, 'phone', { data: 'me' },
		    bearer(ta)), 'alice -> alice');
		assert.equal((await s.stream.nextEvent()).data, 'me');
		const l = await list(c, alice, bearer(ta));
		assert.equal(l.status, 200, l.text);
		assert.deepEqual(l.json(), ['phone']);
		// Form posts need the identity too, and carry it.
		const f = await c.postForm(postPath(alice, 'phone'),
		    { data: 'form' }, { headers: bearer(tb) });
		assertPosted(f, 'form post');
		assert.equal((await s.stream.nextEvent()).data, 'form');
		s.stream.close();
	});

	test('cookie (BEEP_JWT_COOKIE default beep_token) on every route', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const ta = hs(claims(alice)), tb = hs(claims(bob));
		const s = await openSub(h.stack, subPath(alice, 'web'), cookie(ta));
		assert.equal(s.status, 200, s.text);
		assertPosted(await post(c, alice, 'web', { data: 'via cookie' },
		    cookie(tb)), 'post with cookie');
		assert.equal((await s.stream.nextEvent()).data, 'via cookie');
		const l = await list(c, alice, cookie(ta));
		assert.equal(l.status, 200, l.text);
		assert.deepEqual(l.json(), ['web']);
		// Only that cookie name counts.
		await assertAll401(h.stack, c, cookie(ta, 'other_token'),
		    'token in another cookie');
		// "Bearer, else the cookie": an Authorization header of another
		// scheme (e.g. Basic auth of a staging front) carries no token,
		// so the cookie is read.
		const basic = { Authorization: 'Basic YWxpY2U6cHc=', ...cookie(tb) };
		assertPosted(await post(c, alice, 'web', { data: 'basic+cookie' },
		    basic), 'post with Basic auth and the cookie');
		assert.equal((await s.stream.nextEvent()).data, 'basic+cookie');
		s.stream.close();
	});

	test('?access_token= on subscribe only; refused on POST and list', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const ta = hs(claims(alice)), tb = hs(claims(bob));
		const s = await openSub(h.stack,
		    `${subPath(alice, 'es')}?access_token=${ta}`);
		assert.equal(s.status, 200, `subscribe with ?access_token=: ${s.text}`);
		assert401(await post(c, alice, 'es', { data: 'no' }),
		    'post without token');
		const q = `?access_token=${tb}`;
		assert401(await c.postJson(`${postPath(alice, 'es')}${q}`,
		    { data: 'query post' }), 'post with ?access_token=');
		assert401(await c.postForm(`${postPath(alice, 'es')}${q}`,
		    { data: 'query form post' }), 'form post with ?access_token=');
		assert401(await c.get(`${listPath(alice)}?access_token=${ta}`),
		    'list with ?access_token=');
		// Nothing refused was delivered: the next event is the real one.
		assertPosted(await post(c, alice, 'es', { data: 'real' }, bearer(tb)),
		    'post with Bearer');
		const ev = await s.stream.nextEvent();
		assert.equal(ev.data, 'real');
		assert.equal(s.stream.received, 1);
		// The query token also works next to other parameters.
		const s2 = await openSub(h.stack, `${subPath(alice, 'es2')}` +
		    `?envelope=1&access_token=${encodeURIComponent(ta)}`);
		assert.equal(s2.status, 200, s2.text);
		s.stream.close();
		s2.stream.close();
	});

	test('no identity: 401 + WWW-Authenticate: Bearer on every route', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		await assertAll401(h.stack, c, {}, 'no token');
		// Not 404 for a missing device, nor 403 for another user: 401 first.
		assert401(await post(c, alice, 'nowhere', { data: 'x' }),
		    'post to a missing device');
		assert401(await openSub(h.stack, subPath(alice, 'x')),
		    'subscribe without token');
		// Other schemes or an empty token are no identity either.
		for (const auth of ['Basic YWxpY2U6cHc=', 'Bearer', 'Bearer ',
		    `Token ${hs(claims(alice))}`]) {
			const r = await post(c, alice, 'd', { data: 'x' },
			    { Authorization: auth });
			assert401(r, `Authorization: ${auth}`);
		}
	});

	test('POST without identity is not delivered', T, async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const ta = hs(claims(alice));
		const s = await openSub(h.stack, subPath(alice, 'p'), bearer(ta));
		assert.equal(s.status, 200, s.text);
		assert401(await post(c, alice, 'p', { data: 'anon' }), 'anon post');
		assert401(await c.postForm(postPath(alice, 'p'), { data: 'anon' }),
		    'anon form post');
		assertPosted(await post(c, alice, 'p', { data: 'signed' },
		    bearer(ta)), 'signed post');
		assert.equal((await s.stream.nextEvent()).data, 'signed');
		assert.equal(s.stream.received, 1);
		s.stream.close();
	});

	test('refused tokens: 401 with error="invalid_token", never delivered', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const good = hs(claims(alice));
		const s = await openSub(h.stack, subPath(alice, 'live'), bearer(good));
		assert.equal(s.status, 200, s.text);
		const now = nowSec();
		// Another token than `good` (same claims would be the same text).
		const signed = hs(claims(alice, { jti: 'another' }));
		const [gh, gp] = signed.split('.');
		const refused = {
			'expired an hour ago': hs(claims(alice, { exp: now - 3600 })),
			'expired past the leeway': hs(claims(alice, { exp: now - 120 })),
			'not valid for an hour (nbf)': hs(claims(alice,
			    { nbf: now + 3600 })),
			'nbf past the leeway': hs(claims(alice, { nbf: now + 120 })),
			'no exp': hs(claims(alice, { exp: undefined })),
			'exp not a number': hs(claims(alice,
			    { exp: String(now + 600) })),
			'no sub': hs(claims(undefined)),
			'signed with another secret': hs(claims(alice), 'HS256',
			    `${SECRET}x`),
			'payload changed after signing': tamper(signed,
			    claims(uid('mallory'))),
			'signature cut': `${gh}.${gp}.`,
			'signature of another token': `${gh}.${gp}.` +
			    good.split('.')[2],
			'alg none': unsigned(claims(alice)),
			'alg None': unsigned(claims(alice), 'None'),
			'alg NONE': unsigned(claims(alice), 'NONE'),
			'alg none with the HS256 signature kept': mint(claims(alice),
			    { alg: 'none', signature: signed.split('.')[2] }),
			'alg none, header only': `${b64u('{"alg":"none"}')}.` +
			    `${b64u(JSON.stringify(claims(alice)))}`,
			'no alg': mint(claims(alice), { header: { alg: undefined },
			    signature: signed.split('.')[2] }),
			'HS384 (not the configured HS256)': hs(claims(alice), 'HS384'),
			'HS512 (not the configured HS256)': hs(claims(alice), 'HS512'),
			'RS256 (not the configured HS256)': mint(claims(alice),
			    { alg: 'RS256', key: RSA.privateKey }),
			'garbage': 'not-a-token',
			'two parts': `${gh}.${gp}`,
			'four parts': `${signed}.x`,
			'header not JSON': `${b64u('{alg')}.${gp}.` +
			    signed.split('.')[2],
			'empty parts': '..',
			'long': `${gh}.${b64u(JSON.stringify(claims(alice,
			    { pad: 'x'.repeat(6000) })))}.${signed.split('.')[2]}`,
		};
		for (const [what, tok] of Object.entries(refused)) {
			const hdr = bearer(tok);
			assert401(await openSub(h.stack, subPath(alice, 'live'), hdr),
			    `${what}: subscribe`, { refused: true });
			assert401(await post(c, alice, 'live', { data: what }, hdr),
			    `${what}: post`, { refused: true });
			assert401(await list(c, alice, hdr), `${what}: list`,
			    { refused: true });
		}
		// The same by cookie and, for subscribe, by query.
		for (const what of ['expired an hour ago', 'alg none',
		    'signed with another secret', 'HS384 (not the configured HS256)']) {
			const tok = refused[what];
			assert401(await post(c, alice, 'live', { data: what },
			    cookie(tok)), `${what} (cookie): post`, { refused: true });
			assert401(await list(c, alice, cookie(tok)),
			    `${what} (cookie): list`, { refused: true });
			assert401(await openSub(h.stack, `${subPath(alice, 'live')}` +
			    `?access_token=${encodeURIComponent(tok)}`),
			    `${what} (query): subscribe`, { refused: true });
		}
		// Bearer comes first: a refused Bearer is not rescued by a good
		// cookie.
		assert401(await post(c, alice, 'live', { data: 'mixed' },
		    { ...bearer(refused['alg none']), ...cookie(good) }),
		    'refused Bearer + good cookie', { refused: true });
		// Nothing refused reached the stream, which is still fine.
		assertPosted(await post(c, alice, 'live', { data: 'marker' },
		    bearer(good)), 'marker');
		assert.equal((await s.stream.nextEvent()).data, 'marker');
		assert.equal(s.stream.received, 1, 'only the marker was delivered');
		s.stream.close();
	});

	test('clock skew: exp/nbf within the default 30 s leeway are accepted', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const now = nowSec();
		const justExpired = hs(claims(alice, { exp: now - 5 }));
		const almostValid = hs(claims(alice, { nbf: now + 5 }));
		const s = await openSub(h.stack, subPath(alice, 'd'),
		    bearer(justExpired));
		assert.equal(s.status, 200, `exp 5 s ago: ${s.text}`);
		assertPosted(await post(c, alice, 'd', { data: 'nbf' },
		    bearer(almostValid)), 'nbf in 5 s');
		assert.equal((await s.stream.nextEvent()).data, 'nbf');
		s.stream.close();
	});

	test('subscribe and list only as yourself: 403', T, async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const ta = hs(claims(alice)), tb = hs(claims(bob));
		const sb = await openSub(h.stack, subPath(bob, 'phone'), bearer(tb));
		assert.equal(sb.status, 200, sb.text);
		assertError(await openSub(h.stack, subPath(bob, 'phone'), bearer(ta)),
		    403, 'alice subscribes as bob');
		assertError(await openSub(h.stack, subPath(bob, 'other'),
		    cookie(ta)), 403, 'alice subscribes as bob (cookie)');
		assertError(await openSub(h.stack,
		    `${subPath(bob, 'q')}?access_token=${ta}`), 403,
		    'alice subscribes as bob (query)');
		assertError(await list(c, bob, bearer(ta)), 403, 'alice lists bob');
		// Exact match: case and prefixes matter.
		assertError(await openSub(h.stack, subPath(alice.toUpperCase(), 'd'),
		    bearer(ta)), 403, 'upper-cased user');
		assertError(await openSub(h.stack, subPath(`${alice}x`, 'd'),
		    bearer(ta)), 403, 'user with a suffix');
		assertError(await openSub(h.stack, subPath(alice.slice(0, -1), 'd'),
		    bearer(ta)), 403, 'user prefix');
		// Bob was not disturbed, and the list shows only his device.
		const l = await list(c, bob, bearer(tb));
		assert.equal(l.status, 200, l.text);
		assert.deepEqual(l.json(), ['phone']);
		assertPosted(await post(c, bob, 'phone', { data: 'still bob' },
		    bearer(ta)), 'alice posts to bob');
		assert.equal((await sb.stream.nextEvent()).data, 'still bob');
		sb.stream.close();
	});

	test('the user is compared after percent-decoding', T, async () => {
		const c = h.stack.client();
		const zoe = `zoë/${uid('z')}`;      // non-ASCII and a slash
		const tz = hs(claims(zoe));
		const s = await openSub(h.stack, subPath(zoe, 'd'), bearer(tz));
		assert.equal(s.status, 200, s.text);
		const l = await list(c, zoe, bearer(tz));
		assert.equal(l.status, 200, l.text);
		assert.deepEqual(l.json(), ['d']);
		s.stream.close();
	});

	test('a device claim pins the device: 403 on another device', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const pinned = hs(claims(alice, { device: 'phone' }));
		const free = hs(claims(alice));
		const s = await openSub(h.stack, subPath(alice, 'phone'),
		    bearer(pinned));
		assert.equal(s.status, 200, s.text);
		assertError(await openSub(h.stack, subPath(alice, 'laptop'),
		    bearer(pinned)), 403, 'pinned phone subscribes laptop');
		assertError(await openSub(h.stack, subPath(alice, 'Phone'),
		    bearer(pinned)), 403, 'pinned phone subscribes Phone');
		assertError(await openSub(h.stack, subPath(uid('bob'), 'phone'),
		    bearer(pinned)), 403, 'pinned phone subscribes bob/phone');
		// Listing yourself and posting are not limited by the pin.
		const l = await list(c, alice, bearer(pinned));
		assert.equal(l.status, 200, l.text);
		assertPosted(await post(c, alice, 'phone', { data: 'pinned' },
		    bearer(pinned)), 'pinned post');
		assert.equal((await s.stream.nextEvent()).data, 'pinned');
		// Without the claim any device of yours is fine.
		const s2 = await openSub(h.stack, subPath(alice, 'laptop'),
		    bearer(free));
		assert.equal(s2.status, 200, s2.text);
		s.stream.close();
		s2.stream.close();
	});

	test('envelope=1: the verified sender, unforgeable; plain data unchanged',
	    T, async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob'), carol = uid('carol');
		const ta = hs(claims(alice));
		const tb = hs(claims(bob, { device: 'bob-laptop' }));
		const tc = hs(claims(carol));
		const BOB = { user: bob, device: 'bob-laptop' };
		const CAROL = { user: carol, device: null };
		// Two streams of one device: one asks for envelopes.
		const env = await openSub(h.stack,
		    `${subPath(alice, 'phone')}?envelope=1`, bearer(ta));
		assert.equal(env.status, 200, env.text);
		const plain = await openSub(h.stack, subPath(alice, 'phone'),
		    bearer(ta));
		assert.equal(plain.status, 200, plain.text);

		const fake = { user: 'mallory', device: 'm' };
		const cases = [
			// [what, token, body, expected from, data in envelope,
			//  plain data]
			['string', tb, { data: 'hi' }, BOB, 'hi', 'hi'],
			['unpinned sender: device null', tc, { data: 'c' }, CAROL,
			    'c', 'c'],
			['fake "from" inside the data', tb,
			    { data: { from: fake, data: 'fake' } }, BOB,
			    { from: fake, data: 'fake' },
			    JSON.stringify({ from: fake, data: 'fake' })],
			['JSON text in a string stays a string', tb,
			    { data: '{"from":{"user":"mallory"},"data":1}' }, BOB,
			    '{"from":{"user":"mallory"},"data":1}',
			    '{"from":{"user":"mallory"},"data":1}'],
			['multi-line string', tb, { data: 'line1\nline2\r\nline3' },
			    BOB, 'line1\nline2\r\nline3', 'line1\nline2\nline3'],
			['number', tb, { data: 42 }, BOB, 42, '42'],
			['true', tb, { data: true }, BOB, true, 'true'],
			['array', tb, { data: [1, 'two', null] }, BOB,
			    [1, 'two', null], '[1,"two",null]'],
			['nested object', tb, { data: { a: { b: [null, false] } } },
			    BOB, { a: { b: [null, false] } }, '{"a":{"b":[null,false]}}'],
			['sender\'s own identity in a claim-like key', tc,
			    { data: { user: bob, device: 'bob-laptop' } }, CAROL,
			    { user: bob, device: 'bob-laptop' },
			    JSON.stringify({ user: bob, device: 'bob-laptop' })],
		];
		for (const [what, tok, body, from, data, plainData] of cases) {
			assertPosted(await post(c, alice, 'phone', body, bearer(tok)),
			    what);
			const e = envelope(await env.stream.nextEvent(), what);
			assert.deepEqual(e.from, from, `${what}: from`);
			assert.deepEqual(e.data, data, `${what}: data`);
			assert.equal((await plain.stream.nextEvent()).data, plainData,
			    `${what}: plain stream`);
		}

		// An event name stays the event name, on both.
		assertPosted(await post(c, alice, 'phone',
		    { data: 'sdp', event: 'offer' }, bearer(tb)), 'event');
		let ev = await env.stream.nextEvent();
		assert.equal(ev.type, 'offer');
		assert.deepEqual(envelope(ev, 'event'), { from: BOB, data: 'sdp' });
		ev = await plain.stream.nextEvent();
		assert.equal(ev.type, 'offer');
		assert.equal(ev.data, 'sdp');

		// A "from" next to "data" in the body, as JSON or as a form field,
		// is ignored or refused; it never becomes the sender.
		const forged = [
			['JSON body with a top-level from', () => post(c, alice, 'phone',
			    { data: 'top', from: fake }, bearer(tb)), 'top'],
			['form body with a from field', () => c.postForm(
			    postPath(alice, 'phone'),
			    { data: 'form', from: JSON.stringify(fake), user: 'mallory',
			        device: 'm' }, { headers: bearer(tb) }), 'form'],
		];
		for (const [what, send, data] of forged) {
			const r = await send();
			if (r.status === 400)
				continue;
			assertPosted(r, what);
			const e = envelope(await env.stream.nextEvent(), what);
			assert.deepEqual(e, { from: BOB, data }, what);
			assert.equal((await plain.stream.nextEvent()).data, data, what);
		}
		env.stream.close();
		plain.stream.close();
	});

	test('envelope on replay and on messages held in the grace window', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const ta = hs(claims(alice)), tb = hs(claims(bob));
		const BOB = { user: bob, device: null };
		const a = await openSub(h.stack, subPath(alice, 'r'), bearer(ta));
		assert.equal(a.status, 200, a.text);
		assertPosted(await post(c, alice, 'r', { data: 'm1' }, bearer(tb)),
		    'm1');
		assertPosted(await post(c, alice, 'r', { data: 'm2' }, bearer(tb)),
		    'm2');
		const m1 = await a.stream.nextEvent();
		const m2 = await a.stream.nextEvent();
		assert.deepEqual([m1.data, m2.data], ['m1', 'm2']);
		a.stream.close();

		// Replay after m1, with envelopes: m2 comes stamped with bob.
		const b = await openSub(h.stack, `${subPath(alice, 'r')}?envelope=1`,
		    { ...bearer(ta), 'Last-Event-ID': m1.lastEventId });
		assert.equal(b.status, 200, b.text);
		let ev = await b.stream.nextEvent();
		assert.equal(ev.lastEventId, m2.lastEventId, 'replayed m2');
		assert.deepEqual(envelope(ev, 'replayed m2'),
		    { from: BOB, data: 'm2' });
		b.stream.close();

		// Once the device is in grace, a post is held (202); it arrives
		// stamped when the device comes back.
		await poll(async () => {
			const l = await list(c, alice, bearer(ta));
			return l.status === 200 && l.json().length === 0;
		}, { timeout: 15000, what: 'device gone from the list' });
		assertPosted(await post(c, alice, 'r', { data: 'm3' }, bearer(tb)),
		    'm3 held', 202);
		const d = await openSub(h.stack, `${subPath(alice, 'r')}?envelope=1`,
		    { ...bearer(ta), 'Last-Event-ID': m2.lastEventId });
		assert.equal(d.status, 200, d.text);
		ev = await d.stream.nextEvent();
		assert.deepEqual(envelope(ev, 'held m3'), { from: BOB, data: 'm3' });
		d.stream.close();
	});

	test('healthz and OPTIONS stay open', T, async () => {
		const c = h.stack.client();
		for (const headers of [{}, bearer('garbage'),
		    bearer(unsigned(claims('x')))]) {
			const r = await c.get('/healthz', { headers });
			assert.equal(r.status, 200, `healthz ${JSON.stringify(headers)}`);
			for (const [p, m] of [[subPath('u', 'd'), 'GET'],
			    [listPath('u'), 'GET'], [postPath('u', 'd'), 'POST']]) {
				const o = await c.options(p, { headers: { ...headers,
				    Origin: 'https://app.example',
				    'Access-Control-Request-Method': m,
				    'Access-Control-Request-Headers':
				        'authorization, content-type' } });
				assert.equal(o.status, 204, `OPTIONS ${p}: ${o.text}`);
			}
		}
	});

	test('the secret and header tokens do not appear in the log', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const tok = hs(claims(alice));
		const s = await openSub(h.stack, subPath(alice, 'log'), bearer(tok));
		assert.equal(s.status, 200, s.text);
		await post(c, alice, 'log', { data: 'x' }, bearer(tok));
		await post(c, alice, 'log', { data: 'x' }, cookie(tok));
		await post(c, alice, 'log', { data: 'x' },
		    bearer(hs(claims(alice, { exp: nowSec() - 3600 }))));
		await s.stream.nextEvent();
		s.stream.close();
		const logText = h.stack.backendLog.join('\n');
		assert.ok(!logText.includes(SECRET), 'secret in the log');
		assert.ok(!logText.includes(tok.split('.')[2]),
		    'a header/cookie token signature in the log');
	});
});

describe('HS512 with iss/aud, custom cookie, no query token, list any', () => {
	const ISS = 'https://issuer.example', AUD = 'beep';
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'HS512', BEEP_JWT_SECRET: SECRET,
		BEEP_JWT_ISSUER: ISS, BEEP_JWT_AUDIENCE: AUD,
		BEEP_JWT_COOKIE: 'sess', BEEP_JWT_QUERY: '0',
		BEEP_LIST_POLICY: 'any',
	} });
	const tok = (sub, extra = {}, alg = 'HS512') =>
	    hs(claims(sub, { iss: ISS, aud: AUD, ...extra }), alg);

	test('right iss and aud (string or array) are accepted', T, async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const s = await openSub(h.stack, subPath(alice, 'd'),
		    bearer(tok(alice)));
		assert.equal(s.status, 200, s.text);
		for (const aud of [AUD, [AUD], ['other', AUD]]) {
			const r = await post(c, alice, 'd', { data: JSON.stringify(aud) },
			    bearer(tok(alice, { aud })));
			assertPosted(r, `aud ${JSON.stringify(aud)}`);
			assert.equal((await s.stream.nextEvent()).data,
			    JSON.stringify(aud));
		}
		s.stream.close();
	});

	test('wrong or missing iss/aud, or another HS alg -> 401', T, async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const cases = {
			'wrong aud': tok(alice, { aud: 'other' }),
			'aud array without ours': tok(alice, { aud: ['x', 'y'] }),
			'aud prefix': tok(alice, { aud: 'bee' }),
			'aud longer': tok(alice, { aud: 'beep2' }),
			'aud empty array': tok(alice, { aud: [] }),
			'no aud': tok(alice, { aud: undefined }),
			'wrong iss': tok(alice, { iss: 'https://evil.example' }),
			'iss with a trailing slash': tok(alice, { iss: `${ISS}/` }),
			'no iss': tok(alice, { iss: undefined }),
			'HS256 (not the configured HS512)': tok(alice, {}, 'HS256'),
			'HS384 (not the configured HS512)': tok(alice, {}, 'HS384'),
			'alg none': unsigned(claims(alice, { iss: ISS, aud: AUD })),
		};
		for (const [what, t] of Object.entries(cases))
			await assertAll401(h.stack, c, bearer(t), what,
			    { refused: true });
	});

	test('the token cookie is BEEP_JWT_COOKIE; the default name is not read',
	    T, async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const t = tok(alice);
		const s = await openSub(h.stack, subPath(alice, 'c'),
		    cookie(t, 'sess'));
		assert.equal(s.status, 200, s.text);
		assertPosted(await post(c, alice, 'c', { data: 'sess' },
		    cookie(t, 'sess')), 'post with the sess cookie');
		assert.equal((await s.stream.nextEvent()).data, 'sess');
		await assertAll401(h.stack, c, cookie(t), 'beep_token cookie');
		s.stream.close();
	});

	test('BEEP_JWT_QUERY=0: ?access_token= is not read', T, async () => {
		const alice = uid('alice');
		assert401(await openSub(h.stack,
		    `${subPath(alice, 'q')}?access_token=${tok(alice)}`),
		'subscribe with ?access_token=');
	});

	test('BEEP_LIST_POLICY=any: anyone with an identity lists anyone', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const sb = await openSub(h.stack, subPath(bob, 'tablet'),
		    bearer(tok(bob)));
		assert.equal(sb.status, 200, sb.text);
		const l = await list(c, bob, bearer(tok(alice)));
		assert.equal(l.status, 200, l.text);
		assert.deepEqual(l.json(), ['tablet']);
		assert401(await list(c, bob), 'list without identity');
		assert401(await list(c, bob, bearer(tok(alice, { aud: 'x' }))),
		    'list with a refused token', { refused: true });
		// Subscribing is still only as yourself.
		assertError(await openSub(h.stack, subPath(bob, 'tablet'),
		    bearer(tok(alice))), 403, 'alice subscribes as bob');
		sb.stream.close();
	});
});

describe('HS384', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'HS384', BEEP_JWT_SECRET: SECRET,
	} });

	test('HS384 accepted, HS256/HS512 with the same secret refused', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const s = await openSub(h.stack, subPath(alice, 'd'),
		    bearer(hs(claims(alice), 'HS384')));
		assert.equal(s.status, 200, s.text);
		assertPosted(await post(c, alice, 'd', { data: '384' },
		    bearer(hs(claims(uid('bob')), 'HS384'))), 'HS384 post');
		assert.equal((await s.stream.nextEvent()).data, '384');
		for (const alg of ['HS256', 'HS512'])
			await assertAll401(h.stack, c, bearer(hs(claims(alice), alg)),
			    alg, { refused: true });
		s.stream.close();
	});
});

// Algorithm confusion: a verifier that lets the token's alg choose would
// check an HS256 token with the public key's PEM text as the HMAC secret.
function confusionTokens(sub, publicPem) {
	const out = {};
	for (const alg of ['HS256', 'HS384', 'HS512']) {
		out[`${alg} keyed with the public PEM`] =
		    hs(claims(sub), alg, publicPem);
		out[`${alg} keyed with the public PEM, no final newline`] =
		    hs(claims(sub), alg, publicPem.trimEnd());
	}
	return out;
}

// A key rotation: the new key is BEEP_JWT_KEY, the one before it
// BEEP_JWT_KEY_PREVIOUS; tokens of both are taken (those of the old one
// until they expire), no other key's, and neither key as an HMAC secret.
describe('RS256 during a key rotation (BEEP_JWT_KEY_PREVIOUS)', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'RS256',
		BEEP_JWT_KEY: RSA_OTHER_PEM_FILE, BEEP_JWT_KEY_PREVIOUS: RSA_PEM_FILE,
	} });

	test('tokens of the new key and of the one before are taken; no ' +
	    'other', T, async () => {
		const alice = uid('alice');
		for (const [what, key] of [['the new key', RSA_OTHER.privateKey],
		    ['the key before', RSA.privateKey]]) {
			const s = await openSub(h.stack, subPath(alice, 'rot'),
			    bearer(mint(claims(alice), { alg: 'RS256', key })));
			assert.equal(s.status, 200, `${what}: ${s.text}`);
			s.stream.close();
		}
		const cases = {
			...confusionTokens(alice, RSA.publicPem),
			'a third RSA key': mint(claims(alice),
			    { alg: 'RS256', key: rsaPair().privateKey }),
		};
		for (const [what, token] of Object.entries(cases)) {
			const r = await openSub(h.stack, subPath(alice, 'rot2'),
			    bearer(token));
			assertError(r, 401, what);
		}
	});
});

describe('RS256 with a PEM public key file', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'RS256', BEEP_JWT_KEY: RSA_PEM_FILE,
	} });
	const rs = (payload, key = RSA.privateKey, alg = 'RS256') =>
	    mint(payload, { alg, key });

	test('RS256 happy path: subscribe, post, envelope', T, async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const s = await openSub(h.stack,
		    `${subPath(alice, 'rsa')}?envelope=1`,
		    bearer(rs(claims(alice))));
		assert.equal(s.status, 200, s.text);
		assertPosted(await post(c, alice, 'rsa', { data: 'signed' },
		    bearer(rs(claims(bob, { device: 'b1' })))), 'RS256 post');
		assert.deepEqual(envelope(await s.stream.nextEvent(), 'rsa'),
		    { from: { user: bob, device: 'b1' }, data: 'signed' });
		s.stream.close();
	});

	test('algorithm confusion and other algs/keys -> 401', T, async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const cases = {
			...confusionTokens(alice, RSA.publicPem),
			'alg none': unsigned(claims(alice)),
			'signed by another RSA key': rs(claims(alice),
			    RSA_OTHER.privateKey),
			'RS384 with the right key': rs(claims(alice), RSA.privateKey,
			    'RS384'),
			'ES256': mint(claims(alice), { alg: 'ES256',
			    key: EC.privateKey }),
			'RS256 header, HMAC signature': mint(claims(alice),
			    { alg: 'RS256', signature: hs(claims(alice), 'HS256',
			        RSA.publicPem).split('.')[2] }),
			'expired': rs(claims(alice, { exp: nowSec() - 3600 })),
			'no exp': rs(claims(alice, { exp: undefined })),
		};
		for (const [what, t] of Object.entries(cases))
			await assertAll401(h.stack, c, bearer(t), what,
			    { refused: true });
	});
});

describe('ES256 with a PEM public key file', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'ES256', BEEP_JWT_KEY: EC_PEM_FILE,
	} });
	const es = (payload, key = EC.privateKey) =>
	    mint(payload, { alg: 'ES256', key });

	test('ES256 happy path: subscribe, post, envelope', T, async () => {
		const c = h.stack.client();
		const alice = uid('alice'), bob = uid('bob');
		const s = await openSub(h.stack,
		    `${subPath(alice, 'ec')}?envelope=1`, cookie(es(claims(alice))));
		assert.equal(s.status, 200, s.text);
		assertPosted(await post(c, alice, 'ec', { data: { sdp: 'v=0' } },
		    bearer(es(claims(bob)))), 'ES256 post');
		assert.deepEqual(envelope(await s.stream.nextEvent(), 'ec'),
		    { from: { user: bob, device: null }, data: { sdp: 'v=0' } });
		s.stream.close();
	});

	test('algorithm confusion, forged and foreign signatures -> 401', T,
	    async () => {
		const c = h.stack.client();
		const alice = uid('alice');
		const input = mint(claims(alice), { alg: 'ES256', signature: '' })
		    .slice(0, -1);
		const cases = {
			...confusionTokens(alice, EC.publicPem),
			'alg none': unsigned(claims(alice)),
			'signed by another EC key': es(claims(alice), EC_OTHER.privateKey),
			'all-zero signature (r = s = 0)':
			    `${input}.${b64u(Buffer.alloc(64))}`,
			'RS256': mint(claims(alice), { alg: 'RS256',
			    key: RSA.privateKey }),
			'not yet valid': es(claims(alice, { nbf: nowSec() + 3600 })),
		};
		for (const [what, t] of Object.entries(cases))
			await assertAll401(h.stack, c, bearer(t), what,
			    { refused: true });
	});
});

describe('BEEP_AUTH=none (default): the open API', () => {
	const h = useStack({ before, after });

	test('no identity needed; tokens ignored; envelope "from" is null', T,
	    async () => {
		const c = h.stack.client();
		const u = uid('user');
		const env = await openSub(h.stack, `${subPath(u, 'd')}?envelope=1`);
		assert.equal(env.status, 200, env.text);
		const plain = await openSub(h.stack, subPath(u, 'd'),
		    bearer('garbage'));
		assert.equal(plain.status, 200, plain.text);
		assertPosted(await post(c, u, 'd', { data: { from: 'me' } },
		    bearer(unsigned(claims('x')))), 'post with a junk token');
		assert.deepEqual(envelope(await env.stream.nextEvent(), 'none'),
		    { from: null, data: { from: 'me' } });
		assert.equal((await plain.stream.nextEvent()).data, '{"from":"me"}');
		const l = await list(c, u);
		assert.equal(l.status, 200, l.text);
		assert.deepEqual(l.json(), ['d']);
		env.stream.close();
		plain.stream.close();
	});
});

describe('refused configurations', () => {
	const L = ['--listen', 'unix:@DIR@/beep.sock'];
	async function mustNotStart(env, what) {
		const r = await runBinary(L, { env });
		assertRefusedStart(r, what);
		assert.ok(!r.stderr.includes(SECRET), `${what}: secret in stderr`);
	}

	test('unknown values of the new options', T, async () => {
		for (const env of [{ BEEP_AUTH: 'bogus' }, { BEEP_AUTH: 'JWT' },
		    { BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET, BEEP_JWT_ALG: 'none' },
		    { BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET, BEEP_JWT_ALG: 'RS512' },
		    { BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET, BEEP_JWT_ALG: 'hs256' },
		    { BEEP_LIST_POLICY: 'all' }, { BEEP_JWT_QUERY: '2' },
		    { BEEP_RATE: '-1' }, { BEEP_RATE: 'fast' }])
			await mustNotStart(env, JSON.stringify(env));
	});

	test('jwt mode without a secret or key file', T, async () => {
		for (const env of [
			{ BEEP_AUTH: 'jwt' },                               // no secret
			{ BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: '' },
			{ BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'RS256' },        // no key
			{ BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'RS256',
			    BEEP_JWT_KEY: `${keys.dir}/missing.pem` },
			{ BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'ES256',
			    BEEP_JWT_KEY: keys.write('empty.pem', '') },
		])
			await mustNotStart(env, JSON.stringify(env));
	});

	// The contract does not say when a key file that is no key is noticed;
	// either way it must fail closed: refused at start, or every token
	// refused (the secret-as-key fallback of a sloppy verifier would not).
	test('a key file that is no PEM key: refused at start or fails closed', T,
	    async (t) => {
		const garbage = keys.write('garbage.pem', `${SECRET}\n`);
		for (const alg of ['RS256', 'ES256']) {
			const env = { BEEP_AUTH: 'jwt', BEEP_JWT_ALG: alg,
			    BEEP_JWT_KEY: garbage };
			const r = await runBinary(L, { env });
			if (!r.sawReady) {
				assert.notEqual(r.code, 0, `${alg}: exit code`);
				assert.equal(r.signal, null, `${alg}: no crash`);
				continue;
			}
			t.diagnostic(`${alg} with a garbage key file starts`);
			const stack = await startStack({ env }, t);
			const c = stack.client();
			const u = uid('u');
			for (const tok of [
				mint(claims(u), { alg, key: alg === 'RS256' ?
				    RSA.privateKey : EC.privateKey }),
				hs(claims(u), 'HS256', `${SECRET}\n`),
				hs(claims(u), 'HS256', SECRET),
				unsigned(claims(u)),
			])
				await assertAll401(stack, c, bearer(tok), `${alg} garbage key`,
				    { refused: true });
		}
	});
});
