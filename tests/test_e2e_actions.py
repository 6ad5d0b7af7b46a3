"""Rerun and Stop from the card: who may, the Refold call, the followed result, and the audit log.

Through the real web process (its standby worker runs the follow polls), a real Redis, and the
loopback Slack and Refold. Slack shows the confirm dialog itself; a click that reaches the bot is one
the person confirmed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.render.buttons import encode_target
from tests.conftest import run_cli
from tests.fakes.refold import FakeRefold, Fault, errored_doc, running_doc
from tests.fakes.slack import FakeSlack
from tests.harness import (
    API_KEY,
    EXEC_ID,
    BotServer,
    block_actions,
    connect,
    connect_values,
    view_submission,
)

VALUE = encode_target(EXEC_ID, "acme")


def actions_of(message: dict[str, Any]) -> list[str]:
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def prepare(refold: FakeRefold, redis_url: str, bot_key: str, doc: dict[str, Any], **kwargs: Any) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, doc, linked_account_id="acme")
    connect(redis_url, bot_key, **kwargs)


def press(
    bot: BotServer, slack: FakeSlack, action: str, key: str, *, user: str = "U1", ephemeral: bool = False
) -> None:
    payload = block_actions(action, VALUE, slack.response_url(key), user=user, ephemeral=ephemeral)
    assert bot.interaction(payload).status_code == 200


def audit(redis_url: str, bot_key: str) -> str:
    result = run_cli("audit", "--team", "T1", env={"REDIS_URL": redis_url, "CREDENTIALS_KEY": bot_key})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rerun_posts_the_new_run_in_the_thread_and_follows_it_to_the_end(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, errored_doc(name="Nightly sync"))
    slack.admins.add("U1")
    press(bot, slack, "rerun_execution", "rerun")
    # Only this test's workflow is called "Nightly sync" and completes: the shared bot may still be
    # finishing an earlier test's follows, so this test picks its own messages by name.
    completion = "<@U1> *Nightly sync* finished: *COMPLETED*"
    slack.wait_for(
        lambda s: [c for c in s.calls_to("chat.postMessage") if completion in str(c.args.get("text"))],
        timeout=30,
    )
    ((old_id, new_id),) = refold.reruns
    assert old_id == EXEC_ID and refold.count("rerun") == 1
    posts = [c.args for c in slack.calls_to("chat.postMessage") if "Nightly sync" in json.dumps(c.args)]
    card = posts[0]
    assert card["channel"] == "C1" and card["thread_ts"] == "1.1"
    assert f"Rerun of `{EXEC_ID}`" in json.dumps(card["blocks"]) and "unfollow_execution" in actions_of(card)
    (note,) = slack.responses_to("rerun")
    assert note["response_type"] == "ephemeral" and note["replace_original"] is False
    assert f"new execution `{new_id}`" in note["text"]
    # Followed to its end: the thread card becomes final through chat.update, and the thread is told.
    final = [c.args for c in slack.calls_to("chat.update") if "Nightly sync" in c.args["text"]][-1]
    assert final["channel"] == "C1" and final["ts"] != "1.1"  # the thread card, not the one clicked
    assert "COMPLETED" in final["text"] and actions_of(final) == []
    (done,) = [p for p in posts if "finished" in p["text"]]
    assert done["thread_ts"] == "1.1" and done["text"].startswith(completion)
    log = audit(redis_url, bot_key)
    assert f"U1 · rerun {EXEC_ID} · ok ({new_id})" in log


def test_stop_shows_stopping_and_follows_the_run_to_stopped(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, running_doc(name="Nightly sync"))
    slack.admins.add("U1")
    press(bot, slack, "stop_execution", "stop")
    slack.wait_for(
        lambda s: [c for c in s.calls_to("chat.postMessage") if "finished" in str(c.args.get("text"))],
        timeout=30,
    )
    cards = slack.responses_to("stop")
    assert "STOPPING" in cards[0]["text"] and "unfollow_execution" in actions_of(cards[0])
    assert "STOPPED" in cards[-1]["text"] and actions_of(cards[-1]) == ["rerun_execution"]
    assert refold.count("stop") == 1
    assert "U1 · stop 65410cf6cdf931a12d7ab009 · ok" in audit(redis_url, bot_key)


@pytest.mark.parametrize("action", ["rerun_execution", "stop_execution"])
def test_someone_not_allowed_is_told_who_can_and_nothing_happens(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, action: str
) -> None:
    doc = errored_doc() if action == "rerun_execution" else running_doc()
    prepare(refold, redis_url, bot_key, doc, operator_users=("U5",), operator_groups=("S9",))
    press(bot, slack, action, "no", user="U2")
    (reply,) = slack.wait_responses("no")
    verb = "rerun" if action == "rerun_execution" else "stop"
    assert reply["text"] == (
        f":lock: Only workspace admins and owners, <@U5> and <!subteam^S9> may {verb} executions from Slack. "
        "Ask one of them, or ask an admin to add you in `/execution connect`."
    )
    assert refold.count("rerun") == 0 and refold.count("stop") == 0
    assert f"U2 · {verb} {EXEC_ID} · refused" in audit(redis_url, bot_key)


def test_a_listed_user_and_a_member_of_a_listed_group_may_rerun(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, errored_doc(), operator_users=("U5",), operator_groups=("S9",))
    slack.usergroups["S9"] = ("On-call", ["U7", "U8"])
    press(bot, slack, "rerun_execution", "listed", user="U5")
    slack.wait_for(lambda s: len(refold.reruns) == 1)
    press(bot, slack, "rerun_execution", "grouped", user="U7")
    slack.wait_for(lambda s: len(refold.reruns) == 2)
    # Each rerun's job ends with its note to the clicker; waiting for both keeps its thread card
    # from landing in the next test's Slack.
    assert "new execution" in slack.wait_responses("listed")[0]["text"]
    assert "new execution" in slack.wait_responses("grouped")[0]["text"]
    assert [c.args["usergroup"] for c in slack.calls_to("usergroups.users.list")] == ["S9"]  # U5 needed none


def test_refold_refusing_a_rerun_gets_the_same_words_as_a_lookup(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, errored_doc())
    slack.admins.add("U1")
    refold.inject(
        Fault(
            status=503,
            body="<html><title>Bad gateway</title></html>",
            content_type="text/html",
            endpoint="rerun",
        )
    )
    press(bot, slack, "rerun_execution", "down")
    (reply,) = slack.wait_responses("down")
    assert (
        reply["text"].startswith("Rerun failed. ")
        and "Refold" in reply["text"]
        and "Traceback" not in reply["text"]
    )
    assert refold.count("rerun") == 1  # never sent twice: the first may have started a run
    assert "· rerun 65410cf6cdf931a12d7ab009 · failed (upstream)" in audit(redis_url, bot_key)


def test_status_shows_the_last_five_actions(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, errored_doc())
    for n in range(6):
        press(bot, slack, "rerun_execution", f"r{n}", user=f"U{n + 10}")
        slack.wait_responses(f"r{n}")
    bot.command("status", slack.response_url("status"))
    (status,) = slack.wait_responses("status")
    lines = [line for line in status["text"].splitlines() if line.startswith("• ")]
    assert len(lines) == 5 and "*Last actions*" in status["text"]
    assert "<@U15>" in lines[0] and "<@U11>" in lines[-1] and "<@U10>" not in status["text"]


def test_the_connect_form_sets_who_may_rerun_and_stop(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    slack.admins.add("UADMIN")
    slack.usergroups["S1"] = ("On-call", ["U7"])
    bot.command("connect", slack.response_url("cn"), user="UADMIN")
    (opened,) = slack.wait_for(lambda s: s.calls_to("views.open"))
    blocks = {b["block_id"]: b for b in opened.args["view"]["blocks"] if "block_id" in b}
    assert blocks["operator_users"]["element"]["type"] == "multi_users_select"
    assert [o["value"] for o in blocks["operator_groups"]["element"]["options"]] == ["S1"]
    values = {
        **connect_values(API_KEY),
        "operator_users": {"value": {"type": "multi_users_select", "selected_users": ["U5"]}},
        "operator_groups": {"value": {"type": "multi_static_select", "selected_options": [{"value": "S1"}]}},
    }
    done = bot.interaction(view_submission(values, user="UADMIN")).json()
    assert done["response_action"] == "update"
    press(bot, slack, "rerun_execution", "by-group", user="U7")
    assert "new execution" in slack.wait_responses("by-group")[0]["text"]
    assert len(refold.reruns) == 1
    press(bot, slack, "rerun_execution", "outsider", user="U9")
    (refused,) = slack.wait_responses("outsider")
    assert "<@U5> and <!subteam^S1>" in refused["text"] and len(refold.reruns) == 1
    # The next time an admin opens the form, it shows who is allowed now.
    bot.command("connect", slack.response_url("cn2"), user="UADMIN", trigger_id="trig.9")
    reopened = slack.wait_for(lambda s: len(s.calls_to("views.open")) == 2 and s.calls_to("views.open"))[1]
    again = {b["block_id"]: b for b in reopened.args["view"]["blocks"] if "block_id" in b}
    assert again["operator_users"]["element"]["initial_users"] == ["U5"]
    assert [o["value"] for o in again["operator_groups"]["element"]["initial_options"]] == ["S1"]
    assert "UADMIN · connect · ok" in audit(redis_url, bot_key)
