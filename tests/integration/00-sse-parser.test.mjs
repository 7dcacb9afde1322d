// The suite's own event-stream parser against the WHATWG rules, so a framing
// test failure points at the service, not at the tool. No service involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStreamParser } from './sse.mjs';

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
