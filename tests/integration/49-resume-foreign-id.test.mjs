// A resume id this device's streams were never given (an id the service
// issued to another device of the run, newer than any of this device's:
// a client that mixed up its stored ids, a page's ?lastEventId= copied
// from another device) is not a position in this device's log. Through
// Caddy: the device is away (its POSTs answered 202, held), another
// device gets a message, and this device comes back with that message's
// id. Every held message must come, or a reset first; until the fix the
// service walked past them as if seen: no event, no reset, and a second
// return gets nothing either (they count as delivered).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useStack, uid, postPath, subPath, poll } from './harness.mjs';

const T = { timeout: 90000 };
const GONE = { timeout: 20000, interval: 50 };

async function post(c, u, d, data, want) {
	const r = await c.postJson(postPath(u, d), { data });
	assert.equal(r.status, want, `POST ${u}/${d}: ${r.status} ${r.text}`);
	return r.json().id;
}

describe('resume from another device\'s id', { concurrency: 1 }, () => {
	const h = useStack({ before, after }, {
		env: {
			BEEP_RATE: '0', BEEP_KEEPALIVE: '1', BEEP_GRACE_SECONDS: '60',
			BEEP_REPLAY_SECONDS: '600',
		},
	});

	for (const how of ['header', 'lastEventId']) {
		test(`held messages are not skipped by a foreign id (${how})`, T,
		    async () => {
			const c = h.stack.client();
			const u = uid('foreign');
			const phone = await h.stack.subscribe(u, 'phone');
			const laptop = await h.stack.subscribe(u, 'laptop');
			phone.close();
			await poll(async () =>
			    !(await c.devices(u)).includes('phone'),
			    { ...GONE, what: `${u}/phone unlisted` });
			const held = await post(c, u, 'phone', 'held-offer', 202);
			const other = await post(c, u, 'laptop', 'for-laptop', 200);
			const ev = await laptop.nextEvent(15000);
			assert.equal(ev.lastEventId, other);

			const headers = how === 'header' ?
			    { 'Last-Event-ID': other } : {};
			const q = how === 'header' ? '' :
			    `?lastEventId=${encodeURIComponent(other)}`;
			const back = await h.stack.open(subPath(u, 'phone') + q,
			    { headers });
			assert.equal(back.status, 200);
			await back.waitComments(1);
			const marker = await post(c, u, 'phone', 'marker', 200);
			const first = await back.nextEvent(15000);
			if (first.type !== 'reset') {
				assert.equal(first.data, 'held-offer',
				    `the held message (id ${held}) first, got ` +
				    `${first.type} ${JSON.stringify(first.data)} ` +
				    `(id ${first.lastEventId}; marker ${marker})`);
				assert.equal(first.lastEventId, held);
			}
			back.close();
			laptop.close();
		});
	}
});
