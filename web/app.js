// The call page: go online as (user, device), watch contacts' devices, call
// one, and talk over a WebRTC peer connection negotiated through
// beep-signal with "perfect negotiation" (RFC 8829 roles: the polite peer
// yields on an offer collision, the impolite one ignores the other's offer).
//
// Messages between two pages (event: data). A message may arrive twice (the
// client retries a send whose answer was lost, and the service knows it
// again only within its replay window), so each is idempotent per
// callId: a second `call` of the current call, or of one that ended, is not
// a new call (a callee that accepted the current one accepts again: the
// caller rings again after a reset, as its accept may have been lost); the
// same description is not applied again.
//
//   call    {callId, from, media}   ring the device
//   accept  {callId, from}          the callee picked up
//   decline {callId, from, reason}  reason: "declined" (again when a
//                                   declined call rings again), "busy" (in
//                                   another call, or ringing), "unanswered"
//                                   (rang its time: a missed call),
//                                   "later" (rung too much just now)
//   hangup  {callId, from}
//   description {callId, from, description}, candidate {callId, from,
//   candidate}
// With authentication on, the service stamps the sender (meta.from; its
// device only when the token pins one, else the device the message names
// for that user); in open mode the sender is what the message claims
// (`from`). A call's messages count only from the call's peer (test 120):
// one whose sender is someone else, or cannot be told, is ignored.

import { connect } from "/beep-signal.js";

const $ = (id) => document.getElementById(id);
const RING_TIMEOUT_MS = 45000;
// Not connected this long after answering: one ICE restart (new
// credentials, a fresh offer), then as long again before giving up.
const CONNECT_TIMEOUT_MS = 15000;
const CONTACT_POLL_MS = 4000;
// Descriptions and candidates kept for a call before its peer connection.
const MOST_PENDING = 256;
// How long a call waits for fresh STUN/TURN servers (one attempt).
const ICE_SERVERS_TIMEOUT_MS = 3000;
// The chat log keeps the latest MOST_CHAT entries, each of at most
// CHAT_CHARS characters (as many as the chat field lets a page send): a
// peer past the Accept sends what it likes over the data channel, as fast
// as it goes, and kept whole and all it grew the tab without bound
// (test 110).
const MOST_CHAT = 200;
const CHAT_CHARS = 2000;
// A caller (a user) whose call the user declined does not ring the page
// again for this long: its rings are answered "declined" (within the
// budget of unasked answers, see tellAgain), and the page stays as it is.
// A caller's rings one after another (each within MUTE_MS of the end of
// the last) ring CALLER_RING_MS in all (the time they rang, not the quiet
// between them: test 123), then are answered "later" until it has been
// quiet for MUTE_MS: hanging up and ringing again with a new call id kept
// the page ringing, and busy for everyone else, for as long as the caller
// liked (test 119). Two rings' time, so that a caller calling back at once
// after a missed call rings again in full; answered "later", not "busy",
// since the user is in no call (the caller's page said "in another call").
const MUTE_MS = 60000;
const CALLER_RING_MS = 2 * RING_TIMEOUT_MS;
// Each ring of such a chain counts as at least this long, and rings only
// with this much left, so that a caller that rings and hangs up at once
// rings the page at most CALLER_RING_MS / RING_MIN_MS times one after
// another, not for every ring it sends until they add up (test 123).
const RING_MIN_MS = 10000;
// Rings one after another of any callers but the user's contacts (each
// within MUTE_MS of the end of the last) come from at most MOST_CALLERS
// callers and ring PAGE_RING_MS in all; past that a new caller is answered
// "later" until the page has been quiet for MUTE_MS. Each caller within
// its own bound, many callers (many accounts, or in open mode many
// claimed names) taking turns kept the page ringing for ever (test 119).
// Contacts are not counted: strangers ringing must not keep the user's
// own people out.
const MOST_CALLERS = 3;
const PAGE_RING_MS = 3 * RING_TIMEOUT_MS;

let sig = null;
let me = null;           // {user, device}
let wasOpen = false;     // the stream was open once: later "connecting" is a reconnect
// Why the service refused this page's session after it was online (a 401:
// its cookie expired), until a stream opens again; "" when it did not.
let signedOut = "";
// Why the client closed for good after the page was online; "" until then.
let offline = "";
let call = null;         // the one call, see newCall()
// The calls that ended, by id, the latest last, with their peer and whether
// this page declined them: a copy of their `call` that comes late (a
// retried send) must not ring again.
const pastCallIds = new Map();
const PAST_CALL_IDS = 32;
// When an answer the page gives without being asked by its user was last
// sent ("busy" to a sender, a decline or hang-up said again for a call
// that ended), by key, the latest last (at most PAST_CALL_IDS of them).
const toldAt = new Map();

// Such answers in all per RING_TIMEOUT_MS: senders are many when claimed
// (open mode) or when one has many accounts.
const MOST_UNASKED = 8;

// Callers by user (at most PAST_CALL_IDS of each, the latest last): when
// a declined one may ring again; how long the rings of one that rang one
// after another rang in all (rung, ms) and when the last of them ended
// (last).
const mutedUntil = new Map();
const rang = new Map();
// The same for the rings of callers not in the contacts, one after
// another, of any of them: and which callers rang (at most MOST_CALLERS).
let pageRang = { rung: 0, last: -Infinity, callers: new Set() };

function remember(map, key, value) {
	map.delete(key);
	map.set(key, value);
	for (const k of map.keys()) {
		if (map.size <= PAST_CALL_IDS)
			break;
		map.delete(k);
	}
}

