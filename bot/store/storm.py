"""Storm control: whether an alert is posted as its own card or gathered under a storm summary.

A route that has been quiet for a window gets its next alert as a card. An alert that comes within a
window of the one before belongs to a storm: the first such alert of each window creates a summary
message, the others go in its thread. So a storm makes at most two top-level messages in its first
window (the card and a summary) and one in each window after.

Every decision is recorded under the alert's name, so a job run again after its worker died gets the
same decision and counts nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.redis import redis_errors

STATE_TTL_SECONDS = 3600

# KEYS: storm state, counts prefix. ARGV: now, window, alert name, counted label.
_ARRIVE = """
local decided = redis.call('HGET', KEYS[1], 'a:' .. ARGV[3])
if decided then
  local sep = string.find(decided, ':', 1, true)
  local sid = string.sub(decided, sep + 1)
  local ts = ''
  if sid ~= '' then ts = redis.call('HGET', KEYS[1], 'ts:' .. sid) or '' end
  return {string.sub(decided, 1, sep - 1), sid, ts}
end
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '-1e18')
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if now - last > window then
  redis.call('HSET', KEYS[1], 'a:' .. ARGV[3], 'card:')
  return {'card', '', ''}
end
local sid = redis.call('HGET', KEYS[1], 'sum_id')
local start = tonumber(redis.call('HGET', KEYS[1], 'sum_start') or '-1e18')
local role = 'join'
if (not sid) or now - start >= window then
  sid = tostring(redis.call('HINCRBY', KEYS[1], 'sum_seq', 1))
  redis.call('HSET', KEYS[1], 'sum_id', sid, 'sum_start', ARGV[1], 'start:' .. sid, ARGV[1])
  role = 'create'
end
redis.call('HSET', KEYS[1], 'a:' .. ARGV[3], role .. ':' .. sid)
local counts = KEYS[2] .. sid
redis.call('HINCRBY', counts, ARGV[4], 1)
redis.call('EXPIRE', counts, ARGV[5])
return {role, sid, redis.call('HGET', KEYS[1], 'ts:' .. sid) or ''}
"""


@dataclass(frozen=True)
class StormDecision:
    role: str  # card | create | join
    summary: str  # the summary's name within the route ('' for a card)
    summary_ts: str  # the summary message, once posted ('' until then)


class StormStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._arrive = redis.register_script(_ARRIVE)

    async def arrive(
        self, route_id: str, alert: str, label: str, *, now: float, window: float
    ) -> StormDecision:
        async with redis_errors():
            role, summary, ts = await self._arrive(
                keys=[keys.storm(route_id), keys.storm_counts(route_id, "")],
                args=[now, window, alert, label, STATE_TTL_SECONDS],
            )
        return StormDecision(_text(role), _text(summary), _text(ts))

    async def summary_posted(self, route_id: str, summary: str, ts: str) -> None:
        async with redis_errors():
            await self._redis.hset(keys.storm(route_id), f"ts:{summary}", ts)

    async def summary(self, route_id: str, summary: str) -> tuple[str, float]:
        """(the summary's message, or '' while it is being posted; when its storm window began)."""
        async with redis_errors():
            ts, start = await self._redis.hmget(keys.storm(route_id), [f"ts:{summary}", f"start:{summary}"])
        return (_text(ts) if ts else "", float(start) if start else 0.0)

    async def counts(self, route_id: str, summary: str) -> dict[str, int]:
        async with redis_errors():
            raw = await self._redis.hgetall(keys.storm_counts(route_id, summary))
        return {_text(k): int(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
