// beep-signal.js: the browser client of beep-signal. A dependency-free ES
// module; see the README's "Browser client" section.
//
//   import { connect } from "/beep-signal.js";
//   const sig = connect({ base: "", user: "alice", device: "laptop", token });
//   sig.on("offer", (data, meta) => {});  // meta = { id, from, event }
//   sig.on("reset", (reason) => {});      // messages were lost: ICE restart
//   sig.on("state", (state, info) => {}); // "connecting" | "open" | "closed"
//   await sig.send("bob", "phone", data, { event: "offer" });  // {id, held}
//   sig.send("bob", "phone", bye, { event: "hangup", keepalive: true });
//                                         // from pagehide: outlives the page
//   await sig.devices("bob");             // ["phone", ...]
//   await sig.iceServers();               // RTCIceServer[]
//   sig.close();
//
// The stream is read with fetch(), not EventSource, so that the client sees
// status codes and headers: it reconnects with the last event id (the
// Last-Event-ID header) after the stream ends or the network fails, as
// EventSource does, and also after an answer it can recover from (429, 502,
// 503, 504: after Retry-After or a growing delay), where EventSource would
// give up for good; in a browser, also at once when it is back online.
// When the page is frozen (the Page Lifecycle API's `freeze`, Chromium's: a
// tab in the background, a page going into the back-forward cache) it
// closes the stream, and opens it again with the last id when the page
// resumes, once: while the page runs no JavaScript the service takes the
// device for away, holds what comes for it (202) for its grace window and
// delivers it on resume; a stream left open would take it (200) for a page
// that cannot read it, and get it again on resume only within the replay
// window (30 s), else a reset. It
// stops for good ("closed" with a reason) on an answer that no retry can
// change (400, 401, 403, 404; a 401 is retried when the page can renew its
// credentials: see renewable()) and when the service says a newer stream of
// the same device replaced this one. Every request, and a stream's response
// head, has `timeout` (10 s) to answer before it is given up and retried;
// a send carries an idempotency key, the same on each attempt, so one
// retried after its answer was lost arrives once (not past the device's
// replay window, nor while a cluster's Redis is down: messages should be
// idempotent). A
// send's attempts go on within `sendWait` (15 s) after it was made; one
// that fails while the browser is offline waits for it to be online
// again (`offlineWait`, 30 s) before its attempts go on.
// close() ends the requests in flight. The token, when given,
// goes in an Authorization: Bearer header on every request, the stream
// included, so it never appears in a URL (or an access log).

const DEFAULT_RETRY_MS = 2000;   // before reconnecting after a clean end
const MIN_BACKOFF_MS = 500;      // after a failure, doubling...
const MAX_BACKOFF_MS = 30000;    // ...up to this
const SEND_ATTEMPTS = 3;         // a request is retried on transient failures
// A send is retried on transient failures for this long after it was
// made (sendWait), every SEND_BACKOFF_MS at most: a network gone for a
// few seconds while the browser says it is online (a hand-over from Wi-Fi
// to cellular, a dead access point) fails every attempt at once, and
// three attempts (some 3 s) lost messages an ICE restart would have
// outlived.
const SEND_WAIT_MS = 15000;
const SEND_BACKOFF_MS = 2000;
const TIMEOUT_MS = 10000;        // an answer (a stream's head) within this
// A send that fails with no answer while the browser is offline waits for
// it to be back online, up to this long after the send was made.
const OFFLINE_WAIT_MS = 30000;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout()'s longest delay
const TRANSIENT = new Set([429, 502, 503, 504]);
// Event names the client raises itself; a stream event with one of these
// names (anyone may post any name) is not passed on.
const LOCAL_EVENTS = new Set(["state", "error"]);

// A stream that has been silent this long is taken for dead, by default:
// a connection that dies without a word (a NAT that forgets it, a phone
// that changes networks) is otherwise noticed only when TCP gives up
// retransmitting, some 15 minutes later, and the device misses its calls
// until then.  By default three of the keepalives the service names in
// its first comment (12 s at its default, 4 s): what is posted meanwhile
// went to the dead connection, and the service keeps it for replay only
// BEEP_REPLAY_SECONDS (30 s) after that, so a client that looked again
// later (60 s, until 2026-12-06) came back to a reset for what it could
// have had.  IDLE_MS until the service has named its keepalive.
const IDLE_MS = 60000;
const IDLE_KEEPALIVES = 3;
const RESUME_PREFIX = "beep-signal:";

