"""Refold alerts in Slack: each delivery becomes a live card in its route's channel, failures of one
cause are gathered under one incident message, expiring connections get a short notice.

A card of a run that is still going is followed like any other (chat.update until it ends). Nothing is
posted twice: a delivery is accepted once (the webhook endpoint), and each part of its answer is
recorded as sent (`ctx.once`), so a job run again after its worker died repeats nothing.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, assert_never

from bot.jobs.kinds import AlertJob, IncidentUpdateJob, JobBase, ReplyTarget, SnoozeEndJob, Target
from bot.refold.causes import Cause, cause_of
from bot.refold.webhooks import WebhookEvent
from bot.render import alerts as words
from bot.render import block_kit as kit
from bot.render import incident as incident_words
from bot.render.blocks import Card, CardBudget, FollowMark
from bot.render.incident import QUIET_AFTER_SECONDS, RUNS_PER_BATCH
from bot.slack import web_api
from bot.slack.clients import expected_wait, sent_within
from bot.slack.follow_records import derived_follow_id
from bot.slack.handlers.context import JobContext
from bot.slack.handlers.following import start_follow
from bot.slack.incident_view import at, batches_of, incident_facts
from bot.slack.web_api import Delivery
from bot.store.alert_routes import AlertEvents, AlertRoute
from bot.store.errors import StoreUnavailable
from bot.store.incidents import RESOLVE_SECONDS, Arrival, IncidentView
from bot.usecases.alerts import environment_wanted
from bot.usecases.lookup import LookupResult

log = logging.getLogger(__name__)

# The bot cannot post in the channel: its creator is told, once.
NOT_A_MEMBER = {"not_in_channel", "channel_not_found", "is_archived"}
# An incident's message is edited at most this often (one job per incident and slot).
INCIDENT_UPDATE_SECONDS = 10
# An incident whose first card is not posted this long after it opened gets a message of its own.
MESSAGE_GRACE_SECONDS = 120.0
# A quiet incident's message is brought up to date this often until it is resolved.
QUIET_REVIEW_SECONDS = 5 * 60
# An update whose chat.update turn is further off than its slot moves to the slot of its turn instead
# of holding a worker slot in the pacer's line (where, one job per slot, an incident's updates piled
# up behind each other). Each move lets the next try wait a slot longer, up to this, so callers that
# wait longer (final cards, a minute) cannot starve it, and no try outlasts the job's timeout.
MAX_TURN_WAIT_SECONDS = 60


async def run_alert(ctx: JobContext, job: AlertJob) -> None:
    route = await _route(ctx, job.route_id)
    if route is None:
        log.info("an alert's route is gone (turned off); nothing posted")
        return
    if job.delivery.event == WebhookEvent.CONNECTION_EXPIRED:
        text = words.connection_expired(
            job.delivery.app, job.delivery.linked_account_id, job.delivery.environment
        )
        posted = await ctx.once("notice", lambda: web_api.post(ctx.client, route.channel_id, text))
        await _check_posted(ctx, route, posted)
        return
    if await _held_by_snooze(ctx, job, route):
        return
    target = Target(
        execution_id=job.delivery.instance_id or "", linked_account_id=job.delivery.linked_account_id
    )
    # A transient failure, or a spent rate limit in a storm, is retried but on the last try.
    outcome = await ctx.fetch(target, patient=True)
    result = outcome.result
    if result is not None and not environment_wanted(route, result.execution.environment):
        log.info("alert for another environment than the route's; not posted")
        return
    cause = (
        cause_of(
            result.execution, workflow_id=job.delivery.workflow_id, workflow_name=job.delivery.workflow_name
        )
        if job.delivery.event == WebhookEvent.WORKFLOW_ERRORED and result is not None
        else None
    )
    repeat = await _remember(ctx, route, job, result.execution.name if result is not None else None, cause)
    # Looked up only for a failed run's own card, just before it is posted (an incident's joiners
    # post nothing, so a storm asks Refold nothing more).
    last_success: list[words.LastSuccessFacts] = []

    async def post_own_card() -> Delivery:
        if result is not None and result.execution.has_failed:
            last_success.extend(await _last_success(ctx, job, result))
        return await web_api.post_card(ctx.client, route.channel_id, None, render)

    def render(budget: CardBudget) -> Card:
        banner = words.alert_banner(
            job.delivery.event,
            job.delivery.linked_account_id,
            repeat,
            last_success[0] if last_success else None,
        )
        if result is None:
            text = words.unfetched_alert(
                job.delivery.event,
                target.execution_id,
                job.delivery.workflow_name,
                job.delivery.linked_account_id,
                outcome.error or "",
            )
            return Card(text=text, blocks=[kit.section(text)])
        card = ctx.card(result, shareable=False, budget=budget, banner=banner)
        menu = (
            words.alert_snooze_menu(
                job.delivery.workflow_name or job.delivery.workflow_id, job.delivery.linked_account_id
            )
            if result.execution.has_failed
            else None
        )
        return Card(text=card.text, blocks=[*card.blocks, menu]) if menu is not None else card

    if cause is not None:
        try:
            arrival = await ctx.alerts.arrive_failure(
                route,
                cause,
                job.interaction,
                target.execution_id,
                job.delivery.linked_account_id,
                time.time(),
            )
        except StoreUnavailable as exc:
            ctx.retry_unless_final(exc.kind.value)
            arrival = None  # no incident bookkeeping: post the card on its own rather than not at all
        if arrival is not None:
            await _failure(ctx, job, route, cause.key, arrival, post_own_card)
            return
    posted = await ctx.once("card", post_own_card)
    await _check_posted(ctx, route, posted)
    if job.delivery.event == WebhookEvent.WORKFLOW_COMPLETED:
        await _recover(ctx, job, route)
    if posted and posted.ts and result is not None and not result.execution.is_terminal:
        await _follow(ctx, job, route, result, posted.ts, None)


async def _held_by_snooze(ctx: JobContext, job: AlertJob, route: AlertRoute) -> bool:
    """A snoozed workflow's or account's alert is counted, not posted (nor fetched). A success of
    what an until-success snooze covers ends it, and is posted."""
    delivery, now = job.delivery, time.time()
    try:
        snooze = await ctx.alerts.snoozes.matching(
            route.route_id, delivery.workflow_id, delivery.workflow_name, delivery.linked_account_id, now=now
        )
        if snooze is None:
            return False
        if snooze.until_success and delivery.event == WebhookEvent.WORKFLOW_COMPLETED:
            await ctx.scheduler.enqueue(
                SnoozeEndJob.ending(
                    job.origin,
                    route.route_id,
                    route.channel_id,
                    snooze.snooze_id,
                    snooze.since,
                    "success",
                    success_of=delivery.instance_id,
                )
            )
            return False
        held = await ctx.alerts.snoozes.hold(
            route.route_id,
            snooze.snooze_id,
            delivery.instance_id or "",
            delivery.linked_account_id or "",
            now=now,
        )
    except StoreUnavailable as exc:
        ctx.retry_unless_final(exc.kind.value)
        log.warning("an alert's snooze could not be checked (Redis unavailable); it is posted")
        return False
    if held:
        log.info("an alert was held back by a snooze")
        await _count(ctx, route, job, None, None)
    return held


async def _last_success(ctx: JobContext, job: AlertJob, result: LookupResult) -> list[words.LastSuccessFacts]:
    """ "Last success: 3 h ago" for a failed run's workflow and account, when Refold says in time."""
    execution = result.execution
    workflow = (
        job.delivery.workflow_id
        or execution.workflow_id
        or (execution.workflow.id if execution.workflow else None)
    )
    account = job.delivery.linked_account_id or result.linked_account_id
    if not workflow or not account:
        return []
    found = await ctx.search.last_success(ctx.workspace, workflow, account)
    if found is None:
        return []
    return [words.LastSuccessFacts(found.execution_id, found.at, ctx.clock())]


