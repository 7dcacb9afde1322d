// Issue 12: the configuration file and JSON logs.
//   - precedence flag > environment > file > default, read back with
//     --print-config and seen in a running service (BEEP_CONFIG);
//   - --check-config: 0 and "configuration OK" for a good file (the sample
//     with every key uncommented included); exit 2 and FILE:LINE: reason
//     for unknown keys, invalid values, lines without '=', keys set twice;
//   - BEEP_LOG_FORMAT=json: every line the backend writes, from start to
//     stop, is one JSON object with time, level, module and message.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
	ROOT, runBinary, startStack, uid, subPath, openSub, assertRefusedStart,
} from './harness.mjs';

const T = { timeout: 30000 };
const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-conf-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text) {
	const f = path.join(dir, `c${++n}.conf`);
	writeFileSync(f, text);
	return f;
}

// The effective value of key, from --print-config.
function effective(out, key) {
	const m = new RegExp(`^#?${key} =(?: (.*))?$`, 'm').exec(out);
	assert.ok(m, `--print-config shows ${key}`);
	return m[1] ?? '';
}

test('flag > environment > file > default', T, async () => {
	const f = file('# comment\n\nkeepalive = 7\nmax-body = 2048\n' +
	    'max-id = 99\ncors-origins = "https://a.example"\n');
	let r = await runBinary(['--config', f, '--print-config']);
	assert.equal(r.code, 0, r.stderr);
	assert.equal(effective(r.stdout, 'keepalive'), '7');
	assert.match(r.stdout, /^keepalive = 7$/m, 'set: not commented out');
	assert.equal(effective(r.stdout, 'cors-origins'), 'https://a.example');
	assert.match(r.stdout, /^#max-streams = 10000$/m, 'default: commented');
	r = await runBinary(['--config', f, '--max-id', '5', '--print-config'],
	    { env: { BEEP_MAX_BODY: '4096', BEEP_MAX_ID: '6' } });
	assert.equal(r.code, 0, r.stderr);
	assert.equal(effective(r.stdout, 'keepalive'), '7');    // file
	assert.equal(effective(r.stdout, 'max-body'), '4096');  // env > file
	assert.equal(effective(r.stdout, 'max-id'), '5');       // flag > env
	// BEEP_CONFIG names the file; --config wins over it.
	r = await runBinary(['--print-config'], { env: { BEEP_CONFIG: f } });
	assert.equal(effective(r.stdout, 'keepalive'), '7');
	const g = file('keepalive = 9\n');
	r = await runBinary(['--config', g, '--print-config'],
	    { env: { BEEP_CONFIG: f } });
	assert.equal(effective(r.stdout, 'keepalive'), '9');
	assert.equal(effective(r.stdout, 'max-body'), '65536');
});

test('a running service takes its settings from BEEP_CONFIG', T, async (t) => {
	const f = file('max-streams = 1\n');
	const stack = await startStack({ env: { BEEP_CONFIG: f } }, t);
	const a = await openSub(stack, subPath(uid('f'), 'd'));
	assert.equal(a.status, 200);
	const b = await openSub(stack, subPath(uid('f'), 'd'));
	assert.equal(b.status, 503, 'max-streams = 1 from the file');
	a.stream.close();
});

test('--check-config accepts good files, the sample fully uncommented', T,
    async () => {
	const sample = readFileSync(path.join(ROOT, 'conf', 'beep-signal.conf'),
	    'utf8');
	const all = sample.replace(/^#([a-z0-9-]+ =)/gm, '$1');
	assert.notEqual(all, sample);
	for (const f of [path.join(ROOT, 'conf', 'beep-signal.conf'), file(all)]) {
		const r = await runBinary(['--config', f, '--check-config']);
		assert.equal(r.code, 0, r.stderr);
		assert.equal(r.sawReady, false);
		assert.match(r.stdout, /configuration OK/);
	}
	// Every key set at its default changes nothing.
	const a = await runBinary(['--print-config']);
	const b = await runBinary(['--config', file(all), '--print-config']);
	assert.equal(b.stdout, a.stdout);
});

test('--check-config: exit 2 and FILE:LINE: reason', T, async () => {
	const cases = [
		['keepalive = 5\nno-such-key = 1\n', 2, /unknown key 'no-such-key'/],
		['\n\nkeepalive = 0\n', 3, /invalid value '0' for keepalive .*1 to 300\b/],
		['# ok\nkeepalive\n', 2, /expected key = value/],
		['keepalive = 3\nmax-id = 9\nkeepalive = 4\n', 3,
		    /'keepalive' set again \(first on line 1\)/],
		['metrics-allow = 10.0.0.0/33\n', 1, /metrics-allow: prefix length/],
		['log-format = xml\n', 1, /invalid value 'xml' for log-format/],
		['--keepalive = 3\n', 1, /unknown key '--keepalive'/],
		// A comment after a quoted value: not "a quote not closed".
		['log-level = "debug" # x\n', 1,
		    /text after the closing double quote/],
		['jwt-secret = "s3cret\n', 1, /a double quote not closed/],
	];
	for (const [text, line, why] of cases) {
		const f = file(text);
		const r = await runBinary(['--config', f, '--check-config']);
		assert.equal(r.code, 2, `${JSON.stringify(text)}: ${r.stderr}`);
		assert.ok(r.stderr.includes(`${f}:${line}: `),
		    `names ${f}:${line}: ${r.stderr}`);
		assert.match(r.stderr, why);
		assert.doesNotMatch(r.stdout, /configuration OK/);
		// The service refuses to start with it, for the same reason.
		const s = await runBinary(['--config', f, '--listen',
		    'unix:@DIR@/b.sock']);
		assertRefusedStart(s, text);
		assert.ok(s.stderr.includes(`${f}:${line}: `));
	}
	let r = await runBinary(['--config', path.join(dir, 'missing.conf'),
	    '--check-config']);
	assert.equal(r.code, 2);
	assert.match(r.stderr, /missing\.conf: No such file/);
	// The environment and flags are checked too.
	r = await runBinary(['--check-config'], { env: { BEEP_KEEPALIVE: 'x' } });
	assert.equal(r.code, 2);
	assert.match(r.stderr, /BEEP_KEEPALIVE/);
});

// An option's variable misspelt (BEEP_MAX_STREAM for BEEP_MAX_STREAMS) was
// ignored in silence: the service ran with the default the operator meant
// to change.  The scripts' and fronts' own BEEP_* variables (BEEP_SOCKET,
// BEEP_WEB_ROOT, BEEP_NODES...) are not options and share the prefix, so a
// name within two edits of an option's is warned of, naming the option;
// the rest are left alone.
test('a misspelt option variable is warned of, naming the option', T,
    async () => {
	let r = await runBinary(['--check-config'],
	    { env: { BEEP_MAX_STREAM: '5', BEEP_KEEPALIVES: '9' } });
	assert.equal(r.code, 0, r.stderr);
	assert.match(r.stderr, /BEEP_MAX_STREAM .*BEEP_MAX_STREAMS\b/,
	    `a typo of BEEP_MAX_STREAMS went unmentioned: ${r.stderr}`);
	assert.match(r.stderr, /BEEP_KEEPALIVES .*BEEP_KEEPALIVE\b/);
	r = await runBinary(['--check-config'], { env: { BEEP_SOCKET: '/x',
	    BEEP_WEB_ROOT: '/w', BEEP_NODES: 'a b', BEEP_UPSTREAMS: 'a',
	    BEEP_RUN_DIR: '/r', BEEP_TEST_SCALE: '1', BEEP_CONFIG: '',
	    BEEP_CADDY_WEB: '/c' } });
	assert.equal(r.code, 0, r.stderr);
	assert.doesNotMatch(r.stderr, /BEEP_/, 'the fronts\' and scripts\' ' +
	    'variables are not options, and not typos of one');
});

// --print-config writes a file --config reads back as it is (quoting a
// value with '#', a quote or a space at an end).  A value with a line
// break cannot be written so (a file holds one key a line, with no
// escapes): it was written raw, and the rest of the value became a line
// of its own, an error or, worse, a key (a secret "x\nmax-streams = 1").
// It is refused, naming the option, with nothing written.
test('--print-config refuses a value with a line break', T, async () => {
	const r = await runBinary(['--print-config'],
	    { env: { BEEP_JWT_SECRET: 'x\nmax-streams = 1' } });
	assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
	assert.match(r.stderr, /jwt-secret/);
	assert.doesNotMatch(r.stdout, /^max-streams = 1$/m,
	    'the secret\'s second line was written as a key');
});

// What the operator gave is echoed in the error (a value, a file's key,
// an argument, a variable's name, the file's path) before logging starts:
// a control character in it was written raw, so an escape sequence drove
// the terminal and a line break started a line that looked like the
// service's own.  It is shown escaped (\x1b, \n), as a text log line
// shows it, and a long one is cut.
test('configuration errors show control characters escaped', T, async () => {
	const esc = '\x1b[2J\x1b]0;owned\x07';
	const fake = 'beep-signal: configuration OK';
	const dirty = path.join(dir, `a${'\x1b'}[1mb`);
	writeFileSync(dirty, `keepalive = 5\n${esc}key = 1\n`);
	const cases = [
		[['--check-config'], { BEEP_KEEPALIVE: `${esc}\n${fake}` },
		    /invalid value '\\x1b\[2J\\x1b\]0;owned\\x07\\nbeep-signal: configuration OK' for --keepalive/],
		[['--check-config', `--log-format=${esc}`], {},
		    /invalid value '\\x1b\[2J.*' for --log-format/],
		[['--check-config', `--no-such${esc}`], {},
		    /unknown argument '--no-such\\x1b\[2J/],
		[['--check-config', '--config', dirty], {},
		    /a\\x1b\[1mb:2: unknown key '\\x1b\[2J\\x1b\]0;owned\\x07key'/],
		[['--check-config', '--keepalive', 'x'.repeat(100000)], {},
		    /invalid value 'x+' for --keepalive/],
	];
	for (const [args, env, why] of cases) {
		const r = await runBinary(args, { env });
		assert.equal(r.code, 2, r.stderr);
		assert.match(r.stderr, why);
		assert.doesNotMatch(r.stderr, /[\x00-\x09\x0b-\x1f\x7f]/,
		    `a control character written raw: ${JSON.stringify(r.stderr)}`);
		assert.doesNotMatch(r.stderr, /^beep-signal: configuration OK/m);
		assert.ok(r.stderr.length < 2048, `${r.stderr.length} bytes`);
	}
	// A misspelt variable's name is shown so too (a warning, exit 0).
	const r = await runBinary(['--check-config'],
	    { env: { [`BEEP_KEEPALIV${'\x1b'}`]: '5' } });
	assert.equal(r.code, 0, r.stderr);
	assert.match(r.stderr, /BEEP_KEEPALIV\\x1b .*BEEP_KEEPALIVE\b/);
	assert.doesNotMatch(r.stderr, /\x1b/);
});

// What only the start used to find (the JWT secret or key, the ICE server
// URLs): --check-config said OK, then the service refused to start.
test('--check-config: what the start would refuse, exit 2 and why', T,
    async () => {
	const cases = [
		['auth = jwt\n', /--jwt-alg HS256 needs --jwt-secret/],
		['auth = jwt\njwt-alg = RS256\njwt-key = @DIR@/none.pem\n',
		    /none\.pem: No such file/],
		['auth = jwt\njwt-alg = ES256\njwt-key = @SELF@\n',
		    /not a PEM EC public key/],
		['turn-urls = turn:turn.example\n', /BEEP_TURN_SECRET must be set/],
		// The sample's placeholder: guessed from any credential handed out.
		['turn-urls = turn:turn.example\nturn-secret = change-me\n',
		    /BEEP_TURN_SECRET is 9 bytes: .*at least 20/],
		['turn-urls = http://x\n', /not a stun:, stuns:, turn: or turns:/],
		// The socket's shape, and the cluster's URL: refused at start.
		['listen = garbage\n', /expected unix:PATH or HOST:PORT/],
		['listen = unix:\n', /expected unix:PATH/],
		['listen = 127.0.0.1:99999\n', /port must be a number from 0 to 65535/],
		[`listen = unix:/tmp/${'x'.repeat(120)}\n`, /unix socket path too long/],
		['redis-url = garbage\n', /expected redis:\/\/\[\[USER\]:PASSWORD@\]HOST/],
	];
	for (const [text, why] of cases) {
		const f = file('');
		writeFileSync(f, text.replace('@DIR@', dir).replace('@SELF@', f));
		const r = await runBinary(['--config', f, '--check-config']);
		assert.equal(r.code, 2, `${JSON.stringify(text)}: ${r.stderr}`);
		assert.match(r.stderr, why);
		assert.doesNotMatch(r.stdout, /configuration OK/);
	}
	const f = file('auth = jwt\njwt-secret = 0123456789abcdef0123456789abcdef\n' +
	    'turn-urls = turn:turn.example\nturn-secret = 0123456789abcdef0123\n');
	const r = await runBinary(['--config', f, '--check-config']);
	assert.equal(r.code, 0, r.stderr);
	assert.match(r.stdout, /configuration OK/);
});

test('BEEP_LOG_FORMAT=json: one JSON object per line, start to stop', T,
    async (t) => {
	const check = { ignoreLines: [/^\{/] };
	const stack = await startStack({ env: { BEEP_LOG_FORMAT: 'json',
	    BEEP_MAX_STREAMS: '1' }, check }, t);
	const a = await openSub(stack, subPath(uid('j'), 'd'));
	// A refused subscribe at the limit logs a warning.
	assert.equal((await openSub(stack, subPath(uid('j'), 'd'))).status, 503);
	a.stream.close();
	const exit = await stack.stop();
	assert.equal(exit.code, 0);
	const lines = stack.backendLog.filter((l) => l !== '');
	assert.ok(lines.length >= 4, lines.join('\n'));
	const docs = lines.map((l) => {
		let d;
		assert.doesNotThrow(() => { d = JSON.parse(l); }, l);
		assert.deepEqual(Object.keys(d), ['time', 'level', 'module',
		    'message'], l);
		assert.match(d.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
		assert.match(d.level, /^(debug|info|warn|error)$/);
		return d;
	});
	const has = (level, module, re) => docs.some((d) => d.level === level &&
	    d.module === module && re.test(d.message));
	assert.ok(has('info', 'main', /^ready on /), 'ready');
	assert.ok(has('warn', 'api', /stream limit reached/), 'the warning');
	assert.ok(has('info', 'main', /stopping/), 'stopping');
	assert.ok(has('info', 'main', /^stopped$/), 'stopped');
	assert.ok(!docs.some((d) => d.level === 'error'), 'no errors');
});
