"""The end of a snooze of a route's alerts: one line in its channel saying how many alerts came while
it was on, and their runs in that line's thread (each with a button to its card)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from bot.jobs.kinds import JobBase, SnoozeEndJob
from bot.render import alerts as words
from bot.render import incident as incident_words
from bot.slack import web_api
from bot.slack.handlers.context import JobContext
from bot.slack.incident_view import at
from bot.slack.web_api import Delivery
from bot.store.errors import StoreUnavailable

log = logging.getLogger(__name__)


HELD_TITLE = "Held back"


async def end_on_success(
    ctx: JobContext,
    job: JobBase,
    route_id: str,
    workflow_id: str | None,
    workflow_name: str | None,
    account: str | None,
    success_of: str | None,
) -> None:
    """A run succeeded: an until-success snooze covering it ends (a Workflow Completed delivery, or a
    completed rerun of an incident's run)."""
    now = time.time()
    snooze = await ctx.alerts.snoozes.matching(route_id, workflow_id, workflow_name, account, now=now)
    if snooze is not None and snooze.until_success:
        channel = job.reply.channel_id or ""
        await ctx.scheduler.enqueue(
            SnoozeEndJob.ending(
                job.origin,
                route_id,
                channel,
                snooze.snooze_id,
                snooze.since,
                "success",
                success_of=success_of,
            )
        )


def _batch(
    ctx: JobContext, channel: str, thread: str, rows: list[incident_words.RunRow], first: int
) -> Callable[[], Awaitable[Delivery]]:
    async def send() -> Delivery:
        text = incident_words.batch_text(rows, first, HELD_TITLE)
        blocks = incident_words.batch_blocks(rows, first, HELD_TITLE)
        return await web_api.post(ctx.client, channel, text, blocks=blocks, thread_ts=thread)

    return send


async def run_snooze_end(ctx: JobContext, job: SnoozeEndJob) -> None:
    try:
        route = await ctx.alerts.routes.get(job.route_id)
        snooze = await ctx.alerts.snoozes.get(job.route_id, job.snooze_id) if route is not None else None
        # Gone (ended already), or snoozed again since: that snooze has its own end.
        if route is None or snooze is None or snooze.since != job.since:
            return
        if not await ctx.alerts.snoozes.claim_end(job.route_id, job.snooze_id, job.interaction):
            return
        held = await ctx.alerts.snoozes.held_runs(job.route_id, job.snooze_id)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)
    text = words.snooze_ended(
        snooze.kind, snooze.value, snooze.held, job.reason, job.ended_by, job.success_of
    )
    posted = await ctx.once("ended", lambda: web_api.post(ctx.client, route.channel_id, text))
    if not posted:
        log.warning("a snooze's end could not be posted (%s)", posted.error)
        ctx.retry_if_transient(posted)
    if posted.ts and held:
        rows = [incident_words.RunRow(run.execution_id, run.account, at(run.at)) for run in held]
        for first in range(0, len(rows), incident_words.RUNS_PER_BATCH):
            batch = rows[first : first + incident_words.RUNS_PER_BATCH]
            await ctx.once(f"held-{first}", _batch(ctx, route.channel_id, posted.ts, batch, first))
    try:
        await ctx.alerts.snoozes.forget(job.route_id, job.snooze_id)
    except StoreUnavailable:
        log.warning("an ended snooze could not be forgotten: Redis unavailable; it expires by itself")
    log.info("a snooze of %d held-back alerts ended (%s)", snooze.held, job.reason)
