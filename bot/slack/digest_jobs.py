"""The one way a day's digest of a route gets on the job queue: by its command, by the day before's
job, or by the upkeep that puts back one gone missing."""

from __future__ import annotations

from datetime import date

from bot.jobs.kinds import DigestJob, Origin
from bot.slack.follow_records import Scheduler
from bot.store.alert_routes import AlertRoute
from bot.store.digests import DigestConfig
from bot.usecases.digest import occurrence


async def schedule_digest(scheduler: Scheduler, route: AlertRoute, config: DigestConfig, day: date) -> bool:
    """Queue `day`'s digest at its local time: once, the job's key being the route, digest and day.
    False when it is queued already."""
    origin = Origin(team_id=config.team_id, enterprise_id=config.enterprise_id, org_wide=config.org_wide)
    return await scheduler.enqueue(
        DigestJob.for_day(origin, route.route_id, route.channel_id, config.since, day.isoformat()),
        at=occurrence(day, config.at, config.zone),
    )
