"""Following a run: the card updates itself until the run ends, then the requester is told.

A follow is a chain of scheduled poll jobs on the job queue (never a sleeping loop), one record per
followed message in the follow store, and a generation that ends the chain when someone unfollows.
Polls land on a grid shared by all follows, so follows of one run share its Refold call.

Slack lets an app use an interaction's response_url 5 times within 30 minutes. A followed card spends
those first, then changes a message the bot posted with chat.update; a private (ephemeral) card keeps
its last use for the final card. Where neither can reach the card any more, the requester is told once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bot.errors import BotError, ErrorKind
from bot.jobs.kinds import FollowedCard, FollowJob, Origin, PollJob, ReplyTarget, Target, UnfollowJob
from bot.render import follow as words
from bot.render.blocks import Card, FollowMark
from bot.render.errors import describe
from bot.slack import web_api
from bot.slack.clients import sent_within
from bot.slack.handlers.context import JobContext, RetryLater
from bot.slack.reply import Reply
from bot.slack.web_api import Delivery
from bot.store.errors import StoreUnavailable
from bot.usecases.follow import fingerprint, next_delay, next_poll_at, ran_for_ms
from bot.usecases.lookup import LookupResult

log = logging.getLogger(__name__)

RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60
# A response_url is not used this close to Slack's 30 minutes: a late use could find it just expired.
RESPONSE_URL_MARGIN_SECONDS = 120
RECORD_GRACE_SECONDS = 3600
# A final card (or a follow's first) waits this long at most for its chat.update turn, well within the
# job's timeout; past it, a later poll tries again, so a spent budget never times a poll out.
LONG_TURN_WAIT_SECONDS = 60.0


def _record_ttl(ctx: JobContext) -> int:
    return int(ctx.follows.max_seconds + RECORD_GRACE_SECONDS)


def _new_follow(
    origin: Origin,
    result: LookupResult,
    card_at: ReplyTarget,
    *,
    fallback_id: str = "",
    rerun_of: str | None = None,
    response_url_uses: int = 0,
) -> FollowedCard:
    """The state of a follow that starts now, for the person in `origin`, of the card at `card_at`."""
    now = time.time()
    execution = result.execution
    return FollowedCard(
        origin=origin,
        target=Target(execution_id=execution.id or fallback_id, linked_account_id=result.linked_account_id),
        card=card_at,
        requester=origin.user_id,
        started_at=now,
        response_url_at=now,
        response_url_uses=response_url_uses,
        fingerprint=fingerprint(execution),
        name=execution.name,
        status=execution.status,
        rerun_of=rerun_of,
        shareable=card_at.ephemeral,
    )


def _mark(follow_id: str, state: FollowedCard) -> FollowMark:
    return FollowMark(follow_id, state.requester)


async def run_follow(ctx: JobContext, job: FollowJob) -> None:
    """Start following: the card turns into a followed one and the first poll is scheduled."""
    outcome = await ctx.fetch(job.target)
    if outcome.result is None:
        await ctx.answer("reply", response_type="ephemeral", replace_original=False, text=outcome.error)
        return
    result = outcome.result
    if result.execution.is_terminal:
        card = ctx.card(result, shareable=job.reply.ephemeral, note=words.ALREADY_FINISHED)
        await _show_once(ctx, job, card)
        return
    state = _new_follow(job.origin, result, job.reply, fallback_id=job.target.execution_id)
    generation = job.interaction
    workspace = job.origin.workspace.label
    if not await ctx.follows.store.start(
        workspace, job.follow_id, generation, state.dumped(), _record_ttl(ctx)
    ):
        current = await ctx.follows.store.load(job.follow_id)
        if current is None or current[0] != generation:
            log.info("card already followed; this click changes nothing")
            return
        # This job ran before and died after starting: carry on from what it recorded.
        state = FollowedCard.model_validate_json(current[1])
    card = ctx.card(result, shareable=state.shareable, follow=_mark(job.follow_id, state))
    if job.new_card:
        shown = await _show_once(ctx, job, card)
        state.response_url_uses = 1 if shown else 0
    else:
        state, _ = await _update_card(ctx, state, card, final=False, patient=True)
    await _next_poll(ctx, job.follow_id, generation, 1, state)
    log.info(
        "following %s (every %.0f s at first)", state.target.execution_id, ctx.follows.first_poll_seconds
    )


async def _show_once(ctx: JobContext, job: FollowJob, card: Card) -> Delivery:
    if job.new_card:
        return await ctx.answer("reply", response_type="ephemeral", text=card.text, blocks=card.blocks)
    return await ctx.answer("reply", replace_original=True, text=card.text, blocks=card.blocks)


async def run_poll(ctx: JobContext, job: PollJob) -> None:
    store = ctx.follows.store
    try:
        record = await store.load(job.follow_id)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)
    if record is None or record[0] != job.generation:
        log.info("follow ended (unfollowed, replaced or lapsed); poll %d does nothing", job.seq)
        return
    state = FollowedCard.model_validate_json(record[1])
    if job.seq <= state.last_seq:
        log.info("poll %d already ran (its worker died after it); nothing to do", job.seq)
        return
    state.last_seq = job.seq
    now = time.time()
    workspace = state.origin.workspace
    target = state.target
    try:
        result = await ctx.lookup.lookup(workspace, target.execution_id, target.linked_account_id)
    except BotError as exc:
        if exc.transient or exc.kind is ErrorKind.BUSY:
            state.failed_polls += 1
            log.info("poll %d of a follow failed (%s); trying again later", job.seq, exc.kind.value)
            if now - state.started_at < ctx.follows.max_seconds:
                await _next_poll(ctx, job.follow_id, job.generation, job.seq + 1, state)
                return
        await _give_up(ctx, job, state, describe(exc))
        return
    execution = result.execution
    state.name, state.status = execution.name or state.name, execution.status
    if execution.is_terminal:
        await _finish(ctx, job, state, result, now)
        return
    if now - state.started_at >= ctx.follows.max_seconds:
        card = ctx.card(
            result,
            shareable=state.shareable,
            rerun_of=state.rerun_of,
            note=words.stopped_after(ctx.follows.max_seconds),
        )
        await _update_card(ctx, state, card, final=True)
        await store.stop(workspace.label, job.follow_id, job.generation)
        log.info("stopped following %s after %.0f s", target.execution_id, now - state.started_at)
        return
    current = fingerprint(execution)
    stale_soon = (
        state.card.ephemeral
        and not state.told_stale
        and now - state.response_url_at >= RESPONSE_URL_SECONDS - RESPONSE_URL_MARGIN_SECONDS - 60
    )
    if current != state.fingerprint or stale_soon:
        note = words.STALE_CARD_NOTE if stale_soon else None
        card = ctx.card(
            result,
            shareable=state.shareable,
            follow=_mark(job.follow_id, state),
            rerun_of=state.rerun_of,
            note=note,
        )
        state, shown = await _update_card(ctx, state, card, final=stale_soon)
        if stale_soon:
            state.told_stale = state.response_url_dead = True
        if shown:  # else the next poll shows the run as it is then
            state.fingerprint = current
        state.unchanged_polls = 0
    else:
        state.unchanged_polls += 1
    state.failed_polls = 0
    await _next_poll(ctx, job.follow_id, job.generation, job.seq + 1, state)


async def _finish(
    ctx: JobContext, job: PollJob, state: FollowedCard, result: LookupResult, now: float
) -> None:
    """The final card (no Refresh, no Follow), then one reply to the person who asked."""
    execution = result.execution
    card = ctx.card(result, shareable=state.shareable, rerun_of=state.rerun_of)
    state, shown = await _update_card(ctx, state, card, final=True)
    if not shown:
        # Its turn too far off (or Slack away on the job's last attempt): the next poll shows the end.
        log.info("a followed run's final card is not shown yet; the next poll tries again")
        await _next_poll(ctx, job.follow_id, job.generation, job.seq + 1, state)
        return
    failing = execution.failing_nodes
    text = words.finished(
        state.requester,
        execution.name or target_label(state),
        execution.status,
        ran_for_ms(execution, now - state.started_at, now),
        (failing[0].node_name or failing[0].node_id) if failing else None,
    )
    # Once per follow, whichever poll gets here: a poll run again after a worker died must not repeat it.
    told = await ctx.once(
        "finished",
        lambda: _tell(ctx, state, text, in_thread=True),
        across=f"{job.follow_id}:{job.generation}",
    )
    if not told:
        ctx.retry_unless_final("slack")
    await ctx.follows.store.stop(state.origin.workspace.label, job.follow_id, job.generation)
    log.info("followed run %s ended %s", state.target.execution_id, execution.status)


def target_label(state: FollowedCard) -> str:
    return f"Execution {state.target.execution_id}"


async def _give_up(ctx: JobContext, job: PollJob, state: FollowedCard, reason: str) -> None:
    log.info("stopped following %s: cannot look it up any more", state.target.execution_id)
    text = words.gave_up(state.target.execution_id, reason)
    await ctx.once("gave-up", lambda: _tell(ctx, state, text), across=f"{job.follow_id}:{job.generation}")
    await ctx.follows.store.stop(state.origin.workspace.label, job.follow_id, job.generation)


async def _next_poll(ctx: JobContext, follow_id: str, generation: str, seq: int, state: FollowedCard) -> None:
    kit = ctx.follows
    delay = next_delay(state.unchanged_polls + state.failed_polls, kit.first_poll_seconds)
    at = next_poll_at(time.time(), delay, kit.first_poll_seconds)
    poll = PollJob(
        origin=state.origin,
        # The card's place is the follow record's (read first thing): not a second copy per poll.
        reply=ReplyTarget(),
        interaction=f"{follow_id}:{generation[:12]}:{seq}",
        follow_id=follow_id,
        generation=generation,
        seq=seq,
    )
    try:
        # Scheduled first, saved second: a worker dying in between leaves a poll that runs on the
        # state before this one, which only costs an update that may repeat.
        await kit.scheduler.enqueue(poll, at=at)
        await kit.store.save(follow_id, generation, state.dumped(), _record_ttl(ctx), state.last_seq)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)


def _response_url_usable(state: FollowedCard, now: float, final: bool) -> bool:
    if state.response_url_dead or not state.card.response_url:
        return False
    if now - state.response_url_at >= RESPONSE_URL_SECONDS - RESPONSE_URL_MARGIN_SECONDS:
        return False
    # A private card can be reached no other way: its last use is kept for the final card.
    limit = RESPONSE_URL_USES if final or not state.card.ephemeral else RESPONSE_URL_USES - 1
    return state.response_url_uses < limit


async def _update_card(
    ctx: JobContext, state: FollowedCard, card: Card, *, final: bool, patient: bool = False
) -> tuple[FollowedCard, bool]:
    """Replace the followed card: response_url while it lasts, then chat.update, else say so once.
    False: a later poll is to show it (Slack failed for a moment; or chat.update's turn is further off
    than a poll, or for `final` and `patient` ones LONG_TURN_WAIT_SECONDS: a worker slot is not held
    waiting in the pacer's line, and final cards, which wait longer, go first)."""
    now = time.time()
    body: dict[str, Any] = {"replace_original": True, "text": card.text, "blocks": card.blocks}
    if _response_url_usable(state, now, final):
        state.response_url_uses += 1
        delivery = await Reply(ctx.http, ctx.client, state.card).via_response_url(body)
        if delivery:
            return state, True
        if not delivery.transient:
            log.info("a followed card's response_url is spent; going on with chat.update")
            state.response_url_dead = True
    patience = LONG_TURN_WAIT_SECONDS if final or patient else ctx.follows.first_poll_seconds
    updated = await _chat_update(ctx, state, card, patience)
    if updated is None:
        log.info("a followed card's update would wait for Slack's budget; a later poll shows it")
        return state, False
    if updated:
        return state, True
    if updated.transient:
        if final:
            ctx.retry_unless_final("slack")
        return state, False
    if not state.told_stale:
        state.told_stale = True
        text = words.CANT_UPDATE.format(execution=state.target.execution_id)
        await ctx.once("cant-update", lambda: _tell(ctx, state, text, privately=True))
    return state, True  # nothing more can change it


async def _chat_update(ctx: JobContext, state: FollowedCard, card: Card, patience: float) -> Delivery | None:
    """None: its turn would come later than `patience` seconds (nothing sent)."""
    where = state.card
    if where.ephemeral or not where.channel_id or not where.message_ts or state.chat_update_dead:
        return Delivery(False)
    channel, ts = where.channel_id, where.message_ts

    async def edit() -> Delivery:
        return await web_api.update(ctx.client, channel, ts, card.text, blocks=card.blocks)

    updated = await sent_within(ctx.client, "chat.update", channel, patience, edit)
    if updated is None or updated:
        return updated
    if updated.transient:
        log.warning("chat.update of a followed card failed (%s); next poll tries again", updated.error)
        return updated
    log.warning("chat.update cannot change the followed card (%s)", updated.error)
    state.chat_update_dead = True
    return Delivery(False)


async def _tell(
    ctx: JobContext, state: FollowedCard, text: str, *, in_thread: bool = False, privately: bool = False
) -> Delivery:
    """Tell the requester: in the card's thread when the card is public, else privately, else by DM."""
    where, user = state.card, state.requester
    thread = where.thread_ts or where.message_ts
    if in_thread and not where.ephemeral and where.channel_id and thread:
        said = await web_api.post(ctx.client, where.channel_id, text, thread_ts=thread)
        if said:
            return said
        log.info("a follow's reply in the thread failed (%s); trying a direct message", said.error)
    if privately and where.channel_id and user:
        said = await web_api.post_privately(ctx.client, where.channel_id, user, text)
        if said:
            return said
        log.info("a follow's private note failed (%s); trying a direct message", said.error)
    if not user:
        log.error("could not tell anyone about a followed run: no requester, no thread")
        return Delivery(False)
    said = await web_api.direct_message(ctx.client, user, text)
    if not said:
        log.error("could not tell the requester about a followed run (direct message: %s)", said.error)
    return said


async def still_followed(ctx: JobContext, follow_id: str | None) -> FollowMark | None:
    """A Refresh on a followed card keeps it followed (and its Unfollow button)."""
    if not follow_id:
        return None
    try:
        record = await ctx.follows.store.load(follow_id)
    except StoreUnavailable:
        return None
    if record is None:
        return None
    return _mark(follow_id, FollowedCard.model_validate_json(record[1]))


async def run_unfollow(ctx: JobContext, job: UnfollowJob) -> None:
    try:
        ended = await ctx.follows.store.stop(job.origin.workspace.label, job.follow_id)
    except StoreUnavailable as exc:
        ctx.retry_unless_final(exc.kind.value)
        await ctx.answer("reply", response_type="ephemeral", replace_original=False, text=describe(exc))
        return
    log.info("unfollowed (a follow was %s)", "ended" if ended else "already over")
    outcome = await ctx.fetch(job.target)
    if outcome.result is None:
        await ctx.answer(
            "reply",
            response_type="ephemeral",
            replace_original=False,
            text=f"Stopped following. {outcome.error}",
        )
        return
    card = ctx.card(outcome.result, shareable=job.reply.ephemeral)
    await ctx.answer("reply", replace_original=True, text=card.text, blocks=card.blocks)


async def start_follow(
    ctx: JobContext,
    follow_id: str,
    generation: str,
    result: LookupResult,
    card_at: ReplyTarget,
    *,
    requester: str | None,
    rerun_of: str | None = None,
    response_url_uses: int = 0,
) -> FollowedCard | None:
    """Follow a card that is already shown (after a rerun or a stop); None if it could not start.

    Any earlier follow of the same card ends: its next poll finds another generation.
    """
    origin = ctx.origin.model_copy(update={"user_id": requester})
    state = _new_follow(origin, result, card_at, rerun_of=rerun_of, response_url_uses=response_url_uses)
    store, workspace = ctx.follows.store, ctx.workspace.label
    try:
        await store.stop(workspace, follow_id)
        if not await store.start(workspace, follow_id, generation, state.dumped(), _record_ttl(ctx)):
            return None
        await _next_poll(ctx, follow_id, generation, 1, state)
    except (StoreUnavailable, RetryLater):
        log.warning("could not start following %s: Redis unavailable", state.target.execution_id)
        return None
    return state
