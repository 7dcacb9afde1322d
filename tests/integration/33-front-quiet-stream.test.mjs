// A quiet stream behind nginx and lighttpd: what keeps it open is the
// backend's keepalive comments, and every BEEP_KEEPALIVE the backend accepts
// must come often enough for each shipped front.
//
// Both fronts cut a response they have relayed nothing on for a while, and
// an event stream of a device nobody posts to carries nothing but
// keepalives:
// - lighttpd 1.4.69 closes an HTTP/1.1 response that has written nothing to
//   its client for server.max-write-idle (360 s by default; conf/lighttpd.conf
//   leaves it, since it also closes clients that stopped reading): for
//   lighttpd it is the backend's read timeout too (connections.c,
//   connection_check_timeout).
// - nginx closes a response whose backend sent nothing for
//   fastcgi_read_timeout (1 h in the subscribe location of conf/nginx.conf
//   and conf/nginx-cluster.conf), logging an error each time.
// The backend took a keepalive of up to 3600 s, and the README invites
// raising it where CPU matters: behind lighttpd at anything above 360 every
// quiet stream was cut every 6 minutes, behind nginx at 3600 every hour
// (the keepalive racing the timeout), while conf/lighttpd.conf said quiet
// streams are not cut. The first test checks the largest keepalive the
// backend accepts against the shipped configs. The second shows, with each
// front's limit lowered to seconds (edited in the rig's copy), what the
// first guards against and what a client then sees: a stream within the
// limit lives on through its keepalives; one quieter than the limit is cut
// without a clean end (EventSource retries), the backend sees the
// departure, a POST meanwhile is held (202), and the stream that resumes
// with its Last-Event-ID gets it, once.
//
// Environment: BEEP_BIN (backend binary), BEEP_TEST_DEBUG=1 (echo the logs).
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	ROOT, runBinary, poll, uid, subPath, postPath, skipReason,
} from './harness.mjs';
import {
	Rig, rewrite, NGINX_CONF, NGINX_CLUSTER_CONF, LIGHTTPD_CONF,
} from './fronts.mjs';

// Skipped under ThreadSanitizer (the Makefile's TSAN_SKIP): its subject is
// what the shipped fronts do with a quiet stream, not the C the sanitizers
// watch.
const T = { timeout: 90000, skip: skipReason(import.meta.url) };
// How much sooner than a front's limit the largest keepalive must come: a
// keepalive late on a loaded machine, lighttpd's once-a-second check.
const MARGIN = 60;
// The fronts' limit in the second test (s), and a keepalive well past it.
const CUT = 3;
const QUIET = 30;

// The largest BEEP_KEEPALIVE the backend accepts (from its refusal of 0),
// checked at the edge.
async function largestKeepalive() {
	const r = await runBinary(['--keepalive', '0', '--print-config']);
	const m = /--keepalive \(a whole number from 1 to (\d+)\)/.exec(r.stderr);
	assert.ok(m, `the refusal names the range: ${r.stderr}`);
	const max = Number(m[1]);
	const at = await runBinary(['--keepalive', String(max), '--print-config']);
	assert.equal(at.code, 0, at.stderr);
	assert.match(at.stdout, new RegExp(`^keepalive = ${max}$`, 'm'));
	const past = await runBinary(['--keepalive', String(max + 1),
	    '--print-config']);
	assert.notEqual(past.code, 0, `--keepalive ${max + 1} refused`);
	return max;
}

// An nginx time ("90", "90s", "5m", "1h") in seconds.
function nginxSeconds(v) {
	const m = /^(\d+)(s|m|h|d)?$/.exec(v);
	assert.ok(m, `an nginx time in seconds, minutes or hours: ${v}`);
	return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] ?? 's'];
}

