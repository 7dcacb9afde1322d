// A raw FastCGI client for tests that talk to the backend's socket as a
// front would, byte by byte: to send half a request, or hold one open.
// Records per the FastCGI 1.0 specification.
import net from 'node:net';
import { once } from 'node:events';
import { withTimeout } from './harness.mjs';

// Record types.
export const BEGIN_REQUEST = 1, ABORT_REQUEST = 2, END_REQUEST = 3,
	PARAMS = 4, STDIN = 5, STDOUT = 6;
const RESPONDER = 1, KEEP_CONN = 1;

// One record: header, content, padding to a multiple of 8 bytes.
export function record(type, id, content = Buffer.alloc(0)) {
	const pad = (8 - content.length % 8) % 8;
	const h = Buffer.alloc(8);
	h[0] = 1;
	h[1] = type;
	h.writeUInt16BE(id, 2);
	h.writeUInt16BE(content.length, 4);
	h[6] = pad;
	return Buffer.concat([h, content, Buffer.alloc(pad)]);
}

// BEGIN_REQUEST for a responder, with FCGI_KEEP_CONN when keep.
export function beginRecord(id = 1, keep = false) {
	const c = Buffer.alloc(8);
	c.writeUInt16BE(RESPONDER, 0);
	c[2] = keep ? KEEP_CONN : 0;
	return record(BEGIN_REQUEST, id, c);
}

// Hands each whole record that arrives on sock to onRecord(type, content),
// keeping a partial one until the rest comes; then calls after(), once per
// chunk read.
export function readRecords(sock, onRecord, after = () => {}) {
	let buf = Buffer.alloc(0);
	sock.on('data', (d) => {
		buf = Buffer.concat([buf, d]);
		while (buf.length >= 8) {
			const len = buf.readUInt16BE(4), pad = buf[6];
			if (buf.length < 8 + len + pad)
				break;
			onRecord(buf[1], buf.subarray(8, 8 + len));
			buf = buf.subarray(8 + len + pad);
		}
		after();
	});
}

function nvLength(n) {
	if (n < 128)
		return Buffer.from([n]);
	const b = Buffer.alloc(4);
	b.writeUInt32BE((n | 0x80000000) >>> 0);
	return b;
}

// The name-value pairs of a PARAMS stream, as one buffer.
export function encodeParams(params) {
	return Buffer.concat(Object.entries(params).flatMap(([k, v]) => {
		const kb = Buffer.from(k), vb = Buffer.from(String(v));
		return [nvLength(kb.length), nvLength(vb.length), kb, vb];
	}));
}

// One connection. `send*` write records; `response` resolves when the
// request ends (END_REQUEST) or the connection closes, with
// { status, head, body, ended (END_REQUEST seen), closed }.
export class FcgiConn {
	// A connection to socketPath, destroyed after the test t; resolves
	// with it once connected.
	static async open(socketPath, t) {
		const c = new FcgiConn(socketPath);
		t.after(() => c.destroy());
		await c.connected;
		return c;
	}

	constructor(socketPath) {
		this.sock = net.connect(socketPath);
		this.sock.on('error', (e) => { this.error = e; });
		this.connected = new Promise((resolve, reject) => {
			this.sock.once('connect', resolve);
			this.sock.once('error', reject);
		});
		this.connected.catch(() => {});
		this.stdout = Buffer.alloc(0);
		this.ended = false;
		this.closed = new Promise((resolve) => this.sock.once('close', resolve));
		readRecords(this.sock, (type, content) => {
			if (type === STDOUT)
				this.stdout = Buffer.concat([this.stdout, content]);
			else if (type === END_REQUEST)
				this.ended = true;
		});
	}

	write(b) { this.sock.write(b); }
	begin(id = 1, keep = false) { this.write(beginRecord(id, keep)); }
	params(p, id = 1) {
		const all = encodeParams(p);
		if (all.length)
			this.write(record(PARAMS, id, all));
		this.write(record(PARAMS, id));
	}
	// Part of the PARAMS stream, not ended.
	paramsPart(bytes, id = 1) { this.write(record(PARAMS, id, bytes)); }
	stdin(data, id = 1) {
		const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
		if (b.length)
			this.write(record(STDIN, id, b));
	}
	endStdin(id = 1) { this.write(record(STDIN, id)); }

	// A whole request for method and uri (no body) in one write, so that
	// it has come whole when a worker looks; keep: FCGI_KEEP_CONN. What
	// came back for the connection's last request is cleared first.
	sendWhole(method, uri, keep = false) {
		this.stdout = Buffer.alloc(0);
		this.ended = false;
		this.write(Buffer.concat([beginRecord(1, keep),
		    record(PARAMS, 1, encodeParams(requestParams(method, uri))),
		    record(PARAMS, 1), record(STDIN, 1)]));
	}

