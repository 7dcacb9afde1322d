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
	"local function holders(u, dev) local pre = dev .. '\\31' "            \
	"local nodes, dead = {}, false "                                       \
	"for _, f in ipairs(redis.call('HKEYS', u)) do "                       \
	"if string.sub(f, 1, #pre) == pre then "                               \
	"local node = string.sub(f, #pre + 1) "                                \
	"if redis.call('EXISTS', 'beep:n:' .. node) == 1 then "                \
	"nodes[#nodes + 1] = node else redis.call('HDEL', u, f) "              \
	"dead = true end end end return nodes, dead end "                      \
	"local function to_grace(g, m, dev, now, grace, metattl) "             \
	"if grace > 0 then "                                                   \
	"redis.call('HSET', g, dev, string.format('%d', now + grace)) "        \
	"redis.call('PEXPIRE', g, grace + 1000) "                              \
	"redis.call('HSET', m, 'held', redis.call('HGET', m, 'last') or "      \
	"'0-0') redis.call('PEXPIRE', m, metattl) end end "

/*
 * KEYS u g s m; ARGV dev user frame maxlen keep_ms grace_ms meta_ttl_ms.
 * Returns {404}, {503} (no holder known while presence is rebuilt: see
 * the beat script) or {200|202, id}.
 */
static const char cluster_lua_post[] = LUA_PRELUDE
    "local u, g, s, m = KEYS[1], KEYS[2], KEYS[3], KEYS[4] "
    "local dev, user, frame = ARGV[1], ARGV[2], ARGV[3] "
    "local maxlen, keep = tonumber(ARGV[4]), tonumber(ARGV[5]) "
    "local grace, metattl = tonumber(ARGV[6]), tonumber(ARGV[7]) "
    "local now = now_ms() "
    "local nodes, dead = holders(u, dev) "
    "local status = 200 "
    "if #nodes == 0 then "
    "if dead then to_grace(g, m, dev, now, grace, metattl) end "
    "local gu = tonumber(redis.call('HGET', g, dev) or '0') "
    "if gu <= now then "
    "if gu > 0 then redis.call('HDEL', g, dev) end "
    "if redis.call('EXISTS', 'beep:rebuild') == 1 then return {503} end "
    "return {404} end "
    "status = 202 end "
    "local want = '*' "
    "local last = redis.call('HGET', m, 'last') "
    "if last then local lms, lseq = idp(last) "
    "if lms >= now then want = string.format('%d-%d', lms, lseq + 1) end "
    "end "
    "local id = redis.call('XADD', s, want, 'f', frame) "
    "local n = redis.call('XLEN', s) "
    "if n > maxlen then "
    "local old = redis.call('XRANGE', s, '-', '+', 'COUNT', n - maxlen) "
    "redis.call('HSET', m, 'floor', old[#old][1]) "
    "redis.call('XTRIM', s, 'MAXLEN', maxlen) end "
    "local cut = string.format('%d-0', now - keep) "
    "local old = redis.call('XREVRANGE', s, '(' .. cut, '-', 'COUNT', 1) "
    "if #old > 0 then redis.call('HSET', m, 'floor', old[1][1]) "
    "redis.call('XTRIM', s, 'MINID', cut) end "
    "redis.call('HSET', m, 'last', id) "
    "redis.call('PEXPIRE', m, metattl) "
    "redis.call('PEXPIRE', s, keep) "
    "local msg = string.format('%s %d %d ', id, #user, #dev) .. user .. "
    "dev .. frame "
    "for _, node in ipairs(nodes) do "
    "redis.call('PUBLISH', 'beep:c:' .. node, msg) end "
    "return {status, id}";

/*
 * KEYS u g s m; ARGV dev node after count sync meta_ttl_ms.  after is the
 * client's id or ""; sync "1" when the node already delivered up to
 * after (it may be above the stream: ids given while Redis was down).
 * Returns {from, why, entries}: the stream starts after from, replaying
 * entries; why is "" or why messages were lost.
 */
