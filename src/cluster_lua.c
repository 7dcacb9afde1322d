/* cluster_lua: see cluster_lua.h. */
#include "cluster_lua.h"

#define LUA_PRELUDE                                                            \
	"local function now_ms() local t = redis.call('TIME') "                \
	"return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "    \
	"end "                                                                 \
	"local function idp(s) local a, b = string.match(s, "                  \
	"'^(%d+)%-(%d+)$') return tonumber(a), tonumber(b) end "               \
	"local function idlt(x, y) local a1, b1 = idp(x) "                     \
	"local a2, b2 = idp(y) return a1 < a2 or (a1 == a2 and b1 < b2) "      \
	"end "                                                                 \
	"local function beat_of(node) "                                        \
	"local t = redis.call('HGET', 'beep:beat', node) "                     \
	"if t then return string.format('%d-0', tonumber(t) - 1) end "         \
	"return nil end "                                                      \
	"local function undone(tok, lo, hi) local t, l = tonumber(tok), "      \
	"tonumber(lo) return t ~= nil and l > 0 and t >= l and "               \
	"t <= tonumber(hi) end "                                               \
	"local function earlier(a, b) if a == nil then return b end "          \
	"if b == nil or idlt(a, b) then return a end return b end "            \
	"local function mark_of(u, f) return string.match("                    \
	"redis.call('HGET', u, f) or '', '^(%d+%-%d+)') end "                  \
	"local function holders(u, dev, fs) local pre = dev .. '\\31' "        \
	"local nodes, dead, since, low = {}, false, nil, nil "                 \
	"for _, f in ipairs(fs or redis.call('HKEYS', u)) do "                 \
	"if string.sub(f, 1, #pre) == pre then "                               \
	"local node = string.sub(f, #pre + 1) "                                \
	"if redis.call('EXISTS', 'beep:n:' .. node) == 1 then "                \
	"nodes[#nodes + 1] = node else low = earlier(low, mark_of(u, f)) "     \
	"redis.call('HDEL', u, f) "                                            \
	"dead = true since = earlier(since, beat_of(node)) end end end "       \
	"return nodes, dead, since, low end "                                  \
	"local function node_fields(u, suf) local by, out = {}, {} "           \
	"for _, f in ipairs(redis.call('HKEYS', u)) do "                       \
	"local i = string.find(f, '\\31', 1, true) "                           \
	"if i and i > 1 then local dev = string.sub(f, 1, i - 1) "             \
	"by[dev] = by[dev] or {} "                                             \
	"if string.sub(f, i) == suf then out[#out + 1] = dev "                 \
	"else by[dev][#by[dev] + 1] = f end end end "                          \
	"return out, by end "                                                  \
	"local function base() "                                               \
	"return (redis.call('GET', 'beep:born') or '0') .. '-0' end "          \
	"local function incarnation(now, again, rebuild) "                     \
	"local b = redis.call('GET', 'beep:born') "                            \
	"if not b then b = string.format('%d', now) "                          \
	"redis.call('SET', 'beep:born', b) "                                   \
	"if again then "                                                       \
	"redis.call('SET', 'beep:rebuild', '1', 'PX', rebuild) end end "       \
	"return b .. '-0' end "                                                \
	"local function away(m, grace) "                                       \
	"if redis.call('EXISTS', m) == 0 then return end "                     \
	"local t = redis.call('PTTL', 'beep:s:' .. string.sub(m, 8)) "         \
	"if t == -1 then return end "                                          \
	"if t < grace then t = grace end "                                     \
	"redis.call('PEXPIRE', m, t + 1000) end "                              \
	"local function to_grace(g, m, dev, now, grace, since, low) "          \
	"local ow = redis.call('HGET', m, 'ow') "                              \
	"if ow then redis.call('HDEL', m, 'ow') end "                          \
	"if grace > 0 then "                                                   \
	"redis.call('HSET', g, dev, string.format('%d', now + grace)) "        \
	"redis.call('PEXPIRE', g, grace + 1000) "                              \
	"if redis.call('HLEN', g) > 16 then "                                  \
	"local r = redis.call('HRANDFIELD', g, 8, 'WITHVALUES') "              \
	"for i = 1, #r, 2 do if tonumber(r[i + 1]) <= now then "               \
	"redis.call('HDEL', g, r[i]) end end end "                             \
	"if redis.call('EXISTS', m) == 1 then "                                \
	"local held = redis.call('HGET', m, 'last') or base() "                \
	"if since and idlt(since, held) then held = since "                    \
	"local took = redis.call('HGET', m, 'took') "                          \
	"local tb = redis.call('HGET', m, 'tb') "                              \
	"if took and idlt(held, took) and not (tb and idlt(held, tb)) then "   \
	"held = took end "                                                     \
	"if idlt(held, base()) and "                                           \
	"redis.call('EXISTS', 'beep:found') == 0 then held = base() end end "  \
	"if ow and (not since or (low and idlt(ow, low))) and "                \
	"idlt(ow, held) then held = ow end "                                   \
	"redis.call('HSET', m, 'held', held) end end "                         \
	"away(m, grace) end "                                                  \
	"local function moved(s, m, top, metattl, keep) "                      \
	"local last = redis.call('HGET', m, 'last') or base() "                \
	"if idlt(top, last) then top = last end "                              \
	"local tms, tseq = idp(top) "                                          \
	"local to = string.format('%d-%d', tms, tseq + 1) "                    \
	"redis.call('HSET', m, 'last', to, 'floor', to) "                      \
	"redis.call('PEXPIRE', m, metattl) "                                   \
	"redis.call('XTRIM', s, 'MINID', keep or to) return to end "           \
	"local function rise(m, id) local f = redis.call('HGET', m, 'floor') " \
	"if not f or idlt(f, id) then redis.call('HSET', m, 'floor', id) end " \
	"end "                                                                 \
	"local function registers(u, node) local suf = '\\31' .. node "        \
	"for _, f in ipairs(redis.call('HKEYS', u)) do "                       \
	"if #f > #suf and string.sub(f, -#suf) == suf then return true end "   \
	"end return false end "                                                \
	"local function tell(u, user, dev, node, id, frame) "                  \
	"local pre = dev .. '\\31' "                                           \
	"local msg = string.format('%s %d %d ', id, #user, #dev) .. user .. "  \
	"dev .. frame "                                                        \
	"for _, f in ipairs(redis.call('HKEYS', u)) do "                       \
	"local other = string.sub(f, #pre + 1) "                               \
	"if string.sub(f, 1, #pre) == pre and other ~= node then "             \
	"redis.pcall('PUBLISH', 'beep:c:' .. other, msg) end end end "         \
	"local function tell_gen(now) return string.format('%d', "             \
	"now * 1000 + redis.call('INCR', 'beep:tells') % 1000) end "           \
	"local function kept(s, m, hold, floor) local h, k, t, l = "           \
	"string.match(redis.call('HGET', m, 'hk') or '', "                     \
	"'^(%S+) (%S+) (%S+) (%S)$') if h and not idlt(hold, h) and "          \
	"t == floor and "                                                      \
	"(k == '-' or #redis.call('XRANGE', s, k, k) > 0) then return l end "  \
	"return nil end "

/*
 * beep:born is when this Redis's data began (ms): every id a device gets
 * from it is above base() ("BORN-0").  An id below it was given by a Redis
 * that has since lost its data (restarted empty, flushed): what came
 * after it is unknown.  The first script to find beep:born missing sets
 * it; when that is a node that was connected to a Redis before (again),
 * this Redis has lost what the nodes had registered, and until every node
 * has registered again (rebuild ms: a heartbeat period plus a reconnection)
 * "no such device" is not known: beep:rebuild tells the post script,
 * which answers 503 rather than a wrong 404; as it does while beep:born
 * is missing (a node's heartbeat or SUB sets it first, so a post finds
 * it missing only when Redis was flushed since).
 */

/*
 * to_grace(): the device's grace period begins; what is posted from now
 * on is held (held: where it begins).  The user's hash of grace periods
 * lives as long as one is added within a grace period of the last, and a
 * device's entry goes only when a POST or SUB of it finds it over: a
 * client that keeps opening and closing streams of new devices of one user
 * made it grow for ever (a review).  So each addition to a hash past 16
 * entries also drops the ended ones among 8 taken at random (HRANDFIELD,
 * Redis 6.2): about one in eight left is over.  A device that never had a message
 * has no metadata, and gets none here: SUB takes a missing held for
 * base(), which is what it would say, and a client that opens and closes
 * streams of new devices would otherwise leave a key behind for each, for
 * as long as metadata lasts (away()).  since: the device's holder was a node found dead,
 * whose stream may have died with it at any time after its last heartbeat
 * (beep:beat); what was accepted (200) after that went to no one, so the
 * holding begins there, not at the last message (beat_of(): the position
 * just before that heartbeat; nil when unknown).  A client that comes back
 * without an id may get again what the dead node delivered in its last
 * heartbeat period: a copy rather than a silent loss.  But never below
 * took: what a live node's streams took, which its served UNSUB wrote
 * there (see UNSUB): that is not the dead node's to give again.  Not
 * seen, as until 2026-12-07: seen is also where a stream began, and a
 * second tab opened without an id while the device was live on the
 * dead node begins after what that node's stream never delivered (the
 * 200s after its last heartbeat) and takes none of it; the hold came no
 * lower than there, and they were lost, untold, for a new page
 * (test_cluster_dead_holder_late_tab).  Likewise a SUB with an id, which
 * writes seen at the device's last before its replay is taken, on a
 * node that dies before writing it
 * (test_cluster_dead_holder_replay_untaken).  And not up to took from
 * below tb, where the streams that took up to took began: a second tab
 * that began after those 200s and then took a later message took only
 * what came after where it began, and the hold from took lost them
 * until 2026-12-07 (test_cluster_dead_holder_late_tab_took_later);
 * what that tab took is given again (a copy).  A node
 * of the version before writes no took: what its streams took after
 * the dead node's last heartbeat may be given again (a copy).  Nor
 * above ow, where a holder that left before the last one stopped
 * taking (see UNSUB); where a dead holder's heartbeat gives the hold
 * (since), only when every dead holder's stream began above ow (low:
 * the lowest mark of their fields, holders()), so took none of what
 * came after it: a second tab opened without an id while the device
 * was live elsewhere, which dies with its node, lost it, untold, until
 * 2026-12-07 (test_cluster_dead_late_tab_outlives).  One that began at
 * or below ow may have taken it, as before: what it delivered is not
 * given again.  ow goes either way.  A hold from ow is not raised to
 * base(): below it only when the data began afresh since ow was noted
 * (a PRUNE's finding), and SUB replays what Redis still has below
 * base() from there (see SUB); raised, it started above those entries,
 * and the owed 200 was lost, untold, until 2026-12-07
 * (test_cluster_late_tab_outlives_finding).  Nor is a hold from since
 * while Redis marks a finding (beep:found): the 200s after that
 * heartbeat, from before the data began afresh, were lost so, untold,
 * until 2026-12-07 (test_cluster_dead_holder_finding).  Without the
 * mark it is raised: since is then below base() when the node's last
 * heartbeat came in the millisecond the data began (beat_of() is a
 * millisecond before it), and nothing is below base(); or the mark
 * has gone, and every entry kept below base() with it.  Below the
 * floor, SUB would start a new page with a reset for nothing (test 28,
 * test_cluster_dead_holder_first_beat).
 *
 * away(): no node holds the device any more (grace 0 too), or a POST
 * held a message for it (grace: what is left of its grace period).  Its
 * metadata, which lasts a day past its last message while a node holds
 * it (SUB and a POST answered 200 set that), so that its ids stay in
 * order across a clock step, now lasts only as long as its grace period
 * and its stream (beep:s, which it must outlive: a SUB that finds entries
 * and no metadata would replay them from base() to a new client) and a
 * second: then every node has forgotten the device, as one node does,
 * and a client back with an id of it gets a reset.  For a day, a client
 * that opened streams of new devices, posted to each and left made Redis
 * keep a key per message (760 bytes with the longest ids), at its
 * BEEP_RATE on every node: 6.5 GB a day from one address a node (a
 * review, test 38).  A stream without a TTL (none is made so) leaves it.
 */

