// Issue 12: the man page, `make install`, and the container.
//   - man/beep-signal.8 renders with `man -l` without a warning, and its
//     OPTIONS list (like conf/beep-signal.conf) is what `make docs` makes
//     from the option table now;
//   - `make install PREFIX=/usr DESTDIR=...` installs the binary, the man
//     page, the sample files and the systemd units pointing at the binary;
//   - the Dockerfile's CMD and HEALTHCHECK, run outside Docker with the
//     files it copies and the environment it sets: the health check passes
//     while the stack runs, BEEP_* and SITE_ADDRESS reach the backend and
//     Caddy, SIGTERM stops everything with status 0, and the health check
//     then fails; the image runs as a non-root user.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import {
	mkdtempSync, readFileSync, rmSync, cpSync, existsSync, statSync,
	writeFileSync, mkdirSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
	ROOT, BEEP_BIN, freePort, poll, Client, withTimeout, uid, subPath,
	openSub, SseStream, runBinary, skipReason,
} from './harness.mjs';
import { parseExposition } from './prom.mjs';
import { Rig, stop } from './fronts.mjs';
import { checkWebFiles } from './callpage.mjs';

const run = promisify(execFile);
// Skipped under either sanitizer (the Makefile's SAN_SKIP): its subject is
// the man page, `make install` and the image, not the C the sanitizers watch.
const T = { timeout: 60000, skip: skipReason(import.meta.url) };
const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-ops-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('man -l renders the man page without warnings', T, async () => {
	const page = path.join(ROOT, 'man', 'beep-signal.8');
	const env = { ...process.env, MANWIDTH: '80', MAN_KEEP_FORMATTING: '' };
	const r = await run('man', ['--warnings', '-l', page], { env });
	assert.equal(r.stderr, '', 'no warnings');
	const text = r.stdout.replace(/.\x08/g, '');
	assert.match(text, /^NAME\n\s+beep-signal/m);
	for (const s of ['SYNOPSIS', 'OPTIONS', 'ENVIRONMENT', 'FILES',
	    'EXIT STATUS'])
		assert.match(text, new RegExp(`^${s}$`, 'm'), s);
	// Every option of --help, with its environment variable.
	const help = (await run(BEEP_BIN, ['--help'])).stdout;
	for (const m of help.matchAll(/^ {2}--([a-z0-9-]+)\s+(BEEP_[A-Z0-9_]+)/gm)) {
		assert.ok(text.includes(`--${m[1]} value`), `--${m[1]}`);
		assert.ok(text.includes(m[2]), m[2]);
	}
});

test('man page and sample file are up to date (make docs)', T, async () => {
	const out = path.join(dir, 'docs');
	await run('sh', [path.join(ROOT, 'scripts', 'gen-docs.sh'), BEEP_BIN,
	    out]);
	for (const f of ['man/beep-signal.8', 'conf/beep-signal.conf']) {
		const want = readFileSync(path.join(out, f), 'utf8').split('\n');
		const have = readFileSync(path.join(ROOT, f), 'utf8').split('\n');
		assert.deepEqual({
			missing: want.filter((l) => !have.includes(l)),
			extra: have.filter((l) => !want.includes(l)),
		}, { missing: [], extra: [] }, `${f} is out of date: run make docs`);
		assert.deepEqual(have, want, `${f}: same order (make docs)`);
	}
});

