"""Friendly, actionable text for every failure a user can meet. Pure."""

from __future__ import annotations

from bot.refold import errors as refold
from bot.refold.ids import InvalidExecutionId, InvalidLinkedAccount
from bot.render.text import inline
from bot.store.errors import CorruptCredentials, NotConnected, StoreUnavailable

USAGE = (
    "*Look up a Refold execution*\n"
    "• `/execution <execution_id> [linked_account_id]`: show a run (IDs are 24 hex characters)\n"
    "• `/execution status`: show this workspace's Refold connection\n"
    "• `/execution connect`: connect Refold credentials (workspace admins)\n"
    "• `/execution disconnect`: remove them (workspace admins)\n"
    "• `/execution help`: this message\n"
    "You can also open an alert's `⋯` menu and choose *Look up execution*."
)


def _with_request_id(text: str, exc: refold.RefoldError) -> str:
    if exc.request_id:
        return f"{text} (Refold request ID `{inline(exc.request_id, 100)}`)"
    return text


def describe_error(exc: BaseException) -> str:
    """One message per failure class: what happened, and what to try next."""
    if isinstance(exc, InvalidExecutionId):
        return (
            f":warning: `{inline(exc.raw, 40)}` is not an execution ID. Execution IDs are 24 hex "
            "characters, like `65410cf6cdf931a12d7ab009`. Try `/execution help`."
        )
    if isinstance(exc, InvalidLinkedAccount):
        return f":warning: That linked account can't be used: {exc}. Check it and try again."
    if isinstance(exc, refold.NotFound):
        return _with_request_id(
            ":mag: Refold has no execution with that ID for this linked account. Check the ID, or add "
            "the linked account: `/execution <id> <linked_account_id>`.",
            exc,
        )
    if isinstance(exc, refold.Unauthorized):
        return _with_request_id(
            ":lock: Refold did not accept this workspace's credentials "
            f"({inline(exc.message, 200)}). An admin can run `/execution connect` to update them.",
            exc,
        )
    if isinstance(exc, refold.RefoldBusy):
        return (
            ":hourglass: Refold is busy: this workspace is using its whole Refold rate limit right now. "
            "Try again in a few seconds."
        )
    if isinstance(exc, refold.RateLimited):
        return _with_request_id(
            ":hourglass: Refold is busy (rate limit reached). Try again in a few seconds.", exc
        )
    if isinstance(exc, refold.Unreachable):
        return ":satellite_antenna: Refold could not be reached just now. Try again in a minute."
    if isinstance(exc, refold.UpstreamError):
        return _with_request_id(
            f":boom: Refold had a problem answering (HTTP {exc.status_code}: {inline(exc.message, 200)}). "
            "Try again in a minute.",
            exc,
        )
    if isinstance(exc, refold.MalformedResponse):
        return _with_request_id(
            f":jigsaw: Refold answered in a way the bot can't read ({inline(exc.message, 200)}). "
            "Try again in a minute; if it persists, check the Refold dashboard.",
            exc,
        )
    if isinstance(exc, refold.RequestRejected):
        return _with_request_id(
            f":no_entry_sign: Refold rejected the request: {inline(exc.message, 200)}. "
            "Check the linked account and try again.",
            exc,
        )
    if isinstance(exc, refold.DisallowedBaseUrl):
        return f":no_entry_sign: {inline(str(exc), 300)}."
    if isinstance(exc, NotConnected | CorruptCredentials):
        return f":electric_plug: {inline(str(exc), 400)}"
    if isinstance(exc, StoreUnavailable):
        return ":floppy_disk: The bot's storage (Redis) is not answering right now. Try again in a moment."
    return (
        ":warning: Something went wrong on the bot's side. Try again; if it keeps happening, tell your admin."
    )
