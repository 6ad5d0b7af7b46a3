"""The daily digest's message, and the words of `/execution digest`. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.render import block_kit as kit
from bot.render.text import clip, escape_mrkdwn, inline, plural

DIGEST_USAGE = (
    "*A daily digest of this channel's Refold alerts* (workspace admins and the connect form's operators)\n"
    "• `/execution digest on [at 09:00] [tz:Europe/Berlin] [quiet:skip]`: every day at that local time, one "
    "message here: runs errored per workflow, the top causes with their linked accounts, causes new since "
    "the day before, each beside its 7-day average (default 09:00 in your Slack time zone; `quiet:skip` "
    "posts nothing on a day with no failure)\n"
    "• `/execution digest off`: stop it"
)
DIGEST_NOT_ALLOWED = (
    ":lock: Only workspace admins and owners, and the people the connect form names as operators, can "
    "change the daily digest. Ask one of them."
)
NO_ROUTE_FOR_DIGEST = (
    "This channel gets no Refold alerts, so there is nothing to sum up. Run `/execution alerts on` here "
    "first, then `/execution digest on`."
)
DIGEST_OFF = ":white_check_mark: The daily digest is off in this channel."
NO_DIGEST = "There is no daily digest in this channel; nothing to turn off."
TOP_WORKFLOWS = 10
TOP_CAUSES = 5
NAMED_ACCOUNTS = 3
SECTION_CHARS = 2900


@dataclass(frozen=True)
class CountLine:
    name: str
    count: int
    average: float | None  # over the days before; None on the first day


@dataclass(frozen=True)
class CauseLine:
    workflow: str
    node: str
    error: str
    count: int
    average: float | None
    accounts: Sequence[str]  # the most hit first
    new: bool  # not seen the day before


@dataclass(frozen=True)
class DigestFacts:
    channel_id: str
    start: datetime  # local, in the digest's zone
    end: datetime
    zone: str
    days_averaged: int  # 0: no day before to compare with
    errored: CountLine
    accounts: CountLine  # linked accounts with a failure
    workflows: Sequence[CountLine]
    causes: Sequence[CauseLine]
    new_causes: int


@dataclass(frozen=True)
class DigestSetting:
    at: str
    zone: str
    quiet: str  # post | skip
    by: str


def _average(value: float | None) -> str:
    if value is None:
        return ""
    shown = f"{value:.1f}".removesuffix(".0")
    return f" (avg {shown})"


def _span(facts: DigestFacts) -> str:
    return f"{facts.start:%a %-d %b %H:%M} to {facts.end:%a %-d %b %H:%M} ({inline(facts.zone, 40)})"


def _compared(facts: DigestFacts) -> str:
    if facts.days_averaged == 0:
        return "_No earlier day to compare with yet._"
    return f"_Averages are over the {plural(facts.days_averaged, 'day')} before._"


def is_quiet(facts: DigestFacts) -> bool:
    return facts.errored.count == 0


def digest_text(facts: DigestFacts) -> str:
    """The digest as one text: the message's notification text, and all of it where blocks fail."""
    return "\n".join(_parts(facts))


def digest_blocks(facts: DigestFacts) -> list[dict[str, Any]]:
    return [kit.section(clip(part, SECTION_CHARS)) for part in _parts(facts)]


def _parts(facts: DigestFacts) -> list[str]:
    head = f":newspaper: *Daily digest* for <#{inline(facts.channel_id, 20)}>: {_span(facts)}"
    if is_quiet(facts):
        return [f"{head}\nA quiet day: no runs errored{_average(facts.errored.average)}."]
    errored = facts.errored
    summary = (
        f"*{plural(errored.count, 'run')} errored*{_average(errored.average)} in "
        f"{plural(len(facts.workflows), 'workflow')}, for "
        f"{plural(facts.accounts.count, 'linked account')}{_average(facts.accounts.average)}"
    )
    parts = [f"{head}\n{summary}\n{_compared(facts)}"]
    shown = facts.workflows[:TOP_WORKFLOWS]
    lines = [f"• *{escape_mrkdwn(clip(w.name, 80))}*: {w.count}{_average(w.average)}" for w in shown]
    if len(facts.workflows) > len(shown):
        lines.append(f"…and {plural(len(facts.workflows) - len(shown), 'more workflow')}")
    parts.append("*By workflow*\n" + "\n".join(lines))
    if facts.causes:
        causes = [_cause_line(c) for c in facts.causes[:TOP_CAUSES]]
        new = (
            ""
            if facts.days_averaged == 0
            else f"\n:new: *{plural(facts.new_causes, 'cause')} new since the day before*"
            if facts.new_causes
            else "\nNo cause is new since the day before."
        )
        parts.append("*Top causes*\n" + "\n".join(causes) + new)
    return parts


def _cause_line(cause: CauseLine) -> str:
    node = f" at *{inline(cause.node, 60)}*" if cause.node else ""
    named = ", ".join(f"*{inline(a, 40)}*" for a in cause.accounts[:NAMED_ACCOUNTS])
    more = len(cause.accounts) - NAMED_ACCOUNTS
    accounts = plural(len(cause.accounts), "linked account") + (
        f": {named}" + (f" and {more} more" if more > 0 else "") if named else ""
    )
    marker = ":new: " if cause.new else ""
    return (
        f"• {marker}*{escape_mrkdwn(clip(cause.workflow or 'an unnamed workflow', 60))}*{node}: "
        f"{plural(cause.count, 'run')}{_average(cause.average)}, {accounts}\n"
        f"   > {escape_mrkdwn(clip(cause.error, 150))}"
    )


def setting_line(setting: DigestSetting) -> str:
    quiet = "nothing on a quiet day" if setting.quiet == "skip" else "one short line on a quiet day"
    return (
        f":newspaper: daily digest at {inline(setting.at, 5)} {inline(setting.zone, 40)} "
        f"({quiet}), set by <@{inline(setting.by, 30)}>"
    )


def digest_on(setting: DigestSetting, channel_id: str, first: datetime) -> str:
    return (
        f":white_check_mark: {setting_line(setting)} in <#{inline(channel_id, 20)}>. "
        f"The first is {first:%a %-d %b at %H:%M} ({inline(setting.zone, 40)}). "
        "`/execution digest off` stops it."
    )


def digest_shown(setting: DigestSetting | None) -> str:
    if setting is None:
        return f"There is no daily digest in this channel.\n\n{DIGEST_USAGE}"
    return f"{setting_line(setting)}.\n\n{DIGEST_USAGE}"
