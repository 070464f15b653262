local ids = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  if id ~= ARGV[3] and redis.call('HEXISTS', key, 'name') == 0 then
    n = n + redis.call('DEL', key)
    redis.call('ZREM', KEYS[2], id .. ARGV[2])
    redis.call('SREM', KEYS[1], id)
  end
end
return n
