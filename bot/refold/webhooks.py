"""Refold's webhook deliveries: the signature, and the events the bot acts on. Pure.

Documented payloads (refold-api/webhooks.mdx): workflow events carry `instance_id`, `workflow_id`,
`workflow_name`, `linked_account_id`, `event` and `status`; connection events carry
`linked_account_id`, `environment`, `event`, `slug` (the app) and `createdAt`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.refold.ids import InvalidExecutionId, normalize_execution_id

SIGNATURE_HEADER = "x-cobalt-signature"
MAX_FIELD_CHARS = 200


class WebhookEvent(StrEnum):
    WORKFLOW_ERRORED = "Workflow Errored"
    WORKFLOW_COMPLETED = "Workflow Completed"
    CONNECTION_EXPIRED = "Connection Expired"
    CONNECTION_CREATED = "Connection Created"
    CONNECTION_DELETED = "Connection Deleted"


WORKFLOW_EVENTS = (WebhookEvent.WORKFLOW_ERRORED, WebhookEvent.WORKFLOW_COMPLETED)


def signature_valid(body: bytes, signature: str | None, api_key: str) -> bool:
    """Hex HMAC-SHA256 of the raw body keyed with the API key, compared in constant time."""
    if not signature:
        return False
    expected = hmac.new(api_key.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def sign(body: bytes, api_key: str) -> str:
    return hmac.new(api_key.encode(), body, hashlib.sha256).hexdigest()


class UnreadableDelivery(ValueError):
    """Not JSON, not an object, or not an event the bot knows."""


class Delivery(BaseModel):
    """One delivery as the bot acts on it; carried whole inside the job that posts it."""

    model_config = ConfigDict(frozen=True)

    event: WebhookEvent
    linked_account_id: str | None
    instance_id: str | None = None  # workflow events: the run
    workflow_id: str | None = None
    workflow_name: str | None = None
    environment: str | None = None  # connection events
    app: str | None = None  # connection events: the app's slug
    created_at: str | None = None

    @property
    def dedupe_name(self) -> str:
        """Stable across Refold's retries of one event."""
        if self.instance_id:
            return f"{self.instance_id}:{self.event.value}"
        parts = (self.event.value, self.linked_account_id, self.app, self.environment, self.created_at)
        return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()[:32]


def read_delivery(body: bytes) -> Delivery:
    try:
        data: Any = json.loads(body)
    except ValueError:
        raise UnreadableDelivery("the body is not JSON") from None
    if not isinstance(data, dict):
        raise UnreadableDelivery("the body is not a JSON object")
    try:
        event = WebhookEvent(str(data.get("event") or ""))
    except ValueError:
        raise UnreadableDelivery("the event is not one Refold documents") from None
    instance_id = None
    if event in WORKFLOW_EVENTS:
        try:
            instance_id = normalize_execution_id(str(data.get("instance_id") or ""))
        except InvalidExecutionId:
            raise UnreadableDelivery("the workflow event has no valid instance_id") from None
    return Delivery(
        event=event,
        linked_account_id=_field(data, "linked_account_id"),
        instance_id=instance_id,
        workflow_id=_field(data, "workflow_id"),
        workflow_name=_field(data, "workflow_name"),
        environment=_field(data, "environment"),
        app=_field(data, "slug"),
        created_at=_field(data, "createdAt"),
    )


def _field(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text[:MAX_FIELD_CHARS] or None
