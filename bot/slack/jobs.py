"""What each job kind does: look the execution up, render it, answer in Slack.

Handlers run in a worker or, with none alive, in the web process; they are listed in HANDLERS, one
per kind of `bot.jobs.kinds.JOB_KINDS`. A failure a later attempt could fix raises `RetryLater`
unless this is the job's last attempt, when the person is told what happened instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError, ErrorKind
from bot.jobs.kinds import AnyJob, LookupJob, RefreshJob, ShareJob, ShortcutJob, Target
from bot.render import messages
from bot.render.blocks import Card, CardBudget, render_execution, with_refresh_note
from bot.render.errors import describe
from bot.slack.reply import DELIVERED, Delivery, Reply
from bot.store.deliveries import Deliveries
from bot.usecases.lookup import ExecutionLookup, LookupResult
from bot.usecases.workspace import Workspace

log = logging.getLogger(__name__)

MAX_CARDS = 5
TOO_LONG_ERRORS = {"msg_too_long", "invalid_blocks", "too_many_attachments"}


class RetryLater(Exception):
    """A transient failure (Refold, Redis or Slack briefly away) on an attempt that is not the last."""


@dataclass(frozen=True)
class Outcome:
    result: LookupResult | None
    error: str | None


@dataclass
class JobContext:
    lookup: ExecutionLookup
    workspace: Workspace
    reply: Reply
    client: AsyncWebClient
    clock: Callable[[], datetime]
    interaction: str
    # Queued jobs may run again after a worker dies: then each answer is sent once (deliveries).
    deliveries: Deliveries | None
    final_attempt: bool
    dashboard_url: str | None = None

    async def fetch(self, target: Target) -> Outcome:
        try:
            result = await self.lookup.lookup(self.workspace, target.execution_id, target.linked_account_id)
            return Outcome(result, None)
        except BotError as exc:
            detail = f": {exc}" if exc.transient else ""
            # Our own outage is an operator's problem; a user's wrong ID or Refold's 404 is not.
            level = logging.WARNING if exc.kind is ErrorKind.STORE_UNAVAILABLE else logging.INFO
            log.log(level, "lookup of %s failed: %s%s", target.execution_id[:40], type(exc).__name__, detail)
            if exc.transient and not self.final_attempt:
                raise RetryLater(exc.kind.value) from None
            return Outcome(None, describe(exc))
        except Exception as exc:
            log.exception("lookup of %s failed unexpectedly", target.execution_id[:40])
            return Outcome(None, describe(exc))

    def card(self, result: LookupResult, *, shareable: bool, budget: CardBudget | None = None) -> Card:
        return render_execution(
            result.execution,
            now=self.clock(),
            linked_account_id=result.linked_account_id,
            shareable=shareable,
            budget=budget,
            searched_from=result.searched_from,
            dashboard_url=self.dashboard_url,
        )

    async def once(self, part: str, send: Callable[[], Awaitable[Delivery]]) -> Delivery:
        """Send one part of the answer unless an earlier run of this job already did."""
        if self.deliveries is not None and await self.deliveries.done(self.interaction, part):
            return DELIVERED
        delivery = await send()
        if delivery and self.deliveries is not None:
            await self.deliveries.record(self.interaction, part)
        return delivery

    async def answer(self, part: str, **message: Any) -> Delivery:
        """Answer; when Slack is briefly unable to take it and attempts remain, retry the job later."""
        delivery = await self.once(part, lambda: self.reply.send(**message))
        if not delivery and delivery.transient and not self.final_attempt:
            raise RetryLater("slack")
        return delivery


async def run_lookup(ctx: JobContext, job: LookupJob) -> None:
    outcome = await ctx.fetch(job.target)
    if outcome.result is None:
        await ctx.answer("reply", response_type="ephemeral", text=outcome.error)
        return
    card = ctx.card(outcome.result, shareable=True)
    await ctx.answer("reply", response_type="ephemeral", text=card.text, blocks=card.blocks)


async def run_refresh(ctx: JobContext, job: RefreshJob) -> None:
    outcome = await ctx.fetch(job.target)
    if outcome.result is not None:
        card = ctx.card(outcome.result, shareable=job.reply.ephemeral)
        await ctx.answer("reply", replace_original=True, text=card.text, blocks=card.blocks)
        return
    # Keep the last good card: re-send it with a note saying why this refresh failed.
    shown = job.shown
    blocks = with_refresh_note(shown.blocks if shown else [], ctx.clock(), outcome.error or "")
    if shown is not None and blocks:
        await ctx.answer("reply", replace_original=True, text=shown.text or "Execution", blocks=blocks)
    else:
        # Ephemeral cards come back without their blocks; leave the card alone and say why beside it.
        await ctx.answer(
            "reply",
            response_type="ephemeral",
            replace_original=False,
            text=f"Refresh failed: {outcome.error}",
        )


async def run_share(ctx: JobContext, job: ShareJob) -> None:
    outcome = await ctx.fetch(job.target)
    if outcome.result is None:
        await ctx.answer("reply", response_type="ephemeral", replace_original=False, text=outcome.error)
        return
    card = ctx.card(outcome.result, shareable=False)
    await ctx.answer(
        "reply", response_type="in_channel", replace_original=False, text=card.text, blocks=card.blocks
    )


async def run_shortcut(ctx: JobContext, job: ShortcutJob) -> None:
    if not job.targets:
        await ctx.answer("none", response_type="ephemeral", text=messages.NO_EXECUTION_IN_MESSAGE)
        return
    channel, thread_ts = job.reply.channel_id, job.reply.thread_ts
    in_thread = bool(channel and thread_ts)
    for index, target in enumerate(job.targets[:MAX_CARDS]):
        part = f"card-{index}"
        outcome = await ctx.fetch(target)
        if outcome.result is None:
            await ctx.answer(
                part,
                response_type="ephemeral",
                text=messages.failed_for(target.execution_id, outcome.error or ""),
            )
            continue
        result = outcome.result
        if in_thread and channel and thread_ts:
            posted = await ctx.once(part, _thread_poster(ctx, channel, thread_ts, result))
            if posted:
                continue
            in_thread = False
        card = ctx.card(result, shareable=True)
        await ctx.answer(part, response_type="ephemeral", text=card.text, blocks=card.blocks)
    if job.found > MAX_CARDS:
        await ctx.answer(
            "more", response_type="ephemeral", text=messages.more_executions(job.found - MAX_CARDS, MAX_CARDS)
        )


def _thread_poster(
    ctx: JobContext, channel: str, thread_ts: str, result: LookupResult
) -> Callable[[], Awaitable[Delivery]]:
    def render(budget: CardBudget) -> Card:
        return ctx.card(result, shareable=False, budget=budget)

    return lambda: _post_in_thread(ctx.client, channel, thread_ts, render)


async def _post_in_thread(
    client: AsyncWebClient, channel: str, thread_ts: str, render: Callable[[CardBudget], Card]
) -> Delivery:
    """Post a card in the alert's thread, shrinking it if Slack says it is too big; not ok: can't post here."""
    budget = CardBudget()
    for _ in range(3):
        card = render(budget)
        try:
            await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=card.text,
                blocks=card.blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
            return DELIVERED
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in TOO_LONG_ERRORS:
                log.warning("card rejected as %s; retrying smaller", error)
                budget = budget.smaller()
                continue
            log.info("cannot post in thread (%s); answering ephemerally", error)
            return Delivery(False)
    return Delivery(False)


Handler = Callable[[JobContext, Any], Awaitable[None]]

# One handler per job kind; `bot.jobs.kinds.JOB_KINDS` lists the kinds.
HANDLERS: dict[str, Handler] = {
    "lookup": run_lookup,
    "refresh": run_refresh,
    "share": run_share,
    "shortcut": run_shortcut,
}


async def handle(ctx: JobContext, job: AnyJob) -> None:
    await HANDLERS[job.kind](ctx, job)