async def _remember(
    ctx: JobContext, route: AlertRoute, job: AlertJob, run_name: str | None, cause: Cause | None
) -> words.RepeatFacts | None:
    """The delivery into the day's counts and the route's history; for a failure, whether it is a
    first or a repeat."""
    await _count(ctx, route, job, run_name, cause)
    try:
        repeat = await ctx.alerts.remember(route, job.delivery, time.time())
    except StoreUnavailable:
        log.warning(
            "an alert's history could not be read or kept: Redis unavailable; its card says nothing of it"
        )
        return None
    if repeat is None or not job.delivery.linked_account_id:
        return None
    return words.RepeatFacts(
        workflow=job.delivery.workflow_name or run_name or job.delivery.workflow_id or "the workflow",
        account=job.delivery.linked_account_id,
        failures_in_window=repeat.failures_in_window,
        in_a_row=repeat.in_a_row,
        failing_since=at(repeat.failing_since),
        last_success=at(repeat.last_success) if repeat.last_success is not None else None,
        sees_successes=route.events is not AlertEvents.ERRORED,
    )


async def _count(
    ctx: JobContext, route: AlertRoute, job: AlertJob, run_name: str | None, cause: Cause | None
) -> None:
    """Into the day's counts, for the digest; a count missed is not worth holding the alert back for."""
    try:
        await ctx.alerts.count(route, job.delivery, time.time(), cause=cause, run_name=run_name)
    except StoreUnavailable:
        log.warning("an alert could not be counted for the daily digest: Redis unavailable")


