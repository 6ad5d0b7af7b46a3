"""`/execution status`: the workspace's Refold connection, key masked. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.render.text import inline

TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


@dataclass(frozen=True)
class ConnectionFacts:
    kind_label: str  # "API key" or "session token"
    masked_secret: str
    linked_account_id: str | None
    base_url: str
    stored: bool  # False: the operator's env fallback
    org_wide: bool = False
    connected_by: str | None = None  # a Slack user ID, "cli", or None
    connected_at: datetime | None = None
    session_expires_at: datetime | None = None


def connection_status(facts: ConnectionFacts) -> str:
    account = inline(facts.linked_account_id or "–", 120)
    if not facts.stored:
        return (
            f":electric_plug: Using the operator's fallback {facts.kind_label} `{facts.masked_secret}` for "
            f"linked account *{account}*. "
            "A workspace admin can run `/execution connect` to use this workspace's own."
        )
    where = "your Enterprise Grid org" if facts.org_wide else "this workspace"
    who = (
        f"<@{inline(facts.connected_by, 40)}>"
        if facts.connected_by and facts.connected_by != "cli"
        else "an operator (CLI)"
    )
    lines = [
        f":white_check_mark: Refold is connected for {where} with {facts.kind_label} `{facts.masked_secret}`.",
        f"Default linked account: *{account}*",
        f"Base URL: {inline(facts.base_url, 120)}",
    ]
    if facts.connected_at is not None:
        lines.append(f"Connected by {who} on {facts.connected_at.strftime(TIME_FORMAT)}.")
    if facts.session_expires_at is not None:
        lines.append(f"Session token expires {facts.session_expires_at.strftime(TIME_FORMAT)}.")
    return "\n".join(lines)
