// Restarts behind nginx on a systemd socket: README (Deployment, systemd)
// promises "restarts that lose no request": connections made during a stop
// wait in the held socket for the next instance, and "nginx's kept
// connections, parked between requests, are closed (nginx then opens new
// ones, which queue too)".
//
// Not so with conf/nginx.conf's kept FastCGI connections (fastcgi_keep_conn
// on, keepalive 8): a stopping backend closes the connections nginx keeps,
// and a POST nginx has just sent on one of them (it has not yet seen the
// close) fails there. nginx never sends a POST again once it was sent
// (fastcgi_next_upstream has no non_idempotent), so the client gets nginx's
// HTML 502: an ICE candidate or an answer lost, and the sender cannot tell
// whether it was delivered. Measured: 1 to 4 POSTs of 4 steady posters lost
// in about half of the restarts; none with fastcgi_keep_conn off (lighttpd,
// which keeps no connection, loses none either).
//
// The race is one of timing (the POST has to reach nginx between the
// backend's close and nginx noticing it), so this restarts the backend
// several times with posters busy throughout, and asserts that no POST was
// answered 502. It fails on HEAD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uid, postPath, poll, Client } from './harness.mjs';
import { Rig, stop, READY_GUARD } from './fronts.mjs';

const GENERATIONS = 7;                 // 6 restarts
const POSTERS = 4;
const T = { timeout: 240000 };

test('nginx on a systemd socket: a restart loses no POST on a kept ' +
    'connection', T, async (t) => {
	// BEEP_RATE off: the posters' own rate (one address) is not the point.
	const rig = new Rig(t, 'nginx+restarts', { env: { BEEP_RATE: '0' } });
	// A supervisor holding the socket (fd 3, as systemd's .socket unit
	// does) that starts GENERATIONS backends on it in turn.
	const { sup, generation } = await rig.startSupervisor(
	    { generations: GENERATIONS });
	await rig.startNginx();
	const u = uid('restart');
	// A live stream is not needed: POSTs to an unknown device are answered
	// 404 by every generation, which is enough to see a POST lost.
	const counts = {};
	let answered = 0;
	let done = false;
	const clients = [];
	for (let i = 0; i < POSTERS; i++)
		clients.push(new Client(rig.base, { maxSockets: 1 }));
	t.after(() => clients.forEach((c) => c.close()));
	const posters = clients.map(async (c) => {
		while (!done) {
			let st;
			try {
				st = (await c.postJson(postPath(u, 'd'),
				    { data: 'candidate' })).status;
			} catch (e) {
				st = e.code ?? e.message;
			}
			counts[st] = (counts[st] ?? 0) + 1;
			answered++;
		}
	});
	const moreAnswers = (n) => {
		const goal = answered + n;
		return poll(() => answered >= goal,
		    { timeout: 30000, interval: 10, what: `${n} more answers` });
	};
	try {
		for (let gen = 1; gen <= GENERATIONS; gen++) {
			const backend = await generation(gen);
			await poll(() => sup.lines.filter((l) =>
			    /ready on fd:3/.test(l)).length >= gen,
			    { timeout: READY_GUARD, what: `backend ${gen} ready` });
			// Kept connections in use with this generation.
			await moreAnswers(50 * POSTERS);
			if (gen === GENERATIONS)
				break;          // the last one serves to the end
			const exit = await stop(backend, 'SIGTERM', 20000);
			assert.deepEqual([exit.code, exit.killed], [0, false],
			    `backend ${gen} stopped cleanly`);
		}
	} finally {
		done = true;
		await Promise.all(posters);
	}
	t.diagnostic(`answers over ${GENERATIONS - 1} restarts: ` +
	    JSON.stringify(counts));
	// 404: the device is unknown to each new run; 503 (the backend's
	// JSON, with Retry-After) would be a refusal the client can retry.
	assert.deepEqual(Object.keys(counts).filter((k) =>
	    k !== '404' && k !== '503'), [],
	    `POSTs lost across restarts behind nginx (kept FastCGI ` +
	    `connections closed under a POST nginx had just sent; nginx ` +
	    `does not resend a POST): ${JSON.stringify(counts)}`);
});
