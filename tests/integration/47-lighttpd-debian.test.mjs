// conf/lighttpd.conf as Debian 12 runs it: included from the stock
// /etc/lighttpd/lighttpd.conf (fronts.mjs writes its settings around it),
// whose url.access-deny = ( "~", ".inc" ) (mod_access, loaded before
// mod_fastcgi) answers 403 itself for every path that ends so. An id is
// any 1 to 256 bytes of UTF-8 without controls: a device named "phone~" or
// "notes.inc" must reach the backend like any other, and a 403 would end
// its EventSource for good.
//
// Environment: BEEP_BIN (backend binary), BEEP_TEST_DEBUG=1 (echo the logs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uid, subPath, postPath, listPath, enc } from './harness.mjs';
import { Rig } from './fronts.mjs';

const T = { timeout: 60000 };

test('lighttpd under Debian\'s lighttpd.conf: ids ending in "~" or ".inc" reach the backend',
    T, async (t) => {
	const rig = new Rig(t, 'lighttpd-debian');
	await rig.startListen();
	await rig.startLighttpd();
	const c = rig.client();
	const u = uid('deny');
	for (const dev of ['phone~', 'notes.inc', 'x.INC']) {
		// As EventSource asks: a 403 here would be final.
		const s = await rig.open(subPath(u, dev),
		    { headers: { Accept: 'text/event-stream' } });
		assert.equal(s.status, 200,
		    `subscribe ${dev}: ${s.status} ${s.status === 200 ? '' :
		    await s.text()}`);
		await s.waitComments(1, 5000);
		const r = await c.postJson(postPath(u, dev), { data: `to ${dev}` });
		assert.equal(r.status, 200, `POST ${dev}: ${r.status} ${r.text}`);
		assert.equal((await s.nextEvent(5000)).data, `to ${dev}`);
		s.close();
	}
	// The same ids spelled with %7E, and a user whose id ends so.
	const s = await rig.open(`/subscribe/${enc(u)}/device/tilde%7E`,
	    { headers: { Accept: 'text/event-stream' } });
	assert.equal(s.status, 200, 'subscribe tilde%7E');
	s.close();
	const l = await c.get(listPath(`${u}~`));
	assert.equal(l.status, 200, `list ${u}~: ${l.text}`);
	// Outside the API, Debian's rule still stands.
	assert.equal((await c.get('/backup~')).status, 403);
	rig.checkBackendLog();
});
