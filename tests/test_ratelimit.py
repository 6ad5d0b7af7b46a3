"""The Refold rate limiter holds across processes (separate Redis clients) on a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from pyrate_limiter import Duration, Rate

from bot.refold.errors import RefoldBusy
from bot.refold.place import Place, watch_place
from bot.store.ratelimit import RefoldRateLimiter
from tests.harness import free_port, max_in_window


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


async def test_a_wait_that_would_pass_the_limit_is_refused_at_once(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    # 2 a second, no burst to speak of, 1.2 s at most: the first three fit, the rest cannot.
    limiter = RefoldRateLimiter(client, rates=[Rate(2, Duration.SECOND, burst=1)], max_wait_seconds=1.2)
    refused_at: list[float] = []
    started = time.monotonic()

    async def one() -> float | RefoldBusy:
        try:
            return await limiter.acquire("k")
        except RefoldBusy as exc:
            refused_at.append(time.monotonic() - started)
            return exc

    results = await asyncio.gather(*(one() for _ in range(6)))
    assert [isinstance(r, float) for r in results] == [True, True, True, False, False, False]
    assert max(refused_at) < 0.3  # told at once, not after waiting out the limit
    assert all("busy" in str(r) for r in results if isinstance(r, RefoldBusy))
    assert limiter.waiting("k") == 0
    await client.aclose()


async def test_a_burst_beyond_the_budget_is_served_in_the_order_it_came(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RefoldRateLimiter(client, rates=[Rate(10, Duration.SECOND, burst=1)], max_wait_seconds=10)
    assert await served_order(lambda: limiter.acquire("k"), 12) == list(range(12))
    await client.aclose()


async def served_order(call: Callable[[], Awaitable[object]], n: int) -> list[int]:
    """Start `n` calls one after another, each waiting before the next starts; the order they ended."""
    granted: list[int] = []

    async def one(i: int) -> None:
        await call()
        granted.append(i)

    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return granted


async def test_a_waiting_request_knows_how_many_are_ahead_of_it(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RefoldRateLimiter(client, rates=[Rate(2, Duration.SECOND, burst=1)], max_wait_seconds=10)
    places: list[Place] = []
    tasks = []
    for _ in range(5):
        with watch_place() as place:
            places.append(place)
            tasks.append(asyncio.create_task(limiter.acquire("k")))
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    # The first was granted at once; the second is at the head, waiting for the bucket to refill.
    assert [p.ahead for p in places] == [None, 0, 1, 2, 3]
    assert [p.with_refold for p in places] == [True, False, False, False, False]
    assert limiter.waiting("k") == 4
    await asyncio.sleep(0.5)
    assert [p.ahead for p in places] == [None, None, 0, 1, 2]
    assert [p.with_refold for p in places] == [True, True, False, False, False]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert limiter.waiting("k") == 0
    await client.aclose()


async def test_redis_down_lets_requests_through() -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    started = time.monotonic()
    await RefoldRateLimiter(client).acquire("k")
    assert time.monotonic() - started < 1.0
    await client.aclose()


class RecordingGate:
    """A rate limiter stand-in whose turns were granted `ages` seconds ago, in order."""

    def __init__(self, *ages: float) -> None:
        self._ages = list(ages)
        self.asked = 0
        self.again: list[bool] = []

    async def acquire(self, key: str, *, again: bool = False) -> float:
        self.asked += 1
        self.again.append(again)
        return time.monotonic() - self._ages.pop(0)


async def test_a_turn_that_went_stale_before_sending_is_asked_again(refold) -> None:
    import httpx
    from pydantic import SecretStr

    from bot.refold.client import RefoldClient, RetryPolicy
    from bot.refold.credentials import AuthKind, RefoldCredentials
    from tests.fakes.refold import errored_doc
    from tests.harness import EXEC_ID

    refold.api_keys.add("tk_gate_key")
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    creds = RefoldCredentials(refold.url, AuthKind.API_KEY, SecretStr("tk_gate_key"), "acme")
    async with httpx.AsyncClient() as http:
        # Granted 0.3 s ago (the process stalled since): asked again, then sent on the fresh turn.
        stalled = RecordingGate(0.3, 0.0)
        await RefoldClient(http, RetryPolicy(attempts=1), stalled).get_execution(creds, EXEC_ID)
        fresh = RecordingGate(0.0)
        await RefoldClient(http, RetryPolicy(attempts=1), fresh).get_execution(creds, EXEC_ID)
    assert (stalled.asked, fresh.asked) == (2, 1)
    assert stalled.again == [False, True]  # asked again at the head of the line, not its back
    assert refold.count("get") == 2  # each lookup sent once


def test_after_warm_up_the_first_request_imports_nothing(refold) -> None:
    """The first request of a process used to block its event loop for ~50 ms on lazy imports, after
    the rate limiter had granted its turn: under a burst, the first requests then left bunched."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = f"""
import asyncio, sys
from bot.refold.client import make_http_client, warm_up
async def main():
    http = make_http_client(5)
    await warm_up(http)
    before = set(sys.modules)
    await http.get("{refold.url}/api/v2/public/execution/{"a" * 24}")
    print(sorted(set(sys.modules) - before))
    await http.aclose()
asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


async def test_redis_down_is_said_once_per_outage_not_per_request(caplog) -> None:
    import logging

    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client = aioredis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    limiter = RefoldRateLimiter(client)
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        await limiter.acquire("k")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "rate limiter unavailable (ConnectionError); sending without it"
    ]
    await client.aclose()