/*
 * moved(): the device moves to a new position, above top and above every
 * id Redis gave it: it becomes the device's last and floor, so a node or
 * a client that had less than it is told that messages were lost (SUB),
 * and the entries below it go (nothing replays below the floor), but for
 * those from keep on when keep is given: a resync that moves the device
 * keeps what its answer replays, for the same resync sent again when that
 * answer was lost (see SUB).  Returns the new position.
 *
 * kept(): whether a stream with no usable id that starts from hold, below
 * the floor, is replayed from hold: a lone-delivery UNSUB (see there), or
 * a resync that moved the device (SUB's taken), kept what came after its
 * noted position, hold is that position or above it, and its note (hk)
 * still holds (the
 * floor is the move's, and the oldest entry kept is still there: trims
 * take the oldest first, so then all are, those after hold with them).
 * Above it when the UNSUB held from the device's took, which another
 * node's stream of the device (a second tab) that took more than the
 * noting node's streams left there (see SUB's taken).  Until 2026-12-07
 * only the noted position was replayed: a hold above it started at the
 * floor, with a reset ("messages were dropped while away") where
 * nothing was lost.  Returns nil, or "l" when it
 * starts with a reset (a lone message no stream took is lost), or "-" or
 * "o" (the same here: a client with no id; see kept_at()).
 *
 * rise(): the floor becomes id, a trimmed entry's, unless it is above it
 * already: entries a move kept below its floor are trimmed by POST like
 * any other, and the floor must not come down to them (a client of
 * another node that had one would resume past the reset it was owed).
 *
 * tell(): publish frame (a packed reset) with id to every node holding
 * dev but node: their streams are told that messages before id may be
 * lost.  A holder that is not listening now (its channel down, or gone)
 * finds the floor above what it had when it resubscribes.
 *
 * A PUBLISH Redis refuses (NOPERM: the nodes' ACL user without its
 * channels, `acl-pubsub-default resetchannels`) does not stop a script
 * after its writes (an error then would answer 503 for a message that
 * stays, and is replayed later, after its sender's retry): every node
 * connects as the same user, so no node's channel is subscribed either
 * (Redis closes a subscriber whose channels are revoked), and each reads
 * what it missed from the streams when its channel is allowed again.
 */

/*
 * KEYS u g s m; ARGV dev user frame maxlen keep_ms grace_ms meta_ttl_ms
 * run (the node's Redis run, "" not known: beep:wr, see PRUNE) sender
 * share (absent: a sender not known, BEEP_SENDER_SHARE 100, or a node of
 * the version before; "" and 0 before a key) key.  sender: the poster's
 * name, the same on every node (cluster_sender()); share: what one
 * sender may hold (entries).  key: the POST's idempotency key, its
 * sender's name (hex), \x1f and its text (absent or "": none): one that
 * beep:k:USER\x1fDEV\x1fSENDER\x1fKEY names an entry of the device's
 * stream still has is that POST sent again by its sender, its answer
 * lost: nothing is added or published, and it is answered with
 * that entry's id, 200 or 202 as any POST now, and beep:w as it is.
 * Else the key is set to the new entry's id for keep_ms, as the entry
 * lasts.
 *
 * crowds(): the sender share, as one node's registry_log_crowds() has it:
 * one sender cannot push out what others posted to a device away (until
 * 2026-12-07 Redis trimmed to maxlen whoever sent: test_cluster_sender_
 * share).  Asked only for a POST held (202: a live holder delivers at
 * once, and the oldest go as before) that would trim by count: old, the
 * entries that would go.  Those above held (where the device's next
 * stream begins: no stream took them) of another sender go only when the
 * poster holds less than share of the entries above held (else {429})
 * and each of their senders holds share or more (else {503, "held
 * full"}: not the poster's doing; so too past 4 such senders, as
 * registry_log.c's LOG_OTHERS_MAX).  Refused
 * before the XADD: nothing of the message written, nothing trimmed (the
 * counts may be, tally()).  Each held POST's
 * sender is kept in ws (beep:ws:USER\x1fDEV), an entry of the same id,
 * trimmed to maxlen and lasting keep_ms as the device's stream: the
 * check reads those, not the entries, whose frames cost Lua 23 ms for
 * 256 of 60 KB.  An entry with no twin there (from a node of the version
 * before, answered 200) counts for no sender and goes as before, as does
 * one a stream took; a twin below old's first has no entry (trimmed by
 * age) and is not read.  A held POST that trims nothing reads nothing
 * more (its XLEN moves before the XADD), nor does a 200.  Trims by age
 * (keep_ms) go as before, and what this POST's trims by age take (below
 * cut) counts for no one, pushed out or not: until 2026-12-07 an offer
 * past the retention, the oldest of a full device (held since before a
 * stream that took none of it), refused every other sender's POST (503)
 * that would have trimmed it by age, and none accepted did, until the
 * device's stream expired (test_cluster_sender_share_aged).
 * A stream that expired (nothing posted for keep_ms) took every entry up
 * to last with it, and no trim said so: the floor becomes last before the
 * new stream begins, so that a resume from before it is told.
 *
 * tally(): what each sender holds of ws from lo on (above held, and no
 * trim by age's), for crowds(): a function of a sender's name.  Until
 * 2026-12-07 crowds() read all of them (up to maxlen) each time it was
 * asked, refused or not: 0.3 to 0.7 ms of Redis's time at 256, 1 ms at
 * 1024, which a sender past its share spent at will by retrying its
 * refusals at its BEEP_RATE (test_cluster_sender_share_refusal_reads).
 * The counts are kept in wc (beep:wc:USER\x1fDEV, a hash: a field a
 * sender, and f and l, the first and last entry of ws counted), and the
 * next ask reads only what changed: what ws gained above l, and what its
 * window lost below f (held moved up, entries trimmed or past keep_ms),
 * each once; ws_gone() and ws_went(): a POST that trims ws by count takes
 * what it trims out of the counts, and f up to the next entry kept, when
 * f is still in ws.  They are counted from ws again (as before) when they
 * cannot be followed: none, f no longer in ws (trimmed by a node of the
 * version before, or by a POST that trimmed ws and not s: s lost entries
 * by age that ws keeps, so ws can be full while s is not), the window's
 * first below f (held came down) or above l (all counted gone), l above
 * ws's last, a count that would go below 0, or a write of them refused
 * (OOM: then used, not kept).  Until 2026-12-07 (c36b75f) ws_went() also
 * followed counts whose f had gone unfollowed, on from the next entry
 * kept, still counting what went: a sender counted more than it held,
 * refused 429 where a recount answered 503
 * (test_cluster_sender_share_counts_stale, _mixed: each answer against a
 * recount in the same run, nodes of two BEEP_REPLAY_MAX, the age cut
 * moving).  f goes first and comes back last, so that counts half written
 * are never read.  They last 10 s at most from their counting, and no
 * longer than ws: whatever they missed cannot outlive that.  A refusal
 * retried reads about 5 entries while nothing held changed, and about as
 * many more as changed (test_cluster_sender_share_counts_exact: the
 * counts kept are those of the entries they say, through a long run).
 *
 * Returns {404}, {503} (no holder known while presence is rebuilt), {429}
 * or {503, "held full"} (crowds()), or {200|202, id, w, born}:
 * w counts the messages this Redis's data has
 * accepted (beep:w), which the node keeps the highest of for the data
 * that began at born (beep:born; "" while it is missing), for PRUNE.  Trimming by age looks for an entry past the age first: the
 * reverse search for the newest entry to trim walks the whole stream when
 * there is none (measured: 31 of 68 us per post at 256 entries).  It asks
 * for the oldest entry below the cut, which is nothing but a seek when
 * there is none: until 2026-12-08 it read the oldest entry, frame and
 * all, at every POST, and a client that posted one message of 328 KB (a
 * JSON body of 64 KB once encoded) made every POST to the device for its
 * retention cost Redis that copy, 650 us where it was 90 here (test
 * 118).  Each entry read to be trimmed is read once, as it goes.  A trim
 * raises the floor (rise()), never lowers it: below it there may be
 * entries a resync's move kept (see SUB).
 */
