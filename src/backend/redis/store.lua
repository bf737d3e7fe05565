-- sessync's store as one Redis script: every command is one atomic call of it.
--
-- KEY[1..3]: the session's record hash, tombstone and rotation alias (one hash tag, so
-- one Cluster slot); KEY[4..6]: the same for a rotation's new id on a single server. In
-- connect-redis layout the data key `sess:<id>` is in the slot of the tag {sess:<id>}.
-- The owner commands take the owner's index as KEY[1].
-- ARG: 1 command, 2 now in ms ('w' first: the server's clock), 3 id, 4 second id,
-- 5… the command's own arguments. The settings (@NAME@ below) are written in by the
-- client: same-server (SAME) means this script keeps the owner index and the live set;
-- on a Cluster the client keeps them (they span slots).
-- Errors are replies whose first word is the code the daemon uses (NOTFOUND, LOCKED…).
-- Every check that can fail runs before the first write of meaning, so a refused command
-- changes nothing (Redis does not roll a script back).

-- Set by each call (main, at the end): the keys, the arguments, the command, and the
-- time: 'w' and the server's clock as the client tracks it (its offset to the server's
-- TIME, kept fresh), or a test's clock. Not TIME here: in a script it costs more than
-- the rest of a typical command.
local KEY, ARG, cmd, WALL, now
-- The store's settings, written into the script's text by the client (one script, and
-- one SHA, per configuration: no argument to send and convert on every call).
local TTL, ABS, TOUCH, FRAC = @TTL@, @ABS@, @TOUCH@, @FRAC@
local TOMB, GRACE, MAXB = @TOMB@, @GRACE@, @MAXB@
local MAXS, LRU, SAME = @MAXS@, @LRU@, @SAME@
local PREFIX, LAYOUT = @PREFIX@, @LAYOUT@
local A = 4 -- the command's arguments are ARG[A + 1] …

local MARK = 'sessync-error:'
local function fail(msg) error(MARK .. msg, 0) end

-- Redis's own expiry for a deadline on the script's clock: a relative one (PEXPIRE, PX),
-- so that a test's clock and the server's need not agree.
local function left(ms) return math.max(1, ms - now) end

-- Key names, built the same way as the client builds them.
local function keys_of(id)
  if LAYOUT == 'c' then
    local b = '{' .. PREFIX .. id .. '}'
    return { id = id, m = b .. ':m', t = b .. ':t', a = b .. ':a', d = PREFIX .. id }
  end
  local m = PREFIX .. '{' .. id .. '}'
  return { id = id, m = m, t = m .. ':t', a = m .. ':a' }
end
local function owner_key(o) return PREFIX .. '{o:' .. o .. '}' end
local LIVE = PREFIX .. 'live'

---------------------------------------------------------------------------------------
-- JSON objects as text: split into members and joined again, values kept as they are.

