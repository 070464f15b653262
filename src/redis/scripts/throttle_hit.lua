local now = tonumber(ARGV[1])
local w = redis.call('HMGET', KEYS[1], 'n', 'end')
local count, wend = tonumber(w[1]), tonumber(w[2])
if count ~= nil and wend ~= nil and count > 0 and wend > now then
  if count >= tonumber(ARGV[2]) then return {0, wend - now} end
  redis.call('HINCRBY', KEYS[1], 'n', 1)
else
  redis.call('HSET', KEYS[1], 'n', 1, 'end', ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
end
return {1, 0}
