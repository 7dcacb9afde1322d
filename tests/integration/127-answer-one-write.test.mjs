// An answer that fits the room left in its head's buffer (256 bytes on the
// worker's stack) goes to libfcgi in one FCGX_PutStr(), head, length line
// and body appended there; a larger one in pieces, the body where it lies
// (server_write_answer(), since 2026-12-07). Around that edge, a byte at a
// time on both sides, every answer must be the same: a Content-Length that
// is the body's, the body whole, nothing after it, and a HEAD with the
// same head and no body. The sizes are set by a device id's length in a
// device list (["<id>"]), read straight from the backend's socket (no
// front to mend or hide a wrong length).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, uid, subPath, listPath, openSub } from './harness.mjs';
import { FcgiConn } from './fcgi.mjs';

const T = { timeout: 120000 };
// server_request.c's SERVER_ANSWER_STACK.
const ROOM = 256;

async function ask(stack, t, method, uri) {
	const c = await FcgiConn.open(stack.socket, t);
	c.sendWhole(method, uri);
	const r = await c.response();
	return { ...r, raw: c.stdout.toString('latin1') };
}

// The list of user u, whose one device dev has a stream open: GET and HEAD.
async function listOne(stack, t, dev) {
	const u = uid('edge');
	const s = await openSub(stack, subPath(u, dev));
	assert.equal(s.status, 200);
	const get = await ask(stack, t, 'GET', listPath(u));
	const head = await ask(stack, t, 'HEAD', listPath(u));
	s.stream.close();
	return { get, head };
}

test('answers a byte at a time either side of the one-write edge: the ' +
    'same head, length and body', T, async (t) => {
	const stack = await startStack({}, t);
	// What an answer takes besides its id (the head, the length line,
	// the list's brackets and quotes), from an id of one byte.
	const probe = (await listOne(stack, t, 'x')).get;
	assert.equal(probe.status, 200, probe.raw);
	const fixed = probe.raw.length - 1;
	const totals = [];
	for (let total = ROOM - 4; total <= ROOM + 3; total++) {
		// The length line's digits grow with the body: 2 for the probe.
		const L = total - fixed -
		    (String(total - fixed + 4).length - String(5).length);
		const dev = 'd'.repeat(L);
		const want = JSON.stringify([dev]);
		const { get, head } = await listOne(stack, t, dev);
		totals.push(get.raw.length);
		assert.ok(get.ended && head.ended, `${L}: ended`);
		assert.equal(get.status, 200, get.raw);
		assert.equal(get.body, want,
		    `${L}: the body, whole, and nothing after it`);
		const cl = /^Content-Length: (\d+)$/mi.exec(get.head);
		assert.ok(cl, `${L}: a length: ${get.head}`);
		assert.equal(Number(cl[1]), Buffer.byteLength(want),
		    `${L}: the body's length`);
		assert.equal(head.head, get.head, `${L}: HEAD's head is GET's`);
		assert.equal(head.body, '', `${L}: HEAD has no body`);
	}
	// Both sides of the edge were asked, a byte apart.
	assert.ok(totals.includes(ROOM - 1) && totals.includes(ROOM),
	    `answer sizes ${totals}`);
});
