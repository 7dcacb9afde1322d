// The real binary behind the other fronts and launchers: nginx (conf/nginx.conf),
// lighttpd (conf/lighttpd.conf), spawn-fcgi (socket on fd 0) behind Caddy, and
// systemd-socket-activate (LISTEN_FDS, fd 3) behind nginx.
//
// Each test runs in its own temp dir on free loopback ports: it copies the
// shipped front config, rewrites only the listen port and the socket path,
// wraps it in a generated main config whose pid, log and temp paths are in the
// temp dir, and checks: subscribe; the list shows the device; a POST arrives
// as an SSE event at once (the front does not buffer the stream); a subscriber
// that leaves disappears from the list (BEEP_KEEPALIVE=1, bounded poll);
// SIGTERM to the backend ends the stream with a `retry:` field and the backend
// exits 0. Every process is stopped by pid (SIGTERM, then SIGKILL after a
// bound) and the temp dir removed, also when a test fails.
//
// nginx, lighttpd, spawn-fcgi, systemd (systemd-socket-activate) and caddy are
// test dependencies: `make test-deps` (scripts/deps.sh test) installs them.
//
// Environment: BEEP_BIN (backend binary), BEEP_TEST_DEBUG=1 (echo the logs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
	ROOT, BEEP_BIN, CADDYFILE, Client, SseStream, poll, freePort,
	withTimeout, uid, subPath, postPath, lineCollector,
	caddyEnv, waitHealthz,
} from './harness.mjs';

const T = { timeout: 90000 };
const KEEPALIVE = 1;                     // BEEP_KEEPALIVE for every backend
// Hang guards and bounds (ms); generous for sanitizer builds.
const READY_GUARD = 20000;
const STOP_GUARD = 5000;
const PROMPT = 2000;                     // POST -> event through the front
const GONE = { timeout: 10000, interval: 50 };
const LOG_ERROR_RE = /^\S+Z error |AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer/;

const NGINX_CONF = path.join(ROOT, 'conf', 'nginx.conf');
const LIGHTTPD_CONF = path.join(ROOT, 'conf', 'lighttpd.conf');
const PROD_SOCKET = '/run/beep-signal/beep.sock';

// ---------------------------------------------------------------------------
// Processes: tracked, stopped by pid, never outliving this process.

// Each child leads its own process group, so that a SIGKILL reaches what it
// started too (nginx's workers, the supervisor's backends).
const live = new Set();
const liveDirs = new Set();

function killHard(p) {
	try { process.kill(-p.pid, 'SIGKILL'); } catch { /* not a leader */ }
	try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
}

process.on('exit', () => {
	for (const p of live)
		killHard(p);
	for (const dir of liveDirs)
		fs.rmSync(dir, { recursive: true, force: true });
});

// Collects into p.lines and hands each complete line to p's watchers.
function collectLines(stream, p, tag) {
	lineCollector(stream, p.lines, tag, (line) => {
		for (const w of [...p.watchers])
			w(line);
	}, { flushToOnLine: false });
}

// Starts cmd; returns { pid, lines, exited, exitInfo, tag }.
function launch(cmd, args, { cwd, env, tag }) {
	const child = spawn(cmd, args, {
		cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
	});
	const p = { child, pid: child.pid, tag, lines: [], watchers: new Set(),
	    exitInfo: null };
	live.add(p);
	p.exited = new Promise((resolve) => {
		const done = (info) => {
			if (p.exitInfo)
				return;
			live.delete(p);
			p.exitInfo = info;
			resolve(info);
		};
		child.once('exit', (code, signal) => done({ code, signal }));
		child.once('error', (e) => done({ code: null, signal: null,
		    error: e.message }));
	});
	collectLines(child.stdout, p, `${tag}-out`);
	collectLines(child.stderr, p, tag);
	// Both pipes drained (the whole log captured).
	p.drained = Promise.all([child.stdout, child.stderr].map((st) =>
	    new Promise((resolve) => st.once('close', resolve))));
	return p;
}

// Resolves with the first line matching re (already seen or to come);
// rejects when the process exits first or after `guard` ms.
function waitLine(p, re, guard = READY_GUARD) {
	const seen = p.lines.find((l) => re.test(l));
	if (seen)
		return Promise.resolve(seen);
	let watcher;
	const found = new Promise((resolve) => {
		watcher = (line) => { if (re.test(line)) resolve(line); };
		p.watchers.add(watcher);
	});
	const died = p.exited.then((info) => {
		throw new Error(`${p.tag} exited (${JSON.stringify(info)}) ` +
		    `before printing ${re}:\n${p.lines.join('\n')}`);
	});
	return withTimeout(Promise.race([found, died]), guard)
	    .catch((e) => {
		e.message += `\n${p.tag} output:\n${p.lines.join('\n')}`;
		throw e;
	}).finally(() => p.watchers.delete(watcher));
}

