// The suite's own event-stream parser against the WHATWG rules, so a framing
// test failure points at the service, not at the tool. No service involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStreamParser } from './sse.mjs';
import { compareWithReference, referenceInterpret } from './sse-reference.mjs';

// Feeds `chunks` (strings) and returns what the parser reported.
function parse(chunks) {
	const out = { events: [], comments: [], retries: [] };
	const p = new EventStreamParser({
		onEvent: (e) => out.events.push(e),
		onComment: (c) => out.comments.push(c),
		onRetry: (r) => out.retries.push(r),
	});
	for (const c of chunks)
		p.feed(c);
	return out;
}

// Every way of cutting `text` into two chunks gives the same result.
function parseAllSplits(text) {
	const whole = parse([text]);
	for (let i = 1; i < text.length; i++)
		assert.deepEqual(parse([text.slice(0, i), text.slice(i)]), whole,
		    `split at ${i} of ${JSON.stringify(text)}`);
	assert.deepEqual(parse([...text]), whole, 'one char per chunk');
	return whole;
}

const ev = (data, type = 'message', lastEventId = '') =>
    ({ type, data, lastEventId });

test('lines end at LF, CR or CRLF, also across chunks', () => {
	for (const nl of ['\n', '\r', '\r\n']) {
		const r = parseAllSplits(`data: a${nl}data: b${nl}${nl}data: c${nl}${nl}`);
		assert.deepEqual(r.events, [ev('a\nb'), ev('c')], JSON.stringify(nl));
	}
	// CR then LF is one break; LF then CR is two (here: an empty line).
	assert.deepEqual(parseAllSplits('data: x\r\n\r\n').events, [ev('x')]);
	assert.deepEqual(parseAllSplits('data: x\n\rdata: y\n\n').events,
	    [ev('x'), ev('y')]);
});

test('fields: one leading space stripped, no colon, unknown ignored', () => {
	assert.deepEqual(parseAllSplits('data:no space\n\n').events,
	    [ev('no space')]);
	assert.deepEqual(parseAllSplits('data:  two\n\n').events, [ev(' two')]);
	assert.deepEqual(parseAllSplits('data\n\n').events, [ev('')]);
	assert.deepEqual(parseAllSplits('data\ndata\n\n').events, [ev('\n')]);
	assert.deepEqual(parseAllSplits('data: a:b: c\n\n').events,
	    [ev('a:b: c')]);
	assert.deepEqual(parseAllSplits('foo: bar\ndata: x\nDATA: y\n\n').events,
	    [ev('x')]);
});

test('comments, event type, empty events, unterminated tail', () => {
	const r = parseAllSplits(': hello\n:\n: x: y\nevent: offer\ndata: 1\n\n' +
	    'event: lonely\n\ndata: 2\n\ndata: tail');
	assert.deepEqual(r.comments, [' hello', '', ' x: y']);
	// An event with no data is not dispatched and its type is reset.
	assert.deepEqual(r.events, [ev('1', 'offer'), ev('2')]);
});

test('id (no NUL) persists; retry only when all digits', () => {
	const r = parseAllSplits('id: 7\ndata: a\n\ndata: b\n\nid: x\0y\n' +
	    'data: c\n\nretry: 1500\nretry: 15x\nretry: -1\nretry\n\n');
	assert.deepEqual(r.events, [ev('a', 'message', '7'),
	    ev('b', 'message', '7'), ev('c', 'message', '7')]);
	assert.deepEqual(r.retries, [1500]);
});

test('multi-byte text passes through', () => {
	const r = parseAllSplits('data: caf\u00e9 \u{1F389}\r\n\r\n');
	assert.deepEqual(r.events, [ev('caf\u00e9 \u{1F389}')]);
});

// The reference itself, on the standard's own examples and the corners the
// comparisons below lean on, so that it is not wrong the way a parser is.
test('the reference interpreter: the standard\'s examples', () => {
	const run = (text, id) =>
	    referenceInterpret(new TextEncoder().encode(text), id);
	const msg = (data, lastEventId = '', type = 'message') =>
	    ({ type, data, lastEventId });
	assert.deepEqual(run('data: YHOO\ndata: +2\ndata: 10\n\n').events,
	    [msg('YHOO\n+2\n10')]);
	const r = run(': test stream\n\ndata: first event\nid: 1\n\n' +
	    'data:second event\nid\n\ndata:  third event\n');
	assert.deepEqual(r.events, [msg('first event', '1'),
	    msg('second event')]);
	assert.deepEqual(run('data\n\ndata\ndata\n\ndata:').events,
	    [msg(''), msg('\n')]);
	assert.deepEqual(run('data:test\n\ndata: test\n\n').events,
	    [msg('test'), msg('test')]);
	// One BOM stripped, a second one is text; an id: without data still
	// sets the id resumed from, once a blank line ends it.
	assert.deepEqual(run('\uFEFF\uFEFFdata: x\n\n').events, []);
	assert.deepEqual(run('\uFEFFdata: x\n\n').events, [msg('x')]);
	assert.equal(run('id: 5\n\n').lastEventId, '5');
	assert.equal(run('id: 5\n').lastEventId, '');
	assert.equal(run('id: 5\n', '3').lastEventId, '3');
	assert.equal(run('id: 5\0\n\n', '3').lastEventId, '3');
	assert.deepEqual(run('retry: 12\nretry: 1a\nretry\n').retries, [12]);
	assert.deepEqual(run('data: x\r').events, []);
	assert.deepEqual(run('data: x\r\r').events, [msg('x')]);
});

// The parser as SseStream drives it (TextDecoder, the reads of the
// socket) against the reference: every stream of up to 4 pieces (field
// names, ':', ' ', CR, LF, NUL, a BOM, a digit) cut in two at every byte,
// with an empty read between or a byte a read, then random longer ones:
// the events, the id a reconnection would send (resumeId) and retry:.
test('as the reference says, however the stream is read', () => {
	const parse = (chunks) => {
		const out = { events: [], retries: [] };
		const decoder = new TextDecoder('utf-8');
		const p = new EventStreamParser({
			onEvent: (e) => out.events.push(e),
			onRetry: (r) => out.retries.push(r),
		});
		for (const c of chunks)
			p.feed(decoder.decode(c, { stream: true }));
		const tail = decoder.decode();
		if (tail)
			p.feed(tail);
		out.lastEventId = p.resumeId;
		return out;
	};
	assert.equal(compareWithReference(parse), null);
});
