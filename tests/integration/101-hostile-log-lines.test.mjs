// Issue r32: what the log says, when a client (or a value the service was
// given) tries to forge it. A backend at BEEP_LOG_LEVEL=debug, in each log
// format and auth mode, is sent requests whose paths, headers, Origin,
// Last-Event-ID and tokens hold line breaks, CRs, terminal escapes (C0
// and C1), NULs, quotes, backslashes, invalid UTF-8 and very long text,
// over a raw FastCGI connection (no front to clean them up); its socket
// path, from a configuration file, holds a CR, an escape, C1 controls
// (U+009B, the 8-bit CSI; U+009D, OSC) and bytes UTF-8 forbids, and is in
// the lines that name it. Then, read as raw bytes from its stderr:
//   - json: the whole log is valid UTF-8 (a strict decoder), with no C1
//     control, U+2028 or U+2029 raw in it, and every line parses as one
//     JSON object of four strings: time, level, module, message;
//   - text: every line is a log line (time, level, module), with no
//     control character in it (C0, DEL, C1 in UTF-8), nor U+2028 or
//     U+2029, and none starts as a line forged by the requests did; the
//     whole log is valid UTF-8 (no lone byte 80-9F either).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BEEP_BIN, uid } from './harness.mjs';
import {
	record, beginRecord, FcgiConn, PARAMS, STDIN,
} from './fcgi.mjs';
import { mint, claims } from './jwt.mjs';

const T = { timeout: 60000 };
const SECRET = 'x'.repeat(40);
const FORGED = '2000-01-01T00:00:00.000Z error main: forged';
// Text a client picks, in every shape that could break a line.
const NASTY = [
	`\n${FORGED}`, `\r\n${FORGED}`, `\r${FORGED}`,
	'\x1b[2K\x1b[1A\x1b]0;title\x07', 'quote " backslash \\ "}\n{"a":"',
	'\u2028\u2029\u0085', '\u009b2K\u009d0;title\u009c',
	'x'.repeat(5000),
];
const BYTES = [
	Buffer.from([0xff, 0xfe, 0x0a, 0x00, 0x41]),
	Buffer.from([0xed, 0xa0, 0x80, 0xe0, 0x80, 0xaf, 0xc0, 0x8a]),
	Buffer.from([0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x0d, 0x0a]),
];

// FastCGI name-value pairs whose values may be Buffers (any bytes).
function encode(params) {
	const len = (n) => n < 128 ? Buffer.from([n]) :
	    Buffer.from([(n >>> 24) | 0x80, (n >>> 16) & 255, (n >>> 8) & 255,
	        n & 255]);
	return Buffer.concat(Object.entries(params).flatMap(([k, v]) => {
		const kb = Buffer.from(k);
		const vb = Buffer.isBuffer(v) ? v : Buffer.from(String(v));
		return [len(kb.length), len(vb.length), kb, vb];
	}));
}

// One request over its own connection; resolves when it is answered (or
// the connection closes). A body cut short (announced longer than sent)
// waits for the read deadline.
async function send(socket, t, method, uri, extra = {}, body = '') {
	const c = await FcgiConn.open(socket, t);
	const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
	const params = {
		REQUEST_METHOD: method, REQUEST_URI: uri, SCRIPT_NAME: uri,
		SERVER_PROTOCOL: 'HTTP/1.1', REMOTE_ADDR: '127.0.0.1',
		GATEWAY_INTERFACE: 'CGI/1.1', ...extra,
	};
	const parts = [beginRecord(1), record(PARAMS, 1, encode(params)),
	    record(PARAMS, 1)];
	if (b.length)
		parts.push(record(STDIN, 1, b));
	if (extra.CONTENT_LENGTH === undefined ||
	    Number(extra.CONTENT_LENGTH) <= b.length)
		parts.push(record(STDIN, 1));
	c.write(Buffer.concat(parts));
	return c;
}

// Resolves once conn's response head has come (its records are read by
// the connection's own listener, which runs first).
function headOf(conn) {
	return new Promise((resolve, reject) => {
		const check = () => conn.headCame() && resolve();
		conn.sock.on('data', check);
		conn.sock.once('close', () => conn.headCame() ? resolve() :
		    reject(new Error('closed before its head')));
		check();
	});
}

