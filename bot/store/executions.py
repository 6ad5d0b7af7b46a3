"""Fetched executions shared between lookups and processes: an encrypted cache and a fetch lease.

A "flight" names one (credentials, linked account, execution) triple by fingerprints, never secrets.
Finished executions are cached for the configured TTL, running ones for 2 s, so Refresh stays fresh.
Both degrade to "no cache, no lease" when Redis fails: lookups then go straight to Refold.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from bot.refold.models import Execution
from bot.store import keys
from bot.store.crypto import Cipher, InvalidToken
from bot.store.errors import StoreUnavailable
from bot.store.redis import redis_errors

log = logging.getLogger(__name__)

RUNNING_CACHE_SECONDS = 2
# A Refold call usually takes ~100 ms. A lease outliving a crashed holder delays the others this long
# before they fetch themselves (a killed worker's job, retried elsewhere, waits it out); a fetch slower
# than this lets another process fetch too, which costs one extra call and nothing else.
LEASE_SECONDS = 5


def flight_key(fingerprint: str, account: str | None, execution_id: str) -> str:
    account_hash = hashlib.sha256((account or "").encode()).hexdigest()[:16]
    return f"{fingerprint}:{account_hash}:{execution_id}"


class ExecutionCache:
    def __init__(self, redis: aioredis.Redis, cipher: Cipher, terminal_seconds: int = 600) -> None:
        self._redis = redis
        self._cipher = cipher
        self._terminal_ttl = terminal_seconds

    async def get(self, flight: str) -> Execution | None:
        """The cached execution, or None when absent, unreadable or Redis is down."""
        try:
            async with redis_errors():
                token = await self._redis.get(keys.execution_cache(flight))
        except StoreUnavailable:
            return None
        if token is None:
            return None
        try:
            return Execution.model_validate_json(self._cipher.decrypt(token))
        except (InvalidToken, ValueError):
            return None

    async def put(self, flight: str, execution: Execution) -> None:
        ttl = self._terminal_ttl if execution.is_terminal else RUNNING_CACHE_SECONDS
        if ttl <= 0:
            return
        token = self._cipher.encrypt(execution.model_dump_json().encode())
        try:
            async with redis_errors():
                await self._redis.set(keys.execution_cache(flight), token, ex=ttl)
        except StoreUnavailable:
            log.warning("could not cache execution: Redis unavailable")


class FetchLease:
    """One process at a time fetches a flight; the others wait for its cached result."""

    def __init__(self, redis: aioredis.Redis, flight: str) -> None:
        self._lock: Lock = redis.lock(keys.fetch_lease(flight), timeout=LEASE_SECONDS, blocking=False)

    async def acquire(self) -> bool:
        """True: this process fetches. Raises StoreUnavailable when Redis cannot say."""
        async with redis_errors():
            return bool(await self._lock.acquire())

    async def held_elsewhere(self) -> bool:
        """Is the holder still at it? False once it released, or its lease lapsed (it died)."""
        try:
            async with redis_errors():
                return bool(await self._lock.locked())
        except StoreUnavailable:
            return False

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """Hold the lease past its LEASE_SECONDS while the fetch lasts: the holder may wait its turn
        at the Refold rate limit for up to a minute. Should the holder die, the lease lapses as before."""

        async def extend() -> None:
            while True:
                await asyncio.sleep(LEASE_SECONDS / 3)
                with contextlib.suppress(LockError, RedisError, OSError):
                    await self._lock.extend(LEASE_SECONDS, replace_ttl=True)

        keeping = asyncio.create_task(extend())
        try:
            yield
        finally:
            keeping.cancel()

    async def release(self) -> None:
        with contextlib.suppress(LockError, RedisError, OSError):
            await self._lock.release()
