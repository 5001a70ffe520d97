-- Decide one article atomically: look up candidates in the LSH index, verify them, join or found
-- a cluster, apply the canonical policy, insert the article, and queue stream events.
-- KEYS: the article's band shard keys, then its content-hash shard key (see slots_from).
-- ARGV: prefix, id (16 hex), record, time bucket, stream text, published ISO, config, band fields,
-- ids verified as spun copies by the engine (8 raw bytes each; see Engine._spun)
local id = unhex(ARGV[2])
local record_raw = ARGV[3]
local bucket = ARGV[4]
local stream_text = ARGV[5]
local published_iso = ARGV[6]
local cfg = read_config(ARGV[7])

local key = article_key(id)
local existing = redis.call('GET', key)
if existing then
  local r = parse(id, existing)
  local _, canonical = cluster_members(r.cluster)
  return {'known', hex(r.cluster), hex(canonical), r.kind, r.similarity, r.containment,
    r.duplicate_of == NO_ID and '' or hex(r.duplicate_of), '', '', 0}
end

local a = parse(id, record_raw)
local stats = PREFIX .. 'stats'
-- The engine adds the bucket to PREFIX .. 'hours' in the same pipeline, before this script.
redis.call('RPUSH', PREFIX .. 't:' .. bucket, id)

if has_flag(a.flags, FLAG_THIN) then
  redis.call('SET', key, record_raw)
  redis.call('HINCRBY', stats, 'thin', 1)
  return {'thin', hex(id), hex(id), KIND_THIN, 0, 0, '', '', '', 0}
end

-- Candidates from the index, verified (lib.lua: lookup, verify_all; peek.lua runs the same).
local slots, exact = slots_from(ARGV[8], a.content)
local candidate_ids, exact_ids, exact_value, bucket_values = lookup(slots, exact, cfg.max_candidates, id)
local spun = add_spun(ARGV[9], candidate_ids, exact_ids, id)
local matches = copies_of(verify_all(a, candidate_ids, exact_ids, cfg, spun))

local events, pending, replaced_hex = {}, 0, ''
local cluster_id, canonical, reason

local function xadd(event, canonical_r, cluster, replaces)
  strings(canonical_r)
  local event_id = event .. ':' .. hex(cluster) .. ':' .. hex(canonical_r.id)
  if replaces then event_id = event_id .. ':' .. hex(replaces) end
  local fields = {'event', event, 'event_id', event_id, 'id', hex(canonical_r.id),
    'url', canonical_r.url, 'title', canonical_r.title}
  if canonical_r.id == id then
    fields[#fields + 1] = 'text'; fields[#fields + 1] = stream_text
    fields[#fields + 1] = 'published'; fields[#fields + 1] = published_iso
  else
    -- The text of an older member is stored compressed: the engine completes this event.
    redis.call('HSET', PREFIX .. 'pending', event_id, cjson.encode({
      event = event, id = hex(canonical_r.id), cluster = hex(cluster),
      replaces = replaces and hex(replaces) or ''}))
    pending = pending + 1
    return
  end
  fields[#fields + 1] = 'source'; fields[#fields + 1] = canonical_r.source
  fields[#fields + 1] = 'cluster'; fields[#fields + 1] = hex(cluster)
  if replaces then fields[#fields + 1] = 'replaces'; fields[#fields + 1] = hex(replaces) end
  local entry
  if cfg.stream_maxlen > 0 then
    entry = redis.call('XADD', PREFIX .. 'canonical', 'MAXLEN', '~', cfg.stream_maxlen, '*', unpack(fields))
  else
    entry = redis.call('XADD', PREFIX .. 'canonical', '*', unpack(fields))
  end
  events[#events + 1] = entry
end

if #matches == 0 then
  cluster_id, canonical, reason = id, a, REASON_SINGLE
  redis.call('SET', key, record_raw)
  redis.call('HINCRBY', stats, 'clusters', 1)
  redis.call('HINCRBY', stats, 'canonicals', 1)
  xadd('new', a, id, nil)
else
  -- Join the best match's cluster; other matched clusters are bridged by this article and merge in.
  local members, bridged, old_canonicals
  cluster_id, members, bridged, old_canonicals = join_plan(matches, cfg.max_merge)
  for _, other in ipairs(bridged) do
    for _, m in ipairs(other.members) do
      redis.call('SETRANGE', article_key(m), 24, cluster_id)
    end
    redis.call('DEL', cluster_key(other.id))
    redis.call('HINCRBY', stats, 'clusters', -1)
  end
  members[#members + 1] = id
  redis.call('SET', key, record_raw)
  redis.call('SETRANGE', key, 24, cluster_id)
  a.cluster = cluster_id

  local records = {}
  for _, m in ipairs(members) do
    local r = (m == id) and a or load(m)
    if r then records[#records + 1] = r end
  end
  canonical, reason = choose_canonical(records, cfg.excerpt_ratio)

  -- Every member's relation to the (possibly new) canonical; counters follow the relabelling.
  relabel(records, canonical, cfg.excerpt_ratio, id)
  redis.call('SET', cluster_key(cluster_id), cluster_value(canonical, reason, records))

  for old_id, old_cluster in pairs(old_canonicals) do
    if old_id ~= canonical.id then
      xadd('replaced', canonical, cluster_id, old_id)
      if replaced_hex == '' then replaced_hex = hex(old_id) end
    end
  end
end

-- Index the article, unless it is a near-identical copy of a member with the same opening: then it
-- extends the cluster's reach by nothing, and leaving it out keeps the index small and the script short.
local adds_reach = (#matches == 0)
if not adds_reach and matches[1].kind ~= KIND_EXACT then
  local best = matches[1].record
  adds_reach = matches[1].jaccard < cfg.reach
    or jaccard(lead_signature(a), lead_signature(best)) < cfg.reach
end
if not exact_value then
  redis.call('HSET', exact[1], exact[2], id)
end
if adds_reach then
  for i, slot in ipairs(slots) do
    local value = bucket_values[i]
    if value == nil then value = redis.call('HGET', slot[1], slot[2]) end
    if not value then
      redis.call('HSET', slot[1], slot[2], id)
    elseif #value < cfg.bucket_cap * 8 and not bucket_has(value, id) then
      redis.call('HSET', slot[1], slot[2], value .. id)
    end
  end
end

local final = parse(id, redis.call('GET', key))
return {#matches == 0 and 'new' or 'dup', hex(cluster_id), hex(canonical.id), final.kind,
  final.similarity, final.containment, final.duplicate_of == NO_ID and '' or hex(final.duplicate_of),
  replaced_hex, table.concat(events, ','), pending, reason, #candidate_ids}