// SIGTERM (or sig), SIGKILL after guard ms; { code, signal, killed }.
async function stop(p, sig = 'SIGTERM', guard = STOP_GUARD) {
	if (p.exitInfo)
		return { ...p.exitInfo, killed: false };
	try { process.kill(p.pid, sig); } catch { }
	const r = await withTimeout(p.exited, guard, null);
	if (r)
		return { ...r, killed: false };
	killHard(p);
	return { ...(await p.exited), killed: true };
}

function need(cmd) {
	const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' });
	if (r.status !== 0)
		throw new Error(`${cmd} not found: install the test dependencies ` +
		    '(make test-deps, i.e. sh scripts/deps.sh test)');
}

// The environment a backend gets: ours minus any BEEP_*/LISTEN_* setting,
// plus BEEP_KEEPALIVE.
function backendEnv() {
	const env = {};
	for (const [k, v] of Object.entries(process.env))
		if (!k.startsWith('BEEP_') && !k.startsWith('LISTEN_'))
			env[k] = v;
	env.BEEP_KEEPALIVE = String(KEEPALIVE);
	return env;
}

// ---------------------------------------------------------------------------
// A rig: one temp dir, one backend (by some launcher), one front.

class Rig {
	constructor(t, name) {
		this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beep-front-'));
		liveDirs.add(this.dir);
		this.name = name;
		this.sock = path.join(this.dir, 'beep.sock');
		this.procs = [];
		this.streams = new Set();
		this.clients = new Set();
		this.backend = null;
		t.after(() => this.cleanup());
	}

	track(p) {
		this.procs.push(p);
		return p;
	}

	async cleanup() {
		for (const s of this.streams)
			s.close();
		for (const c of this.clients)
			c.close();
		// Backend first, so no front waits on open streams.
		const order = [...this.procs].sort((a, b) =>
		    (b === this.backend) - (a === this.backend));
		try {
			for (const p of order)
				await stop(p);
		} finally {
			fs.rmSync(this.dir, { recursive: true, force: true });
			liveDirs.delete(this.dir);
		}
	}

	client() {
		const c = new Client(this.base);
		this.clients.add(c);
		return c;
	}

	async open(reqPath) {
		const s = await SseStream.open(this.base, reqPath);
		this.streams.add(s);
		return s;
	}

	// --- launchers -----------------------------------------------------

	// beep-signal --listen unix:SOCK
	startListen() {
		this.backend = this.track(launch(BEEP_BIN,
		    ['--listen', `unix:${this.sock}`],
		    { cwd: this.dir, env: backendEnv(), tag: 'beep' }));
		return waitLine(this.backend, /\bready\b/);
	}

	// spawn-fcgi -n: creates the socket, puts it on fd 0, execs the backend
	// in its own process (same pid).
	startSpawnFcgi() {
		need('spawn-fcgi');
		this.backend = this.track(launch('spawn-fcgi',
		    ['-n', '-s', this.sock, '--', BEEP_BIN],
		    { cwd: this.dir, env: backendEnv(), tag: 'spawn-fcgi' }));
		return waitLine(this.backend, /\bready\b/);
	}

	// systemd-socket-activate: listens, waits for the first connection,
	// then execs the backend (same pid) with the socket on fd 3 and
	// LISTEN_FDS/LISTEN_PID. It passes on only TERM, PATH, USER and HOME:
	// the backend's settings go by -E.
	async startSocketActivate(cmd = [BEEP_BIN]) {
		need('systemd-socket-activate');
		const env = backendEnv();
		const args = ['-l', this.sock];
		for (const [k, v] of Object.entries(env))
			if (k.startsWith('BEEP_') || /SAN_OPTIONS$/.test(k))
				args.push(`-E${k}=${v}`);
		this.backend = this.track(launch('systemd-socket-activate',
		    [...args, ...cmd],
		    { cwd: this.dir, env, tag: 'socket-activate' }));
		await waitLine(this.backend, /^Listening on /);
	}

	// --- fronts ----------------------------------------------------------

