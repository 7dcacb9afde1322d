// Black-box integration harness for beep-signal.
//
// Starts the real backend binary on a unix socket in a fresh temp dir, a real
// Caddy in front of it on a free loopback port, and offers small HTTP and SSE
// clients (the SSE parser and reader live in sse.mjs). Everything is stopped
// by pid (SIGTERM, then SIGKILL after a bound) and the temp dir removed, also
// when a test fails or the process exits. After a stack stops, its backend
// log is checked: sanitizer reports, unexpected `error` lines and lines not in
// the log format fail the test, and so does an exit other than 0 on SIGTERM.
//
// Typical use, one stack per file (or per describe block):
//   const h = useStack({ before, after }, { env: { BEEP_KEEPALIVE: '1' } });
//   test('x', async () => { const s = await h.stack.subscribe('u', 'd'); });
// or per test: const stack = await startStack({ env }, t);
//
// Run: node --test tests/integration/   (from the project root; each file gets
// its own temp dir, socket and port, so --test-concurrency=N is safe)
//
// Environment:
//   BEEP_BIN        backend binary (default build/beep-signal under the root)
//   BEEP_CADDYFILE  Caddyfile to run (default Caddyfile under the root;
//                   startStack({ caddyfile }) overrides it for one stack)
//   BEEP_TEST_DEBUG set to 1 to echo backend and Caddy stderr while running
//   BEEP_TEST_SANITIZER  the sanitizer the binary was built with (make sets
//                   it: "address,undefined", "thread", or empty)
//   BEEP_TEST_SCALE a factor (0 < f <= 1, default 1) by which the stress
//                   files scale their counts (scaled()); `make test
//                   SANITIZE=thread` sets 0.25: same shape, same checks
//   BEEP_TEST_SKIP  files to skip, reason given: "NAME=reason;NAME=reason"
//                   where NAME is a file name without .test.mjs; a skipped
//                   file's tests report SKIP with the reason (skipReason()),
//                   never pass silently. `make test SANITIZE=...` sets
//                   the Makefile's SAN_SKIP (and, for thread, TSAN_SKIP).
//
// No sleeps as synchronisation: callers await events, and poll() with a bound
// only when they wait for a state change. Timeouts here are hang guards.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
	mkdtempSync, rmSync, existsSync, mkdirSync, writeFileSync, readFileSync,
	unlinkSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { SseStream, EventStreamParser } from './sse.mjs';

export { SseStream, EventStreamParser };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
    '..', '..');
export const BEEP_BIN = path.resolve(ROOT,
    process.env.BEEP_BIN || 'build/beep-signal');
export const CADDYFILE = path.resolve(ROOT,
    process.env.BEEP_CADDYFILE || 'Caddyfile');
const DEBUG = process.env.BEEP_TEST_DEBUG === '1';
export const SANITIZER = process.env.BEEP_TEST_SANITIZER || '';

// The stress scale (BEEP_TEST_SCALE): n scaled, at least `min`.
export const SCALE = (() => {
	const f = Number(process.env.BEEP_TEST_SCALE || '1');
	if (!(f > 0 && f <= 1))
		throw new Error(`BEEP_TEST_SCALE must be in (0, 1]: ${f}`);
	return f;
})();
export const scaled = (n, min = 1) => Math.max(min, Math.round(n * SCALE));

// The reason a test file is skipped (BEEP_TEST_SKIP), or false: pass it as
// the `skip` option of the file's tests, e.g.
//   test('...', { skip: skipReason(import.meta.url) }, ...)
export function skipReason(fileUrl) {
	const name = path.basename(fileURLToPath(fileUrl)).replace(/\.test\.mjs$/, '');
	for (const entry of (process.env.BEEP_TEST_SKIP || '').split(';')) {
		const eq = entry.indexOf('=');
		const key = (eq < 0 ? entry : entry.slice(0, eq)).trim();
		if (key && key === name)
			return `BEEP_TEST_SKIP: ${eq < 0 ? 'no reason given' :
			    entry.slice(eq + 1).trim()}`;
	}
	return false;
}

// Hang guards (ms). Generous: the suite also runs under ASan/UBSan.
const READY_GUARD = 20000;
const CADDY_GUARD = 15000;
const STOP_GUARD = 5000;

// ---------------------------------------------------------------------------
// Process bookkeeping: whatever happens, no child outlives this process.

const liveChildren = new Set();   // ChildProcess
const liveDirs = new Set();       // temp dirs to remove

function killAllSync() {
	for (const child of liveChildren) {
		try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
	}
	liveChildren.clear();
	for (const dir of liveDirs) {
		try { rmSync(dir, { recursive: true, force: true }); } catch { }
	}
	liveDirs.clear();
}

process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
	process.once(sig, () => {
		killAllSync();
		process.exit(128 + os.constants.signals[sig]);
	});
}

function trackChild(child) {
	liveChildren.add(child);
	child.exitInfo = null;
	child.exited = new Promise((resolve) => {
		child.once('exit', (code, signal) => {
			liveChildren.delete(child);
			child.exitInfo = { code, signal };
			resolve(child.exitInfo);
		});
	});
	return child;
}

// Stops a child by pid: SIGTERM, SIGKILL after `guard` ms. Returns
// { code, signal, killed } where killed tells SIGKILL was needed.
async function stopChild(child, guard = STOP_GUARD, sig = 'SIGTERM') {
	if (child.exitInfo)
		return { ...child.exitInfo, killed: false };
	try { process.kill(child.pid, sig); } catch { }
	const r = await withTimeout(child.exited, guard, null).catch(() => null);
	if (r)
		return { ...r, killed: false };
	try { process.kill(child.pid, 'SIGKILL'); } catch { }
	const k = await child.exited;
	return { ...k, killed: true };
}

// ---------------------------------------------------------------------------
// Small utilities.