static const char cluster_lua_post[] = LUA_PRELUDE
    "local function senders(ws, a, b) local c = {} "
    "for _, e in ipairs(redis.call('XRANGE', ws, a, b)) do "
    "local x = e[2][2] c[x] = (c[x] or 0) + 1 end return c end "
    "local function tally(ws, lo) "
    "local wc = 'beep:wc:' .. string.sub(ws, 9) "
    "local first = redis.call('XRANGE', ws, lo, '+', 'COUNT', 1)[1][1] "
    "local top = redis.call('XREVRANGE', ws, '+', '-', 'COUNT', 1)[1][1] "
    "local k = redis.call('HMGET', wc, 'f', 'l') "
    "local f, l = k[1], k[2] "
    "local ok = f and l and idp(f) and idp(l) and "
    "not idlt(l, first) and not idlt(top, l) and not idlt(first, f) and "
    "#redis.call('XRANGE', ws, f, f) == 1 "
    "if ok and (f ~= first or l ~= top) then "
    "local function add(a, b, d) "
    "for x, n in pairs(senders(ws, a, b)) do "
    "local v = redis.pcall('HINCRBY', wc, x, d * n) "
    "if type(v) ~= 'number' or v < 0 then return false end "
    "if v == 0 then redis.call('HDEL', wc, x) end end return true end "
    "redis.call('HDEL', wc, 'f') "
    "if idlt(l, top) then ok = add('(' .. l, top, 1) end "
    "if ok and idlt(f, first) then ok = add(f, '(' .. first, -1) end "
    "if ok then ok = type(redis.pcall('HSET', wc, 'f', first, "
    "'l', top)) == 'number' end end "
    "if ok then return function(x) "
    "return tonumber(redis.call('HGET', wc, x) or '0') end end "
    "local c, a, good = senders(ws, first, top), {}, true "
    "redis.call('DEL', wc) "
    "for x, n in pairs(c) do a[#a + 1] = x a[#a + 1] = n "
    "if #a >= 200 then good = good and type(redis.pcall('HSET', wc, "
    "unpack(a))) == 'number' a = {} end end "
    "if #a > 0 then good = good and type(redis.pcall('HSET', wc, "
    "unpack(a))) == 'number' end "
    "local t = redis.call('PTTL', ws) "
    "if t < 0 or t > 10000 then t = 10000 end "
    "if good then redis.pcall('HSET', wc, 'f', first, 'l', top) "
    "redis.call('PEXPIRE', wc, t) else redis.call('DEL', wc) end "
    "return function(x) return c[x] or 0 end end "
    "local function ws_gone(ws, maxlen) "
    "local wc = 'beep:wc:' .. string.sub(ws, 9) "
    "local f = redis.call('HGET', wc, 'f') "
    "if not f or not idp(f) then return nil end "
    "local n = redis.call('XLEN', ws) + 1 - maxlen "
    "if n <= 0 then return nil end "
    "local g = redis.call('XRANGE', ws, '-', '+', 'COUNT', n) "
    "if #g == 0 or idlt(g[#g][1], f) then return nil end "
    "if #redis.call('XRANGE', ws, f, f) == 0 then "
    "redis.call('DEL', wc) return nil end "
    "return {ws, wc, f, g} end "
    "local function ws_went(w) local ws, wc, f, g = w[1], w[2], w[3], w[4] "
    "redis.call('HDEL', wc, 'f') "
    "local l, c = redis.call('HGET', wc, 'l'), {} "
    "if not l or not idp(l) then redis.call('DEL', wc) return end "
    "for _, e in ipairs(g) do "
    "if not idlt(e[1], f) and not idlt(l, e[1]) then "
    "local x = e[2][2] c[x] = (c[x] or 0) + 1 end end "
    "for x, n in pairs(c) do local v = redis.pcall('HINCRBY', wc, x, -n) "
    "if type(v) ~= 'number' or v < 0 then redis.call('DEL', wc) return "
    "end if v == 0 then redis.call('HDEL', wc, x) end end "
    "local nf = redis.call('XRANGE', ws, '(' .. g[#g][1], '+', "
    "'COUNT', 1)[1] "
    "if nf and not idlt(l, nf[1]) then "
    "redis.pcall('HSET', wc, 'f', nf[1]) "
    "else redis.call('DEL', wc) end end "
    "local function crowds(ws, m, old, me, share, cut) "
    "local held = redis.call('HGET', m, 'held') or base() "
    "local lo, others, n = '(' .. held, {}, 0 "
    "if idlt(held, old[1][1]) then lo = old[1][1] held = lo end "
    "if idlt(held, cut) then lo = cut end "
    "if idlt(old[#old][1], held) or idlt(old[#old][1], cut) then "
    "return nil end "
    "for _, e in ipairs(redis.call('XRANGE', ws, lo, old[#old][1])) do "
    "local x = e[2][2] "
    "if x ~= me and not others[x] then "
    "if n == 4 then return {503, 'held full'} end "
    "others[x] = 0 n = n + 1 end end "
    "if n == 0 then return nil end "
    "if share == 0 then return {429} end "
    "local count = tally(ws, lo) "
    "if count(me) >= share then return {429} end "
    "for x in pairs(others) do "
    "if count(x) < share then return {503, 'held full'} end end "
    "return nil end "
    "local u, g, s, m = KEYS[1], KEYS[2], KEYS[3], KEYS[4] "
    "local dev, user, frame = ARGV[1], ARGV[2], ARGV[3] "
    "local maxlen, keep = tonumber(ARGV[4]), tonumber(ARGV[5]) "
    "local grace, metattl = tonumber(ARGV[6]), tonumber(ARGV[7]) "
    "local now = now_ms() "
    "local nodes, dead, since, low = holders(u, dev) "
    "local status = 200 "
    "if #nodes == 0 then "
    "if dead then to_grace(g, m, dev, now, grace, since, low) end "
    "local gu = tonumber(redis.call('HGET', g, dev) or '0') "
    "if gu <= now then "
    "if gu > 0 then redis.call('HDEL', g, dev) end "
    "if redis.call('EXISTS', 'beep:rebuild') == 1 or "
    "redis.call('EXISTS', 'beep:born') == 0 then return {503} end "
    "return {404} end "
    "status = 202 end "
    "local key = ARGV[11] or '' local kk "
    "if key ~= '' then kk = 'beep:k:' .. string.sub(s, 8) .. '\\31' .. key "
    "local prior = redis.call('GET', kk) "
    "if prior and #redis.call('XRANGE', s, prior, prior) == 1 then "
    "return {status, prior, tonumber(redis.call('GET', 'beep:w') or '0'), "
    "redis.call('GET', 'beep:born') or ''} end end "
    "local want = '*' "
    "local last = redis.call('HGET', m, 'last') or base() "
    "if redis.call('EXISTS', s) == 0 and redis.call('EXISTS', m) == 1 "
    "then redis.call('HSET', m, 'floor', last) end "
    "local lms, lseq = idp(last) "
    "if lms >= now then want = string.format('%d-%d', lms, lseq + 1) end "
    "local me, n, old = ARGV[9] or '', nil, nil "
    "local ws = 'beep:ws:' .. string.sub(s, 8) "
    "local named = status == 202 and me ~= '' "
    "if named then n = redis.call('XLEN', s) + 1 "
    "if n > maxlen then "
    "old = redis.call('XRANGE', s, '-', '+', 'COUNT', n - maxlen) "
    "local no = crowds(ws, m, old, me, tonumber(ARGV[10]), "
    "string.format('%d-0', now - keep)) "
    "if no then return no end end end "
    "local gone = old and ws_gone(ws, maxlen) "
    "local id = redis.call('XADD', s, want, 'f', frame) "
    "if named then "
    "local wid = redis.pcall('XADD', ws, 'MAXLEN', maxlen, id, 's', me) "
    "if gone and type(wid) == 'string' then ws_went(gone) end "
    "redis.call('PEXPIRE', ws, keep) end "
    "n = n or redis.call('XLEN', s) "
    "if n > maxlen then "
    "old = old or redis.call('XRANGE', s, '-', '+', 'COUNT', n - maxlen) "
    "rise(m, old[#old][1]) "
    "redis.call('XTRIM', s, 'MAXLEN', maxlen) end "
    "local cut = string.format('%d-0', now - keep) "
    "if #redis.call('XRANGE', s, '-', '(' .. cut, 'COUNT', 1) > 0 then "
    "local old = redis.call('XREVRANGE', s, '(' .. cut, '-', 'COUNT', 1) "
    "rise(m, old[1][1]) "
    "redis.call('XTRIM', s, 'MINID', cut) end "
    "redis.call('HSET', m, 'last', id) "
    "if kk then redis.pcall('SET', kk, id, 'PX', keep) end "
    "redis.call('PEXPIRE', s, keep) "
    "if status == 200 then redis.call('PEXPIRE', m, metattl) "
    "else away(m, tonumber(redis.call('HGET', g, dev)) - now) end "
    "local msg = string.format('%s %d %d ', id, #user, #dev) .. user .. "
    "dev .. frame "
    "for _, node in ipairs(nodes) do "
    "redis.pcall('PUBLISH', 'beep:c:' .. node, msg) end "
    "local w = redis.call('INCR', 'beep:w') "
    "if ARGV[8] and ARGV[8] ~= '' then "
    "redis.call('HSET', 'beep:wr', ARGV[8], w) end "
    "return {status, id, w, redis.call('GET', 'beep:born') or ''}";

