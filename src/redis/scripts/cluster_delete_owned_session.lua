if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 0 end
if ARGV[2] == 'interactive' and redis.call('HEXISTS', KEYS[1], 'name') == 1 then return -1 end
return redis.call('DEL', KEYS[1])
