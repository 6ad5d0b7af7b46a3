"""Typed Refold failures. Each carries what Refold said, so users can quote it to support."""

from __future__ import annotations

from typing import Any

from bot.errors import BotError, ErrorKind


class RefoldError(BotError):
    """Base for every failure talking to Refold. `str()` never contains credentials."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.request_id = request_id


class NotFound(RefoldError):
    kind = ErrorKind.NOT_FOUND

    def __init__(self, message: str, *, searched: list[str] | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        # Linked accounts also tried (recently used ones), when the default had no such execution.
        self.searched = searched or []


class Unauthorized(RefoldError):
    """401 or 403: the key, token or linked account is not accepted."""

    kind = ErrorKind.UNAUTHORIZED


class RequestRejected(RefoldError):
    """Another 4xx: Refold understood us and said no (e.g. a missing linked account)."""

    kind = ErrorKind.REJECTED


class RateLimited(RefoldError):
    kind = ErrorKind.RATE_LIMITED


class RefoldBusy(RateLimited):
    """Our own limiter refused to send: waiting longer would keep the user waiting too long."""

    kind = ErrorKind.BUSY

    @property
    def transient(self) -> bool:
        # Waiting is exactly what the limiter declined to do; a job retry would only wait again.
        return False


class UpstreamError(RefoldError):
    """5xx from Refold or a proxy in front of it."""

    kind = ErrorKind.UPSTREAM

    @property
    def transient(self) -> bool:
        return self.status_code in {502, 503, 504}


class Unreachable(RefoldError):
    """Connect failure or timeout: Refold never answered."""

    kind = ErrorKind.UNREACHABLE


class MalformedResponse(RefoldError):
    """A 2xx whose body is not the documented shape."""

    kind = ErrorKind.MALFORMED


class DisallowedBaseUrl(BotError, ValueError):
    """A workspace tried to point the bot somewhere other than Refold."""

    kind = ErrorKind.DISALLOWED_BASE_URL
