"""Store failures, as facts; `bot.render.errors` says what to do about them."""

from __future__ import annotations

from bot.errors import BotError, ErrorKind


class StoreUnavailable(BotError):
    """Redis did not answer in time or refused the connection."""

    kind = ErrorKind.STORE_UNAVAILABLE

    def __init__(self, detail: str = "Redis is unavailable") -> None:
        super().__init__(detail)


class CorruptCredentials(BotError):
    """A stored record could not be decrypted or read: the workspace must reconnect."""

    kind = ErrorKind.CORRUPT_CREDENTIALS


class SessionExpired(BotError):
    """The stored session token has passed its expiry: the workspace must reconnect."""

    kind = ErrorKind.SESSION_EXPIRED


class NotConnected(BotError):
    """No credentials for this workspace, and no fallback configured."""

    kind = ErrorKind.NOT_CONNECTED
