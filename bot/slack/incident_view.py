"""An incident as the store keeps it, made into what its message, thread and listings show."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.render.incident import RUNS_PER_BATCH, IncidentFacts, RerunFacts, RunRow
from bot.store.incidents import RESOLVE_SECONDS, IncidentView, RunEntry
from bot.store.ratelimit import REFOLD_RATES

# What the reruns go through: the workspace key's Refold rate, per second.
RERUNS_PER_SECOND = min(rate.limit / (rate.interval / 1000) for rate in REFOLD_RATES)


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _maybe(epoch: float | None) -> datetime | None:
    return at(epoch) if epoch is not None else None


def incident_facts(view: IncidentView) -> IncidentFacts:
    pending = view.pending
    reruns = view.reruns
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
        state=view.state,
        resolved_at=_maybe(view.resolved_at),
        resolved_by=view.resolved_by,
        reopened_at=_maybe(view.reopened_at),
        snoozed_until=_maybe(view.snooze.until) if view.snooze else None,
        snoozed_by=view.snooze.by if view.snooze else None,
        held=view.snooze.held if view.snooze else 0,
        rerun=RerunFacts(
            by=reruns.by,
            at=at(reruns.at),
            asked=reruns.asked,
            started=reruns.started,
            unconfirmed=reruns.unconfirmed,
            failed=reruns.failed,
            statuses=reruns.statuses,
            per_second=RERUNS_PER_SECOND,
        )
        if reruns is not None
        else None,
        pending_runs=len(pending),
        pending_accounts=len({run.account for run in pending if run.account}),
        listed=len(view.listed),
        earlier_episodes=view.earlier_episodes,
        last_episode=_maybe(view.last_episode),
    )


def batches_of(listed: list[RunEntry]) -> list[list[RunRow]]:
    """The thread's messages of runs, in order: RUNS_PER_BATCH each, the last one filling up."""
    rows = [RunRow(run.execution_id, run.account, at(run.at)) for run in listed]
    return [rows[i : i + RUNS_PER_BATCH] for i in range(0, len(rows), RUNS_PER_BATCH)]