// Resolves with p, or rejects (or resolves with `fallback` when given as a
// third argument) when `ms` passes first.
export function withTimeout(p, ms, ...fallback) {
	let timer;
	const guard = new Promise((resolve, reject) => {
		timer = setTimeout(() => {
			if (fallback.length)
				resolve(fallback[0]);
			else
				reject(new Error(`hang guard: nothing after ${ms} ms`));
		}, ms);
	});
	return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

// Polls `fn` until it returns a truthy value; bounded by `timeout` ms.
export async function poll(fn, { timeout = 10000, interval = 50,
    what = 'condition' } = {}) {
	const end = Date.now() + timeout;
	let last;
	for (;;) {
		last = await fn();
		if (last)
			return last;
		if (Date.now() > end)
			throw new Error(`poll: ${what} not reached within ${timeout} ms` +
			    ` (last: ${JSON.stringify(last)})`);
		await delay(interval);
	}
}

// A free loopback TCP port (bind port 0, read it, close), claimed for this
// process until it exits, so that no other test process gets it from here.
// Caddy binds with SO_REUSEPORT: two Caddies of two test files given one
// port would both listen on it, and each get half of the other's requests
// (a 404 from an operations site that has no /subscribe).  Callers retry
// on the small race with processes that are not tests.
const PORT_CLAIMS = path.join(os.tmpdir(), 'beep-test-ports');
const claimedPorts = new Set();
process.on('exit', () => {
	for (const f of claimedPorts) {
		try { unlinkSync(f); } catch { /* gone */ }
	}
});

function probePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.unref();
		srv.on('error', reject);
		srv.listen(0, '127.0.0.1', () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

// Whether the claim file f is held by a live process.
function claimHeld(f) {
	let pid;
	try { pid = Number(readFileSync(f, 'utf8')); } catch { return false; }
	if (!(pid > 0))
		return false;
	try { process.kill(pid, 0); return true; } catch (e) {
		return e.code === 'EPERM';
	}
}

export async function freePort() {
	mkdirSync(PORT_CLAIMS, { recursive: true });
	for (;;) {
		const port = await probePort();
		const f = path.join(PORT_CLAIMS, String(port));
		try {
			writeFileSync(f, String(process.pid), { flag: 'wx' });
			claimedPorts.add(f);
			return port;
		} catch (e) {
			if (e.code !== 'EEXIST')
				throw e;
			if (!claimHeld(f)) {
				try { unlinkSync(f); } catch { /* raced */ }
			}
		}
	}
}

// Collects a child's stream into an array of lines and calls onLine for each;
// with flushToOnLine false, a last line without a newline is only collected.
export function lineCollector(stream, sink, tag, onLine,
    { flushToOnLine = true } = {}) {
	let partial = '';
	stream.setEncoding('utf8');
	stream.on('data', (chunk) => {
		if (DEBUG)
			process.stderr.write(chunk.replace(/^/gm, `[${tag}] `));
		partial += chunk;
		let nl;
		while ((nl = partial.indexOf('\n')) >= 0) {
			const line = partial.slice(0, nl);
			partial = partial.slice(nl + 1);
			sink.push(line);
			if (onLine)
				onLine(line);
		}
	});
	stream.on('end', () => {
		if (partial) {
			sink.push(partial);
			if (onLine && flushToOnLine)
				onLine(partial);
			partial = '';
		}
	});
}

// The environment the shipped Caddyfile runs with: home (and its XDG dirs) at
// home, listening on 127.0.0.1:port, the backend on the unix socket, no admin,
// and the loopback operations site (/metrics, /readyz) on opsPort when given
// (else the Caddyfile's default, 9180, which Caddies share by SO_REUSEPORT).
export function caddyEnv(home, port, socket, opsPort) {
	return {
		...(opsPort ? { OPS_PORT: String(opsPort) } : {}),
		PATH: process.env.PATH,
		HOME: home,
		XDG_DATA_HOME: path.join(home, 'data'),
		XDG_CONFIG_HOME: path.join(home, 'config'),
		XDG_CACHE_HOME: path.join(home, 'cache'),
		SITE_ADDRESS: `:${port}`,
		CADDY_BIND: '127.0.0.1',
		BEEP_SOCKET: socket,
		CADDY_ADMIN: 'off',
		BEEP_WEB_ROOT: path.join(ROOT, 'web'),
		BEEP_CADDY_WEB: path.join(ROOT, 'conf', 'caddy-web.conf'),
	};
}

// Polls GET /healthz at base until it answers 200; fails at once with
// "<name> exited: ..." when proc (anything with an exitInfo) has exited.
export async function waitHealthz(base, proc, name, { timeout, what }) {
	const probe = new Client(base, { maxSockets: 1 });
	try {
		await poll(async () => {
			if (proc.exitInfo)
				throw new Error(`${name} exited: ` +
				    JSON.stringify(proc.exitInfo));
			try {
				const r = await probe.get('/healthz', { timeout: 2000 });
				return r.status === 200;
			} catch {
				return false;
			}
		}, { timeout, interval: 50, what });
	} finally {
		probe.close();
	}
}

// ---------------------------------------------------------------------------
// HTTP client with full control over the raw path, headers and body.

export class Client {
	constructor(base, { maxSockets = 8 } = {}) {
		const u = new URL(base);
		this.host = u.hostname;
		this.port = Number(u.port);
		this.base = base;
		this.agent = new http.Agent({ keepAlive: true, maxSockets });
	}

	// Sends one request. `path` goes on the wire as is. `body` is a string
	// (sent as UTF-8) or a Buffer; no Content-Type is added unless asked.
	// `chunked`: the body goes with Transfer-Encoding: chunked, in two
	// chunks, and no Content-Length (as fetch() with a stream, curl -T -).
	// Resolves with { status, headers, body (Buffer), text, json() }.
	request(method, reqPath,
	    { headers = {}, body, timeout = 10000, chunked = false } = {}) {
		return new Promise((resolve, reject) => {
			const h = { ...headers };
			let buf = null;
			if (body !== undefined) {
				buf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
				if (chunked)
					h['Transfer-Encoding'] = 'chunked';
				else
					h['Content-Length'] = String(buf.length);
			}
			const req = http.request({
				host: this.host, port: this.port, method, path: reqPath,
				headers: h, agent: this.agent,
			}, (res) => {
				const chunks = [];
				res.on('data', (c) => chunks.push(c));
				res.on('end', () => {
					clearTimeout(timer);
					const b = Buffer.concat(chunks);
					const text = b.toString('utf8');
					resolve({
						status: res.statusCode, headers: res.headers,
						body: b, text,
						json() {
							try { return JSON.parse(text); } catch (e) {
								throw new Error(`not JSON (${res.statusCode}): ` +
								    JSON.stringify(text));
							}
						},
					});
				});
				res.on('error', reject);
			});
			const timer = setTimeout(() => {
				req.destroy(new Error(`hang guard: ${method} ${reqPath} ` +
				    `no answer within ${timeout} ms`));
			}, timeout);
			req.on('error', (e) => { clearTimeout(timer); reject(e); });
			if (chunked && buf !== null && buf.length > 1) {
				const half = Math.floor(buf.length / 2);
				req.write(buf.subarray(0, half));
				buf = buf.subarray(half);
			}
			req.end(buf ?? undefined);
		});
	}

	get(p, opts) { return this.request('GET', p, opts); }
	options(p, opts) { return this.request('OPTIONS', p, opts); }

	// POST with a JSON body (object -> JSON text; string sent verbatim).
	postJson(p, value, { headers = {}, ...opts } = {}) {
		const body = typeof value === 'string' ? value : JSON.stringify(value);
		return this.request('POST', p, {
			headers: { 'Content-Type': 'application/json', ...headers },
			body, ...opts,
		});
	}

	// POST a form body (object -> urlencoded; string sent verbatim).
	postForm(p, fields, { headers = {}, ...opts } = {}) {
		const body = typeof fields === 'string' ? fields :
		    new URLSearchParams(fields).toString();
		return this.request('POST', p, {
			headers: {
				'Content-Type': 'application/x-www-form-urlencoded',
				...headers,
			},
			body, ...opts,
		});
	}

	async devices(user) {
		const r = await this.get(`/user/${encodeURIComponent(user)}/devices`);
		if (r.status !== 200)
			throw new Error(`devices(${user}): ${r.status} ${r.text}`);
		return r.json().slice().sort();
	}

	async health() {
		const r = await this.get('/healthz');
		if (r.status !== 200)
			throw new Error(`healthz: ${r.status} ${r.text}`);
		return r.json();
	}

	close() { this.agent.destroy(); }
}

// Path helpers: ids are encoded with encodeURIComponent unless raw.
// How many occurrences the lines of one rate-limited log kind tell
// (log_limit_pass()): each line of itself and of those held back before
// it ("(N more not logged)"), a summary ("N more not logged in the last
// S s: ...", once the second is over or at the stop) of those held back
// after the last.
export const toldByLines = (lines) => lines.reduce((n, l) => {
	const sum = /: (\d+) more not logged in the last \d+ s: /.exec(l);
	const m = /\((\d+) more not logged\)$/.exec(l);
	assert.ok(sum || m, `no count: ${l}`);
	return n + (sum ? Number(sum[1]) : 1 + Number(m[1]));
}, 0);

export const enc = encodeURIComponent;
export const subPath = (u, d) => `/subscribe/${enc(u)}/device/${enc(d)}`;
export const postPath = (u, d) => `/user/${enc(u)}/device/${enc(d)}`;
export const listPath = (u) => `/user/${enc(u)}/devices`;

// True when an answer { headers } says its body is JSON.
export const isJson = (r) =>
	/^application\/json\b/i.test(r.headers['content-type'] || '');

// Opens a subscribe on a stack; a 200 is awaited to its first comment
// (registered), any other answer is read to its end.
// Resolves { status, headers, text, stream }.
export async function openSub(stack, p, headers = {}) {
	const s = await stack.open(p, { headers });
	if (s.status === 200) {
		await s.waitComments(1);
		return { status: 200, headers: s.headers, text: '', stream: s };
	}
	const text = await s.text();
	return { status: s.status, headers: s.headers, text, stream: null };
}

// A stream refused for now, as EventSource (Accept: text/event-stream
// alone), which never retries a 429 or 503, must get it: 200, an event
// "refused" carrying the error and its status, a retry: field from
// Retry-After (5 s) up to twice that, no id, and the end, after which
// EventSource comes back. opener: a stack or a front rig (its open()).
// front: the refusal is the front's own, no backend having been reached
// (its 502 or 503 made one): retry: 5 to 6 s, readable from any origin,
// and a JSON reader gets the front's bare status.
export async function expectRefusedStream(opener, p, status, error,
    { front = false } = {}) {
	const s = await opener.open(p,
	    { headers: { Accept: 'text/event-stream' } });
	assert.equal(s.status, 200, `${p}: refused as a stream`);
	assert.match(s.headers['content-type'] || '', /^text\/event-stream/i);
	assert.equal(s.headers['retry-after'], '5');
	assert.equal(s.headers['cache-control'], 'no-store');
	assert.equal(await s.done, 'end', `${p}: the refusal ends`);
	assert.ok(s.retry >= 5000 && s.retry < (front ? 6000 : 10000),
	    `retry: ${s.retry}`);
	if (front) {
		assert.equal(s.headers.vary, 'Origin');
		assert.equal(s.headers['access-control-allow-origin'], undefined,
		    'no Origin, no CORS answer');
	}
	// status: one, or those a front may answer (e.g. [502, 503]).
	const statuses = [status].flat();
	assert.deepEqual(s.events.map((e) => [e.type, e.lastEventId]),
	    [['refused', '']]);
	const told = JSON.parse(s.events[0].data);
	assert.deepEqual(Object.keys(told), ['error', 'status']);
	assert.equal(told.error, error);
	assert.ok(statuses.includes(told.status), `status ${told.status}`);
	// The id it resumes from is given back: a client that keeps only the
	// ids of the response in hand (the WHATWG model) keeps it so.
	const origin = 'https://app.example';
	const r = await opener.open(p, { headers: {
	    Accept: 'text/event-stream', 'Last-Event-ID': '1-7', Origin: origin,
	} });
	assert.equal(r.status, 200);
	await r.done;
	assert.deepEqual(r.events.map((e) => [e.type, e.lastEventId]),
	    [['refused', '1-7']]);
	if (front) {
		assert.equal(r.headers['access-control-allow-origin'], origin);
		assert.equal(r.headers['access-control-allow-credentials'],
		    'true');
	}
	// An id longer than any the service makes (128 at most) is not given
	// back: no field of the client's choosing and size.
	const long = await opener.open(p, { headers: {
	    Accept: 'text/event-stream', 'Last-Event-ID': '7'.repeat(129) } });
	assert.equal(long.status, 200);
	await long.done;
	assert.deepEqual(long.events.map((e) => [e.type, e.lastEventId]),
	    [['refused', '']]);
	// A client that also reads JSON gets the status and the error.
	const j = await opener.open(p,
	    { headers: { Accept: 'text/event-stream, application/json' } });
	assert.ok(statuses.includes(j.status),
	    `${p}: the status, for JSON readers: ${j.status}`);
	const body = await j.text();
	if (!front)
		assert.equal(JSON.parse(body).error, error);
}

// ---------------------------------------------------------------------------
// The stack: backend + Caddy.

const SANITIZER_RE = /AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer/;
const LOG_LINE_RE =
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z (debug|info|warn|error) [^:\s]+: /i;

class Stack {
	constructor(opts) {
		this.opts = opts;
		this.dir = mkdtempSync(path.join(os.tmpdir(), 'beep-it-'));
		liveDirs.add(this.dir);
		this.socket = path.join(this.dir, 'beep.sock');
		this.caddyfile = opts.caddyfile ?
		    path.resolve(ROOT, opts.caddyfile) : CADDYFILE;
		this.backendLog = [];
		this.backendStdout = [];
		this.caddyLog = [];
		this.clients = new Set();
		this.streams = new Set();
		this.stopped = null;
		this.backendExit = null;
	}

	backendEnv() {
		const env = {};
		for (const [k, v] of Object.entries(process.env)) {
			// Only what the test asks for may configure the backend.
			if (k.startsWith('BEEP_') || k === 'LISTEN_FDS' ||
			    k === 'LISTEN_PID')
				continue;
			env[k] = v;
		}
		// The POST rate limit is off unless a test turns it on: the
		// suites post thousands of messages from one address (14-abuse
		// tests the limit itself).
		return { ...env, BEEP_RATE: '0', ...this.opts.env };
	}

	async startBackend() {
		if (!existsSync(BEEP_BIN))
			throw new Error(`backend binary not found: ${BEEP_BIN} ` +
			    '(run make, or set BEEP_BIN)');
		const args = ['--listen', `unix:${this.socket}`,
		    ...(this.opts.args || [])];
		const child = trackChild(spawn(BEEP_BIN, args, {
			cwd: this.dir, env: this.backendEnv(),
			stdio: ['ignore', 'pipe', 'pipe'],
		}));
		this.backend = child;
		this.ready = new Promise((resolve) => { this.sawReady = resolve; });
		lineCollector(child.stderr, this.backendLog, 'beep', (line) => {
			if (/\bready\b/.test(line))
				this.sawReady(true);
		});
		lineCollector(child.stdout, this.backendStdout, 'beep-out');
		this.spawnFailed = new Promise((_, reject) =>
		    child.once('error', (e) => reject(e)));
		this.spawnFailed.catch(() => {});
		await this.waitReady();
	}

	async waitReady() {
		const exited = this.backend.exited.then((info) => {
			throw new Error(`backend exited before ready: ` +
			    `${JSON.stringify(info)}`);
		});
		try {
			await withTimeout(Promise.race([this.ready, this.spawnFailed,
			    exited]), READY_GUARD);
		} catch (e) {
			e.message += `\nbackend stderr:\n${this.backendLog.join('\n')}`;
			throw e;
		} finally {
			exited.catch(() => {});
		}
	}

	async startCaddy() {
		let lastErr;
		for (let attempt = 0; attempt < 4; attempt++) {
			const port = await freePort();
			const opsPort = await freePort();
			const home = path.join(this.dir, 'home');
			const env = caddyEnv(home, port, this.socket, opsPort);
			// Extra variables for another Caddyfile (e.g. AUTH_UPSTREAM);
			// they cannot override the ones the harness owns.
			const extra = { ...(this.opts.caddyEnv || {}) };
			for (const k of Object.keys(env))
				delete extra[k];
			Object.assign(env, extra);
			const log = [];
			const child = trackChild(spawn('caddy', ['run', '--config',
			    this.caddyfile, '--adapter', 'caddyfile'], {
				cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'],
			}));
			lineCollector(child.stderr, log, 'caddy');
			lineCollector(child.stdout, log, 'caddy-out');
			this.caddy = child;
			this.caddyLog = log;
			this.port = port;
			this.base = `http://127.0.0.1:${port}`;
			// The operations site: /metrics, /readyz, /healthz.
			this.opsPort = opsPort;
			this.opsBase = `http://127.0.0.1:${opsPort}`;
			try {
				await waitHealthz(this.base, child, 'caddy', {
					timeout: CADDY_GUARD,
					what: 'GET /healthz 200 through Caddy',
				});
				return;
			} catch (e) {
				lastErr = e;
				await stopChild(child, 2000);
				// Retry only when Caddy died (e.g. lost the port race).
				if (!child.exitInfo || !/caddy exited/.test(e.message))
					break;
			}
		}
		throw new Error(`${lastErr.message}\ncaddy log:\n` +
		    `${this.caddyLog.join('\n')}\nbackend log:\n` +
		    `${this.backendLog.join('\n')}`);
	}

	// A new HTTP client through Caddy; closed when the stack stops.
	client(opts) {
		const c = new Client(this.base, opts);
		this.clients.add(c);
		return c;
	}

	// Opens an SSE stream through Caddy (closed when the stack stops).
	async open(reqPath, opts) {
		const s = await SseStream.open(this.base, reqPath, opts);
		this.streams.add(s);
		return s;
	}

	// Subscribes (user, device) and waits for status 200 and the initial
	// comment, after which the stream is registered.
	async subscribe(user, device, { headers, timeout = 10000 } = {}) {
		const s = await this.open(subPath(user, device),
		    { headers, timeout });
		if (s.status !== 200) {
			const body = await s.text().catch(() => s.rawText);
			throw new Error(`subscribe ${user}/${device}: ${s.status} ` +
			    body);
		}
		await s.waitComments(1, timeout);
		return s;
	}

	// Sends `sig` to the backend and awaits its exit (bounded).
	async signalBackend(sig = 'SIGTERM', guard = STOP_GUARD) {
		this.backendExit = await stopChild(this.backend, guard, sig);
		return this.backendExit;
	}

	// Starts a new backend on the same socket once the old one is gone
	// (killed by a test): Caddy, still running, proxies to the new one,
	// whose exit on SIGTERM stopAndCheck() then checks.
	async restartBackend() {
		if (this.backend && !this.backend.exitInfo)
			throw new Error('restartBackend: the backend is still running');
		this.backendExit = null;
		await this.startBackend();
	}

	// Stops everything; idempotent. Returns the backend's exit info.
	stop() {
		if (!this.stopped)
			this.stopped = this.doStop();
		return this.stopped;
	}

	async doStop() {
		for (const s of this.streams)
			s.close();
		for (const c of this.clients)
			c.close();
		try {
			if (this.backend && !this.backendExit)
				this.backendExit = await stopChild(this.backend);
			if (this.caddy)
				await stopChild(this.caddy);
		} finally {
			// Let the pipes drain so the whole log is captured.
			await withTimeout(Promise.all([this.backend, this.caddy]
			    .filter(Boolean).map(streamsClosed)), 2000, null);
			try {
				rmSync(this.dir, { recursive: true, force: true });
			} catch { }
			liveDirs.delete(this.dir);
		}
		return this.backendExit;
	}

	// Problems in the backend's stderr: sanitizer reports, error-level lines
	// not matching `allowErrors`, lines not in the log format.
	logProblems({ allowErrors = [], ignoreLines = [] } = {}) {
		const problems = [];
		for (const line of this.backendLog) {
			if (SANITIZER_RE.test(line)) {
				problems.push(`sanitizer: ${line}`);
				continue;
			}
			if (line.trim() === '' || ignoreLines.some((re) => re.test(line)))
				continue;
			const m = LOG_LINE_RE.exec(line);
			if (!m) {
				problems.push(`not a log line: ${line}`);
				continue;
			}
			if (m[1].toLowerCase() === 'error' &&
			    !allowErrors.some((re) => re.test(line)))
				problems.push(`error: ${line}`);
		}
		for (const line of this.backendStdout)
			if (SANITIZER_RE.test(line))
				problems.push(`sanitizer (stdout): ${line}`);
		return problems;
	}

	// Throws when the backend log shows a problem (see logProblems).
	checkLog(opts) {
		const problems = this.logProblems(opts);
		if (problems.length) {
			throw new Error('backend log problems:\n  ' +
			    problems.slice(0, 30).join('\n  ') +
			    `\nfull backend log:\n${this.backendLog.join('\n')}`);
		}
	}

	// Stops the stack, then checks that the backend exited 0 on SIGTERM by
	// itself and that its log is clean.
	async stopAndCheck(opts = {}) {
		const exit = await this.stop();
		this.checkLog(opts);
		if (exit && opts.checkExit !== false) {
			if (exit.killed || exit.code !== 0) {
				throw new Error(`backend did not exit 0 on SIGTERM: ` +
				    `${JSON.stringify(exit)}\n${this.backendLog.join('\n')}`);
			}
		}
	}
}

function streamsClosed(child) {
	return Promise.all([child.stdout, child.stderr].map((s) =>
	    new Promise((resolve) => {
		if (!s || s.destroyed || s.readableEnded)
			resolve();
		else
			s.once('close', resolve);
	})));
}

// Starts backend + Caddy. opts: { env: {BEEP_...}, args: [...], caddy: true,
// caddyfile: path (default CADDYFILE; relative to the root), caddyEnv: {...}
// (extra variables for that Caddyfile), check: { allowErrors: [RegExp],
// ignoreLines: [RegExp], checkExit } }.
// With `t` (a TestContext), or from a suite via useStack(), cleanup and the
// log check are registered automatically.
export async function startStack(opts = {}, t) {
	const stack = new Stack(opts);
	if (t)
		t.after(() => stack.stopAndCheck(opts.check));
	try {
		await stack.startBackend();
		if (opts.caddy !== false)
			await stack.startCaddy();
	} catch (e) {
		await stack.stop().catch(() => {});
		throw e;
	}
	return stack;
}

// For a file or describe() block: starts the stack in before(), stops and
// checks it in after(). Returns a getter-backed handle.
export function useStack(hooks, opts = {}) {
	const handle = { stack: null };
	hooks.before(async () => {
		handle.stack = await startStack(opts);
	});
	hooks.after(async () => {
		if (handle.stack)
			await handle.stack.stopAndCheck(opts.check);
	});
	return handle;
}

// Random-ish unique id part so files and tests never collide.
let uniq = 0;
export function uid(prefix = 'u') {
	return `${prefix}-${process.pid}-${++uniq}-` +
	    Math.random().toString(36).slice(2, 8);
}

// A short unique id (at most 10 bytes) for tests with a small BEEP_MAX_ID.
export function sid() {
	return (process.pid % 1296).toString(36).padStart(2, '0') +
	    (++uniq).toString(36) + Math.random().toString(36).slice(2, 6);
}

// Runs the backend binary once with `args` (no --listen added) in a temp dir
// and collects its output. A backend that logs `ready` (it started although
// it should not have) is stopped at once. Resolves
// { code, signal, stdout, stderr, sawReady, dir }; the temp dir is removed.
// `prefix` runs it through a command (['nohup']); `signals` are sent, in
// order, once it is ready (SIGTERM).
export async function runBinary(args, { env = {}, timeout = 10000,
    prefix = [], signals = ['SIGTERM'] } = {}) {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-cli-'));
	liveDirs.add(dir);
	const clean = {};
	for (const [k, v] of Object.entries(process.env))
		if (!k.startsWith('BEEP_') && k !== 'LISTEN_FDS' && k !== 'LISTEN_PID')
			clean[k] = v;
	const argv = [BEEP_BIN, ...args.map((a) => a.replaceAll('@DIR@', dir))];
	const child = trackChild(spawn(prefix.length ? prefix[0] : argv[0],
	    [...prefix.slice(1), ...(prefix.length ? argv : argv.slice(1))], {
		cwd: dir, env: { ...clean, ...env },
		stdio: ['ignore', 'pipe', 'pipe'],
	}));
	const out = [], err = [];
	let sawReady = false;
	lineCollector(child.stdout, out, 'cli-out');
	lineCollector(child.stderr, err, 'cli', (line) => {
		if (/\bready\b/.test(line) && !sawReady) {
			sawReady = true;
			for (const sig of signals)
				try { process.kill(child.pid, sig); } catch { }
		}
	});
	let exit = await withTimeout(child.exited, timeout, null);
	if (!exit)
		exit = await stopChild(child, 2000);
	await withTimeout(streamsClosed(child), 2000, null);
	rmSync(dir, { recursive: true, force: true });
	liveDirs.delete(dir);
	return { code: exit.code, signal: exit.signal, stdout: out.join('\n'),
	    stderr: err.join('\n'), sawReady, dir };
}

// Asserts that a runBinary result { sawReady, code, signal, stderr } is a
// refused start: not ready, a non-zero exit, no crash, a reason on stderr and
// no sanitizer report.
export function assertRefusedStart(r, what) {
	assert.equal(r.sawReady, false, `${what}: must not start`);
	assert.notEqual(r.code, 0, `${what}: exit code`);
	assert.equal(r.signal, null, `${what}: no crash (${r.signal})`);
	assert.ok(r.stderr.trim().length > 0, `${what}: says why`);
	assert.doesNotMatch(r.stderr,
	    /AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:/, what);
}

// ---------------------------------------------------------------------------
// A cluster: one real redis-server, N stacks (backend + its own Caddy, to
// reach one node on purpose) joined by BEEP_REDIS_URL, and one front Caddy
// (conf/Caddyfile.cluster) spreading requests over every node round robin.

// Starts redis-server on a unix socket in dir (no TCP; no persistence, or
// with `persist` an append-only file synced on every write, as the README
// advises for production); `args`: more redis-server arguments.  Returns
// { url, socket, stop(sig), start() }; stopped by pid.
function redisCli(socket, args, input) {
	const r = spawnSync('redis-cli', ['-s', socket, ...args],
	    { encoding: 'utf8', input });
	if (r.error)
		throw r.error;
	return (r.stdout + r.stderr).trim();
}

export async function startRedis(dir, { persist = false, args = [] } = {}) {
	const socket = path.join(dir, 'redis.sock');
	const r = { socket, url: `unix://${socket}`, child: null, log: [] };
	r.start = async () => {
		const child = trackChild(spawn('redis-server', ['--port', '0',
		    '--unixsocket', socket, '--unixsocketperm', '700',
		    '--save', '', '--appendonly', persist ? 'yes' : 'no',
		    '--appendfsync', 'always', '--dir', dir, ...args], {
			cwd: dir, stdio: ['ignore', 'pipe', 'pipe'],
		}));
		lineCollector(child.stdout, r.log, 'redis');
		lineCollector(child.stderr, r.log, 'redis');
		r.child = child;
		await poll(() => {
			if (child.exitInfo)
				throw new Error(`redis-server exited: ${r.log.join('\n')}`);
			return r.log.some((l) => /ready to accept connections/i.test(l));
		}, { timeout: READY_GUARD, what: 'redis-server ready' });
		r.log.length = 0;
	};
	r.stop = (sig = 'SIGTERM') => stopChild(r.child, STOP_GUARD, sig);
	// One command through redis-cli: its answer, and its error if any
	// (redis-cli writes refusals to stderr), trimmed.
	r.cli = (...args) => redisCli(socket, args);
	// Several commands, one per line, on redis-cli's stdin.
	r.cliInput = (input) => redisCli(socket, [], input);
	// SIGKILL (no save on the way out), then the same Redis on the same
	// directory: it comes back with what the last SAVE wrote (a new run).
	r.crashAndRestart = async () => {
		await r.stop('SIGKILL');
		rmSync(socket, { force: true });
		await r.start();
	};
	// MONITOR from now on (stopped after t): { text() } what it printed.
	r.monitor = async (t) => {
		let seen = '';
		const mon = spawn('redis-cli', ['-s', socket, 'MONITOR']);
		t.after(() => mon.kill());
		mon.stdout.setEncoding('utf8');
		mon.stdout.on('data', (d) => { seen += d; });
		await poll(() => seen.includes('OK'), { what: 'MONITOR started' });
		return { text: () => seen };
	};
	await r.start();
	return r;
}

// An unlabelled metric's value on node (startCluster()'s, or a stack),
// read from its loopback operations site's /metrics.
export async function metricOf(node, name) {
	const c = new Client(`http://127.0.0.1:${node.opsPort}`);
	const r = await c.get('/metrics').finally(() => c.close());
	assert.equal(r.status, 200, r.text);
	const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.text);
	assert.ok(m, `${name} in /metrics`);
	return Number(m[1]);
}

// Subscribes until the node no longer answers 503 (its connection to a
// new Redis run, or the rebuild, not there yet).
export async function subscribeSettled(node, u, d, headers) {
	let s;
	await poll(async () => {
		try {
			s = await node.subscribe(u, d, { headers });
			return true;
		} catch (e) {
			if (/: 503 /.test(e.message))
				return false;
			throw e;
		}
	}, { timeout: 30000, what: `${u}/${d} subscribed` });
	return s;
}

// Opens a stream of (u, d) on node and closes it once it has a position;
// resolves with that position (its last event id, to resume from) once
// `client` (of any node) lists no device of u: d is in its grace period.
export async function leftInGrace(node, client, u, d) {
	const s = await node.subscribe(u, d);
	await poll(() => s.positions.length > 0,
	    { timeout: 10000, what: 'the stream\'s position' });
	const position = s.positions[0].lastEventId;
	s.close();
	await poll(async () => (await client.devices(u)).length === 0,
	    { timeout: 20000, what: `${u}/${d} in its grace period` });
	return position;
}

// Refuses cluster cl's channels to Redis's default user (its commands go
// on) and resolves once node client's /healthz says the channel is down
// and the node has tried it twice more (it is in its backoff, asleep).
// Returns the count of connections Redis received, as a function.
export async function refuseChannel(cl, client) {
	assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', 'resetchannels'),
	    'OK');
	await poll(async () => (await client.health()).cluster.redis === 'down',
	    { timeout: 10000, what: 'the channel down' });
	const connections = () => Number(/total_connections_received:(\d+)/
	    .exec(cl.redis.cli('INFO', 'stats'))[1]);
	const n0 = connections();
	await poll(() => connections() >= n0 + 2, { timeout: 20000,
	    what: 'the node tried its channel again' });
	return connections;
}

