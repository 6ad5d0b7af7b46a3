"""Refold alerts as live cards: routes made with `/execution alerts`, signed webhook deliveries posted
as cards (followed while their run goes on), redeliveries posted once, storms gathered in a thread.

Real processes: the bot's web server (and, for the storm, a `python -m bot worker`), a real Redis, the
loopback Slack and Refold. Deliveries are signed as Refold signs them: hex HMAC-SHA256 of the raw body
keyed with the workspace's API key.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.fakes.refold import FakeRefold, errored_doc, running_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, EXEC_ID, BotServer, connect, wait_for_live_worker
from tests.test_e2e_worker import Workers

CHANNEL = "C1"  # the channel the harness's slash commands come from


def workflow_event(
    instance_id: str, event: str = "Workflow Errored", name: str = "Export contact to HubSpot"
) -> dict[str, Any]:
    """The documented workflow event payload (refold-api/webhooks.mdx)."""
    return {
        "linked_account_id": "acme",
        "instance_id": instance_id,
        "workflow_id": "6495792b9b6ca6d77a17e513",
        "config_id": "12345",
        "event": event,
        "workflow_name": name,
        "status": "ERRORED" if event == "Workflow Errored" else "COMPLETED",
    }


def new_id() -> str:
    return uuid.uuid4().hex[:24]


def alerts_command(bot: BotServer, slack: FakeSlack, text: str, key: str, user: str = "U1") -> str:
    assert bot.command(f"alerts {text}".strip(), slack.response_url(key), user=user).status_code == 200
    (reply,) = slack.wait_responses(key)
    return str(reply["text"])


def turn_on(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str, filters: str = ""
) -> str:
    """Connect the workspace, make U1 an admin, run `/execution alerts on`; the new route's ID."""
    refold.api_keys.add(API_KEY)
    connect(redis_url, bot_key)
    slack.admins.add("U1")
    text = alerts_command(bot, slack, f"on {filters}", "alerts-on")
    # Shown to paste into Refold when the bot could not subscribe it itself; else in the subscription.
    shown = re.search(r"/refold/webhooks/([0-9a-f]{32})", text)
    subscribed = [
        re.search(r"/refold/webhooks/([0-9a-f]{32})$", w["webhook_url"]) for w in refold.webhooks.values()
    ]
    found = shown or (subscribed[0] if subscribed else None)
    assert found, text
    return found.group(1)


def channel_posts(slack: FakeSlack, *, top_level: bool | None = None) -> list[dict[str, Any]]:
    posts = [c.args for c in slack.calls_to("chat.postMessage") if c.args.get("channel") == CHANNEL]
    if top_level is None:
        return posts
    return [p for p in posts if bool(p.get("thread_ts")) != top_level]


def cards(slack: FakeSlack) -> list[dict[str, Any]]:
    """Channel posts that are execution cards (they carry blocks), not announcements or summaries."""
    return [p for p in channel_posts(slack) if p.get("blocks")]


def test_alerts_on_creates_the_channels_route_announces_it_and_lists_it(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key, "all env:production workflow:Nightly sync")
    reply = slack.responses_to("alerts-on")[0]["text"]
    assert "errored and completed runs" in reply and "*production*" in reply and "Nightly sync" in reply
    # No PUBLIC_URL here: the reply says where to paste the webhook, and the events to pick.
    assert "Developer > Webhooks" in reply and "Workflow Errored" in reply
    (announcement,) = channel_posts(slack)
    assert "<@U1> turned on Refold alerts" in announcement["text"]
    listed = alerts_command(bot, slack, "list", "alerts-list")
    assert f"<#{CHANNEL}>" in listed and "Nightly sync" in listed and "webhook added by hand" in listed
    # Again in the same channel: the same route, new filters.
    again = alerts_command(bot, slack, "on errored", "alerts-again")
    assert route in again and "errored runs · every environment · every workflow" in again
    assert alerts_command(bot, slack, "list", "alerts-list-2").count(f"<#{CHANNEL}>") == 1
    assert refold.count("webhook") == 0  # nothing to register without a public URL
    # An operator sees the same in a terminal, with the path to give Refold.
    printed = run_cli("alerts", "--team", "T1", env={"REDIS_URL": redis_url, "CREDENTIALS_KEY": bot_key})
    assert printed.returncode == 0
    assert printed.stdout.startswith(
        f"{CHANNEL}  errored runs · every environment · every workflow  added by hand"
    )
    assert f"<PUBLIC_URL>/refold/webhooks/{route}" in printed.stdout