	// Starts a front on a free port (retrying lost port races) and waits
	// until GET /healthz through it answers 200.
	async startFront(name, start) {
		need(name);
		let lastErr;
		for (let attempt = 0; attempt < 4; attempt++) {
			const port = await freePort();
			const p = this.track(start(port));
			this.front = p;
			this.base = `http://127.0.0.1:${port}`;
			try {
				await waitHealthz(this.base, p, name, {
					timeout: READY_GUARD, what: `/healthz 200 via ${name}`,
				});
				return;
			} catch (e) {
				lastErr = e;
				await stop(p, 'SIGTERM', 2000);
				// Retry only a lost race for the port.
				if (!/exited/.test(e.message) || !p.lines.some((l) =>
				    /in use|EADDRINUSE/i.test(l)))
					break;
			}
		}
		throw new Error(`${lastErr.message}\n${name} output:\n` +
		    `${this.front.lines.join('\n')}\n` + this.logs());
	}

	startNginx() {
		const dir = path.join(this.dir, 'nginx');
		fs.mkdirSync(dir);
		fs.copyFileSync('/etc/nginx/fastcgi_params',
		    path.join(dir, 'fastcgi_params'));
		return this.startFront('nginx', (port) => {
			let site = fs.readFileSync(NGINX_CONF, 'utf8');
			site = rewrite(site, /^(\s*)listen\s+1837\s*;/m,
			    `$1listen 127.0.0.1:${port};`, 'nginx listen 1837');
			site = rewrite(site, PROD_SOCKET, this.sock,
			    'nginx socket path');
			fs.writeFileSync(path.join(dir, 'beep-signal.conf'), site);
			const main = path.join(dir, 'nginx.conf');
			const temp = (n) => `${n}_temp_path ${path.join(dir, n)};`;
			fs.writeFileSync(main, [
				// As root the workers would run as nobody, who
				// cannot reach the socket in a 0700 temp dir.
				process.getuid() === 0 ? 'user root root;' : '',
				'worker_processes 1;',
				`pid ${path.join(dir, 'nginx.pid')};`,
				'error_log stderr notice;',
				'events { worker_connections 1024; }',
				'http {',
				`  access_log ${path.join(dir, 'access.log')};`,
				`  ${temp('client_body')}`,
				`  ${temp('fastcgi')}`,
				`  ${temp('proxy')}`,
				`  ${temp('uwsgi')}`,
				`  ${temp('scgi')}`,
				'  include beep-signal.conf;',
				'}', '',
			].join('\n'));
			return launch('nginx', ['-p', dir, '-c', main,
			    '-e', path.join(dir, 'error.log'),
			    '-g', 'daemon off;'], { cwd: dir, env: process.env,
			    tag: 'nginx' });
		});
	}

	startLighttpd() {
		const dir = path.join(this.dir, 'lighttpd');
		fs.mkdirSync(path.join(dir, 'www'), { recursive: true });
		return this.startFront('lighttpd', (port) => {
			let site = fs.readFileSync(LIGHTTPD_CONF, 'utf8');
			site = rewrite(site, PROD_SOCKET, this.sock,
			    'lighttpd socket path');
			fs.writeFileSync(path.join(dir, 'beep-signal.conf'), site);
			const main = path.join(dir, 'lighttpd.conf');
			fs.writeFileSync(main, [
				`server.document-root = "${path.join(dir, 'www')}"`,
				`server.bind = "127.0.0.1"`,
				`server.port = ${port}`,
				`server.pid-file = "${path.join(dir, 'lighttpd.pid')}"`,
				`server.upload-dirs = ( "${dir}" )`,
				// As Debian's lighttpd.conf has it: ids with %2F
				// must survive url-path-2f-decode.
				'server.http-parseopts = (',
				'  "header-strict" => "enable",',
				'  "host-strict" => "enable",',
				'  "host-normalize" => "enable",',
				'  "url-normalize-unreserved" => "enable",',
				'  "url-normalize-required" => "enable",',
				'  "url-ctrls-reject" => "enable",',
				'  "url-path-2f-decode" => "enable",',
				'  "url-path-dotseg-remove" => "enable",',
				')',
				`include "${path.join(dir, 'beep-signal.conf')}"`, '',
			].join('\n'));
			// No server.errorlog: lighttpd logs to stderr (ours).
			return launch('lighttpd', ['-D', '-f', main],
			    { cwd: dir, env: process.env, tag: 'lighttpd' });
		});
	}

