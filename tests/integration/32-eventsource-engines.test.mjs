// A bare EventSource in each browser engine, cut before its first message,
// loses nothing: Firefox ESR (Debian's firefox-esr), WebKit (WPE's cog,
// Debian's cog: the engine of Safari and of every browser on iOS) and
// Chromium, each run headless as a plain process on a page that reports
// what its EventSource sees to the test (fetch to a small node server).
//
// Why: a stream used to open with an id: line alone. WHATWG sets the last
// event id from such a block and Chromium does, but Firefox and WebKit set
// it only from an event they dispatch: a phone cut before its first
// message (switching networks right after opening the app) came back
// without Last-Event-ID, and a message posted meanwhile was lost, although
// its POST was answered 200 (the old stream, a ghost behind Caddy that no
// write had yet found gone, took it). Streams now open with an event
// `position` (README, "A position from the first byte").
//
// The page's EventSource goes through a TCP proxy in front of the real
// Caddy and backend; the proxy logs each subscribe's Last-Event-ID, and
// cuts the browser's connection (RST to the browser) while it leaves the
// Caddy side open: the ghost. For each engine:
//  - the page gets the event `position` (a listener of `position` reports
//    it) with the id the stream opened with, and onmessage never sees it;
//  - cut: a POST to the device is answered 200 (the ghost takes it);
//  - the browser reconnects by itself with Last-Event-ID: that position;
//  - the page gets the message, once (onmessage, the same data and id),
//    before one posted after the reconnect, and no reset.
// The page's reports go one at a time, in order, so when the test has the
// report of the message posted after the reconnect it has every earlier
// one: nothing is waited for by the clock.
//
// Every process started here (the browsers, each in a process group of its
// own, and its children) is stopped by pid, also when a test fails; the
// node servers and the proxy are closed and the browser's temporary home
// removed. An engine whose binary is missing is skipped, saying which.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync }
    from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startStack, poll, uid, subPath, postPath, skipReason }
    from './harness.mjs';

const T = { timeout: 120000 };

// ---------------------------------------------------------------------------
// The engines, run as plain processes on a page's URL; home: a temporary
// directory of the run's own (profile, caches, TMPDIR).

const ENGINES = [
	{
		name: 'Firefox ESR',
		bin: process.env.BEEP_FIREFOX || '/usr/bin/firefox-esr',
		args(home, url) {
			const profile = path.join(home, 'profile');
			mkdirSync(profile);
			// No first-run pages, update or telemetry work: a quiet
			// start, with nothing fetched but the page.
			writeFileSync(path.join(profile, 'user.js'), [
				['browser.shell.checkDefaultBrowser', false],
				['browser.startup.homepage_override.mstone', 'ignore'],
				['browser.aboutwelcome.enabled', false],
				['datareporting.policy.dataSubmissionEnabled', false],
				['toolkit.telemetry.reportingpolicy.firstRun', false],
				['app.update.auto', false],
				['network.captive-portal-service.enabled', false],
				['network.connectivity-service.enabled', false],
			].map(([k, v]) => `user_pref(${JSON.stringify(k)}, ` +
			    `${JSON.stringify(v)});\n`).join(''));
			return ['--headless', '--no-remote', '--profile', profile, url];
		},
	},
	{
		name: 'WebKit (cog)',
		bin: process.env.BEEP_COG || '/usr/bin/cog',
		args: (home, url) => ['--platform=headless', url],
	},
	{
		name: 'Chromium',
		bin: process.env.BEEP_CHROMIUM || '/usr/bin/chromium',
		args: (home, url) => ['--headless=new', '--no-sandbox',
		    '--disable-gpu', '--no-first-run',
		    '--disable-background-networking', '--disable-component-update',
		    '--disable-sync', `--user-data-dir=${path.join(home, 'profile')}`,
		    url],
	},
];

// ---------------------------------------------------------------------------
// Processes: each browser leads a process group of its own, stopped by its
// pid (the group: its content, network and GPU processes with it).

const groups = new Set();
const homes = new Set();
process.on('exit', () => {
	for (const pid of groups) {
		try { process.kill(-pid, 'SIGKILL'); } catch { }
	}
	for (const dir of homes)
		rmSync(dir, { recursive: true, force: true });
});

function groupAlive(pid) {
	try { process.kill(-pid, 0); return true; } catch (e) {
		return e.code === 'EPERM';
	}
}

// SIGTERM to the group, SIGKILL after a bound; resolves when no process of
// the group is left.
async function stopGroup(pid) {
	try { process.kill(-pid, 'SIGTERM'); } catch { }
	try {
		await poll(() => !groupAlive(pid), { timeout: 5000,
		    what: `process group ${pid} gone` });
	} catch {
		try { process.kill(-pid, 'SIGKILL'); } catch { }
		await poll(() => !groupAlive(pid), { timeout: 5000,
		    what: `process group ${pid} killed` });
	}
	groups.delete(pid);
}

