// A case whose set-up must finish within a window of wall-clock time that
// the case sets itself (a token's life, a grace period, a replay window)
// before it tests what happens when the window closes.
//
// Not a test file (the runner only picks up *.test.mjs).

// Runs attempt(len), which does the case's set-up with a window of len
// seconds and resolves what the case goes on with, or null when it sees
// (never assumes) that its set-up did not finish within the window (a
// request refused or answered as past it, or the clock past it after the
// set-up's last step), having undone what it started. Then the case
// starts again with a window four times as long: on a loaded machine a
// set-up can take longer than the first window, and the case tests what
// happens at its end, not that a set-up is fast. `what` names the window
// in the test's diagnostics. Fails once the next window would be longer
// than 192 s.
export async function withinWindow(t, first, attempt, what = 'window') {
	for (let len = first; ; len *= 4) {
		const r = await attempt(len);
		if (r !== null)
			return r;
		if (len * 4 > 192)
			throw new Error(`the case's set-up did not finish within ` +
			    `a ${len} s ${what}`);
		t.diagnostic(`the set-up outlived a ${len} s ${what}: again ` +
		    `with ${len * 4} s`);
	}
}