def test_only_admins_manage_alert_routes(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    connect(redis_url, bot_key)
    for verb in ("on", "off", "list"):
        text = alerts_command(bot, slack, verb, f"not-admin-{verb}", user="U2")
        assert "Only workspace admins and owners" in text
    assert channel_posts(slack) == []
    printed = run_cli("alerts", "--team", "T1", env={"REDIS_URL": redis_url, "CREDENTIALS_KEY": bot_key})
    assert (printed.returncode, printed.stdout) == (0, "no alert routes for T1\n")


def test_bad_alert_commands_say_what_to_type(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    slack.admins.add("U1")
    bogus = bot.command("alerts on env:staging", slack.response_url("bogus"))
    assert "`env:` takes `production` or `test`" in bogus.json()["text"]
    usage = alerts_command(bot, slack, "", "usage")
    assert "/execution alerts on [errored|completed|all]" in usage
    off = alerts_command(bot, slack, "off", "nothing-to-turn-off")
    assert "nothing to turn off" in off
    assert refold.count("get") == 0


def test_a_signed_errored_webhook_becomes_a_channel_card_showing_the_failing_nodes_output(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    response = bot.webhook(route, workflow_event(EXEC_ID))
    assert response.status_code == 200 and response.json()["result"] == "accepted"
    (card,) = slack.wait_for(lambda s: cards(s))
    blocks = json.dumps(card["blocks"])
    assert "thread_ts" not in card or not card["thread_ts"]
    assert "Refold alert: *Workflow Errored*" in blocks and "linked account *acme*" in blocks
    assert "Create contact" in blocks and "HubSpot token expired" in blocks
    # The card is live: Rerun for an errored run, and the node's output one click away.
    actions = [e["action_id"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "rerun_execution" in actions and "show_node_output" in blocks


def test_an_alerted_run_that_is_still_going_is_followed_to_its_end(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key, "completed")
    progression = [
        running_doc(name="Nightly sync", done=1, total=3),
        running_doc(name="Nightly sync", done=2, total=3),
    ]
    progression.append({**running_doc(name="Nightly sync", done=3, total=3), "status": "COMPLETED"})
    refold.add_execution(EXEC_ID, progression[0], linked_account_id="acme", progression=progression)
    assert (
        bot.webhook(route, workflow_event(EXEC_ID, "Workflow Completed", "Nightly sync")).status_code == 200
    )
    (card,) = slack.wait_for(lambda s: cards(s))
    assert "RUNNING" in card["text"]
    finished = slack.wait_for(
        lambda s: [c.args for c in s.calls_to("chat.postMessage") if "finished" in str(c.args.get("text"))],
        timeout=30,
    )
    final = [c.args for c in slack.calls_to("chat.update") if "COMPLETED" in str(c.args.get("text"))]
    assert final, "the card was not updated to its final state"
    assert final[-1]["channel"] == CHANNEL
    # The completion note went in the card's thread, once.
    assert len(finished) == 1 and finished[0]["thread_ts"] and "*COMPLETED*" in finished[0]["text"]


def test_bad_signature_unknown_route_and_oversized_body_are_refused_and_nothing_is_posted(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    marker = "marker-" + uuid.uuid4().hex
    payload = {**workflow_event(EXEC_ID), "workflow_name": marker}
    assert bot.webhook(route, payload, key="tk_wrong_key").status_code == 401
    assert bot.webhook(route, payload, key=None).status_code == 401
    assert bot.webhook("0" * 32, payload).status_code == 404
    assert bot.webhook("not-a-route", payload).status_code == 404
    oversized = json.dumps({**payload, "padding": "x" * 70_000}).encode()
    assert bot.webhook(route, oversized).status_code == 413
    assert bot.webhook(route, b"not json").status_code == 400
    time.sleep(0.5)
    assert cards(slack) == [] and refold.count("get") == 0
    logs = bot.logs()
    assert "invalid or missing x-cobalt-signature" in logs and "unknown route" in logs
    assert marker not in logs  # an unverified body is never logged


def test_a_delivery_refold_retries_three_times_is_posted_once(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    answers = [bot.webhook(route, workflow_event(EXEC_ID)).json()["result"] for _ in range(4)]
    assert answers == ["accepted", "already received", "already received", "already received"]
    slack.wait_for(lambda s: cards(s))
    time.sleep(1.0)
    assert len(cards(slack)) == 1


def test_filters_decide_which_events_are_posted(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(
        bot, slack, refold, redis_url, bot_key, "errored env:production workflow:Export contact to HubSpot"
    )
    wanted, other_env, other_workflow, completed = new_id(), new_id(), new_id(), new_id()
    refold.add_execution(wanted, errored_doc(), linked_account_id="acme")  # production
    refold.add_execution(other_env, {**errored_doc(), "environment": "test"}, linked_account_id="acme")
    refold.add_execution(other_workflow, errored_doc(name="Nightly sync"), linked_account_id="acme")
    refold.add_execution(completed, errored_doc(), linked_account_id="acme")
    assert (
        bot.webhook(route, workflow_event(other_workflow, name="Nightly sync")).json()["result"] != "accepted"
    )
    assert bot.webhook(route, workflow_event(completed, "Workflow Completed")).json()["result"] != "accepted"
    assert bot.webhook(route, workflow_event(other_env)).json()["result"] == "accepted"
    assert bot.webhook(route, workflow_event(wanted)).json()["result"] == "accepted"
    (card,) = slack.wait_for(lambda s: cards(s))
    time.sleep(1.0)
    assert [c["text"] for c in cards(slack)] == [card["text"]] and wanted in json.dumps(card["blocks"])


def test_an_expired_connection_posts_a_notice_naming_the_account_and_app(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    event = {
        "linked_account_id": "acme-42",
        "org_id": "645270e37917442c4307297a",
        "environment": "production",
        "type": "General",
        "event": "Connection Expired",
        "slug": "hubspot",
        "createdAt": "Tue, 07 Nov 2023 08:03:27 GMT",
    }
    assert bot.webhook(route, event).json()["result"] == "accepted"
    assert bot.webhook(route, event).json()["result"] == "already received"
    created = {**event, "event": "Connection Created"}
    assert bot.webhook(route, created).json()["result"] == "not an event this route posts"
    notice = slack.wait_for(lambda s: [p for p in channel_posts(s) if "connection expired" in p["text"]])
    time.sleep(0.5)
    assert len(notice) == 1 and "*hubspot*" in notice[0]["text"] and "*acme-42*" in notice[0]["text"]


def test_alerts_for_a_channel_the_bot_is_not_in_tell_the_routes_creator_once(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    slack.not_member.add(CHANNEL)
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    assert "invite me with `/invite @refold-executions`" in slack.responses_to("alerts-on")[0]["text"]
    first, second = new_id(), new_id()
    for execution_id in (first, second):
        refold.add_execution(execution_id, errored_doc(), linked_account_id="acme")
        assert bot.webhook(route, workflow_event(execution_id)).json()["result"] == "accepted"
    told = slack.wait_for(
        lambda s: [c.args for c in s.calls_to("chat.postMessage") if c.args.get("channel") == "D1"]
    )
    time.sleep(1.0)
    assert len([c for c in slack.calls_to("chat.postMessage") if c.args.get("channel") == "D1"]) == 1
    assert "I am not a member" in told[0]["text"] and f"<#{CHANNEL}>" in told[0]["text"]


def test_a_storm_of_50_errored_runs_makes_at_most_two_channel_messages_with_every_run_in_the_thread(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    workers = Workers(bot, tmp_path)
    workers.start()
    try:
        wait_for_live_worker(redis_url)
        names = ["Nightly sync", "Export contact", "Import deals"]
        ids = [new_id() for _ in range(50)]
        for index, execution_id in enumerate(ids):
            doc = errored_doc(name=names[index % 3])
            refold.add_execution(execution_id, doc, linked_account_id="acme")
        started = time.monotonic()
        for index, execution_id in enumerate(ids):
            assert bot.webhook(route, workflow_event(execution_id, name=names[index % 3])).status_code == 200
        slack.wait_for(lambda s: len(cards(s)) == 50, timeout=45)
        elapsed = time.monotonic() - started
        # The summary ends up counting every run it stands for, by workflow.
        summary = slack.wait_for(
            lambda s: [
                c.args
                for c in s.calls_to("chat.update")
                if "*49* executions errored" in str(c.args.get("text"))
            ],
            timeout=15,
        )
    finally:
        workers.stop_all()
    assert elapsed < 60, "the storm took longer than the minute it is about"
    top = [p for p in channel_posts(slack, top_level=True) if "turned on Refold alerts" not in p["text"]]
    assert len(top) <= 2, [p["text"][:80] for p in top]
    summary_ts = summary[-1]["ts"]
    threaded = channel_posts(slack, top_level=False)
    assert threaded and all(p["thread_ts"] == summary_ts for p in threaded)
    seen = json.dumps([p.get("blocks") for p in cards(slack)])
    assert all(execution_id in seen for execution_id in ids)
    text = summary[-1]["text"]
    assert all(f"in *{name}*" in text for name in names)


def test_with_a_public_url_turning_alerts_on_subscribes_the_webhook_in_refold_and_off_deletes_it(
    _bot_server: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    public = "https://bot.example.com"
    bot = BotServer({**_bot_server.env, "PUBLIC_URL": public + "/", "PORT": ""}, tmp_path / "bot.log")
    bot.env["PORT"] = str(bot.port)
    bot.start()
    try:
        route = turn_on(bot, slack, refold, redis_url, bot_key)
        assert "subscribed in Refold: nothing else to do" in slack.responses_to("alerts-on")[0]["text"]
        (subscription,) = refold.webhooks.values()
        assert subscription["webhook_url"] == f"{public}/refold/webhooks/{route}"
        assert subscription["webhook_events"] == ["Workflow Errored", "Connection Expired"]
        # Changing the filters changes the same subscription's events.
        alerts_command(bot, slack, "on all", "alerts-all")
        (changed,) = refold.webhooks.values()
        assert changed["_id"] == subscription["_id"]
        assert changed["webhook_events"] == ["Workflow Errored", "Workflow Completed", "Connection Expired"]
        assert "subscribed in Refold" in alerts_command(bot, slack, "list", "alerts-list")
        off = alerts_command(bot, slack, "off", "alerts-off")
        assert "Refold alerts are off" in off and refold.webhooks == {}
        # The route is gone: Refold's late deliveries find nothing.
        assert bot.webhook(route, workflow_event(EXEC_ID)).status_code == 404
    finally:
        bot.stop()