	startCaddy() {
		const home = path.join(this.dir, 'caddy');
		return this.startFront('caddy', (port) => launch('caddy',
		    ['run', '--config', CADDYFILE, '--adapter', 'caddyfile'], {
			cwd: this.dir, tag: 'caddy',
			env: caddyEnv(home, port, this.sock),
		}));
	}

	logs() {
		return this.procs.map((p) => `--- ${p.tag} (pid ${p.pid}):\n` +
		    p.lines.join('\n')).join('\n');
	}

	// Throws on error-level lines or sanitizer reports in the backend log.
	checkBackendLog() {
		const bad = this.backend.lines.filter((l) => LOG_ERROR_RE.test(l));
		assert.deepEqual(bad, [], `backend log problems:\n${this.logs()}`);
	}
}

// Replaces `from` (string: every occurrence; RegExp: as given) and insists
// it was there, so a reshaped config fails here rather than testing the
// wrong port or socket.
function rewrite(text, from, to, what) {
	const out = typeof from === 'string' ? text.split(from).join(to) :
	    text.replace(from, to);
	assert.notEqual(out, text, `${what}: not found in the shipped config`);
	return out;
}

// ---------------------------------------------------------------------------
// The checks, the same through every front.

async function smoke(t, rig) {
	const c = rig.client();
	// A slash inside an id: the front must pass the raw path on.
	const u = `${uid('front')}/x`;
	const ready = await waitLine(rig.backend, /\bready\b/);
	assert.match(ready, new RegExp(`keepalive ${KEEPALIVE}s`),
	    'the backend got BEEP_KEEPALIVE');

	// Subscribe: 200, SSE headers, the first comment at once.
	const s = await rig.open(subPath(u, 'phone'));
	assert.equal(s.status, 200, await (s.status === 200 ? '' : s.text()));
	assert.match(s.headers['content-type'], /^text\/event-stream/);
	await s.waitComments(1, 5000);

	// Listed.
	assert.deepEqual(await c.devices(u), ['phone']);

	// Delivered at once: an event with a name and a multi-line payload.
	const sent = Date.now();
	const r = await c.postJson(postPath(u, 'phone'),
	    { data: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\ns=-', event: 'offer' });
	assert.equal(r.status, 200, r.text);
	assert.match(r.json().id, /^\d+-\d+$/, 'answer is {"id": "<epoch>-<n>"}');
	const ev = await s.nextEvent(10000);
	const took = Date.now() - sent;
	assert.deepEqual([ev.type, ev.data],
	    ['offer', 'v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-']);
	assert.ok(took <= PROMPT, `event took ${took} ms through ${rig.name} ` +
	    `(buffered?)`);

	// A second subscriber leaves: unlisted once the backend notices.
	const leaver = await rig.open(subPath(u, 'laptop'));
	assert.equal(leaver.status, 200);
	await leaver.waitComments(1, 5000);
	assert.deepEqual(await c.devices(u), ['laptop', 'phone']);
	const left = Date.now();
	leaver.close();
	await poll(async () => !(await c.devices(u)).includes('laptop'),
	    { ...GONE, what: `${u}/laptop unlisted via ${rig.name}` });
	t.diagnostic(`${rig.name}: POST->event ${took} ms; departure ` +
	    `noticed after ${Date.now() - left} ms (keepalive ${KEEPALIVE} s)`);
	assert.deepEqual(await c.devices(u), ['phone']);

	// SIGTERM: the open stream gets its retry: field and ends; exit 0.
	const exited = stop(rig.backend, 'SIGTERM', 20000);
	await s.waitFor(() => s.retry !== null,
	    { timeout: 10000, what: 'retry field' });
	assert.ok(Number.isInteger(s.retry) && s.retry > 0, `retry ${s.retry}`);
	await s.waitEnd(10000);
	assert.equal(s.events.length, 0, 'no stray event');
	const exit = await exited;
	assert.deepEqual([exit.code, exit.signal, exit.killed], [0, null, false],
	    `backend exit ${JSON.stringify(exit)}\n${rig.logs()}`);
	await withTimeout(rig.backend.drained, 2000, null);
	rig.checkBackendLog();
}

test('nginx (conf/nginx.conf) -> beep-signal --listen unix:', T, async (t) => {
	const rig = new Rig(t, 'nginx');
	await rig.startListen();
	await rig.startNginx();
	await smoke(t, rig);
});

test('lighttpd (conf/lighttpd.conf) -> beep-signal --listen unix:', T,
    async (t) => {
	const rig = new Rig(t, 'lighttpd');
	await rig.startListen();
	await rig.startLighttpd();
	await smoke(t, rig);
});

test('Caddy -> spawn-fcgi -n -s SOCK -- beep-signal (socket on fd 0)', T,
    async (t) => {
	const rig = new Rig(t, 'caddy+spawn-fcgi');
	await rig.startSpawnFcgi();
	assert.match(await waitLine(rig.backend, /\bready\b/), /ready on fd:0\b/);
	await rig.startCaddy();
	await smoke(t, rig);
});

test('nginx -> systemd-socket-activate -l SOCK beep-signal (LISTEN_FDS, fd 3)',
    T, async (t) => {
	const rig = new Rig(t, 'nginx+socket-activate');
	await rig.startSocketActivate();
	// The front's first request (its /healthz probe) starts the backend.
	await rig.startNginx();
	assert.match(await waitLine(rig.backend, /\bready\b/),
	    /ready on fd:3 \(systemd\)/);
	await smoke(t, rig);
});

// systemd keeps a .socket unit's socket across service restarts: a backend
// that stops must leave the (shared) listening socket usable for the next one.
// Emulated with a supervisor shell that holds the socket (fd 3, from
// systemd-socket-activate, as systemd would) and starts two backends on it in
// turn, each with LISTEN_PID set to its own pid.
// (Before 4d8a532 the backend shut the inherited socket down on SIGTERM: the
// held socket then refused connections and the next backend got EINVAL from
// accept().)
test('socket kept across a service restart (as a systemd .socket unit does)',
    T, async (t) => {
	const rig = new Rig(t, 'lighttpd+restart');
	// $1: the backend binary. Each generation's pid and exit status go to
	// stdout.
	const supervisor = [
		'for gen in 1 2; do',
		'  sh -c \'LISTEN_PID=$$; export LISTEN_PID; exec "$0"\' "$1" &',
		'  echo "backend $gen $!"',
		'  wait $!',
		'  echo "exit $gen $?"',
		'done',
	].join('\n');
	await rig.startSocketActivate(['/bin/sh', '-c', supervisor, 'sh',
	    BEEP_BIN]);
	const sup = rig.backend;
	// A stand-in for a backend generation (a child of the supervisor),
	// good for stop(): stopped by pid, its exit read from the supervisor.
	const generation = async (gen) => {
		const line = await waitLine(sup, new RegExp(`^backend ${gen} \\d+$`));
		const p = { pid: Number(line.split(' ')[2]), tag: `backend ${gen}`,
		    lines: sup.lines, watchers: sup.watchers, exitInfo: null };
		live.add(p);
		p.exited = Promise.race([
		    waitLine(sup, new RegExp(`^exit ${gen} \\d+$`), 600000)
			.then((l) => ({ code: Number(l.split(' ')[2]), signal: null })),
		    sup.exited.then(() => ({ code: null, signal: 'unknown' })),
		]).catch(() => ({ code: null, signal: 'unknown' })).then((info) => {
			live.delete(p);
			p.exitInfo = info;
			return info;
		});
		rig.procs.unshift(p);
		return p;
	};
	// The front's first request starts generation 1.
	await rig.startLighttpd();
	rig.backend = await generation(1);
	const c = rig.client();
	assert.equal((await c.health()).streams, 0);
	const e1 = await stop(rig.backend, 'SIGTERM', 10000);
	assert.deepEqual([e1.code, e1.killed], [0, false]);

	// Generation 2 on the same, still held socket.
	rig.backend = await generation(2);
	await poll(() => sup.lines.filter((l) => /ready on fd:3/.test(l))
	    .length >= 2, { timeout: READY_GUARD, what: 'backend 2 ready' });
	await poll(async () => {
		try {
			return (await c.get('/healthz', { timeout: 2000 })).status ===
			    200;
		} catch { return false; }
	}, { timeout: 10000,
	    what: 'the restarted backend answering via lighttpd' });
	const u = uid('restart');
	const s = await rig.open(subPath(u, 'd'));
	assert.equal(s.status, 200);
	await s.waitComments(1, 5000);
	assert.deepEqual(await c.devices(u), ['d']);
	const e2 = await stop(rig.backend, 'SIGTERM', 10000);
	assert.deepEqual([e2.code, e2.killed], [0, false]);
	await withTimeout(sup.exited, 10000);
	await withTimeout(sup.drained, 2000, null);
	const bad = sup.lines.filter((l) => LOG_ERROR_RE.test(l) ||
	    /warn server: accept/.test(l));
	assert.deepEqual(bad, [], `backend log problems:\n${rig.logs()}`);
});
