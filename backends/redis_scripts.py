"""The Lua scripts the `redis` backend runs: each one atomic on the server, so an append, a
deletion or a lease renewal is all or nothing (see `photon_backends.redis` for the key layout)."""

from __future__ import annotations

PAGE = 1000  # ids per HMGET inside a script (Lua's unpack has a stack limit)

# The read indexes of one record: the keys of its category, its event type and each of its tags
# (see the backend's layout). Every key shares the store's hash tag, so the scripts that compute
# them stay in the one slot of the keys they are given. `prefix` is ``{P}:``.
INDEX_KEYS = """
local function index_keys(prefix, record)
  local header = cjson.decode(string.sub(record, 1, string.find(record, '\\n', 1, true) - 1))
  local stream = header[2]
  local dash = string.find(stream, '-', 1, true)
  local category = stream
  if dash then category = string.sub(stream, 1, dash - 1) end
  local keys = {prefix .. 'c:' .. category, prefix .. 't:' .. header[5]}
  if header[7] then
    for _, tag in ipairs(header[7]) do keys[#keys + 1] = prefix .. 'g:' .. tag end
  end
  return keys, header
end
"""

# KEYS: events, all, ids, versions, meta, writer, then each batch stream's key, then trimmed.
# ARGV: lease token, lease ms, store id, number of streams, the streams' names (in KEYS order), their
#       categories (same order), then 7 values per event: order-id, stream index (1-based), version,
#       id, record, event type, tags (a JSON list, or '' for none); then the key prefix ``{P}:`` of
#       the read indexes. The caller names each event's index keys' parts, so the script decodes no
#       record and the category rule lives only in the core.
APPEND = """
local token, lease = ARGV[1], ARGV[2]
local store = redis.call('HGET', KEYS[5], 'store')
if store ~= ARGV[3] then
  return redis.error_reply('PHOTON-LOST ' .. tostring(store))
end
local holder = redis.call('GET', KEYS[6])
if holder ~= token then
  if holder then return redis.error_reply('PHOTON-LOCKED ' .. holder) end
  -- The lease lapsed (the renewer could not reach the server) and nobody took it: take it back.
  redis.call('SET', KEYS[6], token, 'PX', lease)
end
local nstreams = tonumber(ARGV[4])
local first = 5 + 2 * nstreams
local prefix = ARGV[#ARGV]
local events_end = #ARGV - 1
local last = tonumber(redis.call('HGET', KEYS[5], 'last') or '0')
local versions, seen, skipped, ids = {}, {}, {}, {}
for i = first, events_end, 7 do
  local order, s, version, id = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
  if order <= last then
    return redis.error_reply('PHOTON-INTEGRITY order-id ' .. ARGV[i] .. ' is not after ' .. last)
  end
  last = order
  if seen[id] then
    return redis.error_reply('PHOTON-INTEGRITY event id ' .. id .. ' is already stored')
  end
  seen[id] = true
  ids[#ids + 1] = id
  local stream = ARGV[4 + s]
  local current = versions[s]
  if current == nil then current = tonumber(redis.call('HGET', KEYS[4], stream) or '0') end
  if version ~= current + 1 then
    -- Only a stream with no events yet may start past its next version: a restore of a stream
    -- whose first events a scavenge removed. `trimmed` then counts the versions before it.
    if version <= current or redis.call('ZCARD', KEYS[6 + s]) > 0 or versions[s] ~= nil then
      return redis.error_reply('PHOTON-INTEGRITY stream ' .. stream .. ' version ' .. version ..
        ' does not follow ' .. current)
    end
    skipped[s] = version - 1 - current
  end
  versions[s] = version
end
for i = 1, #ids, PAGE do
  local stored = redis.call('HMGET', KEYS[3], unpack(ids, i, math.min(i + PAGE - 1, #ids)))
  for j, order in ipairs(stored) do
    if order then
      return redis.error_reply('PHOTON-INTEGRITY event id ' .. ids[i + j - 1] .. ' is already stored')
    end
  end
end
-- One command per key for the whole batch rather than one per event: a script's writes reach the
-- AOF (and replicas) as the commands it ran, so this also writes a fraction of the bytes per fsync.
local records, all, id_orders, by_key = {}, {}, {}, {}
local function add(key, order)
  local members = by_key[key]
  if members == nil then
    members = {}
    by_key[key] = members
  end
  members[#members + 1] = order
  members[#members + 1] = order
end
for i = first, events_end, 7 do
  local order = ARGV[i]
  records[#records + 1] = order
  records[#records + 1] = ARGV[i + 4]
  all[#all + 1] = order
  all[#all + 1] = order
  id_orders[#id_orders + 1] = ARGV[i + 3]
  id_orders[#id_orders + 1] = order
  local s = tonumber(ARGV[i + 1])
  add(KEYS[6 + s], order)
  add(prefix .. 'c:' .. ARGV[4 + nstreams + s], order)
  add(prefix .. 't:' .. ARGV[i + 5], order)
  if ARGV[i + 6] ~= '' then
    for _, tag in ipairs(cjson.decode(ARGV[i + 6])) do add(prefix .. 'g:' .. tag, order) end
  end
end
local function in_pages(command, key, values)
  for i = 1, #values, 2 * PAGE do
    redis.call(command, key, unpack(values, i, math.min(i + 2 * PAGE - 1, #values)))
  end
end
in_pages('HSET', KEYS[1], records)
in_pages('ZADD', KEYS[2], all)
in_pages('HSET', KEYS[3], id_orders)
for key, members in pairs(by_key) do in_pages('ZADD', key, members) end
for s, version in pairs(versions) do
  redis.call('HSET', KEYS[4], ARGV[4 + s], version)
end
for s, count in pairs(skipped) do
  redis.call('HINCRBY', KEYS[7 + nstreams], ARGV[4 + s], count)
end
redis.call('HSET', KEYS[5], 'last', last)
return last
""".replace("PAGE", str(PAGE))

