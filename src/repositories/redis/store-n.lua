--[[
  Stores N execution records, each with its own compare-and-set on its version, and keeps the
  shards' indexes in step, in one atomic call: the group commit of the store() calls made in one
  tick. Records are applied in the order given, so two stores of one execution in a call behave
  as if made one after the other.

  Every key lives under its shard's hash tag (prefix = "<keyPrefix>{<shard>}:"). On Redis Cluster
  a call carries the records of one shard only; on a single Redis it may carry several shards.

  Input:
    KEYS[1..n]   the record hash of each record            <prefix>x:<uuid>
    KEYS[n+1..]  on Redis Cluster, every index key the call may touch, declared for Redis and not
                 read by position: for each shard of the call <prefix>all, <prefix>exp,
                 <prefix>st:<status> for every status, and <prefix>saga:<name> for each saga name
                 of its records (a single Redis needs no declaration: the script builds them)
    ARGV[1]  n, the number of records
    ARGV[2]  nonce: a random id of this call (the same when a client re-sends it)
    ARGV[3]  the final statuses, separated by spaces ("finished errored")
    then 12 per record i, at ARGV[3 + 12 * (i - 1) + k]:
      k=1  key prefix of the record's shard
      k=2  uuid
      k=3  expected version ("" = must not exist)
      k=4  new version
      k=5  status
      k=6  saga name            (written on create only: it cannot change)
      k=7  definition hash      (written on create only)
      k=8  createdAt (ms)       (written on create only)
      k=9  updatedAt (ms)
      k=10 deadline (ms, "" = none)
      k=11 body: the record as JSON
      k=12 expire at (ms, "" = none): set for a final status when a retention is configured

  Index members are "<createdAt, 15 digits>:<uuid>" with score 0, so that BYLEX ranges page
  exactly in (createdAt, uuid) order: <prefix>all, <prefix>st:<status>, <prefix>saga:<name>.
  <prefix>exp has score = expire at, member = uuid.
  Index upkeep is only what changed: `all` and `saga:` on create, `st:` when the status changes,
  `exp` when entering or moving a retention, or leaving a final status.

  Output: an array of n integers, one per record, in order:
    0    stored (or already stored by this very call, re-sent after a reconnect)
    -1   version conflict: no record is stored
    k>0  version conflict: the stored version is k

  Idempotent: each record writes the nonce of its call and its position ("<nonce>:<i>") in field
  w. A client that re-sends the call after a reconnect (ioredis does, for commands that got no
  reply) finds its own write (same version, same w) and gets 0, not a conflict with itself; any
  other store of the same version, even a second one in the same call, still conflicts.
]]
local n = tonumber(ARGV[1])
local nonce = ARGV[2]
local final = {}
for status in string.gmatch(ARGV[3], '%S+') do final[status] = true end

local out = {}
for i = 1, n do
  local key = KEYS[i]
  local o = 3 + (i - 1) * 12
  local prefix, uuid, expected, version, status = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5]
  local w = nonce .. ':' .. i
  local cur = redis.call('HMGET', key, 'v', 'w', 'status', 'created')
  local current, old = cur[1], cur[3]
  if current == version and cur[2] == w then
    out[i] = 0
  elseif (current or '') ~= expected then
    out[i] = current and tonumber(current) or -1
  else
    if not current then
      local member = string.format('%015d', tonumber(ARGV[o + 8])) .. ':' .. uuid
      redis.call('HSET', key, 'v', version, 'status', status, 'saga', ARGV[o + 6], 'hash', ARGV[o + 7],
        'created', ARGV[o + 8], 'updated', ARGV[o + 9], 'deadline', ARGV[o + 10], 'body', ARGV[o + 11], 'w', w)
      redis.call('ZADD', prefix .. 'all', 0, member)
      redis.call('ZADD', prefix .. 'saga:' .. ARGV[o + 6], 0, member)
      redis.call('ZADD', prefix .. 'st:' .. status, 0, member)
    elseif old ~= status then
      local member = string.format('%015d', tonumber(cur[4])) .. ':' .. uuid
      redis.call('HSET', key, 'v', version, 'status', status, 'updated', ARGV[o + 9], 'deadline', ARGV[o + 10], 'body', ARGV[o + 11], 'w', w)
      if old then redis.call('ZREM', prefix .. 'st:' .. old, member) end
      redis.call('ZADD', prefix .. 'st:' .. status, 0, member)
    else
      redis.call('HSET', key, 'v', version, 'updated', ARGV[o + 9], 'deadline', ARGV[o + 10], 'body', ARGV[o + 11], 'w', w)
    end
    if ARGV[o + 12] ~= '' then
      redis.call('ZADD', prefix .. 'exp', tonumber(ARGV[o + 12]), uuid)
    elseif old and final[old] then
      redis.call('ZREM', prefix .. 'exp', uuid)
    end
    out[i] = 0
  end
end
return out
