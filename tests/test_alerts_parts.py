"""The parts behind alerts, unfurls and the App Home: storm decisions on a real Redis, signatures,
payloads, links, filters and the pure renderings within Slack's limits."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from slack_sdk.models.blocks import Block

from bot.parse import AlertsCommand, FoundExecution, InvalidCommand, parse_command
from bot.refold.links import execution_in_link
from bot.refold.models import Execution
from bot.refold.webhooks import UnreadableDelivery, WebhookEvent, read_delivery, signature_valid
from bot.render.alerts import RepeatFacts, RouteView, repeat_line
from bot.render.buttons import decode_incident, decode_target
from bot.render.follow import FollowLine
from bot.render.home import HomeFacts, RecentView, home_view
from bot.render.incident import (
    IncidentFacts,
    RerunFacts,
    RunRow,
    batch_blocks,
    batch_text,
    incident_blocks,
    incident_message,
)
from bot.render.unfurl import render_unfurl
from bot.store.alert_history import KEEP, AlertHistory, Repeat, repeat_of
from bot.store.alert_routes import AlertEvents, AlertRoute
from bot.store.incidents import (
    BATCH_CLAIM_SECONDS,
    GROUP_SECONDS,
    REOPEN_SECONDS,
    RESOLVE_SECONDS,
    Batch,
    CauseFields,
    IncidentStore,
    RunEntry,
)
from bot.usecases.alerts import environment_wanted, subscribed_events, wanted
from tests.fakes.refold import errored_doc
from tests.harness import EXEC_ID

DOMAINS = ["app.refold.ai", "app.gocobalt.io"]


FIELDS = CauseFields("Nightly sync", "Create contact", "hubspot", "<n> Unauthorized")


async def test_a_cause_gets_a_card_then_an_incident_that_later_failures_join(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    store = IncidentStore(client)

    async def arrive(alert: str, account: str, now: float, cause: str = "c1") -> tuple[str, str]:
        got = await store.arrive(
            "r", cause, FIELDS, alert=alert, execution_id=alert, account=account, now=now
        )
        return got.role, got.card_ts

    try:
        assert await arrive("a1", "acme", 1000) == ("card", "")
        gen = (
            await store.arrive("r", "c1", FIELDS, alert="a1", execution_id="a1", account="acme", now=1)
        ).generation
        # The second failure within the window opens the incident; the first card is not posted yet,
        # so the opener cannot turn it, and the card's poster will.
        assert await arrive("a2", "beta", 1010) == ("open", "")
        assert await store.claim_convert("r", "c1", gen, "job-a2") == ""
        assert await store.claim_convert("r", "c1", gen, "job-a1", "111.1") == "111.1"
        # Claimed once: not by another job, but again by the same one (run again after its worker died).
        assert await store.claim_convert("r", "c1", gen, "job-a2") == ""
        assert await store.claim_convert("r", "c1", gen, "job-a1") == "111.1"
        assert await arrive("a3", "acme", 1020) == ("join", "111.1")
        # Run again: the same decision, counted once.
        assert await arrive("a2", "beta", 1030) == ("open", "111.1")
        # Another cause is apart.
        assert await arrive("b1", "acme", 1030, cause="c2") == ("card", "")
        view = await store.view("r", "c1")
        assert view is not None
        assert (view.state, view.runs, view.accounts, view.first_accounts) == ("open", 3, 2, ["acme", "beta"])
        assert (view.first_seen, view.last_seen, view.card_ts) == (1000.0, 1020.0, "111.1")
        assert await store.open_causes("r", now=1030) == ["c1"]
        assert (view.first_execution, view.first_account, view.cause) == ("a1", "acme", FIELDS)
        # A success of a hit account recovers it, of another workflow or account nothing; a failure
        # of the account again takes it back.
        assert await store.succeeded("r", "nightly SYNC", "beta", now=1025) == ["c1"]
        assert await store.succeeded("r", "Other", "acme", now=1025) == []
        assert await store.succeeded("r", "Nightly sync", "zeta", now=1025) == []
        assert (await store.view("r", "c1")).recovered == 1  # type: ignore[union-attr]
        assert await arrive("a6", "beta", 1026) == ("join", "111.1")
        assert (await store.view("r", "c1")).recovered == 0  # type: ignore[union-attr]
        # Quiet past the resolve window, it is over; a failure within the reopen window reopens the
        # same message, counted on.
        reopened_at = 1026 + RESOLVE_SECONDS + 1
        assert await arrive("a4", "gamma", reopened_at) == ("join", "111.1")
        again = await store.view("r", "c1")
        assert again is not None and (again.state, again.runs, again.reopened_at) == ("open", 5, reopened_at)
        # Past the reopen window after that, the next failure is a new card, counted afresh.
        later = reopened_at + RESOLVE_SECONDS + REOPEN_SECONDS + 1
        assert await arrive("a7", "gamma", later) == ("card", "")
        fresh = await store.view("r", "c1")
        assert fresh is not None and (fresh.state, fresh.runs, fresh.accounts, fresh.card_ts) == (
            "single",
            1,
            1,
            "",
        )
        assert fresh.listed == [RunEntry("a7", "gamma", later)] and fresh.reopened_at is None
        # A cause seen before: its earlier episode is remembered (the first began at 1000).
        assert (fresh.earlier_episodes, fresh.last_episode) == (1, 1000.0)
        # A single failure long ago does not open an incident with the next one.
        assert await arrive("a5", "gamma", later + GROUP_SECONDS + 2) == ("card", "")
    finally:
        await client.aclose()


async def open_incident(store: IncidentStore, runs: int, now: float = 1000.0) -> str:
    """An open incident of cause c1 in route r with `runs` failures (accounts a0, a1, a2, ...); its
    generation."""
    for index in range(runs):
        await store.arrive(
            "r",
            "c1",
            FIELDS,
            alert=f"x{index}",
            execution_id=f"x{index}",
            account=f"a{index}",
            now=now + index,
        )
    view = await store.view("r", "c1")
    assert view is not None
    await store.claim_convert("r", "c1", view.generation, "job-x0", "100.1")
    return view.generation


async def test_a_snoozed_cause_counts_its_failures_and_posts_nothing_until_it_ends(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    store = IncidentStore(client)
    try:
        await open_incident(store, 2)
        await store.snooze("r", "c1", "U1", until=2000, now=1500)
        got = await store.arrive("r", "c1", FIELDS, alert="s1", execution_id="s1", account="z", now=1500)
        assert got.role == "held"  # counted on the open incident, nothing of its own
        view = await store.view("r", "c1")
        assert view is not None and view.runs == 3 and view.snooze is not None
        assert (view.snooze.by, view.snooze.held, view.snoozed(1999), view.snoozed(2001)) == (
            "U1",
            1,
            True,
            False,
        )
        # A cause snoozed with no incident open: held too, counted on the snooze only.
        await store.snooze("r", "c9", "U1", until=2000, now=1500)
        lone = await store.arrive("r", "c9", FIELDS, alert="s2", execution_id="s2", account="z", now=1500)
        assert lone.role == "held" and await store.view("r", "c9") is None
        # After the snooze, failures are posted again.
        after = await store.arrive("r", "c9", FIELDS, alert="s3", execution_id="s3", account="z", now=2001)
        assert after.role == "card"
        assert await store.unsnooze("r", "c1") and (await store.view("r", "c1")).snooze is None  # type: ignore[union-attr]
    finally:
        await client.aclose()


async def test_a_thread_batch_is_posted_by_one_job_and_taken_over_when_its_poster_stalls(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    store = IncidentStore(client)
    try:
        gen = await open_incident(store, 3)
        assert await store.claim_batch("r", "c1", gen, 0, "job-a", now=1000) == ("post", "")
        assert await store.claim_batch("r", "c1", gen, 0, "job-b", now=1010) == ("busy", "")
        # The same job run again may post; another one takes over a claim left too long.
        assert await store.claim_batch("r", "c1", gen, 0, "job-a", now=1011) == ("post", "")
        assert await store.claim_batch("r", "c1", gen, 0, "job-b", now=1011 + BATCH_CLAIM_SECONDS) == (
            "post",
            "",
        )
        await store.batch_shown("r", "c1", 0, "200.2", 3)
        assert await store.claim_batch("r", "c1", gen, 0, "job-c", now=1100) == ("update", "200.2")
        view = await store.view("r", "c1")
        assert view is not None and view.batches == {0: Batch("200.2", 3)}
        # An old episode's job does nothing.
        assert await store.claim_batch("r", "c1", "0", 1, "job-c", now=1100) == ("busy", "")
    finally:
        await client.aclose()


async def test_each_run_of_an_incident_is_claimed_for_rerun_once_whatever_the_presses(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    store = IncidentStore(client)
    try:
        await open_incident(store, 4)
        await store.press_rerun("r", "c1", "U1", 4, now=1100)
        assert await store.claim_rerun("r", "c1", "x0", "press-1") == "mine"
        assert await store.claim_rerun("r", "c1", "x0", "press-2") == "taken"
        # The same press again (its worker died after asking Refold): not asked again.
        assert await store.claim_rerun("r", "c1", "x0", "press-1") == "interrupted"
        await store.rerun_started("r", "c1", "x0", "n0")
        assert await store.claim_rerun("r", "c1", "x0", "press-1") == "taken"
        # Refused by Refold: a later press may try it again.
        assert await store.claim_rerun("r", "c1", "x1", "press-1") == "mine"
        await store.rerun_refused("r", "c1", "x1", "press-1")
        assert await store.claim_rerun("r", "c1", "x2", "press-1") == "mine"  # in flight
        view = await store.view("r", "c1")
        assert view is not None and view.reruns is not None
        assert [run.execution_id for run in view.pending] == ["x1", "x3"]
        reruns = view.reruns
        assert (reruns.by, reruns.asked, reruns.started, reruns.unconfirmed, reruns.failed) == (
            "U1",
            4,
            1,
            1,
            1,
        )
        assert await store.claim_rerun("r", "c1", "x1", "press-2") == "mine"
        # The new run ends: completed, its account recovers.
        assert await store.reruns_running("r", "c1", frozenset({"COMPLETED"})) == [("n0", "a0")]
        await store.rerun_status("r", "c1", "n0", "COMPLETED", account="a0", completed=True)
        assert await store.reruns_running("r", "c1", frozenset({"COMPLETED"})) == []
        done = await store.view("r", "c1")
        assert done is not None and done.recovered == 1 and done.reruns is not None
        assert done.reruns.statuses == {"COMPLETED": 1}
    finally:
        await client.aclose()


def test_signatures_are_hex_hmac_sha256_of_the_raw_body_keyed_with_the_api_key() -> None:
    body = b'{"event":"Workflow Errored"}'
    good = hmac.new(b"tk_key", body, hashlib.sha256).hexdigest()
    assert signature_valid(body, good, "tk_key")
    assert signature_valid(body, good.upper(), "tk_key")
    assert not signature_valid(body + b" ", good, "tk_key")
    assert not signature_valid(body, good, "tk_other")
    assert not signature_valid(body, None, "tk_key") and not signature_valid(body, "", "tk_key")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"not json",
        b'{"event": "Something Else"}',
        b'{"event": "Workflow Errored", "instance_id": "x"}',
    ],
)
def test_unreadable_deliveries_are_refused(body: bytes) -> None:
    with pytest.raises(UnreadableDelivery):
        read_delivery(body)


def test_deliveries_of_one_event_share_a_name_and_other_events_do_not() -> None:
    payload = {"event": "Workflow Errored", "instance_id": EXEC_ID.upper(), "workflow_name": "X" * 500}
    first = read_delivery(json.dumps(payload).encode())
    assert first.instance_id == EXEC_ID and len(first.workflow_name or "") == 200
    assert read_delivery(json.dumps(payload, indent=2).encode()).dedupe_name == first.dedupe_name
    completed = read_delivery(json.dumps({**payload, "event": "Workflow Completed"}).encode())
    assert completed.dedupe_name != first.dedupe_name
    expired = {"event": "Connection Expired", "linked_account_id": "a", "slug": "hubspot", "createdAt": "t1"}
    one = read_delivery(json.dumps(expired).encode())
    assert one.event is WebhookEvent.CONNECTION_EXPIRED and one.app == "hubspot"
    assert read_delivery(json.dumps({**expired, "createdAt": "t2"}).encode()).dedupe_name != one.dedupe_name


@pytest.mark.parametrize(
    ("url", "found"),
    [
        (f"https://app.refold.ai/logs/executions/{EXEC_ID}", EXEC_ID),
        (f"https://app.refold.ai/logs/executions/{EXEC_ID.upper()}?tab=nodes", EXEC_ID),
        (f"https://app.gocobalt.io/logs?execution_id={EXEC_ID}", EXEC_ID),
        (f"https://eu.app.refold.ai/x?instance_id={EXEC_ID}", EXEC_ID),
        ("https://app.refold.ai/logs", None),
        (f"https://app.refold.ai.evil.example/{EXEC_ID}", None),
        (f"https://evil.example/app.refold.ai/{EXEC_ID}", None),
        (f"ftp://app.refold.ai/{EXEC_ID}", None),
        (f"https://app.refold.ai/{EXEC_ID}0", None),
        ("https://[bad", None),
    ],
)
def test_execution_links_are_recognised_on_the_unfurl_domains_only(url: str, found: str | None) -> None:
    assert execution_in_link(url, DOMAINS) == found


def test_links_built_from_the_dashboard_template_are_recognised_on_any_host() -> None:
    template = "https://console.example.com/runs/{execution_id}/detail"
    assert (
        execution_in_link(f"https://console.example.com/runs/{EXEC_ID}/detail", DOMAINS, template) == EXEC_ID
    )
    assert execution_in_link(f"https://console.example.com/runs/{EXEC_ID}x/detail", DOMAINS, template) is None
    assert execution_in_link(f"https://other.example.com/runs/{EXEC_ID}/detail", DOMAINS, template) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alerts", AlertsCommand("help")),
        ("alerts on", AlertsCommand("on")),
        (
            "alerts on all env:production workflow:Nightly  sync",
            AlertsCommand("on", "all", "production", "Nightly sync"),
        ),
        (
            'alerts ON completed Workflow:"Export contact"',
            AlertsCommand("on", "completed", None, "Export contact"),
        ),
        ("alerts off", AlertsCommand("off")),
        ("alerts list", AlertsCommand("list")),
    ],
)
def test_alert_commands_parse(text: str, expected: AlertsCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "alerts maybe",
        "alerts on sometimes",
        "alerts on env:staging",
        "alerts on workflow:",
        "alerts list all",
    ],
)
def test_bad_alert_commands_say_why(text: str) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, InvalidCommand) and parsed.reason


def route(**kwargs: object) -> AlertRoute:
    return AlertRoute(route_id="0" * 32, channel_id="C1", created_at=datetime.now(UTC), **kwargs)  # type: ignore[arg-type]


def delivery(event: str = "Workflow Errored", **fields: str) -> object:
    payload = {
        "event": event,
        "instance_id": EXEC_ID,
        "workflow_id": "w1",
        "workflow_name": "Nightly sync",
        **fields,
    }
    return read_delivery(json.dumps(payload).encode())


def test_routes_post_the_events_and_workflows_they_were_asked_for() -> None:
    assert wanted(route(), delivery())
    assert not wanted(route(), delivery("Workflow Completed"))
    assert wanted(route(events=AlertEvents.COMPLETED), delivery("Workflow Completed"))
    assert wanted(route(events=AlertEvents.ALL), delivery("Workflow Completed"))
    assert wanted(route(workflow="nightly SYNC"), delivery()) and wanted(route(workflow="w1"), delivery())
    assert not wanted(route(workflow="Export"), delivery())
    expired = read_delivery(b'{"event": "Connection Expired", "environment": "test"}')
    assert wanted(route(), expired) and not wanted(route(environment="production"), expired)
    assert not wanted(route(), read_delivery(b'{"event": "Connection Created"}'))
    assert environment_wanted(route(environment="production"), "Production")
    assert not environment_wanted(route(environment="production"), None)
    assert subscribed_events(AlertEvents.ERRORED) == ["Workflow Errored", "Connection Expired"]


STARTED = datetime(2026, 1, 1, 12, 2, tzinfo=UTC)
# An incident of 37 runs across 22 accounts, its last failure 3 minutes after its first.
FACTS = IncidentFacts(
    workflow="Nightly sync",
    node="Create contact",
    node_type="hubspot",
    error="<n> Unauthorized: token <id> expired",
    runs=37,
    accounts=22,
    first_accounts=["acme", "beta", "gamma", "delta", "eps"],
    first_seen=STARTED,
    last_seen=STARTED + timedelta(minutes=3),
    resolve_after_seconds=1800,
)


def test_an_incident_message_names_the_cause_its_reach_and_its_state() -> None:
    started, facts = STARTED, FACTS
    text = incident_message(facts, started + timedelta(minutes=4))
    assert "*Incident* in *Nightly sync* at node *Create contact* (hubspot): *ongoing*" in text
    assert (
        "*37 failed runs* across 22 linked accounts: *acme*, *beta*, *gamma*, *delta*, *eps* and 17 more"
        in text
    )
    assert (
        "First seen 2026-01-01 12:02 UTC · last seen 2026-01-01 12:05 UTC · first time this cause is seen here in 7 days"
        in text
    )
    again = dataclasses.replace(facts, earlier_episodes=2, last_episode=started - timedelta(days=1))
    assert (
        "seen here before: 2 times in the 7 days before, the last from 2025-12-31 12:02 UTC"
        in incident_message(again, started)
    )
    assert "token &lt;id&gt; expired" in text
    assert "*quiet for 12 mins*" in incident_message(facts, started + timedelta(minutes=15))
    assert "*resolved*: quiet for 30 min" in incident_message(facts, started + timedelta(minutes=33))
    healing = dataclasses.replace(facts, recovered=9)
    assert "*recovering*: 9 of 22 accounts have succeeded since" in incident_message(
        healing, started + timedelta(minutes=4)
    )


def test_an_incident_message_offers_rerun_snooze_and_resolve_and_shows_how_they_went() -> None:
    started = STARTED
    facts = dataclasses.replace(FACTS, pending_runs=37, pending_accounts=22, listed=37)
    now = started + timedelta(minutes=4)
    route, cause = "a" * 32, "b" * 16
    blocks = incident_blocks(facts, now, route, cause)
    for block in blocks:
        Block.parse(block)  # a valid Block Kit block
    rerun, snooze, resolve = blocks[-1]["elements"]
    assert rerun["text"]["text"] == "Rerun failed (37)"
    assert "*37 failed runs* across *22 linked accounts*" in rerun["confirm"]["text"]["text"]
    assert "about 4 s" in rerun["confirm"]["text"]["text"]  # 37 at 12 a second
    assert decode_incident(rerun["value"]) == (route, cause, None)
    assert [decode_incident(o["value"]) for o in snooze["options"]] == [(route, cause, h) for h in (1, 4, 24)]
    assert resolve["action_id"] == "incident_resolve"
    # A tampered value is refused.
    assert decode_incident(json.dumps({"r": "x" * 32, "c": cause})) is None
    assert decode_incident(json.dumps({"r": route, "c": cause, "h": 5})) is None
    # Rerunning: progress, then the outcomes.
    rerun_facts = RerunFacts(
        by="U1",
        at=now,
        asked=37,
        started=18,
        unconfirmed=0,
        failed=0,
        statuses={"QUEUED": 18},
        per_second=12.0,
    )
    going = dataclasses.replace(facts, rerun=rerun_facts, pending_runs=19)
    assert "Rerun by <@U1> at 2026-01-01 12:06 UTC: 18 of 37 started (about 2 s more" in incident_message(
        going, now
    )
    ended = dataclasses.replace(
        going,
        rerun=dataclasses.replace(
            rerun_facts, started=37, statuses={"COMPLETED": 30, "ERRORED": 5, "RUNNING": 2}
        ),
        pending_runs=0,
        recovered=20,
    )
    text = incident_message(ended, now)
    assert "37 runs rerun: 30 completed, 5 errored, 2 running" in text
    assert "*recovering*: 20 of 22 accounts have succeeded since" in text
    assert "Rerun failed" not in json.dumps(incident_blocks(ended, now, route, cause))
    # Snoozed: says by whom, until when and how many were held back, and offers to end it.
    snoozed = dataclasses.replace(facts, snoozed_until=now + timedelta(hours=1), snoozed_by="U2", held=6)
    assert ":zzz: Snoozed by <@U2> until 2026-01-01 13:06 UTC: 6 failures held back" in incident_message(
        snoozed, now
    )
    assert "End snooze" in json.dumps(incident_blocks(snoozed, now, route, cause))
    # Resolved by a person, then reopened.
    resolved = dataclasses.replace(facts, state="resolved", resolved_by="U3", resolved_at=now)
    assert "*resolved* by <@U3> at 2026-01-01 12:06 UTC" in incident_message(resolved, now)
    assert "incident_resolve" not in json.dumps(incident_blocks(resolved, now, route, cause))
    reopened = dataclasses.replace(facts, reopened_at=now)
    assert "*ongoing* (reopened at 2026-01-01 12:06 UTC)" in incident_message(reopened, now)


def test_a_thread_batch_lists_its_runs_each_with_a_button_to_its_card() -> None:
    at = datetime(2026, 1, 1, 12, 2, tzinfo=UTC)
    rows = [RunRow(f"{index:024x}", f"customer-{index}", at) for index in range(20)]
    blocks = batch_blocks(rows, 20)
    for block in blocks:
        Block.parse(block)
    assert blocks[0]["elements"][0]["text"] == "*Failed runs 21–40*" and len(blocks) == 21
    button = blocks[1]["accessory"]
    assert button["action_id"] == "show_run_card"
    assert decode_target(button["value"]) == FoundExecution(f"{0:024x}", "customer-0")
    assert all(row.execution_id in batch_text(rows, 20) for row in rows)


def test_the_app_home_stays_within_block_kit_limits_whatever_the_counts() -> None:
    now = datetime.now(UTC)
    long = "x" * 5000
    facts = HomeFacts(
        connection=None,
        connection_problem="Refold is not connected in this workspace.",
        recent=[
            RecentView(f"{i:024x}", long, "ERRORED", "U1", now - timedelta(minutes=i)) for i in range(500)
        ],
        follows=[FollowLine(f"{i:024x}", long, "RUNNING", "U1", "C1", now.timestamp()) for i in range(500)],
        routes=[(f"{i:032x}", RouteView(f"C{i}", "all", "production", long, True, "U1")) for i in range(500)],
        is_admin=True,
    )
    view = home_view(facts, now)
    assert len(view["blocks"]) <= 100
    for block in view["blocks"]:
        Block.parse(block).validate_json()
    assert "and 480 more channels" in json.dumps(view)


def test_an_unfurl_is_a_compact_valid_card() -> None:
    execution = Execution.model_validate({"_id": EXEC_ID, **errored_doc()})
    unfurl = render_unfurl(execution, dashboard_url="https://console.example.com/runs/{execution_id}")
    assert len(unfurl["blocks"]) == 3
    for block in unfurl["blocks"]:
        Block.parse(block).validate_json()
    text = json.dumps(unfurl)
    assert (
        "HubSpot token expired" in text
        and f"https://console.example.com/runs/{EXEC_ID}|Open in Refold" in text
    )


async def test_a_failure_is_told_apart_as_first_or_repeat_from_the_routes_own_history(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    history = AlertHistory(client)
    day = 86400.0

    async def failed(execution: str, now: float) -> Repeat:
        got = await history.record("r", "Nightly sync", "acme", "failed", execution, now=now)
        return repeat_of(got, now)

    try:
        first = await failed("e1", 10 * day)
        assert (first.failures_in_window, first.in_a_row) == (1, 1)
        second = await failed("e2", 10 * day + 60)
        assert (second.failures_in_window, second.in_a_row, second.failing_since) == (2, 2, 10 * day)
        # The same delivery again (its job run twice) counts once.
        assert (await failed("e2", 10 * day + 61)).in_a_row == 2
        await history.record("r", "Nightly sync", "acme", "completed", "e3", now=10 * day + 120)
        after = await failed("e4", 10 * day + 180)
        assert (after.in_a_row, after.last_success, after.failures_in_window) == (1, 10 * day + 120, 3)
        # Another account, another workflow: apart.
        other = await history.record("r", "Nightly sync", "beta", "failed", "e5", now=10 * day)
        assert repeat_of(other, 10 * day).failures_in_window == 1
        # Eight days later the window has moved on; the history keeps at most 50 entries.
        late = await failed("e6", 18.5 * day)
        assert late.failures_in_window == 1
        for n in range(60):
            await failed(f"m{n}", 19 * day + n)
        kept = await history.record("r", "Nightly sync", "acme", "failed", "m59", now=19 * day + 59)
        assert len(kept) == KEEP
    finally:
        await client.aclose()


def test_first_failure_and_repeats_are_worded_for_what_the_route_can_see() -> None:
    at = datetime(2026, 1, 1, 12, 2, tzinfo=UTC)
    facts = RepeatFacts("Nightly sync", "acme", 1, 1, at, None, sees_successes=True)
    assert repeat_line(facts) == "first failure of *Nightly sync* for *acme* in 7 days"
    streak = dataclasses.replace(facts, failures_in_window=5, in_a_row=5)
    assert repeat_line(streak) == "failing since 2026-01-01 12:02 UTC for *acme*: 5th in a row"
    assert "12th in a row" in repeat_line(dataclasses.replace(streak, in_a_row=12))
    after = dataclasses.replace(facts, failures_in_window=3, in_a_row=1, last_success=at)
    assert repeat_line(after) == (
        "first failure of *Nightly sync* for *acme* since its success at 2026-01-01 12:02 UTC (3 failures in 7 days)"
    )
    # A route that gets no Workflow Completed cannot know "in a row".
    blind = dataclasses.replace(streak, sees_successes=False)
    assert (
        repeat_line(blind)
        == "5th failure of *Nightly sync* for *acme* in 7 days (the first at 2026-01-01 12:02 UTC)"
    )
