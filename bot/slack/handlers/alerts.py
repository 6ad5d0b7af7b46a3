"""Refold alerts in Slack: each delivery becomes a live card in its route's channel, failures of one
cause are gathered under one incident message, expiring connections get a short notice.

A card of a run that is still going is followed like any other (chat.update until it ends). Nothing is
posted twice: a delivery is accepted once (the webhook endpoint), and each part of its answer is
recorded as sent (`ctx.once`), so a job run again after its worker died repeats nothing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, assert_never

from bot.jobs.kinds import AlertJob, IncidentUpdateJob, ReplyTarget, Target
from bot.refold.causes import cause_of
from bot.refold.webhooks import WebhookEvent
from bot.render import alerts as words
from bot.render.alerts import QUIET_AFTER_SECONDS
from bot.render.blocks import Card, CardBudget, FollowMark
from bot.slack import web_api
from bot.slack.follow_records import derived_follow_id
from bot.slack.handlers.context import JobContext
from bot.slack.handlers.following import start_follow
from bot.slack.incident_view import at, incident_facts
from bot.slack.web_api import Delivery
from bot.store.alert_routes import AlertRoute
from bot.store.errors import StoreUnavailable
from bot.store.incidents import RESOLVE_SECONDS, Arrival
from bot.usecases.alerts import environment_wanted
from bot.usecases.lookup import LookupResult

log = logging.getLogger(__name__)

# The bot cannot post in the channel: its creator is told, once.
NOT_A_MEMBER = {"not_in_channel", "channel_not_found", "is_archived"}
# An incident's message is edited at most this often (one job per incident and slot).
INCIDENT_UPDATE_SECONDS = 10
# A failure whose incident message is not posted yet looks again this often, this many times.
INCIDENT_WAIT_SECONDS = 2.0
INCIDENT_WAITS = 30
# A quiet incident's message is brought up to date this often until it is resolved.
QUIET_REVIEW_SECONDS = 5 * 60


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
    banner = words.alert_banner(job.event, job.linked_account_id)

    def render(budget: CardBudget) -> Card:
        if result is None:
            text = words.unfetched_alert(
                job.event, target.execution_id, job.workflow_name, job.linked_account_id, outcome.error or ""
            )
            return Card(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
        return ctx.card(result, shareable=False, budget=budget, banner=banner)

    if job.event == WebhookEvent.WORKFLOW_ERRORED and result is not None:
        cause = cause_of(result.execution, workflow_id=job.workflow_id, workflow_name=job.workflow_name)
        try:
            arrival = await ctx.alerts.arrive_failure(
                route,
                cause,
                job.arrival or job.interaction,
                target.execution_id,
                job.linked_account_id,
                time.time(),
            )
        except StoreUnavailable as exc:
            ctx.retry_unless_final(exc.kind.value)
            arrival = None  # no incident bookkeeping: post the card on its own rather than not at all
        if arrival is not None:
            await _failure(ctx, job, route, cause.key, arrival, render)
            return
    posted = await ctx.once("card", lambda: web_api.post_card(ctx.client, route.channel_id, None, render))
    await _check_posted(ctx, route, posted)
    if job.event == WebhookEvent.WORKFLOW_COMPLETED:
        await _recover(ctx, job, route)
    if posted and posted.ts and result is not None and not result.execution.is_terminal:
        await _follow(ctx, job, route, result, posted.ts, None)


async def _recover(ctx: JobContext, job: AlertJob, route: AlertRoute) -> None:
    """A completed run of an account an incident hit: that incident is recovering."""
    workflow = job.workflow_id or job.workflow_name
    if not workflow or not job.linked_account_id:
        return
    try:
        causes = await ctx.alerts.succeeded(route, workflow, job.linked_account_id, time.time())
    except StoreUnavailable:
        log.warning("a completed run could not count towards its incidents' recovery: Redis unavailable")
        return
    for cause in causes:
        await _schedule_incident_update(ctx, job, route, cause)


async def _failure(
    ctx: JobContext,
    job: AlertJob,
    route: AlertRoute,
    cause: str,
    arrival: Arrival,
    render: Callable[[CardBudget], Card],
) -> None:
    """A failed run: its own card when its cause is new here, else a card in its incident's thread."""
    match arrival.role:
        case "card":
            posted = await ctx.once(
                "card", lambda: web_api.post_card(ctx.client, route.channel_id, None, render)
            )
            await _check_posted(ctx, route, posted)
            if posted:
                # A run of this job after its worker died finds the card posted (no ts here), and
                # its claim, if it had made one, still its own.
                await _open_if_mine(ctx, job, route, cause, arrival, posted.ts or "")
            return
        case "open" | "join":
            if not arrival.card_ts:
                # The cause's first card is still being posted: its message is the thread to join.
                if await _wait_for_incident(ctx, job):
                    return
                posted = await ctx.once(
                    "card", lambda: web_api.post_card(ctx.client, route.channel_id, None, render)
                )
                await _check_posted(ctx, route, posted)
                return
            if arrival.role == "open":
                await _open_if_mine(ctx, job, route, cause, arrival, "")
            posted = await ctx.once(
                "card", lambda: web_api.post_card(ctx.client, route.channel_id, arrival.card_ts, render)
            )
            await _check_posted(ctx, route, posted)
            await _schedule_incident_update(ctx, job, route, cause)
        case _:
            assert_never(arrival.role)


