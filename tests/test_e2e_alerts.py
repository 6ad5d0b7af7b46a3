"""Refold alerts as live cards: routes made with `/execution alerts`, signed webhook deliveries posted
as cards (followed while their run goes on), redeliveries posted once, failures of one cause gathered
into one incident message with its runs in the thread.

Real processes: the bot's web server (and, for the storm, a `python -m bot worker`, with the Slack fake enforcing Slack's limits), a real Redis, the
loopback Slack and Refold. Deliveries are signed as Refold signs them: hex HMAC-SHA256 of the raw body
keyed with the workspace's API key.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
import redis.asyncio as aioredis

from bot.store.audit import AuditEntry, AuditLog
from tests.conftest import run_cli
from tests.fakes.refold import FakeRefold, Fault, errored_doc, running_doc
from tests.fakes.slack import FakeSlack, Message
from tests.harness import (
    API_KEY,
    EXEC_ID,
    BotServer,
    block_actions,
    connect,
    hold_slack_budget,
    max_in_window,
    release_slack_budget,
    wait_for_live_worker,
    wait_until_quiet,
)
from tests.test_e2e_unfurl_home import open_home
from tests.test_e2e_worker import Workers

CHANNEL = "C1"  # the channel the harness's slash commands come from


def workflow_event(
    instance_id: str,
    event: str = "Workflow Errored",
    name: str = "Export contact to HubSpot",
    *,
    account: str = "acme",
    workflow_id: str = "6495792b9b6ca6d77a17e513",
) -> dict[str, Any]:
    """The documented workflow event payload (refold-api/webhooks.mdx)."""
    return {
        "linked_account_id": account,
        "instance_id": instance_id,
        "workflow_id": workflow_id,
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
    # A refused delivery starts no work, so no event can mark that none was started: a short settle
    # gives one wrongly started the moment it would take to fetch the run and post.
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
    # The redeliveries were answered "already received" and started no job, so no event can mark
    # that none posts: a short settle gives one wrongly started time to show.
    time.sleep(1.0)
    assert len(cards(slack)) == 1


def test_filters_decide_which_events_are_posted(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(
        bot, slack, refold, redis_url, bot_key, "errored env:production workflow:Export contact to HubSpot"
    )
    not_posted = "alert for another environment than the route's; not posted"
    before = bot.logs().count(not_posted)
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
    # The other environment's delivery is filtered once its run is fetched; the job says so, last.
    slack.wait_for(lambda s: bot.logs().count(not_posted) > before)
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
    # The second delivery and the Connection Created one started no job, so no event can mark that
    # none posts: a short settle gives one wrongly started time to show.
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
    # The web process runs these alerts itself (no worker), outside the job queue, and the one that
    # rightly stays silent logs nothing after deciding so: no event marks its end, so a short settle.
    time.sleep(1.0)
    assert len([c for c in slack.calls_to("chat.postMessage") if c.args.get("channel") == "D1"]) == 1
    assert "I am not a member" in told[0]["text"] and f"<#{CHANNEL}>" in told[0]["text"]


def failing_with(error: dict[str, Any], account: str, node: str = "Create contact") -> dict[str, Any]:
    doc = errored_doc(linked_account_id=account)
    doc["nodes"][1]["latest_output"] = error
    doc["nodes"][1]["node_name"] = node
    return doc


def every_message_text(slack: FakeSlack) -> str:
    """What a person can reach in the channel: every message and every thread reply, as they show now."""
    shown = []
    for message in slack.channel_messages(CHANNEL):
        for one in [message, *message.replies]:
            shown.append(json.dumps([one.text, one.blocks]))
    return "\n".join(shown)


def incident_messages(slack: FakeSlack) -> list[Message]:
    """The channel's incident messages once they count 40 and 10 runs."""
    counted = ("*40 failed runs*", "*10 failed runs*")
    return [m for m in slack.channel_messages(CHANNEL) if any(c in str(m.text) for c in counted)]