// Whether that answer (key) may go now: once per RING_TIMEOUT_MS, and
// MOST_UNASKED answers of any key in that time. Each is a POST of this
// page's, paid from its user's (in open mode its address's) rate budget:
// a sender that rings again and again (anyone who knows this device's
// name) must not make the page post once for each, and keep that budget
// empty for the page's own signaling (test 74). Past the budget a caller
// is not told "busy" and sees no answer.
function tellAgain(key) {
	const now = Date.now();
	if (now - (toldAt.get(key) ?? -Infinity) < RING_TIMEOUT_MS)
		return false;
	let lately = 0;
	for (const at of toldAt.values())
		if (now - at < RING_TIMEOUT_MS)
			lately++;
	if (lately >= MOST_UNASKED)
		return false;
	toldAt.delete(key);
	toldAt.set(key, now);
	for (const k of toldAt.keys()) {
		if (toldAt.size <= PAST_CALL_IDS)
			break;
		toldAt.delete(k);
	}
	return true;
}
let localStream = null;
// name -> {devices: string[] | null, error, unlisted, dial (see dialForm)}
const contacts = new Map();
let pollTimer = null;
let savedContacts = [];  // this user's, read when going online

// ------------------------------------------------------------------ UI bits

function setPill(kind, text) {
	const p = $("sigstate");
	p.className = `pill pill-${kind}`;
	p.textContent = text;
}

// phase: idle | calling | ringing | connecting | connected | reconnecting |
// failed | ended | signedout
function setBanner(phase, title, detail = "") {
	document.body.dataset.phase = phase;
	$("banner").className = `banner banner-${phase}`;
	show($("banner-title"), title);
	show($("banner-detail"), detail);
	const inCall = call && ["calling", "connecting", "connected",
	    "reconnecting"].includes(phase);
	$("accept").hidden = phase !== "ringing";
	$("decline").hidden = phase !== "ringing";
	$("hangup").hidden = !inCall;
}

// A name a peer chose (its user, its device) in a sentence of the page's,
// between NAME_OPEN and NAME_CLOSE, which show() makes a <bdi> of: what the
// name holds (a bidi override, U+202E) orders its own text only, not the
// page's words after it (test 109). The marks are control characters, which
// no id holds (the service refuses them); any that a claimed name brings
// show as U+FFFD.
const NAME_OPEN = "\u0001", NAME_CLOSE = "\u0002";

function named(s) {
	return NAME_OPEN + String(s).replace(/[\u0000-\u001f\u007f-\u009f]/g,
	    "\ufffd") + NAME_CLOSE;
}

function who(p) {
	return `${named(p.user)} (${named(p.device)})`;
}

// A name's first character as a person sees it, for an avatar: an emoji
// whole (slice(0, 1) took half of its UTF-16 pair, drawn as a box), with
// its modifiers and joined parts where Intl.Segmenter can tell them; the
// invisible (format characters, spaces) before it skipped.
function initial(name) {
	const s = String(name).replace(/^[\p{Cf}\p{Z}]+/u, "");
	const first = typeof Intl === "object" && Intl.Segmenter ?
	    new Intl.Segmenter().segment(s)[Symbol.iterator]().next().value :
	    undefined;
	return (first ? first.segment : Array.from(s)[0] || "").toUpperCase();
}

// el's text becomes text, each name in it (see named()) in a <bdi>.
function show(el, text) {
	const parts = String(text).split(/\u0001([^\u0001\u0002]*)\u0002/);
	el.replaceChildren(...parts.map((part, i) => {
		if (i % 2 === 0)
			return part;
		const b = document.createElement("bdi");
		b.textContent = part;
		return b;
	}).filter((n) => n !== ""));  // none for "": .label:empty hides
}

function note(text) {
	addChat(text, "note");
}

function addChat(text, kind) {
	const li = document.createElement("li");
	li.className = `msg ${kind}`;
	// The page's notes may name the peer; a chat message is all theirs.
	if (kind === "note")
		show(li, text);
	else
		li.textContent = text.length > CHAT_CHARS ?
		    `${text.slice(0, CHAT_CHARS)}…` : text;
	const log = $("chat-log");
	log.append(li);
	while (log.childElementCount > MOST_CHAT)
		log.firstElementChild.remove();
	li.scrollIntoView({ block: "nearest" });
}

function setChatEnabled(on) {
	$("chat-input").disabled = !on;
	$("chat-send").disabled = !on;
	if (on)
		$("chat-input").focus();
}

function setRemote(p) {
	show($("remote-label"), p ? who(p) : "");
	$("remote-initial").textContent = p ? initial(p.user) : "";
	$("remote-initial").hidden = !p;
	$("remote-hint").hidden = !!p;
}

// A client error (a SignalError, or a state's reason) as the page words it:
// without the client's "send: " and the like, and a send that waited
// offlineWait for the network in seconds, from the wait the error carries
// (offlineMs), not from its text ("offline for 30000 ms", whatever form
// the number takes there).
function explain(err) {
	const ms = err && err.offlineMs;
	if (typeof ms === "number" && ms > 0)
		return `no network for ${ms >= 1000 ?
		    `${Math.round(ms / 1000)} s` : `${Math.round(ms)} ms`}`;
	return String(err && err.message || err)
	    .replace(/^(send|subscribe|devices|iceServers): /, "");
}

// ------------------------------------------------------------------ joining

// A token in the fragment (/#token=..., never sent to a server), read once
// and taken out of the address bar at once, so that it is not kept in the
// history, bookmarked, or passed on with a copied link. A reload then needs
// the link again (or the cookie).
function takeFragmentToken() {
	const params = new URLSearchParams(location.hash.slice(1));
	const token = params.get("token");
	if (token === null)
		return null;
	params.delete("token");
	const rest = params.toString();
	history.replaceState(history.state, "", location.pathname +
	    location.search + (rest ? `#${rest}` : ""));
	return token;
}