// The loss of tests 86 and 92, in cluster cl: u/d, whose stream was on
// node a, is left in its grace period; b posts "kept" (202), Redis saves,
// b posts "after" (202: lost with the snapshot); b is stopped while Redis
// restarts from the snapshot, and the device's client comes back to a
// with its last id and gets "kept".  Returns { back, mon, found() }: the
// stream, a MONITOR reader from the restart on, and found(), which lets
// b go on and awaits its finding of the loss (its log line, a new
// beep:born).
export async function snapshotLoss(cl, a, b, u, d, t) {
	const cb = b.client();
	const position = await leftInGrace(a, cb, u, d);
	const r1 = await cb.postJson(postPath(u, d), { data: 'kept' });
	assert.equal(r1.status, 202, r1.text);
	assert.equal(cl.redis.cli('SAVE'), 'OK');
	const r2 = await cb.postJson(postPath(u, d), { data: 'after' });
	assert.equal(r2.status, 202, r2.text);
	const born = cl.redis.cli('GET', 'beep:born');
	const pid = b.backend.pid;
	process.kill(pid, 'SIGSTOP');
	t.after(() => { try { process.kill(pid, 'SIGCONT'); } catch {} });
	await cl.redis.crashAndRestart();
	const mon = await cl.redis.monitor(t);
	const back = await subscribeSettled(a, u, d,
	    { 'Last-Event-ID': position });
	assert.equal((await back.nextEvent(15000)).data, 'kept');
	const found = async () => {
		process.kill(pid, 'SIGCONT');
		await poll(() => b.backendLog.some((l) =>
		    /redis came back with older data/.test(l)),
		    { timeout: 20000, what: 'b finds the loss' });
		await poll(() => {
			const now = cl.redis.cli('GET', 'beep:born');
			return now !== '' && now !== born;
		}, { timeout: 20000, what: 'the new beep:born' });
	};
	return { back, mon, found };
}

