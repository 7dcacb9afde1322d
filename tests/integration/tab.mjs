// A browser tab for web/beep-signal.js run in Node: a sessionStorage that
// outlives the tab's pages, and a window (an EventTarget that pagehide,
// pageshow and the like are dispatched on) that each new page replaces.
// Tests 50 and 56 load the real client into it, against the real backend.
export class Storage {
	constructor() { this.m = new Map(); }
	get length() { return this.m.size; }
	key(i) { return [...this.m.keys()][i] ?? null; }
	getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
	setItem(k, v) { this.m.set(k, String(v)); }
	removeItem(k) { this.m.delete(k); }
}

// Installs the tab's globals and loads the client into it: its exports.
export async function loadClientInTab() {
	globalThis.sessionStorage = new Storage();
	globalThis.window = new EventTarget();
	return import('../../web/beep-signal.js');
}

// A new page of the tab: a window of its own (the storage stays).
export function newPage() {
	globalThis.window = new EventTarget();
}
