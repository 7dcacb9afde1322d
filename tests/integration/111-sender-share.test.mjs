// One sender must not push out of a device that is away what another
// sender posted to it (README, Delivery guarantees: a sender's share).
//
// A device away holds what is posted to it (202) up to its replay bounds,
// the device's whoever sent: one sender could post up to them within its
// BEEP_RATE (80 messages of 60 KB fill 4 MiB) and push out the rest, so
// that the device came back to a reset and the other caller's offer was
// gone. Now a sender that holds BEEP_SENDER_SHARE (half) of the bounds is
// refused, 429 with a JSON error and Retry-After, when its POST would push
// out another sender's held message; nothing accepted is lost, and the
// other's message is the first the device gets when its stream opens.
// A POST that would push out the held message of a sender within its
// share is refused too, whoever sends it (a second name of the same
// sender): 503 `device holds all it keeps`, not its sender's doing.
//
// Senders are told apart as BEEP_RATE counts them: by token user, so the
// stack runs BEEP_AUTH=jwt and the two senders post with two tokens.
// The refusals are counted (/healthz crowded, beep_messages_crowded_total).
// BEEP_REPLAY_MAX=8 (BEEP_STREAM_QUEUE=4, which must not be above it)
// keeps the bounds small. In open mode a sender is its client's address,
// an IPv6 client its /64 (BEEP_IPV6_PREFIX), as the front passes it
// (REMOTE_ADDR, sent here straight over FastCGI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
	startStack, startCluster, CLUSTER_QUICK, uid, poll, postPath, listPath,
	isJson, Client,
} from './harness.mjs';
import { mint, claims, bearer } from './jwt.mjs';
import { FcgiConn, requestParams } from './fcgi.mjs';

const T = { timeout: 60000 };
const SECRET = crypto.randomBytes(32).toString('hex');
const REPLAY_MAX = 8;
const token = (user) => mint(claims(user), { alg: 'HS256', key: SECRET });

// bob's phone d comes through node and goes: away, within its grace
// period, once client c lists no device of bob's.
async function away(node, c, bob, d, headers = {}) {
	const first = await node.subscribe(bob, d, { headers });
	first.close();
	await poll(async () => {
		const r = await c.get(listPath(bob), { headers });
		assert.equal(r.status, 200, r.text);
		return r.json().length === 0;
	}, { timeout: 20000, what: 'bob\'s phone in its grace period' });
}

// n messages `${label} ${i}` posted by send(i, data), each held (202):
// their data, in order.
async function fill(send, label, n) {
	const held = [];
	for (let i = 0; i < n; i++) {
		const data = `${label} ${i}`;
		const r = await send(i, data);
		assert.equal(r.status, 202, `${data}: ${r.text}`);
		held.push(data);
	}
	return held;
}

// bob's phone d back through node: its stream, and the data of the
// REPLAY_MAX events it gets first, each a message (no reset: nothing was
// lost).
async function comeBack(node, bob, d, headers = {}) {
	const back = await node.subscribe(bob, d, { headers });
	const got = [];
	for (let i = 0; i < REPLAY_MAX; i++) {
		const ev = await back.nextEvent(15000);
		assert.equal(ev.type, 'message', 'no reset: nothing was lost');
		got.push(ev.data);
	}
	return { back, got };
}

