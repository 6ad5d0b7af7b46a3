"""Execution ID validation: the gate before any request leaves the process."""

from __future__ import annotations

import re

from bot.errors import BotError, ErrorKind

_EXECUTION_ID = re.compile(r"[0-9a-fA-F]{24}")
# Long enough for an e-mail address or any real customer key; short enough for a button value.
MAX_LINKED_ACCOUNT_LENGTH = 256


class InvalidExecutionId(BotError, ValueError):
    """Raised before any network call when the text cannot be an execution ID."""

    kind = ErrorKind.INVALID_EXECUTION_ID

    def __init__(self, raw: str) -> None:
        self.raw = raw
        shown = raw if len(raw) <= 40 else raw[:37] + "…"
        super().__init__(f"{shown!r} is not an execution ID (expected 24 hex characters)")


class InvalidLinkedAccount(BotError, ValueError):
    kind = ErrorKind.INVALID_LINKED_ACCOUNT


def normalize_execution_id(raw: str) -> str:
    """Return the canonical (lower-case) ID, or raise InvalidExecutionId."""
    candidate = raw.strip() if isinstance(raw, str) else ""
    if not _EXECUTION_ID.fullmatch(candidate):
        raise InvalidExecutionId(raw if isinstance(raw, str) else repr(raw))
    return candidate.lower()


def normalize_linked_account(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise InvalidLinkedAccount("the linked account is empty")
    if len(value) > MAX_LINKED_ACCOUNT_LENGTH:
        raise InvalidLinkedAccount(
            f"the linked account is longer than {MAX_LINKED_ACCOUNT_LENGTH} characters"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidLinkedAccount("the linked account contains control characters")
    if not value.isascii():
        # Refold takes the linked account as an HTTP header, which carries ASCII only.
        raise InvalidLinkedAccount("the linked account must be plain ASCII text")
    return value
