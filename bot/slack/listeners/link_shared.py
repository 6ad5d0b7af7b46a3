"""`link_shared`: Refold links that name an execution unfurl into a compact card.

Redeliveries of the event never get here (`bot.slack.listeners.redelivery`).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.jobs.kinds import Origin, ReplyTarget, UnfurlJob, UnfurlLink
from bot.refold.links import execution_in_link
from bot.slack.dispatch import Dispatcher
from bot.slack.payloads import SharedLinks

MAX_LINKS = 5  # links Slack sends in one event are few; a card each is plenty


def register(
    app: AsyncApp,
    dispatcher: Dispatcher,
    domains: list[str],
    dashboard_url: str | None,
) -> None:
    @app.event("link_shared")
    async def link_shared(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        shared = SharedLinks.read(body, event)
        links: list[UnfurlLink] = []
        for url in shared.urls:
            execution_id = execution_in_link(url, domains, dashboard_url)
            if execution_id and all(known.url != url for known in links):
                links.append(UnfurlLink(url=url[:3000], execution_id=execution_id))
        if not links:
            return
        dispatcher.submit(
            UnfurlJob(
                origin=Origin(
                    team_id=context.team_id,
                    enterprise_id=context.enterprise_id,
                    org_wide=bool(context.is_enterprise_install),
                    user_id=shared.user_id,
                ),
                reply=ReplyTarget(
                    channel_id=shared.channel_id, message_ts=shared.message_ts, ephemeral=False
                ),
                interaction=f"unfurl:{shared.event_id or shared.channel_id}:{shared.message_ts}",
                links=links[:MAX_LINKS],
                unfurl_id=shared.unfurl_id,
                source=shared.source,
            )
        )
