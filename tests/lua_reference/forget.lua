-- Remove one article from the index and the store (retention). Its cluster loses a member; the
-- canonical is recomputed quietly (an old story leaving the window is not news).
-- The new canonical goes onto the re-index to-do set in the same step, so a process killed before
-- it indexes it (index_article.lua) leaves a durable to-do that the next expiry or start completes.
-- KEYS: the article's band shard keys, then its content-hash shard key (see slots_from), then the
-- re-index to-do set.
-- ARGV: prefix, id (16 hex), config (excerpt_ratio), band fields
local id = unhex(ARGV[2])
local todo = KEYS[#KEYS]
local cfg = {}
do
  local names = {'excerpt_ratio'}
  local i = 1
  for value in string.gmatch(ARGV[3], '%S+') do
    cfg[names[i]] = tonumber(value)
    i = i + 1
  end
end
local r = load(id)
if not r then return {0, ''} end
local survivor = ''
local stats = PREFIX .. 'stats'

if not has_flag(r.flags, FLAG_THIN) then
  local all, exact = slots_from(ARGV[4], r.content)
  all[#all + 1] = exact
  for _, slot in ipairs(all) do
    local value = redis.call('HGET', slot[1], slot[2])
    if value and bucket_has(value, id) then
      local rest = bucket_without(value, id)
      if rest == '' then redis.call('HDEL', slot[1], slot[2]) else redis.call('HSET', slot[1], slot[2], rest) end
    end
  end
end

if has_flag(r.flags, FLAG_THIN) then
  redis.call('HINCRBY', stats, 'thin', -1)
else
  redis.call('HINCRBY', stats, stat_kind(r.kind), -1)
  local members = cluster_members(r.cluster)
  if not members then
    redis.call('HINCRBY', stats, 'clusters', -1)
  else
    local records = {}
    for _, m in ipairs(members) do
      if m ~= id then
        local other = load(m)
        if other then records[#records + 1] = other end
      end
    end
    if #records == 0 then
      redis.call('DEL', cluster_key(r.cluster))
      redis.call('HINCRBY', stats, 'clusters', -1)
    else
      local canonical, reason = choose_canonical(records, cfg.excerpt_ratio)
      -- Copies identical to an indexed member were not indexed themselves: the engine re-indexes
      -- the new canonical, so that the story stays findable once this article is gone.
      survivor = hex(canonical.id)
      redis.call('SADD', todo, survivor)
      relabel(records, canonical, cfg.excerpt_ratio, nil)
      if #records == 1 then
        -- The survivor becomes a singleton again: a cluster of one is named after its member.
        redis.call('DEL', cluster_key(r.cluster))
        redis.call('SETRANGE', article_key(records[1].id), 24, records[1].id)
      else
        redis.call('SET', cluster_key(r.cluster), cluster_value(canonical, reason, records))
      end
    end
  end
end
redis.call('DEL', article_key(id))
redis.call('SREM', todo, ARGV[2])
return {1, survivor}
