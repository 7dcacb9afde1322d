// Issue 13, the soak's memory: the backend runs with glibc's per-thread
// block caches (tcache) off. With them on, each of thousands of sleeping
// stream threads kept ~7 KiB of blocks no other thread could reuse, and
// the soak's RSS rose for as long as it ran (README "Reliability"). glibc
// reads the setting only from the environment at start, so the binary
// re-executes itself once with GLIBC_TUNABLES=glibc.malloc.tcache_count=0
// (src/alloc_tune.c), keeping its pid; an operator's own tcache_count wins.
//
// Read from /proc/PID/environ, the environment the running image was
// started with. glibc writes a NUL after each tunable's value there when
// it parses them, so only single-tunable values are compared whole (the
// unit test covers adding to other tunables).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startStack, SANITIZER, BEEP_BIN } from './harness.mjs';

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
	assert.deepEqual(tunables(stack.backend.pid),
	    ['GLIBC_TUNABLES=glibc.malloc.tcache_count=0']);
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
