// Stress (issue 4): 500 devices whose streams are cut at random from the
// client side while 20,000 messages are posted through Caddy. Each client
// reconnects with the last event id it saw (the Last-Event-ID header), now and
// then only after a pause long enough for the backend to notice it gone (its
// posts then answer 202 and wait in the grace window). At the end every
// message answered 200/202 was received exactly once, in per-device order,
// and nothing was reset, dropped or forgotten.
//
// Senders own disjoint sets of devices and wait for each answer, so there is
// at most one post in flight per device and the per-device order is defined.
// The cut schedule is random (seed in BEEP_STRESS_SEED, printed as a
// diagnostic); the outcome asserted does not depend on timing. A client cuts
// only once it has an id to resume from (a reconnect without one would
// rightly start live-only).
//
// A client that cuts and reconnects at once may find its device still live
// (the backend has not yet noticed the old stream gone; behind Caddy that
// takes a few keepalives): replay by id is exact either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import {
	startStack, uid, postPath, subPath, scaled, skipReason,
} from './harness.mjs';

// BEEP_TEST_SCALE (0.25 under ThreadSanitizer) scales the devices.
const USERS = scaled(50), DEVICES = 10;          // 500 devices
const PER_DEVICE = 40;                           // 20,000 messages
const SENDERS = 10;
const CUT_EVENTS = [1, 12];        // cut after this many events (uniform) ...
const CUT_MS = [50, 1500];         // ... or after this long, whichever first
const OUTAGE_SHARE = 0.08;         // share of cuts followed by an outage
const OUTAGE_MS = [1000, 6000];    // (lets the backend notice: 202 path)
const GUARD = 60000;               // hang guard for any single wait

const SEED = Number(process.env.BEEP_STRESS_SEED) ||
    Math.floor(Math.random() * 2 ** 31);

