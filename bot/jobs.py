"""A Redis job queue between the web process (acks) and worker processes (lookups and cards).

At least once: a worker moves a job to its own processing list while it runs it, and a worker that
starts puts back what a dead worker left there. Jobs carry interaction payloads (message text,
response_url), so they are encrypted like everything else the bot keeps. Nothing here knows about Slack.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from bot.store.crypto import Cipher, InvalidToken
from bot.store.redis import NAMESPACE, redis_errors

log = logging.getLogger(__name__)

QUEUE = f"{NAMESPACE}:jobs"
PROCESSING = f"{NAMESPACE}:jobs:processing"
HEARTBEAT = f"{NAMESPACE}:worker"
HEARTBEAT_SECONDS = 5
ALIVE_CHECK_SECONDS = 1.0


class JobQueue:
    def __init__(self, redis: aioredis.Redis, cipher: Cipher) -> None:
        self._redis = redis
        self._cipher = cipher
        self._alive_until = 0.0
        self._alive_checked_at = 0.0

    # --- web side --------------------------------------------------------------

    async def worker_alive(self) -> bool:
        """Is any worker beating? Asked at most once a second, so dispatch stays one Redis call."""
        now = time.monotonic()
        if now - self._alive_checked_at >= ALIVE_CHECK_SECONDS:
            self._alive_checked_at = now
            async with redis_errors():
                alive = bool(await self._redis.exists(f"{HEARTBEAT}s"))
            self._alive_until = now + ALIVE_CHECK_SECONDS if alive else 0.0
        return now < self._alive_until

    async def enqueue(self, job: dict[str, Any]) -> None:
        async with redis_errors():
            await self._redis.lpush(QUEUE, self._cipher.encrypt(json.dumps(job).encode()))

    # --- worker side -----------------------------------------------------------

    def new_worker_id(self) -> str:
        return uuid.uuid4().hex[:12]

    async def beat(self, worker_id: str) -> None:
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{HEARTBEAT}s", worker_id, ex=HEARTBEAT_SECONDS)
            pipe.set(f"{HEARTBEAT}:{worker_id}", b"1", ex=HEARTBEAT_SECONDS)
            await pipe.execute()

    async def retire(self, worker_id: str) -> None:
        """A worker that stops cleanly says so at once, so web processes stop queueing for it."""
        async with redis_errors():
            await self._redis.delete(f"{HEARTBEAT}:{worker_id}")
            if await self._redis.get(f"{HEARTBEAT}s") == worker_id.encode():
                await self._redis.delete(f"{HEARTBEAT}s")

    async def take(self, worker_id: str, wait_seconds: float) -> bytes | None:
        async with redis_errors():
            return await self._redis.blmove(QUEUE, f"{PROCESSING}:{worker_id}", wait_seconds, "RIGHT", "LEFT")

    def open(self, raw: bytes) -> dict[str, Any] | None:
        """The job inside a queued entry, or None if it cannot be read (another key, or corrupt)."""
        try:
            return json.loads(self._cipher.decrypt(raw))
        except (InvalidToken, ValueError):
            log.error("a queued job could not be read; dropped")
            return None

    async def done(self, worker_id: str, raw: bytes) -> None:
        async with redis_errors():
            await self._redis.lrem(f"{PROCESSING}:{worker_id}", 1, raw)

    async def requeue_orphans(self) -> int:
        """Put back the jobs of workers whose heartbeat has stopped (they died mid-job)."""
        moved = 0
        async with redis_errors():
            async for key in self._redis.scan_iter(match=f"{PROCESSING}:*", count=100):
                owner = key.decode().rsplit(":", 1)[1]
                if await self._redis.exists(f"{HEARTBEAT}:{owner}"):
                    continue
                while await self._redis.lmove(key, QUEUE, "RIGHT", "LEFT") is not None:
                    moved += 1
        if moved:
            log.warning("requeued %d jobs left by a stopped worker", moved)
        return moved
