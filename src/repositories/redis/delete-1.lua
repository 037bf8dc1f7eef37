--[[
  Deletes one execution record and its index entries.

  Input:
    KEYS[1] record hash   <prefix>x:<uuid>
    ARGV[1] key prefix of the shard
    ARGV[2] uuid

  Output:
    1  deleted
    0  there was no such record
]]
local key = KEYS[1]
local prefix, uuid = ARGV[1], ARGV[2]
local fields = redis.call('HMGET', key, 'status', 'saga', 'created')
if not fields[1] then return 0 end
local member = string.format('%015d', tonumber(fields[3])) .. ':' .. uuid
redis.call('ZREM', prefix .. 'st:' .. fields[1], member)
redis.call('ZREM', prefix .. 'saga:' .. fields[2], member)
redis.call('ZREM', prefix .. 'all', member)
redis.call('ZREM', prefix .. 'exp', uuid)
redis.call('DEL', key)
return 1
