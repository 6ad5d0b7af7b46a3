"""The lookup family of jobs: look the execution up, render it, answer in Slack (a command's
lookup, Refresh, Share to channel, the message shortcut).

A failure a later attempt could fix asks for one (`JobContext.retry_unless_final`) unless this is the
job's last attempt, when the person is told what happened instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.jobs.kinds import MAX_SHORTCUT_CARDS, LookupJob, RefreshJob, ShareJob, ShortcutJob
from bot.render import messages
from bot.render.blocks import Card, CardBudget, with_refresh_note
from bot.slack import web_api
from bot.slack.handlers.context import JobContext
from bot.slack.handlers.following import still_followed
from bot.slack.web_api import Delivery
from bot.usecases.lookup import LookupResult

log = logging.getLogger(__name__)


async def run_lookup(ctx: JobContext, job: LookupJob) -> None:
    outcome, waiting_shown = await ctx.fetch_explaining_waits(job.target, asked_at=job.asked_at)
    replace = {"replace_original": True} if waiting_shown else {}
    if outcome.result is None:
        await ctx.answer("reply", response_type="ephemeral", text=outcome.error, **replace)
        return
    card = ctx.card(outcome.result, shareable=True)
    await ctx.answer("reply", response_type="ephemeral", text=card.text, blocks=card.blocks, **replace)


async def run_refresh(ctx: JobContext, job: RefreshJob) -> None:
    outcome = await ctx.fetch(job.target)
    if outcome.result is not None:
        mark = await still_followed(ctx, job.follow_id)
        card = ctx.card(outcome.result, shareable=job.reply.ephemeral, follow=mark)
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
    for index, target in enumerate(job.targets[:MAX_SHORTCUT_CARDS]):
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
    if job.found > MAX_SHORTCUT_CARDS:
        await ctx.answer(
            "more",
            response_type="ephemeral",
            text=messages.more_executions(job.found - MAX_SHORTCUT_CARDS, MAX_SHORTCUT_CARDS),
        )


def _thread_poster(
    ctx: JobContext, channel: str, thread_ts: str, result: LookupResult
) -> Callable[[], Awaitable[Delivery]]:
    def render(budget: CardBudget) -> Card:
        return ctx.card(result, shareable=False, budget=budget)

    return lambda: web_api.post_card(ctx.client, channel, thread_ts, render)
