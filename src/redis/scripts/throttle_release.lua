local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local w = redis.call('HMGET', KEYS[i], 'n', 'end')
  local count, wend = tonumber(w[1]), tonumber(w[2])
  if count ~= nil then
    if count <= 1 or wend == nil or wend <= now then
      redis.call('DEL', KEYS[i])
    else
      redis.call('HINCRBY', KEYS[i], 'n', -1)
    end
  end
end
return 1
