// The Express service looked up the device before it looked at `data`:
//
//   if (!connections[user]) 404; else if (!connections[user][device]) 404;
//   else if (!req.body.data) 400; else deliver, 200
//
// (body-parser had already answered 400 for a body it could not parse).
// So a POST whose body parses but carries no data (`{}`, `{"data":""}`,
// `data=`, no body at all) to a device with no connection was a 404, and
// clients read the status that way: Beep's own Flutter client maps 404
// to NO_DEVICE and 400 to NO_DATA, and a data-less POST was the cheap way
// to ask "is that device there?" without delivering anything. Through
// the default Caddy, beep-signal must keep that order: 404 for a device
// that is not there (never connected, grace over), 400 when it is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useStack, uid, postPath } from './harness.mjs';

const h = useStack({ before, after });
const T = { timeout: 30000 };

const J = 'application/json', F = 'application/x-www-form-urlencoded';
// Bodies that parse, with no data in them. null: no Content-Type.
const NO_DATA = [
	['JSON {}', J, '{}'],
	['JSON data ""', J, '{"data":""}'],
	['JSON data null', J, '{"data":null}'],
	['JSON, empty body (body-parser: {})', J, ''],
	['form data=', F, 'data='],
	['form, empty body', F, ''],
	['no body, no Content-Type', null, undefined],
];

async function post(c, p, ct, body) {
	const headers = ct === null ? {} : { 'Content-Type': ct };
	return c.request('POST', p, { headers, body });
}

test('no data to a device that is not there: 404, as Express answered',
    T, async () => {
	const c = h.stack.client();
	const u = uid('gone');
	// A user with a live device, and one never seen.
	const s = await h.stack.subscribe(u, 'here');
	const wrong = [];
	for (const [label, ct, body] of NO_DATA) {
		for (const p of [postPath(u, 'away'), postPath(uid('nobody'), 'd')]) {
			const r = await post(c, p, ct, body);
			if (r.status !== 404)
				wrong.push(`${label} to ${p}: ${r.status} ${r.text}`);
		}
	}
	assert.deepEqual(wrong, [], 'a POST without data to a device with no ' +
	    'connection must be 404 (the Express service checked the device ' +
	    'first; old clients read 400 as "device there, data missing"):\n  ' +
	    wrong.join('\n  '));
	s.close();
});

test('no data to a device that is there: 400, and nothing delivered', T,
    async () => {
	const c = h.stack.client();
	const u = uid('here');
	const s = await h.stack.subscribe(u, 'd');
	for (const [label, ct, body] of NO_DATA) {
		const r = await post(c, postPath(u, 'd'), ct, body);
		assert.equal(r.status, 400, `${label}: ${r.text}`);
	}
	// Only the marker arrives: none of the above was delivered.
	const ok = await c.postForm(postPath(u, 'd'), { data: 'marker' });
	assert.equal(ok.status, 200, ok.text);
	assert.equal((await s.nextEvent()).data, 'marker');
	s.close();
});
