"""Small helpers every surface shares: who is asking, from where, and may they administer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.workspace import Workspace

log = logging.getLogger(__name__)

RESPONSE_URL_TIMEOUT = 10.0


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


@dataclass(frozen=True)
class Reply:
    """Answers one interaction: through its response_url, or, if Slack refuses that, as the bot."""

    http: httpx.AsyncClient
    client: AsyncWebClient
    response_url: str | None
    channel_id: str | None
    user_id: str | None

    @classmethod
    def of(cls, http: httpx.AsyncClient, client: AsyncWebClient, body: dict[str, Any]) -> Reply:
        channel = (
            body.get("channel_id")
            or (body.get("channel") or {}).get("id")
            or (body.get("container") or {}).get("channel_id")
        )
        user = body.get("user_id") or (body.get("user") or {}).get("id")
        response_url = body.get("response_url")
        return cls(http, client, response_url if isinstance(response_url, str) else None, channel, user)

    async def send(self, **kwargs: Any) -> bool:
        """Deliver; on failure fall back once, and log. Never raises into the task."""
        if await self._via_response_url(kwargs):
            return True
        text, blocks = kwargs.get("text"), kwargs.get("blocks")
        try:
            if kwargs.get("response_type") == "in_channel" and self.channel_id:
                await self.client.chat_postMessage(channel=self.channel_id, text=text, blocks=blocks)
            elif self.channel_id and self.user_id:
                await self.client.chat_postEphemeral(
                    channel=self.channel_id, user=self.user_id, text=text, blocks=blocks
                )
            else:
                raise LookupError("no channel to fall back to")
        except (SlackApiError, LookupError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
            log.error("reply could not be delivered (response_url failed; fallback: %s)", error)
            return False
        except Exception as exc:
            log.error("reply could not be delivered (response_url failed; fallback: %s)", type(exc).__name__)
            return False
        log.warning("response_url failed; replied with a bot message instead")
        return True

    async def _via_response_url(self, body: dict[str, Any]) -> bool:
        # The process's pooled client, not a fresh session per reply: under load that is most of
        # the cost of answering.
        if not self.response_url:
            return False
        try:
            response = await self.http.post(self.response_url, json=body, timeout=RESPONSE_URL_TIMEOUT)
        except httpx.HTTPError as exc:
            log.warning("response_url delivery failed: %s", type(exc).__name__)
            return False
        status = response.status_code
        if status >= 400:
            log.warning("response_url answered HTTP %s", status)
            return False
        return True