// The cluster tests' quick settings: a node's registrations expire and
// a dead connection is noticed within seconds.
export const CLUSTER_QUICK = {
	BEEP_CLUSTER_TTL: '2', BEEP_KEEPALIVE: '1', BEEP_REDIS_TIMEOUT: '1000',
};

// Starts redis, `nodes` stacks with BEEP_REDIS_URL (and opts.env), and the
// front Caddy.  Returns { redis, nodes: [Stack], front: { base, client() },
// stop() } ; with `t`, stopped and checked after the test.
export async function startCluster(
    { nodes = 3, env = {}, check, persist = false, redisArgs = [] } = {},
    t) {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-cl-'));
	liveDirs.add(dir);
	const cl = clusterMethods({ dir, nodes: [], clients: new Set(),
	    streams: new Set() });
	cl.stop = async () => {
		for (const s of cl.streams)
			s.close();
		for (const c of cl.clients)
			c.close();
		if (cl.frontCaddy)
			await stopChild(cl.frontCaddy);
		const exits = [];
		for (const n of cl.nodes)
			exits.push(await n.stop());
		if (cl.redis && cl.redis.child)
			await cl.redis.stop();
		rmSync(dir, { recursive: true, force: true });
		liveDirs.delete(dir);
		return exits;
	};
	cl.stopAndCheck = async (opts = check || {}) => {
		await cl.stop();
		for (const n of cl.nodes) {
			if (n.killedOnPurpose)
				continue;
			n.checkLog(opts);
			const e = n.backendExit;
			if (e && (e.killed || e.code !== 0))
				throw new Error(`node did not exit 0: ${JSON.stringify(e)}`);
		}
		// The front's log: nothing of its own panicked (Debian 12's
		// Caddy 2.6.2 panics on every active health check over FastCGI,
		// logged and recovered, which conf/Caddyfile.cluster once had).
		const panics = (cl.frontLog || []).filter((l) => /panic/i.test(l));
		if (panics.length > 0)
			throw new Error(`front caddy: ${panics[0]}`);
	};
	if (t)
		t.after(() => cl.stopAndCheck());
	try {
		cl.redis = await startRedis(dir, { persist, args: redisArgs });
		for (let i = 0; i < nodes; i++)
			cl.nodes.push(await startStack({
				env: { BEEP_REDIS_URL: cl.redis.url, ...env },
			}));
		await cl.startFront();
	} catch (e) {
		await cl.stop().catch(() => {});
		throw e;
	}
	return cl;
}

