"""An incident's words and blocks: its one top-level message, its thread's batches of runs, and the
workspace's list of open incidents. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.render import block_kit as kit
from bot.render.buttons import (
    INCIDENT_RERUN_ACTION,
    INCIDENT_RESOLVE_ACTION,
    INCIDENT_SNOOZE_ACTION,
    INCIDENT_UNSNOOZE_ACTION,
    SHOW_RUN_ACTION,
    SNOOZE_HOURS,
    encode_incident,
    encode_target,
)
from bot.render.text import clip, escape_mrkdwn, format_time, inline, plural

# An incident with no failure for this long shows as quiet.
QUIET_AFTER_SECONDS = 5 * 60
RUNS_PER_BATCH = 20
MESSAGE_CHARS = 2900

State = Literal["single", "open", "resolved"]


@dataclass(frozen=True)
class RerunFacts:
    """A Rerun failed press and how its new runs went."""

    by: str
    at: datetime
    asked: int  # runs the incident's presses were for
    started: int  # new runs Refold named
    unconfirmed: int  # asked of Refold by a worker that died before it answered: not asked again
    failed: int  # Refold refused (pressing again tries them)
    statuses: Mapping[str, int]  # the new runs by their latest status
    per_second: float  # the workspace key's Refold rate, which the reruns go through


@dataclass(frozen=True)
class IncidentFacts:
    """An incident as its message shows it (a pure copy of the store's view)."""

    workflow: str
    node: str
    node_type: str
    error: str
    runs: int
    accounts: int
    first_accounts: Sequence[str]
    first_seen: datetime
    last_seen: datetime
    resolve_after_seconds: int  # quiet this long, it is over
    recovered: int = 0  # accounts that have succeeded since their last failure
    state: State = "open"
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    reopened_at: datetime | None = None
    snoozed_until: datetime | None = None
    snoozed_by: str | None = None
    held: int = 0  # failures that came while snoozed
    rerun: RerunFacts | None = None
    pending_runs: int = 0  # listed runs not rerun yet: what Rerun failed would start
    pending_accounts: int = 0
    listed: int = 0  # runs stored by ID (the thread lists them); beyond a cap they are counted only
    earlier_episodes: int = 0  # of the cause in this channel in the 7 days before this one
    last_episode: datetime | None = None  # when the latest earlier one began


def incident_state(facts: IncidentFacts, now: datetime) -> str:
    if facts.state == "resolved":
        if facts.resolved_by:
            return f"*resolved* by <@{inline(facts.resolved_by, 30)}> at {format_time(facts.resolved_at)}"
        return f"*resolved*: quiet for {facts.resolve_after_seconds // 60} min"
    quiet = (now - facts.last_seen).total_seconds()
    if quiet >= facts.resolve_after_seconds:
        return f"*resolved*: quiet for {facts.resolve_after_seconds // 60} min"
    if facts.recovered:
        state = f"*recovering*: {facts.recovered} of {plural(facts.accounts, 'account')} have succeeded since"
    elif quiet < QUIET_AFTER_SECONDS:
        state = "*ongoing*"
    else:
        state = f"*quiet for {plural(int(quiet // 60), 'min')}*"
    if facts.reopened_at:
        state += f" (reopened at {format_time(facts.reopened_at)})"
    return state


def is_over(facts: IncidentFacts, now: datetime) -> bool:
    return facts.state == "resolved" or (now - facts.last_seen).total_seconds() >= facts.resolve_after_seconds


def incident_message(facts: IncidentFacts, now: datetime) -> str:
    """The incident's one top-level message: the cause, how far it reaches, since when, its state,
    and what was done about it."""
    node = f"*{inline(facts.node, 80)}*" if facts.node else "no node"
    kind = f" ({inline(facts.node_type, 40)})" if facts.node_type else ""
    named = ", ".join(f"*{inline(a, 60)}*" for a in facts.first_accounts)
    more = facts.accounts - len(facts.first_accounts)
    accounts = plural(facts.accounts, "linked account") + (
        f": {named}" + (f" and {more} more" if more > 0 else "") if named else ""
    )
    lines = [
        f":rotating_light: *Incident* in *{escape_mrkdwn(clip(facts.workflow or 'an unnamed workflow', 80))}* "
        f"at node {node}{kind}: {incident_state(facts, now)}",
        f"> {escape_mrkdwn(clip(facts.error, 300))}",
        f"*{plural(facts.runs, 'failed run')}* across {accounts}",
        f"First seen {format_time(facts.first_seen)} · last seen {format_time(facts.last_seen)} · "
        + repeat_of_cause(facts),
    ]
    snooze = snooze_line(facts, now)
    if snooze:
        lines.append(snooze)
    if facts.rerun is not None:
        lines.append(rerun_line(facts.rerun))
    if facts.runs > facts.listed:
        lines.append(
            f"_The thread lists the first {plural(facts.listed, 'run')}; "
            f"{facts.runs - facts.listed} more are counted only._"
        )
    else:
        lines.append("_Each run is in this thread; this message updates as more arrive._")
    return clip("\n".join(lines), MESSAGE_CHARS)


def repeat_of_cause(facts: IncidentFacts) -> str:
    """A new problem, or one seen before: the cause's earlier episodes in this channel."""
    if facts.earlier_episodes:
        return (
            f"seen here before: {plural(facts.earlier_episodes, 'time')} in the 7 days before, "
            f"the last from {format_time(facts.last_episode)}"
        )
    if facts.last_episode is not None:
        return f"first time in 7 days (last seen here from {format_time(facts.last_episode)})"
    return "first time this cause is seen here in 7 days"


def snooze_line(facts: IncidentFacts, now: datetime) -> str | None:
    if facts.snoozed_until is None or facts.snoozed_until <= now:
        return None
    by = f" by <@{inline(facts.snoozed_by, 30)}>" if facts.snoozed_by else ""
    return (
        f":zzz: Snoozed{by} until {format_time(facts.snoozed_until)}: "
        f"{plural(facts.held, 'failure')} held back (counted here, nothing posted)"
    )


def rerun_seconds(runs: int, per_second: float) -> int:
    return max(1, math.ceil(runs / per_second)) if per_second > 0 else 0


def rerun_line(rerun: RerunFacts) -> str:
    who = f"Rerun by <@{inline(rerun.by, 30)}> at {format_time(rerun.at)}"
    tried = rerun.started + rerun.unconfirmed + rerun.failed
    problems = []
    if rerun.unconfirmed:
        problems.append(f"{rerun.unconfirmed} not confirmed by Refold (not asked again)")
    if rerun.failed:
        problems.append(f"{rerun.failed} refused by Refold (press again to retry them)")
    extra = f"; {', '.join(problems)}" if problems else ""
    if tried < rerun.asked:
        left = rerun.asked - tried
        return (
            f":repeat: {who}: {rerun.started} of {rerun.asked} started{extra} "
            f"(about {rerun_seconds(left, rerun.per_second)} s more at Refold's rate limit)"
        )
    outcome = _outcomes(rerun.statuses)
    return f":repeat: {who}: {plural(rerun.started, 'run')} rerun{': ' + outcome if outcome else ''}{extra}"


def _outcomes(statuses: Mapping[str, int]) -> str:
    grouped = {"completed": 0, "errored": 0, "stopped": 0, "running": 0}
    for status, count in statuses.items():
        match status.upper():
            case "COMPLETED":
                grouped["completed"] += count
            case "ERRORED" | "FAILED" | "TIMED_OUT":
                grouped["errored"] += count
            case "STOPPED" | "CANCELLED":
                grouped["stopped"] += count
            case _:
                grouped["running"] += count
    return ", ".join(f"{count} {name}" for name, count in grouped.items() if count)


def incident_blocks(facts: IncidentFacts, now: datetime, route_id: str, cause: str) -> list[dict[str, Any]]:
    """The incident message's blocks: its words, then Rerun failed, Snooze and Resolve."""
    blocks = [kit.section(incident_message(facts, now))]
    buttons: list[dict[str, Any]] = []
    value = encode_incident(route_id, cause)
    if facts.pending_runs:
        count, reach = (
            plural(facts.pending_runs, "failed run"),
            plural(facts.pending_accounts, "linked account"),
        )
        seconds = rerun_seconds(facts.pending_runs, facts.rerun.per_second if facts.rerun else 12.0)
        buttons.append(
            kit.confirmed(
                kit.button(f"Rerun failed ({facts.pending_runs})", INCIDENT_RERUN_ACTION, value, "primary"),
                "Rerun failed runs?",
                f"This reruns *{count}* across *{reach}*, each once, through the workspace's Refold "
                f"rate limit (about {seconds} s).",
                "Rerun them",
                "Cancel",
            )
        )
    if facts.snoozed_until is not None and facts.snoozed_until > now:
        buttons.append(kit.button("End snooze", INCIDENT_UNSNOOZE_ACTION, value))
    elif not is_over(facts, now):
        buttons.append(
            {
                "type": "overflow",
                "action_id": INCIDENT_SNOOZE_ACTION,
                "options": [
                    kit.option(f"Snooze this cause for {hours} h", encode_incident(route_id, cause, hours))
                    for hours in SNOOZE_HOURS
                ],
            }
        )
    if not is_over(facts, now):
        buttons.append(
            kit.confirmed(
                kit.button("Resolve", INCIDENT_RESOLVE_ACTION, value),
                "Resolve this incident?",
                "Its message stays; a failure of the same cause within 2 hours reopens it.",
                "Resolve",
                "Cancel",
            )
        )
    if buttons:
        blocks.append(kit.actions(*buttons))
    return blocks


@dataclass(frozen=True)
class RunRow:
    execution_id: str
    account: str
    at: datetime


def batch_text(rows: Sequence[RunRow], first: int, title: str = "Failed runs") -> str:
    ids = ", ".join(f"`{inline(r.execution_id, 40)}`" for r in rows)
    return clip(f"{title} {first + 1}–{first + len(rows)}: {ids}", MESSAGE_CHARS)


def batch_blocks(rows: Sequence[RunRow], first: int, title: str = "Failed runs") -> list[dict[str, Any]]:
    """One thread message of runs (at most RUNS_PER_BATCH): each with its ID, linked account and time,
    and a button that shows its card."""
    blocks: list[dict[str, Any]] = [kit.context(f"*{title} {first + 1}–{first + len(rows)}*")]
    for row in rows[:RUNS_PER_BATCH]:
        account = f" · *{inline(row.account, 80)}*" if row.account else ""
        blocks.append(
            kit.section(
                f"`{inline(row.execution_id, 40)}`{account} · {format_time(row.at)}",
                accessory=kit.button(
                    "Show card", SHOW_RUN_ACTION, encode_target(row.execution_id, row.account or None)
                ),
            )
        )
    return blocks


def incident_run_line(execution_id: str, linked_account_id: str | None, at: datetime) -> str:
    account = f" · linked account *{inline(linked_account_id, 120)}*" if linked_account_id else ""
    return f"Failed run `{inline(execution_id, 40)}`{account} at {format_time(at)}"


NO_INCIDENTS = "No open incidents: no cause has failed twice in an alert channel in the last 30 minutes."


def incidents_list(incidents: Sequence[tuple[str, IncidentFacts]], now: datetime) -> str:
    """`/execution incidents`: each open incident with its channel, cause, reach and state."""
    if not incidents:
        return NO_INCIDENTS
    lines = [f"*Open incidents* ({len(incidents)})"]
    for channel_id, facts in incidents[:20]:
        node = f" at *{inline(facts.node, 80)}*" if facts.node else ""
        snoozed = " · :zzz: snoozed" if facts.snoozed_until and facts.snoozed_until > now else ""
        lines.append(
            f"• <#{inline(channel_id, 20)}>: *{escape_mrkdwn(clip(facts.workflow, 80))}*{node}: "
            f"{plural(facts.runs, 'failed run')} across "
            f"{plural(facts.accounts, 'linked account')}, since {format_time(facts.first_seen)}, "
            f"{incident_state(facts, now)}{snoozed}\n"
            f"   > {escape_mrkdwn(clip(facts.error, 150))}"
        )
    return clip("\n".join(lines), MESSAGE_CHARS)


# --- answers to the people who pressed --------------------------------------------


def rerun_pressed(runs: int, accounts: int, per_second: float) -> str:
    return (
        f":repeat: Rerunning {plural(runs, 'failed run')} across {plural(accounts, 'linked account')}, "
        f"each once: about {rerun_seconds(runs, per_second)} s at the workspace's Refold rate limit. "
        "Progress and outcomes show on the incident message."
    )


def nothing_to_rerun(started: int) -> str:
    return (
        f"Nothing new to rerun: every listed run of this incident has been rerun already "
        f"({plural(started, 'new run')} started). New failures of the cause can be rerun when they come."
    )


def snoozed(until: datetime) -> str:
    return (
        f":zzz: Snoozed until {format_time(until)}: failures of this cause are counted on its message, "
        "nothing is posted. *End snooze* on the message ends it early."
    )


UNSNOOZED = ":bell: Snooze ended: failures of this cause are posted again."
RESOLVED = ":white_check_mark: Resolved. A failure of the same cause within 2 hours reopens this message."
ALREADY_OVER = "This incident is already resolved; nothing to do. A new failure of its cause reopens it."
INCIDENT_GONE = (
    "This incident is no longer kept (incidents are kept for a few hours after their last failure). "
    "`/execution incidents` lists the open ones."
)
