// web/beep-signal.js (in Node, with a tab's sessionStorage and a window's
// pagehide shimmed) against the real backend behind Caddy, default grace
// and replay windows: a page of the tab leaves (pagehide keeps its last id),
// its stream ends; a message is posted while the old stream is still open
// (200 to the ghost behind Caddy, or 202), another while the device is
// away (202: "held and delivered when the device comes back"); the device's
// grace runs out and the service forgets it with what it held. The next
// page of the tab connects. The service would answer the id the old page
// left with a reset (the device's new log starts past it: "event id too
// old"): the messages are lost and the page must be told (an ICE restart).
// Until 2026-12-06 the client kept that id for 30 s only, and a device is
// forgotten no sooner than 30 s after its stream ended (BEEP_GRACE_SECONDS),
// which itself ends after the page left: the next page always started
// without the id, as a fresh subscription, which gets no reset. The two
// messages were lost silently, which the README's own reasoning for the
// back-forward cache case calls a defect ("without the id it would have
// started afresh, silently past it"). Now the id is kept however long.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadClientInTab } from './tab.mjs';
import {
	startStack, poll, sid, postPath, subPath, skipReason,
} from './harness.mjs';

const { connect } = await loadClientInTab();

// Skipped under the sanitizers (the Makefile's SAN_SKIP): its subject is
// beep-signal.js.
const skip = skipReason(import.meta.url);
const T = { timeout: 120000, skip };

// The first page of the tab: connected, then left (pagehide, and its stream
// goes with the page).
async function firstPageLeaves(stack, u, d) {
	const page1 = connect({ base: stack.base, user: u, device: d });
	await poll(() => page1.lastEventId !== '',
	    { timeout: 10000, what: 'first page has a position' });
	const hide = new Event('pagehide');
	hide.persisted = false;
	window.dispatchEvent(hide);
	page1.close();
}

// What the next page of the tab gets (resets as "reset: why") up to a
// marker posted once its stream is open (its lastEventId is the kept one
// at once).
async function nextPageGets(stack, u, d, post) {
	const page2 = connect({ base: stack.base, user: u, device: d });
	const got = [];
	page2.on('reset', (reason) => got.push(`reset: ${reason}`));
	page2.on('message', (data) => got.push(data));
	try {
		await poll(() => page2.state === 'open',
		    { timeout: 10000, what: 'next page\'s stream open' });
		assert.equal(await post('marker'), 200);
		await poll(() => got.includes('marker'),
		    { timeout: 10000, what: 'marker delivered' });
	} finally {
		page2.close();
	}
	return got;
}

describe('a page of the tab back after the device was forgotten', { skip },
    () => {
	let stack;
	before(async () => {
		stack = await startStack({ env: { BEEP_KEEPALIVE: '1',
		    BEEP_RATE: '0' } });
	});
	after(async () => { await stack.stopAndCheck(); });

	test('is told (reset) that what was posted meanwhile is lost', T,
	    async () => {
		const c = stack.client();
		const u = sid(), d = 'phone';
		const post = async (data) => {
			const r = await c.postJson(postPath(u, d), { data });
			return r.status;
		};
		await firstPageLeaves(stack, u, d);
		const kept = [...sessionStorage.m.entries()]
		    .filter(([k]) => k.endsWith(`|${u}|${d}`)).map(([, v]) => v);
		assert.equal(kept.length, 1, 'pagehide kept the last id');
		// Posted while the old stream is still open behind Caddy, or
		// held: either way accepted.
		const s1 = await post('offer');
		assert.ok(s1 === 200 || s1 === 202, `offer: ${s1}`);
		await poll(async () => !(await c.devices(u)).includes(d),
		    { timeout: 20000, interval: 50, what: 'device away' });
		assert.equal(await post('candidate'), 202, 'held for the device');
		// Its grace (30 s by default) runs out: forgotten, with them.
		await poll(async () => (await c.health()).forgotten >= 1,
		    { timeout: 60000, interval: 250, what: 'device forgotten' });
		assert.equal(await post('late'), 404);

		// The service tells a client that presents that id (a control).
		const id = JSON.parse(kept[0]).id;
		const probe = await stack.open(subPath(u, d),
		    { headers: { 'Last-Event-ID': id } });
		assert.equal(probe.status, 200);
		const first = await probe.nextEvent(10000);
		probe.close();
		assert.equal(first.type, 'reset', 'with the id: a reset');

		// The next page of the tab.
		const got = await nextPageGets(stack, u, d, post);
		assert.ok(got[0].startsWith('reset') ||
		    (got[0] === 'offer' && got[1] === 'candidate'),
		    `the next page is told (a reset) or gets what was posted ` +
		    `(id kept at pagehide: ${kept[0]}); got ` +
		    JSON.stringify(got));
	});
});

// The same client against a service whose windows are longer than the
// client's 30 s of old (BEEP_REPLAY_SECONDS and BEEP_GRACE_SECONDS are the
// operator's): the next page comes 31 s after the last one left, its
// device still in grace, and the message the old stream took (200, written
// to the dead page behind Caddy) still in the replay window. The service
// replays it from the kept id; the client threw the id away, so the page
// started afresh past it: lost, and no reset.
describe('a page of the tab back after 31 s, within the windows', { skip },
    () => {
	let stack;
	before(async () => {
		stack = await startStack({ env: { BEEP_KEEPALIVE: '1',
		    BEEP_RATE: '0', BEEP_GRACE_SECONDS: '120',
		    BEEP_REPLAY_SECONDS: '120' } });
	});
	after(async () => { await stack.stopAndCheck(); });

	test('gets what the old page\'s stream took, or a reset', T,
	    async () => {
		const c = stack.client();
		const u = sid(), d = 'phone';
		const post = async (data) => {
			const r = await c.postJson(postPath(u, d), { data });
			return r.status;
		};
		sessionStorage.m.clear();
		await firstPageLeaves(stack, u, d);
		const key = [...sessionStorage.m.keys()]
		    .find((k) => k.endsWith(`|${u}|${d}`));
		assert.ok(key, 'pagehide kept the last id');
		const kept = JSON.parse(sessionStorage.getItem(key));
		// Behind Caddy the old stream is still open: it takes this.
		assert.equal(await post('offer'), 200,
		    'taken by the old page\'s stream (a ghost behind Caddy)');
		await poll(async () => !(await c.devices(u)).includes(d),
		    { timeout: 20000, interval: 50, what: 'device away' });
		assert.equal(await post('candidate'), 202, 'held');
		// The user comes back to the tab 31 s after leaving it.
		await poll(() => Date.now() > kept.at + 31000,
		    { timeout: 40000, interval: 250, what: '31 s later' });
		const got = await nextPageGets(stack, u, d, post);
		// The service replays it from the kept id (a control).
		const probe = await stack.open(subPath(u, d),
		    { headers: { 'Last-Event-ID': kept.id } });
		assert.equal(probe.status, 200);
		const first = await probe.nextEvent(10000);
		probe.close();
		assert.equal(first.data, 'offer', 'replayed from the kept id');
		assert.ok(got[0].startsWith('reset') || got[0] === 'offer',
		    `the next page gets the offer its old stream took (the ` +
		    `service replays it after ${kept.id}) or a reset; got ` +
		    JSON.stringify(got));
	});
});