// A relay from a TCP port to Redis's unix socket, for a node the test
// cuts off from Redis while the others still reach it.  cut(): every
// connection closed, new ones closed at once; resume(): relayed again.
// loseAnswer(marker, ran): the first request that holds marker is sent on,
// what Redis answers on that connection from then on is dropped, and once
// ran() resolves true the connection is closed; resolves with whether it
// did.
export async function redisRelay(socket) {
	const port = await freePort();
	const conns = new Set();
	let down = false, arm = null;
	const server = net.createServer((c) => {
		if (down) {
			c.destroy();
			return;
		}
		const up = net.connect({ path: socket });
		const pair = { c, up, swallow: false, seen: '' };
		conns.add(pair);
		const end = () => {
			c.destroy();
			up.destroy();
			conns.delete(pair);
		};
		c.on('error', end).on('close', end);
		up.on('error', end).on('close', end);
		up.on('data', (d) => {
			if (!pair.swallow)
				c.write(d);
		});
		c.on('data', (d) => {
			up.write(d);
			if (arm === null)
				return;
			pair.seen = (pair.seen + d.toString('latin1')).slice(-65536);
			if (!pair.seen.includes(arm.marker))
				return;
			const { ran, done } = arm;
			arm = null;
			pair.swallow = true;
			poll(ran, { timeout: 10000, what: 'the marked request ran' })
			    .then(() => { end(); done(true); }, () => done(false));
		});
	});
	await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
	const closeAll = () => {
		for (const p of conns) {
			p.c.destroy();
			p.up.destroy();
		}
	};
	return {
		url: `redis://127.0.0.1:${port}`,
		cut() {
			down = true;
			closeAll();
		},
		resume() { down = false; },
		loseAnswer(marker, ran) {
			return new Promise((done) => { arm = { marker, ran, done }; });
		},
		close() {
			closeAll();
			return new Promise((resolve) => server.close(resolve));
		},
	};
}

