"""Incidents: failures of one cause in one alert route, gathered under one message.

Per route and cause, one hash holds the cause's current episode:
- `single`: one failure so far; it got its own card (`card_ts` once posted).
- `open`: a second failure of the cause came within GROUP_SECONDS of the first; that first card's
  message becomes the incident message and every run of the cause goes in its thread.
An open incident with no failure for RESOLVE_SECONDS is over: the cause's next failure starts afresh
with its own card.

Every decision is recorded under the alert's name, so a job run again after its worker died gets the
same decision and counts nothing twice. Turning the first card into the incident is claimed once
(`convert`), by whichever comes second: the job that posted the first card, or the one that opened the
incident. Linked accounts are counted exactly up to MAX_ACCOUNTS; the first few are kept by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.redis import redis_errors

GROUP_SECONDS = 15 * 60
RESOLVE_SECONDS = 30 * 60
STATE_TTL_SECONDS = 2 * 3600
MAX_ACCOUNTS = 1000
SHOWN_ACCOUNTS = 5

Role = Literal["card", "open", "join"]

# KEYS: incident hash, its accounts set, its first accounts list, the route's incidents (a sorted set of
# causes by last failure), its recovered accounts.
# ARGV: now, alert name, execution ID, linked account, group window, resolve window, ttl, max accounts,
# shown accounts, cause fields (workflow, node, node type, error).
_ARRIVE = """
local decided = redis.call('HGET', KEYS[1], 'a:' .. ARGV[2])
if decided then
  return {decided, redis.call('HGET', KEYS[1], 'card_ts') or '', redis.call('HGET', KEYS[1], 'gen') or ''}
end
local now = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
local first = tonumber(redis.call('HGET', KEYS[1], 'first') or '-1e18')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '-1e18')
local role
if state == 'open' and now - last <= tonumber(ARGV[6]) then
  role = 'join'
elseif state == 'single' and now - first <= tonumber(ARGV[5]) then
  role = 'open'
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened', ARGV[1])
else
  role = 'card'
  local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[5])
  redis.call('HDEL', KEYS[1], 'card_ts', 'convert', 'opened', 'accounts_over')
  redis.call('HSET', KEYS[1], 'state', 'single', 'first', ARGV[1], 'runs', 0,
    'first_exec', ARGV[3], 'first_account', ARGV[4],
    'workflow', ARGV[10], 'node', ARGV[11], 'node_type', ARGV[12], 'error', ARGV[13],
    'workflow_id', ARGV[15])
end
redis.call('HSET', KEYS[1], 'last', ARGV[1], 'a:' .. ARGV[2], role)
redis.call('HINCRBY', KEYS[1], 'runs', 1)
-- An account failing again has not recovered after all.
if ARGV[4] ~= '' then redis.call('SREM', KEYS[5], ARGV[4]) end
if ARGV[4] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[4]) == 0 then
  if redis.call('SCARD', KEYS[2]) < tonumber(ARGV[8]) then
    redis.call('SADD', KEYS[2], ARGV[4])
    if redis.call('LLEN', KEYS[3]) < tonumber(ARGV[9]) then redis.call('RPUSH', KEYS[3], ARGV[4]) end
  else
    redis.call('HINCRBY', KEYS[1], 'accounts_over', 1)
  end