// Starts engine on url with a temporary home; resolves { output, stop }.
// output: its last lines (stdout and stderr), for a failure's message.
function launch(engine, url) {
	const home = mkdtempSync(path.join(os.tmpdir(), 'beep-engine-'));
	homes.add(home);
	const tmp = path.join(home, 'tmp');
	mkdirSync(tmp);
	const output = [];
	let child;
	try {
		child = spawn(engine.bin, engine.args(home, url), {
			detached: true,
			stdio: ['ignore', 'pipe', 'pipe'],
			env: { ...process.env, HOME: home, TMPDIR: tmp,
			    XDG_CONFIG_HOME: path.join(home, 'config'),
			    XDG_CACHE_HOME: path.join(home, 'cache'),
			    XDG_DATA_HOME: path.join(home, 'data'),
			    MOZ_HEADLESS: '1' },
		});
	} catch (e) {
		rmSync(home, { recursive: true, force: true });
		homes.delete(home);
		throw e;
	}
	if (child.pid)
		groups.add(child.pid);
	const exited = new Promise((r) => child.once('close', r));
	child.once('error', (e) => output.push(`spawn: ${e.message}`));
	for (const s of [child.stdout, child.stderr]) {
		s.setEncoding('utf8');
		s.on('data', (d) => {
			output.push(...d.split('\n').filter(Boolean));
			output.splice(0, Math.max(0, output.length - 40));
		});
	}
	return {
		output,
		async stop() {
			if (child.pid) {
				await stopGroup(child.pid);
				// Its pipes closed: nothing of it writes in home.
				await exited;
			}
			rmSync(home, { recursive: true, force: true });
			homes.delete(home);
		},
	};
}

// ---------------------------------------------------------------------------
// The proxy in front of Caddy: logs each subscribe (its Last-Event-ID and
// the first id: its stream brings) and cuts a connection as a network that
// went away does: RST to the browser, the Caddy side left open and unread.

