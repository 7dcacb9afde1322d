// Review 22: a stream authorised by a JWT keeps its authority for ever.
//
// BEEP_AUTH=jwt checks a subscribe's token once, when the stream opens; the
// stream then goes on receiving the device's signaling (SDP offers, ICE
// candidates) long after the token's `exp`.  A short-lived token is the
// whole defence of `?access_token=` (README: query strings end up in access
// logs): whoever reads one from a log within its minute can open the
// victim's stream and hold it, reading every offer made to that device, for
// as long as the connection lasts.  Tokens that were meant to end access at
// `exp` (a user logged out, a device revoked and no longer issued tokens)
// do not.  A stream must end once its token expires (exp + BEEP_JWT_LEEWAY),
// and deliver nothing posted after that.
//
// Through Caddy with the shipped Caddyfile.  Fails on HEAD: the message
// posted after the token expired is delivered on the old stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
	startStack, uid, postPath, subPath, openSub,
} from './harness.mjs';
import { mint, claims, nowSec, bearer, withinLife } from './jwt.mjs';

const T = { timeout: 300000 };
const SECRET = crypto.randomBytes(32).toString('hex');
// The token's first life (withinLife() lengthens it when a loaded
// machine's set-up outlives it).
const LIFE_S = 3;

// Resolves once the wall clock (whole seconds, as the service's time(NULL))
// has reached sec: the token is then expired for the service (exp is a time
// the token is valid before, and the leeway is 0).
async function clockReaches(sec) {
	while (nowSec() < sec)
		await new Promise((r) => setTimeout(r,
		    sec * 1000 - Date.now() + 50));
}

for (const place of ['Authorization: Bearer', '?access_token=']) {
	test(`a stream opened with ${place} ends when its token expires`, T,
	    async (t) => {
		const stack = await startStack({ env: {
			BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
			BEEP_JWT_LEEWAY: '0', BEEP_KEEPALIVE: '1',
		} }, t);
		const c = stack.client();
		t.after(() => c.close());
		const sender = uid('sender');
		const p = (victim) => subPath(victim, 'laptop');
		const ts = () => mint(claims(sender), { key: SECRET });
		// A stream of a token that expires within the test, and a message
		// read on it before exp; again with a longer life when the
		// set-up did not finish before exp (a loaded machine).
		const { victim, exp, short, s } = await withinLife(t, LIFE_S,
		    async (exp) => {
			const victim = uid('victim');
			const short = mint(claims(victim, { exp }), { key: SECRET });
			const s = place === '?access_token='
			    ? await openSub(stack, `${p(victim)}?access_token=${short}`)
			    : await openSub(stack, p(victim), bearer(short));
			if (s.status === 401 && nowSec() >= exp) {
				assert.match(s.text, /credentials expired/);
				return null;
			}
			assert.equal(s.status, 200, s.text);
			// While the token is valid the stream works.
			const r = await c.postJson(postPath(victim, 'laptop'),
			    { data: 'before-exp' }, { headers: bearer(ts()) });
			const ev = r.status === 200 ? await s.stream.nextEvent() : null;
			if (ev?.data !== 'before-exp' && nowSec() >= exp) {
				// Posted or read after the stream ended at exp.
				s.stream.close();
				return null;
			}
			assert.equal(r.status, 200, r.text);
			assert.equal(ev?.data, 'before-exp');
			return { victim, exp, short, s };
		});
		t.after(() => s.stream.close());
		// The same token is now refused for a new stream...
		await clockReaches(exp);
		const again = await openSub(stack, p(victim), bearer(short));
		assert.equal(again.status, 401, 'the expired token is refused');
		// ...but the stream it opened still reads the device's signaling.
		const r = await c.postJson(postPath(victim, 'laptop'),
		    { data: 'after-exp' }, { headers: bearer(ts()) });
		assert.ok(r.status === 200 || r.status === 202, r.text);
		let ev = null;
		try {
			ev = await s.stream.nextEvent(8000);
		} catch (e) {
			if (!s.stream.ended)
				throw e;
		}
		assert.notEqual(ev?.data, 'after-exp',
		    `a message posted after the token's exp (${exp}) was ` +
		    'delivered on the stream it authorised: a stream keeps its ' +
		    'authority past exp, for as long as its connection lasts');
		// Its last event says why, so that a page fetches a new token.
		assert.equal(ev?.type, 'refused', 'the stream of an expired ' +
		    `token must end with a refused event: ${JSON.stringify(ev)}`);
		assert.deepEqual(JSON.parse(ev.data),
		    { error: 'credentials expired', status: 401 });
		await s.stream.waitEnd();
	});
}
