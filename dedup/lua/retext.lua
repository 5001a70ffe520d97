-- Replace an article's stored text (dedup/record.py text forms) if it is still the one the engine
-- read: a copy's text becomes a delta against its canonical's, or a delta is re-inflated before its
-- base is forgotten. Anything else written meanwhile wins.
-- ARGV: prefix, id (16 hex), expected form, expected data length, new form, new data
local key = article_key(unhex(ARGV[2]))
local raw = redis.call('GET', key)
if not raw then return 0 end
local form, len = struct.unpack('<BI4', raw, text_pos(raw))
if form ~= tonumber(ARGV[3]) or len ~= tonumber(ARGV[4]) then return 0 end
redis.call('SET', key, with_text(raw, tonumber(ARGV[5]), ARGV[6]))
return 1
