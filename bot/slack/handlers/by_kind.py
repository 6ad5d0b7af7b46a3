"""Which handler runs each kind of job: one match over the job union, checked exhaustive by mypy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import assert_never

from bot.jobs.kinds import (
    AlertJob,
    AnyJob,
    BulkRerunJob,
    DigestJob,
    FollowJob,
    IncidentActionJob,
    IncidentUpdateJob,
    LookupJob,
    PollJob,
    RefreshJob,
    RerunJob,
    RerunWatchJob,
    SearchJob,
    ShareJob,
    ShortcutJob,
    SnoozeEndJob,
    StopJob,
    UnfollowJob,
    UnfurlJob,
)
from bot.slack.handlers import (
    alerts,
    digest,
    following,
    incident_actions,
    lookups,
    operate,
    search,
    snoozes,
    unfurl,
)
from bot.slack.handlers.context import JobContext

BoundHandler = Callable[[JobContext], Awaitable[None]]


def handler_for(job: AnyJob) -> BoundHandler:
    """The job's handler, bound to it. A new kind of job that is not matched here fails mypy."""
    match job:
        case LookupJob():
            return partial(lookups.run_lookup, job=job)
        case RefreshJob():
            return partial(lookups.run_refresh, job=job)
        case ShareJob():
            return partial(lookups.run_share, job=job)
        case ShortcutJob():
            return partial(lookups.run_shortcut, job=job)
        case FollowJob():
            return partial(following.run_follow, job=job)
        case PollJob():
            return partial(following.run_poll, job=job)
        case UnfollowJob():
            return partial(following.run_unfollow, job=job)
        case RerunJob():
            return partial(operate.run_rerun, job=job)
        case StopJob():
            return partial(operate.run_stop, job=job)
        case AlertJob():
            return partial(alerts.run_alert, job=job)
        case IncidentUpdateJob():
            return partial(alerts.run_incident_update, job=job)
        case IncidentActionJob():
            return partial(incident_actions.run_incident_action, job=job)
        case BulkRerunJob():
            return partial(incident_actions.run_bulk_rerun, job=job)
        case RerunWatchJob():
            return partial(incident_actions.run_rerun_watch, job=job)
        case SearchJob():
            return partial(search.run_search, job=job)
        case SnoozeEndJob():
            return partial(snoozes.run_snooze_end, job=job)
        case DigestJob():
            return partial(digest.run_digest, job=job)
        case UnfurlJob():
            return partial(unfurl.run_unfurl, job=job)
        case _:
            assert_never(job)


async def handle(ctx: JobContext, job: AnyJob) -> None:
    await handler_for(job)(ctx)
