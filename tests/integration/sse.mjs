// Server-sent events on the client side: a WHATWG event-stream parser and a
// stream reader over node:http with awaitable events. No I/O in the parser.

import http from 'node:http';

// ---------------------------------------------------------------------------
// WHATWG event-stream parser (HTML Living Standard, "Server-sent events",
// "Interpreting an event stream"). Fed with decoded text; lines end at CRLF,
// LF or CR (also when a CR ends one chunk and LF starts the next).

export class EventStreamParser {
	constructor({ onEvent = () => {}, onComment = () => {},
	    onRetry = () => {}, onField = () => {} } = {}) {
		this.onEvent = onEvent;
		this.onComment = onComment;
		this.onRetry = onRetry;
		this.onField = onField;
		this.line = '';
		this.skipLF = false;
		this.data = '';
		this.eventType = '';
		this.lastEventId = '';
		// EventSource's "last event ID string": the buffer's value at
		// the last blank line, what a reconnect sends as Last-Event-ID
		// (WHATWG). An id: line of an event still arriving is not it.
		this.resumeId = '';
		this.retry = null;
	}

	feed(text) {
		let i = 0;
		if (this.skipLF && text.length > 0) {
			if (text.charCodeAt(0) === 10)
				i = 1;
			this.skipLF = false;
		}
		let start = i;
		for (; i < text.length; i++) {
			const c = text.charCodeAt(i);
			if (c !== 10 && c !== 13)
				continue;
			const line = this.line + text.slice(start, i);
			this.line = '';
			if (c === 13) {
				if (i + 1 < text.length) {
					if (text.charCodeAt(i + 1) === 10)
						i++;
				} else {
					this.skipLF = true;
				}
			}
			start = i + 1;
			this.processLine(line);
		}
		this.line += text.slice(start);
	}

	processLine(line) {
		if (line === '') {
			this.dispatch();
			return;
		}
		if (line.charCodeAt(0) === 58) {       // ':'
			this.onComment(line.slice(1));
			return;
		}
		let field, value;
		const colon = line.indexOf(':');
		if (colon < 0) {
			field = line;
			value = '';
		} else {
			field = line.slice(0, colon);
			value = line.slice(colon + 1);
			if (value.charCodeAt(0) === 32)
				value = value.slice(1);
		}
		this.onField(field, value);
		switch (field) {
		case 'event':
			this.eventType = value;
			break;
		case 'data':
			this.data += value + '\n';
			break;
		case 'id':
			if (!value.includes('\0'))
				this.lastEventId = value;
			break;
		case 'retry':
			if (/^[0-9]+$/.test(value)) {
				this.retry = parseInt(value, 10);
				this.onRetry(this.retry);
			}
			break;
		default:
			break;                        // ignored per spec
		}
	}

	dispatch() {
		this.resumeId = this.lastEventId;
		if (this.data === '') {
			this.eventType = '';
			return;
		}
		const data = this.data.slice(0, -1);
		const type = this.eventType || 'message';
		this.data = '';
		this.eventType = '';
		this.onEvent({ type, data, lastEventId: this.lastEventId });
	}
}

// ---------------------------------------------------------------------------
// SSE client over node:http (one connection per stream, closed by close()).

export class SseStream {
	// Opens a stream; resolves once the response headers arrived. For a
	// non-200 answer the body is collected: await s.done, then s.rawText.
	// It reads JSON too, as beep-signal.js does, so a refusal comes as a
	// status (429, 503); headers: { Accept: 'text/event-stream' } asks as
	// EventSource does, which gets a refusal as an event stream instead.
	static open(base, reqPath, { headers = {}, timeout = 10000 } = {}) {
		const u = new URL(base);
		return new Promise((resolve, reject) => {
			const req = http.request({
				host: u.hostname, port: Number(u.port), method: 'GET',
				path: reqPath, agent: false,
				headers: { Accept: 'text/event-stream, application/json',
				    ...headers },
			});
			const timer = setTimeout(() => req.destroy(
			    new Error(`hang guard: no response headers for ${reqPath} ` +
			    `within ${timeout} ms`)), timeout);
			req.on('error', (e) => { clearTimeout(timer); reject(e); });
			req.on('response', (res) => {
				clearTimeout(timer);
				resolve(new SseStream(req, res, reqPath));
			});
			req.end();
		});
	}

