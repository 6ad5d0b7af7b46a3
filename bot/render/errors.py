"""The one place failures become words: what happened and what to try next. Pure.

Every expected failure is a `BotError` with a kind. Each kind has a Slack sentence (mrkdwn, emoji,
`/execution …` commands) and a terminal sentence (plain text, `python -m bot …` commands).
"""

from __future__ import annotations

from enum import StrEnum

from bot.errors import BotError, ErrorKind
from bot.render.text import inline


class Surface(StrEnum):
    SLACK = "slack"
    TERMINAL = "terminal"


def _refold_detail(exc: BaseException, attribute: str) -> str:
    value = getattr(exc, attribute, None)
    return "" if value is None else str(value)


def _with_request_id(text: str, exc: BaseException, surface: Surface) -> str:
    request_id = _refold_detail(exc, "request_id")
    if not request_id:
        return text
    shown = inline(request_id, 100)
    return (
        f"{text} (Refold request ID `{shown}`)"
        if surface is Surface.SLACK
        else f"{text} (Refold request ID {shown})"
    )


def _reconnect(surface: Surface) -> str:
    if surface is Surface.SLACK:
        return "A workspace admin can run `/execution connect` to connect again."
    return "Store new credentials with `python -m bot connect --team T…` (the secret on stdin)."


def _sentence(kind: ErrorKind, exc: BaseException, surface: Surface) -> tuple[str, str]:
    """(emoji name, sentence) for one failure."""
    slack = surface is Surface.SLACK
    message = inline(_refold_detail(exc, "message") or str(exc), 200)
    if kind is ErrorKind.INVALID_EXECUTION_ID:
        raw = inline(_refold_detail(exc, "raw"), 40)
        hint = " Try `/execution help`." if slack else ""
        quoted = f"`{raw}`" if slack else f"'{raw}'"
        return "warning", (
            f"{quoted} is not an execution ID. Execution IDs are 24 hex characters, "
            f"like {'`65410cf6cdf931a12d7ab009`' if slack else '65410cf6cdf931a12d7ab009'}.{hint}"
        )
    if kind is ErrorKind.INVALID_LINKED_ACCOUNT:
        return (
            "warning",
            f"That linked account can't be used: {inline(str(exc), 200)}. Check it and try again.",
        )
    if kind is ErrorKind.INVALID_SECRET:
        return "warning", f"{inline(str(exc), 200)[:1].upper()}{inline(str(exc), 200)[1:]}."
    if kind is ErrorKind.DISALLOWED_BASE_URL:
        return "no_entry_sign", f"{inline(str(exc), 300)}."
    if kind is ErrorKind.NOT_FOUND:
        how = (
            "add the linked account: `/execution <id> <linked_account_id>`"
            if slack
            else "pass the linked account with --linked-account"
        )
        searched = [str(a) for a in getattr(exc, "searched", None) or []]
        if searched:
            shown = ", ".join(inline(a, 60) for a in searched)
            return "mag", _with_request_id(
                f"Refold has no execution with that ID for the default linked account, nor for the "
                f"{len(searched)} this workspace used recently ({shown}). It may belong to a linked account "
                f"the bot has not seen: {how}.",
                exc,
                surface,
            )
        return "mag", _with_request_id(
            f"Refold has no execution with that ID for this linked account. Check the ID, or {how}.",
            exc,
            surface,
        )
    if kind is ErrorKind.UNAUTHORIZED:
        fix = (
            "An admin can run `/execution connect` to update them."
            if slack
            else "Store new ones with `python -m bot connect`, or fix REFOLD_API_KEY."
        )
        return "lock", _with_request_id(
            f"Refold did not accept the credentials ({message}). {fix}", exc, surface
        )
    if kind is ErrorKind.BUSY:
        return "hourglass", (
            "Refold is busy: this workspace has more than a minute of Refold requests waiting "
            "for its rate limit. Try again in a minute."
        )
    if kind is ErrorKind.RATE_LIMITED:
        return "hourglass", _with_request_id(
            "Refold is busy (rate limit reached). Try again in a few seconds.", exc, surface
        )
    if kind is ErrorKind.UNREACHABLE:
        return "satellite_antenna", "Refold could not be reached just now. Try again in a minute."
    if kind is ErrorKind.UPSTREAM:
        status = _refold_detail(exc, "status_code") or "5xx"
        return "boom", _with_request_id(
            f"Refold had a problem answering (HTTP {status}: {message}). Try again in a minute.", exc, surface
        )
    if kind is ErrorKind.MALFORMED:
        return "jigsaw", _with_request_id(
            f"Refold answered in a way the bot can't read ({message}). "
            "Try again in a minute; if it persists, check the Refold dashboard.",
            exc,
            surface,
        )
    if kind is ErrorKind.REJECTED:
        return "no_entry_sign", _with_request_id(
            f"Refold rejected the request: {message}. Check the linked account and try again.", exc, surface
        )
    if kind is ErrorKind.NOT_CONNECTED:
        if slack:
            return "electric_plug", (
                "This workspace is not connected to Refold yet. A workspace admin can run `/execution connect`."
            )
        return "electric_plug", (
            "This workspace is not connected to Refold: store credentials with "
            "`python -m bot connect --team T…`, or set REFOLD_API_KEY and REFOLD_LINKED_ACCOUNT_ID as a fallback."
        )
    if kind is ErrorKind.SESSION_EXPIRED:
        return (
            "electric_plug",
            f"The Refold session token for this workspace has expired. {_reconnect(surface)}",
        )
    if kind is ErrorKind.CORRUPT_CREDENTIALS:
        return "electric_plug", (
            f"The stored Refold credentials for this workspace can't be read. {_reconnect(surface)}"
        )
    if kind is ErrorKind.STORE_UNAVAILABLE:
        if slack:
            return (
                "floppy_disk",
                "The bot's storage (Redis) is not answering right now. Try again in a moment.",
            )
        return "floppy_disk", (
            f"Redis is not answering ({inline(str(exc), 120)}). Check REDIS_URL and that redis-server is running."
        )
    if slack:
        return (
            "warning",
            "Something went wrong on the bot's side. Try again; if it keeps happening, tell your admin.",
        )
    return "warning", "Something went wrong inside the bot; the log has the details."


def error_kind(exc: BaseException) -> ErrorKind:
    return exc.kind if isinstance(exc, BotError) else ErrorKind.INTERNAL


def describe(exc: BaseException, surface: Surface = Surface.SLACK) -> str:
    """One sentence per failure kind: what happened, and what to try next."""
    emoji, sentence = _sentence(error_kind(exc), exc, surface)
    return f":{emoji}: {sentence}" if surface is Surface.SLACK else sentence