function join(user, device) {
	me = { user, device };
	savedContacts = loadContacts(user, localStorage.getItem("beep.user"));
	localStorage.setItem("beep.user", user);
	localStorage.setItem("beep.device", device);
	$("join-go").disabled = true;
	$("join-error").hidden = true;
	setPill("wait", "Connecting…");
	// With authentication on: the token of the fragment (see
	// takeFragmentToken), or the service's cookie, which fetch sends to its
	// own origin by itself.
	// A stream silent for three keepalives is reopened (the client's
	// default: 12 s at the service's default, within its replay window).
	sig = connect({ user, device, token: fragmentToken || undefined });
	window.beepApp.sig = sig;
	sig.on("state", onSigState);
	sig.on("error", onSigError);
	sig.on("call", onCall);
	sig.on("accept", (d, m) => onAccept(d, m));
	sig.on("decline", (d, m) => onDecline(d, m));
	sig.on("hangup", (d, m) => onHangup(d, m));
	sig.on("description", (d, m) => onPeerMessage("description", d, m));
	sig.on("candidate", (d, m) => onPeerMessage("candidate", d, m));
	sig.on("reset", () => {
		// Messages meant for us were lost: renegotiate ICE.
		if (call && call.pc) {
			note("Signaling lost messages: restarting the connection.");
			restartIce(call);
		} else if (call && call.phase === "calling") {
			// The callee's accept may have been one of them: ring
			// again, and one that answered answers again.
			ring(call).catch(() => {});
		}
	});
}

function onSigState(state, info) {
	if (state === "open") {
		if (!wasOpen) {
			wasOpen = true;
			$("join").hidden = true;
			$("app").hidden = false;
			$("me").hidden = false;
			// The user's own names isolated too (see named()).
			const b = document.createElement("b");
			show(b, named(me.user));
			const on = document.createElement("span");
			show(on, ` on ${named(me.device)}`);
			$("me").replaceChildren(b, on);
			showIdle();
			startPolling();
		} else if (signedOut && document.body.dataset.phase ===
		    "signedout") {
			showIdle();
		}
		signedOut = "";
		setPill("on", "Online");
		if (call && call.phase === "connected")
			setBanner("connected", `Connected with ${who(call.peer)}`,
			    connectedDetail());
	} else if (state === "connecting") {
		if (signedOut) {
			showSignedOut(false);
		} else if (wasOpen) {
			setPill("wait", "Reconnecting…");
			if (call && call.phase === "connected")
				$("banner-detail").textContent = "The call goes on; " +
				    "reconnecting to the signaling service…";
		}
	} else if (state === "closed") {
		setPill("bad", "Offline");
		if (!wasOpen) {
			$("join-error").textContent =
			    `Could not go online: ${explain(info.reason)}`;
			$("join-error").hidden = false;
			$("join-go").disabled = false;
		} else {
			offline = explain(info.reason) + (info.replaced ?
			    " (this page stays quiet; reload it to take over " +
			    "again)." : "");
			// A connected call's media goes on, and its Hang up
			// with it: its banner says so.
			if (call && call.phase === "connected")
				$("banner-detail").textContent =
				    connectedDetail();
			else
				setBanner("failed", "You are offline", offline);
		}
	}
}

// A 401 after the page was online: its session (the beep_token cookie)
// expired or ended, and only the site's login can renew it. The client
// goes on trying with its backoff, its state "connecting", each try such a
// 401, and opens again by itself once the cookie is refreshed; meanwhile
// the page says that its user is signed out, not "Reconnecting…" for ever
// (test 34). With a token from the fragment the client closes on it
// instead: the "closed" state that follows says so.
function onSigError(e) {
	if (e.status !== 401 || !wasOpen)
		return;
	const first = !signedOut;
	signedOut = explain(e);
	showSignedOut(first);
}

// The pill, and the banner: the signed-out one when no call is in progress
// (at first only: a call that ends meanwhile keeps its words), the
// detail of a connected call's, whose media does not need the service.
function showSignedOut(banner) {
	setPill("bad", "Signed out");
	if (call && call.phase === "connected")
		$("banner-detail").textContent = connectedDetail();
	else if (!call && banner)
		setBanner("signedout", "You are signed out", "Your session " +
		    `ended (${signedOut}): sign in again, and this page comes ` +
		    "back online by itself.");
}

function showIdle() {
	setBanner("idle", "No call",
	    "Call a contact's device, or wait for a call.");
}

// The detail of a connected call's banner: the call needs the service no
// more, and goes on while the page is away from it.
function connectedDetail() {
	if (offline)
		return `The call goes on; you are offline (${offline}).`;
	return signedOut ? "The call goes on; you are signed out of the " +
	    `signaling service (${signedOut}): sign in again to reconnect.` :
	    "Chat below; camera and microphone where allowed.";
}

// ----------------------------------------------------------------- contacts

// Each user's contacts under a key of their own: on a shared computer the
// next person to use the page must not get the list of whom the last one
// calls (test 77). The list of before (one for the browser) goes to the
// user who was last online with it.
const contactsKey = (user) => `beep.contacts:${user}`;

function saveContacts() {
	localStorage.setItem(contactsKey(me.user),
	    JSON.stringify([...contacts.keys()]));
}

