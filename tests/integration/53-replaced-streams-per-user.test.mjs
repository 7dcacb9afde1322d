// Review (resource exhaustion): with authentication on, one user cannot
// hold more than its share of BEEP_MAX_STREAMS and lock every other user
// out.
//
// README (Security): "With authentication on, the address limit does not
// apply: streams per device and devices per user bound each user". They do
// not: BEEP_MAX_STREAMS_PER_DEVICE counts live streams only. A newer stream
// marks the oldest replaced and wakes it, but a replaced stream whose
// thread is blocked in a write (its client reads nothing) stays open,
// counted in BEEP_MAX_STREAMS and holding a worker, descriptor and its
// rendered batch, until BEEP_WRITE_TIMEOUT (30 s by default). Subscribes
// are not rate-limited, so one user, resuming one device again and again
// with a Last-Event-ID whose replay fills the socket buffers, holds as
// many streams as it opens within a write timeout: up to BEEP_MAX_STREAMS,
// after which every other user's subscribe gets 503 "too many streams".
// In open mode the address limit caps such chains at twice it (README,
// Streams per address); with authentication nothing does.
//
// The attacker's connections are raw FastCGI connections to the backend's
// socket that stop reading once the first replayed event has begun to
// arrive, as a front does when its client stops reading and its buffers
// are full: the replayed message renders to ~420 KB, more than the unix
// socket's buffer, so the stream's thread is then blocked in that write,
// deterministically, before the next subscribe replaces it. The victim
// subscribes through Caddy as usual.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, postPath, subPath, poll } from './harness.mjs';
import { FcgiConn, requestParams } from './fcgi.mjs';
import { mint, claims } from './jwt.mjs';

const SECRET = 'review-61-secret-of-enough-length-0123456789';
const MAX_STREAMS = 10, PER_DEVICE = 2, DEVICES = 1;
const ATTEMPTS = 14;

test('one authenticated user cannot fill BEEP_MAX_STREAMS with replaced ' +
    'streams that stopped reading', { timeout: 120000 }, async (t) => {
	const stack = await startStack({ env: {
		BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
		BEEP_MAX_STREAMS: String(MAX_STREAMS),
		BEEP_MAX_STREAMS_PER_DEVICE: String(PER_DEVICE),
		BEEP_MAX_DEVICES_PER_USER: String(DEVICES),
		BEEP_WRITE_TIMEOUT: '3600', BEEP_REPLAY_SECONDS: '600',
		BEEP_GRACE_SECONDS: '600', BEEP_KEEPALIVE: '300',
	} }, t);
	const c = stack.client();
	const attacker = uid('att');
	const auth = `Bearer ${mint(claims(attacker), { key: SECRET })}`;
	const form = { 'Content-Type': 'application/x-www-form-urlencoded',
	    Authorization: auth };

	// A backlog to replay: one message of line breaks (~420 KB written).
	const first = await stack.subscribe(attacker, 'd',
	    { headers: { Authorization: auth } });
	await first.waitFor(() => first.parser.resumeId !== '',
	    { what: 'the opening position' });
	const pos = first.parser.resumeId;
	const big = await c.request('POST', postPath(attacker, 'd'),
	    { headers: form, body: `data=${'\n'.repeat(60000)}` });
	assert.equal(big.status, 200, big.text);
	assert.equal((await first.nextEvent(30000)).data.length, 60000);
	first.close();

	// The same device, resumed from before it, again and again; the
	// connections stay open (and unread) until the victim has tried.
	const conns = [];
	try {
		await attack(stack, c, attacker, auth, pos, conns, t);
		// Another user subscribes: the service is not full of anyone's
		// share.
		const victim = uid('vic');
		const vauth = `Bearer ${mint(claims(victim), { key: SECRET })}`;
		const v = await stack.open(subPath(victim, 'phone'),
		    { headers: { Authorization: vauth } });
		const body = v.status === 200 ? '' : await v.text();
		const h = await c.health();
		assert.equal(v.status, 200,
		    `another user's subscribe refused (${v.status} ${body}): ` +
		    `one user with BEEP_MAX_DEVICES_PER_USER=${DEVICES} and ` +
		    `BEEP_MAX_STREAMS_PER_DEVICE=${PER_DEVICE} holds ` +
		    `${h.streams} of BEEP_MAX_STREAMS=${MAX_STREAMS} streams: ` +
		    'replaced streams blocked in a write stay open until ' +
		    'BEEP_WRITE_TIMEOUT and nothing bounds them per user');
		v.close();
	} finally {
		for (const k of conns)
			k.destroy();
	}
});

// ATTEMPTS subscribes of (attacker, d) resuming from pos on raw FastCGI
// connections, each read until its replay has begun, then no further.
async function attack(stack, c, attacker, auth, pos, conns, t) {
	const statuses = [];
	for (let i = 0; i < ATTEMPTS; i++) {
		const k = new FcgiConn(stack.socket);
		conns.push(k);
		await k.connected;
		k.begin();
		k.params(requestParams('GET', subPath(attacker, 'd'), {
			HTTP_AUTHORIZATION: auth, HTTP_LAST_EVENT_ID: pos,
		}));
		// Reading stops as soon as the replayed event has begun (its
		// empty data: lines, not the opening position event's one).
		const begun = () =>
			k.stdout.includes('\ndata: \ndata: \ndata: ');
		k.sock.on('data', () => {
			if (begun())
				k.sock.pause();
		});
		k.endStdin();
		await poll(() => k.ended || k.error || begun(),
		    { timeout: 10000, what: `subscribe ${i} answered` });
		const m = /^Status: (\d+)/m.exec(k.stdout.toString('latin1'));
		statuses.push(k.ended ? (m ? Number(m[1]) : 'ended') : 200);
	}
	const h = await c.health();
	t.diagnostic(`attacker's subscribes: ${statuses.join(' ')}; ` +
	    `streams open ${h.streams}, replaced ${h.replaced}, threads ` +
	    `${h.threads}`);
}