/*
 * KEYS u g s m; ARGV dev node after count sync meta_ttl_ms seen again
 * rebuild_ms here user frame max_bytes token undone_lo undone_hi
 * overhead (what a message costs beyond its frame in max_bytes, as in
 * a node's log: REGISTRY_MSG_OVERHEAD; absent, 0) taken alone (see
 * below; absent, "").  The
 * node's field of u gets "MARK TOKEN": where a stream with no id starts
 * (held, in the device's grace; else last), and the SUB's token, for an
 * UNSUB that undoes it; or 0 when it ended no grace period (the device
 * was live elsewhere: a stream there delivers on, and there is nothing
 * to give back).  undone_lo..undone_hi (0 0: none): the tokens of
 * this node's SUBs from which no stream started, whose UNSUB has not run
 * yet; when the field still has one of them, that SUB ended the grace
 * period, and this one holds from where that one did (its mark), as if
 * still in grace: it would otherwise start from last, and an UNSUB
 * undoing both give back only that much.  And every other node's field
 * of the device loses its token (" 0"): a stream starts here (or this
 * SUB is undone in turn), so an undoing there must not give back what
 * this node's stream may deliver (a client coming back without an id
 * would get it twice).
 * after is the client's id or ""; with
 * sync "1" (the node resubscribes a device it holds streams of) after is the
 * newest id the node gave the device (it may be above the stream: ids given
 * while Redis was down) and seen the newest it had from Redis.  The node
 * missed messages when seen is below base() or the floor, or the stream has
 * an entry between seen and after (accepted, never sent to the node, and now
 * below ids it gave): then the device gets a new position, which every
 * older id is too old for, and why says so.  Without here: when the floor
 * is above after (and not below base()), the node's ids are all below
 * the floor, and the stream starts at it, told, replaying what is above
 * it; the device stays where it is.  That floor is often another node's
 * move (here), which told its other holders there: a holder whose
 * channel was not back to hear it is told at the same position.  A second
 * move there made the first node's next resync, from its own move, find
 * its seen below the new floor, and reset its streams, which had missed
 * nothing (test_cluster_local_gap, once in 200 runs;
 * test_cluster_resync_lost_after_move).  Otherwise the new position is
 * just above after (and base()), below what was posted after after
 * (below()), which is no part of the loss (posted after it was found, or
 * after what the node had): the reset there, then those entries; only
 * when none leaves room for it is it above everything (moved()).  Until
 * 2026-12-06 it always was: a message answered 200 after the loss was
 * found and before the told resync ran (waiting behind the node's closed
 * gate) went with the move, told by the reset, never delivered
 * (test_cluster_resync_lost_posted_before).  With here
 * "1" (sync only) the node delivered messages alone while Redis was down,
 * which no other node's stream has: the device moves likewise, and every
 * other holder is told at the new position (tell(), the packed reset frame,
 * for user); the node's own streams missed nothing of it.  When it found
 * messages lost too, the move is above everything (moved(): the other
 * holders' reset must come after what they had, what was posted after
 * after with the rest), but keeps what below() would, from just above
 * after (past()): the node's streams get the reset there, then those
 * entries, then go on after the move.  Until 2026-12-07 the move took
 * them: a message answered 200 after the loss was found, told by the
 * reset and never delivered on the node
 * (test_cluster_resync_lost_alone_posted_before).  taken (""
 * none; absent from a node of the version before, which behaves as it
 * did): with here, what the node's streams took, when below after:
 * what came after it (the channel's, held in the node's registry for a
 * stream whose client left, or not taken yet) the move keeps below its
 * floor, and notes as a lone-delivery UNSUB does (hk: "TAKEN FIRST TO
 * LOST", see kept() and UNSUB), so that a SUB from that held position,
 * or a client back with that id or a kept entry's (kept_at()), is
 * replayed it; seen comes down to taken (also when this resync is sent
 * again: it wrote last there, and the UNSUB held past what was kept), or
 * the node's UNSUB, which holds from what its streams took but not below
 * seen, would hold from after, past what was kept; but no lower than it
 * was (see below).  The same when the
 * resync found messages lost (the move above keeps from taken, not just
 * from past()), the note's LOST then "l": a reset first, for the loss.
 * LOST "l" when the streams had not taken
 * every message the node gave alone (alone: the newest), which Redis
 * never had, or when the floor was above taken (a trim took what came
 * after it); else "-" when taken is alone, "o" when it is not (a message
 * of Redis's, which another node's stream may have had without the lone
 * ones: see kept_at()).  Until 2026-12-07 the move took such a message,
 * answered 200: a client back without an id was told (a reset), never
 * given it
 * (test_cluster_unsub_after_hangup_resynced,
 * test_cluster_resynced_resumed, test_cluster_resync_taken_sent_again,
 * test_cluster_resync_lost_alone_untaken).  A resync without here says
 * taken too, and seen comes down to it likewise, nothing else changed: a
 * later resync of the device (every one, after a heartbeat whose answer
 * was lost in the outage) set seen to last, the move's, and the UNSUB
 * held from there, above what the move kept: lost, untold, until
 * 2026-12-07 (test_cluster_unsub_after_hangup_resynced_twice).  But such
 * a resync, which moves nothing, brings seen no lower than the device's
 * took: what another node's stream of the device took (its UNSUB wrote
 * it there), which the taken of this node's streams does not know, and
 * a client back without an id was given it again (a
 * second tab through node 1 took it and closed, then node 0 resynced:
 * test_cluster_unsub_resynced_other_tab_took); nor higher than without
 * taken (hold or last).  Not to seen, which is also where a stream
 * began that took nothing (a second tab opened after what this node's
 * streams held untaken: until 2026-12-07 raised there, the UNSUB held
 * from it, and that was lost for a new page, untold:
 * test_cluster_unsub_resynced_late_tab, _resynced_late_tab); nor to
 * took when taken is below tb, where the streams that took up to took
 * began (see UNSUB).  Nor does
 * one that moves the device: what the
 * streams of another node took, the move's keep does not owe a client
 * back without an id, and the UNSUB then holds from that took, above
 * the note's taken, with what the move kept after it (kept()); a client
 * back with the id of taken still resumes from the note (kept_at()).
 * Until 2026-12-07 it wrote seen down to taken, and a second tab
 * through node 1 that took "two" (which node 0's hung-up stream held
 * untaken) and closed before node 0's moving resync left a new page
 * without an id given "two" again, no reset
 * (test_cluster_resynced_other_tab_took).  Returns {from,
 * why, entries} or, with here, {from, why, entries, to}: the stream starts
 * after from, replaying entries, then goes on after to; why is "" or why
 * messages were lost.  The entries are the newest after from, at most count
 * of them and max_bytes of frames, as a single node retains
 * (BEEP_REPLAY_MAX, BEEP_REPLAY_BYTES): past that, from moves to the newest
 * one left out, with "event id too old" (as when the stream was trimmed), so
 * that a backlog is never more than a node would replay.  A client's
 * after is a position only when it is one this device's streams were
 * given: an entry of its stream, its last, floor, held or seen, or base();
 * any other (another device's id, between two of this one's) is "unknown
 * event id", as on a single node: walking past it would skip, untold,
 * what is held below it.  POST trims the
 * stream to count entries, but a node started with another BEEP_REPLAY_MAX
 * (a rolling change) may have left more: the newest count + 1 tell.
 * They are read 8 at a time, newest first, until count or max_bytes is
 * reached: what Redis reads for a replay is max_bytes and at most 8
 * entries more.  Until 2026-12-08 the newest count + 1 were read at once,
 * frames and all, before the cut: a client that filled its own device
 * (BEEP_REPLAY_MAX entries of 328 KB, a JSON body of 64 KB once encoded)
 * and subscribed with its first id made Redis read 84 MB and block every
 * node for half a second, each time (test 118).
 *
 * Entries below base() (ob: from the device's own floor, or all of them
 * when it has none) are what a snapshot kept of data a PRUNE found had
 * lost messages and began afresh (no other way puts one there: an empty
 * restart or a flush leaves no stream).  Redis still has them, so a
 * client's id below base() (told "messages were lost", for what came
 * after the snapshot) replays them from that id, and a device in its
 * grace period replays them from where its holding began (held, or all),
 * as when a SUB ran before the finding.  Until 2026-12-07 the floor was
 * base() (the device has none of its own: nothing was trimmed) and the
 * stream started above it: a held message Redis had, skipped behind the
 * reset, never delivered (test_cluster_snapshot_kept, test 63 about 1 run
 * in 4: when the finding came before the SUB).  A node's resync is not
 * changed: its streams had what Redis replayed or published to them.
 * Looking for them asks for an entry below base(), which reads its frame
 * when there is one: a
 * client's SUB does only while PRUNE's mark of a finding is there
 * (beep:found), and a resync never; until then (2026-12-07) every SUB
 * read it, in a cluster that never found a loss
 * (test_cluster_sub_below_born_after_finding).
 *
 * A resync that moves the device leaves a note of it in the metadata
 * (mv: "NODE AFTER SEEN TO MODE FIRST"), for the same resync sent again,
 * which is one whose answer was lost with the connection: the node still
 * has the same ids, the same seen and its e->local or e->told, and its
 * gate closed, so it has given nothing since.  Moved again, the device
 * went above what was posted since the first move and that entry went
 * with the move, and the second answer said "messages were lost" where
 * the first had replayed it: a message answered 200 never reached the
 * node's stream (a review, 2026-12-06).  So the same resync, while the
 * move is the device's last one on this data (nothing moved or trimmed
 * above TO since, beep:born as it was), is answered as the first was,
 * with what came since: MODE "l" (it found messages lost: the reset at
 * TO, then what is above it; above the floor, when trimmed since), "h"
 * (here, and found messages lost: the reset at TO, just above AFTER, then
 * the entries the move kept below its floor and on after the floor;
 * FIRST, the oldest kept, must still be there, else as "l"), "k"
 * (here, nothing lost: the entries after AFTER, which the move kept
 * below its floor, then on after TO; FIRST, the oldest kept, or "-",
 * must still be there: trims take the oldest first, so then all are).
 * Neither moves nor tells again.  Otherwise it is a resync as any other:
 * what the move kept was trimmed, and the node's seen is below the
 * floor: a reset, as before.  A resync has no request id (UNSUB has,
 * see there): an answer kept and given again as it was would leave out
 * what was posted since the move (accepted, published to the node's
 * channel that may have been down) and miss a trim since, where this
 * note answers with what the stream has now.
 */
