// Issue 12: /metrics and /readyz, through the shipped Caddyfile.
//   - the public site never answers /metrics (404 from Caddy); the loopback
//     operations site (OPS_PORT) does, in the text exposition format, which
//     a strict parser (prom.mjs) accepts;
//   - the counters move with real traffic through the public site: POSTs by
//     status, messages published, events delivered, bytes written, stream
//     lifetimes, rate-limited POSTs, POSTs answered as repeats of a keyed
//     message; gauges follow open streams and the keys indexed;
//   - the backend answers /metrics only to BEEP_METRICS_ALLOW addresses
//     (loopback by default): a list without loopback gets 403, and
//     /healthz's counters likewise (the status alone);
//   - /readyz is 200 below BEEP_MAX_STREAMS and 503 at it (and 503 while
//     stopping: test_api.c, since the socket is shut as the stop begins).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	useStack, uid, poll, postPath, subPath, openSub, Client, runBinary,
	isJson,
} from './harness.mjs';
import { parseExposition } from './prom.mjs';

const T = { timeout: 60000 };

async function scrape(port) {
	const c = new Client(`http://127.0.0.1:${port}`);
	try {
		return await c.get('/metrics');
	} finally {
		c.close();
	}
}

async function metrics(port) {
	const r = await scrape(port);
	assert.equal(r.status, 200, r.text);
	assert.match(r.headers['content-type'],
	    /^text\/plain; version=0\.0\.4; charset=utf-8$/);
	return parseExposition(r.text);
}

describe('metrics with traffic', () => {
	const h = useStack({ before, after }, { env: { BEEP_KEEPALIVE: '1',
	    BEEP_RATE: '1', BEEP_BURST: '20' } });
	const opsPort = () => h.stack.opsPort;

	test('the public site does not answer /metrics', T, async () => {
		const c = h.stack.client();
		const r = await c.get('/metrics');
		assert.equal(r.status, 404);
		assert.doesNotMatch(r.text, /beep_/);
		// Health and readiness are public.
		assert.equal((await c.get('/readyz')).status, 200);
	});

	test('names, types and units follow the conventions', T, async () => {
		const m = await metrics(opsPort());
		for (const [name, f] of m) {
			assert.match(name, /^beep_/, name);
			assert.ok(f.help, `${name} has HELP`);
			if (f.type === 'counter')
				assert.match(name, /_total$/, `${name}: counter`);
			else
				assert.doesNotMatch(name, /_total$/, `${name}: not a counter`);
			if (f.type === 'histogram')
				assert.match(name, /_seconds$/, `${name}: unit`);
		}
		const v = await runBinary(['--version']);
		const version = v.stdout.trim().split(' ')[1];
		assert.equal(m.value('beep_build_info', { version }), 1);
		for (const name of ['beep_streams_open', 'beep_users', 'beep_devices',
		    'beep_worker_threads', 'beep_posts_total',
		    'beep_rate_limited_total', 'beep_streams_refused_total',
		    'beep_messages_published_total',
		    'beep_events_delivered_total', 'beep_messages_held',
		    'beep_messages_overdue',
		    'beep_messages_dropped_total', 'beep_stream_resets_total',
		    'beep_stream_overflows_total', 'beep_stream_written_bytes_total',
		    'beep_stream_lifetime_seconds', 'beep_post_duration_seconds',
		    'beep_ready', 'beep_start_time_seconds',
		    'beep_delivery_latency_seconds', 'beep_message_memory_bytes',
		    'beep_message_memory_max_bytes', 'beep_messages_replayed_total',
		    'beep_messages_expired_total', 'beep_messages_evicted_total',
		    'beep_messages_backlogged_total', 'beep_streams_replaced_total',
		    'beep_messages_repeated_total', 'beep_message_keys'])
			assert.ok(m.has(name), `has ${name}`);
		assert.ok(m.value('beep_worker_threads', { state: 'idle' }) >= 1);
	});

	test('counters move with real traffic', T, async () => {
		const c = h.stack.client();
		const before = await metrics(opsPort());
		const u = uid('m');
		const a = await h.stack.subscribe(u, 'a');
		const b = await h.stack.subscribe(u, 'b');
		let m = await metrics(opsPort());
		assert.equal(m.value('beep_streams_open'),
		    before.value('beep_streams_open') + 2);
		for (let i = 0; i < 5; i++) {
			const r = await c.postJson(postPath(u, 'a'), { data: `x${i}` });
			assert.equal(r.status, 200, r.text);
		}
		const r404 = await c.postJson(postPath(uid('nobody'), 'z'),
		    { data: 1 });
		assert.equal(r404.status, 404);
		for (let i = 0; i < 5; i++)
			assert.equal((await a.nextEvent()).data, `x${i}`);
		a.close();
		// The stream ends when the backend notices (a keepalive write).
		m = await poll(async () => {
			const x = await metrics(opsPort());
			return x.value('beep_stream_lifetime_seconds_count') >
			    before.value('beep_stream_lifetime_seconds_count') && x;
		}, { what: 'a stream lifetime observed', timeout: 20000 });
		const d = (name, labels) =>
		    m.value(name, labels) - before.value(name, labels);
		assert.equal(d('beep_posts_total', { code: '200' }), 5);
		assert.equal(d('beep_posts_total', { code: '404' }), 1);
		assert.equal(d('beep_messages_published_total'), 5);
		assert.equal(d('beep_events_delivered_total'), 5);
		// Each event's publish-to-write time was observed once.
		assert.equal(d('beep_delivery_latency_seconds_count'), 5);
		assert.ok(m.value('beep_devices', { state: 'live' }) >= 1);
		// Every POST that passed the checks was timed, the 404 too.
		assert.equal(d('beep_post_duration_seconds_count'), 6);
		// 5 events of at least 20 bytes each, plus comments.
		assert.ok(d('beep_stream_written_bytes_total') >= 100,
		    `bytes ${d('beep_stream_written_bytes_total')}`);
		assert.equal(m.value('beep_streams_open'),
		    before.value('beep_streams_open') + 1);
		b.close();
	});

	// A POST sent again with its idempotency key (its answer lost) is
	// answered with the first one's id and not delivered again: operators
	// see how many were (/healthz repeated, beep_messages_repeated_total)
	// and how many keys the logs index (keys, beep_message_keys).
	test('POSTs answered as repeats are counted, and keys indexed', T,
	    async () => {
		const c = h.stack.client();
		const before = await metrics(opsPort());
		const hz0 = await c.health();
		const u = uid('k');
		const a = await h.stack.subscribe(u, 'a');
		const key = `k-${uid('key')}`;
		const first = await c.postJson(postPath(u, 'a'),
		    { data: 'once', key });
		assert.equal(first.status, 200, first.text);
		const again = await c.postJson(postPath(u, 'a'),
		    { data: 'once', key });
		assert.equal(again.status, 200, again.text);
		assert.equal(again.json().id, first.json().id, 'the first one\'s id');
		const next = await c.postJson(postPath(u, 'a'), { data: 'next' });
		assert.equal(next.status, 200, next.text);
		assert.equal((await a.nextEvent()).data, 'once');
		assert.equal((await a.nextEvent()).data, 'next', 'not delivered again');
		const m = await metrics(opsPort());
		const hz = await c.health();
		a.close();
		assert.equal(m.value('beep_messages_repeated_total') -
		    before.value('beep_messages_repeated_total'), 1);
		assert.equal(m.value('beep_message_keys') -
		    before.value('beep_message_keys'), 1);
		assert.equal(hz.repeated - hz0.repeated, 1, '/healthz repeated');
		assert.equal(hz.keys - hz0.keys, 1, '/healthz keys');
	});

	test('rate-limited POSTs are counted', T, async () => {
		const c = h.stack.client();
		const before = await metrics(opsPort());
		const p = postPath(uid('r'), 'd');
		let refused = 0;
		// The bucket holds 20 and refills at 1/s: 40 quick POSTs hit it.
		for (let i = 0; i < 40; i++)
			if ((await c.postJson(p, { data: 1 })).status === 429)
				refused++;
		assert.ok(refused > 0, 'some POSTs were refused');
		const m = await metrics(opsPort());
		assert.equal(m.value('beep_rate_limited_total') -
		    before.value('beep_rate_limited_total'), refused);
		assert.equal(m.value('beep_posts_total', { code: '429' }) -
		    before.value('beep_posts_total', { code: '429' }), refused);
	});
});

