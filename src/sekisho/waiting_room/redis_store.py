"""The room shared by every process of a deployment, in Redis.

Each operation is one Lua script run (``EVALSHA``): Redis runs a script to its end before
anything else, so two processes can never hand out the same ticket number, call the same
visitor twice or fill one slot twice, and no retry loop is needed (an optimistic
``WATCH`` transaction, as the lockout lanes use, would retry endlessly under a crowd that
all touch the same queue). The script mirrors :class:`~sekisho.waiting_room.store.MemoryRoomStore`
step for step; the tests hold both to the same results.

Times come from the caller (the injected clock), not from Redis, so a frozen test clock
drives several app instances alike. Keys share one hash tag, so a Redis Cluster keeps them
on one shard as a script needs.
"""

from __future__ import annotations

import secrets

from redis.asyncio import BlockingConnectionPool, Redis

from sekisho.waiting_room.store import Limits, RoomMode, RoomStatus, Visit

# Connections kept for the room: a crowd's requests queue for one instead of opening
# thousands (each script run takes well under a millisecond).
_MAX_CONNECTIONS = 32
_POOL_TIMEOUT_SECONDS = 5

_SCRIPT = r"""
local meta, queue, called, active, missed, drawn = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local op, now = ARGV[1], tonumber(ARGV[2])
local capacity, rate, burst = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local pass_s, claim_s, keep_s = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local seed = ARGV[9]

local function num(x) return string.format('%.17g', x) end

local gen = redis.call('HGET', meta, 'gen')
if not gen then
  gen = ARGV[10]
  redis.call('HSET', meta, 'gen', gen)
end

-- Holding before the opening; the first call after it draws the places of everyone waiting.
local function holding()
  if redis.call('HGET', meta, 'mode') ~= 'hold' then return false end
  local opens = redis.call('HGET', meta, 'opens_at')
  if not opens or now < tonumber(opens) then return true end
  local items = redis.call('ZRANGE', queue, 0, -1, 'WITHSCORES')
  local members, places, keys = {}, {}, {}
  for i = 1, #items, 2 do
    members[#members + 1] = items[i]
    places[#places + 1] = items[i + 1]
    keys[items[i]] = redis.sha1hex(seed .. ':' .. items[i])
  end
  table.sort(members, function(a, b) return keys[a] < keys[b] end)
  for i, m in ipairs(members) do
    redis.call('ZADD', queue, places[i], m)
    redis.call('HSET', drawn, m, places[i])
  end
  redis.call('HSET', meta, 'mode', 'open')
  redis.call('HDEL', meta, 'opens_at')
  return false
end

local function expire()
  redis.call('ZREMRANGEBYSCORE', active, '-inf', now)
  local lapsed = redis.call('ZRANGEBYSCORE', called, '-inf', now)
  for _, m in ipairs(lapsed) do redis.call('ZADD', missed, num(now + keep_s), m) end
  if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', called, '-inf', now) end
  local gone = redis.call('ZRANGEBYSCORE', missed, '-inf', now, 'LIMIT', 0, 100)
  for _, m in ipairs(gone) do
    redis.call('ZREM', missed, m)
    redis.call('HDEL', drawn, m)
  end
end

local function free()
  return capacity - redis.call('ZCARD', active) - redis.call('ZCARD', called)
end

local function refill()
  local saved = redis.call('HMGET', meta, 'tokens', 'refilled_at')
  local tokens = burst
  if saved[1] then
    tokens = math.min(burst, tonumber(saved[1]) + math.max(0, now - tonumber(saved[2])) * rate)
  end
  redis.call('HSET', meta, 'tokens', num(tokens), 'refilled_at', num(now))
  return tokens
end

local function take(count)
  -- Plain double arithmetic, as in Python (HINCRBYFLOAT computes in long double).
  local tokens = tonumber(redis.call('HGET', meta, 'tokens'))
  redis.call('HSET', meta, 'tokens', num(tokens - count))
  redis.call('HINCRBY', meta, 'admitted', count)
end

local function admit()
  local count = math.min(free(), math.floor(refill()), redis.call('ZCARD', queue))
  if count <= 0 then return end
  local popped = redis.call('ZPOPMIN', queue, count)
  for i = 1, #popped, 2 do redis.call('ZADD', called, num(now + claim_s), popped[i]) end
  take(count)
end

local function queued(m, hold, new)
  local position, opens = '', ''
  if hold then
    opens = redis.call('HGET', meta, 'opens_at') or ''
  else
    position = tostring(redis.call('ZRANK', queue, m) + 1)
  end
  return {'q', gen, m, position, opens, new, redis.call('HGET', meta, 'admitted') or '0'}
end

local function resolve(m, hold)
  local expires = redis.call('ZSCORE', active, m)
  if expires then return {'a', gen, m, expires} end
  if redis.call('ZSCORE', called, m) then
    redis.call('ZREM', called, m)
    redis.call('HDEL', drawn, m)
    expires = num(now + pass_s)
    redis.call('ZADD', active, expires, m)
    return {'a', gen, m, expires}
  end
  if redis.call('ZSCORE', queue, m) then return queued(m, hold, '0') end
  if redis.call('ZSCORE', missed, m) then
    redis.call('ZREM', missed, m)
    redis.call('ZADD', queue, redis.call('HGET', drawn, m) or m, m)
    if not hold then admit() end
    return resolve(m, hold)
  end
  return false
end

if op == 'visit' then
  local hold = holding()
  expire()
  if not hold then admit() end
  if ARGV[11] == gen and ARGV[12] ~= '' then
    local found = resolve(ARGV[12], hold)
    if found then return found end
  end
  if not hold and redis.call('ZCARD', queue) == 0 and free() >= 1 and refill() >= 1 then
    local slot = 'd' .. redis.call('HINCRBY', meta, 'slots', 1)
    local expires = num(now + pass_s)
    redis.call('ZADD', active, expires, slot)
    take(1)
    return {'a', gen, slot, expires}
  end
  local m = tostring(redis.call('HINCRBY', meta, 'issued', 1))
  redis.call('ZADD', queue, m, m)
  return queued(m, hold, '1')
elseif op == 'release' then
  return redis.call('ZREM', active, ARGV[11])
elseif op == 'hold' then
  redis.call('HSET', meta, 'mode', 'hold')
  if ARGV[11] ~= '' then
    redis.call('HSET', meta, 'opens_at', ARGV[11])
  else
    redis.call('HDEL', meta, 'opens_at')
  end
  return 1
elseif op == 'open' then
  if redis.call('HGET', meta, 'mode') == 'hold' then
    redis.call('HSET', meta, 'opens_at', num(now))
    holding()
  end
  return 1
end
-- status
local info = redis.call('HMGET', meta, 'mode', 'opens_at', 'admitted', 'issued')
return {info[1] or 'open', info[2] or '', redis.call('ZCARD', queue),
        redis.call('ZCOUNT', called, '(' .. num(now), '+inf'),
        redis.call('ZCOUNT', active, '(' .. num(now), '+inf'),
        redis.call('ZCARD', missed), info[3] or '0', info[4] or '0'}
"""


