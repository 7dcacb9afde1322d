// Redis back from a snapshot that lost messages it had accepted: the node
// that finds the loss (its PRUNE) names every other node in beep:resync, and
// each is told "resync, and tell" (2) by its next heartbeat, so that its
// streams get `event: reset` ("messages were lost"), also one whose newest
// id from Redis is above the new beep:born (test 86).
//
// The README listed as a known limit: "a node whose heartbeat's answer is
// lost just as it says "resync, and tell" (the connection failing then)
// resyncs without telling, since Redis took its name off the list when it
// answered".  The node then knows only that a heartbeat went unanswered: it
// resyncs at the next one, which says the key was there (1), and a stream
// posted to since the finding is found to have missed nothing: the held
// message lost with the snapshot is lost untold.
//
// Here node a's connections to Redis pass through a proxy (a unix socket)
// that reads the commands and the answers (RESP), and, when asked, forwards
// a's next heartbeat to Redis, waits for its whole answer, and closes both
// sides without forwarding it: Redis ran the script, a never heard.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { rmSync } from 'node:fs';
import {
	startCluster, startStack, CLUSTER_QUICK, uid, postPath, listPath, poll,
	snapshotLoss,
} from './harness.mjs';

const T = { timeout: 120000 };
const ENV = { ...CLUSTER_QUICK, BEEP_GRACE_SECONDS: '600' };

// The length of the RESP value at buf[at...], or 0 when it is not whole yet.
function respLength(buf, at) {
	if (at >= buf.length)
		return 0;
	const eol = buf.indexOf('\r\n', at);
	if (eol < 0)
		return 0;
	const type = String.fromCharCode(buf[at]);
	const n = Number(buf.toString('latin1', at + 1, eol));
	let end = eol + 2;
	if (type === '$') {
		if (n < 0)
			return end - at;
		end += n + 2;
		return end <= buf.length ? end - at : 0;
	}
	if (type === '*') {
		for (let i = 0; i < n; i++) {
			const len = respLength(buf, end);
			if (len === 0)
				return 0;
			end += len;
		}
		return end - at;
	}
	return end - at; // + - : (RESP2 simple values)
}

// The bulk strings of the command (a RESP array) at buf[at...].
function commandArgs(buf, at) {
	const args = [];
	let p = buf.indexOf('\r\n', at) + 2;
	const n = Number(buf.toString('latin1', at + 1, p - 2));
	for (let i = 0; i < n; i++) {
		const eol = buf.indexOf('\r\n', p);
		const len = Number(buf.toString('latin1', p + 1, eol));
		args.push(buf.toString('latin1', eol + 2, eol + 2 + len));
		p = eol + 2 + len + 2;
	}
	return args;
}

// A proxy on a unix socket in dir to the Redis at `upstream` (a socket
// path).  cutBeat(node) arms it: the next heartbeat of node (EVALSHA with
// its key beep:n:NODE and at least the heartbeat's six arguments; the
// stop's BYE has one) is sent to Redis, and when Redis has answered it
// whole the connection is closed both ways, the answers before it
// forwarded, that one not.  Resolves with that answer.  killCommands()
// closes every connection that has sent a script.
async function startProxy(dir, upstream, t) {
	const socket = path.join(dir, 'proxy.sock');
	const conns = new Set();
	let armed = null;
	const server = net.createServer((down) => {
		const up = net.connect(upstream);
		const c = { down, up, sent: 0, answered: 0, beat: -1,
		    scripts: false, req: Buffer.alloc(0), rep: Buffer.alloc(0) };
		conns.add(c);
		const close = () => {
			conns.delete(c);
			down.destroy();
			up.destroy();
		};
		down.on('error', close);
		up.on('error', close);
		down.on('close', close);
		up.on('close', close);
		down.on('data', (d) => {
			c.req = Buffer.concat([c.req, d]);
			for (;;) {
				const len = respLength(c.req, 0);
				if (len === 0)
					break;
				const args = commandArgs(c.req, 0);
				if (args[0] === 'EVALSHA' || args[0] === 'SCRIPT')
					c.scripts = true;
				if (armed && c.beat < 0 && args[0] === 'EVALSHA' &&
				    args[3] === `beep:n:${armed.node}` &&
				    args.length >= 10)
					c.beat = c.sent;
				c.sent++;
				c.req = c.req.subarray(len);
			}
			up.write(d);
		});
		up.on('data', (d) => {
			c.rep = Buffer.concat([c.rep, d]);
			for (;;) {
				const len = respLength(c.rep, 0);
				if (len === 0)
					break;
				const answer = c.rep.subarray(0, len);
				c.rep = c.rep.subarray(len);
				if (c.answered++ === c.beat) {
					const a = armed;
					armed = null;
					close();
					a.resolve(answer.toString('latin1'));
					return;
				}
				down.write(answer);
			}
		});
	});
	rmSync(socket, { force: true });
	await new Promise((resolve) => server.listen(socket, resolve));
	t.after(() => {
		server.close();
		for (const c of conns) {
			c.down.destroy();
			c.up.destroy();
		}
	});
	return {
		url: `unix://${socket}`,
		cutBeat(node) {
			return new Promise((resolve) => { armed = { node, resolve }; });
		},
		killCommands() {
			let n = 0;
			for (const c of conns) {
				if (c.scripts) {
					c.down.destroy();
					c.up.destroy();
					n++;
				}
			}
			return n;
		},
	};
}

