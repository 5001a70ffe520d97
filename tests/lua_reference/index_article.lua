-- Put an article's LSH slots in the index (idempotent) and take it off the re-index to-do set:
-- used when retention removes the indexed member of a cluster whose other members were
-- near-identical copies and so never indexed (see forget.lua).
-- KEYS: the article's band shard keys, then its content-hash shard key (see slots_from), then the
-- re-index to-do set.
-- ARGV: prefix, id (16 hex), band fields, bucket cap
local id = unhex(ARGV[2])
local todo = KEYS[#KEYS]
local r = load(id)
redis.call('SREM', todo, ARGV[2])
if not r or has_flag(r.flags, FLAG_THIN) then return 0 end
local slots, exact = slots_from(ARGV[3], r.content)
slots[#slots + 1] = exact
local cap = tonumber(ARGV[4])
for _, slot in ipairs(slots) do
  local value = redis.call('HGET', slot[1], slot[2])
  if not value then
    redis.call('HSET', slot[1], slot[2], id)
  elseif #value < cap * 8 and not bucket_has(value, id) then
    redis.call('HSET', slot[1], slot[2], value .. id)
  end
end
return 1
