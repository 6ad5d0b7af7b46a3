"""`python -m bot worker`: saq's worker over the bot's job queue.

Web processes enqueue typed, sealed jobs; this process opens each one and runs its handler, the same
function a web process runs when no worker is alive. SIGTERM first takes this worker off the list of
live workers (so web processes stop queueing for it), keeps taking jobs for the moment they need to
notice, then stops taking jobs and lets the running ones finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from saq import Job, Worker

from bot.container import Container, build_container
from bot.jobs.queue import ALIVE_CHECK_SECONDS, PULSE_SECONDS, RUN, UnreadableJob
from bot.settings import Settings
from bot.slack.jobs import RetryLater

log = logging.getLogger(__name__)

CONCURRENCY = 20  # each slot holds one Redis connection while it waits for a job
REDIS_CONNECTIONS = 100
DRAIN_SECONDS = 10
# saq's upkeep: how often it promotes scheduled jobs, reports this worker alive, and sweeps jobs of
# dead workers. Live workers are reported with a TTL of worker_info + 1 s.
TIMERS = {"schedule": 1, "worker_info": 2, "sweep": 1, "abort": 1}


@contextlib.asynccontextmanager
async def keep_alive(job: Job) -> AsyncIterator[None]:
    """Touch the running job through saq's heartbeat; a job whose worker died stops being touched.

    The pulse is asked to stop rather than cancelled, so no Redis command is ever cut off halfway.
    """
    done = asyncio.Event()

    async def pulse() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), PULSE_SECONDS)
                return
            try:
                await job.update()
            except Exception as exc:  # a missed touch only matters if every touch fails
                log.warning("could not touch a running job: %s", type(exc).__name__)

    task = asyncio.create_task(pulse())
    try:
        yield
    finally:
        done.set()
        await task


def make_job_function(container: Container) -> Any:
    async def run(ctx: dict[str, Any], *, sealed: str) -> None:
        saq_job: Job = ctx["job"]
        try:
            job = container.jobs.open(sealed)
        except UnreadableJob as exc:
            log.error("a queued job could not be opened (%s); dropped", exc)
            return
        async with keep_alive(saq_job):
            try:
                await container.runner.run(job, queued=True, final_attempt=not saq_job.retryable)
            except RetryLater as exc:
                log.warning("%s job met a transient failure (%s); it will be retried", job.kind, exc)
                raise

    return run


async def run_worker(settings: Settings) -> int:
    container = build_container(settings, redis_connections=REDIS_CONNECTIONS)
    queue = container.jobs.saq
    worker = Worker(
        queue,
        functions=[(RUN, make_job_function(container))],
        concurrency=CONCURRENCY,
        timers=TIMERS,  # type: ignore[arg-type]
        dequeue_timeout=min(1.0, settings.redis_timeout_seconds / 2),
        shutdown_grace_period_s=DRAIN_SECONDS,
    )
    # This process handles SIGTERM itself (below) instead of saq's immediate stop.
    worker.SIGNALS = []
    loop = asyncio.get_running_loop()

    async def retire() -> None:
        # Off saq's list of live workers: web processes run new work themselves from their next check.
        with contextlib.suppress(Exception):
            await queue.redis.zrem(queue.namespace("stats"), queue.namespace(f"worker_info:{worker.id}"))
            await queue.redis.delete(queue.namespace(f"worker_info:{worker.id}"))

    async def retire_then_stop() -> None:
        log.info("worker %s stopping: leaving the live list, then finishing running jobs", worker.id)
        await retire()
        await asyncio.sleep(ALIVE_CHECK_SECONDS + 0.5)
        worker.event.set()
        await retire()  # saq's upkeep may have reported in once more meanwhile

    stopping: list[asyncio.Task[None]] = []

    def on_signal() -> None:
        if not stopping:
            stopping.append(asyncio.create_task(retire_then_stop()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await container.start()
    log.info("worker %s taking jobs (concurrency %d)", worker.id, CONCURRENCY)
    try:
        await worker.start()
    finally:
        await container.aclose(2.0)
    return 0
