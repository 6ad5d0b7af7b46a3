"""The Refold rate limiter holds across processes (separate Redis clients) on a real Redis."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from bot.refold.errors import RefoldBusy
from bot.store.ratelimit import RefoldRateLimiter
from tests.harness import max_in_window


async def test_two_processes_never_exceed_20_per_second_or_5_at_once(redis_url: str) -> None:
    clients = [aioredis.from_url(redis_url), aioredis.from_url(redis_url)]
    limiters = [RefoldRateLimiter(c, max_wait_seconds=10) for c in clients]
    admitted: list[float] = []

    async def one(i: int) -> None:
        await limiters[i % 2].acquire("key-fingerprint")
        admitted.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(45)))
    elapsed = time.monotonic() - started
    assert len(admitted) == 45
    assert max_in_window(admitted, 1.0) <= 20
    assert max_in_window(admitted, 0.02) <= 5
    assert elapsed >= 2.0  # 42 beyond the burst at 12/s: the limiter really waited
    other = time.monotonic()
    await limiters[0].acquire("another-key")  # keys are independent
    assert time.monotonic() - other < 0.2
    for c in clients:
        await c.aclose()


async def test_too_long_a_wait_is_refused_politely(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RefoldRateLimiter(client, max_wait_seconds=0.1)
    results = await asyncio.gather(*(limiter.acquire("k") for _ in range(12)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, RefoldBusy)]
    assert 3 <= results.count(None) <= 5  # the burst, plus what fits in 0.1 s at 12/s
    assert len(refused) == 12 - results.count(None)
    assert all("busy" in str(r) for r in refused)
    await client.aclose()


async def test_redis_down_lets_requests_through() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.2)
    started = time.monotonic()
    await RefoldRateLimiter(client).acquire("k")
    assert time.monotonic() - started < 1.0
    await client.aclose()