// Two nodes of a cluster (stopped and checked after t), both with env:
// b reaches Redis directly, a through a redisRelay(); resolves once a is
// up.  Returns { cl, a, b, ca, cb, relay, streamOnA, deliverAlone }:
// streamOnA(u) is a's stream of u/d once it took "before", posted through
// b; deliverAlone(u, s) cuts a off and resolves once s took "alone",
// posted through a (200: a delivers alone, after 503s while it had not
// yet seen Redis go).
export async function clusterBehindRelay(env, t) {
	const cl = await startCluster({ nodes: 1, env }, t);
	const [b] = cl.nodes;
	const relay = await redisRelay(cl.redis.socket);
	t.after(() => relay.close());
	const a = await startStack(
	    { env: { ...env, BEEP_REDIS_URL: relay.url } }, t);
	const ca = a.client(), cb = b.client();
	await poll(async () => (await ca.health()).cluster.redis === 'up',
	    { timeout: 20000, what: 'a up' });
	const streamOnA = async (u) => {
		const s = await a.subscribe(u, 'd');
		const r0 = await cb.postJson(postPath(u, 'd'), { data: 'before' });
		assert.equal(r0.status, 200, r0.text);
		assert.equal((await s.nextEvent(15000)).data, 'before');
		return s;
	};
	const deliverAlone = async (u, s) => {
		relay.cut();
		await poll(async () => {
			const p = await ca.postJson(postPath(u, 'd'),
			    { data: 'alone' });
			assert.ok(p.status === 200 || p.status === 503, p.text);
			return p.status === 200;
		}, { timeout: 10000, what: 'a delivers alone' });
		assert.equal((await s.nextEvent(15000)).data, 'alone');
	};
	return { cl, a, b, ca, cb, relay, streamOnA, deliverAlone };
}

