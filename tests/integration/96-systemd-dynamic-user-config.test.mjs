// conf/beep-signal.service runs the backend as a DynamicUser and offers a
// configuration file in place of the environment file ("Or a configuration
// file": #Environment=BEEP_CONFIG=/etc/beep-signal/beep-signal.conf). That
// file holds the service's secrets (jwt-secret, turn-secret), and README
// says to keep it private, as the environment file is (0600, root). But a
// dynamic user is no fixed user: it cannot own the file, and a file private
// to root it cannot read. The service as offered then fails to start
// ("beep-signal: /etc/beep-signal/beep-signal.conf: Permission denied"),
// and the one way to make it start without changing the unit is to make
// the secrets readable by every local user. (The environment file is read
// by systemd itself, as root: it has no such problem.)
//
// systemd's answer is a credential: `LoadCredential=NAME:/etc/...` copies
// the private file into the service's own credentials directory, readable
// by the dynamic user alone, whose path is `%d` in the unit. So the unit's
// offered BEEP_CONFIG must name `%d/NAME`, with the LoadCredential= line
// beside it. Checked on the unit's text, then the way systemd would run it:
// a private root file, copied as a credential, read by an unprivileged uid
// (when the test runs as root; the file's own path fails as shown).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync,
	readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, BEEP_BIN } from './harness.mjs';

const UNIT = path.join(ROOT, 'conf', 'beep-signal.service');
const DYNAMIC_UID = 61234;      // a uid no one has, as DynamicUser picks

function offered(unit) {
	const config = unit.match(/^#?Environment=BEEP_CONFIG=(\S+)$/m);
	assert.ok(config, 'the unit offers a configuration file (BEEP_CONFIG)');
	const creds = [...unit.matchAll(/^#?LoadCredential=([^:\s]+):(\S+)$/mg)]
	    .map((m) => ({ name: m[1], source: m[2] }));
	return { config: config[1], creds };
}

test('the configuration file the unit offers is readable by its ' +
    'DynamicUser while kept private', async (t) => {
	const unit = readFileSync(UNIT, 'utf8');
	assert.match(unit, /^DynamicUser=yes$/m, 'the unit runs as a DynamicUser');
	const { config, creds } = offered(unit);
	const cred = creds.find((c) => config === `%d/${c.name}`);
	assert.ok(cred, `BEEP_CONFIG=${config}: a file a DynamicUser reads only ` +
	    'if every local user may (it holds jwt-secret and turn-secret); ' +
	    'hand it over as a credential (LoadCredential=NAME:FILE, ' +
	    'BEEP_CONFIG=%d/NAME)');

	if (process.getuid() !== 0) {
		t.diagnostic('not root: the run as another uid skipped');
		return;
	}
	// What systemd does: the private file (0600 root) copied into the
	// service's credentials directory, owned by the dynamic user.
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-cred-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	chmodSync(dir, 0o755);
	const source = path.join(dir, 'etc.conf');
	writeFileSync(source, 'auth = jwt\n' +
	    'jwt-secret = "0123456789abcdef0123456789abcdef"\n');
	chmodSync(source, 0o600);
	const credDir = path.join(dir, 'credentials');
	mkdirSync(credDir);
	copyFileSync(source, path.join(credDir, cred.name));
	chmodSync(path.join(credDir, cred.name), 0o400);
	chownSync(path.join(credDir, cred.name), DYNAMIC_UID, DYNAMIC_UID);
	chownSync(credDir, DYNAMIC_UID, DYNAMIC_UID);
	chmodSync(credDir, 0o500);
	const run = (file) => spawnSync('setpriv', [`--reuid=${DYNAMIC_UID}`,
	    `--regid=${DYNAMIC_UID}`, '--clear-groups', BEEP_BIN,
	    '--check-config'], { env: { PATH: process.env.PATH,
	    BEEP_CONFIG: file }, encoding: 'utf8' });
	const direct = run(source);
	assert.equal(direct.status, 2, 'the private file itself is out of ' +
	    `reach: ${direct.stderr}`);
	const viaCred = run(config.replace('%d', credDir));
	assert.equal(viaCred.status, 0, `as a credential: ${viaCred.stderr}`);
});
