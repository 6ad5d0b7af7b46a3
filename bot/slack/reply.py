"""Answers one interaction: through its response_url, or, if Slack refuses that, as the bot."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.kinds import ReplyTarget
from bot.slack import web_api
from bot.slack.web_api import DELIVERED, Delivery, transient_status

log = logging.getLogger(__name__)

RESPONSE_URL_TIMEOUT = 10.0


@dataclass(frozen=True)
class Reply:
    http: httpx.AsyncClient
    client: AsyncWebClient
    target: ReplyTarget

    async def send(self, **kwargs: Any) -> Delivery:
        """Deliver; on failure fall back once, and log. Never raises into the task."""
        first = await self.via_response_url(kwargs)
        if first:
            return first
        text, blocks = kwargs.get("text"), kwargs.get("blocks")
        channel, user = self.target.channel_id, self.target.user_id
        if kwargs.get("response_type") == "in_channel" and channel:
            fallback = await web_api.post(self.client, channel, text or "", blocks=blocks)
        elif channel and user:
            fallback = await web_api.post_privately(self.client, channel, user, text, blocks=blocks)
        else:
            fallback = Delivery(False, error="no channel to fall back to")
        if not fallback:
            log.error("reply could not be delivered (response_url failed; fallback: %s)", fallback.error)
            return Delivery(False, first.transient or fallback.transient)
        log.warning("response_url failed; replied with a bot message instead")
        return DELIVERED

    async def via_response_url(self, body: dict[str, Any]) -> Delivery:
        """Only through the response_url, no fallback: not ok and not transient means it is spent."""
        # The process's pooled client, not a fresh session per reply: under load that is most of
        # the cost of answering.
        url = self.target.response_url
        if not url:
            return Delivery(False)
        try:
            response = await self.http.post(url, json=body, timeout=RESPONSE_URL_TIMEOUT)
        except httpx.HTTPError as exc:
            log.warning("response_url delivery failed: %s", type(exc).__name__)
            return Delivery(False, True)
        status = response.status_code
        if status >= 400:
            log.warning("response_url answered HTTP %s", status)
            return Delivery(False, transient_status(status))
        return DELIVERED
