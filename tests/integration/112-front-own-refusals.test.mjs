// A request the front refuses itself, before the backend sees it, must get
// the backend's kind of answer: its status with a small JSON error body and
// the CORS headers a page on another origin needs to read it. Without them
// fetch() sees a network error (status 0), which beep-signal.js sends again
// (a 2 MB body three times) and reports as "Failed to fetch", not as the
// final 413 it is; with an HTML page a same-origin page reads no error.
//
// Already so, and kept so here: nginx's 413 past client_max_body_size and
// its 431 past large_client_header_buffers (tests 03, 09); the backend's own
// 413 between BEEP_MAX_BODY and a front's limit. Not so on HEAD:
//   - lighttpd's 413 past server.max-request-size (1 MiB in
//     conf/lighttpd.conf), an HTML page without CORS headers;
//   - nginx's 414 for a request line past one large_client_header_buffers
//     buffer (16 KiB: a path or a query string that long, e.g. ids far past
//     BEEP_MAX_ID), an HTML page without CORS headers, in conf/nginx.conf and
//     conf/nginx-cluster.conf.
// What no conf can reach is not checked: lighttpd's 431 past
// server.max-request-field-size and Go's 431 behind Caddy (past its 60 KB,
// below) are sent before any module or handler runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Rig, NGINX_CLUSTER_CONF, nginxOpts, stop } from './fronts.mjs';
import { ROOT, listPath, postPath, subPath } from './harness.mjs';

const T = { timeout: 60000 };
const ORIGIN = 'https://app.example';

// The answer as the backend gives its own errors: status, JSON body, CORS.
function assertJsonRefusal(r, status, error, origin, what) {
	const shown = `${what}: ${r.status} ${r.headers['content-type']} ` +
	    r.text.slice(0, 120).replace(/\s+/g, ' ');
	assert.equal(r.status, status, shown);
	assert.match(r.headers['content-type'] || '', /^application\/json/,
	    shown);
	assert.deepEqual(r.json(), { error }, shown);
	// The page's origin, or any (the backend's default, nginx before it
	// read the Origin header).
	assert.ok(['*', origin].includes(r.headers['access-control-allow-origin']),
	    `${what}: readable by the page that sent it: ` +
	    `${r.headers['access-control-allow-origin']}`);
}

test('conf/lighttpd.conf: a body past server.max-request-size gets the ' +
    'backend\'s JSON 413 with CORS headers, as one past BEEP_MAX_BODY does',
T, async (t) => {
	const rig = new Rig(t, 'lighttpd-413');
	await rig.startListen();
	await rig.startLighttpd();
	const c = rig.client();
	const headers = { 'Content-Type': 'application/json', Origin: ORIGIN };
	// 100 KB: the backend's (BEEP_MAX_BODY 64 KiB); 2 MB: lighttpd's,
	// announced (Content-Length) and not (chunked).
	for (const [size, chunked] of [[100000, false], [2000000, false],
	    [2000000, true]]) {
		const body = JSON.stringify({ data: 'x'.repeat(size) });
		const r = await c.request('POST', postPath('u', 'phone'),
		    { headers, body, chunked });
		assertJsonRefusal(r, 413, 'body too large', ORIGIN,
		    `${size} bytes${chunked ? ', chunked' : ''}`);
	}
	// The backend's own errors pass as they were.
	const gone = await c.postJson(postPath('u', 'phone'), { data: 'hi' },
	    { headers: { Origin: ORIGIN } });
	assertJsonRefusal(gone, 404, 'device connection not found', ORIGIN, 'a POST');
	rig.checkBackendLog();
});

for (const [name, conf] of [['conf/nginx.conf', undefined],
    ['conf/nginx-cluster.conf', NGINX_CLUSTER_CONF]]) {
	test(`${name}: a request line past large_client_header_buffers gets ` +
	    'a JSON 414 with CORS headers, not nginx\'s HTML page', T,
	async (t) => {
		const rig = new Rig(t, 'nginx-414');
		await rig.startListen();
		await rig.startNginx(nginxOpts(conf, rig.sock));
		const c = rig.client();
		const long = 'a'.repeat(20000);
		// nginx refuses the request line before it reads the
		// headers: no Origin yet, so any origin may read it (as its
		// 400 and 431 allow).
		for (const [method, p] of [['GET', listPath(long)],
		    ['GET', `${subPath('u', 'd')}?lastEventId=${long}`],
		    ['POST', postPath(long, 'd')]]) {
			const r = await c.request(method, p, {
				headers: { Origin: ORIGIN,
				    'Content-Type': 'application/json' },
				body: method === 'POST' ? '{"data":1}' : undefined,
			});
			assertJsonRefusal(r, 414, 'URI too long', ORIGIN,
			    `${method} ${p.slice(0, 30)}...`);
		}
		// A line within the buffer still reaches the backend (its own
		// 400 for an id past BEEP_MAX_ID).
		const r = await c.get(listPath('a'.repeat(10000)),
		    { headers: { Origin: ORIGIN } });
		assert.equal(r.status, 400, r.text);
	});
}

