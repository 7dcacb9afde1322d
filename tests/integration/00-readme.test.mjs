// The README's configuration table and `beep-signal --help` name the same
// options, environment variables and defaults, in the same order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, runBinary } from './harness.mjs';

function readmeTable() {
	const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const start = text.indexOf('\n## Configuration');
	assert.ok(start >= 0, 'README has a Configuration section');
	const rows = [];
	for (const line of text.slice(start).split('\n')) {
		const m = line.match(/^\| `--([a-z0-9-]+)` \| `(BEEP_[A-Z0-9_]+)` \| ([^|]+) \|/);
		if (m)
			rows.push([m[1], m[2], m[3].trim().replaceAll('`', '')]);
		if (rows.length && !line.startsWith('|'))
			break;
	}
	return rows;
}

function helpTable(out) {
	const rows = [];
	for (const line of out.split('\n')) {
		const m = line.match(/^ {2}--([a-z0-9-]+)\s+(BEEP_[A-Z0-9_]+)\s+default: (.*)$/);
		if (m)
			rows.push([m[1], m[2], m[3].trim()]);
	}
	return rows;
}

test('README configuration table matches --help', async () => {
	const r = await runBinary(['--help']);
	assert.equal(r.code, 0);
	const help = helpTable(r.stdout);
	assert.ok(help.length > 20, `parsed ${help.length} options from --help`);
	assert.deepEqual(readmeTable(), help);
});

// The sample configuration file is what `--print-config` prints with nothing
// set: every option of the table, with its help and default. An option added
// to the table without `make docs` fails here, naming the lines.
test('conf/beep-signal.conf is the table (make docs)', async () => {
	const r = await runBinary(['--print-config']);
	assert.equal(r.code, 0, r.stderr);
	const want = r.stdout.split('\n');
	const have = readFileSync(path.join(ROOT, 'conf', 'beep-signal.conf'),
	    'utf8').replace(/\n$/, '').split('\n');
	const missing = want.filter((l) => !have.includes(l));
	const extra = have.filter((l) => !want.includes(l));
	assert.deepEqual({ missing, extra }, { missing: [], extra: [] },
	    'conf/beep-signal.conf is out of date: run `make docs`');
	assert.deepEqual(have, want, 'same lines, same order (make docs)');
	// Every option of --help is a key there, at its default.
	const help = helpTable((await runBinary(['--help'])).stdout);
	for (const [flag, env, def] of help) {
		const value = def === '(none)' ? '' : ` ${def}`;
		assert.ok(have.includes(`#${flag} =${value}`), `key ${flag}`);
		assert.ok(have.some((l) => l.includes(env)), `names ${env}`);
	}
});