test('a sender past its share is refused (429) rather than push out ' +
    'another sender\'s held message, which the device then gets', T,
async (t) => {
	const stack = await startStack({ env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'HS256', BEEP_JWT_SECRET: SECRET,
		BEEP_KEEPALIVE: '1', BEEP_REPLAY_MAX: String(REPLAY_MAX),
		BEEP_STREAM_QUEUE: '4',
	} }, t);
	const c = stack.client();
	const bob = uid('bob'), carol = uid('carol'), flood = uid('flood');
	const d = 'phone';
	const post = (who, data) => c.postJson(postPath(bob, d), { data },
	    { headers: bearer(token(who)) });

	// bob's phone comes and goes: away, within its grace period.
	await away(stack, c, bob, d, bearer(token(bob)));

	// carol calls: her offer is held.
	const offer = await post(carol, 'offer from carol');
	assert.equal(offer.status, 202, offer.text);
	// Another sender fills the rest of the bounds: held, as before.
	const held = await fill((i, data) => post(flood, data), 'flood',
	    REPLAY_MAX - 1);
	// Its next would push out carol's offer, and it holds more than
	// half the bounds: refused, with a JSON error and Retry-After.
	const refused = await post(flood, 'one too many');
	assert.equal(refused.status, 429, refused.text);
	assert.ok(isJson(refused), `JSON error (${refused.headers['content-type']})`);
	assert.deepEqual(refused.json(),
	    { error: 'device holds too many of your messages' });
	assert.match(refused.headers['retry-after'] || '', /^[1-9][0-9]*$/,
	    'Retry-After in seconds');
	const hz = await c.health();
	assert.equal(hz.dropped, 0, 'nothing dropped');
	// Operators see such refusals apart from BEEP_RATE's 429s.
	assert.equal(hz.crowded, 1, '/healthz crowded');
	const ops = new Client(stack.opsBase);
	const metrics = await ops.get('/metrics');
	ops.close();
	assert.equal(metrics.status, 200, metrics.text);
	assert.match(metrics.text, /^beep_messages_crowded_total 1$/m,
	    'beep_messages_crowded_total');
	assert.match(metrics.text, /^beep_rate_limited_total 0$/m,
	    'not counted as BEEP_RATE\'s');

	// bob's phone comes back: carol's offer first, then the flood, and
	// no reset (nothing was lost).
	const { back, got } = await comeBack(stack, bob, d, bearer(token(bob)));
	assert.deepEqual(got, ['offer from carol', ...held]);
	// Delivered now: the same sender is accepted again.
	const after = await post(flood, 'after');
	assert.equal(after.status, 200, after.text);
	const ev = await back.nextEvent(15000);
	assert.equal(ev.data, 'after');
	back.close();
});

// A POST of data to path over FastCGI, as a front sends it for a client at
// addr; resolves { status, head, body, text (head and body) }.
async function postFrom(stack, addr, reqPath, data, t) {
	const body = JSON.stringify({ data });
	const conn = await FcgiConn.open(stack.socket, t);
	conn.begin();
	conn.params(requestParams('POST', reqPath, {
		REMOTE_ADDR: addr, CONTENT_TYPE: 'application/json',
		CONTENT_LENGTH: String(Buffer.byteLength(body)),
	}));
	conn.stdin(body);
	conn.endStdin();
	const r = await conn.response();
	return { ...r, text: r.head + r.body };
}

// A stack in open mode, bob's phone d away within its grace period, and
// from(addr), a send for fill() of POSTs to it from addr (or addr(i)).
async function openAway(t) {
	const stack = await startStack({ env: {
		BEEP_KEEPALIVE: '1', BEEP_REPLAY_MAX: String(REPLAY_MAX),
		BEEP_STREAM_QUEUE: '4',
	} }, t);
	const c = stack.client();
	const bob = uid('bob'), d = 'phone';
	await away(stack, c, bob, d);
	const from = (addr) => (i, data) => postFrom(stack,
	    typeof addr === 'function' ? addr(i) : addr, postPath(bob, d),
	    data, t);
	return { stack, c, bob, d, from };
}

test('open mode: a sender is its address, an IPv6 client its /64; ' +
    'a second address does not get round the share', T,
async (t) => {
	const { stack, c, bob, d, from } = await openAway(t);
	const offer = await postFrom(stack, '192.0.2.7', postPath(bob, d),
	    'offer from 192.0.2.7', t);
	assert.equal(offer.status, 202, offer.text);
	const held = await fill(from((i) => `2001:db8::${i + 1}`), 'flood',
	    REPLAY_MAX - 1);
	// Another network is another sender, holding nothing; but the
	// offer's sender holds less than its share: what one host posts
	// under a second address (its Wi-Fi and its phone network) must not
	// push the offer out.  Not this sender's own share: the device holds
	// all it keeps, 503, to try again as it comes back.
	const other = await postFrom(stack, '2001:db8:1::1', postPath(bob, d),
	    'from another network', t);
	assert.equal(other.status, 503, other.text);
	assert.match(other.head, /^Retry-After: [1-9][0-9]*$/m);
	assert.deepEqual(JSON.parse(other.body),
	    { error: 'device holds all it keeps' });
	assert.equal((await c.health()).dropped, 0, 'nothing dropped');

	const { back, got } = await comeBack(stack, bob, d);
	assert.deepEqual(got, ['offer from 192.0.2.7', ...held]);
	back.close();
	await poll(async () => (await c.devices(bob)).length === 0,
	    { timeout: 20000, what: 'bob\'s phone away again' });

	// Away again, what it took goes first. 192.0.2.7 holds its share
	// (half), so its oldest may go; one host taking a fresh address of
	// its /64 for each POST is one sender, past its share at half too.
	const v4 = await fill(from('192.0.2.7'), 'v4', REPLAY_MAX / 2);
	const v6 = await fill(from((i) => `2001:db8::${i + 1}`), 'v6',
	    REPLAY_MAX / 2);
	const refused = await postFrom(stack, '2001:db8::ff', postPath(bob, d),
	    'one too many', t);
	assert.equal(refused.status, 429, refused.text);
	assert.equal((await c.health()).dropped, 0, 'nothing dropped');
	const { back: again, got: gotAgain } = await comeBack(stack, bob, d);
	assert.deepEqual(gotAgain, [...v4, ...v6]);
	again.close();
});