/*
 * kept_at(): whether a client's id below the floor is still a position,
 * as kept() for a stream with none: a lone-delivery UNSUB's note (hk),
 * or a resync's, holds, and the id is its held position (what that
 * node's streams took last, the lone message an EventSource reconnects
 * with) or an entry the move kept above it; everything after it is
 * still there.  Returns nil, or "l" (a reset first) or "-" (none).
 * The noting node gave messages alone, which Redis never had, and no
 * other node's stream has: a client is owed no reset only when its id
 * says it was one of that node's streams, which took them all.  Only
 * the held position can, and only when it is that node's newest lone id
 * (LOST "-"; "o" when its streams took a message of Redis's after it)
 * and no entry of Redis's has it (one that took the same id: as a
 * collision, which the note marks "l" already when seen).  A kept entry
 * is a message of Redis's, which a stream of another node (a second tab
 * of the device, gone before the move's reset reached it) had too,
 * without the lone ones: "l", a reset, then what was kept after the id.
 * Until 2026-12-07 either id resumed with no reset, the lone messages
 * missed silently (test_cluster_unsub_local_second_tab,
 * test_cluster_resynced_second_tab and their _at_taken, _node0, _during_move).
 * Until 2026-12-06 that id was "event id too old": a reset where nothing
 * was lost, then what the note kept from below the id (duplicates, under
 * an id that went backwards, for a client that had an entry above it)
 * (test_cluster_unsub_local_after_hangup_resumed).
 *
 * past(): just above after, not below base() or the floor.
 *
 * below(): the device's floor moves to past(), when that is below the
 * first entry after after: the entries below it go, those after it stay
 * and are replayed after the reset.  Otherwise moved().  Returns the new
 * floor.
 */
static const char cluster_lua_sub[] = LUA_PRELUDE
    "local function kept_at(s, m, after, floor) local h, k, t, l = "
    "string.match(redis.call('HGET', m, 'hk') or '', "
    "'^(%S+) (%S+) (%S+) (%S)$') "
    "if h and t == floor and not idlt(after, h) and (k == '-' or "
    "#redis.call('XRANGE', s, k, k) > 0) and (after == h or "
    "#redis.call('XRANGE', s, after, after) > 0) then "
    "if after ~= h or l ~= '-' or "
    "#redis.call('XRANGE', s, h, h) > 0 then return 'l' end "
    "return l end "
    "return nil end "
    "local function past(after, b, floor) local top = after "
    "if idlt(top, b) then top = b end "
    "if idlt(top, floor) then top = floor end "
    "local tms, tseq = idp(top) "
    "return string.format('%d-%d', tms, tseq + 1) end "
    "local function below(s, m, after, b, floor, metattl) "
    "local r = past(after, b, floor) "
    "local nx = redis.call('XRANGE', s, '(' .. after, '+', 'COUNT', 1) "
    "if #nx == 0 or not idlt(r, nx[1][1]) then "
    "return moved(s, m, after, metattl) end "
    "redis.call('HSET', m, 'floor', r) "
    "redis.call('PEXPIRE', m, metattl) "
    "redis.call('XTRIM', s, 'MINID', r) return r end "
    "local u, g, s, m = KEYS[1], KEYS[2], KEYS[3], KEYS[4] "
    "local dev, node, after = ARGV[1], ARGV[2], ARGV[3] "
    "local count, sync = tonumber(ARGV[4]), ARGV[5] == '1' "
    "local metattl, seen = tonumber(ARGV[6]), ARGV[7] "
    "local now = now_ms() "
    "local b = incarnation(now, ARGV[8] == '1', tonumber(ARGV[9])) "
    "local gu = tonumber(redis.call('HGET', g, dev) or '0') "
    "local last = redis.call('HGET', m, 'last') or b "
    "local pmark, ptok = string.match(redis.call('HGET', u, dev .. "
    "'\\31' .. node) or '', '^(%d+%-%d+) (%d+)$') "
    "local hold = nil "
    "if gu > now then hold = redis.call('HGET', m, 'held') or b "
    "elseif undone(ptok, ARGV[15], ARGV[16]) then hold = pmark end "
    "redis.call('HSET', u, dev .. '\\31' .. node, (hold or last) .. ' ' .. "
    "(hold and ARGV[14] or '0')) "
    "local tk = ARGV[18] or '' "
    "if tk == '' or after == '' or not sync or "
    "not idlt(tk, after) then tk = nil end "
    "if redis.call('EXISTS', m) == 1 then local sv = tk or hold or last "
    "local ps = tk and redis.call('HGET', m, 'took') "
    "local pb = tk and redis.call('HGET', m, 'tb') "
    "if pb and idlt(tk, pb) then ps = nil end "
    "if ps and idlt(tk, ps) then sv = ps "
    "if idlt(hold or last, ps) then sv = hold or last end end "
    "redis.call('HSET', m, 'seen', sv) "
    "redis.call('PEXPIRE', m, metattl) end "
    "local pre = dev .. '\\31' "
    "for _, f in ipairs(redis.call('HKEYS', u)) do "
    "if string.sub(f, 1, #pre) == pre and f ~= pre .. node then "
    "local v = redis.call('HGET', u, f) "
    "local mk, tk = string.match(v, '^(%d+%-%d+) (%d+)$') "
    "if tk and tk ~= '0' then redis.call('HSET', u, f, mk .. ' 0') end "
    "end end "
    "redis.call('SADD', 'beep:r:' .. node, ARGV[11]) "
    "redis.call('SADD', 'beep:nodes', node) "
    "if gu > 0 then redis.call('HDEL', g, dev) redis.call('HDEL', m, 'ow') "
    "end "
    "local floor = last "
    "if redis.call('EXISTS', s) == 1 then "
    "floor = redis.call('HGET', m, 'floor') or b end "
    "local ob = nil "
    "if not sync and redis.call('EXISTS', 'beep:found') == 1 then "
    "if #redis.call('XRANGE', s, '-', '(' .. b, 'COUNT', 1) > 0 then "
    "ob = redis.call('HGET', m, 'floor') or '0-0' "
    "if not idlt(ob, b) then ob = nil end end end "
    "local from, why, usable = last, '', false "
    "local mode, mt, mto = nil, nil, nil "
    "if after ~= '' and sync then "
    "local rn, ra, rs, rt, rk, rf = string.match(redis.call('HGET', m, "
    "'mv') or '', '^(%S+) (%S+) (%S+) (%S+) (%a) (%S+)$') "
    "if rn == node and ra == after and rs == seen and not idlt(rt, b) then "
    "if rk == 'l' or (rk == 'h' and "
    "#redis.call('XRANGE', s, rf, rf) == 0) then mode = 'l' mt = rt "
    "elseif rk == 'h' then mode = 'h' mt = rt mto = floor "
    "elseif ARGV[10] == '1' and not idlt(rt, floor) and (rf == '-' or "
    "#redis.call('XRANGE', s, rf, rf) > 0) then mode = 'k' mt = rt end end "
    "if mode == 'l' then from = mt why = 'messages were lost' "
    "if idlt(from, floor) then from = floor end "
    "elseif mode == 'h' then from = mt why = 'messages were lost' "
    "elseif mode == 'k' then from = after "
    "else "
    "local lost = idlt(seen, b) or idlt(seen, floor) "
    "if not lost and idlt(seen, after) then "
    "lost = #redis.call('XRANGE', s, '(' .. seen, after, 'COUNT', 1) > 0 "
    "end "
    "if lost and ARGV[10] ~= '1' and idlt(after, floor) and "
    "not idlt(floor, b) then from = floor why = 'messages were lost' "
    "elseif lost and ARGV[10] ~= '1' then "
    "from = below(s, m, after, b, floor, metattl) "
    "why = 'messages were lost' "
    "redis.call('HSET', m, 'mv', node .. ' ' .. after .. ' ' .. seen .. "
    "' ' .. from .. ' l -') "
    "elseif lost then why = 'messages were lost' "
    "local r = past(after, b, floor) "
    "local nx = redis.call('XRANGE', s, '(' .. after, '+', 'COUNT', 1) "
    "if #nx > 0 and idlt(r, nx[1][1]) then from = r "
    "mto = moved(s, m, after, metattl, tk or r) "
    "redis.call('HSET', m, 'mv', node .. ' ' .. after .. ' ' .. seen .. "
    "' ' .. r .. ' h ' .. nx[1][1]) "
    "else from = moved(s, m, after, metattl, tk) "
    "redis.call('HSET', m, 'mv', node .. ' ' .. after .. ' ' .. seen .. "
    "' ' .. from .. ' l -') end "
    "if tk then local k = redis.call('XRANGE', s, '(' .. tk, '+', "
    "'COUNT', 1) local t = mto or from "
    "k = #k > 0 and idlt(k[1][1], t) and k[1][1] or '-' "
    "redis.call('HSET', m, 'hk', tk .. ' ' .. k .. ' ' .. t .. ' l') end "
    "else from = after "
    "if idlt(last, after) then redis.call('HSET', m, 'last', after) end "
    "end end "
    "redis.call('PEXPIRE', m, metattl) usable = true "
    "elseif after ~= '' then "
    "if idlt(after, b) then why = 'messages were lost' "
    "if ob then from = after if idlt(from, ob) then from = ob end "
    "usable = true end "
    "elseif idlt(last, after) then why = 'unknown event id' "
    "elseif idlt(after, floor) then "
    "local kl = kept_at(s, m, after, floor) "
    "if kl then from = after usable = true "
    "if kl == 'l' then why = 'messages were lost' end "
    "else why = 'event id too old' end "
    "elseif after ~= last and after ~= floor and after ~= b and "
    "after ~= redis.call('HGET', m, 'held') and "
    "after ~= redis.call('HGET', m, 'seen') and "
    "#redis.call('XRANGE', s, after, after) == 0 then "
    "why = 'unknown event id' "
    "else from = after usable = true end end "
    "if not usable then "
    "local hh = ob and gu > now and (redis.call('HGET', m, 'held') or ob) "
    "if hh and idlt(hh, b) then from = hh "
    "if idlt(from, ob) then from = ob end "
    "elseif hold then "
    "local kl = idlt(hold, floor) and kept(s, m, hold, floor) "
    "if kl then from = hold "
    "if kl == 'l' and why == '' then why = 'messages were lost' end "
    "elseif idlt(hold, floor) then from = floor "
    "if why == '' then why = 'messages were dropped while away' end "
    "else from = hold end "
    "else from = last end end "
    "local entries, rev, size, keep, cut, at = {}, {}, 0, 0, nil, '+' "
    "local ovh, most = tonumber(ARGV[17] or '0'), tonumber(ARGV[13]) "
    "while not cut do local want = math.min(count + 1 - keep, 8) "
    "local got = redis.call('XREVRANGE', s, at, '(' .. from, 'COUNT', want) "
    "for _, e in ipairs(got) do "
    "if keep == count then cut = e[1] break end "
    "size = size + #e[2][2] + ovh "
    "if size > most then cut = e[1] break end "
    "keep = keep + 1 rev[keep] = e end "
    "if #got < want then break end at = '(' .. got[#got][1] end "
    "for i = keep, 1, -1 do entries[#entries + 1] = rev[i] end "
    "local to = nil "
    "if sync and ARGV[10] == '1' then "
    "if mode == 'k' then to = mt else to = mto or from end "
    "if not mode and why == '' then "
    "to = moved(s, m, after, metattl, tk or after) "
    "local k = redis.call('XRANGE', s, '-', '+', 'COUNT', 1) "
    "k = #k > 0 and idlt(k[1][1], to) and k[1][1] or '-' "
    "redis.call('HSET', m, 'mv', node .. ' ' .. after .. ' ' .. seen .. "
    "' ' .. to .. ' k ' .. k) "
    "if tk then local al = ARGV[19] or '' "
    "k = redis.call('XRANGE', s, '(' .. tk, '+', 'COUNT', 1) "
    "k = #k > 0 and idlt(k[1][1], to) and k[1][1] or '-' "
    "redis.call('HSET', m, 'hk', tk .. ' ' .. k .. ' ' .. to .. "
    "(((al ~= '' and idlt(tk, al)) or idlt(tk, floor)) and ' l' or "
    "(tk == al and ' -' or ' o'))) "
    "end end "
    "if not mode then tell(u, ARGV[11], dev, node, to, ARGV[12]) end end "
    "if cut then from = cut "
    "if why == '' then why = 'event id too old' end end "
    "if to then return {from, why, entries, to} end "
    "return {from, why, entries}";

