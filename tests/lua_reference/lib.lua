-- Shared helpers for the newsdedup scripts. Prepended to each script by dedup/index.py.
-- Records are the packed layout documented in dedup/record.py; ids are 8 raw bytes.
local PREFIX = ARGV[1]
local NO_ID = string.rep('\0', 8)
local HEADER_FMT = '<BBBBI4i4I4I4HHc8c8c8c8c8c8'
local HEADER_SIZE = 72
local FLAG_THIN, FLAG_ELSEWHERE, FLAG_PINNED, FLAG_SPLIT, FLAG_SYNDICATED = 1, 2, 4, 8, 16
local KIND_CANONICAL, KIND_EXACT, KIND_NEAR, KIND_EXCERPT, KIND_THIN = 0, 1, 2, 3, 4
local KIND_NAMES = {[1] = 'exact', [2] = 'near', [3] = 'excerpt'}

local function hex(raw)
  return string.format('%02x%02x%02x%02x%02x%02x%02x%02x', string.byte(raw, 1, 8))
end

local function unhex(text)
  return (string.gsub(text, '%x%x', function(pair) return string.char(tonumber(pair, 16)) end))
end

local function has_flag(flags, flag)
  return math.floor(flags / flag) % 2 == 1
end

local function article_key(id) return PREFIX .. 'a:' .. hex(id) end
local function cluster_key(id) return PREFIX .. 'c:' .. hex(id) end

local function parse(id, raw)
  local r = {id = id, raw = raw}
  r.version, r.flags, r.kind, r.spare, r.arrived, r.published, r.n_shingles, r.n_tokens,
    r.similarity, r.containment, r.cluster, r.duplicate_of, r.canonical_link, r.source_link,
    r.content, r.site = struct.unpack(HEADER_FMT, raw)
  local pos = HEADER_SIZE + 1
  r.sig_len = struct.unpack('<H', raw, pos)
  r.sig_pos = pos + 2
  pos = r.sig_pos + r.sig_len
  r.lead_len = struct.unpack('<H', raw, pos)
  r.lead_pos = pos + 2
  pos = r.lead_pos + r.lead_len
  r.lead2_len = struct.unpack('<H', raw, pos)
  r.lead2_pos = pos + 2
  r.strings_pos = r.lead2_pos + r.lead2_len
  return r
end

local function load(id)
  local raw = redis.call('GET', article_key(id))
  if not raw then return nil end
  return parse(id, raw)
end

-- The values of a stored signature at pos (dedup.signature.stored: b-bit values, little-endian):
-- one byte each for the full text, two for an opening. Each list carries the chance that two
-- different values agree (2^-bits), which jaccard corrects for.
local FULL_CHANCE, LEAD_CHANCE = 1 / 256, 1 / 65536

local function sig_values(raw, pos, len, width)
  local n = len / width
  if n <= 0 then return {chance = 0} end
  local values
  if width == 1 then
    values = {string.byte(raw, pos, pos + len - 1)}
  else
    values = {struct.unpack('<' .. string.rep('I2', n), raw, pos)}
    values[n + 1] = nil
  end
  values.chance = (width == 1) and FULL_CHANCE or LEAD_CHANCE
  return values
end

local function signature(r)
  if not r.values then r.values = sig_values(r.raw, r.sig_pos, r.sig_len, 1) end
  return r.values
end

local function lead_signature(r)
  if not r.lead_values then r.lead_values = sig_values(r.raw, r.lead_pos, r.lead_len, 2) end
  return r.lead_values
end

local function second_lead_signature(r)
  if not r.lead2_values then r.lead2_values = sig_values(r.raw, r.lead2_pos, r.lead2_len, 2) end
  return r.lead2_values
end

local function strings(r)
  if r.url then return end
  local pos = r.strings_pos
  local out = {}
  for i = 1, 4 do
    local len = struct.unpack('<H', r.raw, pos)
    out[i] = string.sub(r.raw, pos + 2, pos + 1 + len)
    pos = pos + 2 + len
  end
  r.url, r.title, r.site_name, r.source = out[1], out[2], out[3], out[4]
