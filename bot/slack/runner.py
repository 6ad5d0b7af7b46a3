"""Runs one job: finds the Slack client for its workspace, then its handler. Web and worker alike."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from bot.jobs.kinds import AnyJob
from bot.logs import bind_request
from bot.render.errors import describe
from bot.slack.clients import SlackClients
from bot.slack.jobs import JobContext, RetryLater, handle
from bot.slack.reply import Reply
from bot.store.deliveries import Deliveries
from bot.store.errors import StoreUnavailable
from bot.usecases.lookup import ExecutionLookup

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
        clock: Callable[[], datetime] = utc_now,
        dashboard_url: str | None = None,
    ) -> None:
        self._lookup = lookup
        self._http = http
        self._clients = clients
        self._deliveries = deliveries
        self._clock = clock
        self._dashboard_url = dashboard_url

    async def run(self, job: AnyJob, *, queued: bool, final_attempt: bool = True) -> None:
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
            return
        if client is None:
            log.error("no installation for a %s job's workspace; dropped", job.kind)
            return
        context = JobContext(
            lookup=self._lookup,
            workspace=job.origin.workspace,
            reply=Reply(self._http, client, job.reply),
            client=client,
            clock=self._clock,
            interaction=job.interaction,
            deliveries=self._deliveries if queued else None,
            final_attempt=final_attempt,
            dashboard_url=self._dashboard_url,
        )
        await handle(context, job)
