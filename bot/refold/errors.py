"""Typed Refold failures. Each carries what Refold said, so users can quote it to support."""

from __future__ import annotations


class RefoldError(Exception):
    """Base for every failure talking to Refold. `str()` never contains credentials."""

    kind = "error"

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
    kind = "not_found"


class Unauthorized(RefoldError):
    """401 or 403: the key, token or linked account is not accepted."""

    kind = "unauthorized"


class RequestRejected(RefoldError):
    """Another 4xx: Refold understood us and said no (e.g. a missing linked account)."""

    kind = "rejected"


class RateLimited(RefoldError):
    kind = "rate_limited"


class RefoldBusy(RateLimited):
    """Our own limiter refused to send: waiting longer would keep the user waiting too long."""

    kind = "busy"


class UpstreamError(RefoldError):
    """5xx from Refold or a proxy in front of it."""

    kind = "upstream"

    @property
    def transient(self) -> bool:
        return self.status_code in {502, 503, 504}


class Unreachable(RefoldError):
    """Connect failure or timeout: Refold never answered."""

    kind = "unreachable"


class MalformedResponse(RefoldError):
    """A 2xx whose body is not the documented shape."""

    kind = "malformed"


class DisallowedBaseUrl(ValueError):
    """A workspace tried to point the bot somewhere other than Refold."""
