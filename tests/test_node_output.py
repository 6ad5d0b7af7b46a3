"""Show output: a node's whole output in a modal, opened at once and filled in, within Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from slack_sdk.models.views import View

from bot.refold.models import Execution
from bot.render.blocks import render_execution
from bot.render.buttons import PICK_OUTPUT_ACTION, SHOW_OUTPUT_ACTION, decode_node
from bot.render.output import node_output_view
from bot.render.text import utf16_len
from tests.fakes.refold import FakeRefold, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import EXEC_ID, BotServer, block_actions, connect

NOW = datetime(2026, 11, 23, 9, 41, tzinfo=UTC)
MEGABYTE_OUTPUT = {"rows": [{"id": i, "payload": "x" * 90} for i in range(10_000)]}  # about 1.1 MB as JSON


def execution(doc: dict) -> Execution:
    return Execution.model_validate({"_id": EXEC_ID, **doc})


def assert_valid_modal(view: dict) -> None:
    assert len(view["blocks"]) <= 100
    for block in view["blocks"]:
        if block["type"] == "section":
            assert utf16_len(block["text"]["text"]) <= 3000
    View(**view).validate_json()  # slack_sdk's model of a modal accepts it
    assert len(json.dumps(view)) < 250_000


def test_a_megabyte_of_output_is_split_and_says_it_was_cut() -> None:
    doc = errored_doc()
    doc["nodes"][1]["latest_output"] = MEGABYTE_OUTPUT
    view = node_output_view(execution(doc), 1)
    assert_valid_modal(view)
    code = [
        b["text"]["text"]
        for b in view["blocks"]
        if b["type"] == "section" and b["text"]["text"].startswith("```")
    ]
    assert len(code) >= 20 and all(c.endswith("```") for c in code)
    assert '"rows": [' in code[0]  # pretty JSON, from the top
    (cut,) = [b for b in view["blocks"] if b["type"] == "context" and "Cut:" in b["elements"][0]["text"]]
    total = len(json.dumps(MEGABYTE_OUTPUT, indent=2))
    assert total > 1_000_000 and f"of {total:,} characters" in cut["elements"][0]["text"]


def test_a_small_output_is_shown_whole_with_the_node_facts() -> None:
    doc = errored_doc()
    view = node_output_view(execution(doc), 1)
    assert_valid_modal(view)
    text = json.dumps(view)
    assert "Create contact" in text and "Attempts:* 3" in text and "HubSpot token expired" in text
    assert "Cut:" not in text


def test_a_legacy_execution_with_no_nodes_says_so() -> None:
    legacy = execution({"status": "ERRORED", "name": "Post message to a channel"})
    view = node_output_view(legacy, 0)
    assert_valid_modal(view)
    assert "no node detail" in view["blocks"][0]["text"]["text"]


def test_the_card_offers_the_failing_nodes_output_and_a_menu_of_every_node() -> None:
    card = render_execution(execution(errored_doc()), now=NOW, linked_account_id="acme", shareable=True)
    buttons = [
        b["accessory"]
        for b in card.blocks
        if (b.get("accessory") or {}).get("action_id") == SHOW_OUTPUT_ACTION
    ]
    (button,) = buttons
    found, index = decode_node(button["value"])  # type: ignore[misc]
    assert (found.execution_id, found.linked_account_id, index) == (EXEC_ID, "acme", 1)
    (menu_block,) = [
        b for b in card.blocks if (b.get("accessory") or {}).get("action_id") == PICK_OUTPUT_ACTION
    ]
    options = menu_block["accessory"]["options"]
    assert len(options) == len(errored_doc()["nodes"])
    assert decode_node(options[2]["value"], menu_block["block_id"]) is not None
    found, index = decode_node(options[2]["value"], menu_block["block_id"])  # type: ignore[misc]
    assert (found.linked_account_id, index) == ("acme", 2)


def test_tampered_node_values_are_refused() -> None:
    for value in (
        '{"e":"zz","i":1}',
        '{"e":"' + EXEC_ID + '","i":-1}',
        '{"e":"' + EXEC_ID + '"}',
        "[]",
        None,
    ):
        assert decode_node(value) is None


def test_show_output_opens_at_once_then_fills_in(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    from tests.harness import API_KEY

    refold.api_keys.add(API_KEY)
    doc = errored_doc()
    doc["nodes"][1]["latest_output"] = MEGABYTE_OUTPUT
    refold.add_execution(EXEC_ID, doc, linked_account_id="acme")
    connect(redis_url, bot_key)
    card = render_execution(execution(doc), now=NOW, linked_account_id="acme", shareable=True)
    (button,) = [
        b["accessory"]
        for b in card.blocks
        if (b.get("accessory") or {}).get("action_id") == SHOW_OUTPUT_ACTION
    ]
    answer = bot.interaction(block_actions(SHOW_OUTPUT_ACTION, button["value"], slack.response_url("out")))
    assert answer.status_code == 200
    update = slack.wait_for(lambda s: s.calls_to("views.update") and s.calls_to("views.update")[-1])
    (opened,) = slack.calls_to("views.open")
    assert opened.args["trigger_id"] == "trig.2"
    assert "Looking up" in json.dumps(opened.args["view"])
    view = update.args["view"]
    assert_valid_modal(view)
    assert "Create contact" in json.dumps(view) and "Cut:" in json.dumps(view)
    assert refold.requests[-1]["headers"]["linked_account_id"] == "acme"
    assert refold.count("get") == 1


def test_the_node_menu_uses_the_account_its_block_carries(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    from tests.harness import API_KEY

    refold.api_keys.add(API_KEY)
    refold.add_execution(
        EXEC_ID, errored_doc(linked_account_id="other@example.com"), linked_account_id="other@example.com"
    )
    connect(redis_url, bot_key)  # the workspace default is "acme"
    card = render_execution(
        execution(errored_doc()), now=NOW, linked_account_id="other@example.com", shareable=True
    )
    (block,) = [b for b in card.blocks if (b.get("accessory") or {}).get("action_id") == PICK_OUTPUT_ACTION]
    option = block["accessory"]["options"][0]
    payload = block_actions(PICK_OUTPUT_ACTION, "", slack.response_url("menu"))
    payload["actions"] = [
        {
            "type": "static_select",
            "action_id": PICK_OUTPUT_ACTION,
            "block_id": block["block_id"],
            "selected_option": option,
            "action_ts": "1.2",
        }
    ]
    assert bot.interaction(payload).status_code == 200
    update = slack.wait_for(lambda s: s.calls_to("views.update") and s.calls_to("views.update")[-1])
    assert "Start" in json.dumps(update.args["view"])
    assert refold.requests[-1]["headers"]["linked_account_id"] == "other@example.com"


def test_a_tampered_output_button_costs_no_call(bot: BotServer, refold: FakeRefold, slack: FakeSlack) -> None:
    bot.interaction(block_actions(SHOW_OUTPUT_ACTION, '{"e":"nope","i":0}', slack.response_url("bad-out")))
    (reply,) = slack.wait_responses("bad-out")
    assert "no longer carries a valid execution" in reply["text"]
    assert slack.calls_to("views.open") == [] and sum(refold.calls.values()) == 0
