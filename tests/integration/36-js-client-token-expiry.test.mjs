// web/beep-signal.js in real Chromium (Debian's, driven by playwright-core
// from tests/browser/) behind the real service and Caddy, JWT
// authentication on: a stream ends at its token's `exp` with a last
// `refused` event, {"error":"credentials expired","status":401} (test 69).
//
// A page whose `token` is a function (here an async one, as a refresh
// would be) comes back with a fresh token, resumes from the last message it
// got (Last-Event-ID) and gets what was posted while it was away once, in
// order: nothing lost, nothing twice. A page with a fixed token cannot get
// better by retrying: it ends `closed` with the 401.
//
// A page that authenticates with the `beep_token` cookie (no `token`)
// has its session refreshed by its own code, which the client cannot
// call: here late, after the client has asked again with the stale
// cookie. That 401 closed the client for good, and the page stayed
// offline with a fresh cookie; the client now tries again (its backoff)
// once a stream of it has opened, as it does with a token function. A
// page with no session yet passes `token: () => undefined` (the README's
// idiom) to have every 401 retried, the cookie sent as it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, sid, postPath } from './harness.mjs';
import { mint, claims, nowSec, bearer, withinLife } from './jwt.mjs';
import { browserSkip, launchChromium } from './callpage.mjs';

const T = { timeout: 300000 };
const skip = browserSkip([], import.meta.url);
const SECRET = crypto.randomBytes(32).toString('hex');
// The first token's life: its stream ends within the test (withinLife()
// lengthens it when a loaded machine's set-up outlives it).
const LIFE_S = 3;

async function setUp(t) {
	const stack = await startStack({ env: { BEEP_AUTH: 'jwt',
	    BEEP_JWT_SECRET: SECRET, BEEP_JWT_LEEWAY: '0',
	    BEEP_JWT_QUERY: '0' } }, t);
	const c = stack.client();
	t.after(() => c.close());
	const browser = await launchChromium(t);
	const page = await browser.newPage();
	page.on('pageerror', (e) => console.error('[page]', e.message));
	// The subscribes' Last-Event-ID headers, as the page sends them.
	const resumes = [];
	page.on('request', (r) => {
		if (r.url().includes('/subscribe/'))
			resumes.push(r.headers()['last-event-id'] ?? '');
	});
	// The page afresh (its client, if any, closed first), no subscribe
	// seen: for a case, and for its next attempt.
	const fresh = async () => {
		await page.evaluate(() => window.sig?.close()).catch(() => {});
		await page.goto(`${stack.base}/healthz`);
		resumes.length = 0;
	};
	await fresh();
	const sender = sid();
	const post = async (u, data) => {
		const r = await c.postJson(postPath(u, 'd'), { data },
		    { headers: bearer(mint(claims(sender), { key: SECRET })) });
		return r;
	};
	return { stack, page, resumes, post, fresh };
}

// In page: connect as (user, d) with token (a function or a string); the
// messages, refusals and states it sees go to window.log in order, and
// why it closed to window.closedWhy.
const connectIn = (page, user, token) => page.evaluate(
    async ({ user, token }) => {
	const { connect } = await import('/beep-signal.js');
	window.log = [];
	window.sig = connect({ base: '', user, device: 'd', resume: false,
	    token: token ?? (() => window.freshToken()) });
	window.sig.on('message', (d, m) => window.log.push(`msg ${d} ${m.id}`));
	window.sig.on('refused', (d) => window.log.push(
	    `refused ${d.status} ${d.error}`));
	window.sig.on('state', (s, i) => {
		window.log.push(`state ${s}${i.status ? ` ${i.status}` : ''}`);
		if (s === 'closed')
			window.closedWhy = i.reason;
	});
}, { user, token });

const logOf = (page) => page.evaluate(() => window.log);
// Resolves once the page's log has an entry matching re after `from` entries.
const logged = (page, re, from = 0) => page.waitForFunction(
    ([src, k]) => window.log.slice(k).some((l) => new RegExp(src).test(l)),
    [re.source, from]);

