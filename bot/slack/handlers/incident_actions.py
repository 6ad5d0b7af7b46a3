"""What people do on an incident's message: Rerun failed, Snooze, End snooze, Resolve; and the work
a Rerun failed press starts (its parts, then a watch of the new runs).

Who may press is checked here, fresh from Slack: the same people as a card's Rerun. Each execution is
rerun at most once, whatever the presses, retries or dead workers: a run is claimed in the incident's
record before Refold is asked, and a claim left by a worker that died (Refold may have started the
run) is not asked again. The reruns go through the workspace key's Refold rate limit like any call.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import assert_never

from bot.errors import BotError, ErrorKind
from bot.jobs.kinds import BulkRerunJob, IncidentActionJob, JobBase, RerunWatchJob
from bot.refold.models import TERMINAL_STATUSES, ExecutionStatus
from bot.render import incident as words
from bot.render.errors import describe
from bot.slack.handlers.alerts import schedule_incident_update
from bot.slack.handlers.context import JobContext
from bot.slack.handlers.operate import permitted
from bot.slack.handlers.snoozes import end_on_success
from bot.slack.incident_view import RERUNS_PER_SECOND
from bot.store.alert_routes import AlertRoute
from bot.store.errors import StoreUnavailable
from bot.store.incidents import IncidentView
from bot.usecases.actions import NOT_STARTED, ActionRequest, RerunUnconfirmed
from bot.usecases.workspace import Workspace

log = logging.getLogger(__name__)

# One job reruns this many (about 4 s at the key's rate), then hands the rest to the next part.
RERUNS_PER_PART = 50
# The incident's message shows progress after this many reruns (its update is debounced anyway).
PROGRESS_EVERY = 10
# The new runs are looked at this often, for at most this long after the press.
WATCH_SECONDS = 10
WATCH_FOR_SECONDS = 3600
TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)


async def _tell(ctx: JobContext, text: str) -> None:
    await ctx.answer("reply", response_type="ephemeral", replace_original=False, text=text)


async def _route_of(ctx: JobContext, job: JobBase, route_id: str) -> AlertRoute | None:
    """The incident's route, when it is this workspace's (a button's value is not trusted)."""
    try:
        route = await ctx.alerts.routes.get(route_id)
    except StoreUnavailable as exc:
        ctx.retry_unless_final(exc.kind.value)
        await _tell(ctx, describe(exc))
        return None
    if route is None or Workspace(route.team_id, route.enterprise_id).label != ctx.workspace.label:
        return None
    return route


async def _view(ctx: JobContext, route: AlertRoute, cause: str) -> IncidentView | None:
    try:
        return await ctx.alerts.incident(route, cause)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)


async def run_incident_action(ctx: JobContext, job: IncidentActionJob) -> None:
    route = await _route_of(ctx, job, job.route_id)
    view = await _view(ctx, route, job.cause) if route is not None else None
    if route is None or view is None or view.state == "single":
        await _tell(ctx, words.INCIDENT_GONE)
        return
    who = ctx.origin.user_id or "unknown"
    request = ActionRequest(
        ctx.workspace, execution_id="", linked_account_id=None, who=who, key=job.interaction
    )
    if not await permitted(ctx, f"incident {job.action}", request, may="rerun, snooze or resolve incidents"):
        return
    now = time.time()
    try:
        match job.action:
            case "rerun":
                await _press_rerun(ctx, job, route, view, who, now)
            case "snooze":
                until = now + job.hours * 3600
                await ctx.alerts.snooze(ctx.workspace, route, job.cause, who, until, now)
                await schedule_incident_update(ctx, job, route, job.cause, at=until + 1)
                await _tell(ctx, words.snoozed(datetime.fromtimestamp(until, UTC)))
            case "unsnooze":
                await ctx.alerts.unsnooze(ctx.workspace, route, job.cause, who)
                await _tell(ctx, words.UNSNOOZED)
            case "resolve":
                done = await ctx.alerts.resolve(ctx.workspace, route, job.cause, who, now)
                await _tell(ctx, words.RESOLVED if done else words.ALREADY_OVER)
            case _:
                assert_never(job.action)
    except StoreUnavailable as exc:
        ctx.retry_unless_final(exc.kind.value)
        await _tell(ctx, describe(exc))
        return
    await schedule_incident_update(ctx, job, route, job.cause)


async def _press_rerun(
    ctx: JobContext, job: IncidentActionJob, route: AlertRoute, view: IncidentView, who: str, now: float
) -> None:
    pending = view.pending
    if not pending:
        await _tell(ctx, words.nothing_to_rerun(view.reruns.started if view.reruns else 0))
        return
    accounts = len({run.account for run in pending if run.account})
    await ctx.alerts.press_rerun(ctx.workspace, route, job.cause, who, len(pending), accounts, now)
    upto = len(view.listed)
    first = BulkRerunJob(
        origin=job.origin,
        reply=job.reply,
        interaction=f"{job.interaction}:part0",
        route_id=route.route_id,
        cause=job.cause,
        generation=view.generation,
        press=job.interaction,
        start=0,
        end=min(upto, RERUNS_PER_PART),
        upto=upto,
    )
    await ctx.scheduler.enqueue(first)
    log.info("Rerun failed pressed: %d runs across %d linked accounts", len(pending), accounts)
    await _tell(ctx, words.rerun_pressed(len(pending), accounts, RERUNS_PER_SECOND))


