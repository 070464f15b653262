local f = redis.call('HMGET', KEYS[1], 'purpose', 'hash', 'expires', 'user')
if not f[1] or f[1] ~= ARGV[1] or f[2] ~= ARGV[2] or tonumber(f[3]) <= tonumber(ARGV[3]) then
  return false
end
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[4] .. f[1] .. ':' .. f[4], ARGV[5])
return all
