-- Apply one operator override atomically (split, merge, promote, or undo of an earlier one), append
-- it to the audit log, and queue its stream events. Semantics: see dedup/overrides.py.
-- ARGV: prefix, action, arguments (JSON), excerpt_ratio, audit fields (JSON: who, at, reason),
-- log_maxlen (entries the log keeps, the newest; 0: no cap)
-- Returns JSON: {entry = the audit entry} or {error = one line for the operator}. Every check runs
-- before the first write: Redis does not roll a script back.
local action = ARGV[2]
local args = cjson.decode(ARGV[3])
local excerpt_ratio = tonumber(ARGV[4])
local audit = cjson.decode(ARGV[5])
local log_maxlen = tonumber(ARGV[6]) or 0
local STATS = PREFIX .. 'stats'
local LOG = PREFIX .. 'overrides'
-- Numbered after the newest entry, not by the log's length: the log is trimmed, and a number given
-- twice would make `undo N` ambiguous and reuse stream event ids.
local newest = redis.call('LINDEX', LOG, -1)
local seq = newest and (cjson.decode(newest).id + 1) or 1
local tag = 'override-' .. seq
local events = {}

local function set_flag(r, flag, on)
  if has_flag(r.flags, flag) == on then return end
  r.flags = on and (r.flags + flag) or (r.flags - flag)
  redis.call('SETRANGE', article_key(r.id), 1, string.char(r.flags))
end

-- An event whose canonical is an older member: its text is stored compressed, so the engine
-- completes it (Engine.emit_pending). The tag keeps each override's event ids distinct.
local function queue_event(event, canonical, cluster, replaces)
  local event_id = event .. ':' .. hex(cluster) .. ':' .. hex(canonical.id)
  if replaces then event_id = event_id .. ':' .. hex(replaces) end
  event_id = event_id .. ':' .. tag
  redis.call('HSET', PREFIX .. 'pending', event_id, cjson.encode({
    event = event, id = hex(canonical.id), cluster = hex(cluster), replaces = replaces and hex(replaces) or ''}))
  events[#events + 1] = {event = event, id = hex(canonical.id), cluster = hex(cluster),
    replaces = replaces and hex(replaces) or ''}
end