async def run_bulk_rerun(ctx: JobContext, job: BulkRerunJob) -> None:
    route = await _route_of(ctx, job, job.route_id)
    view = await _view(ctx, route, job.cause) if route is not None else None
    if route is None or view is None or view.generation != job.generation:
        log.info("a Rerun failed press's incident is gone; nothing more rerun")
        return
    done = 0
    for run in view.listed[job.start : job.end]:
        try:
            if await _rerun_once(ctx, job, route, run.execution_id, run.account):
                done += 1
        except StoreUnavailable as exc:
            ctx.retry(exc.kind.value)
        if done and done % PROGRESS_EVERY == 0:
            await schedule_incident_update(ctx, job, route, job.cause)
    if job.end < job.upto:
        following = job.model_copy(
            update={
                "interaction": f"{job.press}:part{job.end // RERUNS_PER_PART}",
                "start": job.end,
                "end": min(job.upto, job.end + RERUNS_PER_PART),
            }
        )
        await ctx.scheduler.enqueue(following)
    else:
        await _watch_later(ctx, job, route, job.cause, started_at=time.time())
    await schedule_incident_update(ctx, job, route, job.cause)


async def _rerun_once(
    ctx: JobContext, job: BulkRerunJob, route: AlertRoute, execution_id: str, account: str
) -> bool:
    """Rerun one listed run unless it has been (or may have been); True when Refold started it now."""
    request = ActionRequest(
        ctx.workspace,
        execution_id=execution_id,
        linked_account_id=account or None,
        who=ctx.origin.user_id or "unknown",
        key=f"{job.press}:{execution_id}",
    )
    claim = await ctx.alerts.claim_rerun(route, job.cause, execution_id, job.press)
    match claim:
        case "taken":
            return False
        case "interrupted":
            # This press asked Refold before, from a worker that died: asked again, Refold could run
            # it twice. Kept when the answer was recorded; otherwise left as not confirmed.
            made = await ctx.actions.rerun_made(request)
            if made is not None:
                await ctx.alerts.rerun_started(route, job.cause, execution_id, made)
            else:
                log.warning("a rerun asked of Refold by a worker that died is not asked again")
            return False
        case "mine":
            pass
        case _:
            assert_never(claim)
    try:
        new_id = await ctx.actions.rerun(request)
    except RerunUnconfirmed:
        log.warning("a rerun asked of Refold by a worker that died is not asked again")
        return False
    except BotError as exc:
        if exc.kind in NOT_STARTED:
            await ctx.alerts.rerun_refused(route, job.cause, execution_id, job.press)
            if exc.kind in (ErrorKind.RATE_LIMITED, ErrorKind.BUSY, ErrorKind.STORE_UNAVAILABLE):
                ctx.retry_unless_final(exc.kind.value)  # the rest of this part, a moment later
        else:
            log.warning("a rerun's answer from Refold was lost (%s): not asked again", exc.kind.value)
        return False
    await ctx.alerts.rerun_started(route, job.cause, execution_id, new_id)
    return True


async def _watch_later(
    ctx: JobContext, job: JobBase, route: AlertRoute, cause: str, *, started_at: float
) -> None:
    await ctx.once_a_slot(
        lambda slot: RerunWatchJob(
            origin=job.origin,
            reply=job.reply,
            interaction=f"rerun-watch:{route.route_id}:{cause}:{slot}",
            route_id=route.route_id,
            cause=cause,
            started_at=started_at,
        ),
        every=WATCH_SECONDS,
        at=time.time() + WATCH_SECONDS,
        what="a look at an incident's new runs",
    )


async def run_rerun_watch(ctx: JobContext, job: RerunWatchJob) -> None:
    """The new runs' statuses onto the incident; a completed one recovers its linked account."""
    route = await _route_of(ctx, job, job.route_id)
    if route is None:
        return
    try:
        running = await ctx.alerts.reruns_running(route, job.cause, TERMINAL)
        view = await ctx.alerts.incident(route, job.cause)
    except StoreUnavailable as exc:
        ctx.retry(exc.kind.value)
    still = 0
    for new_id, account in running:
        try:
            result = await ctx.lookup.lookup(ctx.workspace, new_id, account or None, fresh=True)
        except BotError as exc:
            log.info("a new run's status could not be read (%s)", exc.kind.value)
            still += 1
            continue
        status = result.execution.known_status
        name = status.value if status is not None else str(result.execution.status).upper()
        try:
            await ctx.alerts.rerun_status(
                route,
                job.cause,
                new_id,
                name,
                account=account,
                completed=status is ExecutionStatus.COMPLETED,
            )
            if status is ExecutionStatus.COMPLETED and view is not None:
                cause = view.cause
                await end_on_success(
                    ctx, job, route.route_id, cause.workflow_id, cause.workflow, account, new_id
                )
        except StoreUnavailable as exc:
            ctx.retry(exc.kind.value)
        still += name not in TERMINAL
    await schedule_incident_update(ctx, job, route, job.cause)
    if still and time.time() < job.started_at + WATCH_FOR_SECONDS:
        await _watch_later(ctx, job, route, job.cause, started_at=job.started_at)
