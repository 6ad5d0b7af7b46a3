"""A Refold link's unfurl: a compact card (title, status, progress, failing node). Pure."""

from __future__ import annotations

from typing import Any

from bot.refold.models import Execution
from bot.render import block_kit as kit
from bot.render.blocks import tally
from bot.render.buttons import dashboard_link
from bot.render.text import clip, code_excerpt, inline, progress_bar, status_emoji

EXCERPT_CHARS = 300


def render_unfurl(
    execution: Execution, *, linked_account_id: str | None = None, dashboard_url: str | None = None
) -> dict[str, Any]:
    """One entry of chat.unfurl's `unfurls` map: at most 3 blocks."""
    name = " ".join((execution.name or "").split()) or f"Execution {execution.id or ''}".strip()
    lines = [f"{status_emoji(execution.status)} *{inline(name, 150)}* · *{inline(execution.status, 40)}*"]
    progress = [p for p in (progress_bar(execution.completion_percentage), tally(execution.nodes)) if p]
    if progress:
        lines.append(" · ".join(progress))
    blocks: list[dict[str, Any]] = [kit.section("\n".join(lines))]
    failing = execution.failing_nodes
    if failing:
        node = failing[0]
        more = f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""
        excerpt = code_excerpt(node.latest_output, EXCERPT_CHARS)
        blocks.append(
            kit.section(
                f"*Failing node:* {inline(node.node_name or node.node_id or 'unnamed', 80)}"
                f" · {inline(node.node_type or '?', 40)}{more}\n```{excerpt}```"
            )
        )
    context = []
    if execution.id:
        context.append(f"`{inline(execution.id, 40)}`")
    if execution.environment:
        context.append(f"env *{inline(execution.environment, 40)}*")
    account = linked_account_id or execution.linked_account_id
    if account:
        context.append(f"linked account *{inline(account, 120)}*")
    if dashboard_url and execution.id:
        context.append(f"<{dashboard_link(dashboard_url, execution.id)}|Open in Refold>")
    context.append(f"`/execution {inline(execution.id or '', 40)}` for every node")
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(t, 500)} for t in context]}
    )
    return {"blocks": blocks}
