"""Each route's own delivery history per workflow and linked account, so an alert can say whether
it is a first failure or a repeat ("failing since 12:02 for acme: 5th in a row").

A sorted set per route, workflow and account: `<status>:<execution ID>` scored by time, so the same
delivery recorded twice (a job run again) counts once. Bounded: at most KEEP entries, none older
than KEEP_SECONDS, and the key expires KEEP_SECONDS after its last delivery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.redis import redis_errors

KEEP = 50
KEEP_SECONDS = 14 * 86400
WINDOW_SECONDS = 7 * 86400  # what "first failure in 7 days" looks back over

Outcome = Literal["failed", "completed"]

# KEYS: the history. ARGV: member, now, keep, keep seconds. Returns every entry, oldest first.
_RECORD = """
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[4]))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
"""


@dataclass(frozen=True)
class Delivered:
    outcome: Outcome
    execution_id: str
    at: float


@dataclass(frozen=True)
class Repeat:
    """What a failure is, seen against the route's earlier deliveries of its workflow and account."""

    failures_in_window: int  # this one included
    in_a_row: int  # failures since the last success kept (or since the history starts), this one included
    failing_since: float  # the first failure of the run of failures this one ends
    last_success: float | None


def repeat_of(history: Sequence[Delivered], now: float) -> Repeat:
    """Pure: where this failure stands in its history (which holds it)."""
    window = [d for d in history if d.at >= now - WINDOW_SECONDS]
    failures = [d for d in window if d.outcome == "failed"]
    successes = [d for d in history if d.outcome == "completed"]
    last_success = max((d.at for d in successes), default=None)
    since_success = [
        d for d in history if d.outcome == "failed" and (last_success is None or d.at > last_success)
    ]
    return Repeat(
        failures_in_window=max(1, len(failures)),
        in_a_row=max(1, len(since_success)),
        failing_since=min((d.at for d in since_success), default=now),
        last_success=last_success,
    )


class AlertHistory:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._record = redis.register_script(_RECORD)

    @staticmethod
    def _key(route_id: str, workflow: str, account: str) -> str:
        subject = hashlib.sha256(f"{workflow.casefold()}\0{account}".encode()).hexdigest()[:24]
        return keys.alert_history(route_id, subject)

    async def record(
        self, route_id: str, workflow: str, account: str, outcome: Outcome, execution_id: str, *, now: float
    ) -> list[Delivered]:
        """Record one delivery (once, however often asked) and return the history with it, oldest first."""
        async with redis_errors():
            raw = await self._record(
                keys=[self._key(route_id, workflow, account)],
                args=[f"{outcome}:{execution_id}", now, KEEP, KEEP_SECONDS],
            )
        history = []
        for member, score in zip(raw[::2], raw[1::2], strict=True):
            text = member.decode() if isinstance(member, bytes) else str(member)
            kind, _, execution = text.partition(":")
            history.append(
                Delivered("completed" if kind == "completed" else "failed", execution, float(score))
            )
        return history