function mulberry32(a) {
	return () => {
		a |= 0;
		a = (a + 0x6d2b79f5) | 0;
		let t = Math.imul(a ^ (a >>> 15), 1 | a);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}
const rand = mulberry32(SEED);
const between = ([lo, hi]) => lo + Math.floor(rand() * (hi - lo + 1));

function cmpId(a, b) {
	const [ea, na] = a.split('-').map(BigInt), [eb, nb] = b.split('-').map(BigInt);
	if (ea !== eb)
		return ea < eb ? -1 : 1;
	return na < nb ? -1 : na > nb ? 1 : 0;
}

test(`${USERS * DEVICES} devices cut at random while ` +
    `${USERS * DEVICES * PER_DEVICE} messages are posted: every accepted ` +
    'message exactly once, in order',
    { timeout: 180000, skip: skipReason(import.meta.url) }, async (t) => {
	t.diagnostic(`seed ${SEED} (BEEP_STRESS_SEED)`);
	const stack = await startStack({
		env: {
			BEEP_KEEPALIVE: '1', BEEP_GRACE_SECONDS: '600',
			BEEP_REPLAY_SECONDS: '600', BEEP_MAX_STREAMS: '30000',
			// Later limits out of the way: every post comes from one
			// address, and a device's cut streams stay open until the
			// backend notices (several per device at a time).
			BEEP_RATE: '0', BEEP_MAX_STREAMS_PER_DEVICE: '1000',
			// 500 devices' streams, all from 127.0.0.1.
			BEEP_MAX_STREAMS_PER_ADDRESS: '0',
		},
	}, t);
	const started = Date.now();
	const run = uid('stress');
	const clients = [];
	for (let u = 0; u < USERS; u++)
		for (let d = 0; d < DEVICES; d++)
			clients.push({
				user: `${run}-u${u}`, device: `d${d}`, key: `u${u}/d${d}`,
				accepted: [],      // {id, data} answered 200/202, in order
				got: [],           // {id, data} received, every connection
				lastId: null, s: null, done: false, endId: null,
				problems: [], conns: 0, cuts: 0, outages: 0,
			});
	const stats = { s200: 0, s202: 0, other: 0, subRetries: 0,
	    subStatus: {}, serverEnds: 0 };
	let cutting = true;

	// Opens a stream for the client, resuming after its last id.
	async function connect(cl) {
		for (let attempt = 0; ; attempt++) {
			const headers = cl.lastId ? { 'Last-Event-ID': cl.lastId } : {};
			let s;
			try {
				s = await stack.open(subPath(cl.user, cl.device),
				    { headers, timeout: GUARD });
			} catch (e) {
				s = null;
				stats.subStatus[e.code || e.message] =
				    (stats.subStatus[e.code || e.message] || 0) + 1;
			}
			if (s && s.status === 200) {
				cl.conns++;
				return s;
			}
			if (s) {
				stats.subStatus[s.status] = (stats.subStatus[s.status] || 0) + 1;
				s.close();
			}
			stats.subRetries++;
			if (attempt >= 50)
				throw new Error(`${cl.key}: no stream after ${attempt} tries ` +
				    JSON.stringify(stats.subStatus));
			await delay(20 + attempt * 20);      // back-off, not a sync
		}
	}

	// One client: read, cut at random, reconnect with the last id, until
	// the end marker arrives. `first` is the stream opened during setup.
	async function runClient(cl, first) {
		let s = first;
		while (!cl.done) {
			if (!s)
				s = await connect(cl);
			cl.s = s;
			let n = 0, cut = false;
			const limit = between(CUT_EVENTS);
			const timer = setTimeout(() => { cut = true; s.wake(); },
			    between(CUT_MS));
			try {
				while (!cl.done) {
					try {
						await s.waitFor(() => s.events.length > 0 ||
						    (cut && cutting && cl.lastId) || s.ended,
						{ timeout: GUARD, what: `${cl.key}: event` });
					} catch (e) {
						// A hang guard: report it with the device's state.
						cl.problems.push(`${e.message} (received ` +
						    `${cl.got.length}, last id ${cl.lastId}, ` +
						    `accepted ${cl.accepted.length})`);
						cl.done = true;
						break;
					}
					while (s.events.length > 0 && !cl.done) {
						const ev = s.events.shift();
						cl.lastId = ev.lastEventId;
						if (ev.type === 'reset') {
							// Something was lost: this device has failed;
							// its end marker may never come (the stream
							// restarts live), so stop here.
							cl.problems.push(`reset after ${cl.got.length} ` +
							    `messages: ${ev.data}`);
							cl.done = true;
						} else if (ev.data === 'end') {
							cl.endId = ev.lastEventId;
							cl.done = true;
						} else {
							cl.got.push({ id: ev.lastEventId, data: ev.data });
						}
						n++;
					}
					if (cl.done)
						break;
					if (cutting && cl.lastId && (cut || n >= limit))
						break;
					if (s.ended && s.events.length === 0) {
						stats.serverEnds++;
						break;
					}
				}
			} finally {
				clearTimeout(timer);
				s.close();
			}
			s = null;
			if (cl.done)
				break;
			cl.cuts++;
			if (cutting && rand() < OUTAGE_SHARE) {
				// A simulated network outage, part of the workload.
				cl.outages++;
				await delay(between(OUTAGE_MS));
			}
		}
	}

	// Open every stream first (bounded batches), then run the clients.
	const firsts = new Map();
	for (let i = 0; i < clients.length; i += 50)
		await Promise.all(clients.slice(i, i + 50).map(async (cl) => {
			const s = await connect(cl);
			await s.waitComments(1, GUARD);
			firsts.set(cl, s);
		}));
	const clientRuns = clients.map((cl) => runClient(cl, firsts.get(cl)));

	// Senders: each owns every SENDERS-th device, posts round-robin, one
	// request in flight, so one in flight per device.
	const post = async (c, cl, data) => {
		const r = await c.postJson(postPath(cl.user, cl.device), { data },
		    { timeout: GUARD });
		if (r.status === 200 || r.status === 202) {
			stats[`s${r.status}`]++;
			let id;
			try { id = JSON.parse(r.text).id; } catch { }
			if (typeof id !== 'string')
				cl.problems.push(`POST ${r.status} without an id: ${r.text}`);
			return id;
		}
		stats.other++;
		cl.problems.push(`POST ${data}: ${r.status} ${r.text}`);
		return null;
	};
	const senders = Array.from({ length: SENDERS }, (_, k) => (async () => {
		const c = stack.client({ maxSockets: 1 });
		const mine = clients.filter((_, i) => i % SENDERS === k);
		for (let seq = 0; seq < PER_DEVICE; seq++) {
			for (const cl of mine) {
				const data = `${cl.key}#${seq}`;
				const id = await post(c, cl, data);
				if (id)
					cl.accepted.push({ id, data });
			}
		}
		for (const cl of mine)
			cl.endPosted = await post(c, cl, 'end');
	})());
	const sendersDone = Promise.all(senders);
	// A failed sender or client must fail the test, not hang it.
	await Promise.race([sendersDone, Promise.all(clientRuns)]);
	await sendersDone;
	const postedAt = Date.now();
	cutting = false;                  // let every client reach its end
	for (const cl of clients)
		cl.s?.wake();
	await Promise.all(clientRuns);
	const doneAt = Date.now();

	const probe = stack.client({ maxSockets: 1 });
	const hz = await probe.health();
	const sum = (f) => clients.reduce((a, cl) => a + f(cl), 0);
	t.diagnostic(`posted in ${postedAt - started} ms, all received after ` +
	    `${doneAt - started} ms; 200: ${stats.s200}, 202: ${stats.s202}, ` +
	    `other: ${stats.other}; connections ${sum((cl) => cl.conns)}, ` +
	    `cuts ${sum((cl) => cl.cuts)}, outages ${sum((cl) => cl.outages)}, ` +
	    `server-ended ${stats.serverEnds}, subscribe retries ` +
	    `${stats.subRetries} ${JSON.stringify(stats.subStatus)}; ` +
	    `healthz ${JSON.stringify(hz)}`);

	// Per device: what was accepted, in order, exactly once, then the end.
	const problems = [];
	for (const cl of clients) {
		for (const p of cl.problems.slice(0, 3))
			problems.push(`${cl.key}: ${p}`);
		if (cl.accepted.length !== PER_DEVICE)
			problems.push(`${cl.key}: only ${cl.accepted.length} accepted`);
		for (let i = 1; i < cl.accepted.length; i++)
			if (cmpId(cl.accepted[i - 1].id, cl.accepted[i].id) >= 0) {
				problems.push(`${cl.key}: POST ids not increasing at ${i}`);
				break;
			}
		const want = cl.accepted.map((m) => `${m.id} ${m.data}`);
		const got = cl.got.map((m) => `${m.id} ${m.data}`);
		if (JSON.stringify(got) !== JSON.stringify(want)) {
			const seen = new Map();
			for (const g of got)
				seen.set(g, (seen.get(g) || 0) + 1);
			const lost = want.filter((w) => !seen.has(w));
			const dup = [...seen].filter(([, n]) => n > 1).map(([g]) => g);
			problems.push(`${cl.key}: got ${got.length}/${want.length}; ` +
			    `lost ${JSON.stringify(lost.slice(0, 3))}, duplicated ` +
			    `${JSON.stringify(dup.slice(0, 3))}, first difference at ` +
			    `${got.findIndex((g, i) => g !== want[i])}`);
		}
		if (cl.endId !== cl.endPosted)
			problems.push(`${cl.key}: end marker id ${cl.endId}, ` +
			    `posted ${cl.endPosted}`);
	}
	assert.deepEqual(problems.slice(0, 30), [],
	    `${problems.length} problems (seed ${SEED})`);
	assert.equal(stats.s200 + stats.s202, clients.length * (PER_DEVICE + 1));
	assert.equal(hz.resets, 0, 'no stream needed a reset');
	assert.equal(hz.forgotten, 0, 'no device forgotten');
	assert.equal(hz.dropped, 0, 'no message dropped');
	assert.equal(hz.held, 0, 'nothing left held');
});
