"""Words about following, acting on runs, and the audit log. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.render.text import format_duration_ms, inline, plural

STALE_CARD_NOTE = (
    "This private card stops updating here: Slack lets an app change it for 30 minutes only. "
    "You'll get a direct message when the run ends."
)
CANT_UPDATE = (
    ":hourglass: I can no longer update the card for `{execution}` (Slack allows an app only so many "
    "changes to a message it did not post). I'll still tell you when the run ends; press Refresh "
    "on the card meanwhile."
)
NO_FOLLOWS = "No runs are being followed in this workspace. Press *Follow* on a running execution's card."
ALREADY_FINISHED = "This run has already finished: there is nothing to follow."


def stopped_after(max_seconds: float) -> str:
    return (
        f"Stopped following after {format_duration_ms(max_seconds * 1000)}: "
        "press Refresh for the latest state, or Follow to start again."
    )


def gave_up(execution_id: str, reason: str) -> str:
    return f":warning: Stopped following `{inline(execution_id, 40)}`: {reason}"


def finished(
    requester: str | None,
    name: str,
    status: str,
    ran_for_ms: float | None,
    failing_node: str | None,
) -> str:
    """The completion reply: "Nightly sync finished: ERRORED after 4 min 12 s · failing node: X"."""
    mention = f"<@{inline(requester, 30)}> " if requester else ""
    took = f" after {format_duration_ms(ran_for_ms)}" if ran_for_ms is not None else ""
    failing = f" · failing node: *{inline(failing_node, 80)}*" if failing_node else ""
    return f"{mention}*{inline(name, 120)}* finished: *{inline(status, 40)}*{took}{failing}"


@dataclass(frozen=True)
class FollowLine:
    execution_id: str
    name: str | None
    status: str | None
    requester: str | None
    channel_id: str | None
    started_at: float


def following_list(lines: Sequence[FollowLine], now: float) -> str:
    if not lines:
        return NO_FOLLOWS
    rows = []
    for line in lines[:20]:
        who = f" for <@{inline(line.requester, 30)}>" if line.requester else ""
        where = f" in <#{inline(line.channel_id, 30)}>" if line.channel_id else ""
        since = format_duration_ms(max(0.0, now - line.started_at) * 1000)
        name = f" *{inline(line.name, 80)}*" if line.name else ""
        status = f" · {inline(line.status, 30)}" if line.status else ""
        rows.append(f"• `{inline(line.execution_id, 40)}`{name}{status}{who}{where} · following for {since}")
    more = f"\n…and {plural(len(lines) - 20, 'more')}" if len(lines) > 20 else ""
    return f"*Following {plural(len(lines), 'run')}*\n" + "\n".join(rows) + more


def who_may_operate(users: Sequence[str], groups: Sequence[str]) -> str:
    names = ["workspace admins and owners"]
    names += [f"<@{inline(u, 30)}>" for u in users[:10]]
    names += [f"<!subteam^{inline(g, 30)}>" for g in groups[:10]]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def not_allowed(may: str, users: Sequence[str], groups: Sequence[str]) -> str:
    """`may`: what was refused, as in "rerun executions"."""
    return (
        f":lock: Only {who_may_operate(users, groups)} may {may} from Slack. "
        "Ask one of them, or ask an admin to add you in `/execution connect`."
    )


def rerun_unconfirmed(old_id: str) -> str:
    return (
        f":warning: Refold was asked to rerun `{inline(old_id, 40)}` for this click, but its answer never "
        "reached the bot, so it was not asked again: Refold may have started the run. Check its recent "
        "executions before you press Rerun once more."
    )


def rerun_started(old_id: str, new_id: str, who: str | None) -> str:
    by = f" by <@{inline(who, 30)}>" if who else ""
    return (
        f":repeat: Rerun of `{inline(old_id, 40)}`{by}: new execution `{inline(new_id, 40)}`, followed below."
    )


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    who: str
    action: str
    execution_id: str
    result: str
    detail: str


def audit_lines(entries: Sequence[AuditLine], *, slack: bool) -> list[str]:
    rows = []
    for e in entries:
        at = e.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        who = f"<@{inline(e.who, 30)}>" if slack and e.who.startswith(("U", "W")) else inline(e.who, 30)
        target = f" {e.execution_id}" if e.execution_id else ""
        if slack and e.execution_id:
            target = f" `{inline(e.execution_id, 40)}`"
        detail = f" ({inline(e.detail, 80)})" if e.detail else ""
        rows.append(f"{at} · {who} · {inline(e.action, 20)}{target} · {inline(e.result, 20)}{detail}")
    return rows
