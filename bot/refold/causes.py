"""A failed execution's cause: what makes two failures "the same problem". Pure, no I/O.

A cause is the workflow, the failing node (name and type) and the node's error with its volatile parts
taken out, so that a hundred runs failing on one expired token, each with its own portal number,
request ID and timestamp, fall under one cause (and one incident) while a different error wording, a
different node or a different workflow does not.

Decisions worth knowing:
- Workflow identity is its ID when known (a rename must not split a cause), else its name. Names come
  from the caller (a webhook delivery carries `workflow_id` and `workflow_name`), else the legacy
  `associated_workflow`, else the ID the current shape writes into the execution's name
  ("Execution for workflow <id>").
- The failing node is the first in run order whose status is a failure, preferring one that stopped
  the run over an `Errored_and_Skipped` one (the run went on past that).
- An execution without a failing node gets `node_name = node_type = None` and an error made from its
  status: "ERRORED with no node details" when it has no nodes at all (the legacy shape), "ERRORED with
  no failing node" when its nodes all look fine; a failing node with no output gets "Errored with no
  output".
- Every number is volatile, HTTP statuses included: "failed with 500" and "failed with 503" are one
  cause (the upstream is down); the wording beside the number tells real differences apart.
- Text is cut to `MAX_SOURCE_CHARS` before normalising (a bound on the work) and the result to
  `MAX_ERROR_CHARS`. The source bound is far above the result's so that an e-mail address or an ID
  of another length does not shift where the cut falls, which would split a cause.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from bot.refold.models import Execution, Node

MAX_ERROR_CHARS = 300
MAX_SOURCE_CHARS = 2000
MAX_NAME_CHARS = 200
# Past this depth an output's structure says nothing more about the cause; it only costs time.
_MAX_JSON_DEPTH = 8
# A string output this long is not parsed as embedded JSON: the text bound already applies.
_MAX_EMBEDDED_JSON_CHARS = 100_000
ELLIPSIS = "…"


@dataclass(frozen=True)
class Cause:
    workflow: str  # display name (or ID when no name)
    workflow_id: str | None
    node_name: str | None
    node_type: str | None
    error: str  # normalised, with placeholders: <n>, <id>, <email>, <time>, scheme://host/…, "…"

    @property
    def key(self) -> str:
        """A short stable hash of what identifies the cause: hex only, so safe in a Redis key."""
        identity = self.workflow_id or self.workflow
        # JSON keeps None apart from "" and a field's text from its neighbour's.
        parts = json.dumps([identity, self.node_name, self.node_type, self.error], ensure_ascii=False)
        return hashlib.sha256(parts.encode()).hexdigest()[:16]


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_WEEKDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?[ap]m\b)?"
_ZONE = r"(?:\s?(?:z\b|utc\b|gmt\b|[+-]\d{2}:?\d{2}))"
_TIME = (
    # ISO 8601 and its SQL-ish spelling.
    rf"\d{{4}}-\d{{2}}-\d{{2}}(?:[t\s]{_CLOCK})?{_ZONE}?"
    # 05/03/2024, 5.3.24, with an optional clock.
    rf"|\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}(?:[\s,t]+{_CLOCK})?{_ZONE}?"
    # RFC 1123 / 2822 (HTTP dates) and "5 March 2024".
    rf"|\b{_WEEKDAY}?\d{{1,2}}\s+{_MONTH}\s+\d{{4}}(?:\s+{_CLOCK})?{_ZONE}?"
    # "March 5, 2024", "Tue Mar 5 2024 10:00:00".
    rf"|\b{_WEEKDAY}?{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}(?:\s+{_CLOCK})?{_ZONE}?"
    rf"|{_CLOCK}{_ZONE}?"
)

# One alternation, so each stretch of text is claimed by exactly one rule: the earliest match wins,
# and at one position the first rule listed. URLs come first so their hosts keep their digits; dates
# come before numbers so they read as <time>, not <n>-<n>-<n>.
_VOLATILE = re.compile(
    r"(?P<url>\b[a-z][a-z0-9+.\-]*://(?P<host>[^\s/?#'\"<>`]*)"
    r"(?P<rest>[/?#](?:[^\s'\"<>`]*[^\s'\"<>`.,;:!?)\]])?)?)"
    r"|(?P<email>(?<![\w.+\-])[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+)"
    r"|(?P<uuid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)"
    rf"|(?P<time>{_TIME})"
    # Hex IDs (Mongo ObjectIds, hashes, truncated tokens like "8f3a…"): hex with a digit and a letter.
    r"|(?P<hex>\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{4,}\b)"
    # API keys and other opaque tokens: long words mixing letters and digits.
    r"|(?P<token>\b(?=[\w\-]*\d)(?=[\w\-]*[a-z])[\w\-]{20,}\b)"
    r"|(?P<number>\d+(?:[.,:]\d+)*)"
    r"|(?P<dq>\"[^\"\n]*\")"
    # Apostrophes inside words (can't, customer's) open no quote.
    r"|(?P<sq>(?<!\w)'[^'\n]*'(?!\w))"
    r"|(?P<cq>“[^”\n]*”|‘[^’\n]*’)",
    re.IGNORECASE,
)
_PLACEHOLDERS = {
    "email": "<email>",
    "uuid": "<id>",
    "time": "<time>",
    "hex": "<id>",
    "token": "<id>",
    "number": "<n>",
    "dq": f'"{ELLIPSIS}"',
    "sq": f"'{ELLIPSIS}'",
}
_SPACE = re.compile(r"\s+")
# A cut can expose a new volatile part (a word that ended on letters now ends on a hex run); a few
# passes reach the fixed point, which is what makes normalise_error idempotent.
_MAX_PASSES = 6


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "url" or kind in ("host", "rest"):
        scheme = match.group("url").split("://", 1)[0]
        # Credentials in a URL's userinfo must not travel on into Slack.
        host = (match.group("host") or "").rpartition("@")[2]
        rest = match.group("rest") or ""
        return f"{scheme}://{host}" + ("/" + ELLIPSIS if rest not in ("", "/") else rest)
    if kind == "cq":
        text = match.group(0)
        return text[0] + ELLIPSIS + text[-1]
    return _PLACEHOLDERS[kind or "number"]


def _one_pass(text: str) -> str:
    text = _VOLATILE.sub(_replace, text[:MAX_SOURCE_CHARS])
    text = _SPACE.sub(" ", text).strip()
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1].rstrip() + ELLIPSIS
    return text


def normalise_error(text: str) -> str:
    """The error with its volatile parts replaced by placeholders, on one line, at most 300 chars."""
    for _ in range(_MAX_PASSES):
        again = _one_pass(text)
        if again == text:
            break
        text = again
    return text


def cause_of(
    execution: Execution, *, workflow_id: str | None = None, workflow_name: str | None = None
) -> Cause:
    wf_id = _name(workflow_id) or _name(execution.workflow.id if execution.workflow else None)
    wf_id = wf_id or _workflow_id_in_name(execution.name)
    wf_name = _name(workflow_name) or _name(execution.workflow.name if execution.workflow else None)
    # Without a workflow, the execution's own name (its volatile parts out) is the best grouping left.
    workflow = wf_name or wf_id or normalise_error(execution.name or "") or "unknown workflow"
    node = failing_node(execution)
    if node is None:
        status = normalise_error(execution.status) or "UNKNOWN"
        detail = "no node details" if not execution.nodes else "no failing node"
        return Cause(workflow, wf_id, None, None, f"{status} with {detail}")
    error = error_text(node.latest_output)
    if not error:
        error = f"{normalise_error(node.node_status or '') or 'Failed'} with no output"
    return Cause(workflow, wf_id, _name(node.node_name), _name(node.node_type), error)


def failing_node(execution: Execution) -> Node | None:
    failing = execution.failing_nodes
    for node in failing:
        if _canonical_key(node.node_status or "") != _SKIPPED:
            return node
    return failing[0] if failing else None


_SKIPPED = "erroredandskipped"


def error_text(output: Any) -> str:
    """The normalised error in a node's latest_output: its error fields, else its shape as JSON."""
    if (
        isinstance(output, str)
        and output.lstrip()[:1] in ("{", "[")
        and len(output) <= _MAX_EMBEDDED_JSON_CHARS
    ):
        # Upstream bodies are often passed through as text.
        with contextlib.suppress(ValueError, RecursionError):
            output = json.loads(output)
    if output is None or output == "" or output == {} or output == []:
        return ""
    found = _error_fields(output, nested=True)
    if found:
        return normalise_error(found)
    parts: list[str] = []
    _compact(output, parts, [0], depth=0)
    text = "".join(parts)
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + ELLIPSIS
    return text