// Caddy passes a client on the link with its zone (fe80::1%eth0: Go keeps
// it in the remote address). Such a client is one sender by its /64 on
// that link, as any IPv6 client: taken as text, each address was a sender
// of its own, holding nothing, and pushed out what another held.
test('open mode: a client on the link (with its zone) is one sender by ' +
    'its /64 there', T, async (t) => {
	const { stack, c, bob, d, from } = await openAway(t);
	// Half the bounds from 192.0.2.7 (its share, so its oldest may go),
	// half from addresses of one link's /64.
	const v4 = await fill(from('192.0.2.7'), 'v4', REPLAY_MAX / 2);
	const link = await fill(from((i) => `fe80::${i + 1}%eth0`), 'link',
	    REPLAY_MAX / 2);
	// A fresh address of that link's /64 is the same sender, past its
	// share: refused, and nothing of 192.0.2.7's goes.
	const refused = await postFrom(stack, 'fe80::ff%eth0', postPath(bob, d),
	    'one too many', t);
	assert.equal(refused.status, 429, refused.text);
	assert.deepEqual(JSON.parse(refused.body),
	    { error: 'device holds too many of your messages' });
	assert.equal((await c.health()).dropped, 0, 'nothing dropped');
	const { back, got } = await comeBack(stack, bob, d);
	assert.deepEqual(got, [...v4, ...link]);
	back.close();
});

// In a cluster a device's held messages are in Redis, posted through any
// node: the rule is Redis's POST script's, and a sender has one name on
// every node (a key the nodes share in Redis). So the flood is refused
// through either node with 429, its own share (a name per node would
// make its second POST another sender's: 503), and carol's offer is the
// first the device gets when it comes back through a node. Until
// 2026-12-07 Redis trimmed the stream to BEEP_REPLAY_MAX whoever sent,
// and the offer went.
test('cluster: a sender past its share is refused (429) through every ' +
    'node, and the other sender\'s held message stays', T, async (t) => {
	const cl = await startCluster({ nodes: 2, env: { ...CLUSTER_QUICK,
		BEEP_AUTH: 'jwt', BEEP_JWT_ALG: 'HS256', BEEP_JWT_SECRET: SECRET,
		BEEP_REPLAY_MAX: String(REPLAY_MAX), BEEP_STREAM_QUEUE: '4',
	} }, t);
	const c = cl.nodes.map((n) => n.client());
	const bob = uid('bob'), carol = uid('carol'), flood = uid('flood');
	const d = 'phone';
	const post = (i, who, data) => c[i].postJson(postPath(bob, d),
	    { data }, { headers: bearer(token(who)) });

	await away(cl.nodes[0], c[1], bob, d, bearer(token(bob)));
	const offer = await post(0, carol, 'offer from carol');
	assert.equal(offer.status, 202, offer.text);
	const held = await fill((i, data) => post(i % 2, flood, data), 'flood',
	    REPLAY_MAX - 1);
	for (const i of [0, 1]) {
		const refused = await post(i, flood, 'one too many');
		assert.equal(refused.status, 429, `node ${i}: ${refused.text}`);
		assert.deepEqual(refused.json(),
		    { error: 'device holds too many of your messages' });
		assert.match(refused.headers['retry-after'] || '',
		    /^[1-9][0-9]*$/, 'Retry-After in seconds');
		assert.equal((await c[i].health()).crowded, 1,
		    `node ${i}: /healthz crowded`);
	}

	const { back, got } = await comeBack(cl.nodes[1], bob, d,
	    bearer(token(bob)));
	assert.deepEqual(got, ['offer from carol', ...held]);
	back.close();
});