// The unit's "defaults, shown for reference" drifted once (keepalive 15
// after the default became 4): each must be the binary's default.
test('the systemd unit shows the defaults as they are', T, async () => {
	const unit = readFileSync(path.join(ROOT, 'conf', 'beep-signal.service'),
	    'utf8');
	const block = unit.split('# Defaults, shown for reference')[1]
	    .split(/\n\s*\n/)[0];
	const shown = [...block.matchAll(/^#?Environment=BEEP_(\w+)=(.*)$/mg)];
	assert.ok(shown.length >= 3, 'the block is where it was');
	const env = Object.fromEntries(Object.entries(process.env)
	    .filter(([k]) => !k.startsWith('BEEP_')));
	const { stdout } = await run(BEEP_BIN, ['--print-config'], { env });
	for (const [, name, value] of shown) {
		const key = name.toLowerCase().replace(/_/g, '-');
		const m = new RegExp(`^#?${key} = (.*)$`, 'm').exec(stdout);
		assert.ok(m, `--print-config has ${key}`);
		assert.equal(value, m[1], `BEEP_${name} in beep-signal.service`);
	}
});

// scripts/deps.sh (make run, make test) with fake id, dpkg-query and
// apt-get first on PATH, and its policy-rc.d moved into a temp directory:
// nothing is installed.  As root with an install that fails (a mirror
// down), it fails, and the policy-rc.d it made (which keeps installed
// services from starting) is gone: left behind, no service the host
// installed later would start.  Not root: it prints the command and fails.
test('scripts/deps.sh: a failed install leaves no policy-rc.d behind', T,
    async () => {
	const t = mkdtempSync(path.join(dir, 'deps-'));
	const bin = path.join(t, 'bin');
	const policy = path.join(t, 'policy-rc.d');
	const script = path.join(t, 'deps.sh');
	const write = (f, text) => writeFileSync(f, text, { mode: 0o755 });
	mkdirSync(bin);
	write(path.join(bin, 'dpkg-query'), '#!/bin/sh\nexit 1\n');
	write(path.join(bin, 'apt-get'), '#!/bin/sh\n[ "$1" = update ] && ' +
	    'exit 0\necho "E: Unable to locate package caddy" >&2\nexit 100\n');
	write(script, readFileSync(path.join(ROOT, 'scripts', 'deps.sh'), 'utf8')
	    .replaceAll('/usr/sbin/policy-rc.d', policy));
	for (const [uid, what] of [['0', 'root'], ['1000', 'not root']]) {
		write(path.join(bin, 'id'), `#!/bin/sh\necho ${uid}\n`);
		const r = await run('sh', [script, 'run'], {
			cwd: t, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
		}).then(() => ({ code: 0 }), (e) => e);
		assert.notEqual(r.code, 0, `${what}: deps.sh fails`);
		assert.ok(!existsSync(policy), `${what}: no policy-rc.d left`);
		if (uid !== '0')
			assert.match(r.stderr, /sudo apt-get install -y .*caddy/, what);
	}
});

// The servers deps.sh installs for make run and the tests (which start
// their own) must not start at the next boot either: enabled, nginx,
// lighttpd and caddy would each take port 80 (a review). Only those it
// installed: a service the host had is left as it was.
test('scripts/deps.sh: the servers it installs are not enabled at boot', T,
    async () => {
	const t = mkdtempSync(path.join(dir, 'deps-'));
	const bin = path.join(t, 'bin');
	const log = path.join(t, 'systemctl.log');
	const script = path.join(t, 'deps.sh');
	const write = (f, text) => writeFileSync(f, text, { mode: 0o755 });
	mkdirSync(bin);
	// nginx is the host's already; the rest is missing.
	write(path.join(bin, 'dpkg-query'), '#!/bin/sh\nfor a; do p=$a; done\n' +
	    '[ "$p" = nginx ] && printf "install ok installed" && exit 0\n' +
	    'exit 1\n');
	write(path.join(bin, 'apt-get'), '#!/bin/sh\nexit 0\n');
	write(path.join(bin, 'npm'), '#!/bin/sh\nexit 0\n');
	write(path.join(bin, 'id'), '#!/bin/sh\necho 0\n');
	write(path.join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${log}\n`);
	write(script, readFileSync(path.join(ROOT, 'scripts', 'deps.sh'), 'utf8')
	    .replaceAll('/usr/sbin/policy-rc.d', path.join(t, 'policy-rc.d')));
	mkdirSync(path.join(t, 'tests/browser/node_modules/playwright-core'),
	    { recursive: true });
	await run('sh', [script, 'test'], {
		cwd: t, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
	});
	const disabled = readFileSync(log, 'utf8').trim().split('\n')
	    .map((l) => l.replace(/^disable --quiet /, '')).sort();
	assert.deepEqual(disabled,
	    ['caddy', 'coturn', 'lighttpd', 'redis-server'],
	    'the servers installed now are disabled, the host\'s nginx is not');
});

// The browser tests' Playwright needs Node 20, and Debian 12's nodejs is
// 18: deps.sh fetches the pinned Node 20 from the npm registry into
// build/node (where make integration takes it) when the node on PATH is
// older, and leaves a recent one alone.
test('scripts/deps.sh: Node 20 from the npm registry when node is older', T,
    async () => {
	for (const major of [18, 20]) {
		const t = mkdtempSync(path.join(dir, 'deps-'));
		const bin = path.join(t, 'bin');
		const log = path.join(t, 'npm.log');
		const write = (f, text) => writeFileSync(f, text, { mode: 0o755 });
		mkdirSync(bin);
		write(path.join(bin, 'dpkg-query'),
		    '#!/bin/sh\nprintf "install ok installed"\n');
		write(path.join(bin, 'node'), '#!/bin/sh\ncase "$1" in\n' +
		    `-e) [ ${major} -ge 20 ];;\n--version) echo v${major}.0.0;;\n` +
		    'esac\n');
		// npm install --prefix DIR PKG@VERSION: logged, and the package's
		// bin/node made.
		write(path.join(bin, 'npm'), `#!/bin/sh\necho "$*" >> ${log}\n` +
		    'for a; do p=$a; done\nd=build/node/node_modules/${p%@*}/bin\n' +
		    'mkdir -p "$d" && touch "$d/node"\n');
		writeFileSync(path.join(t, 'deps.sh'),
		    readFileSync(path.join(ROOT, 'scripts', 'deps.sh'), 'utf8'));
		mkdirSync(path.join(t, 'tests/browser/node_modules/playwright-core'),
		    { recursive: true });
		await run('sh', ['deps.sh', 'test'], {
			cwd: t, env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` },
		});
		const calls = existsSync(log) ? readFileSync(log, 'utf8') : '';
		if (major >= 20) {
			assert.equal(calls, '', 'a recent node is left alone');
			continue;
		}
		assert.match(calls, /^install --prefix build\/node .*node-linux-(x64|arm64)@20\.\d+\.\d+\n$/,
		    'Node 20 fetched for an older node');
		assert.ok(existsSync(path.join(t, 'build/node/bin/node')),
		    'build/node/bin/node, where make integration looks');
	}
});

test('make install honours PREFIX and DESTDIR', T, async () => {
	const dest = path.join(dir, 'stage');
	const bin = path.relative(ROOT, BEEP_BIN);
	// BIN= points make at the binary under test; nothing is rebuilt.
	await run('make', ['-s', '-C', ROOT, '-o', bin, 'install', `BIN=${bin}`,
	    'PREFIX=/usr', `DESTDIR=${dest}`]);
	const want = {
		'usr/bin/beep-signal': 0o755,
		'usr/share/man/man8/beep-signal.8': 0o644,
		'usr/share/doc/beep-signal/beep-signal.conf': 0o644,
		'usr/share/doc/beep-signal/beep-signal.env': 0o644,
		'usr/lib/systemd/system/beep-signal.service': 0o644,
		'usr/lib/systemd/system/beep-signal.socket': 0o644,
		// The call page's Caddy rules, which the shipped Caddyfiles
		// import from here by default, and its files.
		'usr/share/beep-signal/caddy-web.conf': 0o644,
		'usr/share/beep-signal/web/index.html': 0o644,
		'usr/share/beep-signal/web/beep-signal.js': 0o644,
		// lighttpd's confs and the scripts they run (test below).
		'usr/share/beep-signal/lighttpd.conf': 0o644,
		'usr/share/beep-signal/lighttpd-web.conf': 0o644,
		'usr/share/beep-signal/lighttpd-raw-path.lua': 0o644,
		'usr/share/beep-signal/lighttpd-stream-down.lua': 0o644,
		'usr/share/beep-signal/lighttpd-web-exact.lua': 0o644,
	};
	for (const [f, mode] of Object.entries(want)) {
		const p = path.join(dest, f);
		assert.ok(existsSync(p), f);
		assert.equal(statSync(p).mode & 0o777, mode, f);
	}
	const unit = readFileSync(path.join(dest,
	    'usr/lib/systemd/system/beep-signal.service'), 'utf8');
	assert.match(unit, /^ExecStart=\/usr\/bin\/beep-signal$/m);
	assert.doesNotMatch(unit, /\/usr\/local\//);
	for (const f of ['lighttpd.conf', 'lighttpd-web.conf']) {
		const conf = readFileSync(path.join(dest, 'usr/share/beep-signal',
		    f), 'utf8');
		assert.match(conf, /"\/usr\/share\/beep-signal[/"]/, f);
		assert.doesNotMatch(conf, /\/usr\/local\//, f);
	}
	const r = await run(path.join(dest, 'usr/bin/beep-signal'), ['--version']);
	assert.match(r.stdout, /^beep-signal /);
});

// lighttpd as installed: conf/lighttpd.conf runs conf/lighttpd-raw-path.lua
// for every request of the site (lighttpd answers every one 500 without
// it) and conf/lighttpd-stream-down.lua, conf/lighttpd-web.conf runs
// conf/lighttpd-web-exact.lua. make install installed none of them, and
// the confs named /etc/lighttpd/ copies an operator had to make by hand.
// Installed under a PREFIX (no DESTDIR: the paths in the files are the
// real ones), the installed confs, run as they are but for the socket,
// find the installed scripts and page: an id lighttpd would resolve away
// reaches the backend (its JSON 400), the page is served by its rules,
// and a bare EventSource gets its stream to come back from when the
// backend is gone.
test('make install: lighttpd runs with the installed confs', T,
    async (t) => {
	const prefix = path.join(dir, 'lighttpd-prefix');
	const bin = path.relative(ROOT, BEEP_BIN);
	await run('make', ['-s', '-C', ROOT, '-o', bin, 'install', `BIN=${bin}`,
	    `PREFIX=${prefix}`]);
	const share = path.join(prefix, 'share/beep-signal');
	for (const f of ['lighttpd.conf', 'lighttpd-web.conf',
	    'lighttpd-raw-path.lua', 'lighttpd-stream-down.lua',
	    'lighttpd-web-exact.lua'])
		assert.ok(existsSync(path.join(share, f)), `installed: ${f}`);
	const rig = new Rig(t, 'lighttpd-installed');
	await rig.startListen();
	await rig.startLighttpd({ conf: path.join(share, 'lighttpd.conf'),
	    web: true, webConf: path.join(share, 'lighttpd-web.conf') });
	const c = rig.client();
	const u = uid('installed');
	const r = await c.get(subPath(u, '../x'));
	assert.equal(r.status, 400, r.text);
	assert.equal(typeof r.json().error, 'string');
	await checkWebFiles(c, { site: true });
	rig.checkBackendLog();
	const exit = await stop(rig.backend, 'SIGTERM', 20000);
	assert.equal(exit.code, 0, JSON.stringify(exit));
	const down = await c.get(subPath(u, 'd'),
	    { headers: { Accept: 'text/event-stream' } });
	assert.equal(down.status, 200, down.text);
	assert.match(down.text, /^event: refused$/m);
});

// README, Deployment, systemd: "To install:" then, for an upgrade, `make
// install` again. make install writes the units into SYSTEMDUNITDIR
// (/usr/local/lib/systemd/system, in systemd's search path), and the
// block also copied conf/'s units into /etc/systemd/system, which systemd
// reads first: the unit in effect was a copy that no later make install
// touches, so an upgrade whose Changes fix the unit (its Environment=
// defaults that overrode the configuration file, test 61) left the old
// one running. The block is run here into a staging root (its /etc and
// make install's DESTDIR; systemctl left out: nothing runs systemd here),
// and the unit systemd would load (the first in its search path) must be
// the one make install maintains.
test('README\'s systemd install steps leave make install\'s units in effect',
    T, async () => {
	const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const from = readme.indexOf('\n## Deployment');
	const section = readme.slice(from, readme.indexOf('\n## ', from + 1));
	const m = /To install:\n\n```sh\n([\s\S]*?)```/.exec(section);
	assert.ok(m, 'README, Deployment: the systemd install block');
	const root = path.join(dir, 'readme-root');
	// What every Debian host has.
	mkdirSync(path.join(root, 'etc', 'systemd', 'system'),
	    { recursive: true });
	const bin = path.relative(ROOT, BEEP_BIN);
	const script = m[1].split('\n').filter((l) => l.trim() !== '' &&
	    !/^\s*systemctl\b/.test(l)).map((l) => l
	    .replace(/^make install\b/, `make -s -C ${ROOT} -o ${bin} install ` +
		`BIN=${bin} DESTDIR=${root}`)
	    .replaceAll(' /etc/', ` ${root}/etc/`)).join('\n');
	assert.doesNotMatch(script, /(^|\s)\/(etc|usr|lib)\//m,
	    'every path of the block staged');
	await run('sh', ['-e', '-c', script], { cwd: ROOT });
	// systemd's search path for system units (systemd-analyze unit-paths),
	// the directories a package or make install may write.
	const paths = ['etc/systemd/system', 'usr/local/lib/systemd/system',
	    'lib/systemd/system', 'usr/lib/systemd/system'];
	for (const unit of ['beep-signal.service', 'beep-signal.socket']) {
		const loaded = paths.find((d) => existsSync(path.join(root, d,
		    unit)));
		assert.equal(loaded, 'usr/local/lib/systemd/system',
		    `${unit}: systemd would load /${loaded}/${unit}, which ` +
		    'make install never updates: an upgrade leaves it as it was');
	}
});

// The final stage of the Dockerfile: its COPY sources (from the context),
// ENV, USER, HEALTHCHECK and CMD.
function dockerfile() {
	const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
	    .replace(/\\\n/g, ' ');
	const stages = text.split(/^FROM /m);
	const last = stages[stages.length - 1].split('\n');
	const d = { copy: [], env: {}, user: null, health: null, cmd: null };
	for (const line of last) {
		let m;
		if ((m = /^COPY (?!--from)(.*)$/.exec(line))) {
			const parts = m[1].trim().split(/\s+/);
			d.copy.push(...parts.slice(0, -1));
		} else if ((m = /^ENV (.*)$/.exec(line))) {
			for (const kv of m[1].trim().split(/\s+/)) {
				const [k, v] = kv.split('=');
				d.env[k] = v;
			}
		} else if ((m = /^USER (\S+)/.exec(line))) {
			d.user = m[1];
		} else if ((m = /^HEALTHCHECK .*CMD (\[.*\])\s*$/.exec(line))) {
			d.health = JSON.parse(m[1]);
		} else if ((m = /^CMD (\[.*\])\s*$/.exec(line))) {
			d.cmd = JSON.parse(m[1]);
		}
	}
	return d;
}

test('the Dockerfile runs as a non-root user with a health check', T,
    async () => {
	const d = dockerfile();
	assert.ok(d.user && !/^(root|0)(:|$)/.test(d.user), `USER ${d.user}`);
	assert.ok(d.health, 'HEALTHCHECK CMD [...]');
	assert.ok(d.cmd, 'CMD [...]');
	assert.match(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'),
	    /^STOPSIGNAL SIGTERM$/m);
});

test('hadolint, when installed', T, async (t) => {
	try {
		await run('hadolint', ['--version']);
	} catch {
		t.skip('hadolint is not installed (not in Debian 12 or npm)');
		return;
	}
	await run('hadolint', [path.join(ROOT, 'Dockerfile')]);
});

test('the image\'s CMD and HEALTHCHECK, outside Docker', T, async () => {
	const d = dockerfile();
	const work = path.join(dir, 'image');
	const home = path.join(dir, 'home');
	const rundir = path.join(dir, 'run');
	await run('mkdir', ['-p', work, home, rundir]);
	// COPY takes files and folders (web/) alike.
	for (const src of d.copy)
		cpSync(path.join(ROOT, src), path.join(work, path.basename(src)),
		    { recursive: true });
	const [site, ops, port] = [await freePort(), await freePort(),
	    await freePort()];
	// The image's environment, with its paths moved to this test's files.
	const env = {
		PATH: process.env.PATH, ...d.env,
		BEEP_BIN, BEEP_RUN_DIR: rundir, HOME: home,
		XDG_DATA_HOME: path.join(home, 'data'),
		XDG_CONFIG_HOME: path.join(home, 'config'),
		PORT: String(port), OPS_PORT: String(ops), CADDY_BIND: '127.0.0.1',
		// What `docker run -e` would pass:
		SITE_ADDRESS: `:${site}`, BEEP_MAX_STREAMS: '7', BEEP_RATE: '0',
	};
	assert.equal(d.env.OPS_PORT, '9180');
	// The Caddyfile's rules for the call page: where make install
	// PREFIX=/usr puts them (test above), here the checkout's.
	assert.equal(d.env.BEEP_CADDY_WEB, '/usr/share/beep-signal/caddy-web.conf');
	env.BEEP_CADDY_WEB = path.join(ROOT, 'conf', 'caddy-web.conf');
	const health = () => new Promise((resolve) => {
		const c = spawn(d.health[0], d.health.slice(1), { cwd: work, env,
		    stdio: 'ignore' });
		c.on('exit', (code) => resolve(code));
	});
	const child = spawn(d.cmd[0], d.cmd.slice(1), { cwd: work, env,
	    stdio: ['ignore', 'pipe', 'pipe'], detached: true });
	const log = [];
	child.stderr.on('data', (b) => log.push(b.toString()));
	child.stdout.on('data', (b) => log.push(b.toString()));
	const exited = new Promise((resolve) => child.on('exit',
	    (code, signal) => resolve({ code, signal })));
	try {
		await poll(async () => (await health()) === 0,
		    { what: 'the health check passes', timeout: 20000 });
		// SITE_ADDRESS reached Caddy: the API is on its port, not PORT.
		const c = new Client(`http://127.0.0.1:${site}`);
		try {
			const s = await openSub({ open: (p, o) => SseStream.open(
			    `http://127.0.0.1:${site}`, p, o) }, subPath(uid('c'), 'd'));
			assert.equal(s.status, 200);
			s.stream.close();
			assert.equal((await c.get('/healthz')).status, 200);
			// The call page, by the rules the Caddyfile imports.
			const page = await c.get('/');
			assert.equal(page.status, 200, page.text.slice(0, 80));
			assert.match(page.headers['content-security-policy'],
			    /frame-ancestors 'none'/);
		} finally {
			c.close();
		}
		// BEEP_* reached the backend.
		const o = new Client(`http://127.0.0.1:${ops}`);
		try {
			const r = await o.get('/metrics');
			assert.equal(r.status, 200, r.text);
			assert.equal(parseExposition(r.text).value('beep_streams_max'),
			    7);
		} finally {
			o.close();
		}
		process.kill(child.pid, 'SIGTERM');
		const exit = await withTimeout(exited, 10000);
		assert.deepEqual(exit, { code: 0, signal: null }, log.join(''));
		// Caddy and the backend went with it: nothing left in its group.
		assert.throws(() => process.kill(-child.pid, 0), { code: 'ESRCH' },
		    'a process of the container outlived its stop');
		assert.notEqual(await health(), 0, 'unhealthy once stopped');
		assert.doesNotMatch(log.join(''), / error /);
	} finally {
		try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
	}
});

// No Docker engine here: what can be checked of compose.yaml without one.
test('compose.yaml: its front adapts, its files and options exist', T,
    async () => {
	const text = readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8');
	// Every file it mounts is in the repository.
	const mounts = [...text.matchAll(/- \.\/(\S+?):/g)].map((m) => m[1]);
	assert.ok(mounts.length > 0, 'compose.yaml mounts the front Caddyfile');
	for (const f of mounts)
		assert.ok(existsSync(path.join(ROOT, f)), `${f} exists`);
	// The front's Caddyfile is one Caddy accepts.
	await run('caddy', ['adapt', '--adapter', 'caddyfile', '--config',
	    path.join(ROOT, 'conf/Caddyfile.compose')]);
	// Every BEEP_* variable it sets is one of the service's options, and
	// the nodes are joined by Redis.
	const help = (await runBinary(['--help'])).stdout;
	const vars = [...text.matchAll(/\b(BEEP_[A-Z0-9_]+):/g)].map((m) => m[1])
	    .filter((v) => v !== 'BEEP_NODES');      // the front's, not ours
	assert.ok(vars.includes('BEEP_REDIS_URL'), 'nodes name the Redis');
	for (const v of vars)
		assert.match(help, new RegExp(`\\b${v}\\b`), `${v} is an option`);
	assert.match(text, /node2: \*node/, 'two nodes, the same settings');
	// Behind its front every client comes from the front's address: the
	// per-address limits would make all of them one client (a review:
	// 256 streams and 100 POSTs/s for the whole service).
	assert.match(text, /\n {6}BEEP_MAX_STREAMS_PER_ADDRESS: "0"\n/);
	assert.match(text, /\n {6}BEEP_RATE: "0"\n/);
});