function loadContacts(user, lastUser) {
	// The list of before goes to its last user, whoever goes online
	// first (test 90): removed, it would be lost to them.
	const legacy = localStorage.getItem("beep.contacts");
	if (legacy !== null) {
		if (lastUser && localStorage.getItem(contactsKey(lastUser)) ===
		    null)
			localStorage.setItem(contactsKey(lastUser), legacy);
		localStorage.removeItem("beep.contacts");
	}
	try {
		const list = JSON.parse(localStorage.getItem(contactsKey(user)) ||
		    "[]");
		return Array.isArray(list) ? list : [];
	} catch {
		return [];
	}
}

function renderContacts() {
	const ul = $("contacts");
	// Redrawn every poll: a device being typed keeps its focus.
	const focused = document.activeElement;
	ul.innerHTML = "";
	$("contacts-empty").hidden = contacts.size > 0;
	for (const [name, c] of contacts) {
		const devices = (c.devices || []).filter((d) =>
		    !(name === me.user && d === me.device));
		const li = document.createElement("li");
		li.className = "contact" + (devices.length ? " online" : "");
		li.dataset.user = name;
		const head = document.createElement("div");
		head.className = "contact-head";
		const av = document.createElement("span");
		av.className = "avatar";
		av.textContent = initial(name);
		const nm = document.createElement("span");
		nm.className = "contact-name";
		nm.textContent = name;
		const st = document.createElement("span");
		st.className = "contact-status";
		st.textContent = c.error ? c.error : c.unlisted ?
		    "devices not listed" : c.devices === null ? "…" :
		    devices.length ? `online · ${devices.length} ` +
		    `device${devices.length > 1 ? "s" : ""}` : "offline";
		const text = document.createElement("div");
		text.className = "contact-text";
		text.append(nm, st);
		head.append(av, text);
		li.append(head);
		if (devices.length) {
			const row = document.createElement("div");
			row.className = "contact-devices";
			for (const d of devices) {
				const b = document.createElement("button");
				b.type = "button";
				b.textContent = `Call ${d}`;
				b.dataset.device = d;
				b.disabled = !canCall();
				b.addEventListener("click", () =>
				    startCall({ user: name, device: d }));
				row.append(b);
			}
			li.append(row);
		}
		if (c.unlisted)
			li.append(dialForm(name, c));
		ul.append(li);
	}
	if (focused && focused !== document.activeElement && focused.isConnected)
		focused.focus();
}

// For a contact whose devices the service does not list to others (with
// authentication on, BEEP_LIST_POLICY=self, its default): a device typed by
// hand. Made once and kept, so that the polls' redraws keep what is typed.
function dialForm(name, c) {
	if (!c.dial) {
		const form = document.createElement("form");
		form.className = "contact-devices contact-dial-form";
		const input = document.createElement("input");
		input.className = "contact-device";
		input.placeholder = "Their device";
		input.required = true;
		input.maxLength = 64;
		input.setAttribute("aria-label", `${name}'s device`);
		const button = document.createElement("button");
		button.type = "submit";
		button.className = "contact-dial";
		button.textContent = "Call";
		const why = document.createElement("p");
		why.className = "contact-note muted small";
		why.textContent = "This service lists only your own devices: " +
		    "type the name of one of theirs.";
		form.append(input, button, why);
		form.addEventListener("submit", (e) => {
			e.preventDefault();
			const device = input.value.trim();
			if (device)
				startCall({ user: name, device });
		});
		c.dial = { form, button };
	}
	c.dial.button.disabled = !canCall();
	return c.dial.form;
}

// One request per contact at a time: one that hangs (up to its timeouts and
// retries, half a minute) is not joined by another at each poll, and an
// older answer does not overwrite a newer one.
async function refreshContacts() {
	await Promise.all([...contacts.keys()].map(async (name) => {
		const c = contacts.get(name);
		// Unlisted: the service's policy does not change.
		if (c.unlisted || c.asking)
			return;
		c.asking = true;
		try {
			c.devices = await sig.devices(name);
			c.error = "";
		} catch (e) {
			if (e.status === 403 && name !== me.user)
				c.unlisted = true;
			else
				c.error = explain(e);
		} finally {
			c.asking = false;
		}
	}));
	renderContacts();
}

function startPolling() {
	for (const n of savedContacts)
		if (typeof n === "string" && n)
			contacts.set(n, { devices: null, error: "" });
	renderContacts();
	refreshContacts();
	pollTimer = setInterval(refreshContacts, CONTACT_POLL_MS);
}

// -------------------------------------------------------------------- calls

function newCall(callId, peer, phase) {
	call = {
		id: callId, peer, phase, pc: null, dc: null, polite: false,
		ids: new Set([callId]),  // the call ids this call answers to
		makingOffer: false, ignoreOffer: false, queue: Promise.resolve(),
		pending: [], timer: null, failedOnce: false, accepted: false,
	};
	setRemote(peer);
	renderContacts();
	return call;
}

function samePeer(a, b) {
	return a && b && a.user === b.user && a.device === b.device;
}

// Who sent a message. With authentication on, the service's stamp
// (meta.from): its device is null when the sender's token pins none, and
// then the device the message names counts, if it names the same user (a
// user may speak for any of their devices, not for another user). In open
// mode, what the message claims.
function sender(data, meta) {
	const stamp = meta && meta.from;
	const claim = data && data.from && typeof data.from === "object" ?
	    data.from : null;
	if (stamp && typeof stamp.user === "string") {
		const device = typeof stamp.device === "string" ? stamp.device :
		    claim && claim.user === stamp.user ? claim.device : null;
		return typeof device === "string" ?
		    { user: stamp.user, device } : null;
	}
	if (!claim || typeof claim.user !== "string" ||
	    typeof claim.device !== "string")
		return null;
	return { user: claim.user, device: claim.device };
}

