"""Which parts of an interaction's answer already reached Slack, so a re-run job never repeats them.

A queued job can run twice: its worker may die after answering but before saq records the job done.
The handler asks before each answer and records after it; Redis failing counts as "not yet".
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.errors import StoreUnavailable
from bot.store.redis import redis_errors

log = logging.getLogger(__name__)

# Longer than any job's retries last, shorter than anyone would press the same button again.
REMEMBER_SECONDS = 3600


class Deliveries:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def done(self, interaction: str, part: str) -> bool:
        try:
            async with redis_errors():
                return bool(await self._redis.exists(keys.delivered(f"{interaction}:{part}")))
        except StoreUnavailable:
            return False

    async def record(self, interaction: str, part: str) -> None:
        try:
            async with redis_errors():
                await self._redis.set(keys.delivered(f"{interaction}:{part}"), b"1", ex=REMEMBER_SECONDS)
        except StoreUnavailable:
            log.warning("could not record a delivered answer: Redis unavailable")