// The first part of a case, run within its first token's life: the
// client's first stream opened, 'one' posted (200) and delivered on it.
// Resolves that POST's answer, or null when the set-up did not finish
// before exp (a loaded machine): the first stream refused, the POST
// not taken by it, or 'one' not delivered on it (resumes: the page's
// subscribes in this attempt).
async function oneOnFirstStream(page, u, post, exp, resumes) {
	await logged(page, /^state (open|closed)/);
	let log = await logOf(page);
	if (!log.includes('state open') && nowSec() >= exp) {
		assert.match(await page.evaluate(() => window.closedWhy),
		    /credentials expired/);
		return null;
	}
	const r1 = await post(u, 'one');
	if (r1.status !== 200 && nowSec() >= exp)
		return null;
	assert.equal(r1.status, 200, r1.text);
	await logged(page, /^msg one /);
	log = await logOf(page);
	const first = ['state connecting', 'state open',
	    `msg one ${r1.json().id}`];
	if (nowSec() >= exp && (resumes.length !== 1 ||
	    JSON.stringify(log.slice(0, 3)) !== JSON.stringify(first)))
		return null;
	assert.deepEqual(log.slice(0, 3), first);
	assert.equal(resumes.length, 1, 'one stream, the first');
	return r1;
}

// Where in the page's log the first stream's refusal is: what comes
// after it is the next stream's (the client may be back before the test
// reads the log).
const afterRefused = async (page) => (await logOf(page))
    .indexOf('refused 401 credentials expired') + 1;

test('an expired token: back with a fresh one, resumed, nothing lost or ' +
    'twice', { ...T, skip }, async (t) => {
	const { page, resumes, post, fresh } = await setUp(t);
	// The first token expires within the test; the fresh ones do not.
	let minted = 0, u, exp;
	await page.exposeFunction('freshToken', () => mint(claims(u,
	    minted++ === 0 ? { exp } : {}), { key: SECRET }));
	const r1 = await withinLife(t, LIFE_S, async (e) => {
		await fresh();
		u = sid();
		minted = 0;
		exp = e;
		await connectIn(page, u);
		return oneOnFirstStream(page, u, post, exp, resumes);
	});

	// The token expires: the stream ends, saying why.
	await logged(page, /^refused 401 credentials expired$/);
	const at = await afterRefused(page);
	// Posted while the page is away (held for it), or before the
	// service has seen the stream go (left for its next stream).
	const r2 = await post(u, 'two');
	assert.ok([200, 202].includes(r2.status), r2.text);
	// Back, with a fresh token.
	await logged(page, /^state open$/, at);
	const r3 = await post(u, 'three');
	assert.equal(r3.status, 200, r3.text);
	await logged(page, /^msg three /);

	const msgs = (await logOf(page)).filter((l) => l.startsWith('msg '));
	assert.deepEqual(msgs, [`msg one ${r1.json().id}`,
	    `msg two ${r2.json().id}`, `msg three ${r3.json().id}`]);
	assert.ok(minted >= 2, `a fresh token for the new stream (${minted})`);
	assert.equal(resumes[1], r1.json().id,
	    'the new stream resumes from the last message the page got');
	await page.evaluate(() => window.sig.close());
});

test('an expired fixed token: closed with the 401, not retried', { ...T, skip },
    async (t) => {
	const { page, fresh } = await setUp(t);
	const log = await withinLife(t, LIFE_S, async (exp) => {
		await fresh();
		const u = sid();
		await connectIn(page, u, mint(claims(u, { exp }),
		    { key: SECRET }));
		await logged(page, /^state closed/);
		const log = await logOf(page);
		// Refused at once: the token had expired before its first
		// stream.
		if (!log.includes('state open') && nowSec() >= exp) {
			assert.match(await page.evaluate(() => window.closedWhy),
			    /credentials expired/);
			return null;
		}
		return log;
	});
	assert.deepEqual(log, ['state connecting', 'state open',
	    'refused 401 credentials expired', 'state connecting',
	    'state closed 401']);
});

