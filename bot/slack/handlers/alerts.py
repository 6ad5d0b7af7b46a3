"""Refold alerts in Slack: each delivery becomes a live card in its route's channel, storms are
gathered under one summary per minute, expiring connections get a short notice.

A card of a run that is still going is followed like any other (chat.update until it ends). Nothing is
posted twice: a delivery is accepted once (the webhook endpoint), and each part of its answer is
recorded as sent (`ctx.once`), so a job run again after its worker died repeats nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, datetime

from bot.jobs.kinds import AlertJob, ReplyTarget, StormSummaryJob, Target
from bot.refold.webhooks import WebhookEvent
from bot.render import alerts as words
from bot.render.blocks import Card, CardBudget, FollowMark
from bot.slack import web_api
from bot.slack.follow_records import derived_follow_id
from bot.slack.handlers.context import JobContext
from bot.slack.handlers.following import start_follow
from bot.slack.web_api import Delivery
from bot.store.alert_routes import AlertRoute
from bot.store.errors import StoreUnavailable
from bot.usecases.alerts import environment_wanted
from bot.usecases.lookup import LookupResult

log = logging.getLogger(__name__)

# The bot cannot post in the channel: its creator is told, once.
NOT_A_MEMBER = {"not_in_channel", "channel_not_found", "is_archived"}
SUMMARY_WAIT_SECONDS = 15.0
SUMMARY_POLL_SECONDS = 0.1
# A storm summary is brought up to date at most this often (one job per summary and slot).
SUMMARY_UPDATE_SECONDS = 3


async def run_alert(ctx: JobContext, job: AlertJob) -> None:
    route = await _route(ctx, job.route_id)
    if route is None:
        log.info("an alert's route is gone (turned off); nothing posted")
        return
    if job.event == WebhookEvent.CONNECTION_EXPIRED:
        text = words.connection_expired(job.app, job.linked_account_id, job.environment)
        posted = await ctx.once("notice", lambda: web_api.post(ctx.client, route.channel_id, text))
        await _check_posted(ctx, route, posted)
        return
    target = Target(execution_id=job.instance_id or "", linked_account_id=job.linked_account_id)
    # A transient failure, or a spent rate limit in a storm, is retried but on the last try.
    outcome = await ctx.fetch(target, patient=True)
    result = outcome.result
    if result is not None and not environment_wanted(route, result.execution.environment):
        log.info("alert for another environment than the route's; not posted")
        return
    workflow = (result.execution.name if result else None) or job.workflow_name or "an unnamed workflow"
    event_word = "completed" if job.event == WebhookEvent.WORKFLOW_COMPLETED else "errored"
    try:
        decision = await ctx.alerts.arrive(route, job.interaction, f"{event_word}\x1f{workflow}", time.time())
    except StoreUnavailable as exc:
        ctx.retry_unless_final(exc.kind.value)
        decision = None  # no storm bookkeeping: post the card on its own rather than not at all
    thread_ts: str | None = None
    if decision is not None and decision.role != "card":
        thread_ts = await _summary_thread(ctx, route, decision.role, decision.summary, decision.summary_ts)
    banner = words.alert_banner(job.event, job.linked_account_id)

    def render(budget: CardBudget) -> Card:
        if result is None:
            text = words.unfetched_alert(
                job.event, target.execution_id, job.workflow_name, job.linked_account_id, outcome.error or ""
            )
            return Card(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
        return ctx.card(result, shareable=False, budget=budget, banner=banner)

    posted = await ctx.once(
        "card", lambda: web_api.post_card(ctx.client, route.channel_id, thread_ts, render)
    )
    await _check_posted(ctx, route, posted)
    if thread_ts and decision is not None:
        await _schedule_summary_update(ctx, job, route, decision.summary)
    if posted and posted.ts and result is not None and not result.execution.is_terminal:
        await _follow(ctx, job, route, result, posted.ts, thread_ts)


async def _route(ctx: JobContext, route_id: str) -> AlertRoute | None:
    try:
        return await ctx.alerts.routes.get(route_id)
    except StoreUnavailable as exc:
        ctx.retry_unless_final(exc.kind.value)
        log.error("an alert was dropped: its route could not be read (Redis unavailable)")
        return None


async def _summary_thread(
    ctx: JobContext, route: AlertRoute, role: str, summary: str, summary_ts: str
) -> str | None:
    """The storm summary this alert's card goes under: posted by the alert that opened it, waited
    for by the others. None: there is no summary to post under (the card goes in the channel)."""
    if summary_ts:
        return summary_ts
    if role == "create":
        counts = await ctx.alerts.storm_counts(route, summary)
        text = words.storm_summary(counts, ctx.clock())
        posted = await web_api.post(ctx.client, route.channel_id, text)
        if posted and posted.ts:
            await ctx.alerts.summary_posted(route, summary, posted.ts)
            return posted.ts
        await _check_posted(ctx, route, posted)
        return None
    deadline = time.monotonic() + SUMMARY_WAIT_SECONDS
    while time.monotonic() < deadline:
        await asyncio.sleep(SUMMARY_POLL_SECONDS)
        ts, _ = await ctx.alerts.summary(route, summary)
        if ts:
            return ts
    log.warning(
        "a storm summary was not posted in %.0f s; the alert's card goes in the channel", SUMMARY_WAIT_SECONDS
    )
    return None


async def _schedule_summary_update(ctx: JobContext, job: AlertJob, route: AlertRoute, summary: str) -> None:
    """One update per summary and slot, however many alerts ask: the queue keeps one job per key."""
    slot = math.ceil(time.time() / SUMMARY_UPDATE_SECONDS) * SUMMARY_UPDATE_SECONDS
    update = StormSummaryJob(
        origin=job.origin,
        reply=job.reply,
        interaction=f"{route.route_id}:{summary}:{slot}",
        route_id=route.route_id,
        summary=summary,
    )
    try:
        await ctx.scheduler.enqueue(update, at=slot)
    except StoreUnavailable:
        log.warning("could not schedule a storm summary's update: Redis unavailable")


async def run_storm_summary(ctx: JobContext, job: StormSummaryJob) -> None:
    route = await _route(ctx, job.route_id)
    if route is None:
        return
    try:
        ts, started = await ctx.alerts.summary(route, job.summary)
        counts = await ctx.alerts.storm_counts(route, job.summary)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)
    if not ts or not counts:
        return
    text = words.storm_summary(counts, datetime.fromtimestamp(started or time.time(), UTC))
    updated = await web_api.update(ctx.client, route.channel_id, ts, text)
    if not updated:
        log.warning("a storm summary could not be updated (%s)", updated.error)
        ctx.retry_if_transient(updated)


async def _follow(
    ctx: JobContext, job: AlertJob, route: AlertRoute, result: LookupResult, ts: str, thread_ts: str | None
) -> None:
    """A run still going when its alert came: its card follows it to the end, like a Follow press."""
    follow_id = derived_follow_id("card", route.team_id or route.enterprise_id or "", route.channel_id, ts)
    card_at = ReplyTarget(channel_id=route.channel_id, message_ts=ts, thread_ts=thread_ts, ephemeral=False)
    state = await start_follow(ctx, follow_id, job.interaction, result, card_at, requester=None)
    if state is None:
        return
    card = ctx.card(
        result,
        shareable=False,
        follow=FollowMark(follow_id),
        banner=words.alert_banner(job.event, job.linked_account_id),
    )
    updated = await web_api.update(ctx.client, route.channel_id, ts, card.text, blocks=card.blocks)
    if not updated:
        log.info("an alert card could not show its Unfollow button (%s)", updated.error)


async def _check_posted(ctx: JobContext, route: AlertRoute, posted: Delivery) -> None:
    """A post that failed: retried if Slack was briefly away, else the route's creator told once."""
    if posted:
        return
    ctx.retry_if_transient(posted)
    if posted.error not in NOT_A_MEMBER:
        log.error("an alert could not be posted (%s)", posted.error or "unknown error")
        return
    log.warning("an alert could not be posted: the bot is not in the route's channel (%s)", posted.error)
    if not route.created_by:
        return
    try:
        first = await ctx.alerts.first_notice(route, "not-in-channel")
    except StoreUnavailable:
        first = True
    if first:
        said = await web_api.direct_message(
            ctx.client, route.created_by, words.not_in_channel(route.channel_id)
        )
        if not said:
            log.error("could not tell a route's creator by direct message (%s)", said.error)
