// The reconnect stress shared by 11-replay-stress and 16-flaky-stress:
// devices whose streams are cut at random from the client side while
// messages are posted through Caddy. Each client reconnects with the last
// event id it has (the Last-Event-ID header), now and then only after a pause
// long enough for the backend to notice it gone (its posts then answer 202
// and wait in the grace window). Senders own disjoint sets of devices and
// wait for each answer, so there is at most one post in flight per device
// and the per-device order is defined. The cut schedule is random (seed in
// BEEP_STRESS_SEED, printed as a diagnostic); the outcome checked does not
// depend on timing.
//
// Two ways to keep the last id: `eventSource: false`, the id of the last
// event received (a client then cuts only once it has one); `eventSource:
// true`, as EventSource does, the last `id:` line parsed, with or without an
// event: the position a stream opens with counts, so a stream may be cut
// before its first event and lose nothing.
//
// runStress() checks what every such run must show (each accepted message
// received exactly once, in per-device order, then the end marker; no reset,
// nothing forgotten, dropped or left held) and returns { stats, hz } for the
// caller's own assertions.
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { startStack, uid, postPath, subPath } from './harness.mjs';

const GUARD = 60000;               // hang guard for any single wait

export const SEED = Number(process.env.BEEP_STRESS_SEED) ||
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

export function cmpId(a, b) {
	const [ea, na] = a.split('-').map(BigInt), [eb, nb] = b.split('-').map(BigInt);
	if (ea !== eb)
		return ea < eb ? -1 : 1;
	return na < nb ? -1 : na > nb ? 1 : 0;
}

/*
 * o: { users, devices, perDevice, senders, cutEvents: [lo, hi] (cut after
 * this many events, uniform), cutMs: [lo, hi] (or after this long, whichever
 * first), outageShare (the share of cuts followed by an outage), outageMs:
 * [lo, hi], eventSource (see above), env (the backend's) }.
 */
export async function runStress(t, o) {
	t.diagnostic(`seed ${SEED} (BEEP_STRESS_SEED)`);
	const stack = await startStack({ env: o.env || {} }, t);
	const started = Date.now();
	const run = uid('stress');
	const clients = [];
	for (let u = 0; u < o.users; u++)
		for (let d = 0; d < o.devices; d++)
			clients.push({
				user: `${run}-u${u}`, device: `d${d}`, key: `u${u}/d${d}`,
				accepted: [],      // {id, data} answered 200/202, in order
				got: [],           // {id, data} received, every connection
				lastId: null, s: null, done: false, endId: null,
				problems: [], conns: 0, cuts: 0, outages: 0,
			});
	const stats = { s200: 0, s200sub: 0, s202: 0, other: 0, subRetries: 0,
	    subStatus: {}, serverEnds: 0, cutBeforeEvent: 0 };
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
				stats.s200sub++;
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
			// A client that tracks only its events' ids cuts only once
			// it has one (else it would rightly restart live-only).
			const mayCut = () => cutting && (cl.lastId || o.eventSource);
			const limit = between(o.cutEvents);
			const timer = setTimeout(() => { cut = true; s.wake(); },
			    between(o.cutMs));
			try {
				while (!cl.done) {
					try {
						// (A cut it may not make yet must not count:
						// waitFor() would resolve at once, for ever.)
						await s.waitFor(() => s.events.length > 0 ||
						    (cut && mayCut()) || s.ended,
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
						} else if (ev.type !== 'message') {
							cl.problems.push(`event ${ev.type}: ${ev.data}`);
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
					if (mayCut() && (cut || n >= limit))
						break;
					if (s.ended && s.events.length === 0) {
						stats.serverEnds++;
						break;
					}
				}
			} finally {
				clearTimeout(timer);
				s.close();
				// EventSource: the id at the last blank line, with or
				// without data (not an id: of an event cut short).
				if (o.eventSource && s.parser.resumeId)
					cl.lastId = s.parser.resumeId;
				if (n === 0)
					stats.cutBeforeEvent++;
			}
			s = null;
			if (cl.done)
				break;
			cl.cuts++;
			if (cutting && rand() < o.outageShare) {
				// A simulated network outage, part of the workload.
				cl.outages++;
				await delay(between(o.outageMs));
			}
		}
	}

	// Open every stream first (bounded batches), then run the clients.
	const firsts = new Map();
	for (let i = 0; i < clients.length; i += 50)
		await Promise.all(clients.slice(i, i + 50).map(async (cl) => {
			const s = await connect(cl);
			await s.waitComments(1, GUARD);
			if (o.eventSource)
				cl.lastId = s.parser.resumeId || null;
			firsts.set(cl, s);
		}));
	const clientRuns = clients.map((cl) => runClient(cl, firsts.get(cl)));

	// Senders: each owns every o.senders-th device, posts round-robin, one
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
	const senders = Array.from({ length: o.senders }, (_, k) => (async () => {
		const c = stack.client({ maxSockets: 1 });
		const mine = clients.filter((_, i) => i % o.senders === k);
		for (let seq = 0; seq < o.perDevice; seq++) {
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
	    `cut before an event ${stats.cutBeforeEvent}, ` +
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
		if (cl.accepted.length !== o.perDevice)
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
	assert.equal(stats.s200 + stats.s202,
	    clients.length * (o.perDevice + 1));
	assert.equal(hz.resets, 0, 'no stream needed a reset');
	assert.equal(hz.forgotten, 0, 'no device forgotten');
	assert.equal(hz.dropped, 0, 'no message dropped');
	assert.equal(hz.held, 0, 'nothing left held');
	return { stats, hz };
}
