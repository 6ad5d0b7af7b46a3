"""Rerun and Stop from the card: who may, the Refold call, the card that follows the result.

Slack has already asked "are you sure?" (the buttons carry Block Kit's `confirm`). Who may press them
is checked here, in the job, fresh from Slack: workspace admins and owners, and the users and user
groups the connect modal lists. Every attempt, refused ones too, goes to the audit log.
"""

from __future__ import annotations

import logging

from bot.errors import BotError
from bot.jobs.kinds import ReplyTarget, RerunJob, StopJob
from bot.refold.models import Execution
from bot.render import follow as words
from bot.render.blocks import Card, CardBudget, FollowMark
from bot.render.errors import describe
from bot.slack import web_api
from bot.slack.admins import may_operate
from bot.slack.follow_records import derived_follow_id
from bot.slack.handlers.context import JobContext
from bot.slack.handlers.following import start_follow
from bot.usecases.actions import ActionRequest, RerunUnconfirmed
from bot.usecases.lookup import LookupResult

log = logging.getLogger(__name__)


async def permitted(ctx: JobContext, action: str, request: ActionRequest, *, may: str = "") -> bool:
    """True when the person may act; otherwise they are told who can (`may`: what they were refused,
    by default "<action> executions"), and the refusal is audited."""
    try:
        operators = await ctx.actions.operators(ctx.workspace)
    except BotError as exc:
        await ctx.answer("reply", response_type="ephemeral", replace_original=False, text=describe(exc))
        return False
    if await may_operate(ctx.client, ctx.origin.user_id, operators):
        return True
    await ctx.actions.record(request, action, "refused")
    log.info("%s refused: the user is not allowed", action)
    await ctx.answer(
        "reply",
        response_type="ephemeral",
        replace_original=False,
        text=words.not_allowed(may or f"{action} executions", operators.users, operators.groups),
    )
    return False


def _request(ctx: JobContext, job: RerunJob | StopJob) -> ActionRequest:
    return ActionRequest(
        workspace=ctx.workspace,
        execution_id=job.target.execution_id,
        linked_account_id=job.target.linked_account_id,
        who=ctx.origin.user_id or "unknown",
        key=job.interaction,
    )


async def _fresh(ctx: JobContext, execution_id: str, account: str | None, status: str) -> LookupResult:
    """The run as Refold has it now; a run it has only just queued may not be readable yet."""
    try:
        return await ctx.lookup.lookup(ctx.workspace, execution_id, account, fresh=True)
    except BotError as exc:
        log.info("new state of %s not readable yet (%s)", execution_id, exc.kind.value)
        return LookupResult(Execution.model_validate({"_id": execution_id, "status": status}), account)


async def run_rerun(ctx: JobContext, job: RerunJob) -> None:
    request = _request(ctx, job)
    if not await permitted(ctx, "rerun", request):
        return
    try:
        new_id = await ctx.actions.rerun(request)
    except RerunUnconfirmed:
        await ctx.answer(
            "reply",
            response_type="ephemeral",
            replace_original=False,
            text=words.rerun_unconfirmed(request.execution_id),
        )
        return
    except BotError as exc:
        # Not retried: Refold may have started the run before it failed to answer.
        await ctx.answer(
            "reply", response_type="ephemeral", replace_original=False, text=f"Rerun failed. {describe(exc)}"
        )
        return
    account = job.target.linked_account_id
    result = await _fresh(ctx, new_id, account, "QUEUED")
    user, old_id, where = ctx.origin.user_id, job.target.execution_id, job.reply
    root = where.thread_ts or where.message_ts
    if not where.ephemeral and where.channel_id and root:
        channel = where.channel_id
        follow_id = derived_follow_id("rerun", job.interaction)
        mark = FollowMark(follow_id, user)

        def render(budget: CardBudget) -> Card:
            return ctx.card(result, shareable=False, budget=budget, follow=mark, rerun_of=old_id)

        posted = await ctx.once("card", lambda: web_api.post_card(ctx.client, channel, root, render))
        if posted.ts:
            at = ReplyTarget(
                channel_id=channel, user_id=user, thread_ts=root, message_ts=posted.ts, ephemeral=False
            )
            await start_follow(ctx, follow_id, job.interaction, result, at, requester=user, rerun_of=old_id)
            await ctx.answer(
                "started",
                response_type="ephemeral",
                replace_original=False,
                text=words.rerun_started(old_id, new_id, user),
            )
            return
        if posted:
            return  # an earlier run of this job posted it, and followed it
    # A private card, or a channel the bot cannot post in: the clicked card becomes the new run's.
    card = ctx.card(
        result, shareable=where.ephemeral, follow=FollowMark(job.follow_id, user), rerun_of=old_id
    )
    shown = await ctx.answer("card", replace_original=True, text=card.text, blocks=card.blocks)
    await start_follow(
        ctx,
        job.follow_id,
        job.interaction,
        result,
        where,
        requester=user,
        rerun_of=old_id,
        response_url_uses=1 if shown else 0,
    )


async def run_stop(ctx: JobContext, job: StopJob) -> None:
    request = _request(ctx, job)
    if not await permitted(ctx, "stop", request):
        return
    try:
        await ctx.actions.stop(request)
    except BotError as exc:
        await ctx.answer(
            "reply", response_type="ephemeral", replace_original=False, text=f"Stop failed. {describe(exc)}"
        )
        return
    account = job.target.linked_account_id
    result = await _fresh(ctx, job.target.execution_id, account, "STOPPING")
    user = ctx.origin.user_id
    card = ctx.card(result, shareable=job.reply.ephemeral, follow=FollowMark(job.follow_id, user))
    shown = await ctx.answer("card", replace_original=True, text=card.text, blocks=card.blocks)
    # Followed to STOPPED under the clicked card's name, replacing any follow it had.
    await start_follow(
        ctx,
        job.follow_id,
        job.interaction,
        result,
        job.reply,
        requester=user,
        response_url_uses=1 if shown else 0,
    )