end
if role ~= 'card' then redis.call('ZADD', KEYS[4], ARGV[1], ARGV[14]) end
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
return {role, redis.call('HGET', KEYS[1], 'card_ts') or '', redis.call('HGET', KEYS[1], 'gen')}
"""

# KEYS: incident hash. ARGV: generation, the caller's job, the first card's ts ('' when not known here).
# Returns the first card's ts when the caller is to turn it into the incident (the incident is open, the
# card posted, and the turn is the caller's: claimed now, or by an earlier run of the same job), else ''.
_CLAIM_CONVERT = """
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return '' end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'card_ts', ARGV[3]) end
local ts = redis.call('HGET', KEYS[1], 'card_ts')
if (not ts) or redis.call('HGET', KEYS[1], 'state') ~= 'open' then return '' end
redis.call('HSETNX', KEYS[1], 'convert', ARGV[2])
if redis.call('HGET', KEYS[1], 'convert') == ARGV[2] then return ts end
return ''
"""


@dataclass(frozen=True)
class CauseFields:
    workflow: str
    node: str
    node_type: str
    error: str
    workflow_id: str = ""


@dataclass(frozen=True)
class Arrival:
    role: Role
    card_ts: str  # the cause's first card (the incident message once open); '' until posted
    generation: str  # which episode of the cause this failure belongs to


@dataclass(frozen=True)
class IncidentView:
    """What the incident message shows."""

    state: str  # single | open
    cause: CauseFields
    runs: int
    accounts: int
    first_accounts: list[str]
    first_seen: float
    last_seen: float
    card_ts: str
    first_execution: str
    first_account: str
    recovered: int = 0  # accounts hit that have succeeded since their last failure here


class IncidentStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._arrive = redis.register_script(_ARRIVE)
        self._claim_convert = redis.register_script(_CLAIM_CONVERT)

    @staticmethod
    def _keys(route_id: str, cause: str) -> list[str]:
        base = keys.incident(route_id, cause)
        return [
            base,
            f"{base}:accounts",
            f"{base}:first-accounts",
            keys.incidents_of(route_id),
            f"{base}:recovered",
        ]

    async def arrive(
        self,
        route_id: str,
        cause: str,
        fields: CauseFields,
        *,
        alert: str,
        execution_id: str,
        account: str | None,
        now: float,
    ) -> Arrival:
        async with redis_errors():
            role, card_ts, gen = await self._arrive(
                keys=self._keys(route_id, cause),
                args=[
                    now,
                    alert,
                    execution_id,
                    account or "",
                    GROUP_SECONDS,
                    RESOLVE_SECONDS,
                    STATE_TTL_SECONDS,
                    MAX_ACCOUNTS,
                    SHOWN_ACCOUNTS,
                    fields.workflow,
                    fields.node,
                    fields.node_type,
                    fields.error,
                    cause,
                    fields.workflow_id,
                ],
            )
        decided = _text(role)
        assert decided in ("card", "open", "join")
        return Arrival(decided, _text(card_ts), _text(gen))  # type: ignore[arg-type]

    async def claim_convert(
        self, route_id: str, cause: str, generation: str, job: str, card_ts: str = ""
    ) -> str:
        """Record the first card's message (`card_ts`, from the job that posted it) and claim turning
        it into the incident: its ts when that is this job's to do, else ''."""
        async with redis_errors():
            ts = await self._claim_convert(
                keys=self._keys(route_id, cause)[:1], args=[generation, job, card_ts]
            )
        return _text(ts)

    async def open_causes(self, route_id: str, *, now: float, limit: int = 20) -> list[str]:
        """The route's incidents with a failure within the resolve window, latest first."""
        async with redis_errors():
            causes = await self._redis.zrevrangebyscore(
                keys.incidents_of(route_id), "+inf", now - RESOLVE_SECONDS, start=0, num=limit
            )
        return [_text(c) for c in causes if isinstance(c, bytes | str)]

    async def succeeded(self, route_id: str, workflow: str, account: str, *, now: float) -> list[str]:
        """A run of `workflow` (ID or name) completed for `account`: the open incidents that account
        was hit by count it as recovered. Their causes."""
        changed = []
        for cause in await self.open_causes(route_id, now=now):
            base, accounts, _, _, recovered = self._keys(route_id, cause)
            async with redis_errors():
                names = await self._redis.hmget(base, ["workflow_id", "workflow"])
                if workflow.casefold() not in {_text(n).casefold() for n in names if n}:
                    continue
                if not await self._redis.sismember(accounts, account):
                    continue
                if await self._redis.sadd(recovered, account):
                    await self._redis.expire(recovered, STATE_TTL_SECONDS)
                    changed.append(cause)
        return changed

    async def view(self, route_id: str, cause: str) -> IncidentView | None:
        base, accounts, first_accounts, _, recovered = self._keys(route_id, cause)
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(base)
            pipe.scard(accounts)
            pipe.lrange(first_accounts, 0, -1)
            pipe.scard(recovered)
            raw, count, named, healed = await pipe.execute()
        data = {_text(k): _text(v) for k, v in raw.items()}
        if "state" not in data:
            return None
        return IncidentView(
            state=data["state"],
            cause=CauseFields(
                data.get("workflow", ""),
                data.get("node", ""),
                data.get("node_type", ""),
                data.get("error", ""),
                data.get("workflow_id", ""),
            ),
            runs=int(data.get("runs", "0")),
            accounts=int(count) + int(data.get("accounts_over", "0")),
            first_accounts=[_text(a) for a in named],
            first_seen=float(data.get("first", "0")),
            last_seen=float(data.get("last", "0")),
            card_ts=data.get("card_ts", ""),
            first_execution=data.get("first_exec", ""),
            first_account=data.get("first_account", ""),
            recovered=int(healed),
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