static const char cluster_lua_sub[] = LUA_PRELUDE
    "local u, g, s, m = KEYS[1], KEYS[2], KEYS[3], KEYS[4] "
    "local dev, node, after = ARGV[1], ARGV[2], ARGV[3] "
    "local count, sync = tonumber(ARGV[4]), ARGV[5] == '1' "
    "local metattl = tonumber(ARGV[6]) "
    "local now = now_ms() "
    "redis.call('HSET', u, dev .. '\\31' .. node, 1) "
    "local gu = tonumber(redis.call('HGET', g, dev) or '0') "
    "if gu > 0 then redis.call('HDEL', g, dev) end "
    "local last = redis.call('HGET', m, 'last') or '0-0' "
    "local floor = last "
    "if redis.call('EXISTS', s) == 1 then "
    "floor = redis.call('HGET', m, 'floor') or '0-0' end "
    "local from, why, usable = last, '', false "
    "if after ~= '' then "
    "if idlt(last, after) then "
    "if sync then redis.call('HSET', m, 'last', after) "
    "redis.call('PEXPIRE', m, metattl) from = after usable = true "
    "else why = 'unknown event id' end "
    "elseif idlt(after, floor) then why = 'event id too old' "
    "if sync then from = floor usable = true end "
    "else from = after usable = true end end "
    "if not usable then "
    "if gu > now then "
    "local held = redis.call('HGET', m, 'held') or '0-0' "
    "if idlt(held, floor) then from = floor "
    "if why == '' then why = 'messages were dropped while away' end "
    "else from = held end "
    "else from = last end end "
    "local entries = redis.call('XRANGE', s, '(' .. from, '+', 'COUNT', "
    "count) "
    "return {from, why, entries}";

/* KEYS u g m; ARGV dev node grace_ms meta_ttl_ms.  Returns the holders. */
static const char cluster_lua_unsub[] = LUA_PRELUDE
    "local u, g, m = KEYS[1], KEYS[2], KEYS[3] "
    "local dev, node = ARGV[1], ARGV[2] "
    "redis.call('HDEL', u, dev .. '\\31' .. node) "
    "local nodes = holders(u, dev) "
    "if #nodes == 0 then to_grace(g, m, dev, now_ms(), tonumber(ARGV[3]), "
    "tonumber(ARGV[4])) end "
    "return #nodes";

/* KEYS u g; ARGV user grace_ms meta_ttl_ms.  Returns the live devices. */
static const char cluster_lua_list[] = LUA_PRELUDE
    "local u, g, user = KEYS[1], KEYS[2], ARGV[1] "
    "local grace, metattl = tonumber(ARGV[2]), tonumber(ARGV[3]) "
    "local alive, seen, out, dead = {}, {}, {}, {} "
    "for _, f in ipairs(redis.call('HKEYS', u)) do "
    "local i = string.find(f, '\\31', 1, true) "
    "local dev, node = string.sub(f, 1, i - 1), string.sub(f, i + 1) "
    "if alive[node] == nil then "
    "alive[node] = redis.call('EXISTS', 'beep:n:' .. node) == 1 end "
    "if alive[node] then "
    "if not seen[dev] then seen[dev] = true out[#out + 1] = dev end "
    "else redis.call('HDEL', u, f) dead[dev] = true end end "
    "local now = now_ms() "
    "for dev in pairs(dead) do if not seen[dev] then "
    "to_grace(g, 'beep:m:' .. user .. '\\31' .. dev, dev, now, grace, "
    "metattl) end end "
    "return out";

/*
 * KEYS n; ARGV ttl_ms again.  Returns whether the key was there.  again is
 * "1" from a node that was connected to a Redis before this connection.
 * beep:born marks a Redis that has seen a node: when a node that was
 * connected before finds it missing, this Redis lost what the nodes had
 * registered (restarted empty, flushed), and until every node has beaten
 * again (within ttl_ms) "no such device" is not known: beep:rebuild says
 * so to the post script, which answers 503 rather than a wrong 404.
 */
static const char cluster_lua_beat[] =
    "local e = redis.call('EXISTS', KEYS[1]) "
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) "
    "if redis.call('EXISTS', 'beep:born') == 0 then "
    "redis.call('SET', 'beep:born', '1') "
    "if ARGV[2] == '1' then "
    "redis.call('SET', 'beep:rebuild', '1', 'PX', ARGV[1]) end end "
    "return e";

const char *const cluster_lua[CLUSTER_LUA__MAX] = {
    [CLUSTER_LUA_POST] = cluster_lua_post,
    [CLUSTER_LUA_SUB] = cluster_lua_sub,
    [CLUSTER_LUA_UNSUB] = cluster_lua_unsub,
    [CLUSTER_LUA_LIST] = cluster_lua_list,
    [CLUSTER_LUA_BEAT] = cluster_lua_beat,
};
