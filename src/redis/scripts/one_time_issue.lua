if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local now = tonumber(ARGV[4])
local live = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local key = ARGV[6] .. m
  local expires = redis.call('HGET', key, 'expires')
  if expires and tonumber(expires) > now then
    table.insert(live, m)
  else
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[2], m)
  end
end
local retired = 0
for i = 1, #live - tonumber(ARGV[5]) do
  redis.call('DEL', ARGV[6] .. live[i])
  redis.call('ZREM', KEYS[2], live[i])
  retired = retired + 1
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 or now_ms + ttl < tonumber(ARGV[2]) then
  redis.call('PEXPIREAT', KEYS[2], ARGV[2])
end
return retired