# Canonical key spellings (lower case, no separators), a short code first, then prose.
_ERROR_KEYS = (
    "error",
    "errorcode",
    "errormessage",
    "message",
    "detail",
    "details",
    "errordescription",
    "description",
    "reason",
    "errors",
)


def _canonical_key(key: Any) -> str:
    return str(key).lower().replace("_", "").replace("-", "")


def _error_fields(value: Any, *, nested: bool) -> str | None:
    """At most two distinct error texts from this level, joined ("invalid_grant: Token expired")."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        # The first entry speaks for a list (`errors: [{message: …}]`); a list of lists says nothing.
        first = value[0] if value else None
        return None if isinstance(first, list) else _error_fields(first, nested=nested)
    if not isinstance(value, dict):
        return None
    by_key: dict[str, Any] = {}
    for key, item in value.items():
        by_key.setdefault(_canonical_key(key), item)
    texts: list[str] = []
    for key in _ERROR_KEYS:
        if key not in by_key:
            continue
        item = by_key[key]
        if isinstance(item, dict | list) and not nested:
            continue
        text = _error_fields(item, nested=False)
        if text and text not in texts:
            texts.append(text)
        if len(texts) == 2:
            break
    if texts:
        return ": ".join(texts)
    if nested:
        # {"body": {"message": …}}, {"response": {"error": …}}: one level down, no further.
        for item in value.values():
            if isinstance(item, dict):
                text = _error_fields(item, nested=False)
                if text:
                    return text
    return None


def _compact(value: Any, parts: list[str], used: list[int], depth: int) -> None:
    """Compact JSON of the output's shape: keys kept, each value normalised, stopping at the bound.

    Not json.dumps-then-normalise: every key and string is quoted in JSON, so the quoted-value rule
    would blank the keys too, and dumping a large output whole only to cut it is wasted work.
    """
    if used[0] > MAX_ERROR_CHARS:
        return

    def emit(text: str) -> None:
        parts.append(text)
        used[0] += len(text)

    if depth > _MAX_JSON_DEPTH:
        emit(ELLIPSIS)
    elif isinstance(value, dict):
        emit("{")
        for i, (key, item) in enumerate(value.items()):
            if used[0] > MAX_ERROR_CHARS:
                break
            emit(("," if i else "") + json.dumps(normalise_error(str(key)), ensure_ascii=False) + ":")
            _compact(item, parts, used, depth + 1)
        emit("}")
    elif isinstance(value, list):
        emit("[")
        for i, item in enumerate(value):
            if used[0] > MAX_ERROR_CHARS:
                break
            if i:
                emit(",")
            _compact(item, parts, used, depth + 1)
        emit("]")
    elif isinstance(value, bool) or value is None:
        emit(json.dumps(value))
    elif isinstance(value, int | float):
        emit("<n>")
    else:
        emit(json.dumps(normalise_error(str(value)), ensure_ascii=False))


_WORKFLOW_IN_NAME = re.compile(r"Execution for workflow ([0-9a-f]{24})", re.IGNORECASE)


def _workflow_id_in_name(name: str | None) -> str | None:
    # The current shape carries no workflow field, but its documented example names the run after it.
    match = _WORKFLOW_IN_NAME.fullmatch((name or "").strip())
    return match.group(1).lower() if match else None


def _name(value: str | None) -> str | None:
    text = _SPACE.sub(" ", value or "").strip()
    return text[:MAX_NAME_CHARS] or None
