redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if #KEYS < 5 then return 0 end
local now = tonumber(ARGV[1])
local w = redis.call('HMGET', KEYS[4], 'n', 'end')
local count, wend = tonumber(w[1]), tonumber(w[2])
if count ~= nil then
  if count <= 1 or wend == nil or wend <= now then
    redis.call('DEL', KEYS[4])
  else
    redis.call('HINCRBY', KEYS[4], 'n', -1)
  end
end
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[5], ARGV[2])
  redis.call('PEXPIREAT', KEYS[5], ARGV[3])
end
return 1
