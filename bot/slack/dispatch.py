"""Slow work after an ack: queued for a worker when one is alive, otherwise run here.

With a worker, the web process's event loop only acks and enqueues. Without one, or when Redis
fails, the web process runs the same handler itself, so a deployment without workers works the same.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Protocol

from bot.jobs.kinds import AnyJob
from bot.jobs.queue import JobQueue
from bot.store.errors import StoreUnavailable
from bot.tasks import BackgroundTasks

log = logging.getLogger(__name__)


class RunHere(Protocol):
    """Runs a job in this process (the handlers' runner, given by the container): listeners never
    import the handlers."""

    def __call__(self, job: AnyJob, *, queued: bool) -> Awaitable[bool]: ...


class Dispatcher:
    def __init__(self, queue: JobQueue | None, run_here: RunHere, tasks: BackgroundTasks) -> None:
        self._queue = queue
        self._run_here = run_here
        self._tasks = tasks

    def submit(self, job: AnyJob) -> None:
        """Never blocks the listener: the decision and the work happen in a tracked task."""
        self._tasks.spawn(self._submit(job), job.kind)

    async def _submit(self, job: AnyJob) -> None:
        if self._queue is not None:
            try:
                if await self._queue.worker_alive():
                    if not await self._queue.enqueue(job):
                        log.info("%s job for this interaction is already queued", job.kind)
                    return
            except StoreUnavailable:
                log.warning("job queue unavailable; running %s here", job.kind)
        await self._run_here(job, queued=False)