test('an expired session cookie refreshed late: back, resumed, nothing ' +
    'lost or twice', { ...T, skip }, async (t) => {
	const { page, resumes, post, fresh } = await setUp(t);
	// The refreshed session outlives the test.
	let u;
	await page.exposeFunction('freshToken', () => mint(claims(u),
	    { key: SECRET }));
	const r1 = await withinLife(t, LIFE_S, async (exp) => {
		await fresh();
		u = sid();
		await page.evaluate(async ({ user, first }) => {
			document.cookie = `beep_token=${first}; path=/`;
			const { connect } = await import('/beep-signal.js');
			window.log = [];
			const sig = connect({ base: '', user, device: 'd',
			    resume: false });
			window.sig = sig;
			sig.on('message', (d, m) => window.log.push(
			    `msg ${d} ${m.id}`));
			sig.on('refused', (d) => window.log.push(
			    `refused ${d.status} ${d.error}`));
			sig.on('state', (s, i) => {
				window.log.push(
				    `state ${s}${i.status ? ` ${i.status}` : ''}`);
				if (s === 'closed')
					window.closedWhy = i.reason;
			});
			// The page learns its session ended from the client's
			// 401, and refreshes the cookie in the background.
			sig.on('error', (e) => {
				if (e.status !== 401 || window.refreshing)
					return;
				window.log.push('refresh');
				window.refreshing = window.freshToken().then(
				    (tok) => {
					document.cookie = `beep_token=${tok}; path=/`;
				});
			});
		}, { user: u, first: mint(claims(u, { exp }), { key: SECRET }) });
		return oneOnFirstStream(page, u, post, exp, resumes);
	});

	await logged(page, /^refused 401 credentials expired$/);
	const r2 = await post(u, 'two');
	assert.ok([200, 202].includes(r2.status), r2.text);
	// The stale cookie's 401 starts the refresh; then the client is
	// open again, or closed for good.
	await logged(page, /^refresh$/);
	const at = (await logOf(page)).indexOf('refresh');
	await logged(page, /^state (open|closed)/, at);
	const after = (await logOf(page)).slice(at);
	assert.ok(after.includes('state open'), 'not back with the ' +
	    `refreshed cookie: ${JSON.stringify(after)}`);
	const r3 = await post(u, 'three');
	assert.equal(r3.status, 200, r3.text);
	await logged(page, /^msg three /);

	const msgs = (await logOf(page)).filter((l) => l.startsWith('msg '));
	assert.deepEqual(msgs, [`msg one ${r1.json().id}`,
	    `msg two ${r2.json().id}`, `msg three ${r3.json().id}`]);
	assert.ok(resumes.length >= 3, 'tried again after the 401');
	for (const id of resumes.slice(1))
		assert.equal(id, r1.json().id, 'every stream after the first ' +
		    'resumes from the last message the page got');
	await page.evaluate(() => window.sig.close());
});

test('token: () => undefined: the cookie, and every 401 retried, also ' +
    'before a stream opened', { ...T, skip }, async (t) => {
	const { page } = await setUp(t);
	const u = sid();
	await page.exposeFunction('freshToken', () => mint(claims(u),
	    { key: SECRET }));
	// No session yet: it is set after the client's first 401.
	await page.evaluate(async ({ user }) => {
		const { connect } = await import('/beep-signal.js');
		window.log = [];
		const sig = connect({ base: '', user, device: 'd',
		    resume: false, token: () => undefined });
		window.sig = sig;
		sig.on('state', (s, i) => window.log.push(
		    `state ${s}${i.status ? ` ${i.status}` : ''}`));
		sig.on('error', (e) => {
			if (e.status !== 401 || window.refreshing)
				return;
			window.log.push('refresh');
			window.refreshing = window.freshToken().then((tok) => {
				document.cookie = `beep_token=${tok}; path=/`;
			});
		});
	}, { user: u });
	await logged(page, /^state (open|closed)/);
	const log = await logOf(page);
	assert.equal(log[0], 'state connecting');
	assert.equal(log[1], 'refresh');
	assert.equal(log.at(-1), 'state open', JSON.stringify(log));
	await page.evaluate(() => window.sig.close());
});