-- The records of r's cluster (r itself when it is alone).
local function cluster_of(r)
  local ids = cluster_members(r.cluster)
  if not ids then return {r} end
  local records = {}
  for _, m in ipairs(ids) do
    local other = (m == r.id) and r or load(m)
    if other then records[#records + 1] = other end
  end
  return records
end

local function ids_of(records)
  local out = {}
  for i, r in ipairs(records) do out[i] = hex(r.id) end
  return out
end

-- Make `records` the cluster `cluster_id`: elect the canonical, rewrite every member's cluster and
-- relation and the counters, store the cluster (none for a singleton), and queue the events: a
-- member that was a canonical and is no longer one is `replaced`; a canonical that was not one
-- before, replacing nobody here, is `new`.
local function settle(cluster_id, records)
  local canonical, reason = choose_canonical(records, excerpt_ratio)
  local was_canonical = canonical.kind == KIND_CANONICAL
  local replaced = {}
  for _, r in ipairs(records) do
    if r.id ~= canonical.id and r.kind == KIND_CANONICAL then replaced[#replaced + 1] = r.id end
    if r.cluster ~= cluster_id then
      redis.call('SETRANGE', article_key(r.id), 24, cluster_id)
      r.cluster = cluster_id
    end
  end
  relabel(records, canonical, excerpt_ratio, nil)
  if #records > 1 then
    redis.call('SET', cluster_key(cluster_id), cluster_value(canonical, reason, records))
  else
    redis.call('DEL', cluster_key(cluster_id))
  end
  for _, old in ipairs(replaced) do queue_event('replaced', canonical, cluster_id, old) end
  if not was_canonical and #replaced == 0 then queue_event('new', canonical, cluster_id, nil) end
  return canonical
end

-- The id a group of records takes as a cluster: a singleton's own id, else `preferred` when it is
-- a member, else its canonical's.
local function group_id(records, preferred)
  if #records == 1 then return records[1].id end
  for _, r in ipairs(records) do
    if r.id == preferred then return preferred end
  end
  return (choose_canonical(records, excerpt_ratio)).id
end

-- Move `group` out of cluster `cluster` (whose other members are `rest`) into a cluster of its own.
-- The rest keeps the cluster id unless it was a member of the group or the rest is a singleton.
local function detach(cluster, group, rest, preferred)
  local in_group = {}
  for _, r in ipairs(group) do in_group[r.id] = true end
  local rest_id = cluster
  if #rest == 1 or in_group[cluster] then rest_id = group_id(rest, nil) end
  redis.call('DEL', cluster_key(cluster))
  local group_canonical = settle(group_id(group, preferred), group)
  local rest_canonical = settle(rest_id, rest)
  redis.call('HINCRBY', STATS, 'clusters', 1)
  return group_canonical, rest_canonical
end

-- One cluster of both records' clusters; the id is a's cluster's, unless only b's is sealed.
local function join(a, b)
  local target = a.cluster
  if sealed(b.cluster) and not sealed(a.cluster) then target = b.cluster end
  local records = cluster_of(a)
  for _, r in ipairs(cluster_of(b)) do records[#records + 1] = r end
  redis.call('DEL', cluster_key(a.cluster))
  redis.call('DEL', cluster_key(b.cluster))
  redis.call('HINCRBY', STATS, 'clusters', -1)
  return settle(target, records)
end

local function article(id_hex, role)
  if type(id_hex) ~= 'string' or #id_hex ~= 16 then return nil, role .. ': not an article id' end
  local r = load(unhex(id_hex))
  if not r then return nil, role .. ' ' .. id_hex .. ': no such article (expired or never decided)' end
  if has_flag(r.flags, FLAG_THIN) then
    strings(r)
    return nil, role .. ' ' .. r.url .. ': too little text to compare, it is never clustered'
  end
  strings(r)
  return r
end

local entry = {id = seq, action = action, who = audit.who, at = audit.at, reason = audit.reason}
local err

if action == 'split' then
  local m
  m, err = article(args.member, 'member')
  if not m then return cjson.encode({error = err}) end
  local records = cluster_of(m)
  if #records < 2 then
    return cjson.encode({error = m.url .. ' is alone in its cluster: nothing to split'})
  end
  local cluster = m.cluster
  local rest = {}
  for _, r in ipairs(records) do
    if r.id ~= m.id then rest[#rest + 1] = r end
  end
  entry.articles, entry.urls = {hex(m.id)}, {m.url}
  entry.undo = {member = hex(m.id), former = ids_of(rest), was_split = has_flag(m.flags, FLAG_SPLIT)}
  local _, old_canonical = cluster_members(cluster)
  entry.before = {cluster = hex(cluster), canonical = hex(old_canonical)}
  set_flag(m, FLAG_SPLIT, true)
  local _, rest_canonical = detach(cluster, {m}, rest, m.id)
  entry.after = {cluster = hex(m.id), canonical = hex(m.id), rest_cluster = hex(rest_canonical.cluster),
    rest_canonical = hex(rest_canonical.id)}

elseif action == 'merge' then
  local a, b
  a, err = article(args.a, 'A')
  if not a then return cjson.encode({error = err}) end
  b, err = article(args.b, 'B')
  if not b then return cjson.encode({error = err}) end
  if a.cluster == b.cluster then
    return cjson.encode({error = a.url .. ' and ' .. b.url .. ' are already in one cluster'})
  end
  local b_records = cluster_of(b)
  entry.articles, entry.urls = {hex(a.id), hex(b.id)}, {a.url, b.url}
  entry.undo = {a = hex(a.id), b = hex(b.id), b_members = ids_of(b_records), b_cluster = hex(b.cluster)}
  entry.before = {cluster = hex(a.cluster), other_cluster = hex(b.cluster)}
  local canonical = join(a, b)
  entry.after = {cluster = hex(canonical.cluster), canonical = hex(canonical.id)}

elseif action == 'promote' then
  local m
  m, err = article(args.member, 'member')
  if not m then return cjson.encode({error = err}) end
  local records = cluster_of(m)
  local cleared = {}
  for _, r in ipairs(records) do
    if r.id ~= m.id and has_flag(r.flags, FLAG_PINNED) then cleared[#cleared + 1] = hex(r.id) end
  end
  entry.articles, entry.urls = {hex(m.id)}, {m.url}
  entry.undo = {member = hex(m.id), was_pinned = has_flag(m.flags, FLAG_PINNED), cleared = cleared}
  local _, old_canonical = cluster_members(m.cluster)
  entry.before = {cluster = hex(m.cluster), canonical = hex(old_canonical)}
  for _, r in ipairs(records) do set_flag(r, FLAG_PINNED, r.id == m.id) end
  local canonical = settle(m.cluster, records)
  entry.after = {cluster = hex(m.cluster), canonical = hex(canonical.id)}

elseif action == 'undo' then
  -- The override to undo: the one named, or the latest one not undone yet.
  local logged = redis.call('LRANGE', LOG, 0, -1)
  local entries, undone = {}, {}
  for _, raw in ipairs(logged) do
    local e = cjson.decode(raw)
    entries[#entries + 1] = e
    if e.action == 'undo' then undone[e.undoes] = e.id end
  end
  local target = tonumber(args.target) or 0
  local original = nil
  if target == 0 then
    for i = #entries, 1, -1 do
      local e = entries[i]
      if e.action ~= 'undo' and not undone[e.id] then original = e break end
    end
    if not original then return cjson.encode({error = 'no override to undo'}) end
  else
    for _, e in ipairs(entries) do
      if e.id == target then original = e end
    end
    if not original then
      if entries[1] and target >= 1 and target < entries[1].id then
        local kept = log_maxlen > 0 and (' (it keeps the newest ' .. log_maxlen .. ' entries)') or ''
        return cjson.encode({error = 'override #' .. target .. ' was trimmed from the log' .. kept
          .. ': it can no longer be undone'})
      end
      return cjson.encode({error = 'no override #' .. target})
    end
    if original.action == 'undo' then
      return cjson.encode({error = 'override #' .. target .. ' is itself an undo; redo the original instead'})
    end
    if undone[target] then
      return cjson.encode({error = 'override #' .. target .. ' was already undone by #' .. undone[target]})
    end
  end
  local u = original.undo
  entry.undoes, entry.undoes_action = original.id, original.action
  entry.articles, entry.urls = original.articles, original.urls
  tag = 'undo-' .. seq

  if original.action == 'split' then
    local m
    m, err = article(u.member, 'member')
    if not m then return cjson.encode({error = err}) end
    local anchor = nil
    for _, other in ipairs(u.former) do
      local r = load(unhex(other))
      if r and r.cluster ~= m.cluster then anchor = r break end
    end
    set_flag(m, FLAG_SPLIT, u.was_split)
    if anchor then
      local canonical = join(anchor, m)
      entry.after = {cluster = hex(canonical.cluster), canonical = hex(canonical.id)}
    end

  elseif original.action == 'merge' then
    local a
    a, err = article(u.a, 'A')
    if not a then return cjson.encode({error = err}) end
    local records = cluster_of(a)
    local group, rest, wanted = {}, {}, {}
    for _, other in ipairs(u.b_members) do wanted[unhex(other)] = true end
    for _, r in ipairs(records) do
      if wanted[r.id] then group[#group + 1] = r else rest[#rest + 1] = r end
    end
    if #group == 0 or #rest == 0 then
      return cjson.encode({error = 'override #' .. original.id .. ': the merged articles are no longer together'})
    end
    local group_canonical, rest_canonical = detach(a.cluster, group, rest, unhex(u.b_cluster))
    entry.after = {cluster = hex(rest_canonical.cluster), canonical = hex(rest_canonical.id),
      other_cluster = hex(group_canonical.cluster), other_canonical = hex(group_canonical.id)}

  elseif original.action == 'promote' then
    local m
    m, err = article(u.member, 'member')
    if not m then return cjson.encode({error = err}) end
    local restore = {}
    for _, other in ipairs(u.cleared) do restore[unhex(other)] = true end
    local records = cluster_of(m)
    for _, r in ipairs(records) do
      if r.id == m.id then
        set_flag(r, FLAG_PINNED, u.was_pinned)
      elseif restore[r.id] then
        set_flag(r, FLAG_PINNED, true)
      end
    end
    local canonical = settle(m.cluster, records)
    entry.after = {cluster = hex(m.cluster), canonical = hex(canonical.id)}
  end

else
  return cjson.encode({error = 'unknown override ' .. tostring(action)})
end

entry.events = events
redis.call('RPUSH', LOG, cjson.encode(entry))
if log_maxlen > 0 then redis.call('LTRIM', LOG, -log_maxlen, -1) end
return cjson.encode({entry = entry})
