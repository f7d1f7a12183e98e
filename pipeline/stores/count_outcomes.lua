-- Add experiment outcome counts exactly once, without a transaction (one arm, one partition).
-- KEYS: the arm's counter hash of one partition.
-- ARGV: guard field ("offset:<topic>:<partition>"), then entries in offset order:
--       source offset, n, counter, increment, ... (n counter/increment pairs)
-- An entry counts only if its offset is above the one the guard holds: the events of a
-- source partition are processed in offset order by one owner at a time, so everything at
-- or below the guard was counted already (by this worker, a crashed one or a zombie).
-- Returns the new guard.
local done = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local top = done
local i = 2
while i <= #ARGV do
  local offset = tonumber(ARGV[i])
  local n = tonumber(ARGV[i + 1])
  i = i + 2
  if offset > done then
    for k = 0, n - 1 do
      redis.call('HINCRBY', KEYS[1], ARGV[i + 2 * k], ARGV[i + 2 * k + 1])
    end
    if offset > top then
      top = offset
    end
  end
  i = i + 2 * n
end
if top > done then
  redis.call('HSET', KEYS[1], ARGV[1], top)
end
return top
