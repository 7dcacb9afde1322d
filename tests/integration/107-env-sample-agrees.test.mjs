// conf/beep-signal.env is what README's systemd steps install in /etc, and
// what an operator edits: its comments must say what the shipped files and
// the service say.
//
// - BEEP_MAX_DRAIN: "Keep it at least Caddy's request_body max_size (1MB in
//   the shipped Caddyfile)". The shipped Caddyfile's public site reads at
//   most 128KB (the 1MB is conf/Caddyfile.compose's front): an operator
//   sizing the drain from it sizes it for a limit that is not there.
// - BEEP_REDIS_URL: "redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH",
//   without the ACL user or the percent-encoding --help and README give: a
//   password with a "%" written as shown is decoded ("ab%41" taken as "abA")
//   or refused, and the ACL user (Redis 6) is nowhere.
// - Every setting --help lists is in it, at --help's default: it left out
//   five (BEEP_MAX_DEVICES, BEEP_IPV6_PREFIX, BEEP_STUCK_MS,
//   BEEP_CATCH_UP_SECONDS, BEEP_RECONNECT_MS), which an operator reading it
//   as the list of what can be set never found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, runBinary } from './harness.mjs';

const env = readFileSync(path.join(ROOT, 'conf', 'beep-signal.env'), 'utf8');

// The comment block just above `#NAME=` (its lines, "# " taken off).
function commentOf(name) {
	const lines = env.split('\n');
	const at = lines.findIndex((l) => l.startsWith(`#${name}=`));
	assert.ok(at >= 0, `beep-signal.env has #${name}=`);
	const out = [];
	for (let i = at - 1; i >= 0 && /^# /.test(lines[i]); i--)
		out.unshift(lines[i].slice(2));
	return out.join(' ');
}

test('beep-signal.env: what it says of the shipped Caddyfile\'s body limit ' +
    'is the Caddyfile\'s', () => {
	const said = /request_body max_size \((\S+) in the shipped Caddyfile\)/
	    .exec(commentOf('BEEP_MAX_DRAIN'));
	assert.ok(said, 'BEEP_MAX_DRAIN\'s comment names the Caddyfile\'s limit');
	const caddyfile = readFileSync(path.join(ROOT, 'Caddyfile'), 'utf8');
	// The public site's (the first); the operations site's comes after.
	const limit = /request_body\s*\{\s*max_size\s+(\S+)/.exec(caddyfile);
	assert.equal(said[1], limit[1]);
});

test('beep-signal.env: the Redis URL as --help gives it', async () => {
	const r = await runBinary(['--help']);
	const help = /--redis-url[^\n]*\n\s+cluster: (\S+) or (\S+)/.exec(r.stdout);
	assert.ok(help, r.stdout);
	const comment = commentOf('BEEP_REDIS_URL');
	for (const form of [help[1], help[2]])
		assert.ok(comment.includes(form), `beep-signal.env's comment ` +
		    `gives ${form}: ${comment}`);
	assert.match(comment, /percent-encoded/);
});

test('beep-signal.env: every setting --help lists, at its default', async () => {
	const r = await runBinary(['--help']);
	const opts = [...r.stdout.matchAll(
	    /^\s+--\S+\s+(BEEP_[A-Z0-9_]+)\s+default: ?(.*)$/gm)];
	assert.ok(opts.length > 40, r.stdout);
	for (const [, name, def] of opts) {
		// The configuration file's own path is the unit's to set.
		if (name === 'BEEP_CONFIG')
			continue;
		const lines = env.split('\n').filter((l) =>
		    l.startsWith(`#${name}=`));
		assert.ok(lines.length > 0, `beep-signal.env has #${name}=`);
		// A setting with a default is shown at it (or with an example
		// beside it, as the origins and key files are).
		if (def !== '' && def !== '(none)')
			assert.ok(lines.some((l) => l === `#${name}=${def}`) ||
			    lines.length > 0 && !/^\d+$/.test(def),
			    `#${name}= at --help's default ${def}: ${lines}`);
	}
});
