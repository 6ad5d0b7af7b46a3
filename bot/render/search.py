"""`/execution search`'s answer: up to ten runs, each with a button to its card, and Next page. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.render import block_kit as kit
from bot.render.buttons import SEARCH_NEXT_ACTION, SHOW_RUN_ACTION, encode_search, encode_target
from bot.render.text import ago, clip, escape_mrkdwn, format_duration_ms, format_time, inline, status_emoji


@dataclass(frozen=True)
class SearchRow:
    execution_id: str
    name: str | None
    status: str
    created_at: datetime | None
    took_ms: int | None  # from start to its last change, or its nodes' time


@dataclass(frozen=True)
class SearchFacts:
    """What was asked (each filter as typed) and what Refold answered for it."""

    filters: Sequence[tuple[str, str]]  # (name, value), in the order typed
    query: str  # the filters as text, for Next page
    account: str | None
    rows: Sequence[SearchRow]
    page: int
    has_next: bool
    total: int | None


def _asked(facts: SearchFacts) -> str:
    parts = [f"{name} *{escape_mrkdwn(clip(value, 80))}*" for name, value in facts.filters]
    return ", ".join(parts) if parts else "no filters"


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "–"
    when = "just now" if (now - moment).total_seconds() < 60 else ago(moment, now)
    return f"{format_time(moment)} ({when})"


def search_text(facts: SearchFacts, now: datetime) -> str:
    whose = f" of *{inline(facts.account, 80)}*" if facts.account else ""
    if not facts.rows:
        if facts.page > 1:
            return f"No more runs{whose} for {_asked(facts)}: that was the last page."
        return (
            f":mag: No runs{whose} matched {_asked(facts)}. Try a longer `since:`, another `status:`, or "
            "fewer filters; `/execution help` lists them."
        )
    first = (facts.page - 1) * 10 + 1
    total = f" of {facts.total}" if facts.total is not None else ""
    return f":mag: Runs{whose} for {_asked(facts)}: {first}–{first + len(facts.rows) - 1}{total}"


def search_blocks(facts: SearchFacts, now: datetime) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [kit.section(search_text(facts, now))]
    for row in facts.rows[:10]:
        name = f"*{escape_mrkdwn(clip(row.name, 80))}*" if row.name else "_unnamed_"
        line = (
            f"{status_emoji(row.status)} *{inline(row.status, 20)}* · {name} · `{inline(row.execution_id, 40)}`\n"
            f"{_ago(row.created_at, now)} · took {format_duration_ms(row.took_ms)}"
        )
        blocks.append(
            kit.section(
                line,
                accessory=kit.button(
                    "Show card", SHOW_RUN_ACTION, encode_target(row.execution_id, facts.account)
                ),
            )
        )
    if facts.has_next and facts.rows:
        blocks.append(
            kit.actions(
                kit.button("Next page", SEARCH_NEXT_ACTION, encode_search(facts.query, facts.page + 1))
            )
        )
    return blocks
