// conf/lighttpd.conf as Debian 12 runs it: included from the stock
// /etc/lighttpd/lighttpd.conf (fronts.mjs writes its settings around it),
// whose url.access-deny = ( "~", ".inc" ) (mod_access, loaded before
// mod_fastcgi) answers 403 itself for every path that ends so. An id is
// any 1 to 256 bytes of UTF-8 without controls: a device named "phone~" or
// "notes.inc" must reach the backend like any other, and a 403 would end
// its EventSource for good. Nor may an id whose "../" lighttpd resolves
// (after decoding %2F) lead a request away from the backend.
//
// Environment: BEEP_BIN (backend binary), BEEP_TEST_DEBUG=1 (echo the logs).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	ROOT, uid, subPath, postPath, listPath, enc, skipReason,
} from './harness.mjs';
import {
	Rig, need, rewrite, LIGHTTPD_CONF, LIGHTTPD_WEB_CONF, LIGHTTPD_SCRIPTS_PROD,
} from './fronts.mjs';

// Skipped under ThreadSanitizer (the Makefile's TSAN_SKIP): its subject is
// lighttpd's configuration, not the C the sanitizers watch.
const T = { timeout: 60000, skip: skipReason(import.meta.url) };

test('lighttpd under Debian\'s lighttpd.conf: ids ending in "~" or ".inc" reach the backend',
    T, async (t) => {
	const rig = new Rig(t, 'lighttpd-debian');
	await rig.startListen();
	await rig.startLighttpd();
	const c = rig.client();
	const u = uid('deny');
	for (const dev of ['phone~', 'notes.inc', 'x.INC']) {
		// As EventSource asks: a 403 here would be final.
		const s = await rig.open(subPath(u, dev),
		    { headers: { Accept: 'text/event-stream' } });
		assert.equal(s.status, 200,
		    `subscribe ${dev}: ${s.status} ${s.status === 200 ? '' :
		    await s.text()}`);
		await s.waitComments(1, 5000);
		const r = await c.postJson(postPath(u, dev), { data: `to ${dev}` });
		assert.equal(r.status, 200, `POST ${dev}: ${r.status} ${r.text}`);
		assert.equal((await s.nextEvent(5000)).data, `to ${dev}`);
		s.close();
	}
	// The same ids spelled with %7E, and a user whose id ends so.
	const s = await rig.open(`/subscribe/${enc(u)}/device/tilde%7E`,
	    { headers: { Accept: 'text/event-stream' } });
	assert.equal(s.status, 200, 'subscribe tilde%7E');
	s.close();
	const l = await c.get(listPath(`${u}~`));
	assert.equal(l.status, 200, `list ${u}~: ${l.text}`);
	// Outside the API, Debian's rule still stands.
	assert.equal((await c.get('/backup~')).status, 403);
	rig.checkBackendLog();
});