	// Whether the response's head (up to its blank line) has come.
	headCame() {
		return this.stdout.toString('latin1').includes('\r\n\r\n');
	}

	// Resolves once the connection closes: what came back.
	async response() {
		await this.closed;
		const text = this.stdout.toString('latin1');
		const sep = text.indexOf('\r\n\r\n');
		const head = sep < 0 ? text : text.slice(0, sep);
		const m = /^Status: (\d+)/m.exec(head);
		return {
			status: sep < 0 ? null : m ? Number(m[1]) : 200,
			head, body: sep < 0 ? '' : text.slice(sep + 4),
			ended: this.ended,
		};
	}

	destroy() { this.sock.destroy(); }
}

// The parameters a front sends for method and uri.
export function requestParams(method, uri, extra = {}) {
	return {
		REQUEST_METHOD: method, REQUEST_URI: uri, SCRIPT_NAME: uri,
		SERVER_PROTOCOL: 'HTTP/1.1', REMOTE_ADDR: '127.0.0.1',
		GATEWAY_INTERFACE: 'CGI/1.1', ...extra,
	};
}

// Promises that resolve when a predicate over some state holds, checked
// again at each wake() (a connection's data or close): the wait of the
// raw-connection tests, with what was pending in its error.
export class Waiters {
	constructor(describe = () => '') {
		this.set = new Set();
		this.describe = describe;
	}

	wake() { for (const w of [...this.set]) w(); }

	until(pred, what, timeout) {
		return withTimeout(new Promise((resolve) => {
			const check = () => {
				if (pred()) {
					this.set.delete(check);
					resolve();
				}
			};
			this.set.add(check);
			check();
		}), timeout).catch((e) => {
			throw new Error(`${what}: ${e.message}; ${this.describe()}`);
		});
	}
}

// A connection read record by record as it comes, for requests sent one
// after another (FCGI_KEEP_CONN, as nginx) or one alone: `out`, the
// STDOUT of the request under way; `answers`, that of each request ended
// (END_REQUEST); `closed`. until() waits for a predicate over these, woken
// by each read and the close.
export class KeptConn {
	constructor(socketPath) {
		this.sock = net.connect(socketPath);
		this.sock.on('error', () => {});
		this.out = '';
		this.answers = [];
		this.closed = false;
		this.waiters = new Waiters(() => `answers ${this.answers.length}, ` +
		    `pending ${JSON.stringify(this.out.slice(0, 300))}`);
		readRecords(this.sock, (type, content) => {
			if (type === STDOUT)
				this.out += content.toString('utf8');
			if (type === END_REQUEST) {
				this.answers.push(this.out);
				this.out = '';
			}
		}, () => this.waiters.wake());
		this.sock.on('close', () => {
			this.closed = true;
			this.waiters.wake();
		});
		this.ready = once(this.sock, 'connect');
	}

	// n connections to socketPath, once connected.
	static async open(socketPath, n) {
		const conns = Array.from({ length: n },
		    () => new KeptConn(socketPath));
		await Promise.all(conns.map((c) => c.ready));
		return conns;
	}

	// Whether a request has ended (END_REQUEST seen).
	get ended() { return this.answers.length > 0; }

	until(pred, what, timeout = 20000) {
		return this.waiters.until(pred, what, timeout);
	}

	// The records of a whole request (the body's end included), with
	// FCGI_KEEP_CONN unless keep is false.
	static request(method, uri, body = '', { keep = true } = {}) {
		const b = Buffer.from(body);
		const params = requestParams(method, uri, body ? {
			CONTENT_TYPE: 'application/json', CONTENT_LENGTH: b.length,
		} : {});
		return Buffer.concat([
			beginRecord(1, keep),
			record(PARAMS, 1, encodeParams(params)), record(PARAMS, 1),
			...(b.length ? [record(STDIN, 1, b)] : []), record(STDIN, 1),
		]);
	}

	// Sends a whole request; resolves its answer once END_REQUEST comes,
	// and fails if the connection closes first.
	async ask(method, uri, body = '') {
		const n = this.answers.length;
		this.write(KeptConn.request(method, uri, body));
		await this.until(() => this.answers.length > n || this.closed,
		    `${method} ${uri}`);
		if (this.answers.length <= n)
			throw new Error(`${method} ${uri}: closed`);
		return this.answers[n];
	}

	write(b) { this.sock.write(b); }
	destroy() { this.sock.destroy(); }
}
