// The README against the code: its configuration table and `beep-signal
// --help` name the same options, environment variables and defaults, in the
// same order; its API table names every route; the error bodies it quotes
// are ones the code sends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
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

// The API section's table names every route of src/route.c, as the method
// and path a client sends (`GET /user/:user/devices`).
test('README API table has a row for every route of route.c', () => {
	const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const api = readme.slice(readme.indexOf('\n## The API\n'));
	const src = readFileSync(path.join(ROOT, 'src', 'route.c'), 'utf8');
	const re = /\{ROUTE_\w+,\s*(\d),\s*\{([^}]*)\},\s*METHOD_(\w+)/g;
	const routes = [];
	for (const [, n, segs, method] of src.matchAll(re)) {
		const names = [':user', ':device'];
		const parts = segs.split(',').slice(0, Number(n)).map((s) => {
			const m = s.match(/LIT\("([^"]*)"\)/);
			return m ? m[1] : names.shift();
		});
		routes.push(`${method} /${parts.join('/')}`);
	}
	assert.ok(routes.length >= 7, `parsed ${routes.length} routes`);
	const missing = routes.filter((r) => !api.includes(`\n| \`${r}\` |`));
	assert.deepEqual(missing, [], 'routes missing from the API table');
});

// Every JSON error body the README quotes (`{"error":"..."}`) is one the
// service or a shipped front sends: its text is in the sources or the
// shipped configurations (C string literals joined as the compiler does).
// A message reworded in the code, and not in the README, fails here.
test('README error bodies are those the code sends', () => {
	const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const files = [
	    ...['src', 'include', 'conf'].flatMap((d) =>
	        readdirSync(path.join(ROOT, d)).map((f) => path.join(d, f))),
	    'Caddyfile'];
	const code = files.map((f) =>
	    readFileSync(path.join(ROOT, f), 'utf8')
	        .replace(/"\s*\n\s*"/g, '')).join('\n');
	const quoted = [...readme.matchAll(/\{"error": ?"([^"]*)"/g)]
	    .map((m) => m[1].replace(/\s+/g, ' ')
	        .replace(/ ?\(?\.\.\.\)?$/, ''))
	    .filter((s) => s !== '');
	assert.ok(quoted.length > 10, `found ${quoted.length} error bodies`);
	const unknown = [...new Set(quoted)].filter((s) => !code.includes(s));
	assert.deepEqual(unknown, [], 'README error texts no code sends');
});
