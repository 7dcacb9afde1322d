// The README's API table is what a client writer reads to know which
// statuses each route may answer: every status the service gives on a
// route, through the shipped Caddyfile, must be in that route's row.
// Here the statuses of authentication (BEEP_AUTH=jwt, the token in a
// cookie), which every route but the operators' checks alike: 401 without
// credentials, 403 for a cookie sent from another site (cross-site
// request forgery: api_identify()).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
	ROOT, useStack, uid, postPath, listPath, subPath, openSub,
} from './harness.mjs';
import { mint, claims } from './jwt.mjs';

const T = { timeout: 30000 };
const SECRET = crypto.randomBytes(32).toString('hex');
const EVIL = 'https://evil.example';

// The statuses a row of the README's API table names (`401/403` is two).
function readmeStatuses(route) {
	const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const start = text.indexOf('\n## The API\n');
	assert.ok(start >= 0, 'README has "## The API"');
	const row = text.slice(start).split('\n')
	    .find((l) => l.startsWith(`| \`${route}\` |`));
	assert.ok(row, `README's API table has a row for ${route}`);
	return new Set(row.match(/\b[1-5]\d\d\b/g).map(Number));
}

const h = useStack({ before, after }, { env: {
	BEEP_AUTH: 'jwt', BEEP_JWT_SECRET: SECRET,
} });

// Each route, and a request to it as a client sends it.
const routes = [
	['GET /subscribe/:user/device/:device', (c, u, headers) =>
	    openSub(h.stack, subPath(u, 'd'), headers)],
	['GET /user/:user/devices', (c, u, headers) =>
	    c.get(listPath(u), { headers })],
	['POST /user/:user/device/:device', (c, u, headers) =>
	    c.postJson(postPath(u, 'd'), { data: 'x' }, { headers })],
	['GET /ice-servers', (c, u, headers) =>
	    c.get('/ice-servers', { headers })],
];

for (const [route, send] of routes) {
	test(`${route}: its authentication statuses are in its README row`, T,
	    async () => {
		const listed = readmeStatuses(route);
		const c = h.stack.client();
		const u = uid('row');
		const none = await send(c, u, {});
		assert.equal(none.status, 401, `no credentials: ${none.text}`);
		// The user's own cookie, sent by the browser from a page of
		// another site.
		const forged = await send(c, u, {
			Cookie: `beep_token=${mint(claims(u), { key: SECRET })}`,
			Origin: EVIL, 'Sec-Fetch-Site': 'cross-site',
		});
		assert.equal(forged.status, 403,
		    `cookie from another site: ${forged.text}`);
		for (const status of [401, 403])
			assert.ok(listed.has(status), `${route} answers ${status}, ` +
			    `which its README row (${[...listed].join(', ')}) does ` +
			    'not list');
	});
}

// A newcomer's `curl http://localhost:1837/metrics` goes to the public
// site, where the shipped Caddyfile answers 404 (metrics are the
// operations site's): that status is in the row too.
test('GET /metrics: the public site\'s 404 is in its README row', T,
    async () => {
	const listed = readmeStatuses('GET /metrics');
	const c = h.stack.client();
	const r = await c.get('/metrics');
	assert.equal(r.status, 404, r.text);
	assert.ok(listed.has(404), 'GET /metrics answers 404 on the public ' +
	    `site, which its README row (${[...listed].join(', ')}) does not list`);
});