// Whether the user may place a call now: with none in progress, or while
// one rings (a ring does not stop the user from calling: the caller is
// told "busy", test 119).
function canCall() {
	return call === null || call.phase === "ringing";
}

async function startCall(peer) {
	if (!canCall())
		return;
	if (call) {
		send(call, "decline", { reason: "busy" });
		endCall("ended", `Missed call from ${who(call.peer)}`);
	}
	// The user calls them: they may ring here again.
	mutedUntil.delete(peer.user);
	rang.delete(peer.user);
	const c = newCall(crypto.randomUUID(), peer, "calling");
	setBanner("calling", `Calling ${who(peer)}…`, "Waiting for an answer.");
	c.timer = setTimeout(() => {
		if (call === c && c.phase === "calling") {
			send(c, "hangup", {});
			endCall("failed", `${who(peer)} did not answer`,
			    "Try again later, or another device.");
		}
	}, RING_TIMEOUT_MS);
	try {
		const r = await ring(c);
		if (r.held && call === c)
			setBanner("calling", `Calling ${who(peer)}…`,
			    "That device is briefly offline; it rings when it is back.");
	} catch (e) {
		if (call === c)
			endCall("failed", `Could not reach ${who(peer)}`, explain(e));
	}
}

// The `call` message of c. Sent again it is the same call: a device that
// rings rings on, one that accepted it accepts again.
function ring(c) {
	return sig.send(c.peer.user, c.peer.device, { callId: c.id, from: me,
	    media: { audio: true, video: true } }, { event: "call" });
}

function onCall(data, meta) {
	const from = sender(data, meta);
	if (!from || typeof data.callId !== "string")
		return;
	// This call's own `call` again, or an ended one's (a retried send):
	// nothing new. Once accepted, it is the caller asking again for an
	// accept lost on its way (a reset): sent again, within the page's
	// budget of answers it gives unasked (see tellAgain), or a caller once
	// answered made it post for every ring it sent (test 74).
	if (call && call.ids.has(data.callId)) {
		if (call.accepted && samePeer(from, call.peer) &&
		    tellAgain(`accept\u0000${data.callId}`)) {
			send(call, "accept", {});
			// What followed the accept may have been lost with it:
			// an offer still unanswered goes again (its description
			// now holds the candidates gathered); past it, an ICE
			// restart.
			const pc = call.pc;
			if (pc && pc.connectionState !== "connected") {
				if (pc.signalingState === "have-local-offer" &&
				    pc.localDescription)
					send(call, "description", { description:
					    pc.localDescription.toJSON() });
				else
					restartIce(call);
			}
		}
		return;
	}
	const past = pastCallIds.get(data.callId);
	if (past) {
		// Declined here, and rung again: the caller got a reset, and
		// the decline may have been lost with it. Said again, or it
		// rings on until "did not answer".
		if (past.declined && samePeer(from, past.peer) &&
		    tellAgain(`decline\u0000${data.callId}`))
			sig.send(from.user, from.device, { callId: data.callId,
			    from: me, reason: "declined" },
			    { event: "decline" }).catch(() => {});
		return;
	}
	if (call && samePeer(call.peer, from) && call.phase === "calling") {
		// Both called each other at once: that is a call. Agree on one
		// id (the smaller) and negotiate; perfect negotiation sorts out
		// the two offers.
		call.ids.add(data.callId);
		if (data.callId < call.id)
			call.id = data.callId;
		clearTimeout(call.timer);
		// Both are callers: the impolite side offers, the polite waits.
		startPeer(call, "polite-waits");
		return;
	}
	// A caller the user declined, for MUTE_MS: "declined". Busy: another
	// call than this one, or a ring. Later: a caller whose rings one after
	// another have rung CALLER_RING_MS, or a caller past MOST_CALLERS, or
	// past PAGE_RING_MS of callers' rings, one after another.
	const now = Date.now();
	const r = rang.get(from.user);
	let left = CALLER_RING_MS - (r && now - r.last < MUTE_MS ? r.rung : 0);
	let crowded = false;
	if (!contacts.has(from.user) && now - pageRang.last < MUTE_MS) {
		left = Math.min(left, PAGE_RING_MS - pageRang.rung);
		crowded = !pageRang.callers.has(from.user) &&
		    pageRang.callers.size >= MOST_CALLERS;
	}
	if (now < (mutedUntil.get(from.user) ?? -Infinity))
		refuse(from, data.callId, "declined");
	else if (call)
		refuse(from, data.callId, "busy");
	else if (crowded || left < RING_MIN_MS)
		refuse(from, data.callId, "later");
	else
		ringFrom(data.callId, from, Math.min(RING_TIMEOUT_MS, left));
}

// A ring this page refuses by itself: told once per call, and within the
// page's budget of such answers (see tellAgain). The same call rung again
// (the caller had a reset, and the answer may have been lost with it) is
// told once more, as a decline is, or it rings on until "did not answer"
// (test 91).
function refuse(from, callId, reason) {
	const key = `${reason}\u0000${from.user}\u0000${from.device}` +
	    `\u0000${callId}`;
	if (!tellAgain(key) &&
	    !(toldAt.has(key) && tellAgain(`again\u0000${key}`)))
		return;
	sig.send(from.user, from.device, { callId, from: me, reason },
	    { event: "decline" }).catch(() => {});
}

