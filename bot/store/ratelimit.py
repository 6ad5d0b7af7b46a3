"""Refold's rate limit (20 requests/s per key, burst 5), kept across every bot process via Redis.

GCRA from pyrate-limiter, stored as one small Redis hash per key and updated atomically in Lua, so
two processes sharing a key never exceed the limit together. A request that would exceed it waits
briefly; one that would wait too long is refused with a polite "Refold is busy". Redis being down
must not stop lookups, so the limiter then lets requests through and says so in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from pyrate_limiter import GCRA, Duration, Rate
from pyrate_limiter.buckets.redis_state import RedisStateStore
from redis.exceptions import RedisError

from bot.refold.errors import RefoldBusy
from bot.store import keys

log = logging.getLogger(__name__)

# Refold allows 20/s with a burst of 5, token-bucket style. Requests are admitted here but counted
# there, after a hop whose delay varies with load (measured: up to ~0.2 s on a busy 2-core host, which
# bunched 18 admissions into 21 arrivals). A bucket refilling at 12/s with room for 3 admits at most
# 15 in any second and 3 at once, leaving that jitter room below Refold's limit.
REFOLD_RATES = [Rate(12, Duration.SECOND, burst=3)]


class RefoldRateLimiter:
    def __init__(
        self, redis: aioredis.Redis, rates: list[Rate] | None = None, max_wait_seconds: float = 3.0
    ) -> None:
        self._redis = redis
        self._rates = rates or REFOLD_RATES
        self._algorithm = GCRA()
        self._max_wait = max_wait_seconds
        self._stores: dict[str, RedisStateStore] = {}

    def _store(self, key: str) -> RedisStateStore:
        store = self._stores.get(key)
        if store is None:
            if len(self._stores) > 10_000:
                self._stores.clear()  # bounded: a store is only a key name and a cached script
            store = self._stores[key] = RedisStateStore(self._redis, keys.rate_limit(key))
        return store

    async def acquire(self, key: str) -> float:
        """Wait for a turn under `key`; return when it was granted (time.monotonic()).

        Raise RefoldBusy when the turn is too far off. The caller sends at once, or asks again if it
        could not (see the Refold client): a turn is counted when it is granted, not when it is used.
        """
        deadline = time.monotonic() + self._max_wait
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
