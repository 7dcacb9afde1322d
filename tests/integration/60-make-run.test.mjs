// `make run` (README, Quick start): the backend and Caddy in the foreground
// "until Ctrl-C or SIGTERM", and nothing left behind when it ends, however
// it ends:
//   - SIGTERM to make's pid (a process supervisor, `kill PID`): make passes
//     SIGTERM to its child only, which was the `sh -c` of the recipe, not
//     scripts/run.sh: make and that shell died, run.sh, the backend and
//     Caddy went on serving the port, orphaned;
//   - SIGHUP to the group (the terminal or ssh session closes): run.sh had
//     no trap for it and died, the backend stopped, and Caddy, which takes
//     SIGHUP as "not implemented", stayed, answering 502 on the port for
//     ever;
//   - Caddy cannot start (its port is taken): run.sh's stop() ended under
//     `set -e` at the failed `kill` of the Caddy already gone, before it
//     stopped the backend, which was left running on its socket.
// Each test runs the real `make run` (its own ports, socket directory and
// Caddy home) in a process group of its own and checks, once make has
// exited, that no process of that group is left.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
	ROOT, BEEP_BIN, freePort, poll, Client, withTimeout, subPath,
	SseStream, skipReason,
} from './harness.mjs';

// Skipped under either sanitizer (the Makefile's SAN_SKIP): its subject is
// `make run`, its script and its signals, not the C the sanitizers watch.
const T = { timeout: 90000, skip: skipReason(import.meta.url) };
const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-make-run-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let runs = 0;

// Starts `make run` on free ports (or PORT), in a process group of its own.  The
// binary under test is BEEP_BIN, taken as up to date (-o, also for the
// recipe's sub-make `all`).
async function makeRun(port, runDir) {
	const n = ++runs;
	port ??= await freePort();
	const ops = await freePort();
	const home = path.join(dir, `home-${n}`);
	const env = { CADDY_BIND: '127.0.0.1' };
	for (const [k, v] of Object.entries(process.env))
		if (!k.startsWith('BEEP_') && !k.startsWith('MAKE'))
			env[k] = v;
	Object.assign(env, {
		HOME: home, XDG_DATA_HOME: path.join(home, 'data'),
		XDG_CONFIG_HOME: path.join(home, 'config'),
		BEEP_RUN_DIR: runDir ?? path.join(dir, `run-${n}`),
		OPS_PORT: String(ops),
	});
	const child = spawn('make', ['-s', '-C', ROOT, '-o', BEEP_BIN, 'run',
	    `PORT=${port}`, `BIN=${BEEP_BIN}`, `MAKE=make -o ${BEEP_BIN}`],
	    { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
	const log = [];
	child.stdout.on('data', (b) => log.push(b.toString()));
	child.stderr.on('data', (b) => log.push(b.toString()));
	const exited = new Promise((resolve) => child.on('exit',
	    (code, signal) => resolve({ code, signal })));
	return { child, port, log, exited };
}

// Whether a process of make run's group is still there.
function groupAlive(pid) {
	try {
		process.kill(-pid, 0);
		return true;
	} catch (e) {
		if (e.code === 'ESRCH')
			return false;
		throw e;
	}
}

function killGroup(pid) {
	try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
}

async function serving(r) {
	await poll(async () => {
		if (r.child.exitCode !== null)
			throw new Error(`make run exited: ${r.log.join('')}`);
		const c = new Client(`http://127.0.0.1:${r.port}`);
		try {
			return (await c.get('/healthz')).status === 200;
		} catch {
			return false;
		} finally {
			c.close();
		}
	}, { timeout: 30000, what: 'make run serves /healthz through Caddy' });
}

test('SIGTERM to make run stops the backend and Caddy with it', T,
    async () => {
	const r = await makeRun();
	try {
		await serving(r);
		// A stream open, as a user of the call page would have.
		const s = await SseStream.open(`http://127.0.0.1:${r.port}`,
		    subPath('u', 'd'));
		assert.equal(s.status, 200);
		process.kill(r.child.pid, 'SIGTERM');
		await withTimeout(r.exited, 30000);
		const alive = groupAlive(r.child.pid);
		killGroup(r.child.pid);
		assert.equal(alive, false,
		    'a process of make run (run.sh, the backend or Caddy) ' +
		    'outlived SIGTERM to make: make signals the recipe\'s sh -c, ' +
		    'which does not pass it on to scripts/run.sh\n' + r.log.join(''));
		// The backend ended the stream as it stops, with its retry:.
		assert.equal(await s.done, 'end');
		assert.equal(s.retries.length, 2, 'the start\'s and the stop\'s');
	} finally {
		killGroup(r.child.pid);
	}
});

test('the terminal closing (SIGHUP to the group) leaves no Caddy behind', T,
    async () => {
	const r = await makeRun();
	try {
		await serving(r);
		process.kill(-r.child.pid, 'SIGHUP');
		await withTimeout(r.exited, 30000);
		assert.equal(groupAlive(r.child.pid), false,
		    'a process of make run outlived SIGHUP (Caddy ignores it, ' +
		    'and run.sh, with no trap for it, did not stop it)\n' +
		    r.log.join(''));
	} finally {
		killGroup(r.child.pid);
	}
});

test('Caddy unable to start: make run fails and leaves no backend', T,
    async () => {
	// The port taken by a listener without SO_REUSEPORT: Caddy's bind
	// fails and Caddy exits.
	const busy = net.createServer();
	const port = await freePort();
	await new Promise((resolve, reject) => {
		busy.once('error', reject);
		busy.listen(port, '127.0.0.1', resolve);
	});
	let r;
	try {
		r = await makeRun(port);
		const exit = await withTimeout(r.exited, 30000);
		assert.notEqual(exit.code, 0, 'make run says it failed');
		assert.equal(groupAlive(r.child.pid), false,
		    'the backend outlived make run, whose Caddy could not ' +
		    'start (run.sh\'s stop() ended at `kill` of the Caddy ' +
		    'already gone, under set -e)\n' + r.log.join(''));
	} finally {
		if (r)
			killGroup(r.child.pid);
		busy.close();
	}
});

// A checkout deep enough that its socket path (build/run/beep-PORT.sock)
// passes what a Unix socket's address holds (108 bytes): the backend
// could not listen and make run failed (a review). The socket then goes
// to a directory of its own under TMPDIR.
test('a run directory too deep for a socket path: make run still serves', T,
    async () => {
	const deep = path.join(dir, 'd'.repeat(60), 'e'.repeat(60));
	const r = await makeRun(undefined, deep);
	try {
		await serving(r);
		process.kill(r.child.pid, 'SIGTERM');
		await withTimeout(r.exited, 30000);
		assert.equal(groupAlive(r.child.pid), false, r.log.join(''));
	} finally {
		killGroup(r.child.pid);
	}
});
