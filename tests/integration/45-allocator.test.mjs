// Issue 13, the soak's memory: the backend runs with glibc's per-thread
// block caches (tcache) off. With them on, each of thousands of sleeping
// stream threads kept ~7 KiB of blocks no other thread could reuse, and
// the soak's RSS rose for as long as it ran (README "Reliability"). glibc
// reads the setting only from the environment at start, so the binary
// re-executes itself once with GLIBC_TUNABLES=glibc.malloc.tcache_count=0
// (src/alloc_tune.c), keeping its pid; an operator's own tcache_count wins.
//
// The same re-exec trims glibc's static TLS surplus (glibc.rtld.nns=1,
// glibc.rtld.optional_static_tls=0), which with small frames lets a
// sleeping stream's thread keep one page of stack, not two (README
// "Architecture", memory per stream): checked in /proc/PID/smaps.
//
// Read from /proc/PID/environ, the environment the running image was
// started with. glibc writes a NUL after each tunable's value there when
// it parses them, so the tunables after the first show as entries of
// their own (the unit test covers adding to other tunables).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import {
	startStack, SANITIZER, BEEP_BIN, openSub, subPath, postPath, uid, poll,
} from './harness.mjs';

const environ = (pid) =>
	readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');

const tunables = (pid) =>
	environ(pid).filter((e) => e.startsWith('GLIBC_TUNABLES='));

// Under a sanitizer the allocator is the sanitizer's: nothing to set.
const skip = SANITIZER ? `the allocator is ${SANITIZER}'s, not glibc's`
	: false;

test('the backend runs with glibc\'s per-thread caches off', { skip },
    async (t) => {
	const stack = await startStack({ caddy: false,
	    env: { GLIBC_TUNABLES: '' } }, t);
	const env = environ(stack.backend.pid);
	const at = env.indexOf('GLIBC_TUNABLES=glibc.malloc.tcache_count=0');
	assert.deepEqual(tunables(stack.backend.pid),
	    ['GLIBC_TUNABLES=glibc.malloc.tcache_count=0']);
	assert.deepEqual(env.slice(at + 1, at + 3),
	    ['glibc.rtld.nns=1', 'glibc.rtld.optional_static_tls=0']);
	// That pid, re-executed, is the one that said it was ready, and it
	// still has its name (ps, top, pgrep), not "exe" (/proc/self/exe).
	assert.ok(stack.backendLog.some((l) => /\bready\b/.test(l)));
	assert.equal(readFileSync(`/proc/${stack.backend.pid}/comm`, 'utf8')
	    .trim(), path.basename(BEEP_BIN).slice(0, 15));
});

test('an operator\'s own tcache_count is left as it is', { skip },
    async (t) => {
	const stack = await startStack({ caddy: false,
	    env: { GLIBC_TUNABLES: 'glibc.malloc.tcache_count=7' } }, t);
	assert.deepEqual(tunables(stack.backend.pid),
	    ['GLIBC_TUNABLES=glibc.malloc.tcache_count=7']);
});

// Started through the loader (`ld.so beep-signal ARGS`), /proc/self/exe is
// ld.so: a re-exec of it would make the loader take our first argument for
// the program (`--version` printed ld.so's version). The binary runs as it
// is there, without the re-exec.
const LDSO = '/lib64/ld-linux-x86-64.so.2';
test('a start through the loader runs the backend, not the loader', {
	skip: skip || (!existsSync(LDSO) && `no ${LDSO}`),
}, () => {
	const r = spawnSync(LDSO, [BEEP_BIN, '--version'], { encoding: 'utf8',
	    env: { ...process.env, GLIBC_TUNABLES: '' } });
	assert.equal(r.status, 0, r.stderr);
	assert.match(r.stdout, /^beep-signal /);
});

// Worker stacks are 128 KiB (SERVER_STACK_SIZE; sanitizer builds use
// bigger ones and bigger frames): the number of those mappings holding a
// single resident page.
const onePageStacks = (pid) => {
	let size = 0, n = 0;
	for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8')
	    .split('\n')) {
		const m = /^(Size|Rss):\s+(\d+) kB/.exec(line);
		if (m && m[1] === 'Size')
			size = Number(m[2]);
		else if (m && size === 128 && Number(m[2]) <= 4)
			n++;
	}
	return n;
};

test('a sleeping stream keeps one page of stack, after keepalives and '
    + 'messages too', { skip }, async (t) => {
	// More than the idle workers (at most 2 x BEEP_MIN_IDLE, 16), which
	// may hold one page too when they never served a request.
	const streams = 40;
	const stack = await startStack({ env: { BEEP_KEEPALIVE: '1' } }, t);
	const pid = stack.backend.pid;
	const subs = [], users = [];
	t.after(() => subs.forEach((s) => s.stream.close()));
	for (let i = 0; i < streams; i++) {
		users.push(uid());
		subs.push(await openSub(stack, subPath(users[i], 'phone')));
	}
	// Each trims its stack once its head is written, after the client
	// may have read it: awaited.
	await poll(() => onePageStacks(pid) >= streams,
	    { what: `${streams} streams' stacks down to one page` });
	// Two keepalives later (a keepalive's write touches a second page,
	// given back after it), the same.
	await Promise.all(subs.map((s) => s.stream.waitComments(3)));
	await poll(() => onePageStacks(pid) >= streams,
	    { what: 'one page each after keepalives' });
	// A message's rendering and write reach further; the stream gives
	// those pages back once idle for a keepalive interval.
	const c = stack.client();
	for (const u of users) {
		const r = await c.postJson(postPath(u, 'phone'), { data: 'hi' });
		assert.equal(r.status, 200);
	}
	for (const s of subs)
		assert.equal((await s.stream.nextEvent()).data, 'hi');
	const seen = subs.map((s) => s.stream.comments);
	await Promise.all(subs.map((s, i) => s.stream.waitComments(seen[i] + 2)));
	await poll(() => onePageStacks(pid) >= streams,
	    { what: 'one page each after a message and keepalives' });
});
