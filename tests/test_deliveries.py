"""What reached Slack already, and which of several jobs sends a shared answer, on a real Redis."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from bot.store.deliveries import Deliveries
from tests.harness import free_port


async def test_of_jobs_reaching_a_shared_answer_together_exactly_one_sends_it(redis_url: str) -> None:
    clients = [aioredis.from_url(redis_url) for _ in range(3)]
    name = f"follow-{uuid.uuid4().hex}"
    try:
        # Three processes' polls of one follow ask at the same moment.
        claims = await asyncio.gather(
            *(Deliveries(client).claim(name, "finished", f"poll-{n}") for n, client in enumerate(clients))
        )
        assert sorted(claims) == [False, False, True]
        winner = f"poll-{claims.index(True)}"
        deliveries = Deliveries(clients[0])
        # The winner's own re-run (its worker died before it sent) may still send; the others may not.
        assert await deliveries.claim(name, "finished", winner)
        assert [await deliveries.claim(name, "finished", f"poll-{n}") for n in range(3)] == [
            f"poll-{n}" == winner for n in range(3)
        ]
        # A different part, or another follow, is claimed afresh.
        assert await deliveries.claim(name, "gave-up", "poll-9")
        assert await deliveries.claim(f"{name}-other", "finished", "poll-9")
    finally:
        for client in clients:
            await client.aclose()


async def test_with_redis_away_a_claim_lets_the_job_send() -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    try:
        assert await Deliveries(client).claim("follow", "finished", "poll-1")
    finally:
        await client.aclose()
