"""Which parts of an interaction's answer already reached Slack, so a re-run job never repeats them.

A queued job can run twice: its worker may die after answering but before saq records the job done.
The handler asks before each answer (Redis failing counts as "not yet") and records after it, waiting
a few seconds for Redis when it is away. An answer several jobs may reach at the same moment (the
polls of one follow) is also claimed first, so exactly one of them sends it.
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
        # Asked before answering: no waiting here, so a person is never kept waiting on Redis twice.
        try:
            async with redis_errors():
                return bool(await self._redis.exists(keys.delivered(f"{interaction}:{part}")))
        except StoreUnavailable:
            return False

    async def claim(self, name: str, part: str, claimant: str) -> bool:
        """Whether `claimant` is the one job to send `name`'s `part`, when several may reach it at
        the same moment: the first to ask is, and stays so (its own re-run may send after it died).
        Redis failing lets it send: a reply twice beats none."""
        key = keys.delivery_claim(f"{name}:{part}")
        try:
            async with redis_errors():
                if await self._redis.set(key, claimant, nx=True, ex=REMEMBER_SECONDS):
                    return True
                holder = await self._redis.get(key)
        except StoreUnavailable:
            log.warning("could not claim an answer shared by several jobs: Redis unavailable")
            return True
        return holder is None or holder in (claimant, claimant.encode())

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