async def _recover(ctx: JobContext, job: AlertJob, route: AlertRoute) -> None:
    """A completed run of an account an incident hit: that incident is recovering."""
    workflow = job.delivery.workflow_id or job.delivery.workflow_name
    if not workflow or not job.delivery.linked_account_id:
        return
    try:
        causes = await ctx.alerts.succeeded(route, workflow, job.delivery.linked_account_id, time.time())
    except StoreUnavailable:
        log.warning("a completed run could not count towards its incidents' recovery: Redis unavailable")
        return
    for cause in causes:
        await schedule_incident_update(ctx, job, route, cause)


async def _failure(
    ctx: JobContext,
    job: AlertJob,
    route: AlertRoute,
    cause: str,
    arrival: Arrival,
    post_own_card: Callable[[], Awaitable[Delivery]],
) -> None:
    """A failed run: its own card when its cause is new here; else it is counted on its incident,
    whose next update lists it in the thread (nothing top-level)."""
    match arrival.role:
        case "card":
            posted = await ctx.once("card", post_own_card)
            await _check_posted(ctx, route, posted)
            if posted:
                # A run of this job after its worker died finds the card posted (no ts here), and
                # its claim, if it had made one, still its own.
                await _open_if_mine(ctx, job, route, cause, arrival, posted.ts or "")
        case "open":
            await _open_if_mine(ctx, job, route, cause, arrival, "")
            await schedule_incident_update(ctx, job, route, cause)
        case "join" | "held":
            await schedule_incident_update(ctx, job, route, cause)
        case _:
            assert_never(arrival.role)


async def _open_if_mine(
    ctx: JobContext, job: JobBase, route: AlertRoute, cause: str, arrival: Arrival, card_ts: str
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


async def _open(ctx: JobContext, job: JobBase, route: AlertRoute, cause: str, card_ts: str) -> None:
    """The cause's first card becomes the incident's message; that first run's card goes in its thread."""
    view = await _incident(ctx, route, cause)
    if view is None:
        return
    text, blocks = _message(view, route, cause)
    await ctx.once(
        "incident", lambda: web_api.update(ctx.client, route.channel_id, card_ts, text, blocks=blocks)
    )
    first = Target(execution_id=view.first_execution, linked_account_id=view.first_account or None)
    fetched = await ctx.fetch(first, patient=True)
    banner = words.alert_banner(WebhookEvent.WORKFLOW_ERRORED.value, first.linked_account_id)

    def render_first(budget: CardBudget) -> Card:
        if fetched.result is None:
            line = incident_words.incident_run_line(
                first.execution_id, first.linked_account_id, at(view.first_seen)
            )
            return Card(text=line, blocks=[kit.section(line)])
        return ctx.card(fetched.result, shareable=False, budget=budget, banner=banner)

    posted = await ctx.once(
        "first-card", lambda: web_api.post_card(ctx.client, route.channel_id, card_ts, render_first)
    )
    await _check_posted(ctx, route, posted)
    await schedule_incident_update(ctx, job, route, cause)


def _message(view: IncidentView, route: AlertRoute, cause: str) -> tuple[str, list[dict[str, Any]]]:
    facts = incident_facts(view)
    now = datetime.now(UTC)
    return (
        incident_words.incident_message(facts, now),
        incident_words.incident_blocks(facts, now, route.route_id, cause),
    )


async def _incident(ctx: JobContext, route: AlertRoute, cause: str) -> IncidentView | None:
    try:
        return await ctx.alerts.incident(route, cause)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)


