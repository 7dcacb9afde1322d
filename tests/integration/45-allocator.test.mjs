// Issue 13, the soak's memory: the backend runs with glibc's per-thread
// block caches (tcache) for blocks of up to 64 bytes only. With them
// whole, each of thousands of sleeping stream threads kept ~7 KiB of
// blocks no other thread could reuse, and the soak's RSS rose for as long
// as it ran (README "Reliability"). glibc reads the setting only from the
// environment at start, so the binary re-executes itself once with
// GLIBC_TUNABLES=glibc.malloc.tcache_max=64 (src/alloc_tune.c), keeping its
// pid; an operator's own tcache_count or tcache_max wins.
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
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import {
	startStack, SANITIZER, BEEP_BIN, openSub, subPath, postPath, uid, poll,
} from './harness.mjs';

const environ = (pid) =>
	readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');

// The tunables GLIBC_TUNABLES holds, as glibc left it in the environment
// (glibc 2.36 cuts the string at each ':' it reads, in place; later ones
// leave it whole): the entries that follow it and name a tunable are its.
const tunables = (pid) => {
	const env = environ(pid);
	const at = env.findIndex((e) => e.startsWith('GLIBC_TUNABLES='));
	if (at < 0)
		return [];
	const parts = [env[at].slice('GLIBC_TUNABLES='.length)];
	for (let i = at + 1; i < env.length && /^glibc\./.test(env[i]); i++)
		parts.push(env[i]);
	return parts.join(':').split(':').filter((x) => x !== '');
};

// Under a sanitizer the allocator is the sanitizer's: nothing to set.
const skip = SANITIZER ? `the allocator is ${SANITIZER}'s, not glibc's`
	: false;

test('the backend runs with glibc\'s per-thread caches of small blocks',
    { skip }, async (t) => {
	const stack = await startStack({ caddy: false,
	    env: { GLIBC_TUNABLES: '' } }, t);
	assert.deepEqual(tunables(stack.backend.pid).sort(),
	    ['glibc.malloc.tcache_max=64', 'glibc.rtld.nns=1',
		'glibc.rtld.optional_static_tls=0']);
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
	assert.deepEqual(tunables(stack.backend.pid).sort(),
	    ['glibc.malloc.tcache_count=7', 'glibc.rtld.nns=1',
		'glibc.rtld.optional_static_tls=0']);
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
// bigger ones and bigger frames). Of the threads asleep in futex() (a
// stream waits on its condition variable; idle workers wait in accept(),
// kept connections in poll()), the number whose stack mapping, found by
// the stack pointer /proc/PID/task/TID/syscall shows, holds a single
// resident page.
const FUTEX = 202; // x86_64
const onePageStacks = (pid) => {
	const maps = [];
	let cur = null;
	for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8')
	    .split('\n')) {
		const r = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
		const m = /^(Size|Rss):\s+(\d+) kB/.exec(line);
		if (r)
			maps.push(cur = { lo: BigInt(`0x${r[1]}`),
			    hi: BigInt(`0x${r[2]}`) });
		else if (m && cur)
			cur[m[1]] = Number(m[2]);
	}
	let n = 0;
	for (const tid of readdirSync(`/proc/${pid}/task`)) {
		let f;
		try {
			f = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8')
			    .trim().split(' ');
		} catch {
			continue; // the thread ended
		}
		if (Number(f[0]) !== FUTEX || f.length < 9)
			continue;
		const sp = BigInt(f[7]);
		const map = maps.find((x) => x.lo <= sp && sp < x.hi);
		if (map && map.Size === 128 && map.Rss <= 4)
			n++;
	}
	return n;
};

test('a sleeping stream keeps one page of stack, after keepalives and '
    + 'messages too', { skip }, async (t) => {
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

// README (Memory): "at the first keepalive after it wrote messages
// (rendering and writes reach further), the stream gives back the stack
// pages below its frame": one keepalive interval after the last message,
// as the keepalive was put off by each message. Since messages no longer
// put it off (04d9e89), the first keepalive after a message is skipped for
// the trim (the message was "recent") and the pages come back only at the
// second: a message posted just after a keepalive is trimmed nearly two
// intervals later, and a device posted to every 1-2 intervals (ICE
// candidates, presence) is rarely trimmed at all.
test('a stream gives its stack pages back one keepalive interval after a ' +
    'message', { skip }, async (t) => {
	const streams = 8;
	const stack = await startStack({ env: { BEEP_KEEPALIVE: '2' } }, t);
	const pid = stack.backend.pid;
	const users = [];
	for (let i = 0; i < streams; i++)
		users.push(uid());
	// Opened together: their keepalives come at nearly the same times.
	const subs = await Promise.all(users.map((u) =>
	    openSub(stack, subPath(u, 'phone'))));
	t.after(() => subs.forEach((s) => s.stream.close()));
	await Promise.all(subs.map((s) => s.stream.waitComments(2)));
	await poll(() => onePageStacks(pid) >= streams,
	    { what: `${streams} streams' stacks down to one page` });
	// Just after a keepalive of the first stream (the others' are close).
	await subs[0].stream.waitComments(subs[0].stream.comments + 1);
	const posted = Date.now();
	const c = stack.client();
	await Promise.all(users.map(async (u) => {
		const r = await c.postJson(postPath(u, 'phone'), { data: 'hi' });
		assert.equal(r.status, 200);
	}));
	for (const s of subs)
		assert.equal((await s.stream.nextEvent()).data, 'hi');
	// One interval (2 s) after the messages, and a second's margin;
	// the second keepalive after them comes near 4 s.
	await poll(() => onePageStacks(pid) >= streams,
	    { timeout: Math.max(0, posted + 3000 - Date.now()),
	      what: 'one page each a keepalive interval after a message' });
});
