-- Mark a quiet user dormant, unless they were written after the cutoff (KEYS: one user).
-- KEYS: features, meta. ARGV: cutoff (ms), dimension, dimension, ...
-- Returns {1, dimension, value, ...} (the segments the user leaves), {0} (written since the
-- cutoff: still active) or {-1} (no state left: expired or forgotten).
-- The features hash keeps only segment_lifecycle = dormant, and the version moves on, so
-- the worker owning the user reloads them before its next write and rejoins the segments.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
if tonumber(redis.call('HGET', KEYS[1], 'updated_ts') or '0') > tonumber(ARGV[1]) then
  return {0}
end
local left = {1}
for i = 2, #ARGV do
  local field = 'segment_' .. ARGV[i]
  local value = redis.call('HGET', KEYS[1], field)
  if value then
    table.insert(left, ARGV[i])
    table.insert(left, value)
    redis.call('HDEL', KEYS[1], field)
  end
end
redis.call('HSET', KEYS[1], 'segment_lifecycle', 'dormant')
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'version', 1)
end
return left
