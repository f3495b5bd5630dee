-- Every change to a job: check its state, update the record (and chunk hash), append the
-- event, atomically. Loaded by services/jobs/changes.py; see Change for the arguments.
-- KEYS[1] record hash, KEYS[2] event stream, KEYS[3] chunk hash.
-- ARGV[1] the event payload ("" = change the record only), ARGV[2] a JSON object:
--   allow:     states in which the change applies (otherwise nothing happens)
--   unplanned: apply only while the job has no chunk plan yet
--   set:       record fields to set
--   progress:  a fraction that must not be below the recorded one (else nothing happens)
--   watermark: [field, start, end]: drop a segment that starts before the chunk hash field's
--              value, so a re-run chunk never repeats segments already sent
--   plan:      [[offset, duration], ...]: the chunks, written to the chunk hash
--   chunk:     {index, done, finished, ms}: a chunk's audio seconds done (never backwards) or
--              its end; the job's done seconds, fraction and chunks_done follow, and the script
--              appends the progress event itself (ARGV[1] unused)
--   ttl:       seconds to keep the record, stream and chunk hash from now
-- ARGV[3..] field, value pairs of binary fields to set: "r:<field>" in the record (a transcript,
-- an error), "c:<field>" in the chunk hash (a chunk's transcript).
-- Returns {sequence of the appended event (0 if none), state after the call, flags}: flag 1 = the
-- change passed its checks and was applied, flag 2 = every chunk of the job has finished (chunk
-- changes only); {-1, "", 0} if the job does not exist.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {-1, '', 0} end
local change = cjson.decode(ARGV[2])
local allowed = false
for _, s in ipairs(change.allow) do if s == state then allowed = true end end
if not allowed then return {0, state, 0} end
if change.unplanned and redis.call('HGET', KEYS[1], 'planned') == '1' then
  return {0, state, 0}
end
if change.progress then
  local current = tonumber(redis.call('HGET', KEYS[1], 'fraction') or '0')
  if change.progress < current then return {0, state, 0} end
  redis.call('HSET', KEYS[1], 'fraction', tostring(change.progress))
end
if change.watermark then
  local mark = tonumber(redis.call('HGET', KEYS[3], change.watermark[1]) or '-1')
  if change.watermark[2] < mark - 0.01 then return {0, state, 0} end
  redis.call('HSET', KEYS[3], change.watermark[1], tostring(change.watermark[3]))
end
local payload, field, complete = ARGV[1], 'e', 0
if change.chunk then
  local c = change.chunk
  local i = tostring(c.index)
  local length = tonumber(redis.call('HGET', KEYS[3], 'dur:' .. i))
  if not length then return {0, state, 0} end
  local planned = tonumber(redis.call('HGET', KEYS[1], 'chunks_total') or '0')
  local finished = tonumber(redis.call('HGET', KEYS[1], 'chunks_done') or '0')
  if redis.call('HEXISTS', KEYS[3], 'fin:' .. i) == 1 then
    if finished >= planned then complete = 2 end
    return {0, state, complete}
  end
  local before = tonumber(redis.call('HGET', KEYS[3], 'done:' .. i) or '0')
  local after = math.min(math.max(before, c.done), length)
  if c.finished then after = length end
  if after <= before and not c.finished then return {0, state, 0} end
  redis.call('HSET', KEYS[3], 'done:' .. i, tostring(after))
  local done = tonumber(redis.call('HINCRBYFLOAT', KEYS[1], 'done_s', tostring(after - before)))
  if c.finished then
    redis.call('HSET', KEYS[3], 'fin:' .. i, '1')
    finished = redis.call('HINCRBY', KEYS[1], 'chunks_done', 1)
    if finished >= planned then complete = 2 end
  end
  local total = tonumber(redis.call('HGET', KEYS[1], 'duration') or '0')
  local fraction = 1
  if total > 0 then fraction = math.min(1, done / total) end
  local current = tonumber(redis.call('HGET', KEYS[1], 'fraction') or '0')
  if fraction < current then fraction = current end
  redis.call('HSET', KEYS[1], 'fraction', tostring(fraction))
  payload, field = cjson.encode({ms = c.ms, d = done, t = total, f = fraction,
                                 cd = finished, ct = planned}), 'p'
end
if change.plan then
  for n, piece in ipairs(change.plan) do
    local i = tostring(n - 1)
    redis.call('HSET', KEYS[3], 'off:' .. i, tostring(piece[1]), 'dur:' .. i, tostring(piece[2]))
  end
end
for k, v in pairs(change.set or {}) do redis.call('HSET', KEYS[1], k, tostring(v)) end
for i = 3, #ARGV, 2 do
  local target = KEYS[1]
  if string.sub(ARGV[i], 1, 2) == 'c:' then target = KEYS[3] end
  redis.call('HSET', target, string.sub(ARGV[i], 3), ARGV[i + 1])
end
local seq = 0
if payload ~= '' then
  seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('XADD', KEYS[2], '0-' .. seq, field, payload)
end
if change.ttl then
  redis.call('EXPIRE', KEYS[1], change.ttl)
  redis.call('EXPIRE', KEYS[2], change.ttl)
  redis.call('EXPIRE', KEYS[3], change.ttl)
end
return {seq, redis.call('HGET', KEYS[1], 'state'), 1 + complete}
