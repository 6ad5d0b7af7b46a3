"""Linked accounts that earlier successful lookups used, per workspace: bounded, most recent first."""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from bot.store import keys
from bot.store.redis import redis_errors

MAX_KNOWN_ACCOUNTS = 50


class KnownAccounts:
    def __init__(self, redis: aioredis.Redis, limit: int = MAX_KNOWN_ACCOUNTS) -> None:
        self._redis = redis
        self._limit = limit

    async def remember(self, scope_value: str, scope_id: str, linked_account_id: str) -> None:
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            self.remember_in(pipe, scope_value, scope_id, linked_account_id)
            await pipe.execute()

    def remember_in(self, pipe: Pipeline, scope_value: str, scope_id: str, linked_account_id: str) -> None:
        """Queue the write on `pipe`. The trim needs no transaction around it: whatever runs between
        the two commands, the trim still leaves the newest `limit`."""
        key = keys.linked_accounts(scope_value, scope_id)
        pipe.zadd(key, {linked_account_id: time.time()})
        pipe.zremrangebyrank(key, 0, -self._limit - 1)

    async def recent(self, scope_value: str, scope_id: str) -> list[str]:
        async with redis_errors():
            members = await self._redis.zrevrange(keys.linked_accounts(scope_value, scope_id), 0, -1)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    async def forget_all(self, scope_value: str, scope_id: str) -> None:
        async with redis_errors():
            await self._redis.delete(keys.linked_accounts(scope_value, scope_id))
