// Issue 8 (1), BEEP_AUTH=jwt through Caddy: no token can crash the service.
//   - a token whose header or payload decodes to JSON nested ~1,700 deep
//     (`Bearer <base64url("[" x 1700)>.e30.AAAA`, or `{"":` x 1500) once overflowed a worker's
//     128 KiB stack inside libjwt's JSON parse and killed the process; sent
//     as the Authorization header, the beep_token cookie and ?access_token=,
//     it now gets 401 (invalid_token, a JSON error), and the service lives
//     on: a valid token still works, and the backend exits 0 on SIGTERM
//     (the harness checks the exit and the log);
//   - BEEP_MAX_TOKEN (default 8192 bytes): a valid token of exactly 8192
//     bytes is accepted from all three places, one of 8193 gets 401
//     "token too long" (checked before any parsing).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
	useStack, uid, postPath, listPath, subPath, isJson, openSub,
} from './harness.mjs';
import { mint, claims, b64u } from './jwt.mjs';

const T = { timeout: 60000 };
const SECRET = crypto.randomBytes(32).toString('hex');
const MAX_TOKEN = 8192;

function assert401(r, what, why) {
	assert.equal(r.status, 401, `${what}: status (${r.text})`);
	assert.ok(isJson(r), `${what}: JSON error`);
	const body = JSON.parse(r.text);
	assert.equal(typeof body.error, 'string', `${what}: {"error": ...}`);
	if (why)
		assert.match(body.error, why, `${what}: error says why`);
	assert.match(r.headers['www-authenticate'] || '',
	    /^Bearer .*error="invalid_token"/, `${what}: WWW-Authenticate`);
}

// The three places a token can come from, as request options.
const places = {
	bearer: (t) => ({ headers: { Authorization: `Bearer ${t}` }, query: '' }),
	cookie: (t) => ({
		headers: { Cookie: `beep_token=${t}`,
		    'Sec-Fetch-Site': 'same-origin' },
		query: '',
	}),
	query: (t) => ({ headers: {}, query: `?access_token=${t}` }),
};

// Subscribe as user with the token from `place`; POST and list too where
// the place allows it (the query token is for subscribe only).
async function tryAll(stack, c, place, token, user) {
	const { headers, query } = places[place](token);
	const out = {};
	out.subscribe = await openSub(stack, subPath(user, 'd') + query, headers);
	if (place !== 'query') {
		out.post = await c.postJson(postPath(user, 'd'), { data: 'x' },
		    { headers });
		out.list = await c.get(listPath(user), { headers });
	}
	return out;
}

// A valid HS256 token for sub of exactly `len` bytes: a "pad" claim grows
// the payload, a "kid" header field fills the remainder base64 leaves.
function tokenOfLength(sub, len) {
	for (let kid = 0; kid < 4; kid++) {
		for (let pad = 0; pad < len; pad++) {
			const header = kid ? { kid: 'k'.repeat(kid) } : {};
			const t = mint(claims(sub, { pad: 'p'.repeat(pad) }),
			    { alg: 'HS256', key: SECRET, header });
			if (t.length === len)
				return t;
			if (t.length > len)
				break;
		}
	}
	throw new Error(`no token of ${len} bytes`);
}

describe('hostile tokens, BEEP_AUTH=jwt', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
	} });

	const deepArray = '['.repeat(1700);
	const deepObject = '{"":'.repeat(1500); // within BEEP_MAX_TOKEN
	const hostile = {
		'header "[" x 1700': `${b64u(deepArray)}.e30.AAAA`,
		'payload "[" x 1700': `${b64u('{"alg":"HS256"}')}.` +
		    `${b64u(deepArray)}.AAAA`,
		'payload {"": x 1500': `${b64u('{"alg":"HS256"}')}.` +
		    `${b64u(deepObject)}.AAAA`,
	};

	for (const [name, token] of Object.entries(hostile)) {
		for (const place of Object.keys(places)) {
			test(`${name} as ${place}: 401, and the service lives`, T,
			    async () => {
				const c = h.stack.client();
				const u = uid('victim');
				const got = await tryAll(h.stack, c, place, token, u);
				for (const [kind, r] of Object.entries(got))
					assert401(r, `${place} ${kind}`, /deep|malformed/);
				// Still alive: a good token from the same place works.
				const good = mint(claims(u), { key: SECRET });
				const ok = await tryAll(h.stack, c, place, good, u);
				assert.equal(ok.subscribe.status, 200,
				    `good token: ${ok.subscribe.text}`);
				ok.subscribe.stream.close();
				assert.equal((await c.health()).status, 'ok');
			});
		}
	}
});

describe('BEEP_MAX_TOKEN at its default', () => {
	const h = useStack({ before, after }, { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
	} });

	for (const place of Object.keys(places)) {
		test(`${place}: ${MAX_TOKEN} bytes accepted, one more 401`, T,
		    async () => {
			const c = h.stack.client();
			const u = uid('big');
			const at = tokenOfLength(u, MAX_TOKEN);
			const past = tokenOfLength(u, MAX_TOKEN + 1);
			assert.equal(at.length, MAX_TOKEN);
			const ok = await tryAll(h.stack, c, place, at, u);
			assert.equal(ok.subscribe.status, 200,
			    `subscribe: ${ok.subscribe.text}`);
			if (ok.post) {
				assert.equal(ok.post.status, 200, `post: ${ok.post.text}`);
				assert.equal(ok.list.status, 200, `list: ${ok.list.text}`);
			}
			ok.subscribe.stream.close();
			const refused = await tryAll(h.stack, c, place, past, u);
			for (const [kind, r] of Object.entries(refused))
				assert401(r, `${place} ${kind}`, /too long/);
		});
	}
});
