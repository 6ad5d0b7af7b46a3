"""An incident as the store keeps it, made into what its message and listings show."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.render.alerts import IncidentFacts
from bot.store.incidents import RESOLVE_SECONDS, IncidentView


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def incident_facts(view: IncidentView) -> IncidentFacts:
    return IncidentFacts(
        workflow=view.cause.workflow,
        node=view.cause.node,
        node_type=view.cause.node_type,
        error=view.cause.error,
        runs=view.runs,
        accounts=view.accounts,
        first_accounts=view.first_accounts,
        first_seen=at(view.first_seen),
        last_seen=at(view.last_seen),
        resolve_after_seconds=RESOLVE_SECONDS,
        recovered=view.recovered,
    )
