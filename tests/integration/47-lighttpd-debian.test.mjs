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
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	uid, subPath, postPath, listPath, enc, skipReason,
} from './harness.mjs';
import { Rig } from './fronts.mjs';

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
