// A Redis ACL that leaves the nodes' user without its channels: Redis 7
// gives a new ACL user none (`acl-pubsub-default resetchannels`), so a
// dedicated user made as `~beep:* +@all` has the keys and the scripts but
// not `&beep:*`; and `ACL SETUSER ... resetchannels` at runtime (a
// permissions change rolled out) does the same to a working cluster.
//
// The POST script appends the message (XADD), then PUBLISHes it to the
// nodes holding the device: the PUBLISH is refused (NOPERM), the script
// stops with an error after its writes, and the POST gets 503 ("not
// accepted"; its sender retries).  But the message stays in the device's
// stream, and when the channel is allowed again the node's resync replays
// it: a message answered 503 is delivered after all, and its retry once
// more.  And the node's log never says why its channel is down.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
	startCluster, startRedis, startStack, CLUSTER_QUICK, refuseChannel, uid,
	postPath, poll,
} from './harness.mjs';

const T = { timeout: 60000 };
const ENV = CLUSTER_QUICK;

describe('the nodes\' Redis user without its channels', T, () => {
	test('a POST answered 503 is not delivered later', T, async (t) => {
		const cl = await startCluster({ nodes: 1, env: ENV,
		    check: { allowErrors: [/redis: NOPERM/] } }, t);
		const [a] = cl.nodes;
		const c = a.client();
		const u = uid('acl');
		const s = await a.subscribe(u, 'd');
		// Redis closes the connections subscribed to what is no longer
		// allowed: the node's channel goes down at once.
		assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', 'resetchannels'),
		    'OK');
		await poll(async () => (await c.health()).cluster.redis === 'down',
		    { timeout: 10000, what: 'the channel down' });
		const refused = [], accepted = [];
		for (let i = 0; i < 3; i++) {
			const r = await c.postJson(postPath(u, 'd'), { data: `r${i}` });
			if (r.status === 503)
				refused.push(`r${i}`);
			else if (r.status === 200)
				accepted.push(`r${i}`);
			else
				assert.fail(`${r.status} ${r.text}`);
		}
		assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', 'allchannels'),
		    'OK');
		let end;
		await poll(async () => {
			end = await c.postJson(postPath(u, 'd'), { data: 'end' });
			return end.status === 200;
		}, { timeout: 20000, what: 'POSTs accepted again' });
		const got = [];
		for (;;) {
			const e = await s.nextEvent(15000);
			if (e.data === 'end')
				break;
			got.push(e.data);
		}
		const late = got.filter((d) => refused.includes(d));
		assert.deepEqual(late, [], `answered 503 ("not accepted", so ` +
		    `retried by their senders), then delivered once the channel ` +
		    `was allowed again: ${JSON.stringify(got)}`);
		// What was accepted (200) arrives, once, in order.
		assert.deepEqual(got, accepted, 'every 200 delivered once');
	});

	test('the node says why its channel is refused', T, async (t) => {
		const cl = await startCluster({ nodes: 1, env: ENV }, t);
		const [a] = cl.nodes;
		const c = a.client();
		// Its SUBSCRIBE refused, again and again (backoff to 2 s): the
		// reason Redis gives must reach the log at least once.
		await refuseChannel(cl, c);
		const lines = a.backendLog.filter((l) => /redis channel/.test(l));
		assert.ok(lines.some((l) => /NOPERM/.test(l)), `the log does not ` +
		    `say that Redis refused the channel (NOPERM): ` +
		    `${JSON.stringify(lines)}`);
		assert.equal(cl.redis.cli('ACL', 'SETUSER', 'default', 'allchannels'),
		    'OK');
	});

	// A node deployed with a Redis it never reaches (a wrong password here;
	// a wrong host or port, a socket its user may not open alike) logged
	// nothing at all: its connections' state began as down, and only a
	// change of it was logged, so the first failure, and every one after
	// it, went unsaid. The log read "ready on ..." and stayed silent while
	// /readyz answered 503 and every POST 503 (README, Cluster, "Failure
	// behaviour": each node logs the loss once per connection).
	test('a node that never reaches Redis says why', T, async (t) => {
		const dir = mkdtempSync(path.join(os.tmpdir(), 'beep-noauth-'));
		t.after(() => rmSync(dir, { recursive: true, force: true }));
		const redis = await startRedis(dir,
		    { args: ['--requirepass', 'right-password'] });
		t.after(() => redis.stop());
		const node = await startStack({ env: { ...ENV,
		    BEEP_REDIS_URL: `unix://:wrong-password@${redis.socket}` } });
		t.after(() => node.stopAndCheck());
		const c = node.client();
		assert.equal((await c.get('/readyz')).status, 503);
		// Redis's answer to the AUTH, on each connection (the commands'
		// and the channel's), with its backoff (to 2 s) as hang guard.
		for (const what of ['commands', 'channel'])
			await poll(() => node.backendLog.some((l) => new RegExp(
			    `warn cluster: redis ${what}: down: .*WRONGPASS`).test(l)),
			    { timeout: 10000, what: `the ${what} connection's ` +
			    `failure logged:\n${node.backendLog.join('\n')}` });
	});
});
