// The real binary behind the other fronts and launchers: nginx (conf/nginx.conf),
// lighttpd (conf/lighttpd.conf), spawn-fcgi (socket on fd 0) behind Caddy, and
// systemd-socket-activate (LISTEN_FDS, fd 3) behind nginx.
//
// Each test runs in its own temp dir on free loopback ports: it copies the
// shipped front config, rewrites only the listen port and the socket path,
// wraps it in a generated main config whose pid, log and temp paths are in the
// temp dir, and checks: subscribe; the list shows the device; a POST arrives
// as an SSE event on the open stream (the front does not buffer it); a subscriber
// that leaves disappears from the list (BEEP_KEEPALIVE=1, bounded poll);
// SIGTERM to the backend ends the stream with a `retry:` field and the backend
// exits 0. And nginx with conf/nginx-web.conf serves the call page with the
// Caddyfile's headers, on its own paths only (Chromium runs it), as do
// conf/Caddyfile.cluster (by the rules the Caddyfile imports) and
// conf/Caddyfile.compose (through a node's Caddy), and lighttpd with
// conf/lighttpd-web.conf (on its own paths as sent). Every process is stopped by pid (SIGTERM, then SIGKILL after a
// bound) and the temp dir removed, also when a test fails.
//
// nginx, lighttpd, spawn-fcgi, systemd (systemd-socket-activate) and caddy are
// test dependencies: `make test-deps` (scripts/deps.sh test) installs them.
//
// Environment: BEEP_BIN (backend binary), BEEP_TEST_DEBUG=1 (echo the logs).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	poll, withTimeout, uid, subPath, postPath, listPath,
	expectRefusedStream, Client, ROOT, startStack, skipReason,
} from './harness.mjs';
import {
	browserSkip, launchChromium, goOnline, checkWebFiles,
} from './callpage.mjs';
import {
	Rig as FrontRig, waitLine, stop, launch, rewrite, READY_GUARD,
	NGINX_CLUSTER_CONF,
} from './fronts.mjs';

// Skipped under ThreadSanitizer (the Makefile's TSAN_SKIP): its subject is
// the shipped front configurations, not the C the sanitizers watch.
const T = { timeout: 90000, skip: skipReason(import.meta.url) };
const KEEPALIVE = 1;                     // BEEP_KEEPALIVE for every backend
// Bounds (ms); generous for sanitizer builds.
// POST -> event through the front: a hang guard; a front that buffers
// the stream holds it past this (its buffer is not filled by keepalives).
const HELD = 20000;
const GONE = { timeout: 10000, interval: 50 };

// Every backend here gets BEEP_KEEPALIVE.
class Rig extends FrontRig {
	constructor(t, name) {
		super(t, name, { env: { BEEP_KEEPALIVE: String(KEEPALIVE) } });
	}
}

// ---------------------------------------------------------------------------
// The checks, the same through every front.