// The page rings for a call of from's for `ms` (what is left of its
// caller's, and the page's, ringing one after another; at most
// RING_TIMEOUT_MS). Unanswered, the caller is told: its page rang on
// ("Calling…") until its own RING_TIMEOUT_MS, longer than this ring when
// it was cut short (test 123).
function ringFrom(callId, from, ms) {
	const c = newCall(callId, from, "ringing");
	c.rangAt = Date.now();
	setBanner("ringing", `${who(from)} is calling`,
	    "Accept to talk, with camera and microphone where allowed.");
	c.timer = setTimeout(() => {
		if (call === c && c.phase === "ringing") {
			send(c, "decline", { reason: "unanswered" });
			endCall("ended", `Missed call from ${who(from)}`);
		}
	}, ms);
}

function accept() {
	const c = call;
	if (!c || c.phase !== "ringing")
		return;
	clearTimeout(c.timer);
	c.accepted = true;
	rang.delete(c.peer.user);
	send(c, "accept", {});
	startPeer(c, "offer");
}

function decline() {
	const c = call;
	if (!c || c.phase !== "ringing")
		return;
	c.declined = true;
	remember(mutedUntil, c.peer.user, Date.now() + MUTE_MS);
	send(c, "decline", { reason: "declined" });
	endCall("ended", `Declined the call from ${who(c.peer)}`);
}

function onAccept(data, meta) {
	const from = sender(data, meta);
	// A call this page hung up on, accepted: its hangup was lost (the
	// callee's page got a reset, and rang on). Said again, or the callee
	// waits to connect until it gives up. Only for that call's peer.
	const past = pastCallIds.get(data.callId);
	if (past) {
		if (samePeer(from, past.peer) &&
		    tellAgain(`hangup\u0000${data.callId}`))
			sig.send(from.user, from.device, { callId: data.callId,
			    from: me }, { event: "hangup" }).catch(() => {});
		return;
	}
	// Only from the call's peer: not from a sender that cannot be told
	// (a token that pins no device, and no `from` of its user's).
	if (!call || data.callId !== call.id || call.phase !== "calling" ||
	    !samePeer(from, call.peer))
		return;
	clearTimeout(call.timer);
	startPeer(call, "wait");
}

// Whether a message of the current call's (data, meta) comes from its
// peer: anyone else who knows the call's id (in open mode, whoever claims
// another sender) is ignored. Any of the call's ids: after both called at
// once, the peer may hang up the call it placed, by its own id (test 120).
function fromPeer(data, meta) {
	return call !== null && data !== null && typeof data === "object" &&
	    call.ids.has(data.callId) &&
	    samePeer(sender(data, meta), call.peer);
}

function onDecline(data, meta) {
	if (!fromPeer(data, meta))
		return;
	const peer = who(call.peer);
	if (data.reason === "unanswered")
		endCall("failed", `${peer} did not answer`,
		    "Try again later, or another device.");
	else if (data.reason === "later")
		endCall("failed", `${peer} is not taking calls just now`,
		    "Their page has rung a lot lately: try again in a minute.");
	else
		endCall("failed", data.reason === "busy" ?
		    `${peer} is in another call` : `${peer} declined the call`,
		    "Try again later, or call another of their devices.");
}

function onHangup(data, meta) {
	if (!fromPeer(data, meta))
		return;
	// A caller that gave up while the page rang: a missed call, as when
	// the ring runs its time (test 123); nothing to answer, it has gone.
	if (call.phase === "ringing")
		endCall("ended", `Missed call from ${who(call.peer)}`);
	else
		endCall("ended", `${who(call.peer)} hung up`, "Call ended.");
}

function hangup() {
	if (!call)
		return;
	send(call, "hangup", {});
	endCall("ended", "Call ended", `You hung up on ${who(call.peer)}.`);
}

function send(c, event, data) {
	return sig.send(c.peer.user, c.peer.device,
	    { callId: c.id, from: me, ...data },
	    { event }).catch((e) => {
		if (call === c && c.phase !== "connected")
			endCall("failed", `Lost contact with ${who(c.peer)}`,
			    explain(e));
	});
}

function endCall(phase, title, detail = "") {
	const c = call;
	call = null;
	if (c) {
		// A ring that ended unanswered: the next of that caller's (of
		// any caller but a contact's), soon after, rings for what is
		// left of CALLER_RING_MS (of PAGE_RING_MS).
		if (c.phase === "ringing") {
			const now = Date.now();
			const ms = Math.max(RING_MIN_MS, now - c.rangAt);
			const r = rang.get(c.peer.user);
			remember(rang, c.peer.user, { rung: ms +
			    (r && c.rangAt - r.last < MUTE_MS ? r.rung : 0),
			    last: now });
			if (!contacts.has(c.peer.user)) {
				if (c.rangAt - pageRang.last >= MUTE_MS)
					pageRang = { rung: 0, last: now,
					    callers: new Set() };
				pageRang.rung += ms;
				pageRang.last = now;
				pageRang.callers.add(c.peer.user);
			}
		}
		for (const id of c.ids)
			pastCallIds.set(id,
			    { peer: c.peer, declined: c.declined === true });
		for (const id of pastCallIds.keys()) {
			if (pastCallIds.size <= PAST_CALL_IDS)
				break;
			pastCallIds.delete(id);
		}
		clearTimeout(c.timer);
		if (c.dc)
			c.dc.close();
		if (c.pc)
			c.pc.close();
	}
	if (localStream) {
		for (const t of localStream.getTracks())
			t.stop();
		localStream = null;
	}
	$("local-video").srcObject = null;
	$("local").hidden = true;
	$("controls").hidden = true;
	$("remote-video").srcObject = null;
	$("remote-placeholder").hidden = false;
	$("toggle-mic").disabled = $("toggle-cam").disabled = true;
	setChatEnabled(false);
	setRemote(null);
	setBanner(phase, title, detail);
	if (c && c.phase === "connected")
		note(title);
	renderContacts();
}

