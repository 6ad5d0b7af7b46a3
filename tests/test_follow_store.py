"""The follow store's sets on a real Redis: bounded by the live follows, whatever lapsed before."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.store import keys
from bot.store.crypto import Cipher
from bot.store.follows import FollowStore

TTL = 3600


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.from_url(redis_url)
    await redis.delete(keys.follows_of("T1"), keys.follows_live())
    yield redis
    await redis.aclose()


async def test_a_new_follow_takes_out_the_entries_of_follows_that_lapsed_without_ending(
    client: aioredis.Redis, bot_key: str
) -> None:
    store = FollowStore(client, Cipher([bot_key]))
    now = time.time()
    # A follow whose chain of polls was lost: its record lapsed, its entries stayed behind.
    await client.zadd(keys.follows_of("T1"), {"lapsed": now - TTL - 60})
    await client.zadd(keys.follows_live(), {"lapsed": now - 60})
    # One still running, started a while ago.
    assert await store.start("T1", "running", "g1", b"{}", TTL)
    await client.zadd(keys.follows_of("T1"), {"running": now - TTL / 2})

    assert await store.start("T1", "new", "g2", b"{}", TTL)

    assert {m.decode() for m in await client.zrange(keys.follows_of("T1"), 0, -1)} == {"running", "new"}
    assert {m.decode() for m in await client.zrange(keys.follows_live(), 0, -1)} == {"running", "new"}
    await store.stop("T1", "running")
    await store.stop("T1", "new")
    assert await client.exists(keys.follows_of("T1"), keys.follows_live()) == 0