// lighttpd decodes the path (%2F too: Debian's url-path-2f-decode) and
// removes its "." and ".." steps before its conditions, mod_fastcgi and
// mod_staticfile see it, so an id holding "../" went where its steps led:
// lighttpd's own HTML 404 (or a file of the document root, 200) for a
// request the backend refuses in JSON, as it does behind Caddy and nginx.
// And a path sent with raw "/../" steps (no browser sends one: curl
// --path-as-is does) reaches no file through the API's prefixes, nor
// above the document root.
// The same with mod_fastcgi loaded before the shipped file's modules (as
// Debian's 10-fastcgi.conf loads it): it then picks its requests before
// mod_magnet's script runs.
for (const fastcgiFirst of [false, true]) {
	test('lighttpd under Debian\'s lighttpd.conf: ids with ".." steps after %2F reach the backend' +
	    (fastcgiFirst ? ', mod_fastcgi loaded first' : ''), T, async (t) => {
		const rig = new Rig(t, 'lighttpd-dotseg');
		await rig.startListen();
		await rig.startLighttpd({ fastcgiFirst });
		const www = path.join(rig.dir, 'lighttpd', 'www');
		fs.writeFileSync(path.join(www, 'secret.txt'), 'not for the API\n');
		const c = rig.client();
		const u = uid('dots');
		// Each with the backend's answer (as behind Caddy and nginx, which
		// pass it the same REQUEST_URI): an id holding a ".." piece is 400,
		// a path of no route's shape (its raw steps kept) 404.
		const paths = [[subPath(u, '../../../beep-signal.js'), 400],
		    [subPath(u, '../../../secret.txt'), 400],
		    [postPath(u, '../../../secret.txt'), 400],
		    [listPath('../../x'), 400],
		    [`/user/${enc(u)}/device/..%2f..%2f..%2fsecret.txt`, 400],
		    [subPath(u, '..'), 400],
		    [`/subscribe/${enc(u)}/device/../../../secret.txt`, 404],
		    ['/user/../secret.txt', 404],
		    ['/subscribe/..%2F..%2Fsecret.txt?x=1', 404]];
		const got = [];
		for (const [p] of paths) {
			const r = await (p.startsWith('/user/') && p.includes('/device/') ?
			    c.postJson(p, { data: 'x' }) : c.get(p));
			let error;
			try {
				error = typeof JSON.parse(r.text).error;
			} catch {
				error = 'no JSON';
			}
			got.push(`${p}: ${r.status} ${r.headers['content-type']} ${error}`);
		}
		assert.deepEqual(got, paths.map(([p, status]) =>
		    `${p}: ${status} application/json string`));
		// An id with %2F and no such step still works, and the site's own
		// files are lighttpd's as before, none above its root.
		const l = await c.get(listPath(`${u}/x`));
		assert.deepEqual([l.status, l.json()], [200, []]);
		const f = await c.get('/x/../secret.txt');
		assert.deepEqual([f.status, f.text], [200, 'not for the API\n']);
		for (const p of ['/../../../../../etc/hostname',
		    '/..%2F..%2F..%2F..%2F..%2Fetc%2Fhostname',
		    '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/hostname'])
			assert.equal((await c.get(p)).status, 404, p);
		rig.checkBackendLog();
	});
}

// The page's files take GET and HEAD only. lighttpd's static handler
// answered a POST to one (a form posted to the page, or a client's POST
// sent to "/" for want of its API path) with the file, 200, as if it had
// been taken, and a PUT, DELETE or PATCH with its own 501 (not
// implemented, where nginx's conf/nginx-web.conf answers 405); OPTIONS got
// 200 with "Allow: OPTIONS, GET, HEAD, POST". Now every method but GET and
// HEAD gets 405 with "Allow: GET, HEAD" (RFC 9110: a 405 says what is
// allowed) and not the file, on each of the five paths; the API's
// paths are untouched.
test('lighttpd with conf/lighttpd-web.conf: the page\'s files take GET and HEAD only',
    T, async (t) => {
	const rig = new Rig(t, 'lighttpd-web-methods');
	await rig.startListen();
	await rig.startLighttpd({ web: true });
	const c = rig.client();
	const got = [];
	const want = [];
	for (const p of ['/', '/index.html', '/app.js', '/style.css',
	    '/beep-signal.js']) {
		const file = (await c.get(p)).text;
		assert.ok(file.length > 0, p);
		for (const [method, body] of [['POST', 'data=x'], ['PUT', 'x'],
		    ['DELETE'], ['PATCH', 'x'], ['OPTIONS']]) {
			const r = await c.request(method, p, { body, headers:
			    body ? { 'Content-Type': 'application/x-www-form-urlencoded' } :
			    {} });
			got.push(`${method} ${p}: ${r.status} ${r.headers.allow} ` +
			    `${r.text === file ? 'the file' : 'not the file'}`);
			want.push(`${method} ${p}: 405 GET, HEAD not the file`);
		}
		const h = await c.request('HEAD', p);
		got.push(`HEAD ${p}: ${h.status} ${h.headers['content-length']}`);
		want.push(`HEAD ${p}: 200 ${Buffer.byteLength(file)}`);
	}
	assert.deepEqual(got, want);
	// The API's POST is the backend's, as before.
	const u = uid('methods');
	const r = await c.postJson(postPath(u, 'd'), { data: 'x' });
	assert.deepEqual([r.status, r.json()],
	    [404, { error: 'device connection not found' }]);
	rig.checkBackendLog();
});