// The front Caddy of a cluster: every node's socket, round robin.
async function startFrontCaddy(cl) {
	const port = await freePort();
	const opsPort = await freePort();
	const home = path.join(cl.dir, 'front');
	const env = caddyEnv(home, port, '', opsPort);
	delete env.BEEP_SOCKET;
	env.BEEP_UPSTREAMS = cl.nodes.map((n) => `unix/${n.socket}`).join(' ');
	const log = [];
	const child = trackChild(spawn('caddy', ['run', '--config',
	    path.join(ROOT, 'conf', 'Caddyfile.cluster'), '--adapter',
	    'caddyfile'], { cwd: cl.dir, env, stdio: ['ignore', 'pipe', 'pipe'] }));
	lineCollector(child.stderr, log, 'front');
	lineCollector(child.stdout, log, 'front');
	cl.frontCaddy = child;
	cl.frontLog = log;
	cl.base = `http://127.0.0.1:${port}`;
	await waitHealthz(cl.base, child, 'front caddy', {
		timeout: CADDY_GUARD, what: 'GET /healthz through the front',
	}).catch((e) => {
		throw new Error(`${e.message}\n${log.join('\n')}`);
	});
}

// Methods of a cluster handle, attached by startCluster.
function clusterMethods(cl) {
	cl.startFront = () => startFrontCaddy(cl);
	cl.client = (opts) => {
		const c = new Client(cl.base, opts);
		cl.clients.add(c);
		return c;
	};
	cl.open = async (reqPath, opts) => {
		const s = await SseStream.open(cl.base, reqPath, opts);
		cl.streams.add(s);
		return s;
	};
	return cl;
}
