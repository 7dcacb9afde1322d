// web/beep-signal.js (in Node) behind Caddy at the default settings, its
// connection lost without a word: a NAT that forgets the mapping, an access
// point that reboots, a phone that leaves coverage and comes back on the
// same network. No FIN, no RST: Caddy goes on writing keepalives into it,
// the service keeps the stream and the device listed, and a message posted
// to the device is answered 200 and "delivered" to that dead connection.
// The message is kept for replay BEEP_REPLAY_SECONDS (30 s) after that
// delivery; the client comes back with its last id and gets it, as long as
// it notices the silence within that window.
//
// The client takes a stream silent for `idleTimeout` (60 s by default) for
// dead: twice the service's default replay window. So a message posted at
// the start of a silent outage is always gone by the time the client looks
// again, even though the network was back at once: the client comes back
// to a reset ("event id too old") for a message the service could have
// replayed. The service names its keepalive (4 s) in the stream's first
// comment; three of them missed (12 s) would be noticed well within the
// replay window.
//
// The outage is made by a TCP proxy between the client and Caddy: at
// vanish() the connections it carries stop carrying anything either way
// and are left open (neither side hears of it); new connections pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack, poll, sid, postPath, skipReason } from './harness.mjs';
import { connect } from '../../web/beep-signal.js';

// Skipped under the sanitizers (the Makefile's SAN_SKIP): its subject is
// beep-signal.js.
const skip = skipReason(import.meta.url);
const T = { timeout: 150000, skip };

// A network path to port on loopback whose open connections can be made to
// vanish silently.
class SilentPath {
	constructor(port) {
		this.port = port;
		this.pairs = new Set();
		this.server = net.createServer((down) => {
			const up = net.connect(port, '127.0.0.1');
			const pair = { down, up, dead: false };
			this.pairs.add(pair);
			const carry = (from, to) => {
				from.on('data', (b) => { if (!pair.dead) to.write(b); });
				from.on('end', () => { if (!pair.dead) to.end(); });
				from.on('error', () => {});
				from.on('close', () => {
					if (!pair.dead)
						to.destroy();
				});
			};
			carry(down, up);
			carry(up, down);
		});
	}

	listen() {
		return new Promise((resolve) => this.server.listen(0, '127.0.0.1',
		    () => resolve(`http://127.0.0.1:${this.server.address().port}`)));
	}

	// Every connection open now carries nothing more, either way, and
	// neither end hears that it is gone (no FIN, no RST).
	vanish() {
		for (const p of this.pairs) {
			p.dead = true;
			p.down.pause();
			p.up.pause();
		}
	}

	close() {
		for (const p of this.pairs) {
			p.down.destroy();
			p.up.destroy();
		}
		this.server.close();
	}
}

test('a message posted as the connection silently vanished comes on the ' +
    'client\'s own reconnect, not a reset', T, async (t) => {
	const stack = await startStack({}, t);
	const path = new SilentPath(stack.port);
	const base = await path.listen();
	const c = stack.client();
	const u = sid(), d = 'phone';
	const sig = connect({ base, user: u, device: d });
	t.after(() => { sig.close(); path.close(); });
	const got = [];
	sig.on('message', (data) => got.push(data));
	sig.on('reset', (reason) => got.push(`reset: ${reason}`));
	await poll(() => sig.state === 'open' && sig.lastEventId !== '',
	    { what: 'stream open at its position' });
	const r0 = await c.postJson(postPath(u, d), { data: 'before' });
	assert.equal(r0.status, 200, r0.text);
	await poll(() => got.includes('before'), { what: 'first message' });

	// The network vanishes and is back at once for new connections.
	path.vanish();
	const r = await c.postJson(postPath(u, d), { data: 'offer' });
	assert.equal(r.status, 200,
	    'the old stream is still open behind Caddy: it takes the offer');
	// The client notices the silence by itself and comes back with its
	// id. The bound is a hang guard: past it nothing more will come.
	await poll(() => got.length > 1, { timeout: 120000, interval: 100,
	    what: 'the client back, with the offer or a reset' });
	assert.deepEqual(got, ['before', 'offer'],
	    'the service still had the offer for replay when the network came ' +
	    'back; the client looked again only after its 60 s idleTimeout, ' +
	    'past BEEP_REPLAY_SECONDS (30 s), and was told it was lost');
});
