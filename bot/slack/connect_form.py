"""Opening the connect form, from `/execution connect` or the App Home's Connect button."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.render.modals import connect_view
from bot.usecases.workspace import CredentialResolver, Workspace

log = logging.getLogger(__name__)

# The connect form must open within Slack's 3 s trigger window: listing groups gets a slice of it.
USER_GROUPS_SECONDS = 1.0


async def open_connect_form(
    client: AsyncWebClient, trigger_id: str | None, workspace: Workspace, resolver: CredentialResolver
) -> bool:
    """Open the form, filled with who may Rerun and Stop today; False when Slack would not open it."""
    users: list[str] = []
    chosen: list[str] = []
    try:
        record = (await resolver.resolve(workspace)).record
        if record is not None:
            users, chosen = record.operator_users, record.operator_groups
    except BotError:
        pass  # not connected yet (or unreadable): the form starts empty
    groups = await _user_groups(client)
    try:
        await client.views_open(trigger_id=trigger_id, view=connect_view(groups, users, chosen))
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        return False
    return True


async def _user_groups(client: AsyncWebClient) -> list[tuple[str, str]]:
    """The workspace's user groups for the connect form; none when Slack will not list them."""
    try:
        async with asyncio.timeout(USER_GROUPS_SECONDS):
            response = await client.usergroups_list()
    except (SlackApiError, TimeoutError) as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else "timeout"
        log.info("user groups not offered in the connect form: usergroups.list %s", error)
        return []
    groups = response.get("usergroups") or []
    return [
        (str(g["id"]), str(g.get("name") or g.get("handle") or g["id"]))
        for g in groups
        if isinstance(g, dict) and g.get("id") and not g.get("date_delete")
    ]