// A backend on a socket whose path holds a CR, an escape, C1 controls and
// forbidden UTF-8 (from a configuration file: argv and the environment of
// a node child are UTF-8); resolves { socket (a link to it), child, log() }.
async function start(t, env) {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-101-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	const real = Buffer.concat([Buffer.from(`${dir}/b\r`),
	    Buffer.from([0x1b, 0x5b, 0x4b, 0xc2, 0x9b, 0x4b, 0xc2, 0x9d,
	        0xed, 0xa0, 0x80, 0xe0, 0x80, 0xaf]),
	    Buffer.from('.sock')]);
	const conf = path.join(dir, 'beep.conf');
	writeFileSync(conf, Buffer.concat([Buffer.from('listen = "unix:'), real,
	    Buffer.from('"\n')]));
	const socket = path.join(dir, 's');
	symlinkSync(real, socket);
	const chunks = [];
	const child = spawn(BEEP_BIN, ['--config', conf], {
		cwd: dir, stdio: ['ignore', 'ignore', 'pipe'],
		env: { PATH: process.env.PATH, BEEP_RATE: '0',
		    BEEP_LOG_LEVEL: 'debug', ...env },
	});
	const exited = new Promise((resolve) =>
	    child.once('exit', (code, signal) => resolve({ code, signal })));
	t.after(() => { try { process.kill(child.pid, 'SIGKILL'); } catch {} });
	const log = () => Buffer.concat(chunks);
	await new Promise((resolve, reject) => {
		child.stderr.on('data', (d) => {
			chunks.push(d);
			if (log().includes('ready on'))
				resolve();
		});
		exited.then((e) => reject(new Error(`exited ${JSON.stringify(e)}: ` +
		    log().toString('latin1'))));
	});
	const ended = new Promise((resolve) => child.stderr.once('end', resolve));
	return {
		socket, log,
		async stop() {
			process.kill(child.pid, 'SIGTERM');
			assert.deepEqual(await exited, { code: 0, signal: null });
			await ended;
			return log();
		},
	};
}

// What a hostile client sends: every nasty text in each place a request
// carries text, and the requests that make the service log (a stream that
// ends, the stream limit, a body cut short, a bad token).
async function hostile(t, b, { jwt }) {
	const token = (sub) => mint(claims(sub), { key: SECRET });
	const auth = (v) => jwt ? { HTTP_AUTHORIZATION: v } : {};
	const answered = [];
	const texts = [...NASTY, ...BYTES];
	for (const v of texts) {
		const s = Buffer.isBuffer(v) ? v.toString('latin1') : v;
		const enc = encodeURIComponent(s);
		const raw = Buffer.isBuffer(v) ? v : Buffer.from(v);
		const headers = {
			HTTP_ORIGIN: raw, HTTP_LAST_EVENT_ID: raw, HTTP_USER_AGENT: raw,
			HTTP_ACCEPT: 'text/event-stream', HTTP_COOKIE: raw,
			HTTP_HOST: raw,
			...auth(Buffer.concat([Buffer.from('Bearer '), raw])),
		};
		for (const uri of [`/subscribe/${enc}/device/${enc}`,
		    `/user/${enc}/devices`, `/user/${enc}/device/d?x=${enc}`,
		    Buffer.concat([Buffer.from('/user/'), raw, Buffer.from('/devices')]),
		    `/metrics?${enc}`, `/${enc}`])
			answered.push(send(b.socket, t, 'GET', uri, headers));
		answered.push(send(b.socket, t, 'POST', `/user/${enc}/device/d`, {
			...headers, CONTENT_TYPE: raw,
			CONTENT_LENGTH: String(raw.length + 10),
		}, Buffer.concat([Buffer.from('{"data":"'), raw, Buffer.from('"}')])));
		answered.push(send(b.socket, t, s.slice(0, 20), `/user/${enc}`, headers));
		if (jwt) {
			// A token that verifies, for a user named so.
			answered.push(send(b.socket, t, 'GET', `/user/u/devices`,
			    auth(`Bearer ${token(s)}`)));
		}
	}
	const conns = await Promise.all(answered);
	await Promise.all(conns.map((c) => c.response()));
	// A stream that ends (debug: why), and the stream limit (warn).
	const u = uid('h');
	const hdr = jwt ? auth(`Bearer ${token(u)}`) : {};
	const s1 = await send(b.socket, t, 'GET', `/subscribe/${u}/device/d`,
	    { ...hdr, HTTP_ACCEPT: 'text/event-stream' });
	await headOf(s1);
	const s2 = await send(b.socket, t, 'GET', `/subscribe/${u}/device/e`,
	    { ...hdr, HTTP_ACCEPT: 'application/json' });
	const r2 = await s2.response();
	assert.equal(r2.status, 503, r2.head);
	s1.destroy();
	// A body cut short: answered 408 at the read deadline (warn).
	const cut = await send(b.socket, t, 'POST', `/user/${u}/device/d`, {
		...hdr, CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '100',
		HTTP_ORIGIN: `https://a.example\n${FORGED}`,
	}, '{"data":"');
	assert.equal((await cut.response()).status, 408);
}

