"""When a followed run is looked at next, and whether anything worth showing changed. Pure."""

from __future__ import annotations

import hashlib
import math

from bot.refold.models import Execution

MAX_POLL_SECONDS = 60.0
# Multiples of the first interval: quick while a run is moving, slower as it sits still.
_STEPS = (1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 6, 6, 9, 12)


def next_delay(unchanged_polls: int, first_seconds: float) -> float:
    """5 s while the run keeps changing, backing off to 60 s while it does not."""
    step = _STEPS[min(unchanged_polls, len(_STEPS) - 1)]
    return min(MAX_POLL_SECONDS, max(first_seconds, step * first_seconds))


def next_poll_at(now: float, delay: float, grid_seconds: float) -> float:
    """The next poll, on a grid shared by every follow, so follows of one run poll together and
    share one Refold call (the lookup's single-flight and cache join them)."""
    grid = max(1.0, grid_seconds)
    return math.ceil((now + delay) / grid) * grid


def fingerprint(execution: Execution) -> str:
    """What the card shows of a run, without the clock: unchanged means nothing to update."""
    digest = hashlib.sha256()
    parts = [execution.status, str(execution.completion_percentage)]
    for node in execution.nodes:
        parts += [node.node_id or "", node.node_status or "", str(node.attempts_made)]
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def ran_for_ms(execution: Execution, followed_seconds: float, now_epoch: float) -> float | None:
    """How long the run took, as well as Refold lets us tell: from its creation when known, else the
    time its nodes ran."""
    if execution.created_at is not None:
        return max(0.0, now_epoch - execution.created_at.timestamp()) * 1000
    total = execution.total_node_time_ms
    if total is not None:
        return float(total)
    return followed_seconds * 1000 if followed_seconds > 0 else None
