// The log says when the stream limit refuses subscribes (README,
// Operations, Logs: "the stream limit refusing subscribes" is logged at
// most once a second, each line counting those held back), in a cluster
// too (review r21).  A cluster node refuses a subscribe at
// BEEP_MAX_STREAMS before Redis and its registry are asked (api_refusing()),
// and only the registry's refusal logged the line: a node of a cluster
// full of streams answered every new stream 503 "too many streams" with
// nothing in its log, where the on-call engineer looks first; a single
// node logs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
	startStack, startRedis, uid, subPath, openSub, poll,
} from './harness.mjs';

const T = { timeout: 60000 };
const WARN = /^\S+Z warn api: stream limit reached \(1\): refusing subscribes/;

for (const cluster of [false, true]) {
	test(`${cluster ? 'a cluster node' : 'a single node'}: the stream ` +
	    'limit refusing subscribes is logged', T, async (t) => {
		const env = { BEEP_MAX_STREAMS: '1' };
		let redis = null, dir = null;
		if (cluster) {
			dir = mkdtempSync(path.join(os.tmpdir(), 'beep-r21-'));
			redis = await startRedis(dir).catch((e) => {
				rmSync(dir, { recursive: true, force: true });
				throw e;
			});
			env.BEEP_REDIS_URL = redis.url;
		}
		const stack = await startStack({ env }, t).finally(() => {
			// After the stack's after-hook: hooks run in order.
			if (redis)
				t.after(async () => {
					await redis.stop();
					rmSync(dir, { recursive: true, force: true });
				});
		});
		const a = await openSub(stack, subPath(uid('a'), 'd'));
		assert.equal(a.status, 200);
		const b = await openSub(stack, subPath(uid('b'), 'd'));
		assert.equal(b.status, 503, b.text);
		assert.equal(JSON.parse(b.text).error, 'too many streams');
		// Written before the answer, but through another pipe: awaited.
		await poll(() => stack.backendLog.some((l) => WARN.test(l)), {
			what: 'a subscribe refused at BEEP_MAX_STREAMS left no ' +
			    'line in the log',
		}).catch((e) => {
			throw new Error(`${e.message}\n${stack.backendLog.join('\n')}`);
		});
		a.stream.close();
	});
}
