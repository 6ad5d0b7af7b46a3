"""The one family of failures a person can be told about. Each carries a kind; words live in render.

Lower layers (Refold client, stores, ID checks) raise these with facts only; `bot.render.errors`
turns a kind into a Slack or a terminal sentence.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    INVALID_EXECUTION_ID = "invalid_execution_id"
    INVALID_LINKED_ACCOUNT = "invalid_linked_account"
    INVALID_SECRET = "invalid_secret"  # noqa: S105 - a kind name, not a secret
    DISALLOWED_BASE_URL = "disallowed_base_url"
    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    REJECTED = "rejected"
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"
    UPSTREAM = "upstream"
    UNREACHABLE = "unreachable"
    MALFORMED = "malformed"
    NOT_CONNECTED = "not_connected"
    SESSION_EXPIRED = "session_expired"
    CORRUPT_CREDENTIALS = "corrupt_credentials"
    STORE_UNAVAILABLE = "store_unavailable"
    INTERNAL = "internal"


# Failures a later attempt can fix: a job that meets one is retried with backoff before it answers.
TRANSIENT_KINDS = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.UNREACHABLE, ErrorKind.STORE_UNAVAILABLE, ErrorKind.UPSTREAM}
)


class BotError(Exception):
    """Base of every expected failure. `str()` is a plain fact for logs and never holds a secret."""

    kind: ClassVar[ErrorKind] = ErrorKind.INTERNAL

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS
