local w = redis.call('HMGET', KEYS[1], 'n', 'end')
local count, wend = tonumber(w[1]), tonumber(w[2])
if count == nil or wend == nil or count <= 0 or wend <= tonumber(ARGV[1]) then return 0 end
if count == 1 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return 1
