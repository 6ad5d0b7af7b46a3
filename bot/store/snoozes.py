"""Snoozes of a route's alerts: of one workflow (by ID or name) or one linked account, for a time or
until a success. While one is on, matching alerts post nothing; they are counted and their runs kept
(the first MAX_HELD) for the line that ends it.

A snooze's ID is its kind and value (`workflow:nightly sync`), hashed: snoozing the same thing again
replaces it. Ending is claimed once (`ended`), so one line ends it whoever gets there first: its
scheduled end, an early unsnooze, or the success it waited for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.redis import decoded, redis_errors

SnoozeKind = Literal["workflow", "account"]
MAX_HELD = 100
# Kept past its end for its ending job to read; an until-success snooze lasts at most a week.
KEPT_SECONDS = 3600
LONGEST_SECONDS = 7 * 86400

# KEYS: the snooze hash, its held list. ARGV: execution, account, now, max held.
# Counts an alert held back once (a job run again does not count it twice).
_HOLD = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 0 end
if redis.call('HSETNX', KEYS[1], 'h:' .. ARGV[1], 1) == 0 then return 1 end
redis.call('HINCRBY', KEYS[1], 'held', 1)
if redis.call('LLEN', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('RPUSH', KEYS[2], ARGV[1] .. '\\t' .. ARGV[2] .. '\\t' .. ARGV[3])
  redis.call('EXPIRE', KEYS[2], redis.call('TTL', KEYS[1]))
end
return 1
"""


def snooze_id(kind: SnoozeKind, value: str) -> str:
    return hashlib.sha256(f"{kind}\0{value.casefold()}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class HeldRun:
    execution_id: str
    account: str
    at: float


@dataclass(frozen=True)
class AlertSnooze:
    snooze_id: str
    kind: SnoozeKind
    value: str  # as typed
    by: str
    since: float
    until: float
    until_success: bool
    held: int

    def covers(self, workflow_id: str | None, workflow_name: str | None, account: str | None) -> bool:
        wanted = self.value.casefold()
        match self.kind:
            case "workflow":
                return wanted in {(workflow_id or "").casefold(), (workflow_name or "").casefold()}
            case "account":
                return wanted == (account or "").casefold()


class SnoozeStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._hold = redis.register_script(_HOLD)

    async def put(
        self,
        route_id: str,
        kind: SnoozeKind,
        value: str,
        who: str,
        *,
        until: float,
        until_success: bool,
        now: float,
    ) -> AlertSnooze:
        """Snooze (or snooze again, from now: the count starts afresh)."""
        sid = snooze_id(kind, value)
        key = keys.alert_snooze(route_id, sid)
        ttl = max(1, int(until - now)) + KEPT_SECONDS
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key, key + ":held")
            pipe.hset(
                key,
                mapping={
                    "kind": kind,
                    "value": value,
                    "by": who,
                    "since": now,
                    "until": until,
                    "until_success": int(until_success),
                    "held": 0,
                },
            )
            pipe.expire(key, ttl)
            pipe.sadd(keys.alert_snoozes_of(route_id), sid)
            pipe.expire(keys.alert_snoozes_of(route_id), LONGEST_SECONDS + KEPT_SECONDS)
            await pipe.execute()
        return AlertSnooze(sid, kind, value, who, now, until, until_success, 0)

    async def get(self, route_id: str, sid: str) -> AlertSnooze | None:
        async with redis_errors():
            raw = await self._redis.hgetall(keys.alert_snooze(route_id, sid))
        return _snooze(sid, {decoded(k): decoded(v) for k, v in raw.items()})

    async def of_route(self, route_id: str, *, now: float) -> list[AlertSnooze]:
        """The route's snoozes still on."""
        async with redis_errors():
            ids = [decoded(i) for i in await self._redis.smembers(keys.alert_snoozes_of(route_id))]
        found = []
        for sid in sorted(ids):
            snooze = await self.get(route_id, sid)
            if snooze is None:
                async with redis_errors():
                    await self._redis.srem(keys.alert_snoozes_of(route_id), sid)
            elif snooze.until > now:
                found.append(snooze)
        return found

    async def matching(
        self,
        route_id: str,
        workflow_id: str | None,
        workflow_name: str | None,
        account: str | None,
        *,
        now: float,
    ) -> AlertSnooze | None:
        """The snooze on now that covers this run, if any (workflow first, then account)."""
        candidates = [("workflow", workflow_id), ("workflow", workflow_name), ("account", account)]
        for kind, value in candidates:
            if not value:
                continue
            snooze = await self.get(route_id, snooze_id(kind, value))  # type: ignore[arg-type]
            if (
                snooze is not None
                and snooze.until > now
                and snooze.covers(workflow_id, workflow_name, account)
            ):
                return snooze
        return None

    async def hold(self, route_id: str, sid: str, execution_id: str, account: str, *, now: float) -> bool:
        """Count a held-back alert; False when the snooze ended meanwhile (the alert is posted)."""
        key = keys.alert_snooze(route_id, sid)
        async with redis_errors():
            kept = await self._hold(keys=[key, key + ":held"], args=[execution_id, account, now, MAX_HELD])
        return bool(kept)

    async def claim_end(self, route_id: str, sid: str, job: str) -> bool:
        """Whether ending it (its one line in the channel) is this job's to do."""
        key = keys.alert_snooze(route_id, sid)
        async with redis_errors():
            if not await self._redis.exists(key):
                return False
            await self._redis.hsetnx(key, "ended", job)
            return decoded(await self._redis.hget(key, "ended") or b"") == job

    async def held_runs(self, route_id: str, sid: str) -> list[HeldRun]:
        async with redis_errors():
            raw = await self._redis.lrange(keys.alert_snooze(route_id, sid) + ":held", 0, -1)
        runs = []
        for entry in raw:
            execution_id, account, at = [*decoded(entry).split("\t"), "", "", "0"][:3]
            runs.append(HeldRun(execution_id, account, float(at or 0)))
        return runs

    async def forget(self, route_id: str, sid: str) -> None:
        key = keys.alert_snooze(route_id, sid)
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key, key + ":held")
            pipe.srem(keys.alert_snoozes_of(route_id), sid)
            await pipe.execute()


def _snooze(sid: str, data: dict[str, str]) -> AlertSnooze | None:
    kind = data.get("kind")
    if kind not in ("workflow", "account") or "until" not in data:
        return None
    return AlertSnooze(
        snooze_id=sid,
        kind="workflow" if kind == "workflow" else "account",
        value=data.get("value", ""),
        by=data.get("by", ""),
        since=float(data.get("since", "0")),
        until=float(data["until"]),
        until_success=data.get("until_success") == "1",
        held=int(data.get("held", "0")),
    )
