"""Link unfurls and the App Home, through the real bot process, with events signed as Slack signs them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from slack_sdk.models.blocks import Block

from bot.store.recent import RecentLookup, RecentLookups
from tests.fakes.refold import FakeRefold, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, EXEC_ID, BotServer, connect


def link_shared(*urls: str, ts: str = "1700000000.000200") -> dict[str, Any]:
    return {
        "type": "link_shared",
        "channel": "C1",
        "is_bot_user_member": True,
        "user": "U1",
        "message_ts": ts,
        "unfurl_id": "C1-" + ts,
        "source": "conversations_history",
        "links": [{"domain": url.split("/")[2], "url": url} for url in urls],
        "event_ts": ts,
    }


def prepare(refold: FakeRefold, redis_url: str, bot_key: str) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)


def test_a_refold_link_unfurls_into_a_compact_card_and_a_redelivered_event_is_answered_once(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key)
    # A run of this test's own: another test's lookup of EXEC_ID may still be caching its result
    # (caching runs after the answer), and this test counts Refold calls.
    execution_id = "65410cf6cdf931a12d7ab0aa"
    refold.add_execution(execution_id, errored_doc(), linked_account_id="acme")
    link = f"https://app.refold.ai/logs/executions/{execution_id}"
    other = "https://example.com/logs/" + execution_id
    assert bot.event(link_shared(link, other), event_id="Ev1").status_code == 200
    (call,) = slack.wait_for(lambda s: s.calls_to("chat.unfurl"))
    unfurls = call.args["unfurls"]
    unfurls = json.loads(unfurls) if isinstance(unfurls, str) else unfurls
    assert list(unfurls) == [link]  # the link on another domain is left alone
    blocks = unfurls[link]["blocks"]
    text = json.dumps(blocks)
    assert "Export contact to HubSpot" in text and "ERRORED" in text and "Create contact" in text
    assert len(blocks) <= 3
    for block in blocks:
        Block.parse(block).validate_json()
    assert call.args["channel"] == "C1" and call.args["ts"] == "1700000000.000200"
    # Slack redelivers the same event (it thought the first was lost): acked, not unfurled again.
    for retry in (1, 2):
        assert bot.event(link_shared(link, other), event_id="Ev1", retry_num=retry).status_code == 200
    assert (
        bot.event({**link_shared(link), "message_ts": "1700000000.000300"}, event_id="Ev2").status_code == 200
    )
    slack.wait_for(lambda s: len(s.calls_to("chat.unfurl")) == 2)
    assert refold.count("get") == 1  # the second link's card came from the cache


def test_links_without_an_execution_or_on_other_domains_cost_no_refold_call(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key)
    urls = ["https://app.refold.ai/logs", "https://evil.example/app.refold.ai/" + EXEC_ID]
    assert bot.event(link_shared(*urls), event_id="Ev3").status_code == 200
    query = f"https://app.gocobalt.io/logs?execution_id={EXEC_ID.upper()}"
    assert bot.event(link_shared(query), event_id="Ev4").status_code == 200
    (call,) = slack.wait_for(lambda s: s.calls_to("chat.unfurl"))
    unfurls = call.args["unfurls"]
    assert list(json.loads(unfurls) if isinstance(unfurls, str) else unfurls) == [query]
    assert refold.count("get") == 1


def record_lookups(redis_url: str, count: int) -> None:
    async def write() -> None:
        client = aioredis.from_url(redis_url)
        store = RecentLookups(client)
        for index in range(count):
            entry = RecentLookup(
                execution_id=f"{index:024x}",
                name=f"Run {index}",
                status="ERRORED",
                user_id="U1",
                at=datetime.now(UTC),
            )
            await store.add("T1", entry)
        await client.aclose()

    asyncio.run(write())


def open_home(bot: BotServer, slack: FakeSlack, user: str, event_id: str) -> dict[str, Any]:
    before = len(slack.calls_to("views.publish"))
    event = {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home", "event_ts": "1.1"}
    assert bot.event(event, event_id=event_id).status_code == 200
    call = slack.wait_for(
        lambda s: len(s.calls_to("views.publish")) > before and s.calls_to("views.publish")[-1]
    )
    assert call.args["user_id"] == user
    view = call.args["view"]
    return json.loads(view) if isinstance(view, str) else view


def actions_in(view: dict[str, Any]) -> list[str]:
    found = []
    for block in view["blocks"]:
        elements = block.get("elements", []) if block["type"] == "actions" else [block.get("accessory") or {}]
        found += [e["action_id"] for e in elements if e.get("action_id")]
    return found


def test_the_app_home_shows_the_workspace_and_admin_controls_only_to_admins(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key)
    slack.admins.add("U1")
    # A route to show: made the way an admin makes one.
    assert bot.command("alerts on errored", slack.response_url("on")).status_code == 200
    slack.wait_responses("on")
    empty = open_home(bot, slack, "U1", "EvH1")
    text = json.dumps(empty, ensure_ascii=False)
    assert "tk…9f2c" in text and API_KEY not in text  # the key, masked
    assert "No lookups yet" in text and "No runs are being followed" in text
    assert "<#C1>" in text and "errored runs" in text
    assert actions_in(empty) == ["home_connect", "home_route_off"]
    member = open_home(bot, slack, "U2", "EvH2")
    assert actions_in(member) == [] and "<#C1>" in json.dumps(member)
    # With 500 lookups on record: the newest 10, and the view within Block Kit's limits.
    record_lookups(redis_url, 500)
    full = open_home(bot, slack, "U1", "EvH3")
    assert len(full["blocks"]) <= 100
    shown = json.dumps(full)
    assert f"{499:024x}" in shown and f"{489:024x}" not in shown and shown.count("Run 4") == 10
    for block in full["blocks"]:
        Block.parse(block).validate_json()
    # Turning a route off from the Home: it goes, and the Home shows it gone.
    route_id = next(
        b["accessory"]["value"]
        for b in full["blocks"]
        if (b.get("accessory") or {}).get("action_id") == "home_route_off"
    )
    press = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "U1", "team_id": "T1"},
        "api_app_id": "A1",
        "trigger_id": "t.home",
        "container": {"type": "view", "view_id": "V1"},
        "view": {"id": "V1", "type": "home"},
        "actions": [{"action_id": "home_route_off", "block_id": "b", "value": route_id, "action_ts": "2.2"}],
    }
    before = len(slack.calls_to("views.publish"))
    assert bot.interaction(press).status_code == 200
    after = slack.wait_for(
        lambda s: len(s.calls_to("views.publish")) > before and s.calls_to("views.publish")[-1]
    )
    view = after.args["view"]
    assert "No channel gets Refold alerts" in json.dumps(view)


def test_any_redelivered_event_is_acked_and_acted_on_once(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key)
    home = {"type": "app_home_opened", "user": "U2", "channel": "D1", "tab": "home", "event_ts": "1.1"}
    before = len(slack.calls_to("views.publish"))
    open_home(bot, slack, "U2", "EvRedelivered")
    for retry in (1, 2, 3):
        assert bot.event(home, event_id="EvRedelivered", retry_num=retry).status_code == 200
    # A new event after the redeliveries: once its view is published, the redeliveries had their chance.
    open_home(bot, slack, "U2", "EvNext")
    assert len(slack.calls_to("views.publish")) == before + 2
    assert "already received; this redelivery is acked only" in bot.logs()
