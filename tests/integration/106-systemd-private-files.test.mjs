// The files an operator keeps private for the systemd setup, as the shipped
// instructions have them.
//
// 1. The environment file holds the JWT and TURN secrets (its own comment:
//    "This file holds the secret: keep it 0600"; README, Security: "mode 0600
//    in the systemd setup"). README's install steps put it in /etc 0600, but
//    the install steps at the top of conf/beep-signal.service, which an
//    operator reading the unit copies, said `install -D -m 0644`: the secret
//    readable by every local user.
//
// 2. README, Security: "keep BEEP_JWT_SECRET and key files readable by the
//    service alone". The unit runs the service as a DynamicUser, which
//    cannot read a file private to root: a key file kept so (0600 root, as
//    told) stops the service at start ("auth: /etc/beep-signal/...pem:
//    Permission denied"), and Restart=on-failure loops on it. The unit
//    offered a credential (LoadCredential=, read as %d/NAME) for the
//    configuration file only (test 96); a private key file needs the same.
//    Checked as test 96 does: the private file copied as systemd copies a
//    credential, read by an unprivileged uid (when the test runs as root).
//
// 3. A cluster node with Redis on a unix socket (BEEP_REDIS_URL=unix://...,
//    README's table): Debian's redis-server makes its socket for its own
//    user and group (unixsocketperm 700 or 770, group redis), and the unit's
//    DynamicUser is in no group: every connection was refused (EACCES), the
//    node answered 503 to every POST, and only making Redis's socket
//    world-writable (every local user in Redis) let it in. The unit offers
//    the group (SupplementaryGroups=) now; checked with a Redis socket of
//    mode 770, its group the one offered, reached by an unprivileged uid
//    with that group only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync,
	readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, BEEP_BIN, startRedis } from './harness.mjs';
import { launch, need, stop, waitLine } from './fronts.mjs';
import { rsaPair } from './jwt.mjs';

const UNIT = path.join(ROOT, 'conf', 'beep-signal.service');
const DYNAMIC_UID = 61235;      // a uid no one has, as DynamicUser picks

test('every install step puts the environment file in /etc private (0600)',
    () => {
	const files = ['README.md', 'conf/beep-signal.service',
	    'conf/beep-signal.socket', 'conf/beep-signal.env',
	    'man/beep-signal.8'];
	const steps = [];
	for (const f of files) {
		const text = readFileSync(path.join(ROOT, f), 'utf8');
		for (const m of text.matchAll(
		    /install\b[^\n]*?beep-signal\.env\s+\/etc\/\S+/g))
			steps.push({ f, step: m[0] });
	}
	assert.ok(steps.some((s) => s.f === 'README.md'),
	    'README installs the environment file');
	const open = steps.filter((s) => !/\s-m\s+0?600\s/.test(s.step));
	assert.deepEqual(open, [], 'the environment file holds the secrets ' +
	    '(BEEP_JWT_SECRET, BEEP_TURN_SECRET): installed other than 0600 ' +
	    'root, every local user reads them');
});

