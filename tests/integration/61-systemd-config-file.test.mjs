// conf/beep-signal.service offers a configuration file in place of the
// environment file ("Or a configuration file": `Environment=BEEP_CONFIG=`,
// commented out), and the environment wins over the file.  Its "defaults,
// shown for reference" were live `Environment=` lines: under the unit as
// shipped they set BEEP_KEEPALIVE, BEEP_MAX_STREAMS, BEEP_MIN_IDLE and
// BEEP_LOG_LEVEL, so those keys of the configuration file were ignored
// without a word (`log-level = debug` in the file, and the log stayed at
// info; `max-streams = 50000` in the file, and the service refused streams
// past 10000).  So did the environment file README's install steps put in
// /etc/beep-signal, whose "values shown are the defaults" were all live: with
// it installed, no key of the configuration file applied.  What the file
// says must be what the service runs with.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, runBinary } from './harness.mjs';

const T = { timeout: 30000 };
const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-unit-conf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// The environment the unit gives the service itself (its EnvironmentFile
// aside, which the configuration file replaces): its live Environment=
// lines, with the commented BEEP_CONFIG line turned on as it says.
function unitEnvironment(file, { envFile = false } = {}) {
	const unit = readFileSync(path.join(ROOT, 'conf',
	    'beep-signal.service'), 'utf8');
	assert.match(unit, /^#Environment=BEEP_CONFIG=\S+$/m,
	    'the unit offers a configuration file');
	const env = {};
	for (const m of unit.matchAll(/^Environment=(\w+)=(.*)$/mg))
		env[m[1]] = m[2];
	// EnvironmentFile= wins over Environment=.
	if (envFile) {
		const text = readFileSync(path.join(ROOT, 'conf',
		    'beep-signal.env'), 'utf8');
		for (const m of text.matchAll(/^(\w+)=(.*)$/mg))
			env[m[1]] = m[2];
	}
	env.BEEP_CONFIG = file;
	return env;
}

async function fileApplies(opts) {
	// Values other than the defaults, for the keys the unit used to set
	// and a few more.
	const want = {
		keepalive: '10', 'max-streams': '50000', 'min-idle': '4',
		'log-level': 'debug', grace: '5', 'max-body': '32768',
	};
	const file = path.join(dir, 'beep-signal.conf');
	writeFileSync(file, Object.entries(want)
	    .map(([k, v]) => `${k} = ${v}\n`).join(''));
	const env = unitEnvironment(file, opts);
	const r = await runBinary(['--print-config'], { env });
	assert.equal(r.code, 0, r.stderr);
	const overridden = [];
	for (const [key, value] of Object.entries(want)) {
		const m = new RegExp(`^#?${key} = (.*)$`, 'm').exec(r.stdout);
		assert.ok(m, `--print-config has ${key}`);
		if (m[1] !== value)
			overridden.push(`${key} = ${value} in the file, ${m[1]} ` +
			    'in effect');
	}
	return { overridden, env };
}

test('beep-signal.service with BEEP_CONFIG: the file\'s values apply', T,
    async () => {
	const { overridden, env } = await fileApplies();
	assert.deepEqual(overridden, [], 'the unit\'s own Environment= ' +
	    'lines override the configuration file it offers: ' +
	    Object.keys(env).join(' '));
});

test('with beep-signal.env installed too (README), the file\'s values apply',
    T, async () => {
	const { overridden } = await fileApplies({ envFile: true });
	assert.deepEqual(overridden, [], 'the sample environment file ' +
	    'README installs sets every variable to its default: each ' +
	    'overrides the configuration file');
});
