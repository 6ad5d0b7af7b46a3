"""The job queue's own cost, without Slack or Refold: `python bench/job_queue.py`.

Starts a redis-server on a free port, then measures
- CPU per enqueue in the web process (saq, sealed payload), against the old seal + LPUSH;
- CPU per job in a saq worker running 1,000 empty jobs (dequeue, mark active, finish);
- queue latency: enqueue to the job function starting, on an idle worker.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from saq import Worker  # noqa: E402

from bot.container import WORKER_TIMERS as TIMERS  # noqa: E402
from bot.jobs.kinds import LookupJob, Origin, ReplyTarget, Target  # noqa: E402
from bot.jobs.queue import RUN, JobQueue  # noqa: E402
from bot.slack.handlers.runner import keep_alive  # noqa: E402
from bot.store.crypto import Cipher  # noqa: E402
from tests.harness import free_port  # noqa: E402

JOBS = 1000


def job(i: int) -> LookupJob:
    return LookupJob(
        origin=Origin(team_id="T1", user_id="U1"),
        reply=ReplyTarget(
            response_url="https://hooks.slack.com/commands/T1/1/x", channel_id="C1", user_id="U1"
        ),
        interaction=f"i{i}",
        target=Target(execution_id="65410cf6cdf931a12d7ab009"),
    )


async def measure(url: str) -> None:
    cipher = Cipher([Fernet.generate_key().decode()])
    web = aioredis.from_url(url)
    queue = JobQueue(web, cipher)
    await queue.enqueue(job(-1))
    started = time.process_time()
    for i in range(JOBS):
        await queue.enqueue(job(i))
    print(f"enqueue (saq, sealed): {(time.process_time() - started):.3f} ms CPU per job")
    started = time.process_time()
    for i in range(JOBS):
        await web.lpush("old-queue", queue.seal(job(i)))
    print(f"old seal + LPUSH:      {(time.process_time() - started):.3f} ms CPU per job")

    worker_redis = aioredis.from_url(url)
    worker_queue = JobQueue(worker_redis, cipher)
    ran: dict[str, float] = {}
    all_done = asyncio.Event()

    async def run(ctx: dict, *, sealed: str) -> None:
        opened = worker_queue.open(sealed)
        ran[opened.interaction] = time.perf_counter()
        async with keep_alive(ctx["job"]):
            pass
        if len(ran) == JOBS + 1:
            all_done.set()

    worker = Worker(
        worker_queue.saq, functions=[(RUN, run)], concurrency=20, timers=TIMERS, dequeue_timeout=1
    )
    worker.SIGNALS = []
    cpu, wall = time.process_time(), time.monotonic()
    task = asyncio.create_task(worker.start())
    await all_done.wait()
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    print(
        f"saq worker:            {cpu / (JOBS + 1) * 1000:.3f} ms CPU per empty job, {(JOBS + 1) / wall:.0f} jobs/s"
    )

    latencies = []
    for i in range(50):
        key = f"lat{i}"
        sent = time.perf_counter()
        await queue.enqueue(job(0).model_copy(update={"interaction": key}))
        while key not in ran:  # noqa: ASYNC110 - a plain poll keeps the worker path unchanged
            await asyncio.sleep(0.0005)
        latencies.append((ran[key] - sent) * 1000)
        await asyncio.sleep(0.02)
    print(f"enqueue -> start:      p50 {statistics.median(latencies):.2f} ms, max {max(latencies):.2f} ms")
    worker.event.set()
    await task
    await web.aclose()
    await worker_redis.aclose()


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            asyncio.run(measure(f"redis://127.0.0.1:{port}/0"))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
