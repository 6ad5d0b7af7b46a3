"""Pure text helpers shared by every renderer: escaping, truncation, formatting of numbers and times."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from bot.refold.models import ExecutionStatus, NodeOutcome, execution_status

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ELLIPSIS = "…"


def utf16_len(text: str) -> int:
    # Slack counts characters the way JavaScript does; astral characters (emoji) count twice.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clip(text: str, limit: int) -> str:
    """Shorten to at most `limit` UTF-16 units, marking the cut with an ellipsis."""
    if len(text) <= limit // 2 or utf16_len(text) <= limit:
        return text
    budget = limit - 1
    out: list[str] = []
    used = 0
    for ch in text:
        cost = 2 if ord(ch) > 0xFFFF else 1
        if used + cost > budget:
            break
        out.append(ch)
        used += cost
    return "".join(out) + ELLIPSIS


def clean(text: Any) -> str:
    """Make any value printable: str it, drop control characters (NUL included), keep newlines/tabs."""
    if text is None:
        return ""
    value = text if isinstance(text, str) else str(text)
    value = value.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", value)


def escape_mrkdwn(text: Any) -> str:
    """Escape what Slack uses for mentions and links, so text can't ping or forge; and break code fences,
    so text can't close the excerpt's code block."""
    escaped = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("```", "ʼʼʼ")


def inline(text: Any, limit: int = 200) -> str:
    """One-line, escaped, clipped text for use inside mrkdwn."""
    # Escape before clipping: escaping lengthens text, and the limit is about what Slack receives.
    return clip(escape_mrkdwn(" ".join(clean(text)[: limit * 2].split())), limit)


def code_excerpt(output: Any, limit: int) -> str:
    """A code-block-safe excerpt of a node's raw output."""
    if output is None:
        return "(no output)"
    if isinstance(output, str):
        raw = output[: limit * 2]
    else:
        try:
            raw = json.dumps(output, ensure_ascii=False, indent=1, default=str)
        except (TypeError, ValueError):
            raw = str(output)
    body = clip(escape_mrkdwn(raw[: limit * 2]), limit)
    return body or "(empty)"


def format_duration_ms(ms: int | float | None) -> str:
    if ms is None:
        return "–"
    ms = max(0, int(ms))
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment.tzinfo else moment.strftime("%Y-%m-%d %H:%M")


def progress_bar(percentage: float | None, width: int = 10) -> str:
    if percentage is None:
        return ""
    pct = max(0.0, min(100.0, float(percentage)))
    filled = round(pct / 100 * width)
    return f"{'▰' * filled}{'▱' * (width - filled)} {pct:.0f}%"


STATUS_EMOJI = {
    ExecutionStatus.COMPLETED: ":white_check_mark:",
    ExecutionStatus.ERRORED: ":x:",
    ExecutionStatus.FAILED: ":x:",
    ExecutionStatus.RUNNING: ":hourglass_flowing_sand:",
    ExecutionStatus.QUEUED: ":clock3:",
    ExecutionStatus.STOPPING: ":octagonal_sign:",
    ExecutionStatus.STOPPED: ":octagonal_sign:",
    ExecutionStatus.TIMED_OUT: ":alarm_clock:",
    ExecutionStatus.TERMINATED: ":no_entry:",
    ExecutionStatus.DUPLICATE: ":twisted_rightwards_arrows:",
}

OUTCOME_MARK = {
    NodeOutcome.OK: "✓",
    NodeOutcome.FAILED: "✗",
    NodeOutcome.PENDING: "⏳",
    NodeOutcome.STOPPED: "⏹",
    NodeOutcome.PARTIAL: "◐",
    NodeOutcome.UNKNOWN: "?",
}


def status_emoji(status: str) -> str:
    known = execution_status(status)
    return STATUS_EMOJI.get(known, ":grey_question:") if known else ":grey_question:"


def ago(moment: datetime, now: datetime) -> str:
    """How long before `now`: minutes up to two hours, hours up to two days, then days."""
    minutes = max(0, int((now - moment).total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // 1440} d ago"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def plain_label(text: Any, limit: int) -> str:
    """A plain_text label from untrusted text: printable, clipped, and with no `<…>` that could read as a
    mention or link anywhere the text is later shown as mrkdwn."""
    return clip(clean(text).replace("<", "‹").replace(">", "›").replace("\n", " "), limit)
