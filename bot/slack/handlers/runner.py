"""Runs one job: finds the Slack client for its workspace, then its handler. Web and worker alike."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from saq import Job

from bot import metrics
from bot.jobs.kinds import AnyJob
from bot.jobs.queue import PULSE_SECONDS, JobQueue, UnreadableJob
from bot.logs import bind_request
from bot.render.errors import describe
from bot.slack.clients import SlackClients
from bot.slack.follow_records import FollowKit, Scheduler
from bot.slack.handlers.by_kind import handle
from bot.slack.handlers.context import JobContext, RetryLater
from bot.slack.reply import Reply
from bot.store.deliveries import Deliveries
from bot.store.errors import StoreUnavailable
from bot.usecases.actions import ExecutionActions
from bot.usecases.alerts import AlertService
from bot.usecases.lookup import ExecutionLookup
from bot.usecases.search import ExecutionSearch

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobRunner:
    def __init__(
        self,
        lookup: ExecutionLookup,
        http: httpx.AsyncClient,
        clients: SlackClients,
        deliveries: Deliveries,
        follows: FollowKit,
        actions: ExecutionActions,
        alerts: AlertService,
        search: ExecutionSearch,
        scheduler: Scheduler,
        clock: Callable[[], datetime] = utc_now,
        dashboard_url: str | None = None,
    ) -> None:
        self._alerts = alerts
        self._search = search
        self._scheduler = scheduler
        self._follows = follows
        self._actions = actions
        self._lookup = lookup
        self._http = http
        self._clients = clients
        self._deliveries = deliveries
        self._clock = clock
        self._dashboard_url = dashboard_url

    async def run(
        self, job: AnyJob, *, queued: bool, final_attempt: bool = True, first_attempt: bool = True
    ) -> bool:
        """Run the job's handler. False when it could not: no installation for its workspace, or
        Redis failing on its last attempt (the person who asked, if someone did, is told why)."""
        bind_request(job.origin.team_id or job.origin.enterprise_id)
        try:
            client = await self._clients.for_origin(job.origin)
        except StoreUnavailable as exc:
            if not final_attempt:
                raise RetryLater(exc.kind.value) from None
            log.warning("no Slack client for a %s job: Redis unavailable", job.kind)
            await Reply(self._http, self._clients.default, job.reply).send(
                response_type="ephemeral", replace_original=False, text=describe(exc)
            )
            return False
        if client is None:
            log.error("no installation for a %s job's workspace; dropped", job.kind)
            return False
        context = JobContext(
            lookup=self._lookup,
            origin=job.origin,
            reply=Reply(self._http, client, job.reply),
            client=client,
            clock=self._clock,
            interaction=job.interaction,
            deliveries=self._deliveries if queued else None,
            final_attempt=final_attempt,
            first_attempt=first_attempt,
            http=self._http,
            follows=self._follows,
            actions=self._actions,
            alerts=self._alerts,
            search=self._search,
            scheduler=self._scheduler,
            dashboard_url=self._dashboard_url,
        )
        try:
            await handle(context, job)
        except StoreUnavailable as exc:
            if not final_attempt:
                raise RetryLater(exc.kind.value) from None
            # Out of attempts (a job run in the web process, while the queue is away, has one).
            log.warning("%s job gave up: %s", job.kind, exc)
            if job.reply.response_url:  # someone just asked; polls and alerts have nobody waiting
                await context.reply.send(
                    response_type="ephemeral", replace_original=False, text=describe(exc)
                )
            return False
        return True


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


def job_function(queue: JobQueue, runner: JobRunner) -> Any:
    """saq's one job function: open the sealed job and run it, touching it while it runs."""

    async def run(ctx: dict[str, Any], *, sealed: str) -> None:
        saq_job: Job = ctx["job"]
        try:
            job = queue.open(sealed)
        except UnreadableJob as exc:
            log.error("a queued job could not be opened (%s); dropped", exc)
            return
        async with keep_alive(saq_job):
            result = "interrupted"  # cancelled: the worker is stopping, or saq's timeout struck
            try:
                with metrics.timed(metrics.JOB_SECONDS, job.kind):
                    finished = await runner.run(
                        job,
                        queued=True,
                        final_attempt=not saq_job.retryable,
                        first_attempt=saq_job.attempts <= 1,
                    )
                result = "ok" if finished else "failed"
            except RetryLater as exc:
                log.warning("%s job met a transient failure (%s); it will be retried", job.kind, exc)
                result = "retry" if saq_job.retryable else "failed"
                raise
            except Exception:
                # Logged here, with the job's kind; saq's own line about it is shortened (bot.logs).
                log.exception("%s job failed", job.kind)
                result = "retry" if saq_job.retryable else "failed"
                raise
            finally:
                metrics.JOBS.labels(job.kind, result).inc()

    return run
