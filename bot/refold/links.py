"""Execution IDs in Refold links, for unfurls. Pure.

Recognised, on an unfurl domain: a path segment of exactly 24 hex characters
(`https://app.refold.ai/logs/executions/65410cf6cdf931a12d7ab009`), or an `execution_id`,
`executionId` or `instance_id` query parameter (`https://app.refold.ai/logs?execution_id=65410c…`).
Links built from REFOLD_DASHBOARD_URL's template are recognised whatever their host.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from bot.refold.ids import InvalidExecutionId, normalize_execution_id

QUERY_NAMES = ("execution_id", "executionId", "instance_id")
_HEX24 = re.compile(r"[0-9a-fA-F]{24}")


def execution_in_link(url: str, domains: list[str], dashboard_template: str | None = None) -> str | None:
    """The execution a Refold link points at, or None when it is not one the bot unfurls."""
    if dashboard_template:
        found = _from_template(url, dashboard_template)
        if found:
            return found
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not any(host == d or host.endswith("." + d) for d in domains):
        return None
    query = parse_qs(parts.query)
    for name in QUERY_NAMES:
        for value in query.get(name, []):
            canonical = _canonical(value)
            if canonical:
                return canonical
    for segment in parts.path.split("/"):
        canonical = _canonical(unquote(segment))
        if canonical:
            return canonical
    return None


def _from_template(url: str, template: str) -> str | None:
    before, _, after = template.partition("{execution_id}")
    if not url.startswith(before):
        return None
    rest = url[len(before) :]
    candidate = rest[:24]
    if not _HEX24.fullmatch(candidate) or not rest[24:].startswith(after.split("{")[0]):
        return None
    return _canonical(candidate)


def _canonical(value: str) -> str | None:
    try:
        return normalize_execution_id(value)
    except InvalidExecutionId:
        return None
