"""Small helpers every surface shares: who is asking, from where, and may they administer."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.workspace import Workspace

log = logging.getLogger(__name__)


def workspace_of(context: AsyncBoltContext, body: dict[str, Any]) -> Workspace:
    team_id = context.team_id or (body.get("user") or {}).get("team_id") or (body.get("team") or {}).get("id")
    return Workspace(team_id=team_id, enterprise_id=context.enterprise_id)


async def is_workspace_admin(client: AsyncWebClient, user_id: str | None) -> bool:
    """Admins and owners only, read fresh from users.info: never trusted from the payload."""
    if not user_id:
        return False
    try:
        response = await client.users_info(user=user_id)
    except SlackApiError as exc:
        log.warning("users.info failed: %s", exc.response.get("error"))
        return False
    user = response.get("user") or {}
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


async def safe_respond(respond: AsyncRespond, **kwargs: Any) -> bool:
    """Send through the response_url; a failure is logged, never raised into the task."""
    try:
        response = await respond(**kwargs)
    except Exception as exc:
        log.error("response_url delivery failed: %s", type(exc).__name__)
        return False
    status = getattr(response, "status_code", 200)
    if status >= 400:
        log.error("response_url answered HTTP %s", status)
        return False
    return True
