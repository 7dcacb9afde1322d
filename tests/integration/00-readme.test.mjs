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

// The Architecture section against src/: its graph and its table name
// every module (one src/NAME.c) and no name with a `_` that is not one
// (a module renamed or gone); and its fan-in lines (`a, b*, c ─→ log`)
// name every module whose sources include that header, itself or through
// its group's NAME_impl.h, unless the graph draws the arrow on the
// module's own line (`metrics ─→ ..., config`) or on main's branches.
function projectIncludes(file) {
	const p = path.join(ROOT, file);
	let text;
	try {
		text = readFileSync(p, 'utf8');
	} catch {
		return [];
	}
	return [...text.matchAll(/^#include "([a-z_]+)\.h"/gm)].map((m) => m[1]);
}

test('README architecture: its modules and its fan-in lines are src/\'s', () => {
	const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const at = readme.indexOf('\n## Architecture\n');
	assert.ok(at >= 0, 'README has "## Architecture"');
	const section = readme.slice(at, readme.indexOf('\n## ', at + 1));
	const graph = section.match(/\n```\n([\s\S]*?)\n```\n/)[1];
	const lines = graph.split('\n');
	const modules = readdirSync(path.join(ROOT, 'src'))
	    .filter((f) => f.endsWith('.c')).map((f) => f.slice(0, -2));
	const word = (m) => new RegExp(`(^|[^a-z_])${m}([^a-z_]|$)`);

	// Every module in the graph and in the table, and nothing else.
	const rows = section.split('\n').filter((l) => /^\| `[a-z_]+`/.test(l));
	const tabled = rows.flatMap((l) =>
	    [...l.split(' | ')[0].matchAll(/`([a-z_]+)`/g)].map((m) => m[1]));
	assert.deepEqual(modules.filter((m) => !word(m).test(graph)), [],
	    'modules the graph leaves out');
	assert.deepEqual([...modules].sort(), [...tabled].sort(),
	    'the table\'s modules are src/\'s');
	const named = [...graph.matchAll(/(?<![a-z_])([a-z]+(?:_[a-z]+)+)(?![a-z_(.])/g)]
	    .map((m) => m[1]);
	assert.deepEqual([...new Set(named.filter((n) => !modules.includes(n)))],
	    [], 'names in the graph that are no module');

	// m's project includes: its .c, its header, and what an X_impl.h it
	// includes brings (as X's group).
	const incl = new Map(modules.map((m) => {
		const own = [...projectIncludes(`src/${m}.c`),
		    ...projectIncludes(`include/${m}.h`)];
		const via = new Map();
		for (const h of own.filter((h) => h.endsWith('_impl')))
			for (const d of projectIncludes(`include/${h}.h`))
				via.set(d, h.slice(0, -'_impl'.length));
		return [m, { own: new Set(own), via }];
	}));
	const includes = (m, t) => incl.get(m).own.has(t) || incl.get(m).via.has(t);
	for (const target of ['config', 'keyed_hash', 'log']) {
		const line = lines.find((l) =>
		    new RegExp(`^\\s+[a-z_*, ]+ ─→ ${target}(\\s|$)`).test(l));
		assert.ok(line, `the graph has a line "..., ... ─→ ${target}"`);
		const listed = line.split('─→')[0].trim().split(/,\s*/);
		const covers = (n, m) => n === m ||
		    (n.endsWith('*') && (m === n.slice(0, -1) ||
		    m.startsWith(n.slice(0, -1) + '_')));
		for (const n of listed) {
			const members = modules.filter((m) => covers(n, m));
			assert.ok(members.some((m) => includes(m, target)),
			    `${n} ─→ ${target}: no such include`);
		}
		// main's branches, or `m ─→ ..., target` on one line.
		const drawn = (m) => (m === 'main' ?
		    lines.filter((l) => /^ {2}[├└]─→/.test(l)) :
		    lines.map((l) => (l.match(
			new RegExp(`(?:^|[^a-z_])${m} ─→(.*)`)) || ['', ''])[1]))
		    .some((l) => word(target).test(l));
		const missing = modules.filter((m) => m !== target &&
		    includes(m, target) && !drawn(m) &&
		    !listed.some((n) => covers(n, m) ||
		    (!incl.get(m).own.has(target) &&
		    n === incl.get(m).via.get(target))));
		assert.deepEqual(missing, [], `modules that include ${target}.h ` +
		    'but the graph does not show it');
	}
});