# KEYS: index zset (all or a stream), events, trimmed. ARGV: from order-id, to order-id, from version, limit,
#       stream ('' for all).
# A stream's members are its versions in order, less the prefix a scavenge removed (`trimmed`
# counts it): version v is the member of rank v - 1 - trimmed.
READ = """
local from = tonumber(ARGV[1])
local version = tonumber(ARGV[3])
if version > 1 then
  local rank = version - 1
  if ARGV[5] ~= '' then rank = rank - tonumber(redis.call('HGET', KEYS[3], ARGV[5]) or '0') end
  if rank > 0 then
    local at = redis.call('ZRANGE', KEYS[1], rank, rank, 'WITHSCORES')
    if #at == 0 then return {} end
    if tonumber(at[2]) > from then from = tonumber(at[2]) end
  end
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], from, ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for i = 1, #ids, PAGE do
  local records = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + PAGE - 1, #ids)))
  for _, record in ipairs(records) do out[#out + 1] = record end
end
return out
""".replace("PAGE", str(PAGE))

# KEYS: ids, events. ARGV: event ids.
BY_ID = """
local orders = redis.call('HMGET', KEYS[1], unpack(ARGV))
local out = {}
for i, order in ipairs(orders) do
  if order then out[#out + 1] = redis.call('HGET', KEYS[2], order) end
end
return out
"""

# KEYS: events, all, ids, versions, writer, the stream's key. ARGV: lease token, stream, index key prefix.
DELETE = (
    INDEX_KEYS
    + """
local holder = redis.call('GET', KEYS[5])
if holder and holder ~= ARGV[1] then return redis.error_reply('PHOTON-LOCKED ' .. holder) end
local orders = redis.call('ZRANGE', KEYS[6], 0, -1)
for _, order in ipairs(orders) do
  local record = redis.call('HGET', KEYS[1], order)
  if record then
    local keys, header = index_keys(ARGV[3], record)
    redis.call('HDEL', KEYS[3], header[4])
    for _, key in ipairs(keys) do redis.call('ZREM', key, order) end
  end
  redis.call('HDEL', KEYS[1], order)
  redis.call('ZREM', KEYS[2], order)
end
redis.call('DEL', KEYS[6])
redis.call('HDEL', KEYS[4], ARGV[2])
return #orders
"""
)

# KEYS: events, all, ids, trimmed, writer, the stream's key. ARGV: lease token, stream, before version,
#       index key prefix.
TRUNCATE = (
    INDEX_KEYS
    + """
local holder = redis.call('GET', KEYS[5])
if holder and holder ~= ARGV[1] then return redis.error_reply('PHOTON-LOCKED ' .. holder) end
local count = tonumber(ARGV[3]) - 1 - tonumber(redis.call('HGET', KEYS[4], ARGV[2]) or '0')
if count <= 0 then return 0 end
local orders = redis.call('ZRANGE', KEYS[6], 0, count - 1)
for _, order in ipairs(orders) do
  local record = redis.call('HGET', KEYS[1], order)
  if record then
    local keys, header = index_keys(ARGV[4], record)
    redis.call('HDEL', KEYS[3], header[4])
    for _, key in ipairs(keys) do redis.call('ZREM', key, order) end
  end
  redis.call('HDEL', KEYS[1], order)
  redis.call('ZREM', KEYS[2], order)
end
if #orders > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[6], 0, #orders - 1)
  redis.call('HINCRBY', KEYS[4], ARGV[2], #orders)
end
return #orders
"""
)

# KEYS: events, writer. ARGV: lease token, then order-id and record pairs (only stored ones are replaced).
REPLACE = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return redis.error_reply('PHOTON-LOCKED ' .. holder) end
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 0
"""

# KEYS: writer. ARGV: token, lease ms. 1 = renewed, 0 = someone else holds it (or nobody).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


SCRIPTS = {
    "append": APPEND,
    "read": READ,
    "by_id": BY_ID,
    "delete": DELETE,
    "truncate": TRUNCATE,
    "replace": REPLACE,
    "renew": RENEW,
    "release": RELEASE,
}
"""Each script by the name the backend registers it under."""
