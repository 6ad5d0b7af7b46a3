"""Execution -> plain text for the terminal (`python -m bot lookup`). Pure."""

from __future__ import annotations

from bot.refold.models import Execution
from bot.render.blocks import tally
from bot.render.text import (
    OUTCOME_MARK,
    clean,
    clip,
    code_excerpt,
    format_duration_ms,
    format_time,
    progress_bar,
)


def execution_summary(execution: Execution, excerpt_chars: int = 600) -> str:
    lines = [
        f"{clean(execution.name) or 'Execution'}  [{clean(execution.status)}]",
        f"  id: {execution.id or '–'}   env: {clean(execution.environment) or '–'}   "
        f"linked account: {clean(execution.linked_account_id) or '–'}",
    ]
    if execution.workflow and execution.workflow.name:
        lines.append(f"  workflow: {clean(execution.workflow.name)}")
    if execution.application and execution.application.name:
        lines.append(f"  app: {clean(execution.application.name)}")
    if execution.created_at:
        lines.append(f"  created: {format_time(execution.created_at)}")
    bar = progress_bar(execution.completion_percentage)
    if bar:
        lines.append(f"  progress: {bar}")
    if execution.nodes:
        lines.append(f"  nodes: {tally(execution.nodes)}")
        for node in execution.nodes:
            attempts = node.attempts_made if node.attempts_made is not None else "–"
            lines.append(
                f"  {OUTCOME_MARK[node.outcome]} {clip(clean(node.node_name or node.node_id or 'unnamed'), 80)}"
                f"  ({clean(node.node_type) or '?'})  {clean(node.node_status) or 'unknown'}"
                f"  attempts {attempts}  {format_duration_ms(node.execution_time_ms)}"
            )
        for node in execution.failing_nodes:
            excerpt = code_excerpt(node.latest_output, excerpt_chars)
            excerpt = excerpt.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            lines.append(f"  --- output of failing node {clean(node.node_name or node.node_id)} ---")
            lines.extend("    " + part for part in excerpt.splitlines())
    else:
        lines.append("  (no node detail returned)")
    return "\n".join(lines)
