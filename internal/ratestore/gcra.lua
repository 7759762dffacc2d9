-- edgeway shared rate limit: the generic cell rate algorithm (GCRA).
-- The key holds the theoretical arrival time (TAT) of the client's next
-- request, in microseconds since the epoch ARGV[3] (seconds), read from
-- Redis's clock. A request is allowed when spending one emission interval
-- keeps the TAT at most one window ahead of now; the window is the burst
-- (rpm requests per minute, so a window of one minute is a burst of rpm).
--
-- KEYS[1]  the bucket (prefix, function, client key)
-- ARGV[1]  emission interval in microseconds (60e6 / rpm; may be fractional)
-- ARGV[2]  window in microseconds (the burst: rpm intervals)
-- ARGV[3]  epoch in Unix seconds (keeps the numbers small enough for
--          sub-microsecond precision in a double)
-- Returns {1, 0} when allowed, {0, retry_after_us} when not.
local t = redis.call('TIME')
local now = (tonumber(t[1]) - tonumber(ARGV[3])) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local nexttat = tat + interval
local ahead = nexttat - now
-- Half an interval of slack absorbs the rounding of summed fractional
-- intervals: a full burst at one instant lands exactly on the window.
if ahead > window + interval / 2 then
  return {0, math.ceil(ahead - window)}
end
-- The key expires when the bucket would be full again: an absent key and a
-- full bucket are the same, so Redis keeps no idle clients.
redis.call('SET', KEYS[1], nexttat, 'PX', math.max(1, math.ceil(ahead / 1000)))
return {1, 0}
