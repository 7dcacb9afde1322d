// Issue 8 (2), cross-site request forgery with cookie auth, through Caddy
// (BEEP_AUTH=jwt, BEEP_CORS_ORIGINS=https://app.example):
//   - a form POST or JSON POST from `Origin: https://evil.example` carrying
//     the victim's beep_token cookie gets 403 with a JSON error, and nothing
//     reaches the victim's device;
//   - a cross-site EventSource with credentials (Origin evil, or
//     Sec-Fetch-Site: cross-site, or neither header) gets 403;
//   - accepted with the cookie: Sec-Fetch-Site: same-origin (a same-origin
//     EventSource sends no Origin), an Origin equal to the service's own
//     (http://<Host>), an allow-listed Origin;
//   - bearer and ?access_token= are not ambient: accepted from any Origin.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
	useStack, uid, postPath, listPath, subPath, isJson, openSub,
} from './harness.mjs';
import { mint, claims } from './jwt.mjs';

const T = { timeout: 60000 };
const SECRET = crypto.randomBytes(32).toString('hex');
const APP = 'https://app.example';
const EVIL = 'https://evil.example';

function assert403(r, what) {
	assert.equal(r.status, 403, `${what}: status (${r.text})`);
	assert.ok(isJson(r), `${what}: JSON error`);
	assert.equal(typeof JSON.parse(r.text).error, 'string', what);
}

describe('cookie credentials need a same-origin or allowed request', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET, BEEP_CORS_ORIGINS: APP,
		BEEP_KEEPALIVE: '1',
	} });
	const token = (u) => mint(claims(u), { key: SECRET });
	const own = () => `http://127.0.0.1:${h.stack.port}`;

	// The victim's stream, opened with a bearer token; the first event it
	// receives must be `marker`, posted last by the test.
	async function victim() {
		const v = uid('victim');
		const s = await openSub(h.stack, subPath(v, 'd'),
		    { Authorization: `Bearer ${token(v)}` });
		assert.equal(s.status, 200, s.text);
		return { v, stream: s.stream };
	}

	async function assertOnlyMarker(c, v, stream) {
		const r = await c.postJson(postPath(v, 'd'), { data: 'marker' },
		    { headers: { Authorization: `Bearer ${token(v)}` } });
		assert.equal(r.status, 200, r.text);
		const ev = await stream.nextEvent();
		assert.equal(ev.data, 'marker', 'nothing forged arrived first');
		stream.close();
	}

	test('cross-site form and JSON POST with the cookie: 403, not delivered',
	    T, async () => {
		const c = h.stack.client();
		const { v, stream } = await victim();
		const cookie = `beep_token=${token(v)}`;
		for (const headers of [
			{ Origin: EVIL, Cookie: cookie },
			{ Origin: EVIL, Cookie: cookie, 'Sec-Fetch-Site': 'cross-site' },
			{ Origin: 'null', Cookie: cookie },
			{ Cookie: cookie },                        // no Origin at all
			{ Cookie: cookie, 'Sec-Fetch-Site': 'same-site' },
		]) {
			assert403(await c.postForm(postPath(v, 'd'), { data: 'forged' },
			    { headers }), `form ${JSON.stringify(headers.Origin)}`);
			assert403(await c.postJson(postPath(v, 'd'), { data: 'forged' },
			    { headers }), `json ${JSON.stringify(headers.Origin)}`);
		}
		await assertOnlyMarker(c, v, stream);
	});

	test('cross-site EventSource with credentials: 403', T, async () => {
		const v = uid('victim');
		const cookie = `beep_token=${token(v)}`;
		for (const headers of [
			{ Origin: EVIL, Cookie: cookie, 'Sec-Fetch-Site': 'cross-site' },
			{ Origin: EVIL, Cookie: cookie },
			{ Cookie: cookie },
		])
			assert403(await openSub(h.stack, subPath(v, 'd'), headers),
			    `subscribe ${JSON.stringify(headers)}`);
		const c = h.stack.client();
		assert403(await c.get(listPath(v),
		    { headers: { Origin: EVIL, Cookie: cookie } }), 'list');
		// Nothing was subscribed.
		const l = await c.get(listPath(v),
		    { headers: { Authorization: `Bearer ${token(v)}` } });
		assert.deepEqual(l.json(), []);
	});

	test('same origin (Sec-Fetch-Site or own Origin) and the allow-list: ok',
	    T, async () => {
		const c = h.stack.client();
		const { v, stream } = await victim();
		const cookie = `beep_token=${token(v)}`;
		const sender = uid('sender');
		const sc = `beep_token=${token(sender)}`;
		// Same-origin EventSource: no Origin, but Sec-Fetch-Site.
		const s = await openSub(h.stack, subPath(v, 'd2'),
		    { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' });
		assert.equal(s.status, 200, s.text);
		s.stream.close();
		const s2 = await openSub(h.stack, subPath(v, 'd3'),
		    { Cookie: cookie, Origin: APP, 'Sec-Fetch-Site': 'cross-site' });
		assert.equal(s2.status, 200, s2.text);
		assert.equal(s2.headers['access-control-allow-origin'], APP);
		assert.equal(s2.headers['access-control-allow-credentials'], 'true');
		s2.stream.close();
		for (const [what, headers, body] of [
			['form, Sec-Fetch-Site', { Cookie: sc,
			    'Sec-Fetch-Site': 'same-origin' }, 'one'],
			['json, own Origin', { Cookie: sc, Origin: own() }, 'two'],
			['json, allowed Origin', { Cookie: sc, Origin: APP,
			    'Sec-Fetch-Site': 'cross-site' }, 'three'],
		]) {
			const r = what.startsWith('form')
			    ? await c.postForm(postPath(v, 'd'), { data: body },
			        { headers })
			    : await c.postJson(postPath(v, 'd'), { data: body },
			        { headers });
			assert.equal(r.status, 200, `${what}: ${r.text}`);
			assert.equal((await stream.nextEvent()).data, body, what);
		}
		stream.close();
	});

	test('bearer and query tokens from another site: not ambient, ok', T,
	    async () => {
		const c = h.stack.client();
		const { v, stream } = await victim();
		const r = await c.postJson(postPath(v, 'd'), { data: 'bearer' },
		    { headers: { Origin: EVIL, 'Sec-Fetch-Site': 'cross-site',
		        Authorization: `Bearer ${token(uid('s'))}` } });
		assert.equal(r.status, 200, r.text);
		assert.equal((await stream.nextEvent()).data, 'bearer');
		stream.close();
		const s = await openSub(h.stack,
		    `${subPath(v, 'q')}?access_token=${token(v)}`,
		    { Origin: EVIL, 'Sec-Fetch-Site': 'cross-site' });
		assert.equal(s.status, 200, s.text);
		s.stream.close();
	});
});