async def _wait_for_incident(ctx: JobContext, job: AlertJob) -> bool:
    """Look at this failure again in a moment, as a new job with the same incident decision. False:
    waited long enough (the first card could not be posted), so the caller posts the card on its own."""
    if job.waits >= INCIDENT_WAITS:
        log.warning("an incident's message was not posted in time; a failure's card goes in the channel")
        return False
    later = job.model_copy(
        update={
            "interaction": f"{job.arrival or job.interaction}:wait{job.waits + 1}",
            "arrival": job.arrival or job.interaction,
            "waits": job.waits + 1,
        }
    )
    try:
        await ctx.scheduler.enqueue(later, at=time.time() + INCIDENT_WAIT_SECONDS)
    except StoreUnavailable:
        log.warning("could not schedule a failure's card for its incident: Redis unavailable")
        return False
    return True


async def _open_if_mine(
    ctx: JobContext, job: AlertJob, route: AlertRoute, cause: str, arrival: Arrival, card_ts: str
) -> None:
    """Whichever comes second, the first card posted or the incident opened, turns that card into the
    incident (claimed once)."""
    try:
        ts = await ctx.alerts.claim_convert(route, cause, arrival.generation, job.interaction, card_ts)
    except StoreUnavailable as exc:
        ctx.retry_unless_final(exc.kind.value)
        log.warning("an incident could not be opened (Redis unavailable); its cards are posted as they come")
        return
    if ts:
        await _open(ctx, job, route, cause, ts)


async def _open(ctx: JobContext, job: AlertJob, route: AlertRoute, cause: str, card_ts: str) -> None:
    """The cause's first card becomes the incident's message; that first run's card goes in its thread."""
    try:
        view = await ctx.alerts.incident(route, cause)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)
    if view is None:
        return
    text = words.incident_message(incident_facts(view), ctx.clock())
    await ctx.once(
        "incident",
        lambda: web_api.update(ctx.client, route.channel_id, card_ts, text, blocks=_text_blocks(text)),
    )
    first = Target(execution_id=view.first_execution, linked_account_id=view.first_account or None)
    fetched = await ctx.fetch(first, patient=True)
    banner = words.alert_banner(WebhookEvent.WORKFLOW_ERRORED.value, first.linked_account_id)

    def render_first(budget: CardBudget) -> Card:
        if fetched.result is None:
            line = words.incident_run_line(first.execution_id, first.linked_account_id, at(view.first_seen))
            return Card(text=line, blocks=_text_blocks(line))
        return ctx.card(fetched.result, shareable=False, budget=budget, banner=banner)

    posted = await ctx.once(
        "first-card", lambda: web_api.post_card(ctx.client, route.channel_id, card_ts, render_first)
    )
    await _check_posted(ctx, route, posted)
    await _schedule_incident_update(ctx, job, route, cause)


def _text_blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


async def _route(ctx: JobContext, route_id: str) -> AlertRoute | None:
    try:
        return await ctx.alerts.routes.get(route_id)
    except StoreUnavailable as exc:
        ctx.retry_unless_final(exc.kind.value)
        log.error("an alert was dropped: its route could not be read (Redis unavailable)")
        return None


async def _schedule_incident_update(
    ctx: JobContext, job: AlertJob | IncidentUpdateJob, route: AlertRoute, cause: str, at: float = 0.0
) -> None:
    """One update per incident and slot, however many alerts ask: the queue keeps one job per key, so
    the message is edited at most once a slot."""
    slot = math.ceil((at or time.time()) / INCIDENT_UPDATE_SECONDS) * INCIDENT_UPDATE_SECONDS
    update = IncidentUpdateJob(
        origin=job.origin,
        reply=job.reply,
        interaction=f"incident:{route.route_id}:{cause}:{slot}",
        route_id=route.route_id,
        cause=cause,
    )
    try:
        await ctx.scheduler.enqueue(update, at=slot)
    except StoreUnavailable:
        log.warning("could not schedule an incident's update: Redis unavailable")


async def run_incident_update(ctx: JobContext, job: IncidentUpdateJob) -> None:
    route = await _route(ctx, job.route_id)
    if route is None:
        return
    try:
        view = await ctx.alerts.incident(route, job.cause)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)
    if view is None or view.state != "open" or not view.card_ts:
        return
    text = words.incident_message(incident_facts(view), ctx.clock())
    updated = await web_api.update(
        ctx.client, route.channel_id, view.card_ts, text, blocks=_text_blocks(text)
    )
    if not updated:
        log.warning("an incident's message could not be updated (%s)", updated.error)
        ctx.retry_if_transient(updated)
    # Quiet incidents change too ("quiet for 10 min", then resolved): looked at again until resolved.
    now = time.time()
    if now < view.last_seen + RESOLVE_SECONDS:
        later = (
            view.last_seen + QUIET_AFTER_SECONDS
            if now < view.last_seen + QUIET_AFTER_SECONDS
            else now + QUIET_REVIEW_SECONDS
        )
        await _schedule_incident_update(
            ctx, job, route, job.cause, at=min(later, view.last_seen + RESOLVE_SECONDS)
        )


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
