// /metrics is for scrapers on an operations site, never the public one:
// the shipped Caddyfile answers 404 for it there, conf/lighttpd.conf does
// not route it to the backend, and README (Operations, Metrics) says
// "Behind nginx or lighttpd, route /metrics from a loopback-only
// server/$SERVER["socket"] the same way". conf/nginx.conf and
// conf/nginx-cluster.conf pass every path, /metrics included, to the
// backend from the public server: every client nginx sees from an address
// in BEEP_METRICS_ALLOW (loopback by default: a local TLS terminator or
// tunnel in front of nginx, a page in a browser on the host) reads the
// service's counters, users, streams, refusals and attacks included,
// through the public site. The backend's own check stays (403 for
// others), but the front was to keep the route off the public site.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rig, NGINX_CLUSTER_CONF, nginxOpts } from './fronts.mjs';

const T = { timeout: 60000 };

for (const [name, conf, sockets] of [
    ['conf/nginx.conf', undefined, undefined],
    ['conf/nginx-cluster.conf', NGINX_CLUSTER_CONF, null]]) {
	test(`${name}: /metrics is not served on the public site, as ` +
	    'through Caddy and lighttpd', T, async (t) => {
		const rig = new Rig(t, 'nginx-metrics');
		await rig.startListen();
		await rig.startNginx(nginxOpts(conf, rig.sock));
		const c = rig.client();
		// A loopback client with an address for Host: what a local
		// scraper, tunnel or terminator presents.
		const r = await c.get('/metrics');
		assert.ok(r.status !== 200 || !/^beep_/m.test(r.text),
		    `the public site served the metrics (${r.status}): ` +
		    r.text.slice(0, 120));
		assert.equal(r.status, 404, `${r.status} ${r.text.slice(0, 80)}`);
	});
}