async function smoke(t, rig) {
	const c = rig.client();
	// A slash inside an id: the front must pass the raw path on.
	const u = `${uid('front')}/x`;
	const ready = await waitLine(rig.backend, /\bready\b/);
	assert.match(ready, new RegExp(`keepalive ${KEEPALIVE}s`),
	    'the backend got BEEP_KEEPALIVE');

	// Subscribe: 200, SSE headers, the first comment at once.
	const s = await rig.open(subPath(u, 'phone'));
	assert.equal(s.status, 200, await (s.status === 200 ? '' : s.text()));
	assert.match(s.headers['content-type'], /^text\/event-stream/);
	await s.waitComments(1, 5000);

	// Listed.
	assert.deepEqual(await c.devices(u), ['phone']);

	// Delivered on the open stream: an event with a name and a
	// multi-line payload. A front that buffers the stream holds it until
	// its buffer fills (KiBs: a keepalive is some 30 bytes a second) or
	// the response ends; what is asserted is that it came while the
	// stream is open. How soon is for make bench: the bound is a hang
	// guard.
	const sent = Date.now();
	const r = await c.postJson(postPath(u, 'phone'),
	    { data: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\ns=-', event: 'offer' });
	assert.equal(r.status, 200, r.text);
	assert.match(r.json().id, /^\d+-\d+$/, 'answer is {"id": "<epoch>-<n>"}');
	const ev = await s.nextEvent(HELD);
	const took = Date.now() - sent;
	assert.deepEqual([ev.type, ev.data],
	    ['offer', 'v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-']);
	assert.equal(s.ended, false, `the event came with the stream's end ` +
	    `through ${rig.name} (buffered)`);

	// A body of unknown length (chunked): each front passes it on its own
	// way (Caddy's CONTENT_LENGTH is -1), and the backend reads it whole.
	const chunked = await c.postJson(postPath(u, 'phone'),
	    { data: 'sent chunked' }, { chunked: true });
	assert.equal(chunked.status, 200, `chunked POST: ${chunked.text}`);
	assert.equal((await s.nextEvent(10000)).data, 'sent chunked');

	// A second subscriber leaves: unlisted once the backend notices.
	const leaver = await rig.open(subPath(u, 'laptop'));
	assert.equal(leaver.status, 200);
	await leaver.waitComments(1, 5000);
	assert.deepEqual(await c.devices(u), ['laptop', 'phone']);
	const left = Date.now();
	leaver.close();
	await poll(async () => !(await c.devices(u)).includes('laptop'),
	    { ...GONE, what: `${u}/laptop unlisted via ${rig.name}` });
	t.diagnostic(`${rig.name}: POST->event ${took} ms; departure ` +
	    `noticed after ${Date.now() - left} ms (keepalive ${KEEPALIVE} s)`);
	assert.deepEqual(await c.devices(u), ['phone']);

	// SIGTERM: the open stream gets its retry: field and ends; exit 0.
	const exited = stop(rig.backend, 'SIGTERM', 20000);
	await s.waitFor(() => s.retries.length === 2,
	    { timeout: 10000, what: 'the stop\'s retry field (after the start\'s)' });
	assert.ok(Number.isInteger(s.retry) && s.retry > 0, `retry ${s.retry}`);
	await s.waitEnd(10000);
	assert.equal(s.events.length, 0, 'no stray event');
	const exit = await exited;
	assert.deepEqual([exit.code, exit.signal, exit.killed], [0, null, false],
	    `backend exit ${JSON.stringify(exit)}\n${rig.logs()}`);
	await withTimeout(rig.backend.drained, 2000, null);
	rig.checkBackendLog();
}

test('nginx (conf/nginx.conf) -> beep-signal --listen unix:', T, async (t) => {
	const rig = new Rig(t, 'nginx');
	await rig.startListen();
	await rig.startNginx();
	await smoke(t, rig);
});

// The call page behind nginx: conf/nginx-web.conf, included in
// conf/nginx.conf's server {} block, serves web/ as the Caddyfile does,
// with the Caddyfile's headers on the page's files (its
// Content-Security-Policy with frame-ancestors 'none': the Accept button
// is never framed by another site; nosniff, with the types a module script
// needs), and only on the page's own paths: an API path whose id nginx
// decodes and resolves to one of them (%2F and ".." steps) still reaches
// the backend, which refuses it. The README told nginx operators to
// `try_files $uri` in `location /`, without the headers: a page any site
// could frame, served as text/plain, and web/'s files for such ids.
test('nginx with conf/nginx-web.conf serves the call page as Caddy does',
    T, async (t) => {
	const web = fs.readFileSync(path.join(ROOT, 'conf', 'nginx-web.conf'),
	    'utf8');
	const rig = new Rig(t, 'nginx-web');
	const copy = path.join(rig.dir, 'nginx-web.conf');
	fs.writeFileSync(copy, rewrite(web, '/usr/local/share/beep-signal/web',
	    path.join(ROOT, 'web'), 'nginx-web.conf root'));
	await rig.startListen();
	await rig.startNginx({ edit: (site) => rewrite(site,
	    /\n\tlocation = \/metrics \{/,
	    `\n\tinclude ${copy};\n\n\tlocation = /metrics {`,
	    'nginx.conf location = /metrics') });
	const c = rig.client();
	await checkWebFiles(c);
	assert.deepEqual(await c.devices(uid('web')), []);

	// In a browser: the page runs within its policy, and goes online.
	if (browserSkip()) {
		t.diagnostic(`no browser check: ${browserSkip()}`);
		return;
	}
	const browser = await launchChromium(t);
	const page = await browser.newPage();
	await page.addInitScript(() => {
		window.violations = [];
		document.addEventListener('securitypolicyviolation', (e) =>
		    window.violations.push(e.violatedDirective));
	});
	await page.goto(`${rig.base}/`);
	await goOnline(page, uid('web'), 'laptop');
	assert.deepEqual(await page.evaluate(() => window.violations), []);
});

// The cluster's fronts serve the call page as the Caddyfile does:
// conf/Caddyfile.cluster in front of a node's socket, by the Caddyfile's
// own rules (the file both import; it sent every path to the nodes, and /
// was the backend's JSON 404), and conf/Caddyfile.compose in front of a
// node's Caddy (the shipped Caddyfile, as compose.yaml's image runs it),
// which serves them for it.
test('conf/Caddyfile.cluster serves the call page as the Caddyfile does',
    T, async (t) => {
	const rig = new Rig(t, 'caddy-cluster-web');
	await rig.startListen();
	await rig.startCaddy({ config: path.join(ROOT, 'conf',
	    'Caddyfile.cluster'), env: { BEEP_UPSTREAMS: `unix/${rig.sock}` } });
	await checkWebFiles(rig.client());
});

test('conf/Caddyfile.compose serves the call page as the Caddyfile does',
    T, async (t) => {
	const node = await startStack({}, t);
	const rig = new Rig(t, 'caddy-compose-web');
	await rig.startCaddy({ config: path.join(ROOT, 'conf',
	    'Caddyfile.compose'), env: { BEEP_NODES: new URL(node.base).host } });
	await checkWebFiles(rig.client());
});

// conf/nginx.conf passes the backend only the parameters it reads (no
// `include fastcgi_params`, no request headers wholesale): every one that
// src/server_params.c looks up must be there, and the headers must reach the
// backend through nginx (Last-Event-ID resumes, Origin is answered).
test('conf/nginx*.conf pass every parameter the backend reads', T,
    async (t) => {
	const src = fs.readFileSync(new URL('../../src/server_params.c',
	    import.meta.url), 'utf8');
	// Its names (SERVER_PARAM_IS(s, len, "NAME")); SCRIPT_NAME, PATH_INFO
	// and QUERY_STRING, read only when a front sends no REQUEST_URI, aside.
	const read = [...new Set([...src.matchAll(
	    /SERVER_PARAM_IS\([^)"]*"([A-Z_]+)"\)/g)].map((m) => m[1]))];
	assert.ok(read.includes('CONTENT_LENGTH'), `found: ${read}`);
	assert.ok(read.length >= 10, `parameters found in server_params.c: ${read}`);
	for (const file of ['nginx.conf', 'nginx-cluster.conf']) {
		const conf = fs.readFileSync(new URL(`../../conf/${file}`,
		    import.meta.url), 'utf8');
		const passed = new Set([...conf.matchAll(
		    /^\s*fastcgi_param\s+([A-Z_]+)\s/gm)].map((m) => m[1]));
		for (const name of read)
			assert.ok(passed.has(name), `conf/${file} passes ${name}`);
		assert.match(conf, /^\s*fastcgi_pass_request_headers off;/m);
		assert.doesNotMatch(conf, /^\s*include\s+fastcgi_params/m);
	}

	const rig = new FrontRig(t, 'nginx-params',
	    { env: { BEEP_CORS_ORIGINS: 'https://app.example' } });
	await rig.startListen();
	await rig.startNginx();
	const c = rig.client();
	const u = uid('params');
	const s1 = await rig.open(subPath(u, 'phone'));
	assert.equal(s1.status, 200);
	await s1.waitComments(1, 5000);
	const ids = [];
	for (const data of ['one', 'two']) {
		const r = await c.postJson(postPath(u, 'phone'), { data },
		    { headers: { Origin: 'https://app.example' } });
		assert.equal(r.status, 200, r.text);
		// A listed origin is echoed: Origin reached the backend.
		assert.equal(r.headers['access-control-allow-origin'],
		    'https://app.example', 'Origin passed through nginx');
		ids.push(r.json().id);
	}
	assert.deepEqual((await s1.nextEvent(5000)).data, 'one');
	assert.deepEqual((await s1.nextEvent(5000)).data, 'two');
	s1.close();
	// Last-Event-ID: the backend replays what follows it, and only that.
	const s2 = await rig.open(subPath(u, 'phone'),
	    { headers: { 'Last-Event-ID': ids[0] } });
	assert.equal(s2.status, 200);
	const ev = await s2.nextEvent(5000);
	assert.deepEqual([ev.lastEventId, ev.data], [ids[1], 'two'],
	    'Last-Event-ID passed through nginx');
	// One 413, in JSON, whatever the size: the backend's past
	// BEEP_MAX_BODY, nginx's own past client_max_body_size.
	for (const size of [100000, 200000]) {
		const big = await c.postJson(postPath(u, 'phone'),
		    { data: 'x'.repeat(size) },
		    { headers: { Origin: 'https://app.example' } });
		assert.equal(big.status, 413, `${size}: ${big.text}`);
		assert.deepEqual(big.json(), { error: 'body too large' }, `${size}`);
		// Readable by the page that sent it, as the backend's is.
		assert.equal(big.headers['access-control-allow-origin'],
		    'https://app.example', `${size}`);
	}
});

// EventSource never retries a 429 or 503: a stream refused for now must
// reach it as an event stream it comes back from, which the backend can
// tell only from the Accept header nginx passes (HTTP_ACCEPT).
test('nginx: a stream refused for now reaches EventSource as one it retries',
    T, async (t) => {
	const rig = new FrontRig(t, 'nginx-refused',
	    { env: { BEEP_MAX_STREAMS_PER_ADDRESS: '1' } });
	await rig.startListen();
	await rig.startNginx();
	const held = await rig.open(subPath(uid('held'), 'd'));
	assert.equal(held.status, 200);
	await held.waitComments(1, 5000);
	await expectRefusedStream(rig, subPath(uid('refused'), 'd'), 429,
	    'too many streams from this address');
	held.close();
});

// The backend out of reach (a restart without socket activation, a crash):
// the front's own 502, which EventSource would take as final, reaches a bare
// EventSource as a stream it comes back from, the same in every shipped
// Caddy and nginx config.
test('nginx: the backend out of reach, EventSource gets a stream it retries',
    T, async (t) => {
	const rig = new FrontRig(t, 'nginx-down');
	await rig.startListen();
	await rig.startNginx();
	const exit = await stop(rig.backend, 'SIGTERM', 20000);
	assert.equal(exit.code, 0, JSON.stringify(exit));
	const p = subPath(uid('down'), 'd');
	await expectRefusedStream(rig, p, 502, 'backend unavailable',
	    { front: true });
	// Anyone else, and any other request, gets nginx's 502.
	const c = rig.client();
	assert.equal((await c.get(p)).status, 502);
	assert.equal((await c.postJson(postPath(uid('down'), 'd'),
	    { data: 1 })).status, 502);
	assert.equal((await c.request('POST', p,
	    { headers: { Accept: 'text/event-stream' } })).status, 502,
	    'only a GET is a stream');
});

// nginx out of connection slots (worker_connections; Debian's nginx.conf
// has 768 a worker and each stream holds two) or descriptors accepts a
// client but cannot open its FastCGI connection: its own 500, which
// EventSource takes as final as it does a 502. With 25 slots, the
// listener, the kept FastCGI connection and 11 streams leave one: every
// next subscribe is accepted and gets the 500, until a stream ends.
test('nginx: out of connections, EventSource gets a stream it retries',
    T, async (t) => {
	const rig = new FrontRig(t, 'nginx-full');
	await rig.startListen();
	await rig.startNginx({ workerConnections: 25 });
	const held = [];
	let answer;
	for (let i = 0; i < 20 && !answer; i++) {
		const p = subPath(uid('full'), 'd');
		const s = await rig.open(p).catch(() => null);
		if (s?.status === 200) {
			await s.waitComments(1, 5000);
			held.push(s);
		} else if (s) {
			answer = s.status;
			await s.text();
		}
	}
	t.diagnostic(`${held.length} streams, then ${answer}`);
	assert.equal(answer, 500, 'nginx\'s own 500 once full');
	await expectRefusedStream(rig, subPath(uid('full'), 'd'), 500,
	    'front unavailable', { front: true });
	for (const s of held)
		s.close();
});

// A cluster's node on another host that is down drops the connect: nginx
// answers 504 after fastcgi_connect_timeout on every node, which
// EventSource takes as final as it does a 502. Every node here is a TCP
// port whose accept queue is full (perl: listen backlog 0, filled once, never
// accepted), so each SYN goes unanswered, as to a host that is down.
// A TCP port whose every connect goes unanswered (its accept queue full),
// as a host that is down; resolves with "127.0.0.1:PORT".
async function unansweredNode(rig) {
	const hole = rig.track(launch('perl', ['-MSocket', '-e', `
		socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
		bind($s, sockaddr_in(0, INADDR_LOOPBACK)) or die "bind: $!";
		listen($s, 0) or die "listen: $!";
		my ($port) = sockaddr_in(getsockname($s));
		socket(my $c, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
		connect($c, sockaddr_in($port, INADDR_LOOPBACK))
		    or die "connect: $!";
		$| = 1;
		print "port $port\\n";
		sleep;
	`], { cwd: rig.dir, env: process.env, tag: 'unanswered' }));
	const port = (await waitLine(hole, /^port \d+$/)).split(' ')[1];
	return `127.0.0.1:${port}`;
}

// nginx-cluster.conf with its nodes at a and b, 1 s for a connect (so
// that the test is short), and every node tried by every request (a node
// that timed out is otherwise left out for 5 s).
function startNginxCluster(rig, a, b, edit = (site) => site) {
	return rig.startNginx({ conf: NGINX_CLUSTER_CONF, sockets: {
		'unix:/run/beep-signal/a.sock': a,
		'unix:/run/beep-signal/b.sock': b,
	}, edit: (site) => {
		site = rewrite(site, 'fastcgi_connect_timeout 5s;',
		    'fastcgi_connect_timeout 1s;', 'fastcgi_connect_timeout');
		site = rewrite(site, 'max_fails=1', 'max_fails=0', 'max_fails');
		return edit(site);
	} });
}

test('nginx-cluster: nodes that never answer the connect, EventSource gets a stream it retries',
    T, async (t) => {
	const rig = new FrontRig(t, 'nginx-connect-timeout');
	const node = await unansweredNode(rig);
	// No node answers /healthz: nginx's own, to know it is up.
	await startNginxCluster(rig, node, node, (site) => rewrite(site,
	    /\n\tlocation \/ \{/,
	    '\n\tlocation = /healthz {\n\t\treturn 200;\n\t}\n$&',
	    'location /'));
	const p = subPath(uid('unanswered'), 'd');
	await expectRefusedStream(rig, p, 504, 'backend unavailable',
	    { front: true });
	// Anyone else, and any other request, gets nginx's 504.
	const c = rig.client();
	assert.equal((await c.get(p)).status, 504);
	assert.equal((await c.postJson(postPath(uid('unanswered'), 'd'),
	    { data: 1 })).status, 504);
});

// One node's host down, the other up: every request reaches the one up,
// a POST too (never sent to the first, so never sent twice), none gets
// the 504 of the connect that timed out.
test('nginx-cluster: a node that never answers the connect, every request served by the other',
    T, async (t) => {
	const rig = new FrontRig(t, 'nginx-one-unanswered');
	const node = await unansweredNode(rig);
	await rig.startListen();
	await startNginxCluster(rig, node, `unix:${rig.sock}`);
	const c = rig.client();
	const u = uid('half');
	const s = await rig.open(subPath(u, 'd'));
	assert.equal(s.status, 200);
	for (let i = 0; i < 4; i++) {
		const r = await c.postJson(postPath(u, 'd'), { data: `m${i}` });
		assert.equal(r.status, 200, `POST ${i}: ${r.status} ${r.text}`);
		assert.equal((await s.nextEvent(5000)).data, `m${i}`);
		const list = await c.get(listPath(u));
		assert.equal(list.status, 200, `list ${i}: ${list.text}`);
	}
	assert.equal(s.received, 4, 'each once');
});

test('every shipped front config answers an unreachable backend alike', T,
    () => {
	const read = (f) => fs.readFileSync(new URL(`../../${f}`,
	    import.meta.url), 'utf8');
	const caddy = ['Caddyfile', 'conf/Caddyfile.cluster',
	    'conf/Caddyfile.compose', 'conf/Caddyfile.forward-auth'].map((f) => [f, read(f).match(
	    /\n\t# No backend can be reached[^]*?\n\thandle_errors \{\n[^]*?\n\t\}\n/)]);
	for (const [f, m] of caddy)
		assert.ok(m, `${f}: handle_errors for an unreachable backend`);
	for (const [f, m] of caddy.slice(1))
		assert.equal(m[0], caddy[0][1][0], `${f} as the Caddyfile`);
	const nginx = ['conf/nginx.conf', 'conf/nginx-cluster.conf'].map((f) => {
		const text = read(f);
		assert.match(text, /location \/subscribe\/ \{[^}]*\n\t\terror_page 502 = \$beep[a-z_]*stream_down;/,
		    `${f}: the subscribe location's 502`);
		assert.match(text, /location \/subscribe\/ \{[^}]*\n\t\terror_page 504 = \$beep[a-z_]*stream_timeout;/,
		    `${f}: the subscribe location's 504`);
		// The cluster file's maps are its own (both may share an
		// http {}): $beep_cluster_X there for $beep_X.
		assert.match(text, /location \/subscribe\/ \{[^}]*\n\t\terror_page 500 = \$beep[a-z_]*stream_error;/,
		    `${f}: the subscribe location's 500`);
		return ['down', 'timeout', 'error'].map((name) => text.match(new RegExp(
		    `\\n\\tlocation @beep_stream_${name} \\{\\n[^]*?\\n\\t\\}\\n`))?.[0]
		    ?.replaceAll('$beep_cluster_', '$beep_'));
	});
	const [down, timeout] = nginx[0];
	assert.ok(down, 'conf/nginx.conf: location @beep_stream_down');
	// The 504's answer is the 502's but for its name and status.
	assert.equal(timeout?.replace('@beep_stream_timeout', '@beep_stream_down')
	    .replace('\\"status\\":504', '\\"status\\":502'), down,
	    'conf/nginx.conf: @beep_stream_timeout as @beep_stream_down');
	// The 500's too, with its own error.
	assert.equal(nginx[0][2]?.replace('@beep_stream_error', '@beep_stream_down')
	    .replace('\\"status\\":500', '\\"status\\":502')
	    .replace('front unavailable', 'backend unavailable'), down,
	    'conf/nginx.conf: @beep_stream_error as @beep_stream_down');
	assert.deepEqual(nginx[1], nginx[0], 'conf/nginx-cluster.conf as nginx.conf');
});

test('lighttpd (conf/lighttpd.conf) -> beep-signal --listen unix:', T,
    async (t) => {
	const rig = new Rig(t, 'lighttpd');
	await rig.startListen();
	await rig.startLighttpd();
	// Every public route reaches the backend: its JSON, not lighttpd's
	// HTML 404 (the JS client's iceServers() asks /ice-servers).
	const c = rig.client();
	for (const p of ['/readyz', '/ice-servers?user=a']) {
		const r = await c.get(p);
		assert.equal(r.status, 200, `${p}: ${r.text}`);
		assert.match(r.headers['content-type'], /^application\/json/, p);
	}
	await smoke(t, rig);
});

// The call page behind lighttpd: conf/lighttpd-web.conf, included after
// conf/lighttpd.conf, serves web/ as the Caddyfile does, with its headers,
// on the page's own paths as sent only (lighttpd resolves ".." and "%2F"
// before its conditions see a path: conf/lighttpd-raw-path.lua sends an
// API path to the backend, conf/lighttpd-web-exact.lua refuses any other
// that is not the file's own), and leaves every other path to the site.
test('lighttpd with conf/lighttpd-web.conf serves the call page as Caddy does',
    T, async (t) => {
	const rig = new Rig(t, 'lighttpd-web');
	await rig.startListen();
	await rig.startLighttpd({ web: true, fastcgiFirst: true });
	const c = rig.client();
	await checkWebFiles(c, { site: true });
	assert.deepEqual(await c.devices(uid('web')), []);
});

// The backend out of reach behind lighttpd: its own 503 (the socket is gone)
// or 500 (a backend that hangs up before answering), which EventSource
// would take as final, reaches a bare EventSource as the stream nginx's
// @beep_stream_down sends, byte for byte (mod_magnet runs
// conf/lighttpd-stream-down.lua at response start). The first subscribe
// after the stop is the one whose failed connect makes mod_fastcgi retry
// the request: the conf's condition must hold for it too.
test('lighttpd: the backend out of reach, EventSource gets a stream it retries',
    T, async (t) => {
	const rig = new FrontRig(t, 'lighttpd-down');
	await rig.startListen();
	await rig.startLighttpd();
	const exit = await stop(rig.backend, 'SIGTERM', 20000);
	assert.equal(exit.code, 0, JSON.stringify(exit));
	assert.ok(!fs.existsSync(rig.sock), 'the stopped backend\'s socket gone');
	const p = subPath(uid('down'), 'd');
	await expectRefusedStream(rig, p, 503, 'backend unavailable',
	    { front: true });
	// nginx's answer: the id line a comment when none was sent, no
	// charset, credentials allowed whatever the Origin.
	const c = rig.client();
	const es = { Accept: 'text/event-stream' };
	const body = (id) => new RegExp('^retry: 5\\d\\d0\\n' + id +
	    '\\nevent: refused\\ndata: \\{"error":"backend unavailable",' +
	    '"status":503\\}\\n\\n$');
	const bare = await c.get(p, { headers: es });
	assert.equal(bare.status, 200);
	assert.equal(bare.headers['content-type'], 'text/event-stream');
	assert.equal(bare.headers['access-control-allow-credentials'], 'true');
	assert.match(bare.text, body(':'));
	const resumed = await c.get(p,
	    { headers: { ...es, 'Last-Event-ID': '1-7' } });
	assert.match(resumed.text, body('id: 1-7'));
	// The same client port, the same retry: (5 s + 10 x its last two
	// digits, in ms), as nginx and Caddy compute it.
	const one = new Client(rig.base, { maxSockets: 1 });
	t.after(() => one.close());
	const a = await one.get(p, { headers: es });
	const b = await one.get(p, { headers: es });
	assert.equal(a.text.split('\n')[0], b.text.split('\n')[0],
	    'retry: from the client\'s port');
	// Anyone else, and any other request, gets lighttpd's 503.
	assert.equal((await c.get(p)).status, 503);
	assert.equal((await c.request('HEAD', p, { headers: es })).status, 503);
	assert.equal((await c.postJson(postPath(uid('down'), 'd'),
	    { data: 1 })).status, 503);
	assert.equal((await c.postJson(p, { data: 1 },
	    { headers: es })).status, 503, 'only a GET is a stream');
	assert.equal((await c.get(listPath(uid('down')),
	    { headers: es })).status, 503, 'only a subscribe');

	// A backend that accepts and hangs up (one dying): lighttpd's 500.
	const conns = new Set();
	const hangup = net.createServer((s) => {
		conns.add(s);
		s.once('close', () => conns.delete(s));
		s.once('data', () => s.destroy());
		s.on('error', () => {});
	});
	await new Promise((resolve) => hangup.listen(rig.sock, resolve));
	t.after(() => new Promise((resolve) => {
		for (const s of conns)
			s.destroy();
		hangup.close(resolve);
	}));
	// lighttpd tries a backend that failed again after a few seconds.
	await poll(async () => (await c.get(p)).status === 500,
	    { timeout: 15000, interval: 250, what: 'lighttpd\'s 500' });
	await expectRefusedStream(rig, p, 500, 'backend unavailable',
	    { front: true });
	rig.checkBackendLog();
});

test('Caddy -> spawn-fcgi -n -s SOCK -- beep-signal (socket on fd 0)', T,
    async (t) => {
	const rig = new Rig(t, 'caddy+spawn-fcgi');
	await rig.startSpawnFcgi();
	assert.match(await waitLine(rig.backend, /\bready\b/), /ready on fd:0\b/);
	await rig.startCaddy();
	await smoke(t, rig);
});

test('nginx -> systemd-socket-activate -l SOCK beep-signal (LISTEN_FDS, fd 3)',
    T, async (t) => {
	const rig = new Rig(t, 'nginx+socket-activate');
	await rig.startSocketActivate();
	// The front's first request (its /healthz probe) starts the backend.
	await rig.startNginx();
	assert.match(await waitLine(rig.backend, /\bready\b/),
	    /ready on fd:3 \(systemd\)/);
	await smoke(t, rig);
});

// systemd keeps a .socket unit's socket across service restarts: a backend
// that stops must leave the (shared) listening socket usable for the next one.
// Emulated with a supervisor shell that holds the socket (fd 3, from
// systemd-socket-activate, as systemd would) and starts two backends on it in
// turn, each with LISTEN_PID set to its own pid (Rig.startSupervisor).
// (Before 4d8a532 the backend shut the inherited socket down on SIGTERM: the
// held socket then refused connections and the next backend got EINVAL from
// accept().)
test('socket kept across a service restart (as a systemd .socket unit does)',
    T, async (t) => {
	const rig = new Rig(t, 'lighttpd+restart');
	const { sup, generation, checkLog } = await rig.startSupervisor();
	// The front's first request starts generation 1.
	await rig.startLighttpd();
	rig.backend = await generation(1);
	const c = rig.client();
	assert.equal((await c.health()).streams, 0);
	const e1 = await stop(rig.backend, 'SIGTERM', 10000);
	assert.deepEqual([e1.code, e1.killed], [0, false]);

	// Generation 2 on the same, still held socket.
	rig.backend = await generation(2);
	await poll(() => sup.lines.filter((l) => /ready on fd:3/.test(l))
	    .length >= 2, { timeout: READY_GUARD, what: 'backend 2 ready' });
	await poll(async () => {
		try {
			return (await c.get('/healthz', { timeout: 2000 })).status ===
			    200;
		} catch { return false; }
	}, { timeout: 10000,
	    what: 'the restarted backend answering via lighttpd' });
	const u = uid('restart');
	const s = await rig.open(subPath(u, 'd'));
	assert.equal(s.status, 200);
	await s.waitComments(1, 5000);
	assert.deepEqual(await c.devices(u), ['d']);
	const e2 = await stop(rig.backend, 'SIGTERM', 10000);
	assert.deepEqual([e2.code, e2.killed], [0, false]);
	await withTimeout(sup.exited, 10000);
	await withTimeout(sup.drained, 2000, null);
	checkLog();
});
