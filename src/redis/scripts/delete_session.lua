local user = redis.call('HGET', KEYS[1], 'user')
if not user then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. user, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1] .. user)
return 1
