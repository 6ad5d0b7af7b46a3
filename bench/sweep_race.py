"""How often saq's sweep runs a job twice, with the bot's queue and with saq's own:
`python bench/sweep_race.py [seconds]`.

A worker takes a job (moves it to the active list), then marks it active; saq's sweep, every second
here as in the bot, puts back any job in the active list not marked active, so one landing between
the two steps runs a live job a second time. This starts a redis-server on a free port, runs a saq
worker (concurrency 50, the bot's timers) on each queue in turn while a steady stream of short jobs
(10 ms each) goes through, and counts the jobs that ran more than once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402
from saq import Job, Worker  # noqa: E402
from saq.queue.redis import RedisQueue  # noqa: E402

from bot.container import WORKER_TIMERS as TIMERS  # noqa: E402
from bot.jobs.queue import BotQueue  # noqa: E402
from tests.harness import free_port  # noqa: E402

RATE = 1000  # jobs a second


async def run_through(queue: RedisQueue, seconds: float) -> tuple[int, int]:
    runs: collections.Counter[str] = collections.Counter()
    all_ran = asyncio.Event()
    total = [0]  # known once the stream ends

    async def short(ctx: dict[str, Any], *, n: int) -> None:
        runs[str(n)] += 1
        if total[0] and len(runs) >= total[0]:
            all_ran.set()
        await asyncio.sleep(0.01)

    worker = Worker(queue, functions=[("short", short)], concurrency=50, timers=TIMERS)  # type: ignore[arg-type,type-var]
    task = asyncio.create_task(worker.start())
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        await asyncio.gather(
            *(queue.enqueue(Job("short", kwargs={"n": sent + i}, retries=3)) for i in range(50))
        )
        sent += 50
        await asyncio.sleep(max(0.0, started + sent / RATE - time.monotonic()))
    total[0] = sent
    if len(runs) < sent:
        await asyncio.wait_for(all_ran.wait(), timeout=30)
    await asyncio.sleep(3)  # a swept job runs again after its retry delay
    await worker.stop()
    task.cancel()
    return sent, sum(1 for count in runs.values() if count > 1)


async def measure(url: str, seconds: float) -> None:
    logging.getLogger("saq").setLevel(logging.ERROR)  # its shutdown notes about the last sleeping jobs
    redis = aioredis.from_url(url)
    for label, queue in (
        ("saq's RedisQueue", RedisQueue(redis, name="stock")),
        ("the bot's BotQueue", BotQueue(redis, "bot")),
    ):
        sent, twice = await run_through(queue, seconds)
        print(f"{label:20} {sent} jobs in {seconds:.0f} s: {twice} ran twice")
    await redis.aclose()


def main(seconds: float) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--dir", data],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)
            asyncio.run(measure(f"redis://127.0.0.1:{port}/0", seconds))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0)
