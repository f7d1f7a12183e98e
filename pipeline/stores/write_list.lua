-- Store a user's list and settle the owed refresh it reflects (KEYS share the user's tag).
-- KEYS: recs, meta. ARGV: document, ttl seconds, trigger ('' for none), rescue ('1' or '0')
-- Returns 1: written; 0: a rescue whose refresh is no longer owed (the owner wrote a list
-- since, or a newer event owes another one): nothing written; -1: the user is gone
-- (forgotten, or expired): nothing written, so a list built before a forget never
-- recreates the user.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return -1
end
local owed = redis.call('HGET', KEYS[2], 'owed')
if ARGV[4] == '1' and owed ~= ARGV[3] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if ARGV[3] ~= '' and owed == ARGV[3] then
  redis.call('HDEL', KEYS[2], 'owed', 'owed_due')
end
return 1
