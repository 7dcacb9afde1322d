// The README's "With curl" example, run as written (the port changed) with
// curl through the shipped Caddyfile: each command's output is the one its
// comment shows, and the stream's bytes are those the README shows, but
// for the run's epoch in the ids and the random part of `retry:`. A change
// to the stream's framing, its first lines or the POST's answer that the
// README does not follow fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, startStack, withTimeout } from './harness.mjs';
import { need } from './fronts.mjs';

const T = { timeout: 30000 };
const run = promisify(execFile);

// The section's two code blocks: the commands, and the stream they show.
function readmeExample() {
	const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
	const start = text.indexOf('\n### With curl\n');
	assert.ok(start >= 0, 'README has "### With curl"');
	const blocks = [...text.slice(start).matchAll(/\n```(\w*)\n([\s\S]*?)\n```\n/g)];
	assert.equal(blocks[0][1], 'sh');
	const commands = blocks[0][2].replace(/\\\n\s*/g, '').split('\n')
	    .filter((l) => l.startsWith('curl '))
	    .map((l) => {
		const m = l.match(/^(.*?)\s*(?:#\s*(.*))?$/);
		return { cmd: m[1], shows: m[2] };
	    });
	return { commands, stream: `${blocks[1][2]}\n` };
}

test('the README\'s curl example gives what the README shows', T,
    async (t) => {
	need('curl');
	const stack = await startStack({}, t);
	const { commands, stream } = readmeExample();
	assert.equal(commands.length, 4, 'a stream, a list and two POSTs');
	const local = (cmd) => cmd.replaceAll('http://localhost:1837',
	    stack.base);
	assert.ok(commands.every((c) => local(c.cmd) !== c.cmd),
	    'every command names http://localhost:1837');

	// The stream, left running as the README says.
	const sub = spawn('sh', ['-c', `exec ${local(commands[0].cmd)}`],
	    { stdio: ['ignore', 'pipe', 'ignore'] });
	t.after(() => sub.kill());
	let got = '';
	const waiters = [];
	sub.stdout.setEncoding('utf8');
	sub.stdout.on('data', (s) => {
		got += s;
		for (const w of waiters.splice(0))
			w();
	});
	const until = (re) => withTimeout((async () => {
		while (!re.test(got))
			await new Promise((resolve) => waiters.push(resolve));
	})(), 10000);
	await until(/event: position\ndata: \n\n/);
	const epoch = got.match(/\nid: (\d+)-0\n/);
	assert.ok(epoch, `a fresh run's first position is <epoch>-0: ${got}`);
	const ours = (s) => s.replaceAll('1795620000000-', `${epoch[1]}-`);

	for (const { cmd, shows } of commands.slice(1)) {
		const r = await run('sh', ['-c', local(cmd)]);
		if (shows !== undefined)
			assert.equal(r.stdout, ours(shows), cmd);
	}
	await until(/data: bye\n\n/);
	const retry = got.match(/\nretry: (\d+)\n/);
	assert.ok(retry && retry[1] >= 2000 && retry[1] <= 3000,
	    `retry: BEEP_RECONNECT_MS (2 s) plus up to half again: ${got}`);
	assert.equal(got, ours(stream.replace(/\nretry: \d+\n/,
	    `\nretry: ${retry[1]}\n`)));
});