const enc = encodeURIComponent;
const jitter = (ms) => Math.round(ms * (0.75 + Math.random() * 0.5));
// An idempotency key for a send: 128 random bits in hex. The same on
// each of its attempts, so that the service answers one whose first
// attempt got through (only its answer was lost) with that one's id
// rather than delivering it twice. getRandomValues, not randomUUID, which
// a page served over plain HTTP lacks.
function sendKey() {
	const b = new Uint8Array(16);
	if (globalThis.crypto?.getRandomValues)
		globalThis.crypto.getRandomValues(b);
	else
		for (let i = 0; i < b.length; i++)
			b[i] = Math.floor(Math.random() * 256);
	return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// Retry-After is the earliest time to come back: clients refused together
// would all come back in the same millisecond, so each waits up to as long
// again (as the service's own retry: field varies).
const afterRetry = (ms) => Math.round(ms * (1 + Math.random()));

// p, or an AbortError once signal aborts: a token function that never
// settles must not hold a request past its deadline, or past close().
function untilAborted(p, signal) {
	const aborted = () => new DOMException("aborted", "AbortError");
	if (signal.aborted) {
		// Aborted while p was made (a token function that called
		// close()): its failure is no one's to handle.
		p.catch(() => {});
		return Promise.reject(aborted());
	}
	return new Promise((resolve, reject) => {
		const onAbort = () => reject(aborted());
		signal.addEventListener("abort", onAbort, { once: true });
		p.then((v) => {
			signal.removeEventListener("abort", onAbort);
			resolve(v);
		}, (e) => {
			signal.removeEventListener("abort", onAbort);
			reject(e);
		});
	});
}

// Where the browser says it is back online ("online"): the window, a
// worker's global scope; null when nothing can say so (not a browser).
function onlineTarget() {
	const t = typeof window !== "undefined" ? window : globalThis;
	return typeof t.addEventListener === "function" ? t : null;
}

// The browser knows it has no network (navigator.onLine is false: no
// interface up; true proves nothing) and will say when it has one.
function offline() {
	return globalThis.navigator?.onLine === false && onlineTarget() !== null;
}

// The tab's sessionStorage, or null (not a browser; storage refused, as in
// a sandboxed frame).
function tabStorage() {
	try {
		return typeof sessionStorage !== "undefined" ? sessionStorage : null;
	} catch {
		return null;
	}
}

// The id a page of this tab left key's stream at, however long ago (the
// client that takes it keeps it again at once, and then its own as it
// comes: a page may be killed without a pagehide).  Not only lately: the
// service knows what became of what was posted meanwhile (replayed, or
// lost: a reset) and the page does not; without the id a page back after
// the service's windows (its replay, the device's grace) started afresh,
// silently past what was held for it and dropped, or taken by the old
// page's stream before the service saw it go.  A page back hours later
// may be told of a loss that cost it nothing (a reset): the price of
// never being left untold.
function takeResume(key) {
	const store = tabStorage();
	if (!store)
		return "";
	try {
		const saved = JSON.parse(store.getItem(key) || "null");
		store.removeItem(key);
		if (saved && typeof saved.id === "string")
			return saved.id;
	} catch { /* none, or not ours */ }
	return "";
}

// The error a request rejects with: message from the service's
// {"error": "..."} body, status, and Retry-After in ms when sent;
// offlineMs: for a send that gave up waiting for the network, the wait
// (offlineWait, in ms), else 0, for a page to word it without reading
// the message.
export class SignalError extends Error {
	constructor(message, status = 0, retryAfterMs = 0, offlineMs = 0) {
		super(message);
		this.name = "SignalError";
		this.status = status;
		this.retryAfterMs = retryAfterMs;
		this.offlineMs = offlineMs;
	}
}

async function errorOf(res, what) {
	let why = `${res.status} ${res.statusText || ""}`.trim();
	try {
		const body = await res.json();
		if (body && typeof body.error === "string")
			why = body.error;
	} catch { /* not JSON: keep the status */ }
	const ra = Number(res.headers.get("Retry-After"));
	return new SignalError(`${what}: ${why}`, res.status,
	    Number.isFinite(ra) && ra > 0 ? ra * 1000 : 0);
}

// A WHATWG event-stream parser: feed it text, it calls onEvent(type, data,
// lastEventId) for each event, onRetry(ms) for each retry field. It also
// tracks the last event id, which an `id:` line sets even without data.
// lastEventId: the id the connection resumes from, kept until an `id:`
// line sets another (WHATWG: the buffer "does not get reset" between
// connections), so that an event without an id has it.
export class EventStreamParser {
	constructor(onEvent, onRetry, onComment, lastEventId = "") {
		this.onEvent = onEvent;
		this.onRetry = onRetry;
		this.onComment = onComment;
		this.buf = "";
		this.sawCR = false;
		this.data = "";
		this.type = "";
		this.idBuf = null;
		this.lastEventId = lastEventId;
	}

	feed(text) {
		let s = text;
		// A CR at the end of the last chunk and an LF at the start of
		// this one are one line break, also with an empty chunk (a
		// read of no bytes, or of part of a UTF-8 sequence) between.
		if (s === "")
			return;
		if (this.sawCR && s.startsWith("\n"))
			s = s.slice(1);
		this.sawCR = false;
		this.buf += s;
		let start = 0;
		for (;;) {
			const m = /\r\n|\r|\n/g;
			m.lastIndex = start;
			const hit = m.exec(this.buf);
			if (!hit)
				break;
			// A lone CR at the very end may be half of a CRLF.
			if (hit[0] === "\r" && hit.index === this.buf.length - 1)
				this.sawCR = true;
			this.line(this.buf.slice(start, hit.index));
			start = hit.index + hit[0].length;
		}
		this.buf = this.buf.slice(start);
	}

	line(line) {
		if (line === "") {
			this.dispatch();
			return;
		}
		if (line.startsWith(":")) {
			this.onComment?.(line.slice(1).trim());
			return;
		}
		const colon = line.indexOf(":");
		let field = line, value = "";
		if (colon >= 0) {
			field = line.slice(0, colon);
			value = line.slice(colon + 1);
			if (value.startsWith(" "))
				value = value.slice(1);
		}
		switch (field) {
		case "event": this.type = value; break;
		case "data": this.data += value + "\n"; break;
		case "id": if (!value.includes("\0")) this.idBuf = value; break;
		case "retry": if (/^[0-9]+$/.test(value)) this.onRetry(Number(value)); break;
		default: break;
		}
	}

	dispatch() {
		if (this.idBuf !== null)
			this.lastEventId = this.idBuf;
		this.idBuf = null;
		const { data, type } = this;
		this.data = "";
		this.type = "";
		if (data === "")
			return;
		this.onEvent(type || "message", data.slice(0, -1), this.lastEventId);
	}
}

class Signal {
	constructor(opts) {
		if (!opts || !opts.user || !opts.device)
			throw new TypeError("connect: user and device are required");
		this.base = (opts.base || "").replace(/\/+$/, "");
		this.user = String(opts.user);
		this.device = String(opts.device);
		this.token = opts.token;                 // string or (async) function
		this.envelope = opts.envelope !== false; // exact data and the sender
		// Cookies: the page's own origin by default; "include" for cookie
		// auth across origins (with BEEP_CORS_ORIGINS).
		this.credentials = opts.credentials || "same-origin";
		// A stream silent this long (no event, no keepalive comment) is
		// taken for dead (a NAT forgot it, a phone changed networks
		// without a word) and reopened; 0: never; null (the default):
		// three of the service's keepalives (IDLE_MS until it names
		// them).
		this.idleTimeout = opts.idleTimeout ?? null;
		// A page reloaded, or left and come back to, resumes where
		// the last one left (resume: false, never). Behind a front that
		// learns a client has gone only at its next writes (Caddy: a
		// few seconds), a message posted meanwhile went to the old
		// page's dead stream; a stream without an id would start after
		// it, and it would be lost.
		this.resumeKey = opts.resume === false || !tabStorage() ? null :
		    `${RESUME_PREFIX}${this.base}|${this.user}|${this.device}`;
		this.lastEventId = opts.lastEventId ||
		    (this.resumeKey ? takeResume(this.resumeKey) : "");
		// Kept again at once, and as events come (see stream()): a
		// page killed before its stream said anything new must leave
		// the next page the id it resumed from.
		this.savedId = null;
		this.saveResume();
		// An answer (a request's whole answer, a stream's head) that
		// takes longer is given up, and the request retried: a lost
		// answer must not hold up the sends queued behind it forever.
		this.timeout = opts.timeout || TIMEOUT_MS;
		// A send that fails with no answer while the browser is
		// offline (a phone between Wi-Fi and LTE, a tunnel) waits for
		// "online", this long at most after it was made, then makes
		// its attempts; 0: it fails as it did before (its three
		// attempts fail fast, some 3 s). Never unbounded: a page must
		// hear in time that its send is lost.
		// At most setTimeout()'s longest: past it the wait's timer
		// fires at once (a browser wraps it, ToInt32) and a send made
		// offline failed at once.
		this.offlineWait = opts.offlineWait ?? OFFLINE_WAIT_MS;
		if (typeof this.offlineWait !== "number" ||
		    !(this.offlineWait >= 0 &&
		    this.offlineWait <= MAX_TIMER_MS))
			throw new TypeError("connect: offlineWait must be a " +
			    `number of ms, 0 to ${MAX_TIMER_MS}`);
		// A send's attempts go on, on a transient failure (no answer,
		// 429, 502, 503, 504), this long at most after it was made
		// (each attempt's `timeout` cut to what is left, a Retry-After
		// past it failing the send at once); 0: three attempts, as
		// before. Never unbounded: a page must hear in time that its
		// send is lost.
		this.sendWait = opts.sendWait ?? SEND_WAIT_MS;
		if (typeof this.sendWait !== "number" ||
		    !(this.sendWait >= 0 && this.sendWait <= MAX_TIMER_MS))
			throw new TypeError("connect: sendWait must be a " +
			    `number of ms, 0 to ${MAX_TIMER_MS}`);
		// Aborted by close(): the requests in flight end with it.
		this.closing = new AbortController();
		this.state = "";
		this.listeners = new Map();
		this.retryMs = DEFAULT_RETRY_MS;
		this.backoffMs = MIN_BACKOFF_MS;
		this.abort = null;
		this.wake = null;
		this.hurry = false;   // reconnect() during this attempt
		this.stopped = false;
		this.opened = false;  // a stream has opened: its credentials worked
		this.lastToken = undefined; // the last a token function gave
		this.sendQueues = new Map();   // "user\0device" -> last send
		// Back online after an outage: reconnect now, not after the
		// backoff grown while offline (up to 30 s, past the service's
		// grace period for a device that is away).
		this.onOnline = () => {
			this.backoffMs = MIN_BACKOFF_MS;
			this.reconnect();
		};
		// What this page got, kept for the next one in this tab: on
		// pagehide too, though it is kept as it comes (see stream());
		// back from the back-forward cache, this page goes on instead,
		// its id kept again (another page of the tab may have taken
		// it meanwhile). A client that ended listens no more (stop()):
		// what it delivered was kept as it came, and the window must
		// not hold it, and all its listeners hold, until the page is
		// hidden (test 35). A page that closes it on pagehide, before
		// or after this would run, still resumes; one that connects
		// again on pageshow takes what the closed one kept.
		this.onPageHide = () => this.saveResume();
		this.onPageShow = () => this.saveResume();
		// A page frozen (the Page Lifecycle API's `freeze`: a tab in the
		// background, or frozen by the browser to save energy) runs no
		// JavaScript until it resumes, often minutes later. Its stream
		// would stay open, the service would go on delivering to it
		// (200 to every sender) and Chromium would buffer what came, for
		// a page that never sees it: its fetch() body read never
		// resolves again once data reached it while frozen, and on
		// `resume` the replay from the last id covers only
		// BEEP_REPLAY_SECONDS (30 s), past which the device comes back
		// to a reset. So the stream is closed on `freeze`, and opened
		// again on `resume` only: meanwhile the service sees the
		// device away, holds what comes (202) for its grace window and
		// delivers it, once, in order, on resume; after the window
		// senders get 404, which is the truth. (A pending retry's
		// timer does not run while frozen; run() waits for `resume`
		// whatever wakes it.)
		this.frozen = false;
		this.onFreeze = () => {
			if (this.stopped)
				return;
			this.frozen = true;
			this.abort?.abort();
		};
		this.onResume = () => {
			this.frozen = false;
			this.reconnect();
		};
		if (typeof document !== "undefined") {
			document.addEventListener?.("freeze", this.onFreeze);
			document.addEventListener?.("resume", this.onResume);
		}
		if (typeof window !== "undefined") {
			window.addEventListener?.("online", this.onOnline);
			if (this.resumeKey) {
				window.addEventListener?.("pagehide", this.onPageHide);
				window.addEventListener?.("pageshow", this.onPageShow);
			}
		}
		// After the caller's on() calls, so they see "connecting".
		queueMicrotask(() => this.run());
	}

	// Listen to event `name` (an event name the service delivers, "message"
	// for unnamed ones, or "reset", "state", "error"). Returns a function
	// that removes the listener.
	on(name, fn) {
		if (!this.listeners.has(name))
			this.listeners.set(name, new Set());
		this.listeners.get(name).add(fn);
		return () => this.off(name, fn);
	}

	off(name, fn) {
		this.listeners.get(name)?.delete(fn);
	}

	emit(name, ...args) {
		for (const fn of [...(this.listeners.get(name) || [])]) {
			try {
				fn(...args);
			} catch (e) {
				// A listener's bug must not kill the stream.
				setTimeout(() => { throw e; });
			}
		}
	}

	setState(state, info = {}) {
		if (this.state === state)
			return;
		this.state = state;
		this.emit("state", state, info);
	}

	async headers(extra = {}) {
		const h = { ...extra };
		const t = typeof this.token === "function" ?
		    await this.token() : this.token;
		if (t)
			h.Authorization = `Bearer ${t}`;
		// For a page's last send, which cannot wait for a promise.
		if (typeof t === "string" && t)
			this.lastToken = t;
		return h;
	}

	// Whether a 401 may get better by trying again: a token function
	// hands in a fresh token; credentials the page keeps itself (a session
	// cookie: no token), once they have opened a stream, expire (the
	// service ends the stream at the token's exp) and are refreshed by the
	// page's own code, which the client cannot call, at a time it cannot
	// know (test 36). A fixed token, or credentials that never worked,
	// cannot.
	renewable() {
		return typeof this.token === "function" ||
		    (!this.token && this.opened);
	}

	// Drop the stream now and open it again with the last id, as after a
	// network change (and as the tests use it).
	reconnect() {
		if (this.stopped)
			return;
		this.hurry = true;
		this.abort?.abort();
		this.wake?.();
	}

	// The stream ends for good: no reconnecting, not even when the
	// browser is back online.  (The next page of this tab still resumes
	// from the last event delivered, kept as it came: see onPageHide.)
	stop() {
		this.stopped = true;
		// Kept now, not after the chunk: a listener that closes this
		// client and connects the device again at once has the new
		// one resume past the event it handles, not get it twice.
		if (this.lastEventId !== this.savedId)
			this.saveResume();
		if (typeof window !== "undefined") {
			window.removeEventListener?.("online", this.onOnline);
			this.unlistenPage();
		}
		if (typeof document !== "undefined") {
			document.removeEventListener?.("freeze", this.onFreeze);
			document.removeEventListener?.("resume", this.onResume);
		}
	}

	unlistenPage() {
		window.removeEventListener?.("pagehide", this.onPageHide);
		window.removeEventListener?.("pageshow", this.onPageShow);
	}

	saveResume() {
		if (!this.resumeKey || !this.lastEventId)
			return;
		try {
			tabStorage().setItem(this.resumeKey, JSON.stringify(
			    { id: this.lastEventId, at: Date.now() }));
			this.savedId = this.lastEventId;
		} catch { /* full, or refused: start afresh */ }
	}

	close(reason = "closed by the application") {
		// Requests in flight end too, also when the stream ended first.
		this.closing.abort();
		if (this.stopped)
			return;
		this.stop();
		this.abort?.abort();
		this.wake?.();
		this.setState("closed", { reason });
	}

	// Waits ms, or less when reconnect()/close() wakes it; with no ms,
	// until one of them does.
	pause(ms) {
		return new Promise((resolve) => {
			const timer = ms === undefined ? null : setTimeout(done, ms);
			function done() { clearTimeout(timer); resolve(); }
			this.wake = () => { this.wake = null; done(); };
		});
	}

	async run() {
		while (!this.stopped) {
			// Frozen: no stream until `resume` (its reconnect() wakes
			// this), also when the stream ended, or a pause before
			// the next one, just before the freeze.
			if (this.frozen) {
				this.setState("connecting");
				if (this.stopped)
					break;
				await this.pause();
				continue;
			}
			this.hurry = false;
			this.setState("connecting");
			// A state listener may have called close(): no attempt
			// after it (nor "open" after "closed"; test 35).
			if (this.stopped)
				break;
			let wait;
			try {
				wait = await this.stream();
			} catch (e) {
				if (this.stopped)
					break;
				// Status 0: no answer (network, timeout).
				if (e instanceof SignalError && e.status > 0 &&
				    !TRANSIENT.has(e.status) &&
				    e.status < 500 && !(e.status === 401 &&
				    this.renewable())) {
					this.emit("error", e);
					this.stop();
					this.setState("closed", { reason: e.message,
					    status: e.status });
					break;
				}
				if (e.name === "AbortError" &&
				    this.abort?.signal.aborted) {
					// reconnect() (or a freeze) while
					// connecting: go again now.  Not a token
					// function's own AbortError (a refresh it
					// aborted): a failure like any other, or
					// its retries at once would storm (test 31).
					wait = 0;
				} else {
					this.emit("error", e);
					wait = e.retryAfterMs ?
					    afterRetry(e.retryAfterMs) :
					    jitter(this.backoffMs);
					this.backoffMs = Math.min(this.backoffMs * 2,
					    MAX_BACKOFF_MS);
				}
			}
			if (this.stopped)
				break;
			// No stream until the next one opens: said now, not
			// after the wait (its retry:, a backoff), which a page
			// spent "open" (test 35).
			this.setState("connecting");
			if (this.stopped)
				break;
			// Also when reconnect() came where neither the abort
			// nor wake() reaches: while a refusal's body was read
			// (its Retry-After not yet waited), or from a listener.
			if (this.hurry)
				wait = 0;
			if (wait > 0 && !this.frozen)
				await this.pause(wait);
		}
	}

	// One stream: resolves with the delay before the next one when it ends
	// (cleanly or by a network error after it opened), rejects when it did
	// not open.
	async stream() {
		const q = this.envelope ? "?envelope=1" : "";
		const url = `${this.base}/subscribe/${enc(this.user)}/device/` +
		    `${enc(this.device)}${q}`;
		// JSON too: its refusals come as a status it can read (429, 503),
		// not as the event stream that EventSource gets instead.
		const extra = { Accept: "text/event-stream, application/json" };
		if (this.lastEventId)
			extra["Last-Event-ID"] = this.lastEventId;
		this.abort = new AbortController();
		const abort = this.abort;
		// A front or network that swallows the request would otherwise
		// leave the device unreachable until the page reloads.
		let late = false;
		const head = setTimeout(() => {
			late = true;
			abort.abort();
		}, this.timeout);
		let res;
		try {
			res = await fetch(url, {
				headers: await untilAborted(this.headers(extra),
				    abort.signal),
				credentials: this.credentials,
				cache: "no-store",
				signal: abort.signal,
			});
		} catch (e) {
			clearTimeout(head);
			if (late)
				throw new SignalError("subscribe: no answer within " +
				    `${this.timeout} ms`, 0);
			throw e;
		}
		// A refusal's body, too, within the attempt's time: one that
		// stalls must not hold the stream forever.
		if (res.status !== 200) {
			const e = await errorOf(res, "subscribe");
			clearTimeout(head);
			if (late)
				throw new SignalError("subscribe: no answer within " +
				    `${this.timeout} ms`, 0);
			throw e;
		}
		clearTimeout(head);
		if (!/^text\/event-stream/i.test(res.headers.get("Content-Type") || "")) {
			// Its body is not read: end it, or its connection stays
			// open for as long as the front goes on sending.
			abort.abort();
			throw new SignalError("subscribe: not an event stream", 502);
		}
		this.retryMs = DEFAULT_RETRY_MS;
		this.backoffMs = MIN_BACKOFF_MS;
		this.opened = true;
		let replaced = null, keepaliveMs = 0;
		const parser = new EventStreamParser((type, data, id) => {
			// A listener may close() the client, and `replaced` ends
			// this stream: the rest of the chunk is not for anyone.
			if (this.stopped || replaced !== null)
				return;
			this.lastEventId = id;
			// Where the stream starts: its id, nothing to deliver.
			if (type === "position")
				return;
			if (type === "replaced") {
				replaced = data;
				return;
			}
			this.deliver(type, data, id);
		}, (ms) => { this.retryMs = ms; }, (text) => {
			// The service's keepalive interval (its first comment):
			// a stream is taken for dead only past three of them.
			const m = /^beep-signal keepalive=([0-9]+)$/.exec(text);
			if (m)
				keepaliveMs = Number(m[1]) * 1000;
		}, this.lastEventId);
		this.setState("open");
		const reader = res.body.getReader();
		const decoder = new TextDecoder();
		let idle = null;
		const watch = () => {
			clearTimeout(idle);
			const ms = this.idleTimeout !== null ?
			    Math.max(this.idleTimeout, IDLE_KEEPALIVES * keepaliveMs) :
			    keepaliveMs > 0 ? IDLE_KEEPALIVES * keepaliveMs : IDLE_MS;
			if (this.idleTimeout === null || this.idleTimeout > 0)
				idle = setTimeout(() => {
					this.emit("error", new SignalError(
					    `subscribe: no data for ${ms} ms`, 0));
					this.reconnect();
				}, ms);
		};
		try {
			for (;;) {
				watch();
				const { value, done } = await reader.read();
				if (done)
					break;
				parser.feed(decoder.decode(value, { stream: true }));
				// Past close() or `replaced`, the events were not
				// delivered: the id stays at the last one that was
				// (an application may resume from it).
				if (!this.stopped && replaced === null &&
				    parser.lastEventId)
					// An id: line alone sets it too (no event).
					this.lastEventId = parser.lastEventId;
				// Kept for the next page of the tab as it comes,
				// not only on pagehide: a page the browser kills
				// in the background (a phone short of memory, the
				// Page Lifecycle's "discarded") gets no pagehide,
				// and is loaded again when its tab is shown: with
				// no id it would start past what its stream took
				// (behind Caddy, a ghost for some seconds), untold
				// (test 56).
				if (this.lastEventId !== this.savedId)
					this.saveResume();
				if (this.stopped || replaced !== null)
					break;
			}
		} catch (e) {
			if (this.stopped)
				return 0;
			if (e.name !== "AbortError")
				this.emit("error", e);
		} finally {
			clearTimeout(idle);
			this.abort.abort();
		}
		if (replaced !== null) {
			// Another tab or window took this device over: do not
			// fight it (each would replace the other in turn).
			let reason = "replaced by a newer connection of this device";
			try {
				const d = JSON.parse(replaced);
				if (d && typeof d.reason === "string")
					reason = d.reason;
			} catch { /* keep ours */ }
			this.stop();
			this.setState("closed", { reason, replaced: true });
			return 0;
		}
		return this.retryMs > 0 ? jitter(this.retryMs) : 0;
	}

	deliver(type, text, id) {
		if (LOCAL_EVENTS.has(type))
			return;
		let data = text, from = null;
		try {
			data = JSON.parse(text);
		} catch { /* plain text */ }
		if (this.envelope && data && typeof data === "object" &&
		    "from" in data && "data" in data) {
			from = data.from;
			data = data.data;
		}
		if (type === "reset") {
			this.emit("reset", data && data.reason !== undefined ?
			    data.reason : data, { id, from });
			return;
		}
		this.emit(type, data, { id, from, event: type });
	}

	// A signal for one attempt of a request: aborted after ms, or by
	// close(). Call done() when the attempt is over.
	deadline(ms) {
		const ac = new AbortController();
		const timer = setTimeout(() => ac.abort(), ms);
		const closing = this.closing.signal;
		const onClose = () => ac.abort();
		closing.addEventListener("abort", onClose);
		if (closing.aborted)
			ac.abort();
		return {
			signal: ac.signal,
			done() {
				clearTimeout(timer);
				closing.removeEventListener("abort", onClose);
			},
		};
	}

	// Waits ms, or less when close() is called.
	pauseUnlessClosed(ms) {
		const closing = this.closing.signal;
		return new Promise((resolve) => {
			const timer = setTimeout(done, ms);
			function done() {
				clearTimeout(timer);
				closing.removeEventListener("abort", done);
				resolve();
			}
			closing.addEventListener("abort", done);
			if (closing.aborted)
				done();
		});
	}

	// Waits until the browser is back online, or until the time `until`
	// (Date.now()), or less when close() is called.
	untilOnline(until) {
		const target = onlineTarget();
		const closing = this.closing.signal;
		return new Promise((resolve) => {
			const ms = until - Date.now();
			if (!target || ms <= 0 || closing.aborted) {
				resolve();
				return;
			}
			const timer = setTimeout(done, ms);
			function done() {
				clearTimeout(timer);
				target.removeEventListener?.("online", done);
				closing.removeEventListener("abort", done);
				resolve();
			}
			target.addEventListener("online", done);
			closing.addEventListener("abort", done);
		});
	}

	// One request, tried up to `attempts` times (SEND_ATTEMPTS) on a
	// transient failure (no answer, 429, 502, 503, 504), each attempt
	// given `timeout` ms (this.timeout) for its whole answer. Resolves
	// { status, doc } (the JSON answer); rejects with a SignalError, at
	// once when close() is called, also between two attempts or while
	// waiting to be online. until (a send's, Date.now() time): instead
	// of `attempts`, tried again until then, each attempt cut to what is
	// left, but for an attempt owed (the first, or one back online),
	// which has its `timeout` when nothing is left; a wait past it (a
	// Retry-After) fails it at once. offlineUntil (a send's): an
	// attempt that fails with no answer while the browser is offline is
	// not spent; the request waits for "online" until then, and goes
	// again at once.
	async request(method, path, body, what,
	    { attempts = SEND_ATTEMPTS, timeout = this.timeout,
	    offlineUntil = 0, until = 0 } = {}) {
		const init = { method, cache: "no-store",
		    credentials: this.credentials };
		const extra = {};
		if (body !== undefined) {
			extra["Content-Type"] = "application/json";
			init.body = JSON.stringify(body);
		}
		const closed = () => new SignalError(`${what}: closed`, 0);
		let err, owed = true;
		for (let attempt = 0; ; attempt++) {
			let ms = timeout;
			if (!owed) {
				if (!until && attempt >= attempts)
					break;
				let wait = err.retryAfterMs ?
				    afterRetry(err.retryAfterMs) :
				    jitter(until ? Math.min(SEND_BACKOFF_MS,
				    MIN_BACKOFF_MS * 2 ** attempt) :
				    MIN_BACKOFF_MS * 2 ** attempt);
				if (until) {
					// The service's Retry-After without
					// its jitter, when only it fits.
					const left = until - Date.now();
					if (wait >= left && err.retryAfterMs &&
					    err.retryAfterMs < left)
						wait = err.retryAfterMs;
					if (wait >= left)
						break;
				}
				await this.pauseUnlessClosed(wait);
				if (until && !this.closing.signal.aborted) {
					ms = Math.min(timeout, until - Date.now());
					if (ms <= 0)
						break;
				}
			} else if (until > Date.now()) {
				ms = Math.min(timeout, until - Date.now());
			}
			owed = false;
			if (this.closing.signal.aborted)
				throw closed();
			const { signal, done } = this.deadline(ms);
			try {
				init.headers = await untilAborted(this.headers(extra),
				    signal);
			} catch (e) {
				done();
				if (this.closing.signal.aborted)
					throw closed();
				if (!signal.aborted)
					throw e;
				err = new SignalError(`${what}: no token within ` +
				    `${ms} ms`, 0);
				continue;
			}
			let res = null;
			try {
				res = await fetch(this.base + path, { ...init, signal });
				if (res.ok)
					return { status: res.status,
					    doc: await this.answer(res, method) };
				err = await errorOf(res, what);
			} catch (e) {
				if (this.closing.signal.aborted)
					throw closed();
				// Answered, but not JSON: not a thing to retry.
				if (e.name === "SyntaxError")
					throw new SignalError(`${what}: ${e.message}`,
					    res.status);
				err = new SignalError(`${what}: ` + (signal.aborted ?
				    `no answer within ${ms} ms` :
				    e.message), 0);
				// No network (a phone between Wi-Fi and LTE, a
				// tunnel): its attempts, which would all fail
				// fast, wait for it. Tried first, not taken on
				// the browser's word: an onLine wrongly false
				// must not hold every send. Sent again as after
				// any failure without an answer (it may have got
				// through: its key makes it one message); an
				// answer's body cut is not here (see answer()).
				if (offlineUntil && offline()) {
					done();
					await this.untilOnline(offlineUntil);
					if (this.closing.signal.aborted)
						throw closed();
					if (offline())
						throw new SignalError(`${what}: ` +
						    `offline for ${this.offlineWait} ms`,
						    0, 0, this.offlineWait);
					attempt--;
					owed = true;
				}
				continue;
			} finally {
				done();
			}
			if (!TRANSIENT.has(err.status))
				break;
		}
		throw err;
	}

	// The JSON body of an answer whose status says it was done. A POST
	// whose body is then cut or stalls past `timeout` was accepted all
	// the same: sent again, it would arrive twice. Its answer is {}
	// (the id unknown); other requests try again.
	async answer(res, method) {
		try {
			return await res.json();
		} catch (e) {
			if (method !== "POST" || e.name === "SyntaxError" ||
			    this.closing.signal.aborted)
				throw e;
			return {};
		}
	}

	// POST data to (user, device); options.event names the event.
	// Resolves { id, held } (held: the device was away, within its grace
	// period, and gets it when it is back; id undefined when the answer's
	// body was lost after its status: accepted, not sent again); rejects
	// with a SignalError.
	// Sends to one device go out one after another, in the order of the
	// calls, so they arrive in that order (an answer before the
	// candidates that follow it) even when they are made at once.
	// options.keepalive: for a page being left (pagehide), see last().
	// A send that fails with no answer while the browser is offline waits
	// for "online" (offlineWait after it was made at most), the sends
	// behind it too, in order.
	send(user, device, data, { event, keepalive } = {}) {
		if (data === undefined || data === null || data === "")
			return Promise.reject(new SignalError("send: no data", 400));
		const body = { data };
		if (event)
			body.event = event;
		// Its attempts are one message (the key's, see sendKey()).
		body.key = sendKey();
		if (keepalive)
			return this.last(`/user/${enc(user)}/device/${enc(device)}`,
			    body);
		const key = `${user}\0${device}`;
		const prev = this.sendQueues.get(key) || Promise.resolve();
		// From the call, not from its turn: sends queued during an
		// outage all end by then, not one offlineWait (sendWait) after
		// another.
		const now = Date.now();
		const offlineUntil = this.offlineWait > 0 ?
		    now + this.offlineWait : 0;
		const until = this.sendWait > 0 ? now + this.sendWait : 0;
		const p = prev.catch(() => {}).then(async () => {
			const { status, doc } = await this.request("POST",
			    `/user/${enc(user)}/device/${enc(device)}`, body, "send",
			    { offlineUntil, until });
			return { id: doc.id, held: status === 202 };
		});
		this.sendQueues.set(key, p);
		const forget = () => {
			if (this.sendQueues.get(key) === p)
				this.sendQueues.delete(key);
		};
		p.then(forget, forget);
		return p;
	}

	// A page's last send, from pagehide: a queued send would wait behind
	// one still out and the browser cancels a page's fetches when it goes,
	// so this one goes out at once (fetch is called before this returns),
	// outside the queue, once, with fetch's keepalive, which outlives the
	// page (bodies up to 64 KiB). A token function's promise cannot be
	// waited for: the token of the client's last request (its stream's)
	// goes instead, rather than none (a 401), and the promise's failure
	// is not left unhandled (test 35). A token function that throws,
	// or data JSON cannot hold, rejects as with any send: a page that
	// hangs up with send(...).catch() must not be stopped by a throw.
	last(path, body) {
		let init;
		try {
			let t = typeof this.token === "function" ?
			    this.token() : this.token;
			if (t && typeof t.then === "function") {
				Promise.resolve(t).catch(() => {});
				t = this.lastToken;
			}
			const headers = { "Content-Type": "application/json" };
			if (typeof t === "string" && t)
				headers.Authorization = `Bearer ${t}`;
			init = { method: "POST", body: JSON.stringify(body),
			    headers, credentials: this.credentials,
			    cache: "no-store", keepalive: true };
		} catch (e) {
			return Promise.reject(e);
		}
		return fetch(this.base + path, init).then(async (res) => {
			if (!res.ok)
				throw await errorOf(res, "send");
			const doc = await res.json();
			return { id: doc.id, held: res.status === 202 };
		}, (e) => {
			throw new SignalError(`send: ${e.message}`, 0);
		});
	}

	// The devices of user that have a live stream.
	async devices(user) {
		const { doc } = await this.request("GET",
		    `/user/${enc(user)}/devices`, undefined, "devices");
		return doc;
	}

	// STUN/TURN servers for new RTCPeerConnection({ iceServers }).
	// options: attempts and timeout (ms each), for a caller that would
	// rather go on without them than wait (default: as for a send).
	async iceServers(options = {}) {
		const { doc } = await this.request("GET",
		    `/ice-servers?user=${enc(this.user)}`, undefined, "iceServers",
		    options);
		return doc.iceServers;
	}
}

// Open a signaling connection for (user, device). Options: base (the
// service's origin, "" for the page's own), user, device, token (a string,
// or a function returning one, called before every request), envelope
// (default true: exact data and the sender in meta.from), lastEventId (to
// resume a stream of an earlier page; by default a page reloaded within
// 30 s resumes where the one before it in the tab left off, resume: false
// turns that off), credentials (fetch's: "include" to
// send cookies to another origin), idleTimeout (ms without a byte after
// which the stream is reopened, at least three of the service's
// keepalives; default: three of them, 12 s at its default, well within
// its 30 s replay window; 0: off),
// timeout (ms for each attempt's answer, a stream's head; default 10 s),
// offlineWait (ms after a send is made that it waits, when it fails while
// the browser is offline, for the browser to be back online; default
// 30 s; 0: no wait; at most 2147483647, setTimeout()'s longest),
// sendWait (ms after a send is made that its attempts go on, on a
// transient failure; default 15 s; 0: three attempts; at most
// 2147483647).
export function connect(opts) {
	return new Signal(opts);
}