describe('Redis back with older data: a lost "resync, and tell"', T, () => {
	test('a node whose heartbeat\'s answer 2 was lost still tells its ' +
	    'streams', T, async (t) => {
		// b: the node that posts (its count is the higher one).
		const cl = await startCluster({ nodes: 1, env: ENV }, t);
		const [b] = cl.nodes;
		const proxy = await startProxy(cl.dir, cl.redis.socket, t);
		// a: the node of the stream, through the proxy; its heartbeat
		// (every 20 minutes) comes only when its command connection
		// is made again, when the test makes it so.
		const a = await startStack({ env: { ...ENV,
		    BEEP_REDIS_URL: proxy.url, BEEP_CLUSTER_TTL: '3600' } });
		cl.nodes.push(a);
		const ca = a.client(), cb = b.client();
		const nodeA = (await ca.health()).cluster.node;
		const u = uid('lost');

		// b is away while Redis restarts from its snapshot ("after" is
		// lost with it: its loss must be told): a comes back first, and
		// the device's client with it.
		const { back, mon, found } = await snapshotLoss(cl, a, b, u,
		    'phone', t);
		await found();

		// The call goes on before a's next heartbeat.
		const r3 = await cb.postJson(postPath(u, 'phone'), { data: 'm3' });
		assert.equal(r3.status, 200, r3.text);
		assert.equal((await back.nextEvent(15000)).data, 'm3');

		// a's next heartbeat, on a new command connection: its answer
		// is lost.  The old connection closed, a finds it so at its
		// next command (a listing: 503), and beats at once on the new
		// one.
		const cut = proxy.cutBeat(nodeA);
		assert.ok(proxy.killCommands() >= 1, 'a\'s command connection');
		const poke = await ca.get(listPath(uid('poke')));
		assert.equal(poke.status, 503, poke.text);
		const answer = await cut;
		assert.match(answer, /^(:2|\*\d+\r\n:2)\r\n/, 'the lost answer ' +
		    `said "resync, and tell": ${JSON.stringify(answer)}`);

		// a beats again on the next connection, and resyncs.
		const from = mon.text().length;
		await poll(() => mon.text().indexOf(`"SADD" "beep:r:${nodeA}" "${u}"`,
		    from) >= 0, { timeout: 20000, what: 'a\'s resync of the device' });

		const r4 = await cb.postJson(postPath(u, 'phone'), { data: 'm4' });
		assert.equal(r4.status, 200, r4.text);
		const got = [];
		for (;;) {
			const e = await back.nextEvent(15000);
			if (e.data === 'm4')
				break;
			got.push({ type: e.type, data: e.data });
		}
		assert.ok(got.some((e) => e.type === 'reset' &&
		    /messages were lost/.test(e.data)), '"after" was answered ' +
		    '202 and lost with the snapshot; a\'s heartbeat said ' +
		    '"resync, and tell" but its answer was lost, and Redis had ' +
		    'taken a off beep:resync when it answered: the resync after ' +
		    'found m3 above the new beep:born, nothing lost; events ' +
		    `after m3: ${JSON.stringify(got)}`);

		// Redis keeps a's name (beep:tell) until a acknowledges, at
		// its next heartbeat: here on a new connection again.  Then
		// it is not told again: m5 comes with no second reset.
		assert.equal(cl.redis.cli('HEXISTS', 'beep:tell', nodeA), '1');
		assert.ok(proxy.killCommands() >= 1, 'a\'s command connection');
		const poke2 = await ca.get(listPath(uid('poke')));
		assert.equal(poke2.status, 503, poke2.text);
		await poll(() => cl.redis.cli('HEXISTS', 'beep:tell', nodeA) === '0',
		    { timeout: 20000, what: 'a\'s acknowledgement' });
		const r5 = await cb.postJson(postPath(u, 'phone'), { data: 'm5' });
		assert.equal(r5.status, 200, r5.text);
		const e5 = await back.nextEvent(15000);
		back.close();
		assert.deepEqual({ type: e5.type, data: e5.data },
		    { type: 'message', data: 'm5' });
	});
});