describe('metrics allow-list and readiness at the stream limit', () => {
	const h = useStack({ before, after }, { env: { BEEP_MAX_STREAMS: '2',
	    BEEP_KEEPALIVE: '1', BEEP_METRICS_ALLOW: '10.0.0.0/8, 2001:db8::/32' } });
	const opsPort = () => h.stack.opsPort;

	test('a loopback scraper not in BEEP_METRICS_ALLOW gets 403', T,
	    async () => {
		const r = await scrape(opsPort());
		assert.equal(r.status, 403);
		assert.ok(isJson(r));
		assert.match(r.json().error, /BEEP_METRICS_ALLOW/);
		assert.doesNotMatch(r.text, /beep_/);
	});

	// The counters are the service's figures (users, streams, traffic):
	// for the addresses metrics are for; anyone else learns it lives.
	test('/healthz: the status only, to an address not in ' +
	    'BEEP_METRICS_ALLOW', T, async () => {
		const r = await h.stack.client().get('/healthz');
		assert.equal(r.status, 200);
		assert.deepEqual(r.json(), { status: 'ok' });
	});

	test('/readyz: 200 below BEEP_MAX_STREAMS, 503 at it', T, async () => {
		const ops = new Client(`http://127.0.0.1:${opsPort()}`);
		const c = h.stack.client();
		try {
			assert.equal((await ops.get('/readyz')).status, 200);
			assert.equal((await ops.get('/healthz')).status, 200);
			const s1 = await h.stack.subscribe(uid('q'), 'd');
			assert.equal((await c.get('/readyz')).status, 200);
			const s2 = await h.stack.subscribe(uid('q'), 'd');
			const r = await c.get('/readyz');
			assert.equal(r.status, 503);
			assert.ok(isJson(r));
			assert.match(r.json().error, /too many streams/);
			// What /readyz said: a subscribe now gets 503.
			assert.equal((await openSub(h.stack,
			    subPath(uid('q'), 'd'))).status, 503);
			// Liveness is unaffected.
			assert.equal((await c.get('/healthz')).status, 200);
			s1.close();
			await poll(async () => (await c.get('/readyz')).status === 200,
			    { what: '/readyz 200 after a stream ended', timeout: 20000 });
			// The operations site answers only its three paths.
			assert.equal((await ops.get(postPath('u', 'd'))).status, 404);
			s2.close();
		} finally {
			ops.close();
		}
	});
});
