"""The unfurl job: look each linked execution up with the workspace's credentials, then one
chat.unfurl with a compact card for each that was found."""

from __future__ import annotations

import logging
from typing import Any

from bot.errors import BotError
from bot.jobs.kinds import UnfurlJob
from bot.render.unfurl import render_unfurl
from bot.slack import web_api
from bot.slack.handlers.context import JobContext
from bot.slack.web_api import Delivery

log = logging.getLogger(__name__)


async def run_unfurl(ctx: JobContext, job: UnfurlJob) -> None:
    unfurls: dict[str, dict[str, Any]] = {}
    for link in job.links:
        try:
            result = await ctx.lookup.lookup(ctx.workspace, link.execution_id)
        except BotError as exc:
            # Nothing is said in the channel: an unfurl is a courtesy, and the link still works.
            log.info("link to %s not unfurled: %s", link.execution_id, exc.kind.value)
            if exc.transient:
                ctx.retry_unless_final(exc.kind.value)
            continue
        unfurls[link.url] = render_unfurl(
            result.execution, linked_account_id=result.linked_account_id, dashboard_url=ctx.dashboard_url
        )
    if not unfurls:
        return
    # A link still in the message composer has no message yet: Slack names it by unfurl_id instead.
    in_composer = job.source == "composer" or not (job.reply.channel_id and job.reply.message_ts)
    where: dict[str, Any] = (
        {"unfurl_id": job.unfurl_id, "source": job.source}
        if in_composer
        else {"channel": job.reply.channel_id, "ts": job.reply.message_ts}
    )
    ctx.retry_if_transient(await ctx.once("unfurl", lambda: _unfurl(ctx, where, unfurls)))


async def _unfurl(ctx: JobContext, where: dict[str, Any], unfurls: dict[str, dict[str, Any]]) -> Delivery:
    sent = await web_api.unfurl(ctx.client, where, unfurls)
    if sent:
        log.info("unfurled %d Refold link(s)", len(unfurls))
    else:
        log.warning("chat.unfurl failed (%s)", sent.error)
    return sent
