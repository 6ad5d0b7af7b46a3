"""Slack redelivers an event it thinks was lost (`X-Slack-Retry-Num`), with the same `event_id`.

Every event is claimed by its `event_id` before any listener sees it; a redelivery is acked and
nothing is done twice. When Redis is away the event is handled: a rare repeat beats a lost event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.slack.payloads import EventEnvelope
from bot.store.errors import StoreUnavailable
from bot.store.seen import SeenDeliveries

log = logging.getLogger(__name__)

# Slack retries three times within about five minutes; an hour leaves a wide margin.
EVENT_MEMORY_SECONDS = 3600


def register(app: AsyncApp, seen: SeenDeliveries) -> None:
    @app.middleware
    async def once_per_event(
        body: dict[str, Any], next: Callable[[], Awaitable[None]], resp: BoltResponse
    ) -> BoltResponse | None:
        envelope = EventEnvelope.read(body)
        event_id = envelope.event_id
        if event_id:
            try:
                first = await seen.claim("event", event_id[:100], EVENT_MEMORY_SECONDS)
            except StoreUnavailable:
                log.warning("could not check an event for redelivery: Redis unavailable")
                first = True
            if not first:
                log.info(
                    "%s event %s was already received; this redelivery is acked only",
                    envelope.kind,
                    event_id[:20],
                )
                return BoltResponse(status=200, body="")
        await next()
        return resp
