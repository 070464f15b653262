local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local trusted = tonumber(redis.call('GET', KEYS[1]) or '0') > now
local applies, live = {}, {}
local refused, longest = 0, 0
for i = 1, n do
  local a = 2 + (i - 1) * 4
  local kind = tonumber(ARGV[a + 1])
  applies[i] = (kind ~= 3 or not trusted) and (kind ~= 5 or trusted)
  if applies[i] then
    local w = redis.call('HMGET', KEYS[i + 1], 'n', 'end')
    local count, wend = tonumber(w[1]), tonumber(w[2])
    live[i] = count ~= nil and wend ~= nil and count > 0 and wend > now
    if live[i] and count >= tonumber(ARGV[a + 2]) and wend - now > longest then
      refused, longest = kind, wend - now
    end
  end
end
if refused ~= 0 then return {0, refused, longest} end
for i = 1, n do
  local a = 2 + (i - 1) * 4
  if applies[i] then
    if live[i] then
      redis.call('HINCRBY', KEYS[i + 1], 'n', 1)
    else
      redis.call('HSET', KEYS[i + 1], 'n', 1, 'end', ARGV[a + 3])
      redis.call('PEXPIREAT', KEYS[i + 1], ARGV[a + 4])
    end
  end
end
if trusted then return {1, 0, 0} end
return {1, 1, 0}