test('a JWT key file kept readable by the service alone is read by the ' +
    'unit\'s DynamicUser', async (t) => {
	const unit = readFileSync(UNIT, 'utf8');
	assert.match(unit, /^DynamicUser=yes$/m, 'the unit runs as a DynamicUser');
	const creds = new Map([...unit.matchAll(
	    /^#?LoadCredential=([^:\s]+):(\S+)$/mg)].map((m) => [m[1], m[2]]));
	const offered = {};
	for (const v of ['BEEP_JWT_KEY', 'BEEP_JWT_KEY_PREVIOUS']) {
		const m = new RegExp(`^#?Environment=${v}=%d/(\\S+)$`, 'm')
		    .exec(unit);
		assert.ok(m && creds.has(m[1]), `${v}: README says to keep key ` +
		    'files readable by the service alone, which its ' +
		    'DynamicUser cannot read; hand the file over as a ' +
		    `credential (LoadCredential=NAME:FILE, ${v}=%d/NAME)`);
		offered[v] = m[1];
	}

	if (process.getuid() !== 0) {
		t.diagnostic('not root: the run as another uid skipped');
		return;
	}
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-keycred-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	chmodSync(dir, 0o755);
	const credDir = path.join(dir, 'credentials');
	mkdirSync(credDir);
	const env = { PATH: process.env.PATH, BEEP_AUTH: 'jwt',
	    BEEP_JWT_ALG: 'RS256' };
	const direct = { ...env };
	for (const [v, name] of Object.entries(offered)) {
		// Kept private, as README says: 0600 root.
		const source = path.join(dir, `${name}.source`);
		writeFileSync(source, rsaPair().publicPem);
		chmodSync(source, 0o600);
		direct[v] = source;
		// What systemd does with LoadCredential=.
		const cred = path.join(credDir, name);
		copyFileSync(source, cred);
		chmodSync(cred, 0o400);
		chownSync(cred, DYNAMIC_UID, DYNAMIC_UID);
		env[v] = cred;
	}
	chownSync(credDir, DYNAMIC_UID, DYNAMIC_UID);
	chmodSync(credDir, 0o500);
	const run = (e) => spawnSync('setpriv', [`--reuid=${DYNAMIC_UID}`,
	    `--regid=${DYNAMIC_UID}`, '--clear-groups', BEEP_BIN,
	    '--check-config'], { env: e, encoding: 'utf8' });
	const r = run(direct);
	assert.equal(r.status, 2, `the private files themselves are out of ` +
	    `reach: ${r.stderr}`);
	assert.match(r.stderr, /Permission denied/);
	const viaCred = run(env);
	assert.equal(viaCred.status, 0, `as credentials: ${viaCred.stderr}`);
});

test('a Redis socket kept to its group is reached by the unit\'s ' +
    'DynamicUser', async (t) => {
	const unit = readFileSync(UNIT, 'utf8');
	const m = /^#?SupplementaryGroups=(\S+)$/m.exec(unit);
	assert.ok(m, 'a cluster with Redis on a unix socket: the unit\'s ' +
	    'DynamicUser is in no group, and Redis keeps its socket to its own ' +
	    '(offer SupplementaryGroups=)');
	const group = m[1];
	if (process.getuid() !== 0) {
		t.diagnostic('not root: the run as another uid skipped');
		return;
	}
	need('redis-server');
	const entry = readFileSync('/etc/group', 'utf8').split('\n')
	    .find((l) => l.startsWith(`${group}:`));
	if (!entry) {
		t.skip(`no group ${group} here (redis-server's package makes it)`);
		return;
	}
	const gid = Number(entry.split(':')[2]);
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-redisgrp-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	chmodSync(dir, 0o755);
	// As Debian's redis.conf offers it, the socket's group Redis's own.
	const redis = await startRedis(dir, { args: ['--unixsocketperm', '770'] });
	t.after(() => redis.stop());
	chownSync(redis.socket, 0, gid);
	const run = path.join(dir, 'run');
	mkdirSync(run);
	chownSync(run, DYNAMIC_UID, DYNAMIC_UID);
	const node = (groups, name) => {
		const p = launch('setpriv', [`--reuid=${DYNAMIC_UID}`,
		    `--regid=${DYNAMIC_UID}`, ...groups, BEEP_BIN,
		    '--listen', `unix:${path.join(run, `${name}.sock`)}`],
		    { cwd: run, tag: name, env: { PATH: process.env.PATH,
		    BEEP_REDIS_URL: `unix://${redis.socket}` } });
		t.after(() => stop(p));
		return p;
	};
	// Without the group: refused, and the log says so.
	const without = node(['--clear-groups'], 'no-group');
	await waitLine(without, /redis commands: down: .*Permission denied/);
	// With the group the unit offers: both connections up.
	const withGroup = node([`--groups=${gid}`], 'group');
	await waitLine(withGroup, /redis commands: up/);
	await waitLine(withGroup, /redis channel: up/);
	for (const p of [without, withGroup]) {
		const exit = await stop(p);
		assert.deepEqual([exit.code, exit.killed], [0, false]);
	}
});