class RedisRoomStore:
    def __init__(self, url: str, *, prefix: str = "sekisho:waiting-room",
                 generation: str | None = None) -> None:
        pool = BlockingConnectionPool.from_url(url, max_connections=_MAX_CONNECTIONS,
                                               timeout=_POOL_TIMEOUT_SECONDS)
        self.redis: Redis = Redis(connection_pool=pool)
        self._script = self.redis.register_script(_SCRIPT)
        tag = "{" + prefix + "}"
        self._keys = [f"{tag}:{name}" for name in
                      ("meta", "queue", "called", "active", "missed", "drawn")]
        self._generation = generation or secrets.token_urlsafe(6)
        """Used only if the room has none yet (the first process to touch it sets it)."""

    async def _run(self, op: str, now: float, limits: Limits | None = None, seed: str = "",
                   first: str = "", second: str = "") -> list[bytes]:
        numbers = ([limits.capacity, limits.rate, limits.burst, limits.pass_seconds,
                    limits.claim_seconds, limits.keep_missed_seconds]
                   if limits else [0, 0, 0, 0, 0, 0])
        args = [op, repr(now), *map(repr, numbers), seed, self._generation, first, second]
        return await self._script(keys=self._keys, args=args)  # type: ignore[no-any-return]

    async def visit(self, now: float, ticket: tuple[str, int] | None, limits: Limits,
                    seed: str) -> Visit:
        generation, number = ticket if ticket else ("", "")
        reply = [part.decode() for part in
                 await self._run("visit", now, limits, seed, generation, str(number))]
        if reply[0] == "a":
            return Visit(True, reply[1], slot=reply[2], expires_at=float(reply[3]))
        return Visit(False, reply[1], number=int(reply[2]),
                     position=int(reply[3]) if reply[3] else None,
                     opens_at=float(reply[4]) if reply[4] else None, new_ticket=reply[5] == "1",
                     called_total=int(reply[6]))

    async def release(self, slot: str) -> None:
        await self._run("release", 0.0, first=slot)

    async def hold(self, opens_at: float | None) -> None:
        await self._run("hold", 0.0, first=repr(opens_at) if opens_at is not None else "")

    async def open(self, now: float, seed: str) -> None:
        await self._run("open", now, seed=seed)

    async def status(self, now: float) -> RoomStatus:
        mode, opens_at, waiting, called, active, missed, admitted, issued = \
            await self._run("status", now)
        return RoomStatus(RoomMode(mode.decode()),
                          float(opens_at) if opens_at else None, int(waiting), int(called),
                          int(active), int(missed), int(admitted), int(issued))

    async def close(self) -> None:
        await self.redis.aclose()
