// GET /ice-servers hands out TURN REST credentials for coturn's
// use-auth-secret: username "<expiry>:<user>". coturn (Debian 12's 4.6.1)
// refuses with 400 ("check_stun_auth: wrong username" in its log) every
// username that holds a space, a quote, a backslash, or both "union" and
// "select" (its is_secure_string(), a guard against SQL injection into its
// user databases), whatever the secret says. Ids allow all of these, so a
// user named "Mary Ann" or "O'Brien" (a name typed on the call page, a
// token's sub) never gets a relay: behind a symmetric NAT every call of
// theirs fails, while everyone else's connects.
//
// Real Chromium (Debian's, driven by playwright-core from tests/browser/)
// gathers relay-only candidates against a real coturn with the credentials
// the real backend hands out through Caddy.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from './harness.mjs';
import { TURNSERVER, startCoturn } from './fronts.mjs';
import { browserSkip, launchChromium } from './callpage.mjs';

const T = { timeout: 90000 };
const skip = browserSkip([TURNSERVER]);

test('/ice-servers credentials get a relay from coturn for every user name',
    { ...T, skip }, async (t) => {
	const turn = await startCoturn(t);
	const stack = await startStack({ env: {
		BEEP_TURN_URLS: `turn:127.0.0.1:${turn.port}?transport=udp`,
		BEEP_TURN_SECRET: turn.secret,
		BEEP_TURN_TTL: '600',
	} }, t);
	const browser = await launchChromium(t);
	const page = await (await browser.newContext()).newPage();
	await page.goto('about:blank');
	const refused = [];
	for (const user of ['alice', 'Mary Ann', "O'Brien", 'back\\slash',
	    'Reunion Selection']) {
		const r = await fetch(`${stack.base}/ice-servers?user=` +
		    encodeURIComponent(user));
		assert.equal(r.status, 200, user);
		const { iceServers } = await r.json();
		// Relay candidates only: gathering ends with one, or with
		// coturn's error.
		const got = await page.evaluate(async (servers) => {
			const pc = new RTCPeerConnection({ iceServers: servers,
			    iceTransportPolicy: 'relay' });
			const errors = [];
			let relays = 0;
			pc.onicecandidateerror = (e) =>
			    errors.push(`${e.errorCode} ${e.errorText}`);
			pc.onicecandidate = (e) => {
				if (e.candidate && / typ relay /.test(e.candidate.candidate))
					relays++;
			};
			pc.createDataChannel('probe');
			const done = new Promise((resolve) => {
				pc.onicegatheringstatechange = () => {
					if (pc.iceGatheringState === 'complete')
						resolve();
				};
			});
			await pc.setLocalDescription();
			await done;
			pc.close();
			return { relays, errors };
		}, iceServers);
		if (got.relays === 0)
			refused.push(`${JSON.stringify(user)} (username ` +
			    `${JSON.stringify(iceServers[0].username)}: ` +
			    `${got.errors.join(', ')})`);
	}
	assert.deepEqual(refused, [],
	    'coturn gave these users no relay: their calls fail wherever a ' +
	    'relay is needed\n' + turn.log.filter((l) =>
	    /wrong username/i.test(l)).join('\n'));
});
