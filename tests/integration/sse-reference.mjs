// A reference event-stream interpreter, written step by step from the
// WHATWG HTML Living Standard ("Server-sent events", "Interpreting an event
// stream"), and the streams to judge the project's parsers with: those of
// sse.mjs (what the tests believe the service sent) and of beep-signal.js
// (what a page gets). It is slow and plain on purpose: whole stream in,
// no chunks, no state kept between calls.

// `bytes`: the whole stream (a Uint8Array). `lastEventId`: the EventSource's
// last event ID string before this stream (what a browser starts the last
// event ID buffer with on a reconnection). Returns the events dispatched
// ({ type, data, lastEventId }), the last event ID string at the end of
// the stream (what a reconnection sends as Last-Event-ID) and every
// reconnection time set (retry:), in order.
export function referenceInterpret(bytes, lastEventId = '') {
	// "The stream must then be parsed by reading everything line by line,
	// ..." after UTF-8 decode, which strips one leading BOM.
	let text = new TextDecoder('utf-8').decode(bytes);
	const out = { events: [], lastEventId, retries: [] };
	let dataBuf = '', typeBuf = '', idBuf = lastEventId;
	// end-of-line = ( cr lf / cr / lf ); a line with no end is not one
	// ("If the file ends in the middle of an event ... not dispatched").
	const lines = [];
	let cur = '';
	for (let i = 0; i < text.length; i++) {
		const c = text[i];
		if (c === '\r') {
			lines.push(cur);
			cur = '';
			if (text[i + 1] === '\n')
				i++;
		} else if (c === '\n') {
			lines.push(cur);
			cur = '';
		} else {
			cur += c;
		}
	}
	for (const line of lines) {
		// "If the line is empty (a blank line): Dispatch the event."
		if (line === '') {
			// 1. Set the last event ID string to the buffer's value.
			out.lastEventId = idBuf;
			// 2. If the data buffer is empty, reset data and type
			// buffers and return.
			if (dataBuf === '') {
				dataBuf = '';
				typeBuf = '';
				continue;
			}
			// 3. Remove the data buffer's last character if a LF.
			let data = dataBuf;
			if (data.endsWith('\n'))
				data = data.slice(0, -1);
			// 4.-6. The event: type "message" unless the buffer set it.
			out.events.push({ type: typeBuf === '' ? 'message' : typeBuf,
			    data, lastEventId: out.lastEventId });
			dataBuf = '';
			typeBuf = '';
			continue;
		}
		// "If the line starts with a U+003A COLON character: Ignore."
		if (line[0] === ':')
			continue;
		let name, value;
		const colon = line.indexOf(':');
		if (colon >= 0) {
			name = line.slice(0, colon);
			value = line.slice(colon + 1);
			if (value[0] === ' ')
				value = value.slice(1);
		} else {
			name = line;
			value = '';
		}
		if (name === 'event') {
			typeBuf = value;
		} else if (name === 'data') {
			dataBuf += value + '\n';
		} else if (name === 'id') {
			if (!value.includes('\0'))
				idBuf = value;
		} else if (name === 'retry') {
			if (value !== '' && [...value].every((d) => d >= '0' && d <= '9'))
				out.retries.push(Number(value));
		}
	}
	return out;
}

// The pieces streams are made of: field names whole (a stream of single
// letters rarely spells one), the separators, the line ends, NUL, a BOM
// (three bytes, also cut in two by a chunk), a digit and other letters.
export const TOKENS = ['data', 'id', 'event', 'retry', 'e', ':', ' ', '\r',
    '\n', '\0', '\uFEFF', '9'];

// Every stream of up to `n` tokens (as strings).
export function* allStreams(n, tokens = TOKENS) {
	yield '';
	let level = [''];
	for (let len = 1; len <= n; len++) {
		const next = [];
		for (const s of level)
			for (const t of tokens) {
				next.push(s + t);
			}
		yield* next;
		level = next;
	}
}

// A seeded generator (xorshift32), so that a failure can be replayed.
export function rng(seed) {
	let x = seed >>> 0 || 1;
	return () => {
		x ^= x << 13; x >>>= 0;
		x ^= x >>> 17;
		x ^= x << 5; x >>>= 0;
		return x / 4294967296;
	};
}

// `count` random streams of up to `maxTokens` tokens, weighted towards
// whole fields and line ends so that events come out of them.
export function* randomStreams(count, maxTokens, seed = 1) {
	const r = rng(seed);
	const pick = ['data: ', 'data:', 'id: ', 'id:', 'event: ', 'retry: ',
	    ':', '\n', '\r', '\r\n', '\n\n', 'x', '9', '\0', '\uFEFF', ' ',
	    'data', 'id'];
	for (let k = 0; k < count; k++) {
		let s = '';
		const n = Math.floor(r() * maxTokens);
		for (let i = 0; i < n; i++)
			s += pick[Math.floor(r() * pick.length)];
		yield s;
	}
}

// The ways of cutting a byte stream into reads that the comparisons try:
// whole; in two at every position (a CRLF, a BOM or a UTF-8 sequence cut
// in two); in two with an empty read between (the Streams standard allows
// a zero-length chunk); and one byte a read.
export function* chunkings(bytes) {
	yield [bytes];
	for (let i = 1; i < bytes.length; i++) {
		yield [bytes.subarray(0, i), bytes.subarray(i)];
		yield [bytes.subarray(0, i), new Uint8Array(0), bytes.subarray(i)];
	}
	if (bytes.length > 1)
		yield [...bytes].map((b) => Uint8Array.of(b));
}

// Random cuts of `bytes` into up to `max` reads, empty ones included.
export function randomChunking(bytes, r, max = 6) {
	const cuts = [];
	const n = Math.floor(r() * max);
	for (let i = 0; i < n; i++)
		cuts.push(Math.floor(r() * (bytes.length + 1)));
	cuts.sort((a, b) => a - b);
	const out = [];
	let at = 0;
	for (const c of cuts) {
		out.push(bytes.subarray(at, c));
		at = c;
	}
	out.push(bytes.subarray(at));
	return out;
}

// Compares `parse(chunks)` ({ events, lastEventId, retries }) with the
// reference over every stream of up to `n` tokens cut every way, then
// `random` random streams cut at random. Returns the first difference
// (a message) or null.
export function compareWithReference(parse, { n = 4, random = 3000,
    lastEventId = '' } = {}) {
	const enc = new TextEncoder();
	const show = (v) => JSON.stringify(v);
	const check = (text, bytes, chunks, want) => {
		const got = parse(chunks, lastEventId);
		for (const k of ['events', 'lastEventId', 'retries']) {
			const a = show(got[k]), b = show(want[k]);
			if (a !== b)
				return `${show(text)} read as ` +
				    `${show(chunks.map((c) => [...c]))}: ${k} ${a}, ` +
				    `the standard says ${b}`;
		}
		return null;
	};
	for (const text of allStreams(n)) {
		const bytes = enc.encode(text);
		const want = referenceInterpret(bytes, lastEventId);
		for (const chunks of chunkings(bytes)) {
			const d = check(text, bytes, chunks, want);
			if (d)
				return d;
		}
	}
	const r = rng(12345);
	for (const text of randomStreams(random, 40)) {
		const bytes = enc.encode(text);
		const want = referenceInterpret(bytes, lastEventId);
		for (let k = 0; k < 8; k++) {
			const d = check(text, bytes, randomChunking(bytes, r), want);
			if (d)
				return d;
		}
	}
	return null;
}
