local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, id in ipairs(ids) do
  local fields = redis.call('HGETALL', ARGV[1] .. id)
  if #fields == 0 then
    redis.call('SREM', KEYS[1], id)
  else
    fields[#fields + 1] = 'id'
    fields[#fields + 1] = id
    out[#out + 1] = fields
  end
end
return out
