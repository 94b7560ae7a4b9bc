-- Rate limiting and concurrency leases, each operation one atomic script (one round trip).
-- Time is Redis's (TIME), in microseconds, so clients' clocks never matter. Sections are split
-- on "--@ name" lines by foundry/ratelimit.py; each one is registered as its own script.

--@ gcra
-- KEYS: one or more keys, each holding its theoretical arrival time (TAT) and the interval it was
-- reached at ("tat|interval"); ARGV: interval (µs per unit), burst and cost of each key in turn.
-- All or nothing: the keys are spent only when every one admits its cost. Returns {allowed,
-- remaining, reset_after µs, retry_after µs} of each key, one after the other (a key that admits
-- says so even when another refused and nothing was spent). A TAT reached at another interval
-- (the limit changed since) is rescaled to this one: the debt is the same number of units, so a
-- raised limit never refuses what the lower one would admit, and a lowered one hands out no
-- fresh burst; it never runs further ahead than this burst allows.
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
-- Doubles near 1.7e15 µs round to 0.25 µs: a 1 µs slack keeps exact counts from rounding away.
local slack = 1
local result, spend, refused = {}, {}, false
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = interval * tonumber(ARGV[3 * i - 1])
  local stored = redis.call('GET', key)
  local tat, at_interval = now, nil
  if stored then
    local bar = string.find(stored, '|', 1, true)
    if bar then
      tat, at_interval = tonumber(string.sub(stored, 1, bar - 1)), tonumber(string.sub(stored, bar + 1))
    else
      tat = tonumber(stored)  -- written before the interval was kept with it
    end
    tat = tat or now
  end
  if tat < now then
    tat = now
  end
  if at_interval and at_interval > 0 and at_interval ~= interval then
    tat = now + (tat - now) * interval / at_interval
  end
  if at_interval and tat > now + tolerance then
    tat = now + tolerance  -- a lowered burst: never further ahead than this one allows
  end
  local new_tat = tat + interval * tonumber(ARGV[3 * i])
  local allow_at = new_tat - tolerance
  local n = #result
  if now + slack < allow_at then
    refused = true
    result[n + 1] = 0
    result[n + 2] = math.max(math.floor((now + slack - (tat - tolerance)) / interval), 0)
    result[n + 3] = math.ceil(tat - now)
    result[n + 4] = math.ceil(allow_at - now)
  else
    spend[#spend + 1] = {key, new_tat, interval}
    result[n + 1] = 1
    result[n + 2] = math.max(math.floor((now + slack - (new_tat - tolerance)) / interval), 0)
    result[n + 3] = math.ceil(new_tat - now)
    result[n + 4] = 0
  end
end
if not refused then
  for _, spent in ipairs(spend) do
    -- %.3f keeps every digit: tostring() would print 1.7e+15 and lose the microseconds.
    local value = string.format('%.3f|%.6f', spent[2], spent[3])
    redis.call('SET', spent[1], value, 'PX', math.max(math.ceil((spent[2] - now) / 1000), 1))
  end
end
return result

--@ lease_acquire
-- KEYS[1]: sorted set of lease ids scored by expiry (µs); ARGV: capacity, ttl µs, lease id.
-- Returns {acquired, µs until the earliest lease expires when refused}.
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local capacity = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= capacity then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.ceil(tonumber(first[2]) - now)}
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(math.ceil((tonumber(last[2]) - now) / 1000), 1))
return {1, 0}

--@ lease_renew
-- KEYS[1]: the leases' sorted set; ARGV: lease id, ttl µs. Returns 1, or 0 when the lease is gone.
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', expiry), ARGV[1])
if redis.call('PTTL', KEYS[1]) < math.ceil((expiry - now) / 1000) then
  redis.call('PEXPIRE', KEYS[1], math.max(math.ceil((expiry - now) / 1000), 1))
end
return 1
