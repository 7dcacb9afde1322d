// CORS: default '*' on every response; with an allow-list the request's Origin
// is echoed (with Vary: Origin) only when listed; preflight OPTIONS -> 204 on
// every route with the route's methods and Content-Type among allowed headers.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useStack, uid, postPath, listPath, subPath } from './harness.mjs';
import { FcgiConn, requestParams } from './fcgi.mjs';

const T = { timeout: 30000 };

const ROUTES = [
	['/healthz', ['GET']],
	[subPath('u', 'd'), ['GET']],
	[listPath('u'), ['GET']],
	[postPath('u', 'd'), ['POST']],
];

const tokens = (v) => (v || '').split(',').map((x) => x.trim().toUpperCase())
    .filter(Boolean);

// One of each kind of answer, with optional extra headers; returns
// [label, {status, headers}] pairs. Streams are closed after the headers.
async function sampleAnswers(stack, headers = {}) {
	const c = stack.client();
	const u = uid('user'), d = uid('dev');
	const out = [];
	const s = await stack.open(subPath(u, d), { headers });
	assert.equal(s.status, 200);
	await s.waitComments(1);
	out.push(['subscribe 200', s]);
	const json = { 'Content-Type': 'application/json', ...headers };
	out.push(['healthz 200', await c.get('/healthz', { headers })]);
	out.push(['list 200', await c.get(listPath(u), { headers })]);
	out.push(['post 200', await c.request('POST', postPath(u, d),
	    { headers: json, body: '{"data":"x"}' })]);
	out.push(['post 404', await c.request('POST', postPath(u, 'nope'),
	    { headers: json, body: '{"data":"x"}' })]);
	out.push(['post 400', await c.request('POST', postPath(u, d),
	    { headers: json, body: '{}' })]);
	out.push(['post 415', await c.request('POST', postPath(u, d),
	    { headers: { ...headers, 'Content-Type': 'text/plain' }, body: 'x' })]);
	out.push(['post 413', await c.request('POST', postPath(u, d),
	    { headers: json, body: JSON.stringify({ data: 'x'.repeat(70000) }) })]);
	out.push(['path 404', await c.get('/nope', { headers })]);
	out.push(['method 405', await c.get(postPath(u, d), { headers })]);
	out.push(['id 400', await c.get(listPath(''), { headers })]);
	out.push(['preflight 204', await c.options(postPath(u, d), {
		headers: { ...headers, 'Access-Control-Request-Method': 'POST',
		    'Access-Control-Request-Headers': 'content-type' },
	})]);
	const statuses = out.map(([l, r]) => `${l}:${r.status}`);
	for (const [label, r] of out)
		assert.equal(String(r.status), label.split(' ')[1],
		    `sample ${label} (${statuses.join(' ')})`);
	s.close();
	return out;
}

describe('default BEEP_CORS_ORIGINS=*', () => {
	const h = useStack({ before, after });

	test('every response has Access-Control-Allow-Origin: *', T, async () => {
		for (const headers of [{}, { Origin: 'https://anywhere.example' }]) {
			for (const [label, r] of await sampleAnswers(h.stack, headers)) {
				assert.equal(r.headers['access-control-allow-origin'], '*',
				    `${label} with ${JSON.stringify(headers)}`);
			}
		}
	});

	test('preflight OPTIONS -> 204 on each route', T, async () => {
		const c = h.stack.client();
		for (const [p, methods] of ROUTES) {
			const r = await c.options(p, { headers: {
				Origin: 'https://app.example',
				'Access-Control-Request-Method': methods[0],
				'Access-Control-Request-Headers': 'content-type',
			} });
			assert.equal(r.status, 204, `OPTIONS ${p}: ${r.text}`);
			assert.equal(r.body.length, 0, `OPTIONS ${p}: empty body`);
			const allowed = tokens(r.headers['access-control-allow-methods']);
			for (const m of methods)
				assert.ok(allowed.includes(m), `OPTIONS ${p}: ` +
				    `Allow-Methods ${r.headers['access-control-allow-methods']}` +
				    ` has ${m}`);
			const hdrs = tokens(r.headers['access-control-allow-headers']);
			assert.ok(hdrs.includes('CONTENT-TYPE'), `OPTIONS ${p}: ` +
			    `Allow-Headers ${r.headers['access-control-allow-headers']}`);
			assert.equal(r.headers['access-control-allow-origin'], '*');
			// A plain OPTIONS (no preflight headers) is also fine.
			const plain = await c.options(p);
			assert.equal(plain.status, 204, `plain OPTIONS ${p}`);
		}
	});

	test('a preflight does not create a stream', T, async () => {
		const c = h.stack.client();
		const u = uid('user');
		const r = await c.options(subPath(u, 'd'));
		assert.equal(r.status, 204);
		assert.deepEqual(await c.devices(u), []);
	});

	// Straight from the backend (a front may mend its head): a 204 has
	// no body and no Content-Length (RFC 9110, 8.6).
	test('a preflight\'s 204 has no Content-Length', T, async () => {
		const conn = new FcgiConn(h.stack.socket);
		await conn.connected;
		conn.begin();
		conn.params(requestParams('OPTIONS', postPath(uid('user'), 'd'), {
			HTTP_ORIGIN: 'https://app.example',
			HTTP_ACCESS_CONTROL_REQUEST_METHOD: 'POST',
		}));
		conn.endStdin();
		const r = await conn.response();
		assert.equal(r.status, 204, r.head);
		assert.match(r.head, /^Access-Control-Allow-Methods: /m);
		assert.doesNotMatch(r.head, /^Content-Length:/im);
		assert.equal(r.body, '');
	});
});

describe('allow-list BEEP_CORS_ORIGINS', () => {
	const A = 'https://a.example', B = 'http://b.example:8080';
	const h = useStack({ before, after },
	    { env: { BEEP_CORS_ORIGINS: `${A},${B}` } });

	test('listed origins are echoed with Vary: Origin', T, async () => {
		for (const origin of [A, B]) {
			for (const [label, r] of await sampleAnswers(h.stack,
			    { Origin: origin })) {
				assert.equal(r.headers['access-control-allow-origin'], origin,
				    `${label} from ${origin}`);
				assert.ok(tokens(r.headers.vary).includes('ORIGIN'),
				    `${label} from ${origin}: Vary ${r.headers.vary}`);
			}
		}
	});

	test('other or missing origins get no ACAO header', T, async () => {
		for (const headers of [{ Origin: 'https://c.example' },
		    { Origin: 'https://a.example.evil' }, { Origin: 'null' },
		    { Origin: 'http://a.example' }, {}]) {
			for (const [label, r] of await sampleAnswers(h.stack, headers)) {
				assert.equal(r.headers['access-control-allow-origin'],
				    undefined, `${label} with ${JSON.stringify(headers)}`);
			}
		}
	});

	test('preflight from a listed origin', T, async () => {
		const c = h.stack.client();
		for (const [p, methods] of ROUTES) {
			const r = await c.options(p, { headers: { Origin: A,
			    'Access-Control-Request-Method': methods[0] } });
			assert.equal(r.status, 204, `OPTIONS ${p}`);
			assert.equal(r.headers['access-control-allow-origin'], A);
			for (const m of methods)
				assert.ok(tokens(r.headers['access-control-allow-methods'])
				    .includes(m), `OPTIONS ${p} methods`);
			assert.ok(tokens(r.headers['access-control-allow-headers'])
			    .includes('CONTENT-TYPE'), `OPTIONS ${p} headers`);
		}
	});
});
