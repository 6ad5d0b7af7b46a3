"""A day's digest of a route's alerts, posted once in its channel: the next day's is scheduled first,
then the day's is claimed just before it goes to Slack, so a worker killed mid-send (or two workers
running the same job) never posts it twice."""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from typing import Any

from bot.jobs.kinds import DigestJob
from bot.jobs.queue import DIGEST_UPKEEP
from bot.render import digest as words
from bot.slack import web_api
from bot.slack.clients import claimed_on_send
from bot.slack.digest_jobs import schedule_digest
from bot.slack.digest_view import digest_facts
from bot.slack.follow_records import Scheduler
from bot.slack.handlers.context import JobContext
from bot.store.errors import StoreUnavailable
from bot.usecases.alerts import AlertService

log = logging.getLogger(__name__)


class SentElsewhere(Exception):
    """Another run of the day's job claimed the digest between our look and our send."""


async def keep_digests_scheduled(alerts: AlertService, scheduler: Scheduler, now: float) -> int:
    """Put back every digest's next job that is missing; how many were."""
    missing = 0
    for route, config, day in await alerts.digests.scheduled(now):
        if await schedule_digest(scheduler, route, config, day):
            missing += 1
    if missing:
        log.warning("%d daily digest(s) had no next job queued; queued again", missing)
    return missing


def upkeep_function(alerts: AlertService, scheduler: Scheduler) -> Any:
    """saq's cron function that keeps every digest's next job on the queue: a day's job schedules the
    next day's first, and this puts back one lost anyway (all its attempts met Redis away, say). Named
    as saq's cron names it; every worker and web process schedules it, saq runs it once a slot."""

    async def digest_upkeep(ctx: dict[str, Any]) -> None:
        try:
            await keep_digests_scheduled(alerts, scheduler, time.time())
        except StoreUnavailable:
            log.warning("the digests' upkeep could not run: Redis unavailable; it runs again soon")

    digest_upkeep.__qualname__ = DIGEST_UPKEEP
    return digest_upkeep


async def run_digest(ctx: JobContext, job: DigestJob) -> None:
    digests = ctx.alerts.digests
    day = date.fromisoformat(job.day)
    try:
        route = await ctx.alerts.routes.get(job.route_id)
        config = await digests.store.get(job.route_id) if route is not None else None
        # Turned off, or on again since (with jobs of its own), or its alerts turned off.
        if route is None or config is None or config.since != job.since:
            log.info("a digest's job finds its digest gone or changed; it stops")
            return
        await schedule_digest(ctx.scheduler, route, config, day + timedelta(days=1))
        state = await digests.store.send_state(route.route_id, job.day)
        if state != "free":
            if state == "sending":
                log.warning(
                    "the digest of %s was being sent by a run that stopped before Slack answered; "
                    "it is not sent again (Slack most likely has it)",
                    job.day,
                )
            return
        tallies = await digests.tallies(route, config, day)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)
    facts = digest_facts(route.channel_id, tallies)
    if words.is_quiet(facts) and config.quiet == "skip":
        log.info("a quiet day: no digest (quiet:skip)")
        return

    async def claim() -> None:
        if not await digests.store.claim_send(route.route_id, job.day):
            raise SentElsewhere
        log.info("sending the digest of %s", job.day)

    try:
        with claimed_on_send(claim):
            posted = await web_api.post(
                ctx.client, route.channel_id, words.digest_text(facts), blocks=words.digest_blocks(facts)
            )
    except SentElsewhere:
        return
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)
    try:
        if posted:
            await digests.store.sent(route.route_id, job.day, posted.ts or "")
        else:
            # Slack answered, and took nothing: a later attempt may send it.
            await digests.store.release_send(route.route_id, job.day)
    except StoreUnavailable:
        log.warning("a digest's sending could not be recorded: Redis unavailable")
    if not posted:
        log.warning("a digest could not be posted (%s)", posted.error)
        ctx.retry_if_transient(posted)
        return
    log.info("posted the digest of %s: %d runs errored", job.day, facts.errored.count)
