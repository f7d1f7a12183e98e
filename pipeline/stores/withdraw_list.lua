-- Take unavailable items out of a user's stored list, in place (KEYS share the user's tag).
-- KEYS: recs, meta.
-- ARGV: now ms, the unavailable item ids (JSON array).
-- Returns the new document, or false when there is nothing to change (no list, no such
-- item in it, a document that is not a list, or the user is gone: never recreated).
-- generated_ts moves to now (readers keep the newest per user); the key keeps its TTL.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return false
end
local raw = redis.call('GET', KEYS[1])
if not raw then
  return false
end
local ok, doc = pcall(cjson.decode, raw)
if not ok or type(doc) ~= 'table' or type(doc['items']) ~= 'table' then
  return false
end
local gone = {}
for _, id in ipairs(cjson.decode(ARGV[2])) do
  gone[id] = true
end
local kept = {}
for _, entry in ipairs(doc['items']) do
  if not (type(entry) == 'table' and gone[entry['item_id']]) then
    table.insert(kept, entry)
  end
end
if #kept == #doc['items'] then
  return false
end
local now = tonumber(ARGV[1])
if now > (tonumber(doc['generated_ts']) or 0) then
  doc['generated_ts'] = now
end
local out
if #kept == 0 then
  -- cjson writes an empty table as {}: mark the place and write the empty array there
  doc['items'] = '__recloop_empty_list__'
  out = string.gsub(cjson.encode(doc), '"items":"__recloop_empty_list__"', '"items":[]', 1)
else
  doc['items'] = kept
  out = cjson.encode(doc)
end
redis.call('SET', KEYS[1], out, 'KEEPTTL')
return out