/*
 * KEYS u g m s; ARGV dev node grace_ms meta_ttl_ms here after user frame
 * undo_lo undo_hi upto alone seen request answer_ttl_ms answers_max
 * took ("0": the node's streams took nothing past where they began;
 * absent, as "1") began (where they began, "" or absent: not known).
 * undo_lo..undo_hi (0 0: none): the tokens of this node's
 * SUBs from which no stream here started (their requests gave up waiting,
 * or the streams were refused after them).  When one of them ran and is
 * the last to have written the node's field (its token there), the grace
 * it ended was never served: what was held stays held, from where the SUB
 * found it (the mark it left, see SUB), with what came since.  A SUB that
 * started a stream, here or on another node (which clears this node's
 * token), leaves no such token, and nothing moves back: that stream may
 * have delivered what was held.
 * With here "1" the node delivered messages alone while Redis was down,
 * after its streams' last id after: as in SUB, the device moves above it
 * and the other holders are told.  The device's grace starts when no holder
 * is left and one was: this node (its SUB ran, and no sweep took it since:
 * an UNSUB after a SUB whose answer was lost may find nothing), or a dead
 * node whose field holders() removed, as POST does.
 * upto ("" none): the newest id this node's streams had when the last of
 * them closed; what the channel brought after it (a POST answered 200
 * while this node was still listed, before this UNSUB ran) no stream
 * took: a served UNSUB holds from there (not below what another stream
 * took: the device's took, which a served UNSUB whose streams took
 * something raises to where it leaves seen), not from last; with another
 * holder left, nothing moves.  Not below seen, as until 2026-12-07: seen
 * is also where a stream began, and a second tab opened without an id
 * while the device was live on another node (whose client had left,
 * what came after it held untaken there) begins after all that and
 * takes none of it; its SUB and UNSUB left seen there, and that node's
 * UNSUB held from it: what its registry held, answered 200, lost,
 * untold, for a new page (test_cluster_unsub_late_tab).  A node of the
 * version before writes no took: its second tab's UNSUB does not keep
 * another node's from holding what that tab took (a copy, not a loss).
 * What a node's streams took is what came after where they began, not
 * all below took: a second tab that began after what another node held
 * untaken and then took a later message wrote took above the held
 * one, and that node's UNSUB held from took: lost, untold, for a new
 * page, until 2026-12-07 (test_cluster_unsub_late_tab_took_later).  So
 * the device's tb is where the streams that took up to took began (the
 * lowest, while each UNSUB that raises took began at or below it; a
 * new one when one began above it; none from a node that does not say
 * began), and a hold below tb does not rise to took: it keeps what
 * came after its own upto, and what the second tab took is given again
 * (a copy, never a loss).
 * upto is not raised to base(): below it only when the data began
 * afresh since the streams took it (a PRUNE's finding), and SUB replays
 * what Redis still has below base() from a hold there (see SUB).
 * Raised, it came above the device's last and was dropped, and the
 * UNSUB held from last: what came after upto, still in Redis, lost,
 * untold, until 2026-12-07 (test_cluster_unsub_after_finding).
 * A served UNSUB that leaves another holder notes its upto in the
 * device's ow (owed; the lowest such): what came after it was answered
 * 200 while this node was listed, and its streams did not take it; a
 * stream that holds the device still (a second tab that began after
 * it, opened without an id while this node was listed; or a page on
 * this node that began at the device's last, its UNSUB sent first)
 * may never take it.  The grace period that begins when the last
 * holder leaves holds from no higher than ow (to_grace()), unless a
 * dead holder's heartbeat gives the hold (since: as before, what the
 * dead node delivered is not given again) and that holder's stream
 * began at or below ow (see to_grace()).  A later served UNSUB whose
 * streams began at or below ow and took past it had it: ow goes.
 * Until 2026-12-07 the UNSUB with another holder left held nothing,
 * and the last holder's held from what its streams took: the 200 was
 * lost for every later page, untold
 * (test_cluster_unsub_late_tab_outlives,
 * test_cluster_reopen_with_other_tab; none given again:
 * test_cluster_unsub_early_tab_outlives).  A SUB that ends a grace
 * period drops an ow left there: one from before it, which a node of
 * the version before (it neither writes nor reads ow) did not drop as
 * the grace began (test_cluster_grace_end_drops_ow).
 * With here "1" too: the move keeps the entries from upto on, below its
 * floor, and the UNSUB that leaves no holder notes it (hk: "HELD FIRST TO
 * LOST", kept() above), so that a SUB starting from that held position
 * replays what was kept rather than skip to the floor with a reset,
 * while the floor is still TO and FIRST (the oldest entry kept above
 * HELD, or "-") is still there; LOST "l" when the node's streams had not
 * taken every message it gave alone (alone: the newest, "" none), which
 * Redis never had, or when the device's floor before the move was above
 * HELD (a trim took what came after it, answered 200 to no stream: a
 * client back with no id was replayed the rest, untold, until
 * 2026-12-06: test_cluster_unsub_local_trimmed_before; a stream that
 * expired whole counts as trimmed to last), or when Redis has an entry
 * between seen (with here: the newest id the node had from Redis) and
 * HELD, when HELD is what its streams took: accepted, never delivered
 * there (its channel lost it, or its registry dropped it as a duplicate
 * of a lone message Redis gave the same id), as a resync finds (until
 * 2026-12-06 untold: test_cluster_unsub_local_collided): that stream is
 * told (a reset), then replayed; or when the floor before the move is
 * above seen: a trim, or another node's move whose reset never reached
 * the node's streams (seen "0-0" when its registry dropped that reset as
 * a duplicate of its own lone id: its lone messages may be hidden among
 * the node's; until 2026-12-07 untold: test_cluster_unsub_told).  Else
 * "-" when HELD is alone, "o" when it is not: a client back with HELD as
 * its id is then told too (see kept_at() in SUB).
 *
 * request ("" none: a node of the version before, which behaves as it
 * did): the node's id for this UNSUB, the same when it sends it again
 * because its answer was lost with the connection (nothing else of the
 * device sent since: see e->request).  Redis keeps the answer in
 * beep:q:NODE (request -> answer), and answers the same request again
 * from there, without running it: run again, a lone-delivery UNSUB moved
 * the device again and told the other holders again, a reset for clients
 * that had lost nothing (one back at the first reset's id: "event id too
 * old"), and the note (hk) carried to the second move's floor
 * (test_cluster_unsub_local_request_again).  The hash lasts answer_ttl_ms
 * (the node's BEEP_CLUSTER_TTL: as long as its heartbeat key could last
 * past this UNSUB; a node away longer is swept, and registers anew) past
 * the last answer it took, and goes with the node's BYE.  answered()
 * keeps an answer; past answers_max of them (CLUSTER_ANSWERS_MAX) it
 * drops those of every request id up to the newest's less half that:
 * the node's ids only grow, and the one it sends again is among its
 * newest; the hash is walked once every half answers_max answers, not
 * at each.  An UNSUB whose answer is forgotten
 * runs again when sent again, as before.  The same UNSUB run again (its
 * field gone, was 0) moves again, and carries the note to the new
 * floor.  Until 2026-12-06 the
 * move took what came after upto and held from above it: a POST answered
 * 200 after the node's last stream's client left, lost untold for a
 * client with no id; and a lone message its streams never took (202),
 * lost untold too (test_cluster_unsub_local_after_hangup, _untaken).
 * Returns the holders left.
 */
