-- Index a batch's stored lists in one partition's holders sets (one call per partition).
-- KEYS: holders sets of one partition (recloop:p:{P}:holders:<item_id>; one hash slot).
-- ARGV: now_ms, expire_seconds, then per key in KEYS order:
--       n_added, user_id, ..., n_dropped, user_id, ...
-- Added users join with score now_ms, dropped ones leave; a key that gained a member
-- expires expire_seconds from now. Idempotent: sending it again changes nothing.
local now = ARGV[1]
local ttl = ARGV[2]
local i = 3
for k = 1, #KEYS do
  local n = tonumber(ARGV[i]); i = i + 1
  if n > 0 then
    local args = {}
    for j = 0, n - 1 do
      args[2 * j + 1] = now
      args[2 * j + 2] = ARGV[i + j]
    end
    redis.call('ZADD', KEYS[k], unpack(args))
    redis.call('EXPIRE', KEYS[k], ttl)
    i = i + n
  end
  n = tonumber(ARGV[i]); i = i + 1
  if n > 0 then
    redis.call('ZREM', KEYS[k], unpack(ARGV, i, i + n - 1))
    i = i + n
  end
end
return #KEYS
