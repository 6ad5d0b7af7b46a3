"""A workspace's latest lookups, for its App Home: a capped list, newest first."""

from __future__ import annotations

from datetime import datetime

import redis.asyncio as aioredis
from pydantic import BaseModel, ValidationError
from redis.asyncio.client import Pipeline

from bot.store import keys
from bot.store.redis import redis_errors

KEEP = 50


class RecentLookup(BaseModel):
    execution_id: str
    name: str | None = None
    status: str | None = None
    user_id: str | None = None
    at: datetime


class RecentLookups:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def add(self, workspace: str, entry: RecentLookup) -> None:
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            self.add_in(pipe, workspace, entry)
            await pipe.execute()

    def add_in(self, pipe: Pipeline, workspace: str, entry: RecentLookup) -> None:
        """Queue the write on `pipe`, with the lookup's other writes."""
        key = keys.recent_lookups(workspace)
        pipe.lpush(key, entry.model_dump_json())
        pipe.ltrim(key, 0, KEEP - 1)

    async def latest(self, workspace: str, count: int = 10) -> list[RecentLookup]:
        """The newest `count` distinct executions, each as last looked up."""
        async with redis_errors():
            raws = await self._redis.lrange(keys.recent_lookups(workspace), 0, KEEP - 1)
        found: dict[str, RecentLookup] = {}
        for raw in raws:
            try:
                entry = RecentLookup.model_validate_json(raw)
            except ValidationError:
                continue
            found.setdefault(entry.execution_id, entry)
            if len(found) >= count:
                break
        return list(found.values())

    async def forget(self, workspace: str) -> None:
        async with redis_errors():
            await self._redis.delete(keys.recent_lookups(workspace))
