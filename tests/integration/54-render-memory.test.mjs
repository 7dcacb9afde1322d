// Review (resource exhaustion, 2026-12-06), through Caddy: what a stream that stops
// reading makes the backend hold is bounded by BEEP_MAX_MESSAGE_MEMORY, not
// by that times the number of streams times how much a message grows when
// it is written.
//
// A stream's thread renders the batch it takes (one message up to
// BEEP_MAX_BODY, or 16 KiB of them) into a buffer it keeps for as long as
// its write blocks (up to BEEP_WRITE_TIMEOUT): each line break of the data
// becomes a "data: " line of its own, so a 60,000-byte form body of line
// breaks is ~420 KiB written, for each stream of the device (8 per device,
// 32 devices per user, 256 streams per address by default). Those buffers
// are outside the message budget. Measured on HEAD: 256 never-read
// streams from one address and 369 POSTs took the backend from 5.5 MB to
// 118 MB of RSS with BEEP_MAX_MESSAGE_MEMORY at 1 MiB (the budget refusing
// further POSTs with 503 meanwhile); at the default BEEP_MAX_STREAMS that
// is ~4.4 GB from 40 addresses, and the attacker keeps it by coming back
// each BEEP_WRITE_TIMEOUT.
//
// The test: 64 streams (8 devices x 8) on raw TCP connections that are
// never read, so that the backend's writes block once the socket buffers
// between it, Caddy and the client are full; posts of line breaks round
// robin until the budget refuses one (every stream is then behind, holding
// its rendered batch). The backend's RSS growth must stay within the
// budget plus a small fixed allowance per stream (64 KiB, ten times what
// an idle stream costs). Any race (a stream still rendering when RSS is
// read) can only make the growth look smaller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
	startStack, uid, poll, postPath, subPath, SANITIZER,
} from './harness.mjs';
import { procFigures } from './faults.mjs';

const DEVICES = 8, PER_DEVICE = 8, STREAMS = DEVICES * PER_DEVICE;
const BUDGET = 1 << 20;
const PER_STREAM_ALLOWANCE = 64 * 1024;
const ROUNDS = 60; // a bound only: the budget refuses long before

test('memory held for streams that stop reading stays within ' +
    'BEEP_MAX_MESSAGE_MEMORY plus a fixed amount per stream',
{ timeout: 180000 }, async (t) => {
	const stack = await startStack({ env: {
		BEEP_MAX_MESSAGE_MEMORY: String(BUDGET),
		BEEP_WRITE_TIMEOUT: '3600', BEEP_KEEPALIVE: '60',
	} }, t);
	const c = stack.client();
	const u = uid('render');
	const socks = [];
	t.after(() => { for (const s of socks) s.destroy(); });
	for (let d = 0; d < DEVICES; d++) {
		for (let k = 0; k < PER_DEVICE; k++) {
			// Never read: not even Node reads into its own buffer.
			const sock = net.connect({ host: '127.0.0.1', port: stack.port });
			sock.pause();
			sock.write(`GET ${subPath(u, `d${d}`)} HTTP/1.1\r\n` +
			    `Host: 127.0.0.1:${stack.port}\r\n` +
			    'Accept: text/event-stream\r\n\r\n');
			socks.push(sock);
			const want = socks.length;
			await poll(async () => (await c.health()).streams === want,
			    { timeout: 10000, what: `stream ${want} registered` });
		}
	}
	const before = procFigures(stack.backend.pid).rssKib;
	const body = `data=${'\n'.repeat(60000)}`;
	const statuses = {};
	let refused = null;
	for (let i = 0; i < ROUNDS && !refused; i++) {
		for (let d = 0; d < DEVICES && !refused; d++) {
			const r = await c.request('POST', postPath(u, `d${d}`), {
				headers: {
				    'Content-Type': 'application/x-www-form-urlencoded' },
				body,
			});
			statuses[r.status] = (statuses[r.status] || 0) + 1;
			if (r.status !== 200)
				refused = r;
		}
	}
	assert.ok(refused, `no POST refused: ${JSON.stringify(statuses)}`);
	assert.equal(refused.status, 503, refused.text);
	const after = procFigures(stack.backend.pid).rssKib;
	const h = await c.health();
	const grownKib = after - before;
	const allowedKib = (BUDGET + STREAMS * PER_STREAM_ALLOWANCE) / 1024;
	t.diagnostic(`posts ${JSON.stringify(statuses)}; RSS ${before} -> ` +
	    `${after} KiB; message_bytes ${h.message_bytes}; streams ` +
	    `${h.streams}`);
	// A sanitizer's allocator keeps what is freed (ASan's quarantine):
	// RSS says nothing there.
	if (SANITIZER) {
		t.diagnostic(`RSS not checked under ${SANITIZER}`);
		return;
	}
	assert.ok(grownKib <= allowedKib,
	    `the backend grew by ${grownKib} KiB for ${STREAMS} streams that ` +
	    `stopped reading, over BEEP_MAX_MESSAGE_MEMORY (${BUDGET / 1024} ` +
	    `KiB) plus ${PER_STREAM_ALLOWANCE / 1024} KiB a stream ` +
	    `(${allowedKib} KiB): each stream keeps its rendered batch, up to ` +
	    '7 x (16 KiB + BEEP_MAX_BODY), outside the budget, while its ' +
	    'write blocks');
});
