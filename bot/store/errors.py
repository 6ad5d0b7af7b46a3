"""Store failures the Slack layer turns into clear messages."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """Redis did not answer in time or refused the connection."""

    def __init__(self, detail: str = "Redis is unavailable") -> None:
        super().__init__(detail)


class CorruptCredentials(Exception):
    """A stored record could not be decrypted or read: the workspace must reconnect."""


class NotConnected(Exception):
    """No credentials for this workspace, and no fallback configured."""