end

-- The record with its text replaced by a reference to the canonical stream entry that carries it
-- (dedup/record.py TEXT_STREAM: form byte 2, then the entry id): the stream holds the text already.
-- Where a record's text section starts (its form byte, then <I4> length and data): after the four
-- strings and, from record version 4 on, the spin sketch.
local function text_pos(raw)
  local r = parse('', raw)
  local pos = r.strings_pos
  for _ = 1, (r.version >= 4 and 5 or 4) do pos = pos + 2 + struct.unpack('<H', raw, pos) end
  return pos
end

local function with_text(raw, form, data)
  return string.sub(raw, 1, text_pos(raw) - 1) .. struct.pack('<BI4', form, #data) .. data
end

local function with_text_ref(raw, entry)
  return with_text(raw, 2, entry)
end

-- Estimated Jaccard of two equal-length signatures: the share of equal values, corrected for
-- values that agree by chance (b-bit MinHash; dedup.signature.estimated_jaccard is the same).
local function jaccard(a, b)
  local n = #a
  if n == 0 or n ~= #b then return 0 end
  local equal = 0
  for i = 1, n do
    if a[i] == b[i] then equal = equal + 1 end
  end
  local chance = a.chance or 0
  return math.max(0, (equal / n - chance) / (1 - chance))
end

-- How alike two texts open: their first openings, or one's first against the other's opening from
-- its second paragraph (a standfirst or caption on one side only).
local function opening_similarity(a, c)
  local best = jaccard(lead_signature(a), lead_signature(c))
  if best < 1 and c.lead2_len > 0 then
    best = math.max(best, jaccard(lead_signature(a), second_lead_signature(c)))
  end
  if best < 1 and a.lead2_len > 0 then
    best = math.max(best, jaccard(second_lead_signature(a), lead_signature(c)))
  end
  return best
end

-- Shared shingles, estimated from Jaccard and the exact set sizes: |A n B| = J (|A| + |B|) / (1 + J).
local function intersection(j, na, nb)
  return j * (na + nb) / (1 + j)
end

-- The LSH slots of an article, computed by the engine (dedup/index.py): KEYS[1..n] are the shard
-- keys of its n band slots, KEYS[n + 1] the shard of its content hash; `fields` is the width w of a
-- band field (one byte), then the n band fields (w bytes each: band number, then the band hash
-- divided by the shard count) and the content-hash field is 0xFF + hash.
local function slots_from(fields, content)
  local slots = {}
  local w = string.byte(fields, 1)
  local n = (#fields - 1) / w
  for i = 1, n do
    slots[i] = {KEYS[i], string.sub(fields, 2 + w * (i - 1), 1 + w * i)}
  end
  return slots, {KEYS[n + 1], '\255' .. content}
end

local function bucket_ids(value)
  local ids = {}
  if value then
    for pos = 1, #value - 7, 8 do ids[#ids + 1] = string.sub(value, pos, pos + 7) end
  end
  return ids
end

local function bucket_has(value, id)
  for pos = 1, #value - 7, 8 do
    if string.sub(value, pos, pos + 7) == id then return true end
  end
  return false
end

local function bucket_without(value, id)
  local kept = {}
  for pos = 1, #value - 7, 8 do
    local other = string.sub(value, pos, pos + 7)
    if other ~= id then kept[#kept + 1] = other end
  end
  return table.concat(kept)
end

local function cluster_members(cluster_id)
  local value = redis.call('GET', cluster_key(cluster_id))
  if not value then return nil, cluster_id, 0 end
  local members = {}
  for pos = 10, #value - 7, 8 do members[#members + 1] = string.sub(value, pos, pos + 7) end
  return members, string.sub(value, 1, 8), string.byte(value, 9)
end

-- The canonical policy (ARCHITECTURE.md): overrides, then pages naming a member, then members
-- that call themselves copies, then completeness, then the earliest publication date, then arrival.
-- Returns the winner and the reason it beat the runner-up.
local REASON_SINGLE, REASON_OVERRIDE, REASON_NAMED, REASON_SELF_DECLARED, REASON_SYNDICATED,
  REASON_COMPLETE, REASON_EARLIEST, REASON_ARRIVAL = 0, 1, 2, 3, 4, 5, 6, 7

local function choose_canonical(records, excerpt_ratio)
  local by_id, max_n = {}, 0
  for _, r in ipairs(records) do
    by_id[r.id] = r
    r.votes = 0
    if r.n_shingles > max_n then max_n = r.n_shingles end
  end
  for _, r in ipairs(records) do
    local named = {}
    for _, link in ipairs({r.canonical_link, r.source_link}) do
      if link ~= NO_ID and link ~= r.id and by_id[link] and not named[link] then
        by_id[link].votes = by_id[link].votes + 1
        named[link] = true
      end
    end
  end
  local function criteria(r)
    return {
      has_flag(r.flags, FLAG_PINNED) and 1 or 0,
      r.votes,
      has_flag(r.flags, FLAG_ELSEWHERE) and 0 or 1,
      has_flag(r.flags, FLAG_SYNDICATED) and 0 or 1,
      (r.n_shingles >= excerpt_ratio * max_n) and 1 or 0,
      (r.published ~= 0) and 1 or 0,
      -- Dates compare by day first: a date read from a URL or a date-only field says midnight,
      -- which is no evidence against a timestamp later that same day.
      (r.published ~= 0) and -math.floor(r.published / 86400) or 0,
      (r.published ~= 0 and r.published % 86400 ~= 0) and 1 or 0,
      (r.published ~= 0) and -r.published or 0,
      -r.arrived,
    }
  end
  local reasons = {REASON_OVERRIDE, REASON_NAMED, REASON_SELF_DECLARED, REASON_SYNDICATED,
    REASON_COMPLETE, REASON_EARLIEST, REASON_EARLIEST, REASON_EARLIEST, REASON_EARLIEST, REASON_ARRIVAL}
  local best, best_c, reason = nil, nil, REASON_SINGLE
  for _, r in ipairs(records) do
    local c = criteria(r)
    if not best then
      best, best_c = r, c
    else
      local decided = false
      for i = 1, #c do
        if c[i] ~= best_c[i] then
          if c[i] > best_c[i] then best, best_c = r, c end
          decided = true
          break
        end
      end
      -- A tie stays with the member listed first (decided first).
    end
  end
  -- The reason: the first criterion on which the winner beats the best of the others.
  if #records > 1 then
    local first = 99
    for _, r in ipairs(records) do
      if r ~= best then
        local c = criteria(r)
        local at = 99
        for i = 1, #c do
          if c[i] ~= best_c[i] then at = i break end
        end
        if at < first then first = at end
      end
    end
    reason = reasons[first] or REASON_ARRIVAL
  end
  return best, reason
end

-- How member m relates to canonical c: kind, similarity (Jaccard), containment of m in c.
local function relation(m, c, excerpt_ratio)
  if m.content == c.content then return KIND_EXACT, 1, 1 end
  local j = jaccard(signature(m), signature(c))
  local inter = intersection(j, m.n_shingles, c.n_shingles)
  local contained = math.min(1, inter / math.max(1, m.n_shingles))
  if m.n_shingles < excerpt_ratio * c.n_shingles and contained >= 0.5 then
    return KIND_EXCERPT, j, contained
  end
  return KIND_NEAR, j, contained
end

local function write_relation(r, kind, similarity, containment, canonical_id)
  local key = article_key(r.id)
  redis.call('SETRANGE', key, 2, string.char(kind))
  redis.call('SETRANGE', key, 20, struct.pack('<HH', math.floor(similarity * 10000 + 0.5),
    math.floor(containment * 10000 + 0.5)))
  redis.call('SETRANGE', key, 32, canonical_id)
end

local function stat_kind(kind)
  if kind == KIND_CANONICAL then return 'canonicals' end
  return 'dup_' .. (KIND_NAMES[kind] or 'other')
end

-- Every record's relation to the cluster's canonical (kind, scores, duplicate_of) rewritten where
-- it changed, the counters following each change. `fresh` names a record not yet counted (the
-- article being decided): it is always written and only counted in.
local function relabel(records, canonical, excerpt_ratio, fresh)
  for _, r in ipairs(records) do
    local kind, similarity, containment, target = KIND_CANONICAL, 0, 0, NO_ID
    if r.id ~= canonical.id then
      kind, similarity, containment = relation(r, canonical, excerpt_ratio)
      target = canonical.id
    end
    local counted = r.id ~= fresh
    if not counted or kind ~= r.kind or target ~= r.duplicate_of then
      write_relation(r, kind, similarity, containment, target)
      if counted then redis.call('HINCRBY', PREFIX .. 'stats', stat_kind(r.kind), -1) end
      redis.call('HINCRBY', PREFIX .. 'stats', stat_kind(kind), 1)
    end
    r.kind, r.duplicate_of = kind, target
  end
end

-- The value of a cluster key: canonical id, the reason it won, then every member id.
local function cluster_value(canonical, reason, records)
  local ids = {}
  for i, r in ipairs(records) do ids[i] = r.id end
  return canonical.id .. string.char(reason) .. table.concat(ids)
end

-- The engine's decide configuration: one space-separated argument, in this order (see Engine).
local CONFIG_NAMES = {'bands', 'rows', 'lead_bands', 'lead_rows', 'shards', 'bucket_cap', 'near',
  'same_site_near', 'contained', 'contained_jaccard', 'excerpt_lead', 'excerpt_containment',
  'excerpt_jaccard', 'min_shared', 'max_candidates', 'excerpt_ratio', 'stream_maxlen', 'max_merge',
  'reach'}

local function read_config(text)
  local cfg, i = {}, 1
  for value in string.gmatch(text, '%S+') do
    cfg[CONFIG_NAMES[i]] = tonumber(value)
    i = i + 1
  end
  return cfg
end

-- Candidates for an article: the content-hash slot first (the exact fast path), then, only when it
-- holds nothing, the LSH bands; never the article itself (own_id: peek.lua may look up a stored one).
-- Returns the candidate ids in lookup order, the set of ids sharing the content hash, the
-- content-hash slot's value and the band values read (false when empty).
local function lookup(slots, exact, max_candidates, own_id)
  local candidate_ids, seen, exact_ids = {}, {[own_id] = true}, {}
  local exact_value = redis.call('HGET', exact[1], exact[2])
  for _, other in ipairs(bucket_ids(exact_value)) do
    if not seen[other] then
      seen[other] = true
      exact_ids[other] = true
      candidate_ids[#candidate_ids + 1] = other
    end
  end
  local bucket_values = {}
  if #candidate_ids == 0 then
    for i, slot in ipairs(slots) do
      local value = redis.call('HGET', slot[1], slot[2])
      bucket_values[i] = value or false
      for _, other in ipairs(bucket_ids(value)) do
        if not seen[other] and #candidate_ids < max_candidates then
          seen[other] = true
          candidate_ids[#candidate_ids + 1] = other
        end
      end
    end
  end
  return candidate_ids, exact_ids, exact_value, bucket_values
end

-- Verify candidate c for article a: estimated Jaccard, and containment from Jaccard and the exact
-- shingle counts. Returns the kind of copy (nil: not a copy), a ranking score, Jaccard, containment.
local function verify(a, c, cfg, same_hash)
  if same_hash or c.content == a.content then
    return KIND_EXACT, 2, 1, 1
  end
  local kind = nil
  local j = jaccard(signature(a), signature(c))
  local small = math.min(a.n_shingles, c.n_shingles)
  local large = math.max(a.n_shingles, c.n_shingles)
  local shared = intersection(j, a.n_shingles, c.n_shingles)
  local contained = math.min(1, shared / math.max(1, small))
  local same_site = (a.site == c.site)
  if shared >= cfg.min_shared then
    if same_site then
      -- Two pages of one site share its boilerplate and its lists of headlines: they are copies
      -- only when nearly identical and opening with the same words.
      if j >= cfg.same_site_near and jaccard(lead_signature(a), lead_signature(c)) >= cfg.excerpt_lead then
        kind = KIND_NEAR
      end
    elseif j >= cfg.near then
      kind = KIND_NEAR
    elseif contained >= cfg.contained and j >= cfg.contained_jaccard then
      kind = (small < cfg.excerpt_ratio * large) and KIND_EXCERPT or KIND_NEAR
    elseif contained >= cfg.excerpt_containment and j >= cfg.excerpt_jaccard
        and small < cfg.excerpt_ratio * large then
      if opening_similarity(a, c) >= cfg.excerpt_lead then kind = KIND_EXCERPT end
    end
  end
  return kind, math.max(j, contained * 0.9), j, contained
end

-- Every candidate verified against a (thin ones and a itself skipped), best first. Each entry:
-- record, kind (nil when not a copy), score, jaccard, containment. Copies come first.
local function verify_all(a, candidate_ids, exact_ids, cfg)
  local scored = {}
  for _, other in ipairs(candidate_ids) do
    if other ~= a.id then
      local c = load(other)
      if c and not has_flag(c.flags, FLAG_THIN) then
        local kind, score, j, contained = verify(a, c, cfg, exact_ids[other])
        scored[#scored + 1] = {record = c, kind = kind, score = score, jaccard = j, containment = contained}
      end
    end
  end
  table.sort(scored, function(x, y)
    if (x.kind ~= nil) ~= (y.kind ~= nil) then return x.kind ~= nil end
    if x.score ~= y.score then return x.score > y.score end
    return x.record.id < y.record.id
  end)
  return scored
end

-- The verified copies among the scored candidates, best first.
local function copies_of(scored)
  local matches = {}
  for _, s in ipairs(scored) do
    if s.kind then matches[#matches + 1] = s end
  end
  return matches
end

-- A cluster an operator split off (dedup/overrides.py): its founder carries FLAG_SPLIT and still
-- names it. Such a cluster takes new copies of its own articles but never merges with another.
local function sealed(cluster_id)
  local r = load(cluster_id)
  return r ~= nil and has_flag(r.flags, FLAG_SPLIT) and r.cluster == cluster_id
end

-- Where an article with these matches (best first) goes: the best match's cluster, plus up to
-- max_merge other matched clusters it bridges (never a sealed one, nor into a sealed one).
-- Returns the cluster id, its members (bridged members appended), the bridged clusters (each
-- {id, canonical, members}) and the old canonicals (id -> cluster id).
local function join_plan(matches, max_merge)
  local cluster_id = matches[1].record.cluster
  local members, old_canonical = cluster_members(cluster_id)
  if not members then members = {cluster_id} end
  local old_canonicals = {[old_canonical] = cluster_id}
  local bridged, in_cluster = {}, {}
  for _, m in ipairs(members) do in_cluster[m] = true end
  local own_sealed = nil
  for _, match in ipairs(matches) do
    local other_cluster = match.record.cluster
    if other_cluster ~= cluster_id and not in_cluster[match.record.id] and #bridged < max_merge then
      if own_sealed == nil then own_sealed = sealed(cluster_id) end
      if not own_sealed and not sealed(other_cluster) then
        local other_members, other_canonical = cluster_members(other_cluster)
        if not other_members then other_members = {other_cluster} end
        local added = {}
        for _, m in ipairs(other_members) do
          if not in_cluster[m] then
            members[#members + 1] = m
            added[#added + 1] = m
            in_cluster[m] = true
          end
        end
        bridged[#bridged + 1] = {id = other_cluster, canonical = other_canonical, members = added}
        old_canonicals[other_canonical] = other_cluster
      end
    end
  end
  return cluster_id, members, bridged, old_canonicals
end
