// Fronts and launchers for integration tests: nginx (conf/nginx.conf),
// lighttpd (conf/lighttpd.conf), Caddy, spawn-fcgi and
// systemd-socket-activate around the real backend, in a temp dir on free
// loopback ports (see 09-fronts.test.mjs for what each does); and coturn
// for the browser tests. Every process leads its own process group and is
// stopped by pid (SIGTERM, then SIGKILL after a bound); the temp dir is
// removed, also when a test fails.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
	ROOT, BEEP_BIN, CADDYFILE, Client, SseStream, poll, freePort,
	withTimeout, lineCollector, caddyEnv, waitHealthz, sid,
} from './harness.mjs';

// Hang guards and bounds (ms); generous for sanitizer builds.
export const READY_GUARD = 20000;
export const STOP_GUARD = 5000;
export const LOG_ERROR_RE = /^\S+Z error |AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer/;

export const NGINX_CONF = path.join(ROOT, 'conf', 'nginx.conf');
export const NGINX_CLUSTER_CONF = path.join(ROOT, 'conf', 'nginx-cluster.conf');
export const LIGHTTPD_CONF = path.join(ROOT, 'conf', 'lighttpd.conf');
export const LIGHTTPD_WEB_CONF = path.join(ROOT, 'conf', 'lighttpd-web.conf');
// Where conf/lighttpd.conf finds the Lua scripts (its and
// lighttpd-web.conf's), as make install writes it: the checkout's conf/
// instead.
export const LIGHTTPD_SCRIPTS_PROD =
    'var.beep_signal_scripts = "/usr/local/share/beep-signal"';
export const WEB_ROOT_PROD = '/usr/local/share/beep-signal/web';
export const PROD_SOCKET = '/run/beep-signal/beep.sock';

// ---------------------------------------------------------------------------
// Processes: tracked, stopped by pid, never outliving this process.

