"""Which parts of an interaction's answer already reached Slack, so a re-run job never repeats them.

A queued job can run twice: its worker may die after answering but before saq records the job done.
The handler asks before each answer and records after it, waiting a few seconds for Redis when it is
away; Redis still failing after that counts as "not yet".
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
import stamina

from bot.store import keys
from bot.store.errors import StoreUnavailable
from bot.store.redis import redis_errors

log = logging.getLogger(__name__)

# Longer than any job's retries last, shorter than anyone would press the same button again.
REMEMBER_SECONDS = 3600
PATIENCE_SECONDS = 5.0


class Deliveries:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def done(self, interaction: str, part: str) -> bool:
        key = keys.delivered(f"{interaction}:{part}")
        try:
            async for attempt in _patiently():
                with attempt:
                    async with redis_errors():
                        return bool(await self._redis.exists(key))
        except StoreUnavailable:
            pass
        return False

    async def record(self, interaction: str, part: str) -> None:
        key = keys.delivered(f"{interaction}:{part}")
        try:
            async for attempt in _patiently():
                with attempt:
                    async with redis_errors():
                        await self._redis.set(key, b"1", ex=REMEMBER_SECONDS)
        except StoreUnavailable:
            log.warning("could not record a delivered answer: Redis unavailable")


def _patiently() -> Any:  # stamina names no public type for its retry-context iterator
    # A restart or failover of Redis takes seconds; an answer recorded late beats one sent twice (a
    # job whose finish saq could not record is run again once Redis is back).
    return stamina.retry_context(
        on=StoreUnavailable, attempts=None, timeout=PATIENCE_SECONDS, wait_initial=0.2, wait_max=1.0
    )
