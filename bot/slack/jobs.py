"""What each job kind does: look the execution up, render it, answer in Slack.

Handlers run in a worker or, with none alive, in the web process; they are listed in HANDLERS, one
per kind of `bot.jobs.kinds.JOB_KINDS`. A failure a later attempt could fix raises `RetryLater`
unless this is the job's last attempt, when the person is told what happened instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.jobs.kinds import AnyJob, LookupJob, RefreshJob, ShareJob, ShortcutJob
from bot.render import messages
from bot.render.blocks import Card, CardBudget, with_refresh_note
from bot.slack import alerts, follow, operate, unfurl_job
from bot.slack.job_context import JobContext, post_in_thread
from bot.slack.reply import Delivery
from bot.usecases.lookup import LookupResult

log = logging.getLogger(__name__)

MAX_CARDS = 5


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
        mark = await follow.still_followed(ctx, job.follow_id)
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

    return lambda: post_in_thread(ctx.client, channel, thread_ts, render)


Handler = Callable[[JobContext, Any], Awaitable[None]]

# One handler per job kind; `bot.jobs.kinds.JOB_KINDS` lists the kinds.
HANDLERS: dict[str, Handler] = {
    "lookup": run_lookup,
    "refresh": run_refresh,
    "share": run_share,
    "shortcut": run_shortcut,
    "follow": follow.run_follow,
    "poll": follow.run_poll,
    "unfollow": follow.run_unfollow,
    "rerun": operate.run_rerun,
    "stop": operate.run_stop,
    "alert": alerts.run_alert,
    "storm": alerts.run_storm_summary,
    "unfurl": unfurl_job.run_unfurl,
}


async def handle(ctx: JobContext, job: AnyJob) -> None:
    await HANDLERS[job.kind](ctx, job)