@pytest.mark.timeout(300)
def test_a_storm_of_two_causes_and_five_singletons_makes_seven_channel_messages_with_every_run_reachable(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    slack.enforce_limits()
    workers = Workers(bot, tmp_path)
    workers.start()
    try:
        wait_for_live_worker(redis_url)
        deliveries: list[dict[str, Any]] = []
        token_ids: list[str] = []
        for index in range(40):  # one expired token, 15 customers, each error with its own numbers
            execution_id, account = new_id(), f"customer-{index % 15}"
            error = {"error": f"401 Unauthorized: token {uuid.uuid4().hex} expired at portal {1000 + index}"}
            refold.add_execution(execution_id, failing_with(error, account), linked_account_id=account)
            deliveries.append(workflow_event(execution_id, name="Nightly sync", account=account))
            token_ids.append(execution_id)
        partner_ids: list[str] = []
        for index in range(10):  # the partner's API down, at another node
            execution_id, account = new_id(), f"customer-{index % 4}"
            error = {"message": f"503 Service Unavailable (request {uuid.uuid4()})"}
            doc = failing_with(error, account, node="Push invoice")
            refold.add_execution(execution_id, doc, linked_account_id=account)
            deliveries.append(workflow_event(execution_id, name="Nightly sync", account=account))
            partner_ids.append(execution_id)
        single_ids: list[str] = []
        for index in range(5):  # five unrelated failures, each once
            execution_id = new_id()
            doc = failing_with({"error": f"Field number {index} is missing"}, "acme", node=f"Step {index}")
            refold.add_execution(execution_id, doc, linked_account_id="acme")
            deliveries.append(
                workflow_event(execution_id, name=f"Workflow {index}", workflow_id=f"wf{index}")
            )
            single_ids.append(execution_id)
        for delivery in deliveries:
            assert bot.webhook(route, delivery).json()["result"] == "accepted"
        everything = token_ids + partner_ids + single_ids
        slack.wait_for(lambda s: all(i in every_message_text(s) for i in everything), timeout=180)
        # The incidents' messages catch up with their counts (edited at most once every 10 s).
        incidents = slack.wait_for(
            lambda s: incident_messages(s) if len(incident_messages(s)) == 2 else None, timeout=60
        )
    finally:
        workers.stop_all()
    top = [m for m in slack.channel_messages(CHANNEL) if "turned on Refold alerts" not in str(m.text)]
    assert len(top) == 7, [str(m.text)[:80] for m in top]
    by_count = {("40" if "*40 failed runs*" in str(m.text) else "10"): m for m in incidents}
    token, partner = by_count["40"], by_count["10"]
    assert "across 15 linked accounts" in str(token.text) and "at node *Create contact*" in str(token.text)
    assert "across 4 linked accounts" in str(partner.text) and "at node *Push invoice*" in str(partner.text)
    # Each run is in its incident's thread; the singletons are cards of their own.
    token_thread = json.dumps([[r.text, r.blocks] for r in token.replies])
    assert all(i in token_thread for i in token_ids) and not any(i in token_thread for i in partner_ids)
    partner_thread = json.dumps([[r.text, r.blocks] for r in partner.replies])
    assert all(i in partner_thread for i in partner_ids)
    singles = [m for m in top if m is not token and m is not partner]
    assert sorted(i for i in single_ids for m in singles if i in json.dumps(m.blocks)) == sorted(single_ids)
    # Paced within Slack's limits: the fake, enforcing them, refused nothing.
    assert [c.method for c in slack.refused] == []
    # `/execution incidents` lists both, latest first, with their reach.
    assert bot.command("incidents", slack.response_url("incidents")).status_code == 200
    (listed,) = slack.wait_responses("incidents")
    assert listed["response_type"] == "ephemeral" and "*Open incidents* (2)" in listed["text"]
    assert "40 failed runs across 15 linked accounts" in listed["text"]
    assert "10 failed runs across 4 linked accounts" in listed["text"]
    # The App Home shows them too.
    home = json.dumps(open_home(bot, slack, "U1", "EvIncidents"))
    assert "Open incidents" in home and "40 failed runs across 15 linked accounts" in home


def test_a_completed_run_of_an_account_an_incident_hit_moves_it_to_recovering(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key, "all")
    for account in ("acme", "beta"):
        execution_id = new_id()
        error = {"error": f"401 Unauthorized: token {uuid.uuid4().hex} expired"}
        refold.add_execution(execution_id, failing_with(error, account), linked_account_id=account)
        assert (
            bot.webhook(route, workflow_event(execution_id, account=account)).json()["result"] == "accepted"
        )
        # Listed in the incident's thread by its next update (one every 10 s at most).
        slack.wait_for(lambda s, i=execution_id: i in every_message_text(s), timeout=30)
    (incident,) = slack.wait_for(
        lambda s: [
            m
            for m in s.channel_messages(CHANNEL)
            if "*2 failed runs* across 2 linked accounts" in str(m.text)
        ]
    )
    assert "*ongoing*" in str(incident.text)
    completed = new_id()
    refold.add_execution(completed, running_doc(done=3, status="COMPLETED"), linked_account_id="acme")
    delivery = workflow_event(completed, "Workflow Completed", account="acme")
    assert bot.webhook(route, delivery).json()["result"] == "accepted"
    slack.wait_for(
        lambda s: (
            "*recovering*: 1 of 2 accounts have succeeded since" in str(s.message(CHANNEL, incident.ts).text)
        ),
        timeout=30,
    )


def test_a_routes_workflow_filter_is_subscribed_in_refold_as_workflow_ids(
    _bot_server: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    bot = BotServer(
        {**_bot_server.env, "PUBLIC_URL": "https://bot.example.com", "PORT": ""}, tmp_path / "bot.log"
    )
    bot.env["PORT"] = str(bot.port)
    bot.start()
    try:
        # Two workflows share a name in different apps; another only contains it.
        refold.workflows.update(
            {
                "6495792b9b6ca6d77a17e513": "Nightly sync",
                "6495792b9b6ca6d77a17e514": "nightly SYNC",
                "6495792b9b6ca6d77a17e515": "Nightly sync (old)",
            }
        )
        turn_on(bot, slack, refold, redis_url, bot_key, "workflow:Nightly sync")
        (subscription,) = refold.webhooks.values()
        assert sorted(subscription["workflow_ids"]) == [
            "6495792b9b6ca6d77a17e513",
            "6495792b9b6ca6d77a17e514",
        ]
        with refold.lock:
            (looked_up,) = [r for r in refold.requests if r["path"] == "/api/v2/public/workflow"]
        assert looked_up["query"]["name"] == "Nightly\\ sync"  # escaped: Refold's search is a regex
        # By ID, no lookup; no filter lifts it; a name Refold does not know subscribes to every workflow.
        alerts_command(bot, slack, "on workflow:6495792B9B6CA6D77A17E515", "by-id")
        assert subscription["workflow_ids"] == ["6495792b9b6ca6d77a17e515"]
        alerts_command(bot, slack, "on", "no-filter")
        assert subscription["workflow_ids"] == []
        alerts_command(bot, slack, "on workflow:Unknown flow", "unknown")
        assert subscription["workflow_ids"] == []
    finally:
        bot.stop()


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


def storm_of_one_cause(
    bot: BotServer, refold: FakeRefold, route: str, runs: int, accounts: int
) -> list[tuple[str, str]]:
    """`runs` failures of one cause (an expired token, each error with its own numbers) across
    `accounts` linked accounts, delivered; their (execution ID, account)."""
    made = []
    for index in range(runs):
        execution_id, account = new_id(), f"customer-{index % accounts}"
        error = {"error": f"401 Unauthorized: token {uuid.uuid4().hex} expired at portal {1000 + index}"}
        refold.add_execution(execution_id, failing_with(error, account), linked_account_id=account)
        assert (
            bot.webhook(route, workflow_event(execution_id, name="Nightly sync", account=account)).json()[
                "result"
            ]
            == "accepted"
        )
        made.append((execution_id, account))
    return made


def the_incident(slack: FakeSlack, *needles: str, timeout: float = 60) -> Message:
    """The channel's incident message once it shows every needle (in its text or its blocks)."""

    def found(s: FakeSlack) -> Message | None:
        for message in s.channel_messages(CHANNEL):
            shown = json.dumps([message.text, message.blocks])
            if "*Incident*" in shown and all(n in shown for n in needles):
                return message
        return None

    message: Message = slack.wait_for(found, timeout=timeout)
    return message


def press(
    bot: BotServer,
    slack: FakeSlack,
    message: Message,
    action_id: str,
    key: str,
    *,
    user: str = "U1",
    option: int = 0,
) -> None:
    """Press a button (or pick an overflow menu's option) on a channel message, as Slack sends it."""
    for block in message.blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                value = element["options"][option]["value"] if "options" in element else element["value"]
                payload = block_actions(
                    action_id,
                    value,
                    slack.response_url(key),
                    user=user,
                    ephemeral=False,
                    message={"ts": message.ts, "text": message.text, "blocks": message.blocks},
                    message_ts=message.ts,
                    action_ts=f"{time.time():.6f}",
                )
                if "options" in element:
                    # A menu's choice comes as Slack sends it: the chosen option, no value of its own.
                    chosen = payload["actions"][0]
                    del chosen["value"]
                    chosen.update(type="overflow", selected_option=element["options"][option])
                assert bot.interaction(payload).status_code == 200
                return
    raise AssertionError(f"no {action_id} on the message")


def reruns_asked(refold: FakeRefold) -> list[tuple[str, float]]:
    """Each rerun call Refold received: the execution it was for, and when."""
    with refold.lock:
        return [(r["path"].split("/")[-2], r["at"]) for r in refold.requests if r["endpoint"] == "rerun"]


@pytest.mark.timeout(300)
def test_rerun_failed_reruns_each_failed_run_once_within_refolds_rate_through_a_killed_worker(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    slack.enforce_limits()
    workers = Workers(bot, tmp_path)
    first = workers.start()
    try:
        wait_for_live_worker(redis_url)
        failed = storm_of_one_cause(bot, refold, route, 30, 12)
        incident = the_incident(slack, "*30 failed runs*", "Rerun failed (30)", timeout=120)
        confirm = json.dumps(incident.blocks)
        assert "*30 failed runs* across *12 linked accounts*" in confirm and "about 3 s" in confirm
        # Someone who may not rerun is refused, and nothing is rerun.
        press(bot, slack, incident, "incident_rerun", "rerun-by-u2", user="U2")
        (refused,) = slack.wait_responses("rerun-by-u2")
        assert "may rerun, snooze or resolve incidents" in refused["text"]
        assert refused["response_type"] == "ephemeral" and reruns_asked(refold) == []
        # A customer snoozed until a run of theirs succeeds: a completed rerun ends it.
        alerts_command(bot, slack, "snooze account:customer-0 for until-success", "snooze-customer")
        # An admin presses; Refold holds the 12th rerun while its worker is killed.
        refold.hold_rerun = 12
        press(bot, slack, incident, "incident_rerun", "rerun-by-u1")
        (pressed,) = slack.wait_responses("rerun-by-u1")
        assert "Rerunning 30 failed runs across 12 linked accounts" in pressed["text"]
        assert refold.rerun_held.wait(60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        refold.release_rerun.set()
        workers.start()
        # The run Refold took from the killed worker is not asked again (Refold may have started it):
        # 29 new runs are followed to their end, and the accounts they completed for recover.
        done = the_incident(
            slack,
            "29 runs rerun: 29 completed",
            "1 not confirmed by Refold",
            "*recovering*: 12 of 12",
            timeout=150,
        )
        assert "Rerun failed" not in json.dumps(done.blocks)
        slack.wait_for(
            lambda s: [
                m
                for m in s.channel_messages(CHANNEL)
                if "Snooze of linked account *customer-0* ended: a run succeeded" in str(m.text)
            ],
            timeout=30,
        )
        # A second press (a stale button) starts nothing new.
        press(bot, slack, incident, "incident_rerun", "rerun-again")
        (again,) = slack.wait_responses("rerun-again")
        assert "Nothing new to rerun" in again["text"]
    finally:
        refold.release_rerun.set()
        workers.stop_all()
    asked = reruns_asked(refold)
    # Exactly one rerun call per failed execution, never more than 20 in a second.
    assert sorted(e for e, _ in asked) == sorted(e for e, _ in failed)
    assert max_in_window([at for _, at in asked], 1.0) <= 20
    top = [m for m in slack.channel_messages(CHANNEL) if "turned on Refold alerts" not in str(m.text)]
    assert len(top) == 2 and len([m for m in top if "*Incident*" in str(m.text)]) == 1  # and the snooze's end
    assert [c.method for c in slack.refused] == []
    # Audited: the refusal, one entry for the press, one per run Refold confirmed.
    entries = audit_entries(redis_url, "T1")
    assert [(e.who, e.result) for e in entries if e.action == "incident rerun"] == [
        ("U1", "ok"),
        ("U2", "refused"),
    ]
    per_run = [e for e in entries if e.action == "rerun"]
    assert len(per_run) == 29 and {e.who for e in per_run} == {"U1"}
    assert {e.execution_id for e in per_run} <= {e for e, _ in failed}


def scheduled_incident_updates(redis_url: str) -> list[float]:
    """When the queue's incident updates are due (epoch seconds), as saq keeps them."""
    client = redis_sync.Redis.from_url(redis_url)
    try:
        return [
            score
            for member, score in client.zrange("saq:refold-bot:incomplete", 0, -1, withscores=True)
            if b":incident:" in member
        ]
    finally:
        client.close()


def test_an_incident_update_that_would_wait_for_slacks_budget_moves_to_its_turn_holding_no_worker(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    storm_of_one_cause(bot, refold, route, 2, 2)
    incident = the_incident(slack, "*2 failed runs*")
    # Slack said Retry-After for the workspace's chat.update: the hold ends mid-slot, so every update
    # asked meanwhile lands in the one slot of the turn (slots are 10 s).
    until = math.ceil((time.time() + 60) / 10) * 10 + 5
    hold_slack_budget(redis_url, "chat.update", until - time.time())
    updates_before = len(slack.calls_to("chat.update"))
    joined = storm_of_one_cause(bot, refold, route, 3, 3)
    bot.wait_for_background_work()
    # The update their slot asked for finds the turn 60 s off and moves there; then nothing waits (no
    # job running or due before the hold ends) and one update stands for the incident.
    deadline = time.monotonic() + 30
    while not any(at >= until for at in scheduled_incident_updates(redis_url)):
        assert time.monotonic() < deadline, "the incident's update never moved to its turn"
        time.sleep(0.1)
    wait_until_quiet(redis_url, scheduled_before=until - 10, timeout=30)
    due = scheduled_incident_updates(redis_url)
    assert len(due) == 1 and until <= due[0] < until + 10, (due, until)
    assert len(slack.calls_to("chat.update")) == updates_before
    assert "*2 failed runs*" in str(the_incident(slack).text)
    # Slack's budget back (the hold gone), the update's time come: the message shows all five.
    release_slack_budget(redis_url, "chat.update")
    bring_forward(redis_url, ":incident:")
    assert the_incident(slack, "*5 failed runs*", timeout=30).ts == incident.ts
    slack.wait_for(lambda s: all(e in every_message_text(s) for e, _ in joined), timeout=30)


def audit_entries(redis_url: str, workspace: str) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        client = aioredis.from_url(redis_url)
        try:
            return await AuditLog(client).latest(workspace, 200)
        finally:
            await client.aclose()

    return asyncio.run(read())


@pytest.mark.timeout(240)
def test_a_snoozed_incident_counts_failures_without_posting_then_resolve_and_a_new_failure_reopen_it(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    slack.enforce_limits()
    storm_of_one_cause(bot, refold, route, 2, 2)
    incident = the_incident(slack, "*2 failed runs*", "incident_snooze")
    press(bot, slack, incident, "incident_snooze", "snooze", option=0)  # for 1 h
    (snoozed,) = slack.wait_responses("snooze")
    assert "Snoozed until" in snoozed["text"]
    the_incident(slack, ":zzz: Snoozed by <@U1>", "End snooze")
    held = storm_of_one_cause(bot, refold, route, 3, 3)
    the_incident(slack, "*5 failed runs*", "3 failures held back")
    # Counted on the message; nothing posted: not a message, not a thread line.
    shown = every_message_text(slack)
    assert not any(e in shown for e, _ in held)
    press(bot, slack, the_incident(slack, "End snooze"), "incident_unsnooze", "unsnooze")
    slack.wait_responses("unsnooze")
    # The thread catches up with what the snooze held back.
    slack.wait_for(lambda s: all(e in every_message_text(s) for e, _ in held), timeout=40)
    press(bot, slack, the_incident(slack, "incident_resolve"), "incident_resolve", "resolve")
    (resolved,) = slack.wait_responses("resolve")
    assert "Resolved" in resolved["text"]
    over = the_incident(slack, "*resolved* by <@U1>")
    assert "incident_resolve" not in json.dumps(over.blocks)
    # A failure of the cause soon after reopens the same message.
    storm_of_one_cause(bot, refold, route, 1, 1)
    reopened = the_incident(slack, "*6 failed runs*", "(reopened at", timeout=40)
    assert reopened.ts == incident.ts
    top = [m for m in slack.channel_messages(CHANNEL) if "turned on Refold alerts" not in str(m.text)]
    assert len(top) == 1
    assert [c.method for c in slack.refused] == []


def test_each_alert_card_says_whether_it_is_a_first_failure_or_a_repeat(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key, "all")

    def deliver(event: str, node: str | None = None) -> str:
        execution_id = new_id()
        doc = (
            failing_with({"error": f"{node} refused"}, "acme", node=node)
            if node
            else running_doc(done=3, status="COMPLETED")
        )
        refold.add_execution(execution_id, doc, linked_account_id="acme")
        assert (
            bot.webhook(route, workflow_event(execution_id, event, name="Nightly sync")).json()["result"]
            == "accepted"
        )
        return execution_id

    def banner_of(execution_id: str) -> str:
        (card,) = slack.wait_for(
            lambda s: [p for p in cards(s) if execution_id in json.dumps(p["blocks"])], timeout=20
        )
        return json.dumps(card["blocks"], ensure_ascii=False)

    # Each failure at another node: a cause of its own, so each gets its own card.
    first = banner_of(deliver("Workflow Errored", "Step A"))
    assert "first failure of *Nightly sync* for *acme* in 7 days" in first
    banner_of(deliver("Workflow Errored", "Step B"))
    third = banner_of(deliver("Workflow Errored", "Step C"))
    assert "for *acme*: 3rd in a row" in third and "failing since" in third
    banner_of(deliver("Workflow Completed"))
    after = banner_of(deliver("Workflow Errored", "Step D"))
    assert "first failure of *Nightly sync* for *acme* since its success at" in after
    assert "(4 failures in 7 days)" in after


def bring_forward(redis_url: str, job_key_part: str) -> None:
    """Make the scheduled job whose key holds `job_key_part` due now, as if its time had come: the
    real job the command scheduled, run by the real queue."""
    client = redis_sync.Redis.from_url(redis_url)
    try:
        due = [m for m in client.zrange("saq:refold-bot:incomplete", 0, -1) if job_key_part.encode() in m]
        assert due, f"no scheduled job like {job_key_part}"
        for member in due:
            client.zadd("saq:refold-bot:incomplete", {member: time.time()}, xx=True)
    finally:
        client.close()


def held_count(redis_url: str) -> int:
    client = redis_sync.Redis.from_url(redis_url)
    try:
        return sum(
            int(client.hget(k, "held") or 0)
            for k in client.scan_iter("refold-bot:alert-snooze:*")
            if not k.endswith(b":held")
        )
    finally:
        client.close()


def test_a_snoozed_workflow_holds_its_alerts_back_and_ends_at_its_time_with_the_count(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key, "all")
    refused = alerts_command(bot, slack, "snooze workflow:Nightly sync for 4h", "snooze-u2", user="U2")
    assert "Only workspace admins and owners, and the people the connect form names as operators" in refused
    said = alerts_command(bot, slack, "snooze workflow:Nightly sync for 4h", "snooze")
    assert ":zzz: workflow *Nightly sync* snoozed by <@U1> until" in said and "0 alerts held back" in said

    def fail(name: str, node: str, account: str = "acme") -> str:
        execution_id = new_id()
        refold.add_execution(
            execution_id,
            failing_with({"error": f"{node} broke"}, account, node=node),
            linked_account_id=account,
        )
        assert (
            bot.webhook(route, workflow_event(execution_id, name=name, account=account)).json()["result"]
            == "accepted"
        )
        return execution_id

    held = [fail("Nightly sync", f"Step {n}") for n in range(3)]
    other = fail("Weekly export", "Upload")
    slack.wait_for(lambda s: other in every_message_text(s), timeout=20)
    slack.wait_for(lambda s: held_count(redis_url) == 3, timeout=20)
    assert not any(e in every_message_text(slack) for e in held)  # counted, not posted
    listed = alerts_command(bot, slack, "list", "list")
    assert ":zzz: workflow *Nightly sync* snoozed by <@U1> until" in listed and "3 alerts held back" in listed
    # Its time comes: the end job the command scheduled says so once, with the runs in its thread.
    bring_forward(redis_url, "snooze-end:")
    (ended,) = slack.wait_for(
        lambda s: [
            m for m in s.channel_messages(CHANNEL) if "Snooze of workflow *Nightly sync* ended" in str(m.text)
        ],
        timeout=30,
    )
    assert "3 alerts arrived while it was on (their runs are in this thread)" in str(ended.text)

    # The held runs follow the line in its thread.
    def thread_with_all(s: FakeSlack) -> str | None:
        shown = json.dumps([[r.text, r.blocks] for r in s.thread(CHANNEL, ended.ts)], ensure_ascii=False)
        return shown if all(e in shown for e in held) else None

    thread = slack.wait_for(thread_with_all, timeout=20)
    assert "Held back 1–3" in thread
    # Over: the workflow's alerts are posted again.
    after = fail("Nightly sync", "Step 9")
    slack.wait_for(lambda s: after in every_message_text(s), timeout=20)
    assert ":zzz:" not in alerts_command(bot, slack, "list", "list-after")


def test_a_failed_alert_cards_menu_snoozes_its_workflow_for_those_who_may(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)

    def fail(node: str) -> str:
        execution_id = new_id()
        refold.add_execution(
            execution_id,
            failing_with({"error": f"{node} broke"}, "acme", node=node),
            linked_account_id="acme",
        )
        assert (
            bot.webhook(route, workflow_event(execution_id, name="Nightly sync")).json()["result"]
            == "accepted"
        )
        return execution_id

    first = fail("Step A")
    (card,) = slack.wait_for(
        lambda s: [m for m in s.channel_messages(CHANNEL) if first in json.dumps(m.blocks)], timeout=20
    )
    (menu,) = [
        e
        for b in card.blocks or []
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == "alert_snooze"
    ]
    assert [o["text"]["text"] for o in menu["options"]] == [
        "Snooze Nightly sync for 1 h",
        "Snooze Nightly sync for 4 h",
        "Snooze Nightly sync until a run succeeds",
        "Snooze acme for 4 h",
        "Snooze acme until a run succeeds",
    ]
    press(bot, slack, card, "alert_snooze", "menu-u2", user="U2", option=1)
    (refused,) = slack.wait_responses("menu-u2")
    assert (
        "Only workspace admins and owners, and the people the connect form names as operators"
        in refused["text"]
    )
    # Answered beside the card, which stays as it is.
    assert refused["replace_original"] is False and refused["response_type"] == "ephemeral"
    damaged = block_actions("alert_snooze", '{"k":"w","v":"x","f":"9h"}', slack.response_url("menu-bad"))
    assert bot.interaction(damaged).status_code == 200
    (told,) = slack.wait_responses("menu-bad")
    assert "no longer carries" in told["text"]
    press(bot, slack, card, "alert_snooze", "menu-u1", option=1)
    (said,) = slack.wait_responses("menu-u1")
    assert (
        ":zzz: workflow *Nightly sync* snoozed by <@U1> until" in said["text"]
        and said["replace_original"] is False
    )
    # The workflow's next failure is counted, not posted.
    second = fail("Step B")
    slack.wait_for(lambda s: held_count(redis_url) == 1, timeout=20)
    assert second not in every_message_text(slack)
    assert "1 alert held back" in alerts_command(bot, slack, "list", "list")
    entries = audit_entries(redis_url, "T1")
    assert [(e.who, e.detail) for e in entries if e.action == "alerts snooze"] == [
        ("U1", "<#C1> workflow Nightly sync for 4h")
    ]


def test_an_until_success_snooze_of_an_account_ends_when_a_run_of_it_completes(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key, "all")
    said = alerts_command(bot, slack, "snooze account:beta for until-success", "snooze")
    assert "snoozed by <@U1> until a run succeeds" in said
    failed = new_id()
    refold.add_execution(failed, failing_with({"error": "boom"}, "beta"), linked_account_id="beta")
    assert bot.webhook(route, workflow_event(failed, account="beta")).json()["result"] == "accepted"
    slack.wait_for(lambda s: held_count(redis_url) == 1, timeout=20)
    completed = new_id()
    refold.add_execution(
        completed, running_doc(done=3, status="COMPLETED", linked_account_id="beta"), linked_account_id="beta"
    )
    assert (
        bot.webhook(route, workflow_event(completed, "Workflow Completed", account="beta")).json()["result"]
        == "accepted"
    )
    (ended,) = slack.wait_for(
        lambda s: [
            m for m in s.channel_messages(CHANNEL) if "Snooze of linked account *beta* ended" in str(m.text)
        ],
        timeout=30,
    )
    assert f"a run succeeded (`{completed}`): 1 alert arrived while it was on" in str(ended.text)
    # The success itself is posted as its card; the held failure is in the end line's thread.
    slack.wait_for(lambda s: completed in json.dumps([p["blocks"] for p in cards(s)]), timeout=20)
    slack.wait_for(
        lambda s: failed in json.dumps([r.blocks for r in s.thread(CHANNEL, ended.ts)]), timeout=20
    )


def test_a_failed_alert_card_names_the_workflows_last_success_for_its_account(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    # A workflow of this test's own: the bot caches a workflow's last success for 10 minutes, and the
    # web process outlives a test.
    workflow_id = new_id()

    def alert(account: str, node: str) -> str:
        execution_id = new_id()
        refold.add_execution(
            execution_id,
            failing_with({"error": f"{node} broke"}, account, node=node),
            linked_account_id=account,
        )
        assert (
            bot.webhook(route, workflow_event(execution_id, account=account, workflow_id=workflow_id)).json()[
                "result"
            ]
            == "accepted"
        )
        (card,) = slack.wait_for(
            lambda s: [p for p in cards(s) if execution_id in json.dumps(p["blocks"])], timeout=20
        )
        return json.dumps(card["blocks"], ensure_ascii=False)

    succeeded = new_id()
    done = running_doc(done=3, status="COMPLETED", linked_account_id="acme")
    finished = datetime.now(UTC) - timedelta(hours=3)
    done.update(workflow_id=workflow_id, createdAt=finished.isoformat(), updatedAt=finished.isoformat())
    refold.add_execution(succeeded, done, linked_account_id="acme")
    assert f"Last success: 3 h ago (`{succeeded}`)" in alert("acme", "Step A")
    with refold.lock:
        (asked,) = [r["query"] for r in refold.requests if r["endpoint"] == "list"]
    assert {k: asked[k] for k in ("status", "workflow_id", "limit")} == {
        "status": "COMPLETED",
        "workflow_id": workflow_id,
        "limit": "1",
    }
    assert "Last success: none for this workflow and account" in alert("beta", "Step B")
    # Refold failing the list call: the card comes without the line.
    refold.inject(Fault(status=500, endpoint="list", times=10))
    card = alert("gamma", "Step C")
    assert "Last success" not in card and "Step C" in card