local function ws(s, i) return s:find('[^ \t\r\n]', i) or (#s + 1) end

-- The index just past the JSON value that starts at i.
local function skip(s, i)
  local c = s:byte(i)
  if c == 34 then
    local j = i + 1
    while true do
      local k = s:find('["\\]', j)
      if not k then fail('INVALIDJSON invalid JSON: unterminated string in the stored session') end
      if s:byte(k) == 34 then return k + 1 end
      j = k + 2
    end
  elseif c == 123 or c == 91 then
    local depth, j = 0, i
    while true do
      local k = s:find('[%[%]{}"]', j)
      if not k then fail('INVALIDJSON invalid JSON: unbalanced brackets in the stored session') end
      local b = s:byte(k)
      if b == 34 then
        j = skip(s, k)
      else
        if b == 123 or b == 91 then depth = depth + 1 else depth = depth - 1 end
        j = k + 1
        if depth == 0 then return j end
      end
    end
  end
  return s:find('[,}%] \t\r\n]', i) or (#s + 1)
end

local function is_object(v) return v ~= nil and v:byte(ws(v, 1)) == 123 end

-- Members of an object: keys (as JSON strings) and values (as JSON texts), in order.
local function split(s)
  local ks, vs = {}, {}
  local i = ws(s, 1)
  if s:byte(i) ~= 123 then fail('INVALIDJSON invalid JSON: the stored session is not an object') end
  i = ws(s, i + 1)
  if s:byte(i) == 125 then return ks, vs end
  while true do
    local ke = skip(s, i)
    ks[#ks + 1] = s:sub(i, ke - 1)
    i = ws(s, ws(s, ke) + 1)
    local ve = skip(s, i)
    vs[#vs + 1] = s:sub(i, ve - 1)
    i = ws(s, ve)
    if s:byte(i) == 125 then return ks, vs end
    i = ws(s, i + 1)
  end
end

local function join(ks, vs)
  local parts = {}
  for n = 1, #ks do parts[n] = ks[n] .. ':' .. vs[n] end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function index_of(ks, k)
  for n = 1, #ks do if ks[n] == k then return n end end
  return nil
end

-- Applies one change at a path of keys: op 'P' sets, 'D' deletes, 'O' makes sure an
-- object is there (a merge patch flattened by the client; an empty one is 'N', which
-- changes nothing but counts as a change, as it does on every store).
local function at_path(obj, path, d, op, raw)
  local ks, vs = split(obj)
  local k = path[d]
  local n = index_of(ks, k)
  if d == #path then
    if op == 'D' then
      if not n then return obj end
      table.remove(ks, n)
      table.remove(vs, n)
    elseif op == 'P' then
      if n then vs[n] = raw else ks[#ks + 1] = k; vs[#vs + 1] = raw end
    else
      if n and is_object(vs[n]) then return obj end
      if n then vs[n] = '{}' else ks[#ks + 1] = k; vs[#vs + 1] = '{}' end
    end
    return join(ks, vs)
  end
  local child = n and vs[n]
  if not is_object(child) then
    if op == 'D' then return obj end
    child = '{}'
  end
  child = at_path(child, path, d + 1, op, raw)
  if n then vs[n] = child else ks[#ks + 1] = k; vs[#vs + 1] = child end
  return join(ks, vs)
end

---------------------------------------------------------------------------------------
-- Records.

-- connect-redis keeps express-session's cookie object inside the session JSON; sessync
-- sees the session without it and writes it back with the expiry brought up to date.
local function iso(ms)
  local s = math.floor(ms / 1000)
  local days = math.floor(s / 86400)
  local rem = s - days * 86400
  -- Civil date from days since 1970-01-01 (proleptic Gregorian).
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60, ms % 1000)
end

local function with_cookie(data, cookie, e, ttl)
  local c = cookie
  if not is_object(c) then c = '{"path":"/","httpOnly":true}' end
  c = at_path(c, { '"originalMaxAge"' }, 1, 'P', string.format('%d', ttl))
  c = at_path(c, { '"expires"' }, 1, 'P', '"' .. iso(e) .. '"')
  local ks, vs = split(data)
  ks[#ks + 1] = '"cookie"'
  vs[#vs + 1] = c
  return join(ks, vs)
end

-- A record in memory: its meta fields (v c a e o f lt lu sz, and tt: the session's own
-- idle TTL, 0 or absent for the store's) and its members, the data's
-- top-level keys (as JSON strings) with their values (as JSON texts). In the native
-- layout each member is a field of the record hash, so a change of one key reads and
-- writes that key alone; `sz` keeps the size the data has as one JSON text.

local META = { 'v', 'c', 'a', 'e', 'o', 'f', 'lt', 'lu', 'sz', 'k', 'tt' }

local NUMS = { 'v', 'c', 'a', 'e', 'f', 'lt', 'lu', 'sz', 'tt' }

-- Fields as numbers, and a copy of them as loaded (save writes only what changed).
local function numbers(rec)
  local v, c, a, e = tonumber(rec.v) or 0, tonumber(rec.c) or 0, tonumber(rec.a) or 0, tonumber(rec.e) or 0
  local f, lt, lu, sz = tonumber(rec.f) or 0, tonumber(rec.lt) or 0, tonumber(rec.lu) or 0, tonumber(rec.sz) or 0
  local tt = tonumber(rec.tt) or 0
  rec.v, rec.c, rec.a, rec.e, rec.f, rec.lt, rec.lu, rec.sz, rec.tt = v, c, a, e, f, lt, lu, sz, tt
  rec.was = { v = v, c = c, a = a, e = e, f = f, lt = lt, lu = lu, sz = sz, tt = tt }
  rec.px = tonumber(rec.px) or 0
  if not rec.o then rec.o = nil end
  rec.o0 = rec.o
  return rec
end

local function blank()
  if LAYOUT == 'c' then return { ks = {}, vs = {}, sz = 0, tt = 0 } end
  return { mem = {}, dirty = {}, sz = 0, tt = 0, fresh = true }
end

local function mget(rec, k)
  if rec.ks then
    local n = index_of(rec.ks, k)
    return n and rec.vs[n]
  end
  return rec.mem[k]
end

-- Sets member k to raw, or removes it when raw is nil.
local function mput(rec, k, raw)
  local old = mget(rec, k)
  if old then rec.sz = rec.sz - (#k + #old + 2) end
  if raw then rec.sz = rec.sz + (#k + #raw + 2) end
  if rec.ks then
    local n = index_of(rec.ks, k)
    if raw then
      if n then rec.vs[n] = raw else rec.ks[#rec.ks + 1] = k; rec.vs[#rec.vs + 1] = raw end
    elseif n then
      table.remove(rec.ks, n)
      table.remove(rec.vs, n)
    end
  else
    rec.mem[k] = raw
    rec.dirty[k] = raw or false
  end
end

-- Drops every member (a whole write follows).
local function clear(rec)
  local b = blank()
  rec.ks, rec.vs, rec.mem, rec.dirty, rec.sz, rec.fresh = b.ks, b.vs, b.mem, b.dirty, 0, b.fresh
end

-- The size of the data as one JSON text, from the sum `sz` over members of
-- #key + #value + 2 (the colon and a comma or brace).
local function size_of(sz) return sz == 0 and 2 or sz + 1 end
local function size(rec) return size_of(rec.sz) end

local function text_of(rec)
  if rec.ks then return join(rec.ks, rec.vs) end
  local parts = {}
  for k, v in pairs(rec.mem) do parts[#parts + 1] = k .. ':' .. v end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function from_text(rec, text)
  local ks, vs = split(text)
  for n = 1, #ks do mput(rec, ks[n], vs[n]) end
end

local function limit_size(n)
  if n > MAXB then
    fail('TOOLARGE too large: session data of ' .. n .. ' bytes exceeds max_session_bytes=' .. MAXB)
  end
end

local function check_size(rec) limit_size(size(rec)) end


-- Loads a record: meta fields only (want nil), these members too (a list of keys) or
-- everything ('all'); nil when there is none.
local function load(S, want)
  local rec
  if S.d then
    -- connect-redis layout: the data key is the truth; the hash adds what connect-redis
    -- has no place for. A session that express-session alone wrote (no hash, or a hash
    -- older than the data) gets a new version, and starts at the data key's TTL.
    local json = redis.call('GET', S.d)
    if not json then return nil end
    local r = redis.call('HMGET', S.m, unpack(META))
    local pttl = redis.call('PTTL', S.d)
    if r[1] and r[10] == json then
      rec = numbers({ v = r[1], c = r[2], a = r[3], e = r[4], o = r[5], f = r[6], lt = r[7], lu = r[8], tt = r[11] })
    else
      local keep = r[1] and numbers({ v = r[1], c = r[2], a = r[3], f = r[6], lt = r[7], lu = r[8], o = r[5], tt = r[11] }) or {}
      rec = { v = (keep.v or 0) + 1, c = keep.c or now, a = keep.a or now, f = keep.f or 0,
        lt = keep.lt or 0, lu = keep.lu or 0, o = keep.o, tt = keep.tt or 0 }
      rec.e = pttl > 0 and now + pttl or now + ((rec.tt > 0) and rec.tt or TTL)
    end
    -- On the server's clock the data key's TTL is the truth: express-session's touch
    -- (connect-redis: EXPIRE) extends it without rewriting the session.
    if WALL and pttl > 0 then rec.e = now + pttl end
    rec.ks, rec.vs, rec.sz = {}, {}, 0
    local ks, vs = split(json)
    for n = 1, #ks do
      if ks[n] == '"cookie"' then rec.cookie = vs[n] else mput(rec, ks[n], vs[n]) end
    end
    return rec
  end
  if want == 'all' then
    local h = redis.call('HGETALL', S.m)
    if #h == 0 then return nil end
    rec = { mem = {}, dirty = {} }
    for i = 1, #h, 2 do
      local f = h[i]
      if f:byte(1) == 34 then rec.mem[f] = h[i + 1] else rec[f] = h[i + 1] end
    end
    return numbers(rec)
  end
  local fields = { 'v', 'c', 'a', 'e', 'o', 'f', 'lt', 'lu', 'sz', 'px', 'tt' }
  if want then for _, k in ipairs(want) do fields[#fields + 1] = k end end
  local r = redis.call('HMGET', S.m, unpack(fields))
  if not r[1] then return nil end
  rec = numbers({ v = r[1], c = r[2], a = r[3], e = r[4], o = r[5], f = r[6], lt = r[7], lu = r[8], sz = r[9], px = r[10], tt = r[11] })
  rec.mem, rec.dirty = {}, {}
  if want then
    for j, k in ipairs(want) do
      if r[11 + j] then rec.mem[k] = r[11 + j] end
    end
  end
  return rec
end

-- HSET in slices (a script's unpack has a limit).
local function hset(key, args)
  for i = 1, #args, 400 do
    redis.call('HSET', key, unpack(args, i, math.min(i + 399, #args)))
  end
end

-- The record's key outlives its logical end by up to this much, so that most writes need
-- not move Redis's own expiry (every read checks the logical end itself).
local function slack() return math.max(1000, math.min(TOUCH, 600000)) end

local function save(S, rec)
  local args = {}
  local was = (not rec.fresh and not S.d and rec.was) or {}
  for _, f in ipairs(NUMS) do
    -- tt is written only once a session has a TTL of its own (it is never taken away).
    if rec[f] ~= was[f] and not (f == 'tt' and (rec.tt or 0) == 0) then
      args[#args + 1] = f
      args[#args + 1] = rec[f]
    end
  end
  local expire = rec.fresh or S.d or (rec.px or 0) < rec.e
  if expire then
    rec.px = rec.e + slack()
    args[#args + 1] = 'px'
    args[#args + 1] = rec.px
  end
  local del = {}
  if S.d then
    local json = with_cookie(join(rec.ks, rec.vs), rec.cookie, rec.e, ((rec.tt or 0) > 0) and rec.tt or TTL)
    redis.call('SET', S.d, json, 'EX', math.max(1, math.ceil((rec.e - now) / 1000)))
    args[#args + 1] = 'k'
    args[#args + 1] = json
  else
    if rec.fresh then redis.call('DEL', S.m) end
    for k, v in pairs(rec.dirty) do
      if v then
        args[#args + 1] = k
        args[#args + 1] = v
      elseif not rec.fresh then
        del[#del + 1] = k
      end
    end
  end
  if rec.o then
    if rec.o ~= rec.o0 or rec.fresh then
      args[#args + 1] = 'o'
      args[#args + 1] = rec.o
    end
  elseif rec.o0 and not rec.fresh then
    del[#del + 1] = 'o'
  end
  if #args > 0 then hset(S.m, args) end
  for i = 1, #del, 400 do redis.call('HDEL', S.m, unpack(del, i, math.min(i + 399, #del))) end
  if expire then redis.call('PEXPIRE', S.m, left(rec.px)) end
  -- Saved: a second save of this record in the same call writes every field again.
  rec.dirty, rec.fresh, rec.o0, rec.was = {}, nil, rec.o, nil
end

local function reply(rec)
  return { text_of(rec), rec.v, rec.c, rec.a, rec.e, rec.o or false, rec.tt or 0 }
end

---------------------------------------------------------------------------------------
-- Changes.

local LIMIT = 9007199254740992 -- 2^53: integers beyond it are not exact in a script

-- The integer an integer's text holds, if a script's number holds it exactly (within
-- +-2^53), else nil. (tonumber rounds: '9007199254740993' reads as 2^53.)
local function exact(t)
  local n = tonumber(t)
  if n < LIMIT and n > -LIMIT then return n end
  if t == '9007199254740992' or t == '-9007199254740992' then return n end
  return nil
end

-- Adds by (an integer's text) to member k (absent counts as 0): the new number. Refused
-- unless the member's value and by are exact and so is their sum: its rounding error, by
-- Knuth's TwoSum, is 0 (a sum of 2^53 + 1 rounds to 2^53, which a bound alone passes).
local function incr(rec, k, by)
  local v, cur = mget(rec, k), 0
  if v then
    if not v:match('^%-?%d+$') then
      fail('NOTANUMBER not a number: key ' .. k .. ' holds ' .. v:sub(1, 40) .. ', not an integer')
    end
    cur = exact(v)
  end
  local b = exact(by)
  local next = cur and b and cur + b
  local bb = next and next - cur
  if not next or next > LIMIT or next < -LIMIT or (cur - (next - bb)) + (b - bb) ~= 0 then
    fail('NOTANUMBER not a number: incrementing key ' .. k .. ' leaves the exact range of the Redis backend (+-2^53)')
  end
  mput(rec, k, string.format('%d', next))
  return next
end

-- The top-level keys the changes in ARG[i…] read or write.
local function keys_of_ops(i)
  local ks = {}
  while i <= #ARG do
    local op = ARG[i]
    if op == 'I' then
      ks[#ks + 1] = ARG[i + 1]
      i = i + 3
    elseif op == 'W' then
      i = i + 3
    elseif op == 'N' then
      i = i + 1
    else
      local len = tonumber(ARG[i + 1])
      ks[#ks + 1] = ARG[i + 2]
      i = i + 2 + len + (op == 'P' and 1 or 0)
    end
  end
  return ks
end

-- Applies the changes in ARG[i…] to rec (in memory only): increment results, count.
local function apply_ops(rec, i)
  local values = {}
  local count = 0
  while i <= #ARG do
    local op = ARG[i]
    count = count + 1
    if op == 'I' then
      values[#values + 1] = incr(rec, ARG[i + 1], ARG[i + 2])
      i = i + 3
    elseif op == 'W' then
      if ARG[i + 1] == '1' then rec.o = ARG[i + 2] else rec.o = nil end
      i = i + 3
    elseif op == 'N' then
      i = i + 1
    else
      local len = tonumber(ARG[i + 1])
      local path = {}
      for n = 1, len do path[n] = ARG[i + 1 + n] end
      local raw = nil
      if op == 'P' then raw = ARG[i + 2 + len]; i = i + 3 + len else i = i + 2 + len end
      local k = path[1]
      local cur = mget(rec, k)
      if len == 1 then
        if op == 'P' then
          mput(rec, k, raw)
        elseif op == 'D' then
          if cur then mput(rec, k, nil) end
        elseif not is_object(cur) then
          mput(rec, k, '{}')
        end
      elseif is_object(cur) or op ~= 'D' then
        if not is_object(cur) then cur = '{}' end
        mput(rec, k, at_path(cur, path, 2, op, raw))
      end
    end
  end
  check_size(rec)
  return values, count
end

---------------------------------------------------------------------------------------
-- Lock queues: a list of tickets in arrival order, each with a deadline its waiter
-- refreshes; the head is woken through its own list, on which it blocks (BLPOP).

local function qkeys(S) return S.m .. ':q', S.m .. ':qd' end

local function wake(S, ticket)
  local k = S.m .. ':w:' .. ticket
  redis.call('RPUSH', k, '1')
  redis.call('PEXPIRE', k, 60000)
end

-- The first waiter still alive (dropping those whose deadline passed), or nil.
local function head(S)
  local q, qd = qkeys(S)
  while true do
    local h = redis.call('LINDEX', q, 0)
    if not h then return nil end
    local dl = redis.call('HGET', qd, h)
    if dl and tonumber(dl) > now then return h end
    redis.call('LPOP', q)
    redis.call('HDEL', qd, h)
  end
end

local function wake_head(S)
  local h = head(S)
  if h then wake(S, h) end
end

-- The session is gone: every waiter is woken to learn why.
local function wake_all(S)
  local q, qd = qkeys(S)
  for _, h in ipairs(redis.call('LRANGE', q, 0, -1)) do wake(S, h) end
  redis.call('DEL', q, qd)
end

local function release(S, rec)
  rec.lt, rec.lu = 0, 0
  wake_head(S)
end

local function expire_lease(S, rec)
  if rec.lt ~= 0 and rec.lu <= now then release(S, rec) end
end

local function check_token(S, rec, token)
  expire_lease(S, rec)
  if rec.lt == 0 then
    if token then fail('STALETOKEN') end
    return
  end
  if not token then fail('LOCKED') end
  if token ~= rec.lt then fail('STALETOKEN') end
end

---------------------------------------------------------------------------------------
-- Life and death of sessions.

-- The session's idle TTL (its own, else the store's) and its touch interval.
local function ttl_of(rec)
  if (rec.tt or 0) > 0 then return rec.tt end
  return TTL
end
local function interval_of(rec)
  if (rec.tt or 0) > 0 then return math.floor(rec.tt * FRAC) end
  return TOUCH
end

local function access(S, rec)
  rec.a = now
  rec.e = math.min(now + ttl_of(rec), rec.c + ABS)
  if SAME and MAXS > 0 then redis.call('ZADD', LIVE, now, S.id) end
end

local function touch_if_due(S, rec)
  if now - rec.a >= interval_of(rec) and now > rec.a then
    access(S, rec)
    return true
  end
  return false
end

local function gone(S, rec)
  redis.call('DEL', S.m)
  if S.d then redis.call('DEL', S.d) end
  if SAME then
    if rec.o then redis.call('ZREM', owner_key(rec.o), S.id) end
    if MAXS > 0 then redis.call('ZREM', LIVE, S.id) end
  end
  wake_all(S)
end

-- 'live' and the record, 'alias' and the new id, 'tomb' or 'absent'.
local function find(S, want)
  local rec = load(S, want)
  if rec then
    if rec.e > now then return 'live', rec end
    gone(S, rec)
  end
  local al = redis.call('GET', S.a)
  if al then
    local sep = al:find('|', 1, true)
    if tonumber(al:sub(sep + 1)) > now then return 'alias', al:sub(1, sep - 1) end
  end
  local tb = redis.call('GET', S.t)
  if tb and tonumber(tb) > now then return 'tomb' end
  return 'absent'
end

local function find_writable(S, want)
  local st, rec = find(S, want)
  if st == 'alias' then fail('ROTATED ' .. rec) end
  if st == 'tomb' then fail('DESTROYED') end
  return st, rec
end

local function tombstone(S, untl)
  local tb = redis.call('GET', S.t)
  if not tb or tonumber(tb) < untl then
    redis.call('SET', S.t, untl, 'PX', left(untl))
  end
end

local function index_owner(id, o, c)
  local k = owner_key(o)
  local score = c + ABS
  redis.call('ZADD', k, score, id)
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', k, left(math.max(score, tonumber(top[2]))))
end

-- Room for one more session: refuses with FULL, or evicts the least recently used.
local function reserve()
  if MAXS == 0 or not SAME then return end
  -- A live session was accessed within its TTL, and within ABS whatever its own TTL.
  redis.call('ZREMRANGEBYSCORE', LIVE, '-inf', now - math.max(TTL, ABS))
  while redis.call('ZCARD', LIVE) >= MAXS do
    local first = redis.call('ZRANGE', LIVE, 0, 0)[1]
    local S2 = keys_of(first)
    local st, rec = find(S2)
    if st ~= 'live' then
      redis.call('ZREM', LIVE, first)
    elseif LRU then
      gone(S2, rec)
    else
      fail('FULL')
    end
  end
end

-- Creates the session from rec (members and owner filled in by the caller).
local function create(S, rec)
  check_size(rec)
  reserve()
  rec.v, rec.c, rec.a, rec.e, rec.f, rec.lt, rec.lu = 1, now, now, math.min(now + ttl_of(rec), now + ABS), 0, 0, 0
  local owner = rec.o
  local q, qd = qkeys(S)
  redis.call('DEL', q, qd)
  save(S, rec)
  if SAME then
    if owner then index_owner(S.id, owner, rec.c) end
    if MAXS > 0 then redis.call('ZADD', LIVE, now, S.id) end
  end
  return rec
end

local function opt(i)
  local v = ARG[i]
  if v == nil or v == '' then return nil end
  return tonumber(v)
end

---------------------------------------------------------------------------------------
-- The commands.

local S

-- One call: the command ARG[1], on the session ARG[3] (keys KEY[1..3]) if it names one.
local function run()
S = nil
if ARG[3] ~= '' then
  if LAYOUT == 'c' then
    S = keys_of(ARG[3])
  else
    S = { id = ARG[3], m = KEY[1], t = KEY[2], a = KEY[3] }
  end
end

-- Only the closure of the command asked for is made (each costs time, every call).
local f

-- fetch touch → nil | {touched, record} | {'->', new id}
if cmd == 'fetch' then f = function()
  local st, rec = find(S, 'all')
  if st == 'alias' then return { '->', rec } end
  if st ~= 'live' then return false end
  local touched = 0
  if ARG[A + 1] == '1' and touch_if_due(S, rec) then
    save(S, rec)
    touched = 1
  end
  return { touched, reply(rec) }
end end

-- The new data of a write: members as key/value pairs from ARG[i…].
local function fill(rec, i)
  for j = i, #ARG, 2 do mput(rec, ARG[j], ARG[j + 1]) end
  check_size(rec)
end

-- write expected token release ttl key value … → version
if cmd == 'write' then f = function()
  local expected, token, rel, ttl = opt(A + 1), opt(A + 2), ARG[A + 3] == '1', opt(A + 4)
  local st, rec = find_writable(S)
  if st == 'absent' then
    if token then fail('STALETOKEN') end
    if expected and expected ~= 0 then fail('CONFLICT ' .. expected .. ' 0') end
    rec = blank()
    rec.tt = ttl or 0
    fill(rec, A + 5)
    create(S, rec)
    return 1
  end
  check_token(S, rec, token)
  if expected and expected ~= rec.v then fail('CONFLICT ' .. expected .. ' ' .. rec.v) end
  clear(rec)
  fill(rec, A + 5)
  if ttl then rec.tt = ttl end
  rec.v = rec.v + 1
  access(S, rec)
  if rel and token then release(S, rec) end
  save(S, rec)
  return rec.v
end end

-- patch expected token create release ttl ops… → {version, {values…}, old owner|false}
if cmd == 'patch' then f = function()
  local expected, token = opt(A + 1), opt(A + 2)
  local mk, rel, ttl = ARG[A + 3] == '1', ARG[A + 4] == '1', opt(A + 5)
  -- A request's commit on its own path: a live, unexpired native record, changed only
  -- by top-level sets and removals. It reads the fields it needs and writes the ones
  -- that change; anything else (absent, expired, a lease that ran out, increments,
  -- merges, owners, the connect-redis layout) takes the general path below, which gives
  -- the same results in every case. (Store::incr has a path of its own, fast_incr.)
  local simple = not S.d and A + 6 <= #ARG
  local i = A + 6
  local keys = {}
  while simple and i <= #ARG do
    local op = ARG[i]
    if (op == 'P' or op == 'D') and ARG[i + 1] == '1' then
      keys[#keys + 1] = ARG[i + 2]
      i = i + (op == 'P' and 4 or 3)
    else
      simple = false
    end
  end
  if simple and #keys <= 400 then
    local r = redis.call('HMGET', S.m, 'v', 'c', 'e', 'lt', 'lu', 'sz', 'px', 'tt', unpack(keys))
    local v, e, c0, lu = tonumber(r[1]), tonumber(r[3]), tonumber(r[2]), tonumber(r[5])
    local sz0, px0, tt0 = tonumber(r[6]), tonumber(r[7]), tonumber(r[8])
    -- Every field there (else the general path, which does without any of them).
    if v and e and c0 and sz0 and px0 and r[4] and e > now
      and (r[4] == '0' or (lu and lu > now)) then
      if r[4] ~= '0' then
        if not token then fail('LOCKED') end
        if token ~= tonumber(r[4]) then fail('STALETOKEN') end
      elseif token then
        fail('STALETOKEN')
      end
      if expected and expected ~= v then fail('CONFLICT ' .. expected .. ' ' .. v) end
      local cur, sz = {}, sz0
      for n, k in ipairs(keys) do cur[k] = r[8 + n] or false end
      i = A + 6
      while i <= #ARG do
        local k, new = ARG[i + 2], nil
        local old = cur[k] or nil
        if ARG[i] == 'P' then
          new = ARG[i + 3]
          i = i + 4
        else
          i = i + 3
        end
        if old then sz = sz - (#k + #old + 2) end
        if new then sz = sz + (#k + #new + 2) end
        cur[k] = new or false
      end
      limit_size(size_of(sz))
      v = v + 1
      local own = ttl or tt0
      if own == 0 then own = nil end
      local e2 = math.min(now + (own or TTL), c0 + ABS)
      local args = { 'v', v, 'a', now, 'e', e2 }
      if ttl and ttl ~= tt0 then
        args[#args + 1] = 'tt'
        args[#args + 1] = ttl
      end
      if sz ~= sz0 then
        args[#args + 1] = 'sz'
        args[#args + 1] = sz
      end
      local del = {}
      for k, x in pairs(cur) do
        if x then
          args[#args + 1] = k
          args[#args + 1] = x
        else
          del[#del + 1] = k
        end
      end
      local px = px0
      if px < e2 then
        px = e2 + slack()
        args[#args + 1] = 'px'
        args[#args + 1] = px
      end
      if rel and token then
        args[#args + 1] = 'lt'
        args[#args + 1] = 0
        args[#args + 1] = 'lu'
        args[#args + 1] = 0
      end
      redis.call('HSET', S.m, unpack(args))
      if #del > 0 then redis.call('HDEL', S.m, unpack(del)) end
      if px ~= px0 then redis.call('PEXPIRE', S.m, left(px)) end
      if SAME and MAXS > 0 then redis.call('ZADD', LIVE, now, S.id) end
      if rel and token then wake_head(S) end
      return { v, {}, false }
    end
  end
  local st, rec = find_writable(S, keys_of_ops(A + 6))
  if st == 'absent' then
    if not mk then fail('NOTFOUND') end
    if token then fail('STALETOKEN') end
    if expected and expected ~= 0 then fail('CONFLICT ' .. expected .. ' 0') end
    rec = blank()
    rec.tt = ttl or 0
    local values = apply_ops(rec, A + 6)
    create(S, rec)
    return { 1, values, false }
  end
  check_token(S, rec, token)
  if expected and expected ~= rec.v then fail('CONFLICT ' .. expected .. ' ' .. rec.v) end
  local before = rec.o
  local values, count = apply_ops(rec, A + 6)
  if ttl then rec.tt = ttl end
  local old = false
  if count > 0 then
    if before ~= rec.o then
      old = before or false
      if SAME then
        if before then redis.call('ZREM', owner_key(before), S.id) end
        if rec.o then index_owner(S.id, rec.o, rec.c) end
      end
    end
    rec.v = rec.v + 1
  end
  access(S, rec)
  if rel and token then release(S, rec) end
  save(S, rec)
  return { rec.v, values, old }
end end

-- lock lease wait ticket heartbeat → {token, record} | {0, ms the lease has left}
if cmd == 'lock' then f = function()
  local lease, waits, ticket, hb = tonumber(ARG[A + 1]), ARG[A + 2] == '1', ARG[A + 3], tonumber(ARG[A + 4])
  local st, rec = find(S, 'all')
  if st == 'alias' then fail('ROTATED ' .. rec) end
  if st == 'tomb' then fail('DESTROYED') end
  if st == 'absent' then fail('NOTFOUND') end
  expire_lease(S, rec)
  local q, qd = qkeys(S)
  local h = head(S)
  if rec.lt == 0 and (h == nil or h == ticket) then
    if h then
      redis.call('LPOP', q)
      redis.call('HDEL', qd, h)
    end
    rec.f = rec.f + 1
    rec.lt = rec.f
    rec.lu = now + lease
    touch_if_due(S, rec)
    save(S, rec)
    return { rec.f, reply(rec) }
  end
  if not waits then
    if ticket ~= '' and redis.call('HDEL', qd, ticket) == 1 then
      redis.call('LREM', q, 0, ticket)
      if rec.lt == 0 then wake_head(S) end
    end
    fail('LOCKTIMEOUT')
  end
  if redis.call('HSET', qd, ticket, now + 3 * hb) == 1 then redis.call('RPUSH', q, ticket) end
  redis.call('PEXPIRE', q, 3 * hb + 1000)
  redis.call('PEXPIRE', qd, 3 * hb + 1000)
  local left = 0
  if rec.lt ~= 0 then left = rec.lu - now end
  return { 0, left }
end end

-- cancel ticket: a waiter gives up (its connection failed, say).
if cmd == 'cancel' then f = function()
  local ticket = ARG[A + 1]
  local q, qd = qkeys(S)
  if redis.call('HDEL', qd, ticket) == 1 then
    redis.call('LREM', q, 0, ticket)
    local rec = load(S)
    if rec and (rec.lt == 0 or rec.lu <= now) then wake_head(S) end
  end
  return 'OK'
end end

-- unlock token
if cmd == 'unlock' then f = function()
  local token = opt(A + 1)
  local st, rec = find_writable(S)
  if st == 'absent' then fail('NOTFOUND') end
  expire_lease(S, rec)
  if rec.lt == 0 or rec.lt ~= token then fail('STALETOKEN') end
  release(S, rec)
  save(S, rec)
  return 'OK'
end end

-- touch ttl → {written, expires_at} (with a ttl: the session's own from now, and written)
if cmd == 'touch' then f = function()
  local ttl = opt(A + 1)
  local st, rec = find_writable(S)
  if st == 'absent' then fail('NOTFOUND') end
  local written
  if ttl then
    rec.tt = ttl
    access(S, rec)
    written = true
  else
    written = touch_if_due(S, rec)
  end
  if written then save(S, rec) end
  return { written and 1 or 0, rec.e }
end end

-- destroy → 1 | 0 | {'->', new id} (then the client destroys that one too)
if cmd == 'destroy' then f = function()
  local st, rec = find(S)
  tombstone(S, now + TOMB)
  if st == 'live' then
    gone(S, rec)
    return 1
  end
  if st == 'alias' then
    redis.call('DEL', S.a)
    return { '->', rec }
  end
  return 0
end end

-- destroy_if owner: destroys only a live session of this owner → 1 | 0
if cmd == 'destroy_if' then f = function()
  local st, rec = find(S)
  if st ~= 'live' or rec.o ~= ARG[A + 1] then return 0 end
  tombstone(S, now + TOMB)
  gone(S, rec)
  return 1
end end

-- owner_of → owner | false (live sessions only)
if cmd == 'owner_of' then f = function()
  local st, rec = find(S)
  if st ~= 'live' then return false end
  return rec.o or false
end end

local function retire(S, rec, to)
  if GRACE > 0 then
    redis.call('SET', S.a, to .. '|' .. (now + GRACE), 'PX', left(now + GRACE))
  end
  tombstone(S, now + GRACE + TOMB)
  redis.call('DEL', S.m)
  if S.d then redis.call('DEL', S.d) end
  wake_all(S)
end

local function install(S2, rec)
  local q, qd = qkeys(S2)
  redis.call('DEL', q, qd, S2.a, S2.t)
  rec.o0 = nil -- the owner is written under the new key too
  if not rec.ks then
    -- Every member is written under the new key.
    rec.dirty, rec.fresh = {}, true
    for k, v in pairs(rec.mem) do rec.dirty[k] = v end
  end
  save(S2, rec)
end

-- rotate token: moves the session to the second id (both on this server) → 'OK'
if cmd == 'rotate' then f = function()
  local token = opt(A + 1)
  local S2 = keys_of(ARG[4])
  if KEY[4] ~= S2.m then fail('ERR the keys and the id disagree') end
  local st, rec = find(S, 'all')
  if st == 'alias' then fail('ROTATED ' .. rec) end
  if st == 'tomb' then fail('DESTROYED') end
  if st == 'absent' then fail('NOTFOUND') end
  if token then check_token(S, rec, token) end
  retire(S, rec, S2.id)
  install(S2, rec)
  if SAME then
    if rec.o then
      redis.call('ZREM', owner_key(rec.o), S.id)
      index_owner(S2.id, rec.o, rec.c)
    end
    if MAXS > 0 then
      redis.call('ZREM', LIVE, S.id)
      redis.call('ZADD', LIVE, rec.a, S2.id)
    end
  end
  return 'OK'
end end

-- On Cluster a rotation crosses slots, so it is three steps, each atomic in its slot:
-- rot_read (the state to move, checked), rot_in (the copy under the new id), rot_out
-- (the old id retired, only if nothing changed since rot_read; else the client deletes
-- the copy and starts again). A crash in between leaves at most an unreferenced copy,
-- which expires; no step can lose a write or bring back a destroyed session.
-- (schema.rs: ROTATION_STATE, which the Rust side reads by these names.)
local STATE = { 'd', 'v', 'c', 'a', 'e', 'f', 'lt', 'lu', 'tt' }

-- rot_read token → {state…, owner|false}
if cmd == 'rot_read' then f = function()
  local token = opt(A + 1)
  local st, rec = find(S, 'all')
  if rec and st == 'live' then rec.d = text_of(rec) end
  if st == 'alias' then fail('ROTATED ' .. rec) end
  if st == 'tomb' then fail('DESTROYED') end
  if st == 'absent' then fail('NOTFOUND') end
  -- A lease that ran out is no lock, here as in rot_out (which compares the two).
  if token then check_token(S, rec, token) else expire_lease(S, rec) end
  local out = {}
  for n, f in ipairs(STATE) do out[n] = rec[f] end
  out[#out + 1] = rec.o or false
  if S.d then out[#out + 1] = rec.cookie or false end
  return out
end end

-- rot_in state… owner cookie: the copy, under this (fresh) id
if cmd == 'rot_in' then f = function()
  local rec = blank()
  for n, f in ipairs(STATE) do
    if n > 1 then rec[f] = tonumber(ARG[A + n]) end
  end
  from_text(rec, ARG[A + 1])
  local owner, cookie = ARG[A + #STATE + 1], ARG[A + #STATE + 2]
  if owner ~= '' then rec.o = owner end
  if cookie and cookie ~= '' then rec.cookie = cookie end
  install(S, rec)
  return 'OK'
end end

-- rot_out new-id version fence lock-token: retires the old id if unchanged → 1 | 0
if cmd == 'rot_out' then f = function()
  local to, v, f, lt = ARG[A + 1], tonumber(ARG[A + 2]), tonumber(ARG[A + 3]), tonumber(ARG[A + 4])
  local st, rec = find(S)
  if st ~= 'live' then return 0 end
  expire_lease(S, rec)
  if rec.v ~= v or rec.f ~= f or rec.lt ~= lt then return 0 end
  retire(S, rec, to)
  return 1
end end

-- drop: deletes a copy a failed rotation left behind
if cmd == 'drop' then f = function()
  redis.call('DEL', S.m)
  if S.d then redis.call('DEL', S.d) end
  return 'OK'
end end

-- owned owner destroy: the live sessions of an owner, from its index (same server
-- only); with destroy = '1', destroys them → ids | count
if cmd == 'owned' then f = function()
  local o, kill = ARG[A + 1], ARG[A + 2] == '1'
  local k = KEY[1]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  local ids, n = {}, 0
  for _, id in ipairs(redis.call('ZRANGE', k, 0, -1)) do
    local S2 = keys_of(id)
    local st, rec = find(S2)
    if st == 'live' and rec.o == o then
      if kill then
        tombstone(S2, now + TOMB)
        gone(S2, rec)
        n = n + 1
      else
        ids[#ids + 1] = id
      end
    else
      redis.call('ZREM', k, id)
    end
  end
  if kill then return n end
  return ids
end end

-- index owner id end: adds an id to an owner's index (Cluster: before the session names
-- the owner); the index lives until its last entry's end.
if cmd == 'index' then f = function()
  local k = KEY[1]
  local score = tonumber(ARG[A + 3])
  redis.call('ZADD', k, score, ARG[A + 2])
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', k, left(math.max(score, tonumber(top[2]))))
  return 'OK'
end end

-- index_list: the ids an owner's index holds, entries past their end dropped.
if cmd == 'index_list' then f = function()
  redis.call('ZREMRANGEBYSCORE', KEY[1], '-inf', now)
  return redis.call('ZRANGE', KEY[1], 0, -1)
end end

-- On a Cluster with max_sessions, the client keeps the set of live sessions (scored by
-- last access) in its own slot, KEY[1], with these; entries it cannot vouch for are
-- checked in their own slot (alive) before they count against the limit.

-- live_reserve id max → 'OK' (counted) | {'FULL', the least recently used ids…}
if cmd == 'live_reserve' then f = function()
  local id, max = ARG[A + 1], tonumber(ARG[A + 2])
  redis.call('ZREMRANGEBYSCORE', KEY[1], '-inf', now - math.max(TTL, ABS))
  if redis.call('ZSCORE', KEY[1], id) or redis.call('ZCARD', KEY[1]) < max then
    redis.call('ZADD', KEY[1], now, id)
    return 'OK'
  end
  return { 'FULL', redis.call('ZRANGE', KEY[1], 0, 7) }
end end

-- live_add id score: records an access (or a new id).
if cmd == 'live_add' then f = function()
  redis.call('ZADD', KEY[1], tonumber(ARG[A + 2]), ARG[A + 1])
  return 'OK'
end end

-- live_rem ids…
if cmd == 'live_rem' then f = function()
  for i = A + 1, #ARG do redis.call('ZREM', KEY[1], ARG[i]) end
  return 'OK'
end end

-- alive → 1 | 0
if cmd == 'alive' then f = function()
  local st = find(S)
  return st == 'live' and 1 or 0
end end

-- evict: removes a live session to make room (no tombstone) → 1 | 0
if cmd == 'evict' then f = function()
  local st, rec = find(S)
  if st ~= 'live' then return 0 end
  gone(S, rec)
  return 1
end end

if not f then return redis.error_reply('ERR unknown sessync command ' .. tostring(cmd)) end
local ok, res = pcall(f)
if ok then return res end
if type(res) == 'string' and res:sub(1, #MARK) == MARK then
  return redis.error_reply(res:sub(#MARK + 1))
end
if type(res) == 'table' and res.err then return redis.error_reply(res.err) end
return redis.error_reply('ERR sessync script: ' .. tostring(res))
end

---------------------------------------------------------------------------------------
-- The increment on its own path, taken before the per-call set-up of `run` below: the
-- common case of `incr` (a live native record, one top-level key, no expected version,
-- no release) in the fewest steps Redis can take, because here every step is a cost:
-- each argument and each field read crosses into Lua, and each call into Redis costs
-- more than all of the arithmetic. So: one read, one write. Times stay text and compare
-- as text (the client sends 13-digit times only, and every stored time is checked to
-- have 13 digits, so text order is number order), and the reply is one string, the new
-- version and the new value ('7 42': a table costs Redis more to build, convert and
-- collect than the whole check). Anything else answers 0 before any write, and the
-- client then sends the general `patch`, which gives the same result in every case (a
-- field missing included).
-- ARG: '+', now, now + TTL, now + TTL - ABS (zero-padded), the key (JSON), by[, token].
local function fast_incr(k, a)
  local m, now, e2, lowc, key, by, token = k[1], a[2], a[3], a[4], a[5], a[6], a[7]
  local r = redis.call('HMGET', m, 'e', 'c', 'lt', 'lu', 'sz', 'px', 'v', key, 'tt')
  local e, c, lt, lu, sz, px, v, old = r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]
  -- Live, not near its absolute end (then the new end is now + TTL), times comparable,
  -- and no TTL of its own (the end sent is the store's).
  if not (e and c and px and sz and v) or #e ~= 13 or e <= now or #c ~= 13 or c <= lowc
    or #px ~= 13 or (r[9] and r[9] ~= '0') then
    return 0
  end
  -- Unlocked and no token, or locked by this token with time left on its lease.
  if lt == '0' then
    if token then return 0 end
  elseif token ~= lt or not lu or #lu ~= 13 or lu <= now then
    return 0
  end
  -- Exact: both under 10^15 in size, so the sum is well inside 2^53 (the general path
  -- refuses beyond it, and says why).
  if #by > 15 then return 0 end
  local cur, grow = 0, #key + 2
  if old then
    if #old > 15 or not old:match('^%-?%d+$') then return 0 end
    cur, grow = tonumber(old), -#old
  end
  local n = cur + tonumber(by)
  local text = string.format('%d', n)
  local sz0 = tonumber(sz)
  local sz2 = sz0 + grow + #text
  if size_of(sz2) > MAXB then return 0 end
  v = string.format('%d', tonumber(v) + 1)
  local w = { key, text, 'v', v, 'a', now, 'e', e2 }
  if sz2 ~= sz0 then
    w[9], w[10] = 'sz', string.format('%d', sz2)
  end
  local moved = px < e2
  if moved then
    w[#w + 1], w[#w + 2] = 'px', string.format('%d', tonumber(e2) + slack())
  end
  redis.call('HSET', m, unpack(w))
  if moved then redis.call('PEXPIRE', m, TTL + slack()) end
  if SAME and MAXS > 0 then redis.call('ZADD', LIVE, now, m:sub(#PREFIX + 2, -2)) end
  return v .. ' ' .. text
end

local function main(keys, args)
  if args[1] == '+' then return fast_incr(keys, args) end
  KEY, ARG, cmd = keys, args, args[1]
  WALL = args[2]:byte(1) == 119
  now = tonumber(WALL and args[2]:sub(2) or args[2])
  return run()
end

-- The client puts here `return main(KEYS, ARGV)` (a script, run by EVALSHA) or
-- `redis.register_function(…, main)` (a function library, run by FCALL).
@TAIL@
