"""The daily digest of a route's alerts: turned on for a local time in a zone, one per day, built from
the bot's own counts (no Refold calls).

A day's digest covers the day since the one before, from yesterday's local time to today's: 23 or
25 hours across a daylight-saving change, never an hour early or late. Its figures stand beside the
average of the same stretch on each of the seven days before (or as many as the route has lived).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.parse import DigestQuiet
from bot.store.alert_routes import AlertRoute, AlertRouteStore
from bot.store.audit import AuditLog
from bot.store.daily_counts import DailyCounts, Tally
from bot.store.digests import DigestConfig, DigestStore
from bot.usecases.audited import audited
from bot.usecases.workspace import Workspace

DEFAULT_AT = "09:00"
DEFAULT_ZONE = "UTC"
AVERAGE_DAYS = 7


def zone_or_none(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def occurrence(day: date, at: str, zone: str) -> float:
    """When `at` strikes on `day` in `zone` (epoch seconds). A time a spring change skips is taken
    as the moment after the gap; one an autumn change repeats, as its first."""
    hours, minutes = (int(part) for part in at.split(":"))
    local = datetime.combine(day, time(hours, minutes), tzinfo=ZoneInfo(zone))
    # Round-tripping through UTC moves a skipped time past the gap (zoneinfo reads it with the
    # offset before the change).
    return local.astimezone(UTC).timestamp()


def local_day(epoch: float, zone: str) -> date:
    return datetime.fromtimestamp(epoch, ZoneInfo(zone)).date()


def next_day(now: float, at: str, zone: str) -> date:
    """The first local day whose digest time is still to come."""
    day = local_day(now, zone)
    while occurrence(day, at, zone) <= now:
        day += timedelta(days=1)
    return day


def window(day: date, at: str, zone: str) -> tuple[float, float]:
    """What `day`'s digest covers: since the day before's."""
    return occurrence(day - timedelta(days=1), at, zone), occurrence(day, at, zone)


@dataclass(frozen=True)
class DigestTallies:
    config: DigestConfig
    day: date
    start: float
    end: float
    current: Tally
    previous: list[Tally]  # the same stretch on each day before, the day before first


class DailyDigests:
    def __init__(
        self, store: DigestStore, counts: DailyCounts, routes: AlertRouteStore, audit: AuditLog
    ) -> None:
        self.store = store
        self._routes = routes
        self._counts = counts
        self._audit = audit

    async def turn_on(
        self,
        workspace: Workspace,
        route: AlertRoute,
        at: str,
        zone: str,
        quiet: DigestQuiet,
        who: str,
        now: float,
        *,
        org_wide: bool = False,
    ) -> tuple[DigestConfig, date]:
        """Turn the route's digest on (or change it); returns it with the day of its first."""
        config = DigestConfig(
            route.route_id,
            at,
            zone,
            quiet,
            who,
            now,
            team_id=workspace.team_id,
            enterprise_id=workspace.enterprise_id,
            org_wide=org_wide,
        )
        await self.store.put(config)
        await audited(
            self._audit, workspace, who, "digest on", f"<#{route.channel_id}> at {at} {zone} quiet:{quiet}"
        )
        return config, await self.first_unsent(config, now)

    async def first_unsent(self, config: DigestConfig, now: float) -> date:
        """The next day whose digest is to come and not sent yet (one a day, even when the time moves)."""
        day = next_day(now, config.at, config.zone)
        if await self.store.send_state(config.route_id, day.isoformat()) != "free":
            day += timedelta(days=1)
        return day

    async def scheduled(self, now: float) -> list[tuple[AlertRoute, DigestConfig, date]]:
        """Every digest on, with the day of its next; a digest whose route is gone is forgotten."""
        found = []
        for route_id in await self.store.route_ids():
            config = await self.store.get(route_id)
            route = await self._routes.get(route_id) if config is not None else None
            if config is None or route is None:
                await self.store.forget(route_id)
                continue
            found.append((route, config, await self.first_unsent(config, now)))
        return found

    async def turn_off(self, workspace: Workspace, route: AlertRoute, who: str) -> bool:
        found = await self.store.forget(route.route_id)
        if found:
            await audited(self._audit, workspace, who, "digest off", f"<#{route.channel_id}>")
        return found

    async def tallies(self, route: AlertRoute, config: DigestConfig, day: date) -> DigestTallies:
        """The day's counts and those of the days before it that the route has lived through."""
        start, end = window(day, config.at, config.zone)
        born = route.created_at.timestamp()
        windows = [(start, end)]
        for back in range(1, AVERAGE_DAYS + 1):
            earlier = window(day - timedelta(days=back), config.at, config.zone)
            if earlier[1] <= born:
                break
            windows.append(earlier)
        found = await self._counts.tallies(route.route_id, windows)
        return DigestTallies(config, day, start, end, found[0], found[1:])
