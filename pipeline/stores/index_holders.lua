-- Index a batch's stored lists in one partition's holders sets (one call per partition).
-- KEYS: holders sets of one partition (recloop:p:{P}:holders:<item_id>; one hash slot).
-- ARGV: now_ms, expire_seconds, then per key in KEYS order:
--       n_added, user_id, ..., n_dropped, user_id, ...
-- Added users join with score now_ms, dropped ones leave; a key that gained a member
-- expires expire_seconds from now. Idempotent: sending it again changes nothing.
-- Members go to ZADD / ZREM in chunks (Lua's unpack is limited to a few thousand values).
local CHUNK = 500
local now = ARGV[1]
local ttl = ARGV[2]
local i = 3
for k = 1, #KEYS do
  local n = tonumber(ARGV[i]); i = i + 1
  if n > 0 then
    for from = 0, n - 1, CHUNK do
      local args = {}
      for j = from, math.min(n, from + CHUNK) - 1 do
        args[#args + 1] = now
        args[#args + 1] = ARGV[i + j]
      end
      redis.call('ZADD', KEYS[k], unpack(args))
    end
    redis.call('EXPIRE', KEYS[k], ttl)
    i = i + n
  end
  n = tonumber(ARGV[i]); i = i + 1
  for from = 0, n - 1, CHUNK do
    redis.call('ZREM', KEYS[k], unpack(ARGV, i + from, i + math.min(n, from + CHUNK) - 1))
  end
  i = i + n
end
return #KEYS
