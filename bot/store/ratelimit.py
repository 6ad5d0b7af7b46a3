"""Refold's rate limit (20 requests/s per key, burst 5), kept across every bot process via Redis.

GCRA from pyrate-limiter, stored as one small Redis hash per key and updated atomically in Lua, so
two processes sharing a key never exceed the limit together. A request beyond the budget waits its
turn: each process serves a key's waiting requests in the order they came (a burst from one
workspace is answered in order, not refused), and only a request whose wait would pass a minute is
refused with a polite "Refold is busy". Redis being down must not stop lookups, so the limiter then
lets requests through and says so in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from pyrate_limiter import GCRA, Duration, Rate
from pyrate_limiter.buckets.redis_state import RedisStateStore
from redis.exceptions import RedisError

from bot.refold.errors import RefoldBusy
from bot.refold.place import current_place
from bot.store import keys

log = logging.getLogger(__name__)

# Refold allows 20/s with a burst of 5, token-bucket style. Requests are admitted here but counted
# there, after a hop whose delay varies with load (measured: up to ~0.2 s on a busy 2-core host, which
# bunched 18 admissions into 21 arrivals). A bucket refilling at 12/s with room for 3 admits at most
# 15 in any second and 3 at once, leaving that jitter room below Refold's limit.
REFOLD_RATES = [Rate(12, Duration.SECOND, burst=3)]


# Slack's response_url lasts 30 minutes, so a person can be kept waiting; past a minute, "try again
# later" is the more useful answer.
MAX_WAIT_SECONDS = 60.0


@dataclass
class _Line:
    """One key's requests waiting in this process. asyncio.Lock wakes its waiters first come, first
    served, so only the head of the line asks Redis for a turn."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    issued: int = 0  # tickets handed out
    served: int = 0  # requests that left the line (granted, refused or cancelled)


class RefoldRateLimiter:
    def __init__(
        self,
        redis: aioredis.Redis,
        rates: list[Rate] | None = None,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
    ) -> None:
        self._redis = redis
        self._rates = rates or REFOLD_RATES
        self._algorithm = GCRA()
        self._max_wait = max_wait_seconds
        self._stores: dict[str, RedisStateStore] = {}
        self._lines: dict[str, _Line] = {}
        # The slowest refill: how fast a line moves once the burst is spent.
        self._per_second = min(rate.limit * 1000 / rate.interval for rate in self._rates)

    def _store(self, key: str) -> RedisStateStore:
        store = self._stores.get(key)
        if store is None:
            if len(self._stores) > 10_000:
                self._stores.clear()  # bounded: a store is only a key name and a cached script
            store = self._stores[key] = RedisStateStore(self._redis, keys.rate_limit(key))
        return store

    def waiting(self, key: str) -> int:
        """How many requests under `key` wait in this process's line."""
        line = self._lines.get(key)
        return line.issued - line.served if line else 0

    async def acquire(self, key: str, *, again: bool = False) -> float:
        """Wait for a turn under `key`, behind this process's earlier requests for it; return when the
        turn was granted (time.monotonic()).

        Raise RefoldBusy when the wait would pass the limit. The caller sends at once, or asks again
        with `again` if it could not (see the Refold client): a turn is counted when it is granted,
        not when it is used, and a request asking again keeps its place at the head of the line.
        """
        deadline = time.monotonic() + self._max_wait
        place = current_place()
        if again:
            granted = await self._turn(key, deadline)
            if place is not None:
                place.granted()
            return granted
        line = self._lines.setdefault(key, _Line())
        ahead = line.issued - line.served
        # Each request ahead takes 1/rate of a second once the burst is spent: a wait that can only
        # pass the limit is refused now, not after a minute.
        if ahead / self._per_second > self._max_wait:
            raise RefoldBusy("Refold is busy: this workspace has more than a minute of requests queued")
        line.issued += 1
        ticket = line.issued
        if place is not None:
            place.waiting(lambda: max(0, ticket - line.served - 1))
        try:
            async with line.lock:
                if place is not None:
                    place.waiting(lambda: 0)
                granted = await self._turn(key, deadline)
        finally:
            line.served += 1
            if place is not None:
                place.waiting(None)
            if line.served == line.issued and self._lines.get(key) is line:
                del self._lines[key]
        if place is not None:
            place.granted()
        return granted

    async def _turn(self, key: str, deadline: float) -> float:
        store = self._store(key)
        while True:
            asked = time.monotonic()
            try:
                decision = await store.check(self._algorithm, self._rates, int(time.time() * 1000), 1)
            except (RedisError, OSError) as exc:
                log.warning("rate limiter unavailable (%s); sending without it", type(exc).__name__)
                return time.monotonic()
            if decision.allowed:
                return asked
            wait = max(decision.retry_after_ms or 50, 1) / 1000
            if time.monotonic() + wait > deadline:
                raise RefoldBusy("Refold is busy: this workspace is at Refold's rate limit")
            await asyncio.sleep(wait)
