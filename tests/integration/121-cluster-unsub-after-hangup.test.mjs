// A node's last stream of a device has its client leave (the connection
// watcher's hang-up: no longer live in the registry), but its thread is
// still blocked in a write to that connection, which the client stopped
// reading before it shut its side: the stream is not unsubscribed yet,
// and the node is still the device's holder in Redis.  A POST through
// another node meanwhile is 200; the channel brings it to the first
// node's registry, which holds it (no stream takes it).  Then the
// connection goes, the write fails, and the stream is unsubscribed: its
// UNSUB told Redis that the node's streams had everything it was given,
// that message included, and a client back without an id through the
// other node lost it, untold (test_cluster_unsub_after_hangup in
// tests/unit/test_cluster.c drives the same window by hand).
//
// The window is held open by the client: a raw FastCGI connection to
// node a that reads nothing (its thread blocks writing the messages
// posted before), then shuts its side (a's watcher: hang-up), and is
// closed only once a's registry is seen holding the message.
//
// Each step waits for an event, not for a count that can still move: the
// POSTs through b are answered before a's channel brings them, so a's
// registry is first seen to have all 16 (its `published`) and a's stream
// thread to wait in its write (beep_stream_writes_waiting); only then
// does the client shut its side.  Sampled earlier, `held` grew as the
// rest came and the marker's `held + 1` was never seen (CI, ASan), or
// the hang-up found the thread between writes and the stream ended at
// once, the window never opened.  The hang-up is seen as a's device in
// grace with its stream still open; the marker's arrival as a's
// `published` reaching 17, counted under the lock that holds it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
	startCluster, CLUSTER_QUICK, uid, subPath, postPath, poll, Client,
} from './harness.mjs';
import { FcgiConn } from './fcgi.mjs';

const T = { timeout: 120000 };
const ENV = {
	...CLUSTER_QUICK, BEEP_GRACE_SECONDS: '600', BEEP_WRITE_TIMEOUT: '120',
	BEEP_RATE: '10000', BEEP_BURST: '10000',
};

describe('cluster: a stream that ended before its unsubscribe', T, () => {
	test('what the channel brought meanwhile reaches the client back ' +
	    'without an id through another node', T, async (t) => {
		const cl = await startCluster({ nodes: 2, env: ENV }, t);
		const [a, b] = cl.nodes;
		const ca = a.client(), cb = b.client();
		const u = uid('hup'), d = 'phone';

		const ops = new Client(a.opsBase);
		t.after(() => ops.close());
		// a's /metrics, one scrape: name => value.
		const scrape = async () => {
			const m = await ops.get('/metrics');
			assert.equal(m.status, 200, m.text);
			return new Map(m.text.split('\n')
			    .filter((l) => l.startsWith('beep_'))
			    .map((l) => l.split(' '))
			    .map(([k, v]) => [k, Number(v)]));
		};

		const raw = await FcgiConn.open(a.socket, t);
		raw.sendWhole('GET', subPath(u, d));
		// The head comes once the stream is registered (its SUB ran).
		await poll(() => raw.headCame(), { what: 'the stream\'s head' });
		raw.sock.pause();
		// What a's registry took so far (nothing else posts to a).
		const base = (await ca.health()).published;
		// More than a socket buffers: a's thread blocks writing them.
		const big = 'x'.repeat(48000);
		for (let i = 0; i < 16; i++) {
			const r = await cb.postJson(postPath(u, d), { data: big });
			assert.equal(r.status, 200, r.text);
		}
		// Answered once in Redis: a's channel brings them after.  All
		// in a's registry, and its thread waiting in a write: from here
		// on neither a's `published` nor what its stream took moves.
		await poll(async () => (await ca.health()).published ===
		    base + 16 &&
		    (await scrape()).get('beep_stream_writes_waiting') === 1,
		{ what: 'a\'s registry with all 16, its thread blocked' });
		// The client shuts its side: a's watcher hangs the stream up.
		// Its thread, blocked writing, has not unsubscribed it: it
		// still counts, and what it did not take is held.
		raw.sock.end();
		// Seen by the device's grace: no live stream, one still open.
		await poll(async () => {
			const m = await scrape();
			return m.get('beep_devices{state="grace"}') === 1 &&
			    m.get('beep_streams_open') === 1;
		}, { what: 'a\'s stream hung up, not yet unsubscribed' });
		const { held } = await ca.health();

		// a is still the device's holder in Redis: 200, to no stream.
		const r = await cb.postJson(postPath(u, d), { data: 'marker' });
		assert.equal(r.status, 200, r.text);
		// Its arrival in a's registry is a's 17th: held there, with
		// the stream still there (not yet unsubscribed).
		const h = await poll(async () => {
			const x = await ca.health();
			return x.published > base + 16 ? x : null;
		}, { what: 'a\'s registry taking the marker' });
		assert.deepEqual([h.published - base, h.held, h.streams],
		    [17, held + 1, 1],
		    'a\'s registry holding the marker, the window still open');

		// The connection goes: the write fails, the stream ends.
		raw.destroy();
		await poll(async () => (await cb.devices(u)).length === 0,
		    { what: 'a\'s UNSUB' });
		const r2 = await cb.postJson(postPath(u, d), { data: 'after' });
		assert.equal(r2.status, 202, r2.text);

		// The client comes back without an id, through b.
		const back = await b.open(subPath(u, d));
		assert.equal(back.status, 200);
		const got = await back.eventsUntil('after');
		back.close();
		const data = got.filter((e) => e.type === 'message')
		    .map((e) => e.data === big ? 'big' : e.data);
		assert.ok(data.includes('marker'), '"marker" (answered 200, ' +
		    'taken by no stream, held by a) lost, untold; events: ' +
		    JSON.stringify(got.map((e) => [e.type,
		        e.data === big ? 'big' : e.data])));
		assert.ok(!got.some((e) => e.type === 'reset'),
		    'a reset: nothing was lost');
	});
});