static const char cluster_lua_unsub[] = LUA_PRELUDE
    "local function answered(q, rid, a, ttl, most) "
    "redis.call('HSET', q, rid, a) redis.call('PEXPIRE', q, ttl) "
    "if redis.call('HLEN', q) <= most then return end "
    "local ids, top = redis.call('HKEYS', q), 0 "
    "for _, f in ipairs(ids) do "
    "if tonumber(f) and tonumber(f) > top then top = tonumber(f) end end "
    "local from = top - math.max(1, math.floor(most / 2)) "
    "for _, f in ipairs(ids) do "
    "if not tonumber(f) or tonumber(f) <= from then "
    "redis.call('HDEL', q, f) end end end "
    "local u, g, m, s = KEYS[1], KEYS[2], KEYS[3], KEYS[4] "
    "local dev, node = ARGV[1], ARGV[2] "
    "local rid, q = ARGV[14] or '', 'beep:q:' .. ARGV[2] "
    "if rid ~= '' then local a = redis.call('HGET', q, rid) "
    "if a then return tonumber(a) end end "
    "local mark, token = string.match(redis.call('HGET', u, dev .. "
    "'\\31' .. node) or '', '^(%d+%-%d+) (%d+)$') "
    "local was = redis.call('HDEL', u, dev .. '\\31' .. node) "
    "if not registers(u, node) then "
    "redis.call('SREM', 'beep:r:' .. node, ARGV[7]) end "
    "local ua, to = ARGV[11] or '', nil "
    "local fl = redis.call('HGET', m, 'floor') "
    "local sa = ARGV[13] or '' "
    "local gap = ARGV[5] == '1' and ua ~= '' and sa ~= '' and "
    "idlt(sa, ua) and #redis.call('XRANGE', s, '(' .. sa, ua, 'COUNT', 1) > 0 "
    "if redis.call('EXISTS', s) == 0 then "
    "fl = redis.call('HGET', m, 'last') end "
    "gap = gap or (ARGV[5] == '1' and sa ~= '' and fl and idlt(sa, fl)) "
    "local served = was == 1 and not undone(token, ARGV[9], ARGV[10]) "
    "if ARGV[5] == '1' then "
    "local f0 = redis.call('HGET', m, 'floor') "
    "to = moved(s, m, ARGV[6], tonumber(ARGV[4]), ua ~= '' and ua or nil) "
    "local h, k, t, l = string.match(redis.call('HGET', m, 'hk') or '', "
    "'^(%S+) (%S+) (%S+) (%S)$') "
    "if served then redis.call('HDEL', m, 'hk') "
    "elseif t and t == f0 then "
    "redis.call('HSET', m, 'hk', h .. ' ' .. k .. ' ' .. to .. ' ' .. l) "
    "end "
    "tell(u, ARGV[7], dev, node, to, ARGV[8]) end "
    "local upto = nil "
    "if served and redis.call('EXISTS', m) == 1 then "
    "local sn = redis.call('HGET', m, 'last') or base() "
    "local prior = redis.call('HGET', m, 'took') "
    "local tb = redis.call('HGET', m, 'tb') "
    "if ua ~= '' and idlt(ua, sn) then upto = ua "
    "if prior and idlt(upto, prior) and not (tb and idlt(upto, tb)) "
    "then upto = prior end "
    "if idlt(upto, sn) then sn = upto else upto = nil end end "
    "redis.call('HSET', m, 'seen', sn) "
    "if ARGV[17] ~= '0' and (not prior or idlt(prior, sn)) then "
    "redis.call('HSET', m, 'took', sn) "
    "local bg = ARGV[18] or '' "
    "if bg == '' then redis.call('HDEL', m, 'tb') "
    "elseif not prior or idlt(prior, bg) then "
    "redis.call('HSET', m, 'tb', bg) "
    "elseif tb and idlt(bg, tb) then redis.call('HSET', m, 'tb', bg) end "
    "end "
    "end "
    "local ow = served and redis.call('HGET', m, 'ow') "
    "if ow and ARGV[17] ~= '0' and (ARGV[18] or '') ~= '' and "
    "not idlt(ow, ARGV[18]) and (ua == '' or idlt(ow, ua)) then "
    "redis.call('HDEL', m, 'ow') ow = nil end "
    "local nodes, dead, since, low = holders(u, dev) "
    "if #nodes > 0 and upto and (not ow or idlt(upto, ow)) then "
    "redis.call('HSET', m, 'ow', upto) end "
    "if #nodes == 0 and (was == 1 or dead) then "
    "to_grace(g, m, dev, now_ms(), tonumber(ARGV[3]), since, low) "
    "if undone(token, ARGV[9], ARGV[10]) and was == 1 and "
    "redis.call('EXISTS', m) == 1 then "
    "local held = redis.call('HGET', m, 'held') "
    "if held and idlt(mark, held) then "
    "redis.call('HSET', m, 'held', mark) end end "
    "if upto then redis.call('HSET', m, 'seen', upto) "
    "local held = redis.call('HGET', m, 'held') "
    "if held and idlt(upto, held) then "
    "redis.call('HSET', m, 'held', upto) held = upto end "
    "local al = ARGV[12] or '' "
    "if to and held == upto then "
    "local k = redis.call('XRANGE', s, '(' .. upto, '+', 'COUNT', 1) "
    "k = #k > 0 and idlt(k[1][1], to) and k[1][1] or '-' "
    "redis.call('HSET', m, 'hk', upto .. ' ' .. k .. ' ' .. to .. "
    "(((al ~= '' and idlt(ua, al)) or (fl and idlt(upto, fl)) or "
    "(gap and upto == ua)) and ' l' or (upto == al and ' -' or ' o'))) "
    "end end "
    "end "
    "if rid ~= '' then "
    "answered(q, rid, #nodes, tonumber(ARGV[15]), tonumber(ARGV[16])) end "
    "return #nodes";

/*
 * KEYS u g; ARGV user grace_ms meta_ttl_ms (not read: see away()) [dev].
 * Returns the live devices, or 503 while presence is being rebuilt
 * (beep:rebuild, or no beep:born: see base() above): a device whose node
 * has not registered again would be missing from the list, a wrong answer
 * where POST gives 503.  With dev, dev too when it is away within its
 * grace period (a POST to it would be 202): whether it is there for a
 * POST without data.
 */
static const char cluster_lua_list[] = LUA_PRELUDE
    "if redis.call('EXISTS', 'beep:rebuild') == 1 or "
    "redis.call('EXISTS', 'beep:born') == 0 then return 503 end "
    "local u, g, user = KEYS[1], KEYS[2], ARGV[1] "
    "local grace = tonumber(ARGV[2]) "
    "local alive, seen, out, dead, since, low = {}, {}, {}, {}, {}, {} "
    "for _, f in ipairs(redis.call('HKEYS', u)) do "
    "local i = string.find(f, '\\31', 1, true) "
    "local dev, node = string.sub(f, 1, i - 1), string.sub(f, i + 1) "
    "if alive[node] == nil then "
    "alive[node] = redis.call('EXISTS', 'beep:n:' .. node) == 1 end "
    "if alive[node] then "
    "if not seen[dev] then seen[dev] = true out[#out + 1] = dev end "
    "else low[dev] = earlier(low[dev], mark_of(u, f)) "
    "redis.call('HDEL', u, f) dead[dev] = true "
    "since[dev] = earlier(since[dev], beat_of(node)) end end "
    "local now = now_ms() "
    "for dev in pairs(dead) do if not seen[dev] then "
    "to_grace(g, 'beep:m:' .. user .. '\\31' .. dev, dev, now, grace, "
    "since[dev], low[dev]) end end "
    "local want = ARGV[4] "
    "if want and want ~= '' and not seen[want] and "
    "tonumber(redis.call('HGET', g, want) or '0') > now then "
    "out[#out + 1] = want end "
    "return out";

/*
 * KEYS n; ARGV ttl_ms again rebuild_ms node grace_ms meta_ttl_ms ack.
 * Returns whether the key was there (1 or 0), or {2, gen} when a PRUNE
 * named the node in beep:tell with generation gen (see there): its
 * streams are told whatever their newest id from Redis (a message posted
 * after the loss was found puts it above the new base(), and a stream
 * that subscribed on this run before the finding would never be told).
 * The name stays until the node acknowledges that generation (ack, the
 * gen its last {2, gen} said; 0: none), at its next heartbeat: an answer
 * lost with the connection is given again (until 2026-12-06 Redis took
 * the name off as it answered, and a node that never read the answer
 * resynced without telling: test 92).  A second finding in between sets
 * another generation, which the first's ack does not take off.  A node
 * of the version before names others in the set beep:resync, which it
 * takes its own name off as it answers: a name there (and none in
 * beep:tell, or the one this heartbeat acknowledges: that node found
 * another loss since the answer) is moved to beep:tell with a new
 * generation; PRUNE writes both, so that a node of that version is
 * told too (beep:resync stays a set: made a hash, that node's heartbeat
 * would fail on it, WRONGTYPE, and the node be taken for dead).  again
 * is "1" from a node that was connected to a Redis before this
 * connection (see base() above).
 *
 * Then it sweeps: a node that died (SIGKILL, its host gone) or stopped
 * leaves its registrations (beep:u fields, which have no TTL, for they
 * last as long as its streams) until a POST or a listing of their user
 * finds them; a user nobody looks up again would keep them for ever.
 * So each node keeps the users it registers in beep:r:NODE (SUB adds,
 * UNSUB removes once none of the user's devices is registered by it),
 * every node names itself in beep:nodes, and each heartbeat takes up to
 * 64 users of nodes whose heartbeat key is gone: their fields go, and a
 * device left with no holder begins its grace period, as when a POST
 * finds it so (a POST then gets 202, and what it holds waits).  A node
 * that was only away finds its key gone at its next heartbeat and
 * registers everything again.  A node swept so leaves beep:nodes and
 * beep:beat with its last user, and its name in beep:tell and beep:resync
 * (see PRUNE) with them, as a BYE takes them: killed, it sent none, and
 * no heartbeat of its name will come to acknowledge the finding.  But not
 * while the finding is younger than meta_ttl_ms: a node only away must
 * still be told when it comes back (its resync alone would not tell a
 * stream whose newest id from Redis came after the finding), and the
 * node stays in beep:nodes so that a later sweep looks again.  Until
 * 2026-12-07 a killed node's name stayed in both for as long as Redis
 * kept its data, one more with each finding.
 *
 * node_fields(): the devices the node (suf: "\x1fNODE") holds in the
 * user's hash u, and the other fields of each device (by device): one
 * HKEYS a user, each device's holders() asked of its own fields.  Until
 * 2026-12-08 holders() read the whole hash again for each device of the
 * node: quadratic in a user's fields (BEEP_MAX_DEVICES_PER_USER on each
 * node), 0.4 s of Redis's time for one heartbeat's 64 users of 32
 * devices on 3 nodes with the longest ids, every node waiting behind
 * it, at each heartbeat after a node stopped or died (0.07 s now;
 * test_cluster_beat_sweep_reads_once).  PRUNE uses it the same way.
 */
