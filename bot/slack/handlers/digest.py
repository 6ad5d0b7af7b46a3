"""A day's digest of a route's alerts, posted once in its channel: the next day's is scheduled first,
then the day's is claimed just before it goes to Slack, so a worker killed mid-send (or two workers
running the same job) never posts it twice."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from bot.jobs.kinds import DigestJob
from bot.render import digest as words
from bot.slack import web_api
from bot.slack.clients import claimed_on_send
from bot.slack.digest_view import digest_facts
from bot.slack.handlers.context import JobContext
from bot.store.alert_routes import AlertRoute
from bot.store.digests import DigestConfig
from bot.store.errors import StoreUnavailable
from bot.usecases.digest import occurrence

log = logging.getLogger(__name__)


class SentElsewhere(Exception):
    """Another run of the day's job claimed the digest between our look and our send."""


async def schedule_digest(
    ctx: JobContext, job: DigestJob | None, route: AlertRoute, config: DigestConfig, day: date
) -> None:
    """Queue `day`'s digest at its local time (once: the job's key is the route, digest and day)."""
    origin = job.origin if job is not None else ctx.origin
    await ctx.scheduler.enqueue(
        DigestJob.for_day(origin, route.route_id, route.channel_id, config.since, day.isoformat()),
        at=occurrence(day, config.at, config.zone),
    )


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
        await schedule_digest(ctx, job, route, config, day + timedelta(days=1))
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
