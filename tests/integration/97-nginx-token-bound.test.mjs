// A token within BEEP_MAX_TOKEN (8192 bytes by default) must reach the
// backend through conf/nginx.conf as it does through Caddy (60 KB of headers)
// and conf/lighttpd.conf (64 KiB, raised for this: test 51).
//
// nginx bounds each header line, and the request line, by one buffer of
// large_client_header_buffers (8 KiB in Debian's nginx and in
// conf/nginx.conf): the line `Authorization: Bearer <token>` holds 22 bytes
// more than the token, and an EventSource's request line
// `GET /subscribe/<user>/device/<device>?access_token=<token> HTTP/1.1`
// some 60 more. So a token of up to BEEP_MAX_TOKEN bytes, which the backend
// takes, got nginx's 431 in a header (as JSON, error_page 494) and, on the
// subscribe URL, nginx's own 414, an HTML page: an `EventSource` (which can
// only send its token in the URL or a cookie) gives up on it for good. The
// same token through Caddy opens the stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rig } from './fronts.mjs';
import { listPath, subPath } from './harness.mjs';
import { mint, claims } from './jwt.mjs';

const T = { timeout: 60000 };
const SECRET = 'nginx-token-bound-secret-0123456789abcdef';
const MAX_TOKEN = 8192;                  // BEEP_MAX_TOKEN's default

// The longest valid token for user `sub` of at most `len` bytes (a padding
// claim; base64url grows by 4 characters per 3 bytes).
function tokenWithin(sub, len) {
	const make = (n) => mint(claims(sub, { pad: 'p'.repeat(n) }),
	    { key: SECRET });
	let lo = 0, hi = len;
	while (lo < hi) {
		const mid = Math.ceil((lo + hi) / 2);
		if (make(mid).length <= len)
			lo = mid;
		else
			hi = mid - 1;
	}
	return make(lo);
}

test('behind nginx: a token within BEEP_MAX_TOKEN is taken, in the ' +
    'subscribe URL and in Authorization', T, async (t) => {
	const rig = new Rig(t, 'nginx-token-bound', { env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
	} });
	await rig.startListen();
	await rig.startNginx();
	const user = 'u';
	const tok = tokenWithin(user, MAX_TOKEN);
	assert.ok(tok.length <= MAX_TOKEN && tok.length > MAX_TOKEN - 4,
	    `a token just within the bound: ${tok.length}`);
	const c = rig.client();

	// EventSource's only ways: the token in the URL (or a cookie).
	const s = await rig.open(`${subPath(user, 'phone')}?access_token=${tok}`,
	    { headers: { Accept: 'text/event-stream' } });
	const head = `${s.status} ${s.headers['content-type']}`;
	if (s.status !== 200)
		t.diagnostic((await s.text()).slice(0, 200));
	assert.equal(head, '200 text/event-stream',
	    `a ${tok.length}-byte token in the subscribe URL: nginx's ` +
	    'request line bound (large_client_header_buffers) refuses what ' +
	    'the backend takes');
	s.close();

	const r = await c.get(listPath(user),
	    { headers: { Authorization: `Bearer ${tok}` } });
	assert.equal(r.status, 200, `a ${tok.length}-byte bearer token: ` +
	    `${r.status} ${r.text.slice(0, 100)}`);
});