async def _route(ctx: JobContext, route_id: str) -> AlertRoute | None:
    try:
        return await ctx.alerts.routes.get(route_id)
    except StoreUnavailable as exc:
        ctx.retry_unless_final(exc.kind.value)
        log.error("an alert was dropped: its route could not be read (Redis unavailable)")
        return None


async def schedule_incident_update(
    ctx: JobContext, job: JobBase, route: AlertRoute, cause: str, at: float = 0.0, deferred: int = 0
) -> None:
    """One update per incident and slot, however many alerts ask: the queue keeps one job per key, so
    the message is edited at most once a slot."""
    await ctx.once_a_slot(
        lambda slot: IncidentUpdateJob(
            origin=job.origin,
            reply=job.reply,
            interaction=f"incident:{route.route_id}:{cause}:{slot}",
            route_id=route.route_id,
            cause=cause,
            deferred=deferred,
        ),
        every=INCIDENT_UPDATE_SECONDS,
        at=at or time.time(),
        what="an incident's update",
    )


async def run_incident_update(ctx: JobContext, job: IncidentUpdateJob) -> None:
    """Bring the incident's message up to date, then its thread's batches of runs."""
    route = await _route(ctx, job.route_id)
    if route is None:
        return
    view = await _incident(ctx, route, job.cause)
    if view is None or view.state == "single":
        return
    now = time.time()
    if not view.card_ts:
        await _message_missing(ctx, job, route, view, now)
        return
    patience = min(INCIDENT_UPDATE_SECONDS * (1 + job.deferred), MAX_TURN_WAIT_SECONDS)
    # One allowance for every edit of this job, the thread's and the message's, not one each.
    until = time.monotonic() + patience
    if view.snoozed(now):
        # Counted on the message, nothing posted: the thread catches up when the snooze ends.
        assert view.snooze is not None
        await schedule_incident_update(ctx, job, route, job.cause, at=view.snooze.until + 1)
    else:
        # The thread first: a run's line is how a person reaches it, the message only counts it; its
        # new lines go out whatever chat.update's budget (chat.postMessage has its own).
        await _sync_thread(ctx, job, route, view, now, until)
    text, blocks = _message(view, route, job.cause)
    updated = await sent_within(
        ctx.client,
        "chat.update",
        route.channel_id,
        until - time.monotonic(),
        lambda: web_api.update(ctx.client, route.channel_id, view.card_ts, text, blocks=blocks),
    )
    if updated is None:
        wait = max(await expected_wait(ctx.client, "chat.update", route.channel_id), INCIDENT_UPDATE_SECONDS)
        # Alerts asking meanwhile get jobs that see the same turn and move to the same slot, one job.
        log.info("an incident's update would wait %.0f s or more for Slack's budget; moved to then", wait)
        await schedule_incident_update(
            ctx, job, route, job.cause, at=time.time() + wait, deferred=job.deferred + 1
        )
        return
    if not updated:
        log.warning("an incident's message could not be updated (%s)", updated.error)
        ctx.retry_if_transient(updated)
    if view.state == "open" and now < view.last_seen + RESOLVE_SECONDS:
        # Quiet incidents change too ("quiet for 10 min", then resolved): looked at again until then.
        later = (
            view.last_seen + QUIET_AFTER_SECONDS
            if now < view.last_seen + QUIET_AFTER_SECONDS
            else now + QUIET_REVIEW_SECONDS
        )
        await schedule_incident_update(
            ctx, job, route, job.cause, at=min(later, view.last_seen + RESOLVE_SECONDS)
        )


