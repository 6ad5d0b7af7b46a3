"""Card buttons: their action IDs, and the value each carries, encoded and decoded here only.

A value is `{"e": execution_id, "a": linked_account}`: enough to replay the lookup, never a credential.
Values come back from Slack untrusted, so decoding re-validates everything.
"""

from __future__ import annotations

import json
from typing import Any

from bot.parse import FoundExecution
from bot.refold.ids import (
    InvalidExecutionId,
    InvalidLinkedAccount,
    normalize_execution_id,
    normalize_linked_account,
)

REFRESH_ACTION = "refresh_execution"
SHARE_ACTION = "share_execution"
CARD_ACTIONS = (REFRESH_ACTION, SHARE_ACTION)

MAX_VALUE_CHARS = 2000


def encode_target(execution_id: str, linked_account_id: str | None) -> str:
    payload: dict[str, str] = {"e": execution_id}
    if linked_account_id:
        payload["a"] = linked_account_id
    return json.dumps(payload, separators=(",", ":"))


def decode_target(value: Any) -> FoundExecution | None:
    """The execution a button names; None when the value was tampered with or is stale."""
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
        return None
    try:
        data = json.loads(value)
        execution_id = normalize_execution_id(data["e"])
        account = data.get("a")
        account = normalize_linked_account(account) if account is not None else None
    except (ValueError, KeyError, TypeError, AttributeError, InvalidExecutionId, InvalidLinkedAccount):
        return None
    return FoundExecution(execution_id, account)
