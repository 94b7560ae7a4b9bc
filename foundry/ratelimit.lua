-- Rate limiting and concurrency leases, each operation one atomic script (one round trip).
-- Time is Redis's (TIME), in microseconds, so clients' clocks never matter. Sections are split
-- on "--@ name" lines by foundry/ratelimit.py; each one is registered as its own script.

--@ gcra
-- KEYS[1]: the key's theoretical arrival time (TAT); ARGV: interval (µs per request), burst, cost.
-- Returns {allowed, remaining, reset_after µs, retry_after µs}.
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tolerance = interval * burst
-- Doubles near 1.7e15 µs round to 0.25 µs: a 1 µs slack keeps exact counts from rounding away.
local slack = 1

local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if now + slack < allow_at then
  local remaining = math.floor((now + slack - (tat - tolerance)) / interval)
  return {0, math.max(remaining, 0), math.ceil(tat - now), math.ceil(allow_at - now)}
end
-- %.3f keeps every digit: tostring() would print 1.7e+15 and lose the microseconds.
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(math.ceil((new_tat - now) / 1000), 1))
local remaining = math.floor((now + slack - (new_tat - tolerance)) / interval)
return {1, math.max(remaining, 0), math.ceil(new_tat - now), 0}

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
