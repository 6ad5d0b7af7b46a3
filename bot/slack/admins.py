"""Who may administer the Refold connection: workspace admins and owners, read fresh from Slack."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


async def is_workspace_admin(client: AsyncWebClient, user_id: str | None) -> bool:
    """Never trusted from the payload: users.info at every step."""
    if not user_id:
        return False
    try:
        response = await client.users_info(user=user_id)
    except SlackApiError as exc:
        log.warning("users.info failed: %s", exc.response.get("error"))
        return False
    user = response.get("user") or {}
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
