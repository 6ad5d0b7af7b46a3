"""The Slack pacer holds Slack's budgets across processes (separate Redis clients) on a real Redis.

Counts are asserted against the budget, never against wall-time targets: scheduling jitter can only
make admissions look later, so an assertion fails only when more were admitted than the budget allows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pyrate_limiter import Duration, Rate
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.store.rate_lines import TurnTooLate
from bot.store.slack_pacer import Budget, SlackPacer
from tests.harness import max_in_window
from tests.redis_process import RedisProcess
from tests.test_ratelimit import served_order

WS = "a1b2c3d4"  # what the caller passes: a short hash of the bot token


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    pair = [aioredis.from_url(redis_url), aioredis.from_url(redis_url)]
    yield pair
    for client in pair:
        await client.aclose()


async def test_two_pacers_sharing_a_channel_never_pass_its_budget(clients: list[aioredis.Redis]) -> None:
    budget = {Budget.PER_CHANNEL: [Rate(10, Duration.SECOND, burst=2)]}
    pacers = [SlackPacer(c, budget) for c in clients]
    admitted: list[float] = []

    async def one(i: int) -> None:
        await pacers[i % 2].turn(WS, "chat.postMessage", "C0123ABCD")
        admitted.append(time.monotonic())

    await asyncio.gather(*(one(i) for i in range(18)))
    assert len(admitted) == 18
    assert max_in_window(admitted, 1.0) <= 10 + 2
    assert max_in_window(admitted, 0.02) <= 2


async def test_tiered_methods_share_one_budget_per_workspace_whatever_the_channel(
    clients: list[aioredis.Redis],
) -> None:
    budget = {Budget.TIER_3: [Rate(10, Duration.SECOND, burst=2)]}
    pacers = [SlackPacer(c, budget) for c in clients]
    admitted: list[float] = []

    async def one(i: int) -> None:
        await pacers[i % 2].turn(WS, "chat.update", f"C{i}")
        admitted.append(time.monotonic())

    await asyncio.gather(*(one(i) for i in range(14)))
    assert max_in_window(admitted, 1.0) <= 10 + 2
    assert max_in_window(admitted, 0.02) <= 2


async def test_a_turn_that_would_come_past_its_callers_deadline_is_refused_and_spends_nothing(
    clients: list[aioredis.Redis],
) -> None:
    budget = {Budget.TIER_3: [Rate(2, Duration.SECOND, burst=1)]}
    spender, patient = SlackPacer(clients[0], budget), SlackPacer(clients[1], budget)
    await spender.turn(WS, "chat.update", None)  # the burst is spent: the next turn is 0.5 s off
    with pytest.raises(TurnTooLate):
        await patient.turn(WS, "chat.update", None, deadline=time.monotonic() + 0.1)
    # Refused, not counted: the next caller's turn is still the one after the first.
    assert await patient.estimate(WS, "chat.update", None) <= 0.5
    await patient.turn(WS, "chat.update", None, deadline=time.monotonic() + 2)
    assert await spender.estimate(WS, "chat.update", None) > 0.1


async def test_a_caller_behind_a_long_wait_in_its_own_process_gives_up_at_its_deadline_not_after_it(
    clients: list[aioredis.Redis],
) -> None:
    pacer = SlackPacer(clients[0], {Budget.TIER_3: [Rate(2, Duration.SECOND, burst=1)]})
    await pacer.hold(WS, "chat.update", None, 3)  # as after a 429 with Retry-After 3
    first = asyncio.create_task(pacer.turn(WS, "chat.update", None))  # waits as long as it takes
    await asyncio.sleep(0.05)
    assert pacer.waiting(WS, "chat.update", None) == 1
    with pytest.raises(TurnTooLate):
        await pacer.turn(WS, "chat.update", None, deadline=time.monotonic() + 0.3)
    # Given up while the caller ahead still waited: not after that caller's turn came.
    assert not first.done()
    assert pacer.waiting(WS, "chat.update", None) == 1
    await first


async def test_different_channels_do_not_wait_on_each_other(clients: list[aioredis.Redis]) -> None:
    pacer = SlackPacer(clients[0], {Budget.PER_CHANNEL: [Rate(1, Duration.SECOND, burst=1)]})
    await pacer.turn(WS, "chat.postMessage", "C1")
    blocked = asyncio.create_task(pacer.turn(WS, "chat.postMessage", "C1"))
    await asyncio.sleep(0.05)
    assert pacer.waiting(WS, "chat.postMessage", "C1") == 1
    # C1 is spent for a second; C2 and another workspace's C1 go meanwhile.
    await asyncio.wait_for(pacer.turn(WS, "chat.postMessage", "C2"), timeout=0.5)
    await asyncio.wait_for(pacer.turn("e5f6a7b8", "chat.postMessage", "C1"), timeout=0.5)
    assert not blocked.done()
    blocked.cancel()
    await asyncio.gather(blocked, return_exceptions=True)
    assert pacer.waiting(WS, "chat.postMessage", "C1") == 0


async def test_a_hold_from_one_pacer_makes_the_other_wait_until_it_ends(
    clients: list[aioredis.Redis],
) -> None:
    holder, other = SlackPacer(clients[0]), SlackPacer(clients[1])
    before_hold = time.time()
    await holder.hold(WS, "chat.update", None, 0.6)
    await holder.hold(WS, "chat.update", None, 0.1)  # a shorter Retry-After does not shorten it
    assert await other.estimate(WS, "chat.update", None) > 0.3
    admitted: list[float] = []

    async def one() -> None:
        await other.turn(WS, "chat.update", "C1")
        admitted.append(time.time())

    tasks = [asyncio.create_task(one()) for _ in range(3)]
    # Another budget is not held.
    await asyncio.wait_for(other.turn(WS, "views.open", None), timeout=0.3)
    assert not admitted
    await asyncio.gather(*tasks)
    assert len(admitted) == 3
    assert min(admitted) >= before_hold + 0.6


async def test_a_burst_within_one_process_is_served_in_the_order_it_came(
    clients: list[aioredis.Redis],
) -> None:
    pacer = SlackPacer(clients[0], {Budget.PER_CHANNEL: [Rate(20, Duration.SECOND, burst=1)]})
    assert await served_order(lambda: pacer.turn(WS, "chat.postMessage", "C1"), 10) == list(range(10))


async def test_a_caller_can_see_how_long_a_call_would_wait(clients: list[aioredis.Redis]) -> None:
    pacer = SlackPacer(clients[0], {Budget.TIER_2: [Rate(2, Duration.SECOND, burst=1)]})
    assert await pacer.estimate(WS, "usergroups.list", None) == 0.0
    await pacer.turn(WS, "usergroups.list", None)
    assert 0.2 < await pacer.estimate(WS, "usergroups.list", None) <= 0.5
    waiting = [asyncio.create_task(pacer.turn(WS, "usergroups.list", None)) for _ in range(2)]
    await asyncio.sleep(0.05)
    assert pacer.waiting(WS, "usergroups.list", None) == 2
    # Two ahead, each half a second apart once the one turn of burst is spent.
    assert await pacer.estimate(WS, "usergroups.list", None) > 1.0
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_redis_stopped_lets_calls_through_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisProcess(tmp_path).start()
    client = aioredis.Redis(
        port=server.port, socket_connect_timeout=0.2, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    pacer = SlackPacer(client, {Budget.PER_CHANNEL: [Rate(1, Duration.SECOND, burst=1)]})
    try:
        await pacer.turn(WS, "chat.postMessage", "C1")
        server.kill()
        caplog.set_level(logging.INFO, logger="bot.store.rate_lines")
        started = time.monotonic()
        for _ in range(5):  # the budget allows one a second: these pass only because Redis is away
            await pacer.turn(WS, "chat.postMessage", "C1")
        await pacer.hold(WS, "chat.postMessage", "C1", 5)
        assert await pacer.estimate(WS, "chat.postMessage", "C1") == 0.0
        assert time.monotonic() - started < 3.0
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "Slack pacer unavailable" in warnings[0].getMessage()
        server.start()
        await pacer.turn(WS, "chat.postMessage", "C2")
        assert any("available again" in r.getMessage() for r in caplog.records)
    finally:
        await client.aclose()
        server.stop()


async def test_token_shaped_or_malformed_arguments_are_refused_without_quoting_them(
    clients: list[aioredis.Redis],
) -> None:
    pacer = SlackPacer(clients[0])
    token = "xoxb-1234-5678-abcdefgh"
    for workspace, channel in ((token, "C1"), (WS, token), ("has space", "C1"), (WS, "C1:x")):
        with pytest.raises(ValueError) as caught:
            await pacer.turn(workspace, "chat.postMessage", channel)
        assert token not in str(caught.value)
        assert workspace not in str(caught.value)
    with pytest.raises(ValueError):
        pacer.key(WS, "not a method", None)
    assert pacer.key(WS, "chat.update", "C1") == pacer.key(WS, "chat.update", None)
    assert pacer.key(WS, "chat.postMessage", "C1") != pacer.key(WS, "chat.postMessage", "C2")
    assert await clients[0].keys("*xox*") == []
