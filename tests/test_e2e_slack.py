"""The real bot over HTTP: slash command, Refresh, Share, shortcut, connect modal, signatures."""

from __future__ import annotations

import json
import time

from tests.fakes.refold import FakeRefold, errored_doc, running_doc
from tests.fakes.slack import FakeSlack
from tests.harness import (
    API_KEY,
    BOT_TOKEN,
    EXEC_ID,
    BotServer,
    block_actions,
    connect,
    connect_values,
    message_shortcut,
    view_submission,
)


def actions_of(message: dict) -> list[str]:
    return [
        e["action_id"] for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]
    ]


def test_slash_command_posts_a_card_to_the_response_url(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    ack = bot.command(EXEC_ID, slack.response_url("c1"))
    assert ack.status_code == 200 and ack.text == ""
    (reply,) = slack.wait_responses("c1")
    assert reply["response_type"] == "ephemeral"
    assert reply["blocks"][0]["type"] == "header"
    assert "Export contact to HubSpot" in reply["blocks"][0]["text"]["text"]
    body = json.dumps(reply)
    assert "HubSpot token expired" in body
    assert actions_of(reply) == ["rerun_execution", "share_execution"]  # finished: no Refresh
    assert reply["text"].startswith("ERRORED")
    assert API_KEY not in body and API_KEY not in bot.logs()
    assert refold.requests[-1]["headers"]["x-api-key"] == API_KEY


def test_linked_account_override_and_mailto_unwrapping(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(linked_account_id="a@b.com"), linked_account_id="a@b.com")
    connect(redis_url, bot_key)
    bot.command(f"{EXEC_ID} <mailto:a@b.com|a@b.com>", slack.response_url("c2"))
    (reply,) = slack.wait_responses("c2")
    assert "blocks" in reply, reply
    assert refold.requests[-1]["headers"]["linked_account_id"] == "a@b.com"


def test_help_bad_input_and_unknown_verbs_answer_in_the_ack(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    for text in ["", "help"]:
        ack = bot.command(text, slack.response_url("h"))
        assert "/execution <execution_id>" in ack.json()["text"]
    for text in ["nonsense", "../../etc/passwd", "65410cf6cdf931a12d7ab00", "status now", "<!channel>"]:
        ack = bot.command(text, slack.response_url("bad"))
        payload = ack.json()
        assert payload["text"].startswith(":warning:"), payload
        assert "<!channel>" not in payload["text"]
    assert sum(refold.calls.values()) == 0
    assert slack.responses_to("bad") == []


def test_not_connected_workspace_is_told_how_to_connect(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    bot.command(EXEC_ID, slack.response_url("nc"), team="T404")
    (reply,) = slack.wait_responses("nc")
    assert "/execution connect" in reply["text"]
    assert sum(refold.calls.values()) == 0


def test_refresh_until_finished_then_the_button_is_gone(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(
        EXEC_ID,
        running_doc(done=1),
        linked_account_id="acme",
        progression=[running_doc(done=1), running_doc(done=2), running_doc(done=3, status="COMPLETED")],
    )
    connect(redis_url, bot_key)
    bot.command(EXEC_ID, slack.response_url("r"))
    card = slack.wait_responses("r")[0]
    assert actions_of(card) == ["refresh_execution", "follow_execution", "stop_execution", "share_execution"]
    refresh = next(
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "refresh_execution"
    )
    assert json.loads(refresh["value"]) == {"e": EXEC_ID, "a": "acme"}
    seen = [card]
    for round_no in range(1, 4):
        time.sleep(2.1)  # past the 2 s cache for running executions
        bot.interaction(block_actions("refresh_execution", refresh["value"], slack.response_url("r")))
        seen = slack.wait_responses("r", count=round_no + 1)
        if "refresh_execution" not in actions_of(seen[-1]):
            break
    final = seen[-1]
    assert final["replace_original"] is True
    assert "COMPLETED" in final["blocks"][0]["text"]["text"]
    assert actions_of(final) == ["share_execution"]
    assert "100%" in json.dumps(final)


def test_failed_refresh_keeps_the_last_good_card(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    connect(redis_url, bot_key)
    refold.api_keys.add(API_KEY)
    good = {
        "text": "RUNNING: Sync",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Sync · RUNNING"}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "refresh_execution",
                        "text": {"type": "plain_text", "text": "Refresh"},
                        "value": "x",
                    }
                ],
            },
        ],
    }
    value = json.dumps({"e": EXEC_ID, "a": "acme"})
    bot.interaction(
        block_actions("refresh_execution", value, slack.response_url("f"), ephemeral=False, message=good)
    )
    (reply,) = slack.wait_responses("f")
    assert reply["replace_original"] is True
    assert reply["blocks"][0] == good["blocks"][0]
    note = next(b for b in reply["blocks"] if b.get("block_id") == "refresh_note")
    assert "Refresh failed" in note["elements"][0]["text"]
    assert reply["blocks"][-1]["type"] == "actions"


def test_share_posts_in_channel(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    bot.interaction(
        block_actions("share_execution", json.dumps({"e": EXEC_ID, "a": "acme"}), slack.response_url("s"))
    )
    (reply,) = slack.wait_responses("s")
    assert reply["response_type"] == "in_channel" and reply["replace_original"] is False
    assert actions_of(reply) == ["rerun_execution"]  # shared: no Share again; Rerun still asks who


def test_tampered_button_values_are_refused_without_calls(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    for i, value in enumerate(
        [
            "not json",
            json.dumps({"e": "../x"}),
            "x" * 10_000,
            json.dumps(["list"]),
            json.dumps({"e": EXEC_ID, "a": "a" * 300}),
        ]
    ):
        bot.interaction(block_actions("refresh_execution", value, slack.response_url(f"t{i}")))
        (reply,) = slack.wait_responses(f"t{i}")
        assert "no longer carries a valid execution" in reply["text"]
    assert sum(refold.calls.values()) == 0


def test_shortcut_on_a_refold_alert_answers_in_the_thread(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    instance = "656f30f69144bb8f183c0118"
    refold.add_execution(instance, errored_doc(linked_account_id="12345"), linked_account_id="12345")
    connect(redis_url, bot_key)
    alert = {
        "linked_account_id": "12345",
        "instance_id": instance,
        "workflow_id": "6495792b9b6ca6d77a17e513",
        "config_id": "12345",
        "event": "Workflow Errored",
        "workflow_name": "Export contact to HubSpot",
        "status": "ERRORED",
    }
    message = {
        "text": "Workflow Errored",
        "attachments": [
            {"text": "```" + json.dumps(alert, indent=2) + "```", "fallback": "Workflow Errored"}
        ],
    }
    ack = bot.interaction(message_shortcut(message, slack.response_url("sc")))
    assert ack.status_code == 200
    posts = slack.wait_for(lambda s: [c for c in s.calls if c.method == "chat.postMessage"])
    (post,) = posts
    assert post.args["thread_ts"] == "1700000000.000100" and post.args["channel"] == "C1"
    assert post.token == BOT_TOKEN
    assert "HubSpot token expired" in json.dumps(post.args["blocks"])
    assert refold.requests[-1]["headers"]["linked_account_id"] == "12345"
    assert refold.count("get") == 1  # the workflow_id was not mistaken for an execution


def test_shortcut_falls_back_to_ephemeral_and_caps_at_five(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    ids = [f"{i:024x}" for i in range(1, 8)]
    for eid in ids:
        refold.add_execution(eid, errored_doc())
    connect(redis_url, bot_key)
    slack.fail("chat.postMessage", "not_in_channel")
    bot.interaction(message_shortcut({"text": "failed runs: " + ", ".join(ids)}, slack.response_url("m")))
    replies = slack.wait_responses("m", count=6)
    cards = [r for r in replies if r.get("blocks")]
    assert len(cards) == 5
    assert "2 more executions" in replies[-1]["text"]
    assert refold.count("get") == 5


def test_shortcut_without_ids_says_so(bot: BotServer, refold: FakeRefold, slack: FakeSlack) -> None:
    bot.interaction(message_shortcut({"text": "deploy finished, all good"}, slack.response_url("n")))
    (reply,) = slack.wait_responses("n")
    assert "No execution ID found" in reply["text"] and reply["response_type"] == "ephemeral"


def test_connect_modal_then_lookup(bot: BotServer, refold: FakeRefold, slack: FakeSlack) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    slack.admins.add("UADMIN")
    bot.command("connect", slack.response_url("cn"), user="UADMIN")
    (opened,) = slack.wait_for(lambda s: s.calls_to("views.open"))
    assert opened.args["trigger_id"] == "trig.1"
    assert opened.args["view"]["callback_id"] == "connect_refold"
    wrong = bot.interaction(view_submission(connect_values("tk_wrong_key"), user="UADMIN")).json()
    assert wrong["response_action"] == "errors" and "did not accept" in wrong["errors"]["secret"]
    foreign = bot.interaction(
        view_submission(connect_values(API_KEY, base_url="https://evil.example"), user="UADMIN")
    ).json()
    assert "not an allowed Refold host" in foreign["errors"]["base_url"]
    done = bot.interaction(view_submission(connect_values(API_KEY), user="UADMIN")).json()
    assert done["response_action"] == "update"
    assert API_KEY not in json.dumps(done) and "tk…9f2c" in json.dumps(done, ensure_ascii=False)
    bot.command(EXEC_ID, slack.response_url("after"))
    (reply,) = slack.wait_responses("after")
    assert "blocks" in reply
    bot.command("status", slack.response_url("st"))
    (status,) = slack.wait_responses("st")
    assert "tk…9f2c" in status["text"] and "<@UADMIN>" in status["text"] and API_KEY not in status["text"]


def test_non_admins_cannot_connect_or_disconnect(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    connect(redis_url, bot_key)
    bot.command("connect", slack.response_url("na"), user="UPLEB")
    (reply,) = slack.wait_responses("na")
    assert "Only workspace admins" in reply["text"]
    assert slack.calls_to("views.open") == []
    crafted = bot.interaction(view_submission(connect_values("tk_attacker_key_1"), user="UPLEB")).json()
    assert crafted["response_action"] == "errors"
    bot.interaction(block_actions("disconnect_confirm", "disconnect", slack.response_url("nd"), user="UPLEB"))
    slack.wait_responses("nd")
    bot.command("status", slack.response_url("still"))
    (status,) = slack.wait_responses("still")
    assert "is connected" in status["text"]
    assert "tk_attacker_key_1" not in bot.logs()


def test_admin_disconnect_with_confirmation(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    connect(redis_url, bot_key)
    slack.admins.add("UADMIN")
    bot.command("disconnect", slack.response_url("d"), user="UADMIN")
    (prompt,) = slack.wait_responses("d")
    assert actions_of(prompt) == ["disconnect_confirm", "disconnect_cancel"]
    bot.interaction(block_actions("disconnect_confirm", "disconnect", slack.response_url("d"), user="UADMIN"))
    done = slack.wait_responses("d", count=2)[-1]
    assert "disconnected" in done["text"]
    bot.command(EXEC_ID, slack.response_url("gone"))
    assert "/execution connect" in slack.wait_responses("gone")[0]["text"]


def test_healthz(bot: BotServer) -> None:
    response = bot.http.get(f"{bot.url}/healthz")
    assert response.status_code == 200 and response.json() == {"redis": "ok"}


def test_a_run_under_a_recently_used_linked_account_is_found_and_followed_up_there(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    import redis as sync_redis

    refold.api_keys.add(API_KEY)
    connect(redis_url, bot_key)  # default linked account: acme
    sync_redis.Redis.from_url(redis_url).zadd(
        "refold-bot:linked-accounts:team:T1", {"beta": 1.0, "gamma": 2.0}
    )
    refold.add_execution(EXEC_ID, running_doc(), linked_account_id="beta")
    bot.command(EXEC_ID, slack.response_url("search"))
    (card,) = slack.wait_responses("search")
    assert "Found under linked account *beta*" in json.dumps(card["blocks"])
    refresh = next(
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "refresh_execution"
    )
    assert json.loads(refresh["value"])["a"] == "beta"  # Refresh asks under the account that matched
    assert refold.count("get") <= 3  # the default, then the two recent ones


def test_an_execution_without_a_status_is_not_called_running(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    from tests.fakes.refold import Fault

    refold.api_keys.add(API_KEY)
    connect(redis_url, bot_key)
    refold.inject(Fault(status=200, body="{}", endpoint="get"))
    bot.command(EXEC_ID, slack.response_url("nostatus"))
    (reply,) = slack.wait_responses("nostatus")
    assert "has no status" in reply["text"] and "Still running" not in json.dumps(reply)
    assert "blocks" not in reply


def test_pressing_open_in_refold_is_acknowledged_and_nothing_else(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    payload = block_actions("open_in_refold", "", slack.response_url("open"))
    payload["actions"][0].pop("value")
    payload["actions"][0]["url"] = f"https://dash.example/run/{EXEC_ID}"
    assert bot.interaction(payload).status_code == 200
    # The button only opens a link: no work starts, so no event can mark that none was started; a
    # short settle gives any wrongly started lookup time to call Refold or answer.
    time.sleep(0.3)
    assert slack.responses_to("open") == [] and sum(refold.calls.values()) == 0
