// What the operator's commands print, as a script that keeps it sees it
// (review r21):
//   - `--print-config > beep-signal.conf` on a full disk (or any stdout that
//     cannot be written) exited 0 with the file empty or cut: stdout was
//     flushed at exit and its error never looked at, so a provisioning
//     script (`beep-signal --print-config > f && install f ...`) went on
//     with a configuration that had lost its keys (a cut file still passes
//     --check-config: every key it lost is at its default).  `--help` and
//     `--version` the same.  A write that fails must be an exit other
//     than 0, saying why;
//   - "what it writes reads back as it is" (README, Operations): a value
//     that ends with a carriage return (a secret from a CRLF env file, as
//     `docker run --env-file` passes it) was written unquoted, and the
//     file reader trims a trailing CR as it does a CRLF line's: read back,
//     the value had silently lost it (a JWT or TURN secret that no longer
//     matches the issuer's).  It must be quoted, as a trailing space is.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
	closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BEEP_BIN, SANITIZER, runBinary } from './harness.mjs';

const T = { timeout: 30000 };
const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-r21-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// The binary with its stdout on /dev/full (every write fails, ENOSPC).
function toFullDisk(args) {
	const clean = {};
	for (const [k, v] of Object.entries(process.env))
		if (!k.startsWith('BEEP_'))
			clean[k] = v;
	const fd = openSync('/dev/full', 'w');
	try {
		return spawnSync(BEEP_BIN, args, {
			env: clean, encoding: 'utf8', timeout: 10000,
			stdio: ['ignore', fd, 'pipe'],
		});
	} finally {
		closeSync(fd);
	}
}

test('--print-config, --help, --version: a failed write is no exit 0',
    { ...T, skip: !existsSync('/dev/full') && 'no /dev/full' }, () => {
	for (const arg of ['--print-config', '--help', '--version']) {
		const r = toFullDisk([arg]);
		assert.equal(r.error, undefined, `${arg}: ${r.error}`);
		assert.equal(r.signal, null, `${arg}: killed by ${r.signal}`);
		assert.notEqual(r.status, 0, `${arg} > /dev/full exited 0: a ` +
		    'script that saves its output would go on with an empty or ' +
		    'cut file');
		assert.match(r.stderr, /No space left on device|write/i,
		    `${arg}: says why: ${JSON.stringify(r.stderr)}`);
	}
});

// What --print-config's output sets key to, as written (lines split at
// LF only, as the file reader does: a CR is part of the line).
function valueOf(out, key) {
	const line = out.split('\n').find((l) => l.startsWith(`${key} = `));
	assert.ok(line !== undefined, `--print-config sets ${key}: ${out}`);
	return line.slice(key.length + 3);
}

test('--print-config: a value ending in CR reads back as it is', T,
    async () => {
	const secret = 's3cret\r';
	let r = await runBinary(['--print-config'],
	    { env: { BEEP_JWT_SECRET: secret, BEEP_TURN_SECRET: 'ok' } });
	assert.equal(r.code, 0, r.stderr);
	const f = path.join(dir, 'printed.conf');
	// runBinary splits lines at \n only: the CR is still in stdout.
	writeFileSync(f, r.stdout + '\n');
	r = await runBinary(['--config', f, '--print-config']);
	assert.equal(r.code, 0, r.stderr);
	assert.equal(valueOf(r.stdout, 'turn-secret'), 'ok');
	assert.equal(JSON.stringify(valueOf(r.stdout, 'jwt-secret')),
	    JSON.stringify(`"${secret}"`),
	    'the file --print-config wrote read back with another jwt-secret ' +
	    '(its trailing CR trimmed as a line end): written unquoted');
});

// A configuration file whose line is larger than the memory the service
// may have (a device or a file named by mistake: /dev/zero, a dump with
// no line break; here within a 400 MB address-space limit, so that the
// test never takes the machine's memory): getline() failed for want of
// memory, which the reader took for the file's end, and the file was
// "configuration OK" with every key it held left at its default, and a
// start took them so.  It must be refused, saying why.
test('a configuration file line too long to read is refused, not OK',
    { ...T, skip: SANITIZER !== '' &&
	'a sanitizer reserves more address space than the limit' },
    async () => {
	const r = await runBinary(['--config', '/dev/zero', '--check-config'],
	    { prefix: ['sh', '-c', 'ulimit -v 400000 && exec "$0" "$@"'] });
	assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
	assert.doesNotMatch(r.stdout, /configuration OK/,
	    'a file that could not be read was said to be OK');
	assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
	assert.match(r.stderr, /\/dev\/zero/, 'names the file');
});

// The Redis URL is logged "never with its password" (cluster.c): all before
// its last '@' is masked.  A URL that carries the password as a query
// parameter, as redis-py and others take it (redis://HOST/0?password=...),
// is refused, and the refusal logged it whole: the password in the
// journal of every failed start.  What follows '?' must be masked too.
test('a refused Redis URL with ?password= is logged without it', T,
    async () => {
	for (const url of ['redis://127.0.0.1:6379/0?password=s3cret-r21',
	    'redis://127.0.0.1/0?user=u&password=s3cret-r21']) {
		const r = await runBinary(['--listen', 'unix:@DIR@/b.sock',
		    '--redis-url', url, '--check-config']);
		assert.equal(r.code, 2, `${url}: refused\n${r.stdout}\n${r.stderr}`);
		assert.match(r.stderr, /--redis-url/, 'says why');
		assert.doesNotMatch(r.stderr, /s3cret-r21/,
		    `the Redis password reached the log: ${r.stderr}`);
	}
});