// The backend out of reach (a restart without socket activation, a crash):
// the front answers itself, 502 (nginx, Caddy) or 503 (lighttpd). A bare
// EventSource already gets a stream it comes back from (test 09); every
// other request got nginx's or lighttpd's HTML page, or Caddy's empty body,
// without CORS headers: a page on another origin read a network error, not
// the 502 or 503 beep-signal.js retries by its status.
for (const [front, status] of [['nginx', 502], ['nginx-cluster', 502],
    ['caddy', 502], ['lighttpd', 503]]) {
	test(`${front}: the backend out of reach, every request but a bare ` +
	    `EventSource's gets ${status} {"error":"backend unavailable"} ` +
	    'with CORS headers', T, async (t) => {
		const rig = new Rig(t, `${front}-down-json`);
		await rig.startListen();
		if (front === 'nginx')
			await rig.startNginx();
		else if (front === 'nginx-cluster') {
			await rig.startNginx({ conf: NGINX_CLUSTER_CONF, sockets: {
				'unix:/run/beep-signal/a.sock': `unix:${rig.sock}`,
				'unix:/run/beep-signal/b.sock': `unix:${rig.sock}`,
			} });
		} else if (front === 'caddy')
			await rig.startCaddy();
		else
			await rig.startLighttpd();
		const exit = await stop(rig.backend, 'SIGTERM', 20000);
		assert.equal(exit.code, 0, JSON.stringify(exit));
		const c = rig.client();
		const h = { Origin: ORIGIN };
		for (const [what, go] of [
			['POST', () => c.postJson(postPath('u', 'd'), { data: 1 },
			    { headers: h })],
			['GET list', () => c.get(listPath('u'), { headers: h })],
			// curl, beep-signal.js (JSON accepted too).
			['GET subscribe, Accept */*', () => c.get(subPath('u', 'd'),
			    { headers: { ...h, Accept: '*/*' } })],
		]) {
			const r = await go();
			assertJsonRefusal(r, status, 'backend unavailable', ORIGIN,
			    what);
		}
		// A bare EventSource still gets its stream (test 09).
		const s = await rig.open(subPath('u', 'd'),
		    { headers: { Accept: 'text/event-stream' } });
		assert.equal(`${s.status} ${s.headers['content-type']}`,
		    '200 text/event-stream');
		assert.match(await s.text(), /^event: refused$/m);
	});
}

// Caddy's FastCGI transport cuts any one parameter at what fits in one
// FastCGI record (65,535 bytes with its name), and says nothing: a request
// line or a header value longer than that reached the backend cut short,
// and was answered for what was left of it: a POST to an id of 70,000
// bytes, its REQUEST_URI cut inside the id, got 404 {"error":"not found"}
// (no such route), not the 400 for an id too long; a Cookie header of
// 66,000 bytes reached it cut (a cookie at its end, beep_token say, lost),
// where nginx and lighttpd refuse such a request 431. So the shipped
// Caddyfiles that speak FastCGI bound the headers (request line included)
// below one record (servers { max_header_size }): Go's own 431 past it.
test('Caddyfile: a request line or a header past one FastCGI record is ' +
    'refused 431, not passed on cut short', T, async (t) => {
	const rig = new Rig(t, 'caddy-long-line');
	await rig.startListen();
	await rig.startCaddy();
	const c = rig.client();
	for (const n of [66000, 70000]) {
		const r = await c.postJson(postPath('a'.repeat(n), 'd'),
		    { data: 1 });
		assert.equal(r.status, 431, `an id of ${n} bytes: ${r.status} ` +
		    r.text.slice(0, 80));
		const k = await c.get(listPath('u'),
		    { headers: { Cookie: `pad=${'p'.repeat(n)}; beep_token=x` } });
		assert.equal(k.status, 431, `a Cookie of ${n} bytes: ${k.status} ` +
		    k.text.slice(0, 80));
	}
	// Within it, the backend's own answer (its 400 for an id too long).
	const r = await c.postJson(postPath('a'.repeat(40000), 'd'), { data: 1 });
	assert.equal(r.status, 400, r.text);
	// The other Caddyfiles that speak FastCGI bound every server alike:
	// Go reads up to 4,096 bytes past max_header_bytes, and a parameter
	// holds at most 65,535 bytes less its 8 of lengths and its name.
	for (const f of ['Caddyfile', 'conf/Caddyfile.cluster',
	    'conf/Caddyfile.forward-auth']) {
		const { stdout } = await promisify(execFile)('caddy', ['adapt',
		    '--adapter', 'caddyfile', '--config', path.join(ROOT, f)],
		{ env: { PATH: process.env.PATH, HOME: rig.dir,
		    BEEP_CADDY_WEB: path.join(ROOT, 'conf', 'caddy-web.conf') } });
		const servers = Object.entries(JSON.parse(stdout).apps.http.servers);
		assert.ok(servers.length > 0, f);
		for (const [name, srv] of servers) {
			assert.ok(srv.max_header_bytes > 0 &&
			    srv.max_header_bytes + 4096 <= 65535 - 8 - 'HTTP_COOKIE'.length,
			    `${f} ${name}: max_header_bytes ${srv.max_header_bytes}`);
		}
	}
});
