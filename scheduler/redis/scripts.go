package redis

import goredis "github.com/redis/go-redis/v9"

// The keys of one scheduler, in the order every script takes them. They
// share the hash tag {prefix}, so a Redis Cluster keeps them in one slot and
// a script may touch them all.
//
//	due      sorted set: id scored by its due time (Unix milliseconds, rounded up)
//	inflight sorted set: delivered id scored by its lease's end (Unix milliseconds, rounded up)
//	at       hash: id -> its scheduled time in Unix nanoseconds (a delivery's At)
//	token    hash: delivered id -> the token of its current delivery
//	seq      counter of deliveries, the tokens' second half
//	gen      the generation: a random value set by the first Claim (or
//	         peek) that finds it absent. Its vanishing says the entries were
//	         lost (a flush, a restart without persistence).
const (
	keyDue = iota
	keyInflight
	keyAt
	keyToken
	keySeq
	keyGen
	keyCount
)

var keySuffixes = [keyCount]string{"due", "inflight", "at", "token", "seq", "gen"}

// scheduleScript: ARGV channel, then id, due ms, at ns for each entry.
// Moves or inserts the entries, makes their outstanding deliveries stale,
// and publishes the earliest of their due times when it is earlier than
// every entry due before (or there was none), so that waiting consumers of
// every process re-arm. Returns 1 when it published. One call takes the
// Schedules of a whole batch (and ScheduleMany's ids): each of its
// commands takes every entry at once.
var scheduleScript = goredis.NewScript(`
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local scores, ids, ats = {}, {}, {}
local earliest
for i = 2, #ARGV, 3 do
  local id, due = ARGV[i], ARGV[i+1]
  scores[#scores+1] = due
  scores[#scores+1] = id
  ids[#ids+1] = id
  ats[#ats+1] = id
  ats[#ats+1] = ARGV[i+2]
  if not earliest or tonumber(due) < tonumber(earliest) then earliest = due end
end
redis.call('ZADD', KEYS[1], unpack(scores))
redis.call('ZREM', KEYS[2], unpack(ids))
redis.call('HSET', KEYS[3], unpack(ats))
redis.call('HDEL', KEYS[4], unpack(ids))
if #head == 0 or tonumber(earliest) < tonumber(head[2]) then
  redis.call('PUBLISH', ARGV[1], earliest)
  return 1
end
return 0
`)

// restoreScript: ARGV id, due ms, at ns, channel. As scheduleScript for
// one entry, but only when the entry is absent from both sets. Returns 1
// when it published, 0 when it inserted silently, -1 when the entry was
// there.
var restoreScript = goredis.NewScript(`
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return -1
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if #head == 0 or tonumber(ARGV[2]) < tonumber(head[2]) then
  redis.call('PUBLISH', ARGV[4], ARGV[2])
  return 1
end
return 0
`)

// cancelScript: ARGV id. Removes the entry, delivered or not.
var cancelScript = goredis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 0
`)

// ackLua removes each entry of ARGV[first], id, token, id, token... whose
// current delivery has that token.
const ackLua = `
for i = first, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[4], id) == ARGV[i+1] then
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
  end
end
`

// ackScript: ARGV id, token, id, token... The queued Acks of a batch.
var ackScript = goredis.NewScript(`local first = 1` + ackLua + `return 0`)

// releaseScript: ARGV channel, then id, token, due ms for each entry.
// Moves each entry whose current delivery has that token back to the due
// set at its due time (entries a handle held and did not hand out), and
// publishes the earliest, so that waiting consumers of every process
// claim them. Returns how many went back.
var releaseScript = goredis.NewScript(`
local n, earliest = 0
for i = 2, #ARGV, 3 do
  local id, due = ARGV[i], ARGV[i+2]
  if redis.call('HGET', KEYS[4], id) == ARGV[i+1] then
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('ZADD', KEYS[1], due, id)
    n = n + 1
    if not earliest or tonumber(due) < tonumber(earliest) then earliest = due end
  end
end
if earliest then redis.call('PUBLISH', ARGV[1], earliest) end
return n
`)

// genLua makes sure the generation exists, creating it as ARGV[1] (the
// caller's value: the caller then knows by the reply's gen that the
// entries were lost, and rebuilds them).
const genLua = `
local gen = redis.call('GET', KEYS[6])
if not gen then
  gen = ARGV[1]
  redis.call('SET', KEYS[6], gen)
end
`

// nextLua sets nxt to the earliest score of both sets, or -1.
const nextLua = `
local nxt = -1
for _, k in ipairs({KEYS[1], KEYS[2]}) do
  local h = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
  if #h > 0 and (nxt < 0 or tonumber(h[2]) < nxt) then nxt = tonumber(h[2]) end
end
`

// claimScript: ARGV new generation, now ms, lease end ms, limit, then the
// queued Acks as id, token pairs, applied first. Moves up to limit entries
// due at now (from due, and from inflight those whose lease ran out),
// earliest first, to inflight with a fresh token each. Returns
// {next, gen, id1, at1, token1, id2, ...}, next being the earliest score
// left (-1 for none), so the caller's waiter re-arms without another call,
// and gen the generation.
var claimScript = goredis.NewScript(genLua + `local first = 5` + ackLua + `
local now, limit = ARGV[2], tonumber(ARGV[4])
local d = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local f = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local out = {0, gen}
local i, j, n = 1, 1, 0
while n < limit and (i <= #d or j <= #f) do
  local id
  if j > #f or (i <= #d and tonumber(d[i+1]) <= tonumber(f[j+1])) then
    id = d[i]; i = i + 2
    redis.call('ZREM', KEYS[1], id)
  else
    id = f[j]; j = j + 2
  end
  local token = gen .. '.' .. redis.call('INCR', KEYS[5])
  redis.call('ZADD', KEYS[2], ARGV[3], id)
  redis.call('HSET', KEYS[4], id, token)
  out[#out+1] = id
  out[#out+1] = redis.call('HGET', KEYS[3], id) or '0'
  out[#out+1] = token
  n = n + 1
end
` + nextLua + `
out[1] = nxt
return out
`)

// peekScript: ARGV new generation. Returns {next, gen}: the waiter's
// periodic look, which also notices a lost generation while nobody claims.
var peekScript = goredis.NewScript(genLua + nextLua + `
return {nxt, gen}
`)