// ------------------------------------------------------ perfect negotiation

async function getMedia() {
	if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
		return { stream: null, why: "this page is not in a secure " +
		    "context (use HTTPS)" };
	}
	let why = "";
	for (const want of [{ audio: true, video: true }, { audio: true }]) {
		try {
			return { stream: await navigator.mediaDevices
			    .getUserMedia(want), why: "" };
		} catch (e) {
			why = e.name === "NotAllowedError" ? "permission denied" :
			    e.name === "NotFoundError" ? "no camera or microphone" :
			    e.message;
		}
	}
	return { stream: null, why };
}

// Who makes the first offer: "offer" (the callee, on accepting), "wait"
// (the caller: its tracks join its answer to the callee's offer), or
// "polite-waits" (both called at once). With one side offering first there
// is no offer collision at the start of a call (a rollback in the middle of
// ICE gathering left Chromium without candidates); perfect negotiation
// still handles collisions later (renegotiation, ICE restarts).
async function startPeer(c, first) {
	c.phase = "connecting";
	renderContacts();  // no Call while in a call
	setBanner("connecting", `Connecting to ${who(c.peer)}…`,
	    "Finding a network path.");
	// Fixed roles: the smaller (user, device) is polite.
	c.polite = `${me.user}\u0000${me.device}` <
	    `${c.peer.user}\u0000${c.peer.device}`;
	c.waitForOffer = first === "wait" ||
	    (first === "polite-waits" && c.polite);
	c.localAdded = false;
	const iceServers = await freshIceServers() || [];
	const { stream, why } = await getMedia();
	if (call !== c) {
		stream?.getTracks().forEach((t) => t.stop());
		return;
	}
	let pc;
	try {
		pc = new RTCPeerConnection({ iceServers });
	} catch (e) {
		// A list the browser refuses (a URL it cannot parse, a TURN
		// username too long) throws on the whole list: direct paths
		// only, as when none came, rather than no call at all.
		console.warn("ICE servers refused:", e.message);
		lastIceServers = null;
		pc = new RTCPeerConnection();
	}
	c.pc = pc;
	window.beepApp.pc = pc;
	localStream = stream;
	$("media-note").hidden = !!stream;
	$("media-note").textContent = stream ? "" :
	    `Camera and microphone are off: ${why}. Chat still works.`;
	pc.ontrack = ({ streams }) => {
		$("remote-video").srcObject = streams[0];
		$("remote-placeholder").hidden =
		    streams[0].getVideoTracks().length > 0;
	};
	pc.onnegotiationneeded = async () => {
		try {
			c.makingOffer = true;
			await pc.setLocalDescription();
			await send(c, "description",
			    { description: pc.localDescription.toJSON() });
		} catch (e) {
			console.warn("negotiation", e);
		} finally {
			c.makingOffer = false;
		}
	};
	pc.onicecandidate = ({ candidate }) => {
		if (candidate)
			send(c, "candidate", { candidate: candidate.toJSON() });
	};
	pc.onconnectionstatechange = () => onConnectionState(c);
	c.timer = setTimeout(function stalled() {
		if (call !== c || c.phase === "connected")
			return;
		if (!c.failedOnce) {
			c.failedOnce = true;
			if (!c.localAdded) {
				// The peer's offer never came: make one.
				console.warn("no offer yet: offering");
				addLocal(c);
			} else {
				console.warn("not connected yet: ICE restart");
				restartIce(c);
			}
			c.timer = setTimeout(stalled, CONNECT_TIMEOUT_MS);
			return;
		}
		send(c, "hangup", {});
		endCall("failed", `Could not connect to ${who(c.peer)}`,
		    "No network path between you (a TURN server would help).");
	}, CONNECT_TIMEOUT_MS);
	c.stream = stream;
	if (!c.waitForOffer)
		addLocal(c);
	for (const m of c.pending.splice(0))
		handlePeer(c, m.kind, m.data);
}

// STUN/TURN servers, asked for each call and before each ICE restart: the
// TURN credentials expire (BEEP_TURN_TTL), and a failure must cost no more
// than this attempt. null when they cannot be had: a call still connects
// where the peers reach each other directly.
// One attempt, a short wait: a call does not wait on them for long, and
// goes on with the last servers that came (or none) when they do not.
let lastIceServers = null;
async function freshIceServers() {
	try {
		lastIceServers = await sig.iceServers({ attempts: 1,
		    timeout: ICE_SERVERS_TIMEOUT_MS });
	} catch (e) {
		console.warn("ICE servers:", explain(e));
	}
	return lastIceServers;
}

// An ICE restart on c's connection, with fresh STUN/TURN servers.
async function restartIce(c) {
	const iceServers = await freshIceServers();
	if (call !== c || c.pc.signalingState === "closed")
		return;
	try {
		if (iceServers)
			c.pc.setConfiguration({ ...c.pc.getConfiguration(),
			    iceServers });
	} catch (e) {
		console.warn("ICE servers not applied:", e);
	}
	c.pc.restartIce();
}

// This page's camera, microphone and chat channel, on c's connection.
function addLocal(c) {
	const pc = c.pc, stream = c.stream;
	if (call !== c || c.localAdded)
		return;
	c.localAdded = true;
	if (stream) {
		$("local-video").srcObject = stream;
		$("local").hidden = !stream.getVideoTracks().length;
		$("controls").hidden = false;
		for (const t of stream.getTracks())
			pc.addTrack(t, stream);
		$("toggle-mic").disabled = !stream.getAudioTracks().length;
		$("toggle-cam").disabled = !stream.getVideoTracks().length;
	}
	// Negotiated on both sides: no race over who opens it.
	const dc = pc.createDataChannel("chat", { negotiated: true, id: 0 });
	c.dc = dc;
	dc.onopen = () => {
		if (call === c)
			setChatEnabled(true);
	};
	dc.onclose = () => setChatEnabled(false);
	dc.onmessage = (e) => addChat(String(e.data), "theirs");
}

