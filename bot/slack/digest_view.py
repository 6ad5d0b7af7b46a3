"""A day's counts, as the store keeps them, made into what the digest's message shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.render.digest import CauseLine, CountLine, DigestFacts, DigestSetting
from bot.store.daily_counts import Tally
from bot.store.digests import DigestConfig
from bot.usecases.digest import DigestTallies


def setting(config: DigestConfig) -> DigestSetting:
    return DigestSetting(at=config.at, zone=config.zone, quiet=config.quiet, by=config.by)


def digest_facts(channel_id: str, tallies: DigestTallies) -> DigestFacts:
    current, previous = tallies.current, tallies.previous
    zone = ZoneInfo(tallies.config.zone)

    def average(count: Callable[[Tally], int]) -> float | None:
        return sum(count(t) for t in previous) / len(previous) if previous else None

    workflows = [
        CountLine(name, count, average(lambda t, n=name: t.by_workflow[n]))  # type: ignore[misc]
        for name, count in sorted(current.by_workflow.items(), key=lambda item: (-item[1], item[0]))
    ]
    day_before = previous[0].by_cause if previous else None
    causes = []
    for key, count in sorted(current.by_cause.items(), key=lambda item: (-item[1], item[0])):
        cause = current.causes[key]
        accounts = current.cause_accounts.get(key)
        causes.append(
            CauseLine(
                workflow=cause.workflow,
                node=cause.node,
                error=cause.error,
                count=count,
                average=average(lambda t, k=key: t.by_cause[k]),  # type: ignore[misc]
                accounts=[a for a, _ in sorted((accounts or {}).items(), key=lambda i: (-i[1], i[0]))],
                new=day_before is not None and key not in day_before,
            )
        )
    return DigestFacts(
        channel_id=channel_id,
        start=datetime.fromtimestamp(tallies.start, zone),
        end=datetime.fromtimestamp(tallies.end, zone),
        zone=tallies.config.zone,
        days_averaged=len(previous),
        errored=CountLine("errored", current.errored, average(lambda t: t.errored)),
        accounts=CountLine("accounts", len(current.by_account), average(lambda t: len(t.by_account))),
        workflows=workflows,
        causes=causes,
        new_causes=sum(1 for c in causes if c.new),
    )