static const char cluster_lua_beat[] = LUA_PRELUDE
    "local e = redis.call('EXISTS', KEYS[1]) "
    "local now = now_ms() "
    "local tell = redis.call('HGET', 'beep:tell', ARGV[4]) "
    "if redis.call('SREM', 'beep:resync', ARGV[4]) == 1 and "
    "(not tell or tell == ARGV[7]) then "
    "tell = tell_gen(now) redis.call('HSET', 'beep:tell', ARGV[4], tell) end "
    "if tell and tell == ARGV[7] then "
    "redis.call('HDEL', 'beep:tell', ARGV[4]) tell = nil end "
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) "
    "redis.call('HSET', 'beep:beat', ARGV[4], string.format('%d', now)) "
    "incarnation(now, ARGV[2] == '1', tonumber(ARGV[3])) "
    "local grace = tonumber(ARGV[5]) "
    "redis.call('SADD', 'beep:nodes', ARGV[4]) "
    "local budget = 64 "
    "for _, x in ipairs(redis.call('SMEMBERS', 'beep:nodes')) do "
    "if budget > 0 and redis.call('EXISTS', 'beep:n:' .. x) == 0 then "
    "local r, suf = 'beep:r:' .. x, '\\31' .. x "
    "local sx = beat_of(x) "
    "for _, user in ipairs(redis.call('SPOP', r, budget)) do "
    "budget = budget - 1 "
    "local u = 'beep:u:' .. user "
    "local devs, by = node_fields(u, suf) "
    "for _, dev in ipairs(devs) do local f = dev .. suf "
    "local lw = mark_of(u, f) "
    "redis.call('HDEL', u, f) "
    "local left, _, since, low = holders(u, dev, by[dev]) "
    "if #left == 0 then "
    "to_grace('beep:g:' .. user, 'beep:m:' .. user .. '\\31' .. dev, dev, "
    "now, grace, earlier(sx, since), earlier(lw, low)) end end end "
    "local t = redis.call('HGET', 'beep:tell', x) "
    "if redis.call('SCARD', r) == 0 and (not t or tonumber(t) < "
    "(now - tonumber(ARGV[6])) * 1000) then "
    "redis.call('SREM', 'beep:nodes', x) "
    "redis.call('HDEL', 'beep:beat', x) "
    "redis.call('HDEL', 'beep:tell', x) "
    "redis.call('SREM', 'beep:resync', x) end end end "
    "if tell then return {2, tonumber(tell)} end "
    "return e";

/*
 * KEYS n; ARGV node.  The node stops: its key goes, and its last
 * heartbeat with it, so that a device left with no holder after a stop
 * is held from its last message, not from that heartbeat as for a node
 * that died (to_grace() above: its clients would get again what it
 * delivered since); and its name in beep:tell, which no heartbeat of it
 * will acknowledge (a node's name is new each time it starts), and in
 * beep:resync (see BEAT), which no heartbeat of it will take off: until
 * 2026-12-06 it stayed there for as long as Redis kept its data, one
 * name more for each node that stopped between a finding and its next
 * heartbeat (test_cluster).  And the answers it kept for its UNSUBs sent
 * again (beep:q:NODE, see UNSUB), which no UNSUB of it will ask for.
 * Returns 1.
 */
static const char cluster_lua_bye[] =
    "redis.call('DEL', KEYS[1]) "
    "redis.call('DEL', 'beep:q:' .. ARGV[1]) "
    "redis.call('HDEL', 'beep:beat', ARGV[1]) "
    "redis.call('HDEL', 'beep:tell', ARGV[1]) "
    "redis.call('SREM', 'beep:resync', ARGV[1]) return 1";

/*
 * ARGV node grace_ms meta_ttl_ms (beep:found's lifetime) run wrote live
 * born wrote_run.  The node is connected to a Redis run
 * other than the one it last knew (restarted, failed over): Redis may be
 * back from a snapshot or a replica older than its last writes, and then
 * names this node as the holder of devices whose streams here have gone
 * since (their UNSUB lost with those writes).  The node's key is set
 * again by its heartbeat, so no sweep would ever take them: the device
 * listed, every POST to it 200 and published to a node that drops it.
 * So every field of the node goes, as a dead node's would (a device left
 * with no holder begins its grace period), and the node registers again
 * the devices it has streams of (a resync, right after).  But not those
 * devices' own fields (live: "USER\x1fDEVICE" of each, separated by
 * \x1e): pruned, each was left with no holder until its resync ran,
 * missing from the lists and a POST to it 202 (404 with no grace period)
 * while its stream was open all along.  Their resync writes the fields
 * again before anything else of this node's can read them (an UNSUB
 * waits behind it); a POST meanwhile is published to this node, where
 * the device's gate holds it until the resync's answer.
 *
 * And a Redis back with older data has lost the messages it accepted
 * after them, held ones (202) with the rest, which no client would be
 * told of: its ids and beep:born are as before.  Redis counts the
 * messages it accepts (beep:w, POST's w), and keeps the highest count of
 * each of its runs (beep:wr: RUN -> count, written by POST with the run
 * its node's connection reached).  wrote is the highest count this node
 * had from Redis on run wrote_run since its data began at born (POST's
 * born; 0: none).  Data that has less of that run than the node was given
 * (of the same born), or that began before what the node had seen (a
 * snapshot from before a flush or an earlier finding), lost accepted
 * messages; a count from before the data began again (flushed since:
 * told then, as an empty restart) says nothing of it (test 87).  A count
 * alone would not do: the restored Redis counts on from the snapshot and
 * gives the lost messages' numbers to new ones, so a node that comes back
 * only to a later run found nothing (test 89).  Then beep:born goes (once:
 * the born of every other node's count is then another), so that the next
 * script of a node known before starts the data afresh (incarnation():
 * the rebuild, and every id given before is below the new base(), each
 * device's next stream told "messages were lost" as after an empty
 * restart).  Every other node is named in beep:tell (NODE -> the
 * finding's generation, tell_gen(): the time of the finding and a
 * counter, unique also after a flush), whose heartbeats answer {2, gen}
 * until it acknowledges (see BEAT): it registers its devices again, each
 * as having seen nothing from Redis, so that its streams are told (a
 * stream started on this run before the loss was found, too, also when a
 * message posted since put its newest id from Redis above the new
 * base()); and in beep:resync, for a node of the version before.
 * beep:found (the born of the data found short) marks the finding for
 * SUB, which looks for entries below base() only while it is there
 * (see SUB): for meta_ttl_ms, a day and the longer of replay and grace,
 * well past the longest such an entry can stay (a POST trims entries
 * older than that retention, and its stream expires that long after its
 * last POST: twice the retention, at most two hours).
 * Returns 1, or 2 when it found the loss.
 */
static const char cluster_lua_prune[] = LUA_PRELUDE
    "local node = ARGV[1] "
    "local grace = tonumber(ARGV[2]) "
    "local keep = {} "
    "for k in string.gmatch(ARGV[6] or '', '[^\\30]+') do keep[k] = true end "
    "local r, suf, now = 'beep:r:' .. node, '\\31' .. node, now_ms() "
    "for _, user in ipairs(redis.call('SMEMBERS', r)) do "
    "local u, kept = 'beep:u:' .. user, false "
    "local devs, by = node_fields(u, suf) "
    "for _, dev in ipairs(devs) do "
    "if keep[user .. '\\31' .. dev] then kept = true else "
    "redis.call('HDEL', u, dev .. suf) "
    "local left = holders(u, dev, by[dev]) "
    "if #left == 0 then "
    "to_grace('beep:g:' .. user, 'beep:m:' .. user .. '\\31' .. dev, dev, "
    "now, grace, nil) end end end "
    "if not kept then redis.call('SREM', r, user) end end "
    "local wrote = tonumber(ARGV[5]) "
    "local nb = tonumber(ARGV[7] or '0') "
    "local rb = tonumber(redis.call('GET', 'beep:born') or '0') "
    "local had = tonumber(redis.call('HGET', 'beep:wr', ARGV[8] or '') or "
    "'0') "
    "local found = rb > 0 and (nb > rb or (nb == rb and wrote > had)) "
    "if found then redis.call('DEL', 'beep:born') "
    "redis.call('SET', 'beep:found', string.format('%d', rb), 'PX', "
    "ARGV[3]) "
    "local gen = tell_gen(now) "
    "for _, x in ipairs(redis.call('SMEMBERS', 'beep:nodes')) do "
    "if x ~= node then redis.call('SADD', 'beep:resync', x) "
    "redis.call('HSET', 'beep:tell', x, gen) end end end "
    "if found then return 2 end "
    "return 1";

const char *const cluster_lua[CLUSTER_LUA__MAX] = {
    [CLUSTER_LUA_POST] = cluster_lua_post,
    [CLUSTER_LUA_SUB] = cluster_lua_sub,
    [CLUSTER_LUA_UNSUB] = cluster_lua_unsub,
    [CLUSTER_LUA_LIST] = cluster_lua_list,
    [CLUSTER_LUA_BEAT] = cluster_lua_beat,
    [CLUSTER_LUA_BYE] = cluster_lua_bye,
    [CLUSTER_LUA_PRUNE] = cluster_lua_prune,
};