function onConnectionState(c) {
	if (call !== c)
		return;
	const s = c.pc.connectionState;
	if (s === "connected") {
		clearTimeout(c.timer);
		c.phase = "connected";
		setBanner("connected", `Connected with ${who(c.peer)}`,
		    connectedDetail());
	} else if (s === "disconnected") {
		c.phase = "reconnecting";
		setBanner("reconnecting", `Reconnecting to ${who(c.peer)}…`,
		    "The network path was interrupted.");
	} else if (s === "failed") {
		if (!c.failedOnce) {
			// One ICE restart before giving up.
			c.failedOnce = true;
			c.phase = "reconnecting";
			setBanner("reconnecting", `Reconnecting to ${who(c.peer)}…`,
			    "Trying another network path.");
			restartIce(c);
			return;
		}
		send(c, "hangup", {});
		endCall("failed", `The call with ${who(c.peer)} failed`,
		    "No network path between you (a TURN server would help).");
	}
}

function onPeerMessage(kind, data, meta) {
	const c = call;
	if (!fromPeer(data, meta))
		return;
	if (!c.pc) {
		// Kept until the peer connection exists; a few dozen come in
		// earnest (an offer or answer, their candidates), and a caller
		// that posts on while the page rings must not grow it without
		// bound (test 78).
		if (c.pending.length < MOST_PENDING)
			c.pending.push({ kind, data });
		else if (!c.pendingDropped && (c.pendingDropped = true))
			console.warn(`more than ${MOST_PENDING} messages before ` +
			    "the call's connection: dropped");
		return;
	}
	handlePeer(c, kind, data);
}

// One message at a time, in order: each step awaits the previous one.
function handlePeer(c, kind, data) {
	c.queue = c.queue.then(async () => {
		if (call !== c)
			return;
		const pc = c.pc;
		if (kind === "description") {
			const d = data.description;
			const had = pc.remoteDescription;
			if (had && had.type === d.type && had.sdp === d.sdp)
				return;  // the same one again (a retried send)
			const collision = d.type === "offer" &&
			    (c.makingOffer || pc.signalingState !== "stable");
			c.ignoreOffer = !c.polite && collision;
			if (c.ignoreOffer)
				return;
			await pc.setRemoteDescription(d);
			if (d.type === "offer") {
				// A waiting caller's tracks join its answer.
				addLocal(c);
				await pc.setLocalDescription();
				await send(c, "description",
				    { description: pc.localDescription.toJSON() });
			}
		} else if (kind === "candidate") {
			try {
				await pc.addIceCandidate(data.candidate);
			} catch (e) {
				if (!c.ignoreOffer)
					throw e;
			}
		}
	}).catch((e) => console.warn(kind, e));
}

// ----------------------------------------------------------------- wiring

function toggleTrack(kind, button) {
	if (!localStream)
		return;
	const tracks = kind === "audio" ? localStream.getAudioTracks() :
	    localStream.getVideoTracks();
	const on = !tracks.every((t) => t.enabled);
	for (const t of tracks)
		t.enabled = on;
	button.setAttribute("aria-pressed", String(on));
}

window.beepApp = {
	get phase() { return document.body.dataset.phase || "join"; },
	get call() { return call; },
	sig: null,
	pc: null,
};

const fragmentToken = takeFragmentToken();
$("join-user").value = localStorage.getItem("beep.user") || "";
$("join-device").value = localStorage.getItem("beep.device") ||
    (/Mobi/.test(navigator.userAgent) ? "phone" : "laptop");

$("join-form").addEventListener("submit", (e) => {
	e.preventDefault();
	join($("join-user").value.trim(), $("join-device").value.trim());
});

$("find-form").addEventListener("submit", (e) => {
	e.preventDefault();
	const name = $("find-user").value.trim();
	if (!name)
		return;
	if (!contacts.has(name))
		contacts.set(name, { devices: null, error: "" });
	$("find-user").value = "";
	saveContacts();
	renderContacts();
	refreshContacts();
});

$("chat-form").addEventListener("submit", (e) => {
	e.preventDefault();
	const text = $("chat-input").value;
	if (!text || !call || !call.dc || call.dc.readyState !== "open")
		return;
	call.dc.send(text);
	addChat(text, "mine");
	$("chat-input").value = "";
});

$("accept").addEventListener("click", accept);
$("decline").addEventListener("click", decline);
$("hangup").addEventListener("click", hangup);
$("toggle-mic").addEventListener("click",
    () => toggleTrack("audio", $("toggle-mic")));
$("toggle-cam").addEventListener("click",
    () => toggleTrack("video", $("toggle-cam")));
// A reload or a closed tab mid-call: the peer is told at once, by a send
// that outlives the page (see send's keepalive in beep-signal.js), instead
// of seeing the call fail after its ICE timeouts.
window.addEventListener("pagehide", () => {
	const c = call;
	if (!c)
		return;
	sig.send(c.peer.user, c.peer.device, { callId: c.id, from: me },
	    { event: "hangup", keepalive: true }).catch(() => {});
	endCall("ended", "Call ended", "You left the page.");
});
setBanner("idle", "No call");
document.body.dataset.phase = "join";
