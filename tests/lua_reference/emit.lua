-- Complete a pending stream event with the text the engine decompressed: exactly once.
-- ARGV: prefix, event id, text, published ISO, stream maxlen, '1' when the text expired (the
-- stream entry that held it was trimmed: the event is queued all the same, saying so)
local event_id = ARGV[2]
local pending = redis.call('HGET', PREFIX .. 'pending', event_id)
if not pending then return false end
local event = cjson.decode(pending)
local r = load(unhex(event.id))
redis.call('HDEL', PREFIX .. 'pending', event_id)
if not r then return false end
-- A later decision may already have moved the canonical on (and queued its own event): an event
-- naming a former canonical would then land after the newer one, so it is dropped.
local _, current = cluster_members(r.cluster)
if current ~= r.id then return false end
strings(r)
local fields = {'event', event.event, 'event_id', event_id, 'id', event.id, 'url', r.url,
  'title', r.title, 'text', ARGV[3], 'published', ARGV[4], 'source', r.source, 'cluster', event.cluster}
if ARGV[6] == '1' then
  fields[#fields + 1] = 'text_expired'; fields[#fields + 1] = '1'
end
if event.replaces ~= '' then
  fields[#fields + 1] = 'replaces'; fields[#fields + 1] = event.replaces
end
local maxlen = tonumber(ARGV[5])
if maxlen > 0 then
  return redis.call('XADD', PREFIX .. 'canonical', 'MAXLEN', '~', maxlen, '*', unpack(fields))
end
return redis.call('XADD', PREFIX .. 'canonical', '*', unpack(fields))
