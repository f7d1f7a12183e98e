-- Apply one batch of a user's changes atomically (KEYS share the user's hash tag).
-- KEYS: features, history, excluded, events, controls, meta, experiment
-- ARGV: version, first_new_event_id, ttl, history_cap, excluded_cap, events_cap,
--       owed_trigger, owed_due,
--       n_controls (-1: leave the controls alone), field, value, ...,
--       n_fields, field, value, ..., history_mode, n_history, json, ...,
--       n_excluded, score, member, ..., n_events, score, member, ...,
--       n_arm (0: leave the experiment arm alone), 'experiment', name, 'variant', name,
--       'first_ms', ms, field, value, ... (n_arm pairs: the arm's values as of this write)
-- history_mode: 'push' (entries are newer than the stored ones, oldest first) or 'replace'
-- (the whole history, oldest first: a late event was inserted in event-time order).
-- Returns {status, version}:
--   1: applied, version is the new one;
--   0: already applied (a retried write whose reply was lost finds its first event);
--  -1: conflict, nothing written: the stored version is not the one the state was loaded
--      at (another worker wrote the user since: a partition moved); reload and re-apply.
local version = tonumber(redis.call('HGET', KEYS[6], 'version') or '0')
if ARGV[2] ~= '' and redis.call('ZSCORE', KEYS[4], ARGV[2]) then
  return {0, version}
end
if version ~= tonumber(ARGV[1]) then
  return {-1, version}
end
local ttl = tonumber(ARGV[3])
local caps = {tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])}
local i = 9
local n = tonumber(ARGV[i]); i = i + 1
if n >= 0 then
  redis.call('DEL', KEYS[5])
  if n > 0 then
    redis.call('HSET', KEYS[5], unpack(ARGV, i, i + 2 * n - 1)); i = i + 2 * n
  end
end
n = tonumber(ARGV[i]); i = i + 1
if n > 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, i, i + 2 * n - 1)); i = i + 2 * n
end
redis.call('EXPIRE', KEYS[1], ttl)
local mode = ARGV[i]; i = i + 1
n = tonumber(ARGV[i]); i = i + 1
if mode == 'replace' then
  redis.call('DEL', KEYS[2])
end
if n > 0 then
  redis.call('LPUSH', KEYS[2], unpack(ARGV, i, i + n - 1)); i = i + n
  redis.call('LTRIM', KEYS[2], 0, caps[1] - 1)
  redis.call('EXPIRE', KEYS[2], ttl)
end
for k = 3, 4 do
  n = tonumber(ARGV[i]); i = i + 1
  if n > 0 then
    redis.call('ZADD', KEYS[k], unpack(ARGV, i, i + 2 * n - 1)); i = i + 2 * n
    redis.call('ZREMRANGEBYRANK', KEYS[k], 0, -(caps[k - 1] + 1))
    redis.call('EXPIRE', KEYS[k], ttl)
  end
end
-- the experiment arm's values: a hash of another arm (the declaration changed) starts over;
-- the first exposure stays the one the first list stored
n = tonumber(ARGV[i]); i = i + 1
if n > 0 then
  if redis.call('HGET', KEYS[7], 'experiment') ~= ARGV[i + 1]
      or redis.call('HGET', KEYS[7], 'variant') ~= ARGV[i + 3] then
    redis.call('DEL', KEYS[7])
  end
  redis.call('HSETNX', KEYS[7], 'first_ms', ARGV[i + 5])
  redis.call('HSET', KEYS[7], unpack(ARGV, i, i + 3))
  if n > 3 then
    redis.call('HSET', KEYS[7], unpack(ARGV, i + 6, i + 2 * n - 1))
  end
  i = i + 2 * n
end
-- controls and the experiment arm live as long as the user is active
for _, k in ipairs({5, 7}) do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    redis.call('EXPIRE', KEYS[k], ttl)
  end
end
version = version + 1
redis.call('HSET', KEYS[6], 'version', version)
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[6], 'owed', ARGV[7], 'owed_due', ARGV[8])
end
redis.call('EXPIRE', KEYS[6], ttl)
return {1, version}
