"""Execution -> Block Kit card. Pure: no I/O, no clock (the caller passes `now`).

Every card stays inside Slack's limits whatever the input: at most 50 blocks (this card uses ≤ 22),
3000 characters a section, 10 context elements, 150 characters a header. Node rendering stops as soon
as the budget is spent, so a 5,000-node run costs about as much as a 60-node one.

Blocks are built as plain dicts: slack_sdk's models validate every object as they serialise it, which
cost more than the rest of rendering. The tests check every card shape against those models instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.refold.models import Execution, Node, NodeOutcome
from bot.render import block_kit as kit
from bot.render.buttons import (
    FOLLOW_ACTION,
    OPEN_ACTION,
    PICK_OUTPUT_ACTION,
    REFRESH_ACTION,
    RERUN_ACTION,
    SHARE_ACTION,
    SHOW_OUTPUT_ACTION,
    STOP_ACTION,
    UNFOLLOW_ACTION,
    dashboard_link,
    encode_node,
    encode_node_option,
    encode_target,
    node_menu_block_id,
)
from bot.render.messages import refresh_failed_note
from bot.render.text import (
    OUTCOME_MARK,
    clip,
    code_excerpt,
    escape_mrkdwn,
    format_duration_ms,
    format_time,
    inline,
    plain_label,
    plural,
    progress_bar,
    status_emoji,
    utf16_len,
)

SECTION_LIMIT = 2900  # below Slack's 3000, leaving room for the code fence and a label
HEADER_LIMIT = 150
MAX_BLOCKS = 50


@dataclass(frozen=True)
class CardBudget:
    """How much of a run to show. `smaller()` is used when Slack rejects a card as too long."""

    failing_nodes: int = 3
    excerpt_chars: int = 700
    node_sections: int = 8
    node_line_chars: int = 300
    menu_options: int = 100  # Block Kit allows 100 in a static select

    def smaller(self) -> CardBudget:
        return replace(
            self,
            failing_nodes=max(1, self.failing_nodes - 2),
            excerpt_chars=max(150, self.excerpt_chars // 3),
            node_sections=max(1, self.node_sections // 3),
            node_line_chars=max(100, self.node_line_chars // 2),
            menu_options=max(5, self.menu_options // 4),
        )


@dataclass(frozen=True)
class FollowMark:
    """A card that follows its run: which follow (for Unfollow), and for whom."""

    follow_id: str
    requester: str | None = None


@dataclass(frozen=True)
class Card:
    text: str
    blocks: list[dict[str, Any]]


def render_execution(
    execution: Execution,
    *,
    now: datetime,
    linked_account_id: str | None = None,
    shareable: bool = False,
    note: str | None = None,
    budget: CardBudget | None = None,
    searched_from: str | None = None,
    dashboard_url: str | None = None,
    follow: FollowMark | None = None,
    actions: bool = True,
    rerun_of: str | None = None,
    banner: str | None = None,
) -> Card:
    """`follow`: the card is followed; `actions`: offer Follow, Rerun and Stop where they apply;
    `banner`: a line under the header saying why the card is here (an alert)."""
    budget = budget or CardBudget()
    account = linked_account_id or execution.linked_account_id
    following = follow is not None and not execution.is_terminal
    blocks: list[dict[str, Any]] = [
        kit.header(clip(f"{status_emoji(execution.status)} {_title(execution)}", HEADER_LIMIT)),
        *([kit.context(clip(banner, 1500))] if banner else []),
        kit.context(*_context_items(execution, account, now)),
        kit.section(_summary(execution, following)),
    ]
    if rerun_of:
        blocks.append(kit.context(f":repeat: Rerun of `{inline(rerun_of, 40)}`"))
    if following and follow is not None:
        who = f" for <@{inline(follow.requester, 30)}>" if follow.requester else ""
        blocks.append(kit.context(f":eyes: Following{who}: this card updates itself until the run ends."))
    if searched_from is not None and linked_account_id:
        blocks.append(
            kit.context(
                f":mag_right: Found under linked account *{inline(linked_account_id, 120)}*: the default "
                f"(*{inline(searched_from, 120)}*) has no such execution. Refresh and the buttons use it."
            )
        )
    failing = execution.failing_nodes
    # Output buttons and the node menu replay the lookup as it was made, like the card's buttons.
    drill = execution.id is not None
    if failing:
        blocks.append(kit.DIVIDER)
        places = {id(node): index for index, node in enumerate(execution.nodes)}
        for node in failing[: budget.failing_nodes]:
            button = (
                kit.button(
                    "Show output",
                    SHOW_OUTPUT_ACTION,
                    encode_node(execution.id or "", linked_account_id, places[id(node)]),
                )
                if drill and id(node) in places
                else None
            )
            blocks.append(kit.section(_failing_node(node, budget), accessory=button))
        if len(failing) > budget.failing_nodes:
            more = len(failing) - budget.failing_nodes
            blocks.append(kit.context(f"…and {plural(more, 'more failing node')} (listed below)"))
    if execution.nodes:
        blocks.append(kit.DIVIDER)
        sections, shown = _node_sections(execution.nodes, budget)
        menu_block_id = node_menu_block_id(linked_account_id) if drill else None
        for index, text in enumerate(sections):
            block_id = menu_block_id if index == 0 else None
            blocks.append(kit.section(text, block_id=block_id))
        if shown < len(execution.nodes):
            blocks.append(kit.context(f"…and {plural(len(execution.nodes) - shown, 'more node')}"))
    elif execution.known_status is not None or execution.status:
        blocks.append(kit.context("Refold returned no node detail for this execution."))
    if note:
        blocks.append(kit.context(f":warning: {escape_mrkdwn(clip(note, 1500))}"))
    # Buttons replay the lookup as it was made: the queried account, not whatever the document claims.
    buttons = _buttons(
        execution, linked_account_id, shareable, dashboard_url, follow if following else None, actions
    )
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    rendered = blocks[:MAX_BLOCKS]
    menu_block_id = node_menu_block_id(linked_account_id)
    if drill and menu_block_id is not None:
        for block in rendered:
            if block.get("block_id") == menu_block_id:
                # Built as plain dicts: a hundred options through slack_sdk's models cost ten times
                # the rest of the card. Their shape is checked against the models in the tests.
                block["accessory"] = _node_menu(execution, budget.menu_options)
                break
    return Card(text=_fallback_text(execution, failing), blocks=rendered)


def _node_menu(execution: Execution, limit: int) -> dict[str, Any]:
    """A menu of the run's first `limit` nodes that opens one node's full output."""
    options = [
        {
            "text": {
                "type": "plain_text",
                "text": plain_label(
                    f"{OUTCOME_MARK[node.outcome]} {node.node_name or node.node_id or 'unnamed'}", 75
                ),
                "emoji": True,
            },
            "value": encode_node_option(execution.id or "", index),
        }
        for index, node in enumerate(execution.nodes[: min(limit, 100)])
    ]
    return {
        "type": "static_select",
        "action_id": PICK_OUTPUT_ACTION,
        "placeholder": {"type": "plain_text", "text": "Show a node's output", "emoji": True},
        "options": options,
    }


def _title(execution: Execution) -> str:
    name = " ".join((execution.name or "").split()) or f"Execution {execution.id or ''}".strip()
    return f"{name} · {execution.status}"


def _context_items(execution: Execution, account: str | None, now: datetime) -> list[str]:
    items = []
    if execution.id:
        items.append(f"`{inline(execution.id, 40)}`")
    if execution.environment:
        items.append(f"env *{inline(execution.environment, 40)}*")
    if account:
        items.append(f"linked account *{inline(account, 120)}*")
    if execution.workflow and execution.workflow.name:
        items.append(f"workflow *{inline(execution.workflow.name, 120)}*")
    if execution.application and execution.application.name:
        items.append(f"app *{inline(execution.application.name, 80)}*")
    if execution.created_at:
        items.append(f"created {format_time(execution.created_at)}")
    total = execution.total_node_time_ms
    if total is not None:
        items.append(f"node time {format_duration_ms(total)}")
    items.append(f"updated {now.strftime('%H:%M:%S')} UTC")
    return items[:10]


def tally(nodes: list[Node]) -> str:
    counts = Counter(n.outcome for n in nodes)
    order = [
        NodeOutcome.OK,
        NodeOutcome.FAILED,
        NodeOutcome.PENDING,
        NodeOutcome.STOPPED,
        NodeOutcome.PARTIAL,
        NodeOutcome.UNKNOWN,
    ]
    return " · ".join(f"{counts[o]} {OUTCOME_MARK[o]}" for o in order if counts[o])


def _summary(execution: Execution, following: bool = False) -> str:
    parts = [f"*Status:* {inline(execution.status, 60)}"]
    bar = progress_bar(execution.completion_percentage)
    if bar:
        parts.append(f"*Progress:* {bar}")
    if execution.nodes:
        parts.append(f"*Nodes:* {tally(execution.nodes)}")
    if not execution.is_terminal:
        parts.append(
            "_Still running: this card updates itself._"
            if following
            else "_Still running: press Refresh for the latest state, or Follow to have it update itself._"
        )
    return "\n".join(parts)


def _node_line(node: Node, limit: int) -> str:
    attempts = node.attempts_made if node.attempts_made is not None else "–"
    line = (
        f"{OUTCOME_MARK[node.outcome]} *{inline(node.node_name or node.node_id or 'unnamed', 80)}*"
        f" · {inline(node.node_type or '?', 40)} · {inline(node.node_status or 'unknown', 40)}"
        f" · {attempts} att · {format_duration_ms(node.execution_time_ms)}"
    )
    return clip(line, limit)


def _failing_node(node: Node, budget: CardBudget) -> str:
    head = _node_line(node, budget.node_line_chars)
    room = SECTION_LIMIT - utf16_len(head) - 20
    excerpt = code_excerpt(node.latest_output, min(budget.excerpt_chars, room))
    return f"{head}\n```{excerpt}```"


def _node_sections(nodes: list[Node], budget: CardBudget) -> tuple[list[str], int]:
    """Pack one line per node into sections; stop at the budget and report how many were shown."""
    sections: list[str] = []
    current: list[str] = []
    used = 0
    shown = 0
    for node in nodes:
        line = _node_line(node, budget.node_line_chars)
        cost = utf16_len(line) + 1
        if used + cost > SECTION_LIMIT:
            sections.append("\n".join(current))
            if len(sections) >= budget.node_sections:
                return sections, shown
            current, used = [], 0
        current.append(line)
        used += cost
        shown += 1
    if current:
        sections.append("\n".join(current))
    return sections, shown


def _buttons(
    execution: Execution,
    account: str | None,
    shareable: bool,
    dashboard_url: str | None,
    follow: FollowMark | None,
    actions: bool,
) -> list[dict[str, Any]]:
    if not execution.id:
        return []
    value = encode_target(execution.id, account, follow.follow_id if follow else None)
    buttons = []
    if not execution.is_terminal:
        buttons.append(kit.button("Refresh", REFRESH_ACTION, value, style="primary"))
        if follow is not None:
            buttons.append(kit.button("Unfollow", UNFOLLOW_ACTION, value))
        elif actions:
            buttons.append(kit.button("Follow", FOLLOW_ACTION, value))
    if actions and execution.can_stop:
        buttons.append(
            kit.confirmed(kit.button("Stop", STOP_ACTION, value, style="danger"), *_stop_confirm(execution))
        )
    if actions and execution.can_rerun:
        buttons.append(kit.confirmed(kit.button("Rerun", RERUN_ACTION, value), *_rerun_confirm(execution)))
    if shareable:
        buttons.append(kit.button("Share to channel", SHARE_ACTION, value))
    if dashboard_url:
        buttons.append(
            {
                "type": "button",
                "action_id": OPEN_ACTION,
                "text": {"type": "plain_text", "text": "Open in Refold", "emoji": True},
                "url": dashboard_link(dashboard_url, execution.id)[:3000],
            }
        )
    return buttons


def _run_name(execution: Execution) -> str:
    return inline(" ".join((execution.name or "").split()) or f"execution {execution.id or ''}", 120)


def _rerun_confirm(execution: Execution) -> tuple[str, str, str, str]:
    return (
        "Rerun this execution?",
        f"Refold starts a new run of *{_run_name(execution)}* with its original trigger payload. "
        "This run stays as it is.",
        "Rerun",
        "Cancel",
    )


def _stop_confirm(execution: Execution) -> tuple[str, str, str, str]:
    return (
        "Stop this execution?",
        f"Refold stops *{_run_name(execution)}*. Nodes that already ran are not undone.",
        "Stop it",
        "Keep running",
    )


def _fallback_text(execution: Execution, failing: list[Node]) -> str:
    name = inline(execution.name or execution.id or "execution", 150)
    pct = execution.completion_percentage
    progress = f" ({pct:.0f}%)" if pct is not None else ""
    failing_note = f"; failing: {inline(failing[0].node_name or failing[0].node_id, 80)}" if failing else ""
    return f"{inline(execution.status, 40)}: {name}{progress}{failing_note}"


NOTE_BLOCK_ID = "refresh_note"


def with_refresh_note(blocks: list[dict[str, Any]], at: datetime, reason: str) -> list[dict[str, Any]]:
    """A card as Slack sent it back, with one note saying why the latest refresh failed.

    Empty when there is no card to keep (ephemeral cards come back without their blocks).
    """
    kept = [b for b in blocks if b.get("block_id") != NOTE_BLOCK_ID]
    if not kept:
        return []
    note = {
        "type": "context",
        "block_id": NOTE_BLOCK_ID,
        "elements": [
            {"type": "mrkdwn", "text": refresh_failed_note(at.strftime("%H:%M:%S"), escape_mrkdwn(reason))}
        ],
    }
    insert_at = next((i for i, b in enumerate(kept) if b.get("type") == "actions"), len(kept))
    return [*kept[:insert_at], note, *kept[insert_at:]]