// Each child leads its own process group, so that a SIGKILL reaches what it
// started too (nginx's workers, the supervisor's backends).
export const live = new Set();
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
export function launch(cmd, args, { cwd, env, tag }) {
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
export function waitLine(p, re, guard = READY_GUARD) {
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
// With p.group set, sig goes to p's whole process group.
export async function stop(p, sig = 'SIGTERM', guard = STOP_GUARD) {
	if (p.exitInfo)
		return { ...p.exitInfo, killed: false };
	try { process.kill(p.group ? -p.pid : p.pid, sig); } catch { }
	const r = await withTimeout(p.exited, guard, null);
	if (r)
		return { ...r, killed: false };
	killHard(p);
	return { ...(await p.exited), killed: true };
}

export function need(cmd) {
	const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' });
	if (r.status !== 0)
		throw new Error(`${cmd} not found: install the test dependencies ` +
		    '(make test-deps, i.e. sh scripts/deps.sh test)');
}

// The environment a backend gets: ours minus any BEEP_*/LISTEN_* setting,
// plus the rig's.
function backendEnv(extra) {
	const env = {};
	for (const [k, v] of Object.entries(process.env))
		if (!k.startsWith('BEEP_') && !k.startsWith('LISTEN_'))
			env[k] = v;
	return { ...env, ...extra };
}

// ---------------------------------------------------------------------------
// A rig: one temp dir, one backend (by some launcher), one front.

// Rig.startNginx()'s options for conf, a shipped nginx config
// (undefined: conf/nginx.conf): a cluster config's two node sockets
// (conf/nginx-cluster.conf) both at sock, the rig's backend.
export function nginxOpts(conf, sock) {
	return conf ? { conf, sockets: {
		'unix:/run/beep-signal/a.sock': `unix:${sock}`,
		'unix:/run/beep-signal/b.sock': `unix:${sock}`,
	} } : {};
}

export class Rig {
	// opts.env: the backend's BEEP_* settings.
	constructor(t, name, { env = {} } = {}) {
		this.env = env;
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

	async open(reqPath, opts = {}) {
		const s = await SseStream.open(this.base, reqPath, opts);
		this.streams.add(s);
		return s;
	}

	// --- launchers -----------------------------------------------------

	// beep-signal --listen unix:SOCK
	startListen() {
		this.launchBackend();
		return waitLine(this.backend, /\bready\b/);
	}

	// Launches cmd (by default beep-signal --listen unix:SOCK) with the
	// rig's settings as the rig's backend, without waiting for it to be
	// ready (or to exit); returns it (this.backend).
	launchBackend(cmd = BEEP_BIN, args = ['--listen', `unix:${this.sock}`]) {
		this.backend = this.track(launch(cmd, args,
		    { cwd: this.dir, env: backendEnv(this.env), tag: 'beep' }));
		return this.backend;
	}

	// spawn-fcgi -n: creates the socket, puts it on fd 0, execs the backend
	// in its own process (same pid).
	startSpawnFcgi() {
		need('spawn-fcgi');
		this.backend = this.track(launch('spawn-fcgi',
		    ['-n', '-s', this.sock, '--', BEEP_BIN],
		    { cwd: this.dir, env: backendEnv(this.env), tag: 'spawn-fcgi' }));
		return waitLine(this.backend, /\bready\b/);
	}

	// systemd-socket-activate: listens, waits for the first connection,
	// then execs the backend (same pid) with the socket on fd 3 and
	// LISTEN_FDS/LISTEN_PID. It passes on only TERM, PATH, USER and HOME:
	// the backend's settings go by -E.
	async startSocketActivate(cmd = [BEEP_BIN]) {
		need('systemd-socket-activate');
		const env = backendEnv(this.env);
		const args = ['-l', this.sock];
		for (const [k, v] of Object.entries(env))
			if (k.startsWith('BEEP_') || /SAN_OPTIONS$/.test(k))
				args.push(`-E${k}=${v}`);
		this.backend = this.track(launch('systemd-socket-activate',
		    [...args, ...cmd],
		    { cwd: this.dir, env, tag: 'socket-activate' }));
		await waitLine(this.backend, /^Listening on /);
	}

	// systemd keeps a .socket unit's socket across restarts of its
	// service: emulated by a supervisor shell that holds the socket (fd 3,
	// from systemd-socket-activate, as systemd would) and starts
	// `generations` backends on it in turn, each with LISTEN_PID set to
	// its own pid (the first once a front connects). Returns
	// - sup: the supervisor (this.backend until the caller replaces it),
	//   whose output holds every generation's log;
	// - generation(n): resolves, once backend n started, with a stand-in
	//   for it good for stop() (stopped by pid, its exit read from the
	//   supervisor), tracked by the rig;
	// - checkLog(): throws on error lines, sanitizer reports or accept
	//   warnings in any generation's log.
	async startSupervisor({ generations = 2 } = {}) {
		// $1: the backend binary. Each generation's pid and exit status
		// go to stdout.
		const gens = [...Array(generations).keys()].map((i) => i + 1);
		const script = [
			`for gen in ${gens.join(' ')}; do`,
			'  sh -c \'LISTEN_PID=$$; export LISTEN_PID; exec "$0"\' "$1" &',
			'  echo "backend $gen $!"',
			'  wait $!',
			'  echo "exit $gen $?"',
			'done',
		].join('\n');
		await this.startSocketActivate(['/bin/sh', '-c', script, 'sh',
		    BEEP_BIN]);
		const sup = this.backend;
		// Stopped, it takes the generation it runs along (its process
		// group): that one, nobody's child once the shell is gone, would
		// live on and hold the rig's pipes open (test 95 ends with its
		// last generation running).
		sup.group = true;
		const generation = async (gen) => {
			const line = await waitLine(sup,
			    new RegExp(`^backend ${gen} \\d+$`));
			const p = { pid: Number(line.split(' ')[2]),
			    tag: `backend ${gen}`, lines: sup.lines,
			    watchers: sup.watchers, exitInfo: null };
			live.add(p);
			p.exited = Promise.race([
			    waitLine(sup, new RegExp(`^exit ${gen} \\d+$`), 600000)
				.then((l) => ({ code: Number(l.split(' ')[2]),
				    signal: null })),
			    sup.exited.then(() => ({ code: null, signal: 'unknown' })),
			]).catch(() => ({ code: null, signal: 'unknown' }))
			    .then((info) => {
				live.delete(p);
				p.exitInfo = info;
				return info;
			});
			this.procs.unshift(p);
			return p;
		};
		const checkLog = () => {
			const bad = sup.lines.filter((l) => LOG_ERROR_RE.test(l) ||
			    /warn server: accept/.test(l));
			assert.deepEqual(bad, [],
			    `backend log problems:\n${this.logs()}`);
		};
		return { sup, generation, checkLog };
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

	// conf: the shipped server block (conf/nginx.conf); sockets: each
	// socket path in it and the one to put there (the rig's backend's);
	// edit(site) may change it further.
	// workerConnections: nginx's worker_connections (one worker);
	// main: more directives for nginx's main context (e.g.
	// worker_shutdown_timeout, as the README advises).
	startNginx({ conf = NGINX_CONF, sockets = { [PROD_SOCKET]: this.sock },
	    edit = (site) => site, workerConnections = 1024, main = [] } = {}) {
		const dir = path.join(this.dir, 'nginx');
		fs.mkdirSync(dir);
		fs.copyFileSync('/etc/nginx/fastcgi_params',
		    path.join(dir, 'fastcgi_params'));
		return this.startFront('nginx', (port) => {
			let site = fs.readFileSync(conf, 'utf8');
			site = rewrite(site, /^(\s*)listen\s+1837\s*;/m,
			    `$1listen 127.0.0.1:${port};`, 'nginx listen 1837');
			for (const [from, to] of Object.entries(sockets))
				site = rewrite(site, from, to, 'nginx socket path');
			fs.writeFileSync(path.join(dir, 'beep-signal.conf'),
			    edit(site));
			const mainConf = path.join(dir, 'nginx.conf');
			const temp = (n) => `${n}_temp_path ${path.join(dir, n)};`;
			fs.writeFileSync(mainConf, [
				// As root the workers would run as nobody, who
				// cannot reach the socket in a 0700 temp dir.
				process.getuid() === 0 ? 'user root root;' : '',
				'worker_processes 1;',
				...main,
				`pid ${path.join(dir, 'nginx.pid')};`,
				'error_log stderr notice;',
				`events { worker_connections ${workerConnections}; }`,
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
			return launch('nginx', ['-p', dir, '-c', mainConf,
			    '-e', path.join(dir, 'error.log'),
			    '-g', 'daemon off;'], { cwd: dir, env: process.env,
			    tag: 'nginx' });
		});
	}

	// edit(site) may change the shipped file further; fastcgiFirst loads
	// mod_fastcgi before it, as Debian's 10-fastcgi.conf (enabled for PHP)
	// does; web: conf/lighttpd-web.conf is included after it, serving the
	// checkout's web/. conf, webConf: the files to run instead of the
	// checkout's, e.g. the copies `make install` put beside the scripts
	// and the page, run as installed but for the socket's path.
	startLighttpd({ edit = (site) => site, fastcgiFirst = false,
	    web = false, conf = LIGHTTPD_CONF, webConf = LIGHTTPD_WEB_CONF } = {}) {
		const dir = path.join(this.dir, 'lighttpd');
		fs.mkdirSync(path.join(dir, 'www'), { recursive: true });
		return this.startFront('lighttpd', (port) => {
			let site = fs.readFileSync(conf, 'utf8');
			site = rewrite(site, PROD_SOCKET, this.sock,
			    'lighttpd socket path');
			// The scripts from the checkout (lighttpd-web.conf's
			// too).
			if (conf === LIGHTTPD_CONF) {
				site = rewrite(site, LIGHTTPD_SCRIPTS_PROD,
				    'var.beep_signal_scripts = ' +
				    `"${path.join(ROOT, 'conf')}"`,
				    'lighttpd scripts\' directory');
			}
			fs.writeFileSync(path.join(dir, 'beep-signal.conf'),
			    edit(site));
			if (web) {
				let page = fs.readFileSync(webConf, 'utf8');
				if (webConf === LIGHTTPD_WEB_CONF) {
					page = rewrite(page, WEB_ROOT_PROD,
					    path.join(ROOT, 'web'),
					    'lighttpd-web.conf root');
				}
				fs.writeFileSync(path.join(dir, 'beep-signal-web.conf'),
				    page);
			}
			const main = path.join(dir, 'lighttpd.conf');
			// Debian 12's /etc/lighttpd/lighttpd.conf, where the shipped
			// file is included from (conf-enabled), but for paths and
			// ports: its modules, before and after, its
			// url.access-deny, its HTTP/2 and its parse options.
			fs.writeFileSync(main, [
				'server.modules = ( "mod_indexfile", "mod_access",',
				'  "mod_alias", "mod_redirect" )',
				fastcgiFirst ? 'server.modules += ( "mod_fastcgi" )' : '',
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
				'server.feature-flags += ("server.h2proto" => "enable")',
				'server.feature-flags += ("server.h2c" => "enable")',
				'server.feature-flags += ' +
				    '("server.graceful-shutdown-timeout" => 5)',
				'index-file.names = ( "index.php", "index.html" )',
				'url.access-deny = ( "~", ".inc" )',
				'static-file.exclude-extensions = ( ".php", ".pl", ".fcgi" )',
				`include "${path.join(dir, 'beep-signal.conf')}"`,
				web ? `include "${path.join(dir,
				    'beep-signal-web.conf')}"` : '',
				'server.modules += ( "mod_dirlisting", "mod_staticfile" )',
				'',
			].join('\n'));
			// No server.errorlog: lighttpd logs to stderr (ours).
			return launch('lighttpd', ['-D', '-f', main],
			    { cwd: dir, env: process.env, tag: 'lighttpd' });
		});
	}

	// config: a shipped Caddyfile (the Caddyfile); env: variables it
	// reads beside caddyEnv()'s (BEEP_UPSTREAMS, BEEP_NODES).
	startCaddy({ config = CADDYFILE, env = {} } = {}) {
		const home = path.join(this.dir, 'caddy');
		return this.startFront('caddy', (port) => launch('caddy',
		    ['run', '--config', config, '--adapter', 'caddyfile'], {
			cwd: this.dir, tag: 'caddy',
			env: { ...caddyEnv(home, port, this.sock), ...env },
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
export function rewrite(text, from, to, what) {
	const out = typeof from === 'string' ? text.split(from).join(to) :
	    text.replace(from, to);
	assert.notEqual(out, text, `${what}: not found in the shipped config`);
	return out;
}

// The shipped Caddyfile as Caddy runs without buffer_requests (its default,
// and a front of that kind): each body written to the backend as it arrives,
// up to 1 MB. Returns its path, removed after the test t.
export function streamingCaddyfile(t) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beep-streaming-'));
	t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
	let text = fs.readFileSync(CADDYFILE, 'utf8');
	text = rewrite(text, /\n\t*buffer_requests\n/, '\n', 'buffer_requests');
	text = rewrite(text, /max_size 128KB/, 'max_size 1MB', 'max_size');
	const file = path.join(dir, 'Caddyfile');
	fs.writeFileSync(file, text);
	return file;
}


// ---------------------------------------------------------------------------
// coturn, the TURN server of the browser tests (30, 75).

export const TURNSERVER = process.env.BEEP_TURNSERVER || '/usr/bin/turnserver';

// A port free for both UDP and TCP on 127.0.0.1 (coturn takes both).
async function freeUdpTcpPort() {
	const dgram = await import('node:dgram');
	const net = await import('node:net');
	for (;;) {
		const udp = dgram.createSocket('udp4');
		const port = await new Promise((resolve, reject) => {
			udp.once('error', reject);
			udp.bind(0, '127.0.0.1', () => resolve(udp.address().port));
		});
		const ok = await new Promise((resolve) => {
			const srv = net.createServer();
			srv.once('error', () => resolve(false));
			srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
		});
		udp.close();
		if (ok)
			return port;
	}
}

// coturn on loopback: TURN REST auth with a secret (use-auth-secret),
// loopback peers allowed (the browsers are here), no TLS/DTLS, no CLI,
// relay ports in a range of its own; a start that fails (a port taken
// meanwhile) is tried again on other ports. Stopped by pid, after the test
// t when one is given. Resolves { port, secret, log (its output lines),
// stop() } once it listens.
export async function startCoturn(t) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beep-turn-'));
	liveDirs.add(dir);
	// At least 20 bytes: the backend refuses a shorter one (turn_check()).
	const secret = `s-${sid()}-${crypto.randomBytes(16).toString('hex')}`;
	let lastErr;
	for (let attempt = 0; attempt < 4; attempt++) {
		const port = await freeUdpTcpPort();
		const min = 40000 + Math.floor(Math.random() * 200) * 100;
		const p = launch(TURNSERVER, ['-n',
		    '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1',
		    `--listening-port=${port}`, `--min-port=${min}`,
		    `--max-port=${min + 99}`, '--use-auth-secret',
		    `--static-auth-secret=${secret}`, '--realm=beep.test',
		    '--allow-loopback-peers', '--no-tls', '--no-dtls', '--no-cli',
		    '--no-rfc5780', '--no-software-attribute', '--fingerprint',
		    `--pidfile=${path.join(dir, 'turn.pid')}`,
		    `--userdb=${path.join(dir, 'turndb')}`,
		    '--log-file=stdout', '--simple-log'],
		{ cwd: dir, env: process.env, tag: 'turn' });
		const stopTurn = async () => {
			await stop(p);
			fs.rmSync(dir, { recursive: true, force: true });
			liveDirs.delete(dir);
		};
		try {
			await poll(() => {
				if (p.exitInfo)
					throw new Error('turnserver exited: ' +
					    p.lines.join('\n'));
				return spawnSync('ss', ['-Hlun', `sport = :${port}`])
				    .stdout.toString().includes(`:${port}`);
			}, { timeout: 10000, what: 'coturn listening' });
			t?.after(stopTurn);
			return { port, secret, log: p.lines, stop: stopTurn };
		} catch (e) {
			lastErr = e;
			await stop(p);
		}
	}
	fs.rmSync(dir, { recursive: true, force: true });
	liveDirs.delete(dir);
	throw lastErr;
}
