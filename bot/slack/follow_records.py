"""Facts about follows that listeners and handlers share: what following needs, how a follow is
named, and the follow store's records as list lines."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from bot.jobs.kinds import AnyJob, FollowedCard
from bot.render.follow import FollowLine
from bot.store.follows import FollowStore


class Scheduler(Protocol):
    async def enqueue(self, job: AnyJob, *, at: float = 0.0) -> bool: ...


@dataclass(frozen=True)
class FollowKit:
    """What following needs: the records, the queue that runs the polls, and the limits."""

    store: FollowStore
    scheduler: Scheduler
    first_poll_seconds: float = 5.0
    max_seconds: float = 7200.0


def derived_follow_id(*parts: str) -> str:
    """A follow's name (32 hex characters), the same for the same parts in every process."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def follow_lines(active: list[tuple[str, bytes]]) -> list[FollowLine]:
    """The follow store's records as list lines (`/execution following`, the App Home)."""
    lines = []
    for _, raw in active:
        state = FollowedCard.model_validate_json(raw)
        lines.append(
            FollowLine(
                execution_id=state.target.execution_id,
                name=state.name,
                status=state.status,
                requester=state.requester,
                channel_id=state.card.channel_id,
                started_at=state.started_at,
            )
        )
    return lines