// lighttpd loads a magnet script when a request first needs it: without
// lighttpd-raw-path.lua it started, passed lighttpd -tt (what Debian's
// unit runs before a start or reload), and answered every request of the
// site 500; without lighttpd-web-exact.lua the page's five paths 500;
// without lighttpd-stream-down.lua a subscribe's 503 stayed final. The
// shipped confs now check that each script they run is there: lighttpd
// -tt -f fails, naming the file, while any is missing, and passes with
// all of them.
test('lighttpd -tt fails on the shipped confs while a script they run is missing',
    T, async (t) => {
	need('lighttpd');
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beep-lighttpd-tt-'));
	t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
	const scripts = path.join(dir, 'scripts');
	fs.writeFileSync(path.join(dir, 'beep-signal.conf'),
	    rewrite(fs.readFileSync(LIGHTTPD_CONF, 'utf8'),
	    LIGHTTPD_SCRIPTS_PROD, `var.beep_signal_scripts = "${scripts}"`,
	    'lighttpd scripts\' directory'));
	fs.copyFileSync(LIGHTTPD_WEB_CONF, path.join(dir, 'beep-signal-web.conf'));
	const main = path.join(dir, 'lighttpd.conf');
	fs.writeFileSync(main, [
		`server.document-root = "${dir}"`,
		'server.port = 1837',
		'server.modules = ( "mod_indexfile", "mod_access", "mod_staticfile" )',
		`include "${path.join(dir, 'beep-signal.conf')}"`,
		`include "${path.join(dir, 'beep-signal-web.conf')}"`, '',
	].join('\n'));
	const tt = () => spawnSync('lighttpd', ['-tt', '-f', main],
	    { encoding: 'utf8' });
	const names = ['lighttpd-raw-path.lua', 'lighttpd-stream-down.lua',
	    'lighttpd-web-exact.lua'];
	for (const missing of names) {
		fs.rmSync(scripts, { recursive: true, force: true });
		fs.mkdirSync(scripts);
		for (const n of names.filter((n) => n !== missing))
			fs.copyFileSync(path.join(ROOT, 'conf', n),
			    path.join(scripts, n));
		const r = tt();
		assert.notEqual(r.status, 0, `without ${missing}: ${r.stderr}`);
		assert.ok(r.stderr.includes(path.join(scripts, missing)),
		    `without ${missing}, the error names it: ${r.stderr}`);
	}
	fs.copyFileSync(path.join(ROOT, 'conf', names[names.length - 1]),
	    path.join(scripts, names[names.length - 1]));
	const r = tt();
	assert.equal(r.status, 0, `every script there: ${r.stderr}`);
});

// lighttpd keeps /metrics off the public site (the API's condition leaves
// it out), and conf/lighttpd-raw-path.lua starts a request whose path as
// sent begins with one of the API's again on a path that keeps its "."
// and ".." steps, for the backend, which routes on REQUEST_URI as sent.
// So a path that starts with the API's and steps out to /metrics
// ("/healthz/../metrics", its dots escaped or not, with %2F) must reach
// no metrics: the backend gets it with its steps and answers its JSON 404.
// And the script's escaping (each "." five bytes) must not turn a long
// path of dots into something lighttpd refuses or loops on: the backend's
// JSON 404 or 400 again. Passes on HEAD (2026-12-07): a gap, not a defect.
test('lighttpd: paths that step from the API to /metrics, or are long rows of dots, get the backend\'s JSON, never metrics',
    T, async (t) => {
	const rig = new Rig(t, 'lighttpd-metrics-steps');
	await rig.startListen();
	await rig.startLighttpd({ web: true });
	const c = rig.client();
	const got = [];
	const want = [];
	for (const [p, status] of [['/healthz/../metrics', 404],
	    ['/healthz/%2E%2E/metrics', 404], ['/readyz/..%2Fmetrics', 404],
	    ['/user/x/../../metrics', 404], ['/subscribe/..%2F..%2Fmetrics', 404],
	    [`/subscribe/${'.'.repeat(3000)}/x`, 404],
	    [`/user/${'..%2F'.repeat(600)}x/devices`, 400]]) {
		const r = await c.get(p);
		let error;
		try {
			error = typeof JSON.parse(r.text).error;
		} catch {
			error = 'no JSON';
		}
		got.push(`${p.slice(0, 40)}: ${r.status} ${error} ` +
		    `${/^beep_/m.test(r.text) ? 'metrics' : 'no metrics'}`);
		want.push(`${p.slice(0, 40)}: ${status} string no metrics`);
	}
	assert.deepEqual(got, want);
	rig.checkBackendLog();
});
