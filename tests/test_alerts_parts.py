"""The parts behind alerts, unfurls and the App Home: storm decisions on a real Redis, signatures,
payloads, links, filters and the pure renderings within Slack's limits."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from slack_sdk.models.blocks import Block

from bot.parse import AlertsCommand, InvalidCommand, parse_command
from bot.refold.links import execution_in_link
from bot.refold.models import Execution
from bot.refold.webhooks import UnreadableDelivery, WebhookEvent, read_delivery, signature_valid
from bot.render.alerts import RouteView, storm_summary
from bot.render.follow import FollowLine
from bot.render.home import HomeFacts, RecentView, home_view
from bot.render.unfurl import render_unfurl
from bot.store.alert_routes import AlertEvents, AlertRoute
from bot.store.storm import StormStore
from bot.usecases.alerts import environment_wanted, subscribed_events, wanted
from tests.fakes.refold import errored_doc
from tests.harness import EXEC_ID

DOMAINS = ["app.refold.ai", "app.gocobalt.io"]


async def test_a_quiet_route_gets_a_card_then_a_storm_gets_one_summary_a_window(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    storm = StormStore(client)
    try:
        arrive = storm.arrive
        assert (await arrive("r", "a1", "errored\x1fX", now=1000, window=60)).role == "card"
        second = await arrive("r", "a2", "errored\x1fX", now=1010, window=60)
        assert (second.role, second.summary, second.summary_ts) == ("create", "1", "")
        waiting = await arrive("r", "a3", "errored\x1fY", now=1011, window=60)
        assert (waiting.role, waiting.summary, waiting.summary_ts) == ("join", "1", "")
        await storm.summary_posted("r", "1", "111.1")
        assert (await arrive("r", "a4", "errored\x1fX", now=1050, window=60)).summary_ts == "111.1"
        # Run again (its worker died): the same decision, counted once.
        again = await arrive("r", "a2", "errored\x1fX", now=1055, window=60)
        assert (again.role, again.summary, again.summary_ts) == ("create", "1", "111.1")
        assert await storm.counts("r", "1") == {"errored\x1fX": 2, "errored\x1fY": 1}
        # Still storming a window after the summary began: the next window gets its own summary.
        assert (await arrive("r", "a5", "errored\x1fX", now=1071, window=60)).role == "create"
        assert await storm.summary("r", "1") == ("111.1", 1010.0)
        # Quiet for longer than a window: a card again.
        assert (await arrive("r", "a6", "errored\x1fX", now=1200, window=60)).role == "card"
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


def test_a_storm_summary_counts_by_workflow_busiest_first() -> None:
    text = storm_summary(
        {"errored\x1fExport contact": 3, "errored\x1fNightly sync": 14},
        datetime(2026, 1, 1, 10, 2, tzinfo=UTC),
    )
    assert "*17* executions errored: *14* in *Nightly sync*, *3* in *Export contact*" in text
    assert "since 2026-01-01 10:02 UTC" in text
    many = storm_summary({f"errored\x1fWorkflow {i}": 1 for i in range(40)}, datetime.now(UTC))
    assert "and 25 more workflows" in many and len(many) <= 3000


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
