// The command line: --help, --version, refused values exit non-zero at once
// with a message, the unix socket's mode, and flags winning over environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import {
	runBinary, assertRefusedStart, startStack, uid, postPath,
} from './harness.mjs';

const T = { timeout: 30000 };

test('--help lists every option and its environment variable', T, async () => {
	const r = await runBinary(['--help']);
	assert.equal(r.code, 0, r.stderr);
	assert.equal(r.sawReady, false);
	for (const [flag, env] of [['--listen', 'BEEP_LISTEN'],
	    ['--socket-mode', 'BEEP_SOCKET_MODE'], ['--keepalive', 'BEEP_KEEPALIVE'],
	    ['--max-streams', 'BEEP_MAX_STREAMS'], ['--min-idle', 'BEEP_MIN_IDLE'],
	    ['--max-body', 'BEEP_MAX_BODY'], ['--max-id', 'BEEP_MAX_ID'],
	    ['--cors-origins', 'BEEP_CORS_ORIGINS'],
	    ['--log-level', 'BEEP_LOG_LEVEL'], ['--help', null],
	    ['--version', null]]) {
		assert.ok(r.stdout.includes(flag), `--help mentions ${flag}`);
		if (env)
			assert.ok(r.stdout.includes(env), `--help mentions ${env}`);
	}
});

test('--version prints one line and exits 0', T, async () => {
	const r = await runBinary(['--version']);
	assert.equal(r.code, 0, r.stderr);
	assert.match(r.stdout.trim(), /^beep-signal \S+$/);
});

test('refused values: exit non-zero at once, with a message', T, async () => {
	const L = ['--listen', 'unix:@DIR@/beep.sock'];
	const cases = [
		[[...L, '--keepalive', '0']], [[...L, '--keepalive', '301']],
		[[...L, '--keepalive', 'x']], [[...L, '--keepalive', '5s']],
		[[...L, '--max-streams', '-1']], [[...L, '--max-body', 'lots']],
		[[...L, '--max-id', '0']], [[...L, '--socket-mode', '999']],
		[[...L, '--log-level', 'loud']], [[...L, '--bogus']],
		[[...L, '--keepalive']],
		// A message of --max-body would be dropped once accepted.
		[[...L, '--replay-bytes', '65535']],
		[L, { BEEP_KEEPALIVE: '0' }], [L, { BEEP_MAX_BODY: 'x' }],
		// Cannot bind: the directory does not exist.
		[['--listen', 'unix:@DIR@/missing/beep.sock']],
		// No --listen and fd 0 is not a listening socket.
		[[]],
	];
	for (const [args, env = {}] of cases) {
		const what = `${args.join(' ')} ${JSON.stringify(env)}`;
		const r = await runBinary(args, { env });
		assertRefusedStart(r, what);
	}
});

test('unix socket mode: 0660 by default, --socket-mode and env', T,
    async () => {
	for (const [args, env, want] of [[[], {}, 0o660],
	    [['--socket-mode', '0600'], {}, 0o600],
	    [[], { BEEP_SOCKET_MODE: '0666' }, 0o666]]) {
		const stack = await startStack({ args, env, caddy: false });
		try {
			const mode = statSync(stack.socket).mode & 0o777;
			assert.equal(mode.toString(8), want.toString(8),
			    `${args.join(' ')} ${JSON.stringify(env)}`);
		} finally {
			await stack.stopAndCheck();
		}
	}
});

test('a flag wins over its environment variable', T, async (t) => {
	const stack = await startStack({
		env: { BEEP_MAX_BODY: '64', BEEP_CORS_ORIGINS: 'https://env.example' },
		args: ['--max-body', '2048', '--cors-origins', 'https://flag.example'],
	}, t);
	const c = stack.client();
	const u = uid('user');
	const s = await stack.subscribe(u, 'd');
	const data = 'z'.repeat(1500);
	const r = await c.postJson(postPath(u, 'd'), { data },
	    { headers: { Origin: 'https://flag.example' } });
	assert.equal(r.status, 200, `--max-body 2048 beats BEEP_MAX_BODY=64: ${r.text}`);
	assert.equal(r.headers['access-control-allow-origin'], 'https://flag.example');
	assert.equal((await s.nextEvent()).data, data);
	const r2 = await c.get('/healthz', { headers: { Origin: 'https://env.example' } });
	assert.equal(r2.headers['access-control-allow-origin'], undefined);
	s.close();
});
