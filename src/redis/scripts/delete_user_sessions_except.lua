local ids = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, id in ipairs(ids) do
  if id ~= ARGV[3] then
    n = n + redis.call('DEL', ARGV[1] .. id)
    redis.call('ZREM', KEYS[2], id .. ARGV[2])
    redis.call('SREM', KEYS[1], id)
  end
end
return n
