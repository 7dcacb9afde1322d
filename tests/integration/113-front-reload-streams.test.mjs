// A front reloaded with event streams open, as an operator does after
// editing its config (README, Deployment): `caddy reload` (with CADDY_ADMIN
// set), `nginx -s reload` (SIGHUP), lighttpd's graceful restart (SIGUSR1,
// what Debian's `systemctl reload lighttpd` sends). Each stream either
// lives on through the reload, or is cut and comes back as EventSource does,
// with its Last-Event-ID: either way its client gets every message posted
// before, during and after the reload, once each, in order.
//
// Which one it is, as the README says:
//   - Caddy keeps the streams (its old server stops taking requests; the
//     streams it holds go on; measured past its grace_period, 3 s, too);
//   - nginx keeps them on its old worker ("shutting down"), unless
//     worker_shutdown_timeout (which the README advises) ends them: then
//     they come back to the new workers;
//   - lighttpd ends them after server.graceful-shutdown-timeout (5 s in
//     Debian's lighttpd.conf and the rig's), and they come back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Rig, waitLine } from './fronts.mjs';
import { CADDYFILE, SseStream, caddyEnv, freePort, postPath, subPath, uid }
    from './harness.mjs';

const T = { timeout: 90000 };

// An EventSource's view of a stream: the messages it got, reconnecting when
// the stream ends with the id of the last event it had, as EventSource does
// (its retry wait left out). A connect refused (the front between its old
// and new listeners) is tried again.
class Resuming {
	constructor(rig, reqPath) {
		this.rig = rig;
		this.path = reqPath;
		this.got = [];
		this.opens = 0;
		this.lastId = null;
		this.stream = null;
	}

	async open() {
		const headers = { Accept: 'text/event-stream' };
		if (this.lastId !== null)
			headers['Last-Event-ID'] = this.lastId;
		for (let tries = 0; ; tries++) {
			try {
				this.stream = await SseStream.open(this.rig.base,
				    this.path, { headers });
				break;
			} catch (e) {
				if (e.code !== 'ECONNREFUSED' || tries >= 300)
					throw e;
				await new Promise((r) => setTimeout(r, 100));
			}
		}
		this.rig.streams.add(this.stream);
		this.opens++;
		assert.equal(this.stream.status, 200, `open ${this.opens}`);
		await this.stream.waitComments(1);
	}

	// The next message, across as many reconnects as it takes.
	async next() {
		for (;;) {
			let ev;
			try {
				ev = await this.stream.nextEvent(20000);
			} catch (e) {
				if (!this.stream.ended)
					throw e;
				this.stream.close();
				await this.open();
				continue;
			}
			if (ev.lastEventId)
				this.lastId = ev.lastEventId;
			if (ev.type === 'refused')
				continue;
			this.got.push(ev.data);
			return ev.data;
		}
	}
}

// A POST on a connection of its own (a kept one may be the old server's,
// closed by the reload: that is HTTP's race, not the front's), tried again
// only when the connect was refused (so never sent twice).
async function post(rig, u, data) {
	for (let tries = 0; ; tries++) {
		const c = rig.client();
		try {
			const r = await c.postJson(postPath(u, 'phone'), { data });
			assert.ok(r.status === 200 || r.status === 202,
			    `POST ${data}: ${r.status} ${r.text}`);
			return r;
		} catch (e) {
			if (e.code !== 'ECONNREFUSED' || tries >= 300)
				throw e;
			await new Promise((r) => setTimeout(r, 100));
		} finally {
			c.close();
		}
	}
}

// Posts one, reloads, then
//   - kept: posts two, waits until the old server or worker has stopped
//     taking requests (`settled`), posts three, all on the first stream;
//   - cut: waits until the stream ends, posts two while the client is
//     between its streams (the backend may not have seen the departure
//     yet: lighttpd's is seen at the next keepalive, and two then goes to
//     the dead stream), lets another stream of the device (a second tab,
//     itself resumed from one) take two and go, then the client comes back
//     with the id of one, and three is posted;
// the client must get all three once each, in order. Once the other stream
// has taken two, only the Last-Event-ID replay gives it to the client (a
// stream without one starts past what the device's streams took): without
// that other stream, two would be held for a device the backend saw leave
// (nginx cuts the FastCGI connection at once) and given to a stream with no
// id as well, so a front or client that lost the id would pass.
async function throughReload(rig, { reload, settled, cut }) {
	const u = uid('reload');
	const r = new Resuming(rig, subPath(u, 'phone'));
	await r.open();
	await post(rig, u, 'one');
	assert.equal(await r.next(), 'one');
	const first = r.stream;
	await reload();
	if (cut) {
		await first.waitEnd(30000);
		await post(rig, u, 'two');
		const other = new Resuming(rig, r.path);
		other.lastId = r.lastId;
		await other.open();
		assert.equal(await other.next(), 'two');
		other.stream.close();
		assert.equal(await r.next(), 'two');
	} else {
		await post(rig, u, 'two');
		assert.equal(await r.next(), 'two');
		await settled();
	}
	await post(rig, u, 'three');
	assert.equal(await r.next(), 'three');
	assert.deepEqual(r.got, ['one', 'two', 'three']);
	if (cut) {
		assert.ok(r.opens >= 2, 'the stream came back');
	} else {
		assert.equal(r.opens, 1, 'the stream lived through the reload');
		assert.equal(first.ended, false);
	}
	rig.checkBackendLog();
}

test('Caddy reloaded (caddy reload): the streams live on', T, async (t) => {
	const rig = new Rig(t, 'caddy-reload');
	await rig.startListen();
	const admin = `127.0.0.1:${await freePort()}`;
	await rig.startCaddy({ env: { CADDY_ADMIN: admin } });
	const port = new URL(rig.base).port;
	await throughReload(rig, {
		// --force: the same config is loaded again all the same (as
		// after an edit).
		reload: () => promisify(execFile)('caddy', ['reload', '--force',
		    '--config', CADDYFILE, '--adapter', 'caddyfile',
		    '--address', admin], { env: {
			...caddyEnv(path.join(rig.dir, 'caddy'), port, rig.sock),
			CADDY_ADMIN: admin } }),
		// The old server has stopped.
		settled: () => waitLine(rig.front, /"msg":"server shutdown"/),
	});
});

test('nginx reloaded (SIGHUP): the streams live on in the old worker', T,
    async (t) => {
	const rig = new Rig(t, 'nginx-reload');
	await rig.startListen();
	await rig.startNginx();
	await throughReload(rig, {
		reload: () => process.kill(rig.front.pid, 'SIGHUP'),
		settled: () => waitLine(rig.front, /gracefully shutting down/),
	});
});

test('nginx reloaded with worker_shutdown_timeout: the streams come back ' +
    'with their last id, nothing lost', T, async (t) => {
	const rig = new Rig(t, 'nginx-reload-cut');
	await rig.startListen();
	await rig.startNginx({ main: ['worker_shutdown_timeout 1s;'] });
	await throughReload(rig, {
		reload: () => process.kill(rig.front.pid, 'SIGHUP'),
		cut: true,
	});
});

test('lighttpd restarted gracefully (SIGUSR1): the streams come back with ' +
    'their last id, nothing lost', T, async (t) => {
	const rig = new Rig(t, 'lighttpd-reload');
	await rig.startListen();
	await rig.startLighttpd();
	await throughReload(rig, {
		reload: () => process.kill(rig.front.pid, 'SIGUSR1'),
		cut: true,
	});
});
