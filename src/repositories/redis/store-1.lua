--[[
  Stores one execution record with compare-and-set on its version, and keeps the shard's
  indexes in step, in one atomic call (the hot path: one round trip per stored transition).

  Every key lives under the shard's hash tag (prefix = "<keyPrefix>{<shard>}:"), so the script
  runs unchanged on Redis Cluster.

  Input:
    KEYS[1] record hash           <prefix>x:<uuid>
    ARGV[1] key prefix of the shard
    ARGV[2] uuid
    ARGV[3] expected version ("" = must not exist)
    ARGV[4] new version
    ARGV[5] status
    ARGV[6] saga name
    ARGV[7] definition hash
    ARGV[8] createdAt (ms)
    ARGV[9] updatedAt (ms)
    ARGV[10] deadline (ms, "" = none)
    ARGV[11] body: the record as JSON
    ARGV[12] expire at (ms, "" = keep): set for finished/errored when a retention is configured
    ARGV[13] nonce: a random id of this call (the same when a client re-sends it)

  Index members are "<createdAt, 15 digits>:<uuid>" with score 0, so that BYLEX ranges page
  exactly in (createdAt, uuid) order:
    <prefix>all, <prefix>st:<status>, <prefix>saga:<name>; <prefix>exp (score = expire at).

  Output:
    1                 stored (or already stored: the same version with the same body)
    {-1, actual}      version conflict; actual is the stored version or "" if none

  Idempotent: a client that re-sends a call after a reconnect (ioredis does, for commands that
  got no reply) finds its own write (same version, same nonce) and gets 1, not a conflict with
  itself; any other call for the same version still gets a conflict.
]]
local key = KEYS[1]
local prefix, uuid = ARGV[1], ARGV[2]
local current = redis.call('HGET', key, 'v')
if current == ARGV[4] and redis.call('HGET', key, 'w') == ARGV[13] then return 1 end
if ARGV[3] == '' then
  if current then return {-1, current} end
elseif current ~= ARGV[3] then
  return {-1, current or ''}
end

local member = string.format('%015d', tonumber(ARGV[8])) .. ':' .. uuid
local old = redis.call('HGET', key, 'status')
redis.call('HSET', key, 'v', ARGV[4], 'status', ARGV[5], 'saga', ARGV[6], 'hash', ARGV[7],
  'created', ARGV[8], 'updated', ARGV[9], 'deadline', ARGV[10], 'body', ARGV[11], 'w', ARGV[13])

if old ~= ARGV[5] then
  if old then redis.call('ZREM', prefix .. 'st:' .. old, member) end
  redis.call('ZADD', prefix .. 'st:' .. ARGV[5], 0, member)
end
if not current then
  redis.call('ZADD', prefix .. 'all', 0, member)
  redis.call('ZADD', prefix .. 'saga:' .. ARGV[6], 0, member)
end
if ARGV[12] ~= '' then
  redis.call('ZADD', prefix .. 'exp', tonumber(ARGV[12]), uuid)
else
  redis.call('ZREM', prefix .. 'exp', uuid)
end
return 1
