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

from bot.container import build_container
from bot.jobs.queue import ALIVE_CHECK_SECONDS
from bot.scrape_endpoint import serve_metrics_port
from bot.settings import Settings

log = logging.getLogger(__name__)

CONCURRENCY = 50  # each slot holds one Redis connection while it waits for a job
REDIS_CONNECTIONS = 150
DRAIN_SECONDS = 10


async def run_worker(settings: Settings) -> int:
    container = build_container(settings, redis_connections=REDIS_CONNECTIONS)
    queue = container.jobs.saq
    worker = container.saq_worker(CONCURRENCY, drain_seconds=DRAIN_SECONDS)
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
    metrics_stop = asyncio.Event()
    serving_metrics = (
        asyncio.create_task(serve_metrics_port(container, settings.metrics_port, metrics_stop))
        if settings.metrics_port and settings.metrics_token
        else None
    )
    log.info("worker %s taking jobs (concurrency %d)", worker.id, CONCURRENCY)
    try:
        await worker.start()
    finally:
        metrics_stop.set()
        if serving_metrics is not None:
            await serving_metrics
        await container.aclose(2.0)
    return 0
