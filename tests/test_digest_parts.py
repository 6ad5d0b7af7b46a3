"""The daily digest's parts: its command, its local times across daylight-saving changes, its counts
in a real Redis, and its message."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from bot.parse import DigestCommand, InvalidCommand, parse_command
from bot.refold.causes import Cause
from bot.render.digest import CauseLine, CountLine, DigestFacts, digest_text
from bot.slack.digest_view import digest_facts
from bot.store.alert_routes import AlertRoute, AlertRouteStore
from bot.store.audit import AuditLog
from bot.store.daily_counts import BUCKET_SECONDS, MAX_FIELDS, CountedCause, DailyCounts
from bot.store.digests import DigestConfig, DigestStore
from bot.usecases.digest import DailyDigests, next_day, occurrence, window
from bot.usecases.workspace import Workspace

BERLIN = "Europe/Berlin"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digest", DigestCommand("show")),
        ("digest on", DigestCommand("on")),
        ("digest off", DigestCommand("off")),
        ("digest on at 7:30", DigestCommand("on", at="07:30")),
        ("digest ON tz:europe/berlin at 18:05 quiet:skip", DigestCommand("on", "18:05", BERLIN, "skip")),
        ("digest on quiet:post tz:UTC", DigestCommand("on", zone="UTC")),
    ],
)
def test_digest_commands_parse(text: str, expected: DigestCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("digest weekly", "`digest weekly` is not a choice"),
        ("digest off now", "`digest off` takes nothing after it"),
        ("digest on at 25:00", "`at 25:00` is not a time I can read"),
        ("digest on at", "`at ` is not a time I can read"),
        ("digest on tz:Mars/Olympus", "`tz:Mars/Olympus` is not a time zone I know"),
        ("digest on tz:../../etc/passwd", "is not a time zone I know"),
        ("digest on quiet:never", "`quiet:never` is not a choice"),
        ("digest on tomorrow", "I could not read `tomorrow`"),
    ],
)
def test_a_malformed_digest_command_names_the_part_it_could_not_read(text: str, named: str) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, InvalidCommand) and named in parsed.reason


def test_the_digest_keeps_its_local_time_across_daylight_saving_changes() -> None:
    # Berlin moves to summer time on 2026-03-29 and back on 2026-10-25.
    for day in (date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30), date(2026, 10, 25)):
        local = datetime.fromtimestamp(occurrence(day, "09:00", BERLIN), ZoneInfo(BERLIN))
        assert (local.date(), local.hour, local.minute) == (day, 9, 0)
    spring = window(date(2026, 3, 29), "09:00", BERLIN)
    autumn = window(date(2026, 10, 25), "09:00", BERLIN)
    ordinary = window(date(2026, 12, 4), "09:00", BERLIN)
    assert spring[1] - spring[0] == 23 * 3600
    assert autumn[1] - autumn[0] == 25 * 3600
    assert ordinary[1] - ordinary[0] == 24 * 3600
    # A time the spring change skips is the moment after the gap, not a day lost.
    skipped = datetime.fromtimestamp(occurrence(date(2026, 3, 29), "02:30", BERLIN), ZoneInfo(BERLIN))
    assert (skipped.hour, skipped.minute) == (3, 30)


def test_the_next_digest_is_today_before_its_time_and_tomorrow_after_it() -> None:
    before = datetime(2026, 12, 4, 7, 59, tzinfo=UTC).timestamp()  # 08:59 in Berlin
    after = datetime(2026, 12, 4, 8, 0, tzinfo=UTC).timestamp()  # 09:00 there: that one has come
    assert next_day(before, "09:00", BERLIN) == date(2026, 12, 4)
    assert next_day(after, "09:00", BERLIN) == date(2026, 12, 5)
    # Late in the UTC day it is already tomorrow in Tokyo.
    late = datetime(2026, 12, 4, 23, 30, tzinfo=UTC).timestamp()
    assert next_day(late, "09:00", "Asia/Tokyo") == date(2026, 12, 5)


def cause(node: str, error: str, workflow: str = "Nightly sync") -> Cause:
    return Cause(workflow=workflow, workflow_id=None, node_name=node, node_type=None, error=error)


async def test_a_days_counts_add_up_each_run_once_and_stay_bounded(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        counts = DailyCounts(client)
        now = datetime(2026, 12, 4, 10, 0, tzinfo=UTC).timestamp()
        token = cause("Fetch contacts", "401 Unauthorized")
        counted = CountedCause(token.key, "Nightly sync", "Fetch contacts", "401 Unauthorized")
        for n, account in enumerate(["acme", "globex", "acme"]):
            for _ in range(2):  # a job run again counts its run once
                await counts.record(
                    "r1",
                    execution_id=f"e{n}",
                    outcome="failed",
                    workflow="Nightly sync",
                    account=account,
                    cause=counted,
                    now=now + n * 600,
                )
        await counts.record(
            "r1",
            execution_id="c1",
            outcome="completed",
            workflow="Nightly sync",
            account="acme",
            cause=None,
            now=now,
        )
        (tally,) = await counts.tallies("r1", [(now - 3600, now + 3600)])
        assert (tally.errored, tally.completed) == (3, 1)
        assert tally.by_workflow == {"Nightly sync": 3}
        assert tally.by_cause == {token.key: 3}
        assert tally.cause_accounts[token.key] == {"acme": 2, "globex": 1}
        assert tally.causes[token.key] == counted
        # Another route's counts, and another stretch of time, are apart.
        (other,) = await counts.tallies("r2", [(now - 3600, now + 3600)])
        (earlier,) = await counts.tallies("r1", [(now - 7200, now - 3600)])
        assert other.errored == earlier.errored == 0
        # Every bucket expires, 14 days after its quarter hour.
        keys = [k async for k in client.scan_iter("refold-bot:daily-counts:r1:*")]
        ttls = [await client.ttl(k) for k in keys]
        assert keys and all(13 * 86400 < t <= 14 * 86400 + BUCKET_SECONDS for t in ttls)
        # A bucket holds at most MAX_FIELDS counters; the total goes on counting past them.
        for n in range(MAX_FIELDS + 10):
            await counts.record(
                "r3",
                execution_id=f"x{n}",
                outcome="failed",
                workflow=f"wf {n}",
                account=None,
                cause=None,
                now=now,
            )
        (full,) = await counts.tallies("r3", [(now - 60, now + 60)])
        assert full.errored == MAX_FIELDS + 10
        assert len(full.by_workflow) < MAX_FIELDS
    finally:
        await client.aclose()


async def test_a_digest_compares_its_day_with_the_days_before_that_the_route_lived(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        counts = DailyCounts(client)
        digests = DailyDigests(DigestStore(client), counts, AlertRouteStore(client), AuditLog(client))
        today = date(2026, 12, 4)
        start, end = window(today, "09:00", BERLIN)
        route = AlertRoute(
            route_id="f" * 32, channel_id="C9", created_at=datetime.fromtimestamp(end - 4.5 * 86400, UTC)
        )
        config, first = await digests.turn_on(
            Workspace("T9", None), route, "09:00", BERLIN, "post", "U1", start
        )
        assert first == today
        old = cause("Fetch contacts", "401 Unauthorized")
        new = cause("Upload", "503 Service Unavailable", workflow="Weekly export")

        async def fail(at: float, n: int, account: str, c: Cause, workflow: str = "Nightly sync") -> None:
            await counts.record(
                route.route_id,
                execution_id=f"{at}-{n}",
                outcome="failed",
                workflow=workflow,
                account=account,
                cause=CountedCause(c.key, workflow, c.node_name or "", c.error),
                now=at,
            )

        # The day: 4 runs of the old cause for 3 accounts, 2 of a new one.
        for n, account in enumerate(["acme", "globex", "initech", "acme"]):
            await fail(start + 3600 + n, n, account, old)
        for n in range(2):
            await fail(end - 60 + n, 10 + n, "umbrella", new, "Weekly export")
        # Each of the four days before it that the route lived: 1 run of the old cause; one more the
        # day before, outside the digest's stretch by a minute (it belongs to the day after).
        for back in range(1, 6):
            day_start, _ = window(today - timedelta(days=back), "09:00", BERLIN)
            await fail(day_start + 600, 100 + back, "acme", old)
        tallies = await digests.tallies(route, config, today)
        assert len(tallies.previous) == 4  # the fifth day before ended before the route was made
        facts = digest_facts("C9", tallies)
        assert facts.errored == CountLine("errored", 6, 1.0)
        assert facts.accounts == CountLine("accounts", 4, 1.0) and facts.new_causes == 1
        assert [(w.name, w.count, w.average) for w in facts.workflows] == [
            ("Nightly sync", 4, 1.0),
            ("Weekly export", 2, 0.0),
        ]
        top, second = facts.causes
        assert (top.node, top.count, top.average, top.new) == ("Fetch contacts", 4, 1.0, False)
        assert list(top.accounts) == ["acme", "globex", "initech"]
        assert (second.workflow, second.count, second.new) == ("Weekly export", 2, True)
        text = digest_text(facts)
        assert "*6 runs errored* (avg 1) in 2 workflows, for 4 linked accounts (avg 1)" in text
        assert "Thu 3 Dec 09:00 to Fri 4 Dec 09:00 (Europe/Berlin)" in text
        assert "_Averages are over the 4 days before._" in text
        assert "• *Nightly sync*: 4 (avg 1)" in text and "• *Weekly export*: 2 (avg 0)" in text
        assert "• :new: *Weekly export* at *Upload*: 2 runs (avg 0), 1 linked account: *umbrella*" in text
        assert ":new: *1 cause new since the day before*" in text
        # Once a day: a day whose digest went out is not the next one, even when the time moves.
        await digests.store.sent(route.route_id, today.isoformat(), "1.1")
        assert await digests.first_unsent(
            DigestConfig(route.route_id, "18:00", BERLIN, "post", "U1", 1.0), end - 3600
        ) == (today + timedelta(days=1))
        # Its route was never stored (or is gone): the upkeep forgets the digest.
        assert await digests.store.route_ids() == [route.route_id]
        assert await digests.scheduled(end) == []
        assert await digests.store.route_ids() == [] and await digests.store.get(route.route_id) is None
    finally:
        await client.aclose()


def test_a_quiet_day_is_one_line_and_a_busy_one_names_a_few_accounts_and_counts_the_rest() -> None:
    zone = ZoneInfo(BERLIN)
    base = dict(
        channel_id="C1",
        start=datetime(2026, 12, 3, 9, 0, tzinfo=zone),
        end=datetime(2026, 12, 4, 9, 0, tzinfo=zone),
        zone=BERLIN,
        days_averaged=0,
    )
    quiet = DigestFacts(
        **base,  # type: ignore[arg-type]
        errored=CountLine("errored", 0, None),
        accounts=CountLine("accounts", 0, None),
        workflows=[],
        causes=[],
        new_causes=0,
    )
    assert digest_text(quiet) == (
        ":newspaper: *Daily digest* for <#C1>: Thu 3 Dec 09:00 to Fri 4 Dec 09:00 (Europe/Berlin)\n"
        "A quiet day: no runs errored."
    )
    busy = DigestFacts(
        **base,  # type: ignore[arg-type]
        errored=CountLine("errored", 12, None),
        accounts=CountLine("accounts", 5, None),
        workflows=[CountLine("Nightly <sync>", 12, None)],
        causes=[CauseLine("Nightly <sync>", "", "boom", 12, None, ["a", "b", "c", "d", "e"], False)],
        new_causes=0,
    )
    text = digest_text(busy)
    assert "5 linked accounts: *a*, *b*, *c* and 2 more" in text
    assert "Nightly &lt;sync&gt;" in text and "<sync>" not in text
    assert "_No earlier day to compare with yet._" in text and "new since" not in text
