local ids = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, id in ipairs(ids) do
  n = n + redis.call('DEL', ARGV[1] .. id)
  redis.call('ZREM', KEYS[2], id .. ARGV[2])
end
redis.call('DEL', KEYS[1])
return n
