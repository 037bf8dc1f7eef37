--[[
  Deletes the finished and errored executions of one shard whose retention has run out, with
  their index entries; at most ARGV[3] per call.

  Input:
    KEYS[1] the shard's expiry index   <prefix>exp (score = expire at, member = uuid)
    ARGV[1] key prefix of the shard
    ARGV[2] now (ms)
    ARGV[3] batch size

  Output:
    the number of executions deleted
]]
local prefix = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, uuid in ipairs(due) do
  local key = prefix .. 'x:' .. uuid
  local fields = redis.call('HMGET', key, 'status', 'saga', 'created')
  if fields[1] then
    local member = string.format('%015d', tonumber(fields[3])) .. ':' .. uuid
    redis.call('ZREM', prefix .. 'st:' .. fields[1], member)
    redis.call('ZREM', prefix .. 'saga:' .. fields[2], member)
    redis.call('ZREM', prefix .. 'all', member)
    redis.call('DEL', key)
  end
  redis.call('ZREM', KEYS[1], uuid)
end
return #due
