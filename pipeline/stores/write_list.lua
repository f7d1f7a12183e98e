-- Store a user's list and settle the owed refresh it reflects (KEYS share the user's tag).
-- KEYS: recs, meta, experiment.
-- ARGV: document, ttl seconds, trigger ('' for none), rescue ('1' or '0'),
--       experiment ('' when the list is no experiment exposure), variant, shown (JSON item
--       ids), generated ms, the list's item ids (JSON array)
-- Returns {status, first exposure ms (0 without an exposure), dropped, added}; dropped: the
-- item ids of the list replaced that the new one no longer holds, added: the new list's
-- items the replaced one did not hold (JSON arrays; the caller updates the holders index
-- with them). Status 1: written; 0: a
-- rescue whose refresh is no longer owed (the owner wrote a list since, or a newer event
-- owes another one): nothing written; -1: the user is gone (forgotten, or expired): nothing
-- written, so a list built before a forget never recreates the user.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {-1, 0, '[]', '[]'}
end
local owed = redis.call('HGET', KEYS[2], 'owed')
if ARGV[4] == '1' and owed ~= ARGV[3] then
  return {0, 0, '[]', '[]'}
end
local dropped, added, held, new = {}, {}, {}, cjson.decode(ARGV[9])
local old = redis.call('GET', KEYS[1])
if old then
  local ok, doc = pcall(cjson.decode, old)
  if ok and type(doc) == 'table' and type(doc['items']) == 'table' then
    for _, entry in ipairs(doc['items']) do
      local id = type(entry) == 'table' and entry['item_id'] or nil
      if type(id) == 'string' then held[id] = true end
    end
  end
end
local kept = {}
for _, id in ipairs(new) do
  kept[id] = true
  if not held[id] then table.insert(added, id) end
end
for id, _ in pairs(held) do
  if not kept[id] then table.insert(dropped, id) end
end
local gone = #dropped > 0 and cjson.encode(dropped) or '[]'
local fresh = #added > 0 and cjson.encode(added) or '[]'
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if ARGV[3] ~= '' and owed == ARGV[3] then
  redis.call('HDEL', KEYS[2], 'owed', 'owed_due')
end
if ARGV[5] == '' then
  return {1, 0, gone, fresh}
end
-- an experiment exposure: the latest list shown, the first exposure (kept), the list count
if redis.call('HGET', KEYS[3], 'experiment') ~= ARGV[5]
    or redis.call('HGET', KEYS[3], 'variant') ~= ARGV[6] then
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], 'experiment', ARGV[5], 'variant', ARGV[6])
end
redis.call('HSETNX', KEYS[3], 'first_ms', ARGV[8])
redis.call('HSET', KEYS[3], 'shown', ARGV[7], 'shown_ms', ARGV[8])
redis.call('HINCRBY', KEYS[3], 'lists', 1)
redis.call('EXPIRE', KEYS[3], ARGV[2])
return {1, tonumber(redis.call('HGET', KEYS[3], 'first_ms')), gone, fresh}
