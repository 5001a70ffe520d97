-- Read-only decide: what decide.lua would do with this article now, and every candidate it would
-- verify with its scores. Writes nothing (`newsdedup check`).
-- KEYS: the article's band shard keys, then its content-hash shard key (see slots_from).
-- ARGV: prefix, id (16 hex), record, config, band fields, how many candidates to return, ids verified
-- as spun copies by the engine (see decide.lua)
local id = unhex(ARGV[2])
local a = parse(id, ARGV[3])
local cfg = read_config(ARGV[4])
local limit = tonumber(ARGV[6])

local result = {status = 'new', cluster = hex(id), canonical = hex(id), kind = 'canonical',
  similarity = 0, containment = 0, reason = REASON_SINGLE, replaces = {}, candidates = 0,
  matches = {}, known = false}
local stored = load(id)
if stored then
  result.known = true
  local _, canonical = cluster_members(stored.cluster)
  result.stored = {cluster = hex(stored.cluster), canonical = hex(canonical),
    kind = KIND_NAMES[stored.kind] or (stored.kind == KIND_THIN and 'thin' or 'canonical')}
end
if has_flag(a.flags, FLAG_THIN) then
  result.status, result.kind = 'thin', 'thin'
  return cjson.encode(result)
end

local slots, exact = slots_from(ARGV[5], a.content)
local candidate_ids, exact_ids = lookup(slots, exact, cfg.max_candidates, id)
local spun = add_spun(ARGV[7], candidate_ids, exact_ids, id)
local scored = verify_all(a, candidate_ids, exact_ids, cfg, spun)
local matches = copies_of(scored)
-- The decision stops at an exact match; for the operator, list the band candidates too.
local listed = scored
if next(exact_ids) ~= nil then
  local seen, more = {[id] = true}, {}
  for _, other in ipairs(candidate_ids) do seen[other] = true end
  for _, slot in ipairs(slots) do
    for _, other in ipairs(bucket_ids(redis.call('HGET', slot[1], slot[2]))) do
      if not seen[other] and #more < cfg.max_candidates then
        seen[other] = true
        more[#more + 1] = other
      end
    end
  end
  listed = verify_all(a, candidate_ids, exact_ids, cfg)
  for _, s in ipairs(verify_all(a, more, {}, cfg)) do listed[#listed + 1] = s end
  table.sort(listed, function(x, y)
    if (x.kind ~= nil) ~= (y.kind ~= nil) then return x.kind ~= nil end
    if x.score ~= y.score then return x.score > y.score end
    return x.record.id < y.record.id
  end)
end
result.candidates = #listed
for i, s in ipairs(listed) do
  if i > limit then break end
  local _, canonical = cluster_members(s.record.cluster)
  result.matches[i] = {id = hex(s.record.id), cluster = hex(s.record.cluster),
    canonical = hex(canonical), kind = s.kind and KIND_NAMES[s.kind] or '', score = s.score,
    jaccard = s.jaccard, containment = s.containment, same_site = (s.record.site == a.site),
    split = has_flag(s.record.flags, FLAG_SPLIT)}
end
if #matches == 0 then
  return cjson.encode(result)
end

-- The cluster it would join and the canonical policy's verdict, computed in memory only.
local cluster_id, members = join_plan(matches, cfg.max_merge)
local records, old_canonicals = {}, {}
for _, m in ipairs(members) do
  if m ~= id then
    local r = load(m)
    if r then
      records[#records + 1] = r
      if r.kind == KIND_CANONICAL then old_canonicals[#old_canonicals + 1] = r.id end
    end
  end
end
records[#records + 1] = a
local canonical, reason = choose_canonical(records, cfg.excerpt_ratio)
result.status, result.cluster, result.canonical, result.reason = 'dup', hex(cluster_id), hex(canonical.id), reason
if canonical.id == id then
  for _, old in ipairs(old_canonicals) do result.replaces[#result.replaces + 1] = hex(old) end
else
  local kind, similarity, containment = relation(a, canonical, cfg.excerpt_ratio)
  result.kind, result.similarity, result.containment = KIND_NAMES[kind], similarity, containment
end
return cjson.encode(result)