async def _sync_thread(
    ctx: JobContext,
    job: IncidentUpdateJob,
    route: AlertRoute,
    view: IncidentView,
    now: float,
    until: float,
) -> None:
    """Post the thread's batches not posted yet and edit the one that grew. A posted batch not yet full
    is edited once it fills or its cause pauses (no failure for a slot), so a storm fills batches
    rather than editing one over and over."""
    again = False
    for index, rows in enumerate(batches_of(view.listed)):
        shown = view.batches.get(index)
        if shown is not None and shown.ts and shown.shown == len(rows):
            continue
        growing = shown is not None and len(rows) < RUNS_PER_BATCH
        if growing and now < view.last_seen + INCIDENT_UPDATE_SECONDS:
            again = True
            continue
        try:
            turn, ts = await ctx.alerts.claim_batch(
                route, job.cause, view.generation, index, job.interaction, now
            )
        except StoreUnavailable as exc:
            ctx.retry(exc.kind.value)
        first = index * RUNS_PER_BATCH
        text, blocks = incident_words.batch_text(rows, first), incident_words.batch_blocks(rows, first)
        match turn:
            case "busy":
                again = True
                continue
            case "post":
                sent = await web_api.post(
                    ctx.client, route.channel_id, text, blocks=blocks, thread_ts=view.card_ts
                )
            case "update":
                edited = await sent_within(
                    ctx.client,
                    "chat.update",
                    route.channel_id,
                    until - time.monotonic(),
                    functools.partial(web_api.update, ctx.client, route.channel_id, ts, text, blocks=blocks),
                )
                if edited is None:
                    again = True  # edited by a later update, when Slack's budget allows
                    continue
                sent = edited
            case _:
                assert_never(turn)
        if not sent:
            log.warning("a batch of an incident's runs could not be posted (%s)", sent.error)
            ctx.retry_if_transient(sent)
            again = True
            continue
        try:
            await ctx.alerts.batch_shown(route, job.cause, index, sent.ts or ts, len(rows))
        except StoreUnavailable as exc:
            ctx.retry(exc.kind.value)
    if again:
        await schedule_incident_update(
            ctx, job, route, job.cause, at=max(now, view.last_seen) + INCIDENT_UPDATE_SECONDS
        )


async def _message_missing(
    ctx: JobContext, job: IncidentUpdateJob, route: AlertRoute, view: IncidentView, now: float
) -> None:
    """The cause's first card, which becomes the incident's message, is not posted yet: it waits its
    turn in the channel. Looked at again shortly; past a grace time, the incident gets a message of
    its own (the first card, should it come after all, then stays a card)."""
    opened = view.opened_at or view.first_seen
    if now < opened + MESSAGE_GRACE_SECONDS:
        await schedule_incident_update(ctx, job, route, job.cause, at=now + INCIDENT_UPDATE_SECONDS)
        return
    text, blocks = _message(view, route, job.cause)
    posted = await ctx.once(
        "message",
        lambda: web_api.post(ctx.client, route.channel_id, text, blocks=blocks),
        across=f"incident-message:{route.route_id}:{job.cause}:{view.generation}",
    )
    if not posted.ts:
        if not posted:
            log.warning("an incident's message could not be posted (%s)", posted.error)
            ctx.retry_if_transient(posted)
        return
    log.warning("an incident's first card was not posted in time; the incident got a message of its own")
    try:
        ts = await ctx.alerts.claim_convert(route, job.cause, view.generation, job.interaction, posted.ts)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)
    if ts:
        await _open(ctx, job, route, job.cause, ts)


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
        banner=words.alert_banner(job.delivery.event, job.delivery.linked_account_id),
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
