// JSON Web Tokens for the auth tests (issue 5), minted with node:crypto only:
// HS256/384/512 with a secret, RS256/RS384 and ES256 with generated key pairs
// whose public halves are written as PEM files into a temp dir. Also the
// broken kinds the service must refuse: unsigned (`alg: none`), wrong
// signature, algorithm confusion (HMAC keyed with a public key's PEM text).
//
// Not a test file (the runner only picks up *.test.mjs).

import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withinWindow } from './windows.mjs';

export const b64u = (x) => Buffer.from(x).toString('base64url');

export const nowSec = () => Math.floor(Date.now() / 1000);

// Claims for user `sub` valid for ten minutes; `extra` adds or overrides
// (a value of undefined removes the claim, e.g. { exp: undefined }).
export function claims(sub, extra = {}) {
	const c = { sub, iat: nowSec(), exp: nowSec() + 600, ...extra };
	for (const k of Object.keys(c))
		if (c[k] === undefined)
			delete c[k];
	return c;
}

// Runs a case's set-up with a token that expires within the test:
// withinWindow() (windows.mjs), where attempt(exp, life) gets the exp to
// mint (life seconds from now) and resolves null when its set-up did not
// finish before exp (it must see that itself: a stream refused
// "credentials expired" before the case's own step, or nowSec() >= exp
// after its set-up), having undone what it started.
export function withinLife(t, firstLife, attempt) {
	return withinWindow(t, firstLife,
	    (life) => attempt(nowSec() + life, life), 'token');
}

const HASH = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512',
    RS256: 'sha256', RS384: 'sha384', RS512: 'sha512', ES256: 'sha256' };

// Signs `input` (the "header.payload" text) the way `alg` says, with `key`:
// a secret (string/Buffer) for HS*, a private KeyObject for RS*/ES256.
export function signWith(alg, key, input) {
	if (alg.startsWith('HS'))
		return crypto.createHmac(HASH[alg], key).update(input)
		    .digest('base64url');
	if (alg.startsWith('RS'))
		return crypto.sign(HASH[alg], Buffer.from(input), key)
		    .toString('base64url');
	if (alg === 'ES256')                   // JWS wants raw r||s, not DER
		return crypto.sign('sha256', Buffer.from(input),
		    { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
	throw new Error(`signWith: unknown alg ${alg}`);
}

// A compact JWS. opts: { alg (default HS256), key (secret or private key),
// header: extra/overriding header fields (header.alg defaults to alg),
// signature: a fixed signature text (base64url) instead of signing }.
export function mint(payload, { alg = 'HS256', key, header = {},
    signature } = {}) {
	const head = { alg, typ: 'JWT', ...header };
	const input = `${b64u(JSON.stringify(head))}.` +
	    `${b64u(JSON.stringify(payload))}`;
	const sig = signature !== undefined ? signature :
	    alg === 'none' ? '' : signWith(alg, key, input);
	return `${input}.${sig}`;
}

// An unsigned token (`alg` as given: none, None, NONE...), with an empty
// signature part.
export function unsigned(payload, alg = 'none') {
	return mint(payload, { alg, header: { alg }, signature: '' });
}

// Replaces the payload of a signed token, keeping header and signature.
export function tamper(token, payload) {
	const [h, , s] = token.split('.');
	return `${h}.${b64u(JSON.stringify(payload))}.${s}`;
}

export function rsaPair() {
	const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa',
	    { modulusLength: 2048 });
	return { privateKey, publicPem: publicKey.export({ type: 'spki',
	    format: 'pem' }) };
}

export function ecPair() {
	const { privateKey, publicKey } = crypto.generateKeyPairSync('ec',
	    { namedCurve: 'P-256' });
	return { privateKey, publicPem: publicKey.export({ type: 'spki',
	    format: 'pem' }) };
}

// A temp dir for key files; removed by remove() and at process exit.
export function keyDir() {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-keys-'));
	const remove = () => {
		try { rmSync(dir, { recursive: true, force: true }); } catch { }
	};
	process.once('exit', remove);
	return {
		dir,
		write(name, text) {
			const p = path.join(dir, name);
			writeFileSync(p, text, { mode: 0o600 });
			return p;
		},
		remove,
	};
}

export const bearer = (t) => ({ Authorization: `Bearer ${t}` });
