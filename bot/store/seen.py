"""First deliveries: Refold retries a webhook up to 3 times and Slack retries an event it thinks was
lost; each is acted on once. A claim is one SET NX with a TTL longer than any redelivery."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.redis import redis_errors

REMEMBER_SECONDS = 24 * 3600


class SeenDeliveries:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def claim(self, kind: str, name: str, ttl_seconds: int = REMEMBER_SECONDS) -> bool:
        """True for the first delivery of `name`, False for a redelivery."""
        async with redis_errors():
            return bool(await self._redis.set(keys.seen(kind, name), b"1", nx=True, ex=ttl_seconds))

    async def release(self, kind: str, name: str) -> None:
        """Forget a claim whose work could not even be queued, so the sender's retry is taken."""
        async with redis_errors():
            await self._redis.delete(keys.seen(kind, name))
