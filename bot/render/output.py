"""The node output modal: one node's status, attempts, duration and full `latest_output`. Pure.

Slack modals take at most 100 blocks and 3,000 characters per section; the output, as indented JSON,
is split across code-block sections within those limits, and the modal says plainly when it was cut.
Views are plain dicts (their shape is checked against slack_sdk's models in the tests).
"""

from __future__ import annotations

import json
from typing import Any

from bot.refold.models import Execution
from bot.render import block_kit as kit
from bot.render.text import OUTCOME_MARK, clean, clip, format_duration_ms, inline, utf16_len

OUTPUT_VIEW = "node_output"
TITLE = "Node output"
CHUNK_CHARS = 2900  # per code block, leaving room for the fences
MAX_CHUNKS = 30  # well inside 100 blocks and Slack's size limit for a whole view
MAX_OUTPUT_CHARS = CHUNK_CHARS * MAX_CHUNKS


def _view(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": OUTPUT_VIEW,
        "title": {"type": "plain_text", "text": TITLE},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
    }


def loading_view(execution_id: str) -> dict[str, Any]:
    return _view(
        [kit.section(f":hourglass_flowing_sand: Looking up `{inline(execution_id, 40)}` in Refold…")]
    )


def message_view(text: str) -> dict[str, Any]:
    return _view([kit.section(text[:2900])])


def _pretty(output: Any) -> str:
    if output is None:
        return "(no output)"
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            return clean(output)
    try:
        return json.dumps(output, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return clean(str(output))


def _chunks(text: str) -> list[str]:
    """Split at line ends where possible, never past CHUNK_CHARS UTF-16 units."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for line in text.splitlines() or [""]:
        while utf16_len(line) > CHUNK_CHARS:  # one enormous line: cut it
            head = clip(line, CHUNK_CHARS)[:-1]
            if current:
                chunks.append("\n".join(current))
                current, used = [], 0
            chunks.append(head)
            line = line[len(head) :]
        cost = utf16_len(line) + 1
        if used + cost > CHUNK_CHARS and current:
            chunks.append("\n".join(current))
            current, used = [], 0
        current.append(line)
        used += cost
    if current:
        chunks.append("\n".join(current))
    return chunks


def _fence(text: str) -> str:
    # A closing fence inside the output would end the code block early.
    return "```" + text.replace("```", "`\u200b``") + "```"


def node_output_view(execution: Execution, index: int) -> dict[str, Any]:
    if not execution.nodes:
        return message_view(
            f"Refold returned no node detail for `{inline(execution.id or '', 40)}` "
            f"({inline(execution.status, 40)}): this execution has no node output to show."
        )
    if not 0 <= index < len(execution.nodes):
        return message_view(
            "That node is not in this execution any more. Run `/execution <id>` for a fresh card."
        )
    node = execution.nodes[index]
    attempts = node.attempts_made if node.attempts_made is not None else "–"
    name = inline(node.node_name or node.node_id or "unnamed", 120)
    blocks = [
        kit.section(
            f"{OUTCOME_MARK[node.outcome]} *{name}*\n"
            f"*Status:* {inline(node.node_status or 'unknown', 60)} · *Type:* {inline(node.node_type or '?', 60)}\n"
            f"*Attempts:* {attempts} · *Duration:* {format_duration_ms(node.execution_time_ms)}"
        ),
        kit.context(
            f"Execution `{inline(execution.id or '', 40)}` · {inline(execution.name or '', 80)} · "
            f"{inline(execution.status, 40)}"
        ),
        {"type": "divider"},
    ]
    text = _pretty(node.latest_output)
    total = len(text)
    chunks = _chunks(text[:MAX_OUTPUT_CHARS])
    blocks.extend(kit.section(_fence(chunk)) for chunk in chunks[:MAX_CHUNKS])
    complete = total <= MAX_OUTPUT_CHARS and len(chunks) <= MAX_CHUNKS
    shown = total if complete else sum(len(c) + 1 for c in chunks[:MAX_CHUNKS])
    if not complete:
        blocks.append(
            kit.context(
                f":scissors: Cut: showing the first {shown:,} of {total:,} characters of this output. "
                "The whole output is in Refold's dashboard."
            )
        )
    return _view(blocks)