// The fastcgi_read_timeout a location (its prefix) gets in an nginx server
// block: its own, else the server's, else nginx's default (60 s).
function nginxReadTimeout(conf, prefix = '/subscribe/') {
	const text = fs.readFileSync(conf, 'utf8')
	    .replace(/#.*$/gm, '');
	const esc = prefix.replace(/[/]/g, '\\/');
	const loc = new RegExp(`location\\s+${esc}\\s*\\{([^}]*)\\}`)
	    .exec(text);
	assert.ok(loc, `${conf}: a location ${prefix}`);
	const inLoc = /\bfastcgi_read_timeout\s+(\S+);/.exec(loc[1]);
	// The server's own: outside every location.
	const server = /\bfastcgi_read_timeout\s+(\S+);/.exec(
	    text.replace(/location\s[^{]*\{[^}]*\}/g, ''));
	return nginxSeconds((inLoc ?? server)?.[1] ?? '60s');
}
const nginxStreamReadTimeout = (conf) => nginxReadTimeout(conf);

// The server.max-write-idle conf/lighttpd.conf leaves a subscribe with
// (lighttpd's default, 360 s, when it sets none).
function lighttpdMaxWriteIdle() {
	const text = fs.readFileSync(LIGHTTPD_CONF, 'utf8')
	    .replace(/#.*$/gm, '');
	const m = [...text.matchAll(/server\.max-write-idle\s*=\s*(\d+)/g)];
	assert.ok(m.length <= 1, 'one server.max-write-idle');
	return m.length ? Number(m[0][1]) : 360;
}

test('no shipped front cuts a quiet stream at any BEEP_KEEPALIVE the ' +
    'backend accepts', T, async () => {
	const max = await largestKeepalive();
	const limits = [
		[path.relative(ROOT, NGINX_CONF), 'fastcgi_read_timeout',
		    nginxStreamReadTimeout(NGINX_CONF)],
		[path.relative(ROOT, NGINX_CLUSTER_CONF), 'fastcgi_read_timeout',
		    nginxStreamReadTimeout(NGINX_CLUSTER_CONF)],
		[path.relative(ROOT, LIGHTTPD_CONF), 'server.max-write-idle',
		    lighttpdMaxWriteIdle()],
	];
	// Each front whose limit a keepalive of `max` s would not beat by
	// MARGIN.
	const cut = limits.filter(([, , secs]) => max + MARGIN > secs)
	    .map(([file, what, secs]) => `${file}: ${what} ${secs} s`);
	assert.deepEqual(cut, [], `the backend accepts --keepalive ${max}; ` +
	    `these cut a stream quiet that long (keepalives must come at ` +
	    `least ${MARGIN} s sooner)`);
});

// The shipped config with the front's limit lowered to CUT seconds.
const FRONTS = {
	nginx: (rig) => rig.startNginx({ edit: (site) => rewrite(site,
	    /(location \/subscribe\/ \{[^}]*fastcgi_read_timeout )1h;/,
	    `$1${CUT}s;`, 'the subscribe fastcgi_read_timeout') }),
	lighttpd: (rig) => rig.startLighttpd({ edit: (site) =>
	    `${site}\nserver.max-write-idle = ${CUT}\n` }),
};

for (const [front, start] of Object.entries(FRONTS)) {
	test(`${front}: a stream it relays nothing on is cut; keepalives keep ` +
	    'it; the client resumes and loses nothing', T, async (t) => {
		// Keepalives within the limit: the stream lives on, well past it.
		const kept = new Rig(t, `${front}-kept`,
		    { env: { BEEP_KEEPALIVE: '1' } });
		await kept.startListen();
		await start(kept);
		const u = uid('quiet');
		const s = await kept.open(subPath(u, 'phone'));
		assert.equal(s.status, 200);
		await s.waitComments(3 * CUT + 2, 20000);
		assert.equal(s.ended, false);
		const r = await kept.client().postJson(postPath(u, 'phone'),
		    { data: 'still here' });
		assert.equal(r.status, 200, r.text);
		assert.equal((await s.nextEvent()).data, 'still here');
		kept.checkBackendLog();

		// Keepalives past it: cut (the hang guard is QUIET's first
		// keepalive), without a clean end.
		const rig = new Rig(t, `${front}-quiet`,
		    { env: { BEEP_KEEPALIVE: String(QUIET) } });
		await rig.startListen();
		await start(rig);
		const c = rig.client();
		const v = uid('quiet');
		const q = await rig.open(subPath(v, 'phone'));
		assert.equal(q.status, 200);
		await q.waitFor(() => q.positions.length === 1,
		    { what: 'the opening position' });
		const pos = q.positions[0].lastEventId;
		const reason = await q.waitEnd(QUIET * 1000 - 5000);
		assert.equal(q.comments, 1, 'cut before any keepalive');
		assert.match(String(reason), /error|close/,
		    'not a clean end: EventSource retries it as a network error');
		// The backend saw it go: a POST now is held for the device.
		await poll(async () => (await c.devices(v)).length === 0,
		    { what: 'the cut stream unlisted' });
		const held = await c.postJson(postPath(v, 'phone'),
		    { data: 'while away' });
		assert.equal(held.status, 202, held.text);
		// EventSource comes back with the id it had.
		const back = await rig.open(subPath(v, 'phone'),
		    { headers: { 'Last-Event-ID': pos } });
		assert.equal(back.status, 200);
		assert.equal((await back.nextEvent()).data, 'while away');
		const live = await c.postJson(postPath(v, 'phone'),
		    { data: 'live' });
		assert.equal(live.status, 200, live.text);
		assert.equal((await back.nextEvent()).data, 'live');
		assert.equal(back.received, 2, 'each once');
		rig.checkBackendLog();
	});
}

// A cluster node answers a request Redis does not answer within
// BEEP_REDIS_TIMEOUT with its own 503 and Retry-After; nginx-cluster.conf
// must wait longer than that for any request, or at the largest timeout
// the client gets nginx's 504 instead (and a listing is tried again on the
// other node, waiting as long again).
test('nginx-cluster.conf waits for a request longer than the backend may ' +
    'wait for Redis', T, async () => {
	const r = await runBinary(['--redis-timeout', '0', '--print-config']);
	const m = /--redis-timeout \(a whole number from \d+ to (\d+)\)/
	    .exec(r.stderr);
	assert.ok(m, `the refusal names the range: ${r.stderr}`);
	const maxMs = Number(m[1]);
	const waits = nginxReadTimeout(NGINX_CLUSTER_CONF, '/');
	assert.ok(waits * 1000 >= maxMs + 10000,
	    `location / waits ${waits} s; BEEP_REDIS_TIMEOUT goes to ${maxMs} ms`);
});
