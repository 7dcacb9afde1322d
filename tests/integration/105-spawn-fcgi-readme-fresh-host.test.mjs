// README, Deployment, "spawn-fcgi": the block an operator copies, run as it
// is written, as root, on a fresh Debian 12 host. Before this test the block
// was the spawn-fcgi command alone, and it fails there: spawn-fcgi exits at
// once with "can't find user name beep-signal" (nothing in README creates
// that user), and past that its bind() fails with ENOENT, since
// /run/beep-signal exists only while the systemd socket unit holds it (the
// Caddy paragraph's `--listen unix:/run/beep-signal/beep.sock` fails the
// same way: "bind ...: No such file or directory").
//
// A fresh host is a private mount namespace (unshare -m) over this one: a
// copy of /etc (useradd writes there), an empty /run (a directory of the
// test's, so the socket is reachable from here) and an empty /var/log
// (useradd's lastlog and faillog). Nothing of it reaches the real host.
// Checked: the backend answers on the README's socket, runs as the user the
// block names (not root), and the front's user (www-data) owns the socket and
// can reach it through the directory.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, mkdirSync, readFileSync, readdirSync,
	readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, BEEP_BIN, withTimeout, skipReason } from './harness.mjs';
import { launch, need, rewrite, stop, waitLine, PROD_SOCKET } from
    './fronts.mjs';
import { FcgiConn, requestParams } from './fcgi.mjs';

// Skipped under either sanitizer (the Makefile's SAN_SKIP): its subject is
// the README's spawn-fcgi block on a fresh host, not the C the sanitizers
// watch.
const T = { timeout: 60000, skip: skipReason(import.meta.url) };

// The ```sh block after "**spawn-fcgi**" in README's Deployment section.
function readmeBlock() {
	const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const from = readme.indexOf('\n## Deployment');
	const to = readme.indexOf('\n## ', from + 1);
	const section = readme.slice(from, to);
	const at = section.indexOf('**spawn-fcgi**');
	assert.ok(at >= 0, 'README, Deployment: a spawn-fcgi paragraph');
	const m = /```sh\n([\s\S]*?)```/.exec(section.slice(at));
	assert.ok(m, 'README, Deployment: the spawn-fcgi block');
	assert.match(m[1], /^spawn-fcgi -n /m);
	return m[1];
}

// pid's descendants (itself included).
function descendants(pid) {
	const out = [pid];
	for (let i = 0; i < out.length; i++) {
		let tasks = [];
		try {
			tasks = readdirSync(`/proc/${out[i]}/task`);
		} catch { continue; }
		for (const tid of tasks) {
			try {
				const kids = readFileSync(
				    `/proc/${out[i]}/task/${tid}/children`, 'utf8');
				out.push(...kids.split(' ').filter(Boolean).map(Number));
			} catch { /* gone */ }
		}
	}
	return out;
}

function exeOf(pid) {
	try { return readlinkSync(`/proc/${pid}/exe`); } catch { return null; }
}

function uidOf(pid) {
	const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`,
	    'utf8'));
	return Number(m[1]);
}

test('README\'s spawn-fcgi block, as written, serves on a fresh host', T,
    async (t) => {
	if (process.getuid() !== 0) {
		t.skip('needs root (the block is run as root, in its own ' +
		    'mount namespace)');
		return;
	}
	need('spawn-fcgi');
	need('unshare');
	const probe = spawnSync('unshare', ['-m', 'true'], { encoding: 'utf8' });
	if (probe.status !== 0) {
		t.skip(`no mount namespace here: ${probe.stderr.trim()}`);
		return;
	}
	const block = rewrite(readmeBlock(), '/usr/local/bin/beep-signal',
	    BEEP_BIN, 'the installed binary');
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-fresh-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	const etc = path.join(dir, 'etc');
	cpSync('/etc', etc, { recursive: true, verbatimSymlinks: true });
	const run = path.join(dir, 'run');
	mkdirSync(run, { mode: 0o755 });
	const script = [
		'set -e',
		`mount --bind ${etc} /etc`,
		`mount --bind ${run} /run`,
		'mount -t tmpfs tmpfs /var/log',
		// The README's block, as an operator's root shell runs it.
		`exec sh -e -c '${block.replaceAll("'", "'\\''")}'`,
	].join('\n');
	const p = launch('unshare', ['-m', '--propagation', 'private',
	    'sh', '-c', script], { cwd: dir, env: { PATH: process.env.PATH },
	    tag: 'readme-spawn-fcgi' });
	p.group = true;
	t.after(() => stop(p));
	await waitLine(p, /\bready on fd:0\b/);

	const sock = path.join(run, path.relative('/run', PROD_SOCKET));
	const c = new FcgiConn(sock);
	t.after(() => c.destroy());
	await c.connected;
	c.begin();
	c.params(requestParams('GET', '/healthz'));
	c.endStdin();
	const r = await withTimeout(c.response(), 10000);
	assert.equal(r.status, 200, `GET /healthz on ${PROD_SOCKET}: ${r.head}`);

	// The user the block names, as the copied /etc has it.
	const user = /\s-u\s+(\S+)/.exec(block)[1];
	const passwd = readFileSync(path.join(etc, 'passwd'), 'utf8');
	const entry = passwd.split('\n').find((l) => l.startsWith(`${user}:`));
	assert.ok(entry, `the block creates the user ${user}`);
	const backend = descendants(p.pid).find((pid) => exeOf(pid) === BEEP_BIN);
	assert.ok(backend, 'the backend runs');
	assert.equal(uidOf(backend), Number(entry.split(':')[2]),
	    `the backend runs as ${user}`);
	assert.notEqual(uidOf(backend), 0);

	// The front's user owns the socket and may reach it.
	const wwwData = passwd.split('\n').find((l) => l.startsWith('www-data:'))
	    .split(':');
	const st = statSync(sock);
	assert.equal(st.uid, Number(wwwData[2]), 'the socket is www-data\'s');
	assert.equal(st.mode & 0o777, 0o660);
	assert.ok(statSync(path.dirname(sock)).mode & 0o001,
	    `others (the front) may traverse ${path.dirname(PROD_SOCKET)}`);

	// The backend stopped by its pid; the block's shell ends with it.
	process.kill(backend, 'SIGTERM');
	const exit = await withTimeout(p.exited, 10000);
	assert.deepEqual(exit, { code: 0, signal: null }, p.lines.join('\n'));
});
