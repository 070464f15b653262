local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(members) do
  local id = string.sub(m, 1, 22)
  redis.call('DEL', ARGV[3] .. id)
  redis.call('SREM', ARGV[4] .. string.sub(m, 23), id)
end
if #members > 0 then redis.call('ZREM', KEYS[1], unpack(members)) end
return #members