const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) [a-z_]+: /;

function checkText(bytes) {
	const lines = bytes.toString('latin1').split('\n');
	assert.equal(lines.pop(), '', 'the log ends with a newline');
	assert.ok(lines.length >= 5, lines.join('\n'));
	for (const l of lines) {
		assert.match(l, LINE, 'a log line');
		assert.doesNotMatch(l, /[\x00-\x1f\x7f]/, `a control byte: ${
		    JSON.stringify(l)}`);
		// Read as Latin-1: C2 80-9F is a C1 control in UTF-8, E2 80 A8
		// and A9 are U+2028 and U+2029.
		assert.doesNotMatch(l, /\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]/,
		    `a C1 control or U+2028/U+2029: ${JSON.stringify(l)}`);
		assert.ok(!l.startsWith('2000-'), `forged: ${l}`);
	}
	// Bytes that are not UTF-8 are written \xHH: the whole log is UTF-8
	// (a strict decoder), so no lone byte 80-9F (a C1 control to a
	// terminal that reads bytes as Latin-1) is in it either.
	assert.doesNotThrow(() => {
		new TextDecoder('utf-8', { fatal: true }).decode(bytes);
	}, 'the log is UTF-8');
	return lines;
}

function checkJson(bytes) {
	let text;
	assert.doesNotThrow(() => {
		text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
	}, 'the log is UTF-8');
	const lines = text.split('\n');
	assert.equal(lines.pop(), '', 'the log ends with a newline');
	assert.ok(lines.length >= 5, text);
	for (const l of lines) {
		let d;
		assert.doesNotMatch(l, /[\u0080-\u009f\u2028\u2029]/,
		    `a C1 control or U+2028/U+2029 raw: ${JSON.stringify(l)}`);
		assert.doesNotThrow(() => { d = JSON.parse(l); }, l);
		assert.deepEqual(Object.keys(d), ['time', 'level', 'module',
		    'message'], l);
		for (const k of Object.keys(d))
			assert.equal(typeof d[k], 'string', l);
		assert.match(d.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
		assert.match(d.level, /^(debug|info|warn|error)$/);
	}
	return lines.map((l) => JSON.parse(l));
}

for (const format of ['text', 'json']) {
	for (const jwt of [false, true]) {
		test(`BEEP_LOG_FORMAT=${format}, ${jwt ? 'jwt' : 'open'} mode: ` +
		    'no line forged, every line whole', T, async (t) => {
			const b = await start(t, { BEEP_LOG_FORMAT: format,
			    BEEP_MAX_STREAMS: '1', BEEP_READ_TIMEOUT: '1',
			    ...(jwt ? { BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET } :
			        {}) });
			await hostile(t, b, { jwt });
			const bytes = await b.stop();
			const lines = format === 'json' ? checkJson(bytes)
			    .map((d) => `${d.level} ${d.message}`) : checkText(bytes);
			// The lines the run was to make are there.
			for (const re of [/ready on unix:/, /stream \d+ ended/,
			    /stream limit reached/, /not read within BEEP_READ_TIMEOUT/,
			    /stopped/])
				assert.ok(lines.some((l) => re.test(l)), `${re}:\n` +
				    lines.join('\n'));
		});
	}
}
