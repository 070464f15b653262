local user = redis.call('HGET', KEYS[1], 'user')
if not user then return false end
redis.call('DEL', KEYS[1])
return user