async function startProxy(port) {
	const conns = [];
	const server = net.createServer((c) => {
		const u = net.connect(port, '127.0.0.1');
		const rec = { c, u, cut: false, head: '', down: '', request: null };
		conns.push(rec);
		c.on('data', (b) => {
			if (rec.cut)
				return;
			if (!rec.request && rec.head.length < 8192) {
				rec.head += b.toString('latin1');
				const m = /^GET (\/subscribe\S*)[^]*?\r\n\r\n/.exec(rec.head);
				if (m) {
					const id = /\r\nlast-event-id: *([^\r]*)/i
					    .exec(rec.head);
					rec.request = { path: m[1],
					    lastEventId: id ? id[1] : null };
				}
			}
			u.write(b);
		});
		u.on('data', (b) => {
			if (rec.cut)
				return;
			if (rec.down.length < 8192)
				rec.down += b.toString('latin1');
			c.write(b);
		});
		c.on('error', () => {});
		u.on('error', () => {});
		c.on('close', () => { if (!rec.cut) u.destroy(); });
		u.on('close', () => { if (!rec.cut) c.destroy(); });
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	return {
		base: `http://127.0.0.1:${server.address().port}`,
		// The subscribes, in the order they came.
		subscribes: () => conns.filter((r) => r.request),
		// The first id: line a connection's stream brought.
		firstId(rec) {
			const m = /(?:^|\n)id: ?([^\n]*)\n/.exec(rec.down);
			return m ? m[1] : null;
		},
		cut(rec) {
			rec.cut = true;
			rec.u.pause();
			rec.c.resetAndDestroy();
		},
		async stop() {
			for (const r of conns) {
				r.c.destroy();
				r.u.destroy();
			}
			await new Promise((r) => server.close(r));
		},
	};
}

// ---------------------------------------------------------------------------
// The page: a bare EventSource on the proxy; it reports what it sees to its
// own server, one report at a time, in the order seen.

async function startSite(streamUrl) {
	const reports = [];
	const page = `<!doctype html><meta charset=utf-8><title>es</title>
<script>
let chain = Promise.resolve();
const report = (o) => {
	chain = chain.then(() => fetch('/report', { method: 'POST',
	    body: JSON.stringify(o) })).catch(() => {});
};
window.onerror = (m) => report({ what: 'page error', data: String(m) });
const es = new EventSource(${JSON.stringify(streamUrl)});
es.onopen = () => report({ what: 'open' });
es.onerror = () => report({ what: 'error', readyState: es.readyState });
es.onmessage = (e) => report({ what: 'message', data: e.data,
    lastEventId: e.lastEventId });
for (const name of ['position', 'reset', 'replaced'])
	es.addEventListener(name, (e) => report({ what: name, data: e.data,
	    lastEventId: e.lastEventId }));
</script>`;
	const server = http.createServer((req, res) => {
		if (req.method === 'POST' && req.url === '/report') {
			let b = '';
			req.setEncoding('utf8');
			req.on('data', (d) => { b += d; });
			req.on('end', () => {
				try { reports.push(JSON.parse(b)); } catch {
					reports.push({ what: 'bad report', data: b });
				}
				res.end('ok');
			});
			return;
		}
		if (req.url !== '/') {
			res.writeHead(404);
			res.end();
			return;
		}
		res.writeHead(200, { 'Content-Type': 'text/html',
		    'Cache-Control': 'no-store' });
		res.end(page);
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	return {
		url: `http://127.0.0.1:${server.address().port}/`,
		reports,
		async stop() {
			server.closeAllConnections();
			await new Promise((r) => server.close(r));
		},
	};
}

// ---------------------------------------------------------------------------

for (const engine of ENGINES) {
	const skip = skipReason(import.meta.url) || (existsSync(engine.bin) ?
	    false : `missing ${engine.bin}: make test-deps installs it`);

	test(`${engine.name}: a bare EventSource cut before its first message ` +
	    'comes back from its position and gets what was posted meanwhile',
	{ ...T, skip }, async (t) => {
		// The defaults: a keepalive every 4 s finds nothing gone, the
		// proxy holding the Caddy side open; retry: 2 to 3 s.
		const stack = await startStack({}, t);
		const user = uid('engine');
		const proxy = await startProxy(stack.port);
		const site = await startSite(proxy.base + subPath(user, 'phone'));
		const { reports } = site;
		let browser = null;
		const state = () => JSON.stringify({
			reports,
			subscribes: proxy.subscribes().map((r) => r.request),
			browser: browser?.output.slice(-15),
		}, null, 1);
		const waitFor = (fn, what, timeout) => poll(fn, { timeout,
		    interval: 50, what }).catch((e) => {
			throw new Error(`${engine.name}: ${e.message}\n${state()}`);
		});
		const seen = (what) => reports.filter((r) => r.what === what);
		try {
			browser = launch(engine, site.url);

			// The stream open (a browser's first start may be slow),
			// then its first event: the position.
			await waitFor(() => seen('open').length > 0,
			    'the page\'s stream open', 60000);
			await waitFor(() => seen('position').length > 0,
			    'the event position at the page', 10000);
			const [first] = proxy.subscribes();
			assert.equal(first.request.lastEventId, null,
			    `the first subscribe has no Last-Event-ID\n${state()}`);
			const position = proxy.firstId(first);
			assert.match(position ?? '', /^\d+-\d+$/,
			    `the stream opened with an id\n${state()}`);
			assert.deepEqual(seen('position')[0],
			    { what: 'position', data: '', lastEventId: position },
			    `the page's position listener got it\n${state()}`);

			// The phone changes networks: its connection is gone (an
			// RST to it), the Caddy side stays open, nothing behind it.
			proxy.cut(first);
			const c = stack.client();
			const offer = await c.postJson(postPath(user, 'phone'),
			    { data: 'the offer' });
			assert.equal(offer.status, 200,
			    `the ghost took the POST: ${offer.text}`);

			// EventSource comes back by itself (after retry:), with
			// the position as its last event id.
			await waitFor(() => proxy.subscribes().length >= 2,
			    'the browser\'s reconnect', 20000);
			assert.equal(proxy.subscribes()[1].request.lastEventId,
			    position, `the reconnect's Last-Event-ID is the ` +
			    `position\n${state()}`);

			// Open again, then a message after the reconnect: when
			// the page has reported it, it has reported all before.
			await waitFor(() => seen('open').length >= 2,
			    'the page\'s stream open again', 10000);
			const after = await c.postJson(postPath(user, 'phone'),
			    { data: 'after' });
			assert.equal(after.status, 200, after.text);
			await waitFor(() => seen('message')
			    .some((m) => m.data === 'after'),
			'the message posted after the reconnect', 10000);

			assert.deepEqual(seen('message'), [
				{ what: 'message', data: 'the offer',
				    lastEventId: offer.json().id },
				{ what: 'message', data: 'after',
				    lastEventId: after.json().id },
			], `each message once, in order, none for the position\n` +
			    state());
			assert.deepEqual(seen('reset'), [], 'no reset');
			assert.deepEqual(seen('page error'), [], 'no page error');
		} finally {
			await browser?.stop();
			await site.stop();
			await proxy.stop();
		}
	});
}
