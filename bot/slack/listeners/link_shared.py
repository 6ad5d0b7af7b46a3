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

MAX_LINKS = 5  # links Slack sends in one event are few; a card each is plenty


def register(
    app: AsyncApp,
    dispatcher: Dispatcher,
    domains: list[str],
    dashboard_url: str | None,
) -> None:
    @app.event("link_shared")
    async def link_shared(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        links: list[UnfurlLink] = []
        for link in event.get("links") or []:
            url = link.get("url") if isinstance(link, dict) else None
            if not isinstance(url, str):
                continue
            execution_id = execution_in_link(url, domains, dashboard_url)
            if execution_id and all(known.url != url for known in links):
                links.append(UnfurlLink(url=url[:3000], execution_id=execution_id))
        if not links:
            return
        event_id = str(body.get("event_id") or "")
        channel, ts = event.get("channel"), event.get("message_ts")
        unfurl_id, source = event.get("unfurl_id"), event.get("source")
        dispatcher.submit(
            UnfurlJob(
                origin=Origin(
                    team_id=context.team_id,
                    enterprise_id=context.enterprise_id,
                    org_wide=bool(context.is_enterprise_install),
                    user_id=event.get("user") if isinstance(event.get("user"), str) else None,
                ),
                reply=ReplyTarget(
                    channel_id=channel if isinstance(channel, str) else None,
                    message_ts=ts if isinstance(ts, str) else None,
                    ephemeral=False,
                ),
                interaction=f"unfurl:{event_id or channel}:{ts}",
                links=links[:MAX_LINKS],
                unfurl_id=unfurl_id if isinstance(unfurl_id, str) else None,
                source=source if isinstance(source, str) else None,
            )
        )
