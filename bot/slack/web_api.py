"""The bot's messages through Slack's Web API: post, post a card (in a thread or not), update, post
privately, open a direct message, unfurl; and the one rule for which Slack failures are transient.

Every call answers a `Delivery` instead of raising, so a handler decides in one place whether to try
again later (`JobContext.retry_if_transient`) or to tell someone. The pacing that keeps these calls
within Slack's rate limits sits under them, in the client (`bot.slack.clients`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.render.blocks import Card, CardBudget

log = logging.getLogger(__name__)

# Slack's answers for a message too big to take: the card is rendered smaller and sent again.
TOO_LONG_ERRORS = frozenset({"msg_too_long", "invalid_blocks", "too_many_attachments"})
SHRINK_ATTEMPTS = 3
# Network failures on the way to Slack: as transient as a 5xx.
UNREACHABLE = (SlackRequestError, aiohttp.ClientError, OSError, TimeoutError)


@dataclass(frozen=True)
class Delivery:
    """Whether a message reached Slack; when it did not, whether trying later could help."""

    ok: bool
    transient: bool = False
    ts: str | None = None  # the posted message, when Slack said which
    error: str | None = None  # Slack's error code, when it refused

    def __bool__(self) -> bool:
        return self.ok


DELIVERED = Delivery(True)


def transient_status(status: int) -> bool:
    """The one rule: rate limited (HTTP 429) or Slack's own trouble (5xx) may pass; the rest won't."""
    return status == 429 or status >= 500


def is_transient(exc: SlackApiError) -> bool:
    return exc.response.get("error") == "ratelimited" or transient_status(exc.response.status_code)


def slack_error(exc: SlackApiError) -> str:
    data = exc.response.data
    return str(data.get("error") or "") if isinstance(data, dict) else f"http_{exc.response.status_code}"


def refused(exc: Exception) -> Delivery:
    """A failed call as a Delivery: Slack's error code, and whether trying later could help."""
    if isinstance(exc, SlackApiError):
        return Delivery(False, transient=is_transient(exc), error=slack_error(exc))
    return Delivery(False, transient=True, error="unreachable")


def _delivered(response: Any) -> Delivery:
    ts = response.get("ts") if hasattr(response, "get") else None
    return Delivery(True, ts=str(ts) if ts else None)


async def post(
    client: AsyncWebClient,
    channel: str,
    text: str,
    *,
    blocks: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
) -> Delivery:
    try:
        response = await client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            blocks=blocks or None,
            unfurl_links=False,
            unfurl_media=False,
        )
    except (SlackApiError, *UNREACHABLE) as exc:
        return refused(exc)
    return _delivered(response)


async def post_card(
    client: AsyncWebClient, channel: str, thread_ts: str | None, render: Callable[[CardBudget], Card]
) -> Delivery:
    """Post a card (in a thread with `thread_ts`), rendered smaller while Slack says it is too big.

    Delivered with the message's `ts`, so the card can be changed later with chat.update.
    """
    budget = CardBudget()
    for _ in range(SHRINK_ATTEMPTS):
        card = render(budget)
        delivery = await post(client, channel, card.text, blocks=card.blocks, thread_ts=thread_ts)
        if delivery or delivery.error not in TOO_LONG_ERRORS:
            if not delivery:
                log.info("cannot post the card (%s)", delivery.error)
            return delivery
        log.warning("card rejected as %s; retrying smaller", delivery.error)
        budget = budget.smaller()
    return Delivery(False)


async def update(
    client: AsyncWebClient, channel: str, ts: str, text: str, *, blocks: list[dict[str, Any]] | None = None
) -> Delivery:
    try:
        await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
    except (SlackApiError, *UNREACHABLE) as exc:
        return refused(exc)
    return Delivery(True, ts=ts)


async def post_privately(
    client: AsyncWebClient,
    channel: str,
    user: str,
    text: str | None,
    *,
    blocks: list[dict[str, Any]] | None = None,
) -> Delivery:
    try:
        await client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)
    except (SlackApiError, *UNREACHABLE) as exc:
        return refused(exc)
    return DELIVERED


async def direct_message(client: AsyncWebClient, user: str, text: str) -> Delivery:
    """A message in the bot's DM with `user` (opened first: a user ID is not a channel)."""
    try:
        opened = await client.conversations_open(users=user)
        channel = (opened.get("channel") or {}).get("id") or user
    except (SlackApiError, *UNREACHABLE) as exc:
        return refused(exc)
    return await post(client, str(channel), text)


async def unfurl(client: AsyncWebClient, where: dict[str, Any], unfurls: dict[str, Any]) -> Delivery:
    try:
        await client.chat_unfurl(unfurls=unfurls, **where)
    except (SlackApiError, *UNREACHABLE) as exc:
        return refused(exc)
    return DELIVERED
