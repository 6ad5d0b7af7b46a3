"""Who may administer the Refold connection (workspace admins and owners) and who may operate (them,
and the people and user groups the connect form names), read fresh from Slack."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.usecases.actions import Operators

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


async def may_operate(client: AsyncWebClient, user: str | None, operators: Operators) -> bool:
    """Rerun, stop, snooze: admins and owners, and the connect form's operators (people or groups)."""
    if not user:
        return False
    if user in operators.users or await is_workspace_admin(client, user):
        return True
    for group in operators.groups:
        try:
            response = await client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning("usergroups.users.list failed: %s", exc.response.get("error"))
            continue
        if user in (response.get("users") or []):
            return True
    return False
