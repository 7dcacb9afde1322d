// BEEP_AUTH=header behind conf/Caddyfile.forward-auth, with an identity
// service that knows the user by where the request comes from rather than
// by what it carries: Tailscale's nginx-auth (the tailnet address), a VPN or
// corporate network's address map, a device-posture agent. The browser
// attaches that identity to every request it makes, whichever page makes it:
// it is as ambient as a cookie.
//
// The backend refuses a cross-site request in header mode (403 "browser
// credentials from another site") unless its Authorization is of a scheme
// the browser does not keep (Bearer): "a page set that one itself, and had
// to pass a CORS preflight to". With BEEP_CORS_ORIGINS=* (the default) the
// backend's own preflight lets any origin set Authorization, so any page the
// user visits sends `Authorization: Bearer x` with no credentials at all,
// the identity service still names the user (by address), the backend takes
// the request as not ambient, and its answer carries
// Access-Control-Allow-Origin: *: the page subscribes as the user and reads
// their signaling (SDP offers, ICE candidates: their addresses), and posts
// as them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import {
	startStack, uid, ROOT, postPath, subPath, openSub,
} from './harness.mjs';

const T = { timeout: 60000 };
const FA_CADDYFILE = path.resolve(ROOT, 'conf/Caddyfile.forward-auth');
const EVIL = 'https://evil.example';

// An identity service that knows the user by the client's address (every
// request here comes from 127.0.0.1: that is the user's machine).
function startAddressAuth(user) {
	const server = http.createServer((req, res) => {
		req.resume();
		res.writeHead(200, { 'X-User-Claim': JSON.stringify({ userid: user }) });
		res.end();
	});
	return new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
	    resolve({ port: server.address().port, close() {
		server.closeAllConnections();
		return new Promise((r) => server.close(() => r()));
	} })));
}

// Alice, the identity service that names her by address, and a stack in
// header mode behind conf/Caddyfile.forward-auth asking it (stopped after
// t): what both cases start from.
async function addressAuthStack(t) {
	const alice = uid('alice');
	const auth = await startAddressAuth(alice);
	t.after(() => auth.close());
	const stack = await startStack({
		env: { BEEP_AUTH: 'header', BEEP_KEEPALIVE: '1' },
		caddyfile: FA_CADDYFILE,
		caddyEnv: { AUTH_UPSTREAM: `127.0.0.1:${auth.port}` },
	}, t);
	return { alice, stack, c: stack.client() };
}

test('header mode: a cross-site page cannot act as the user by setting ' +
    'an Authorization of its own', T, async (t) => {
	const { alice, stack, c } = await addressAuthStack(t);
	// Alice's own phone, subscribed from her own page.
	const own = await openSub(stack, subPath(alice, 'phone'),
	    { 'Sec-Fetch-Site': 'same-origin' });
	assert.equal(own.status, 200, own.text);

	// What evil.example's fetch() sends: the preflight first...
	const pre = await c.options(subPath(alice, 'spy'), { headers: {
		Origin: EVIL, 'Access-Control-Request-Method': 'GET',
		'Access-Control-Request-Headers': 'authorization' } });
	assert.equal(pre.status, 204);
	const preflightPasses =
	    pre.headers['access-control-allow-origin'] === '*' &&
	    /\bauthorization\b/i.test(
		pre.headers['access-control-allow-headers'] || '');
	// ...then the request, without credentials (no cookie), with the
	// header it set.
	const page = { Origin: EVIL, 'Sec-Fetch-Site': 'cross-site',
	    'Sec-Fetch-Mode': 'cors', Authorization: 'Bearer anything' };
	// Without the header the backend refuses it: it knows the identity
	// may be ambient.
	const plain = await openSub(stack, subPath(alice, 'spy'),
	    { Origin: EVIL, 'Sec-Fetch-Site': 'cross-site' });
	assert.equal(plain.status, 403, 'a cross-site request is refused');
	const spy = await openSub(stack, subPath(alice, 'spy'), page);
	if (spy.stream)
		spy.stream.close();
	const readable = spy.headers['access-control-allow-origin'] === '*';
	assert.notEqual(spy.status, 200,
	    `evil.example subscribed as ${alice} (preflight passes: ` +
	    `${preflightPasses}, answer readable by the page: ${readable}): ` +
	    'a page-set Authorization proves nothing when the identity ' +
	    'service goes by the address');
	const forged = await c.postJson(postPath(alice, 'phone'),
	    { data: 'hang up' }, { headers: page });
	assert.notEqual(forged.status, 200,
	    `evil.example posted as ${alice}: ${forged.text}`);
	own.stream.close();
});

// DNS rebinding: evil.example's page, served over plain HTTP, has its name
// re-pointed at the service's address. The browser then sends its requests
// to the service as same-origin ones of evil.example: Host evil.example,
// its own Origin, Sec-Fetch-Site: same-origin, no cookie of the service's
// (cookies go by name). An identity service that goes by the address
// still names the user, so "same origin" cannot be taken from a Host the
// page chose: over plain HTTP only a Host that is an address (or
// localhost), or an origin on BEEP_CORS_ORIGINS, is the service's own.
test('header mode: a page whose name was re-pointed at the service ' +
    '(DNS rebinding) cannot act as the user', T, async (t) => {
	const { alice, stack, c } = await addressAuthStack(t);
	const port = new URL(stack.base).port;
	// Alice's own page, at the service's address: taken.
	const own = await openSub(stack, subPath(alice, 'phone'), {
		Origin: `http://127.0.0.1:${port}`, 'Sec-Fetch-Site': 'same-origin' });
	assert.equal(own.status, 200, own.text);
	const rebound = { Host: `evil.example:${port}`,
	    Origin: `http://evil.example:${port}`, 'Sec-Fetch-Site': 'same-origin',
	    'Sec-Fetch-Mode': 'cors' };
	const spy = await openSub(stack, subPath(alice, 'spy'), rebound);
	if (spy.stream)
		spy.stream.close();
	assert.equal(spy.status, 403,
	    `a page of evil.example re-pointed at the service subscribed as ` +
	    `${alice}: ${spy.status} ${spy.text}`);
	assert.match(spy.text, /browser credentials from another site/);
	const forged = await c.postJson(postPath(alice, 'phone'),
	    { data: 'hang up' }, { headers: rebound });
	assert.equal(forged.status, 403,
	    `evil.example posted as ${alice}: ${forged.status} ${forged.text}`);
	// Without Origin (the same-origin GET an EventSource makes): the same.
	const es = await openSub(stack, subPath(alice, 'spy2'), {
		Host: `evil.example:${port}`, 'Sec-Fetch-Site': 'same-origin' });
	if (es.stream)
		es.stream.close();
	assert.equal(es.status, 403, `${es.status} ${es.text}`);
	own.stream.close();
});