	constructor(req, res, reqPath) {
		this.req = req;
		this.res = res;
		this.path = reqPath;
		this.status = res.statusCode;
		this.headers = res.headers;
		this.events = [];          // queued, not yet taken by nextEvent()
		this.received = 0;         // events seen in total, but positions
		this.positions = [];       // the "position" events seen
		this.comments = 0;
		this.commentTexts = [];
		this.retry = null;         // last retry value seen
		this.retries = [];         // every retry value, in order
		this.fields = [];          // every field line seen: [name, value]
		this.rawText = '';         // raw decoded text (capped)
		this.ended = false;
		this.endReason = null;
		this.waiters = new Set();
		this.decoder = new TextDecoder('utf-8');
		this.parser = new EventStreamParser({
			onEvent: (ev) => {
				// Where the stream starts: an event of its own name,
				// empty data, that the service sends first on every
				// stream (Firefox and WebKit take an id only from an
				// event they dispatch). Not one of the messages.
				if (ev.type === 'position') {
					this.positions.push(ev);
					this.wake();
					return;
				}
				this.received++;
				this.events.push(ev);
				this.wake();
			},
			onComment: (c) => {
				this.comments++;
				if (this.commentTexts.length < 1000)
					this.commentTexts.push(c);
				this.wake();
			},
			onRetry: (ms) => {
				this.retry = ms;
				this.retries.push(ms);
				this.wake();
			},
			onField: (f, v) => {
				if (this.fields.length < 10000)
					this.fields.push([f, v]);
			},
		});
		this.done = new Promise((resolve) => {
			const finish = (reason) => {
				if (this.ended)
					return;
				const tail = this.decoder.decode();
				if (tail)
					this.feedText(tail);
				this.ended = true;
				this.endReason = reason;
				this.wake();
				resolve(reason);
			};
			res.on('end', () => finish('end'));
			res.on('close', () => finish('close'));
			res.on('error', (e) => finish(`error: ${e.message}`));
			req.on('error', (e) => finish(`error: ${e.message}`));
		});
		res.on('data', (chunk) =>
		    this.feedText(this.decoder.decode(chunk, { stream: true })));
	}

	feedText(text) {
		if (this.rawText.length < 65536)
			this.rawText += text;
		this.parser.feed(text);
	}

	wake() {
		for (const w of [...this.waiters])
			w();
	}

	// Waits until pred() holds; rejects if the stream ends first (unless
	// pred holds then) or after `timeout` ms (a hang guard).
	waitFor(pred, { timeout = 10000, what = 'condition' } = {}) {
		return new Promise((resolve, reject) => {
			const check = () => {
				let v;
				try { v = pred(); } catch (e) { cleanup(); reject(e); return; }
				if (v) {
					cleanup();
					resolve(v);
				} else if (this.ended) {
					cleanup();
					reject(new Error(`${this.path}: stream ended ` +
					    `(${this.endReason}) while waiting for ${what}`));
				}
			};
			const timer = setTimeout(() => {
				cleanup();
				reject(new Error(`${this.path}: hang guard: no ${what} ` +
				    `within ${timeout} ms`));
			}, timeout);
			const cleanup = () => {
				clearTimeout(timer);
				this.waiters.delete(check);
			};
			this.waiters.add(check);
			check();
		});
	}

	// The next event ({type, data, lastEventId}); rejects when the stream
	// ends first or after `timeout` ms.
	async nextEvent(timeout = 10000) {
		await this.waitFor(() => this.events.length > 0,
		    { timeout, what: 'event' });
		return this.events.shift();
	}

	// The events ({ type, data }) up to the one whose data is `end`, that
	// one left out; rejects as nextEvent() does (`timeout` ms for each).
	async eventsUntil(end, timeout = 15000) {
		const got = [];
		for (;;) {
			const e = await this.nextEvent(timeout);
			if (e.data === end)
				return got;
			got.push({ type: e.type, data: e.data });
		}
	}

	// Waits until at least n comments arrived in total.
	waitComments(n = 1, timeout = 10000) {
		return this.waitFor(() => this.comments >= n,
		    { timeout, what: `${n} comment(s)` });
	}

	// Waits for the stream to end (by the server); resolves the reason.
	waitEnd(timeout = 10000) {
		return this.waitFor(() => this.ended && (this.endReason || true),
		    { timeout, what: 'end of stream' }).catch((e) => {
			if (this.ended)
				return this.endReason;
			throw e;
		});
	}

	// Collects the whole body of a non-streaming (error) answer.
	async text(timeout = 10000) {
		await this.waitEnd(timeout);
		return this.rawText;
	}

	close() {
		this.req.destroy();
		this.res.destroy();
	}
}
