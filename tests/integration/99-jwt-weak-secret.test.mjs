// Review 22: BEEP_AUTH=jwt starts with an HMAC secret of any length.
//
// `BEEP_JWT_SECRET=changeme` (or `s3cret`, as the config tests use) is
// taken as the HS256 key.  Every token is then an offline oracle for the
// secret: one token seen anywhere (README: `?access_token=` ends up in
// access logs; a browser's history; a shared screenshot of a call link with
// `#token=`) lets whoever has it try passwords at GPU speed (hashcat mode
// 16500) without ever talking to the service, and with the secret mint a
// token for any user: subscribe as them, read their signaling, post as them.
// RFC 7518 3.2: "A key of the same size as the hash output (for instance,
// 256 bits for "HS256") or larger MUST be used with this algorithm."  The
// service knows the algorithm and the key's length at start, as it knows
// that an RS256 key file is no RSA key (refused at start): a secret shorter
// than the hash (32 bytes for HS256, 48 for HS384, 64 for HS512) must stop
// the start, saying why (e.g. `openssl rand -hex 32`).
//
// Fails on HEAD: each of these configurations starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBinary, assertRefusedStart } from './harness.mjs';

const T = { timeout: 60000 };
const L = ['--listen', 'unix:@DIR@/beep.sock'];

test('an HMAC secret shorter than its hash is refused at start', T,
    async () => {
	for (const [alg, secret] of [
		['HS256', 'changeme'],
		['HS256', 's3cret'],
		['HS256', 'x'.repeat(31)],
		['HS384', 'x'.repeat(47)],
		['HS512', 'x'.repeat(63)],
	]) {
		const what = `${alg} with a secret of ${secret.length} bytes`;
		const r = await runBinary(L, { env: {
			BEEP_AUTH: 'jwt', BEEP_JWT_ALG: alg, BEEP_JWT_SECRET: secret,
		} });
		assertRefusedStart(r, `${what} (RFC 7518 3.2: a key at least as ` +
		    'long as the hash output MUST be used; a short one lets one ' +
		    'token seen anywhere be brute-forced offline into a key that ' +
		    'mints tokens for every user)');
		assert.match(r.stderr, /jwt-secret/, `${what}: says which option`);
		assert.ok(!r.stderr.includes(secret.length > 4 ? secret : '\0'),
		    `${what}: the secret itself is not printed`);
	}
	// At the hash's length it starts (and is stopped by runBinary).
	for (const [alg, n] of [['HS256', 32], ['HS384', 48], ['HS512', 64]]) {
		const r = await runBinary(L, { env: {
			BEEP_AUTH: 'jwt', BEEP_JWT_ALG: alg,
			BEEP_JWT_SECRET: 'k'.repeat(n),
		} });
		assert.equal(r.sawReady, true, `${alg} with ${n} bytes: ${r.stderr}`);
	}
});
