"""The card always fits Slack's limits and shows what on-call needs, whatever Refold sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.parse import FoundExecution
from bot.refold.models import Execution
from bot.render.blocks import CardBudget, FollowMark, render_execution
from bot.render.buttons import decode_follow
from bot.render.buttons import encode_target as button_value
from bot.render.messages import lookup_waiting
from bot.render.text import utf16_len
from tests.fakes.refold import errored_doc, running_doc

NOW = datetime(2026, 11, 22, 12, 34, 56, tzinfo=UTC)
EXEC_ID = "65410cf6cdf931a12d7ab009"


def card_for(doc: dict, **kwargs):
    execution = Execution.model_validate({"_id": EXEC_ID, **doc})
    return render_execution(execution, now=NOW, **kwargs)


def assert_within_slack_limits(card) -> None:
    blocks = card.blocks
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        if block["type"] == "section":
            assert utf16_len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            for field in block.get("fields", []):
                assert utf16_len(field["text"]) <= 2000
        if block["type"] == "header":
            assert utf16_len(block["text"]["text"]) <= 150
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            for element in block["elements"]:
                assert utf16_len(element["text"]) <= 3000
        if block["type"] == "actions":
            for element in block["elements"]:
                assert len(element.get("value", "")) <= 2000 and len(element.get("url", "")) <= 3000
    for block in blocks:
        accessory = block.get("accessory") or {}
        for option in accessory.get("options", []):
            assert len(option["value"]) <= 150 and utf16_len(option["text"]["text"]) <= 75
        assert len(accessory.get("options", [])) <= 100
        assert len(block.get("block_id") or "") <= 255
        # Every card shape is what slack_sdk's Block Kit models accept (they also check the limits).
        Block.parse(block).validate_json()
    assert utf16_len(card.text) <= 4000
    json.dumps(blocks)  # serialisable, surrogates and all


def node(i: int, status: str = "Success", output: object = None, name: str | None = None) -> dict:
    return {
        "node_id": str(i),
        "node_name": name or f"Node {i}",
        "node_type": "action",
        "node_status": status,
        "attempts_made": 1,
        "execution_time": i,
        "latest_output": output,
    }


def text_of(card) -> str:
    return json.dumps(card.blocks, ensure_ascii=False)


def test_errored_card_shows_failing_node_first_with_its_output() -> None:
    card = card_for(errored_doc())
    header = card.blocks[0]["text"]["text"]
    assert header.startswith(":x:") and "Export contact to HubSpot" in header
    body = text_of(card)
    assert body.index("Create contact") < body.index("Start")
    assert "HubSpot token expired" in body and "```" in body
    assert "1 ✓ · 1 ✗ · 1 ⏳" in body
    assert "▰▰▰▰▰▰▰▱▱▱ 66%" in body
    assert "updated 12:34:56 UTC" in body
    assert "linked account *acme*" in body
    assert card.text == "ERRORED: Export contact to HubSpot (66%); failing: Create contact"
    # Terminal, not shareable: no Refresh, no Follow; only Rerun, which asks first.
    (actions,) = [b for b in card.blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == ["rerun_execution"]
    assert actions["elements"][0]["confirm"]["confirm"]["text"] == "Rerun"


def test_running_card_has_refresh_follow_stop_and_share() -> None:
    card = card_for(running_doc(), shareable=True, linked_account_id="acme")
    actions = next(b for b in card.blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "refresh_execution",
        "follow_execution",
        "stop_execution",
        "share_execution",
    ]
    assert all(json.loads(e["value"]) == {"e": EXEC_ID, "a": "acme"} for e in actions["elements"])
    stop = actions["elements"][2]
    assert stop["style"] == "danger" and stop["confirm"]["style"] == "danger"
    assert "Sync contacts" in stop["confirm"]["text"]["text"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("RUNNING", ["refresh_execution", "follow_execution", "stop_execution"]),
        ("QUEUED", ["refresh_execution", "follow_execution", "stop_execution"]),
        ("STOPPING", ["refresh_execution", "follow_execution"]),
        ("ERRORED", ["rerun_execution"]),
        ("FAILED", ["rerun_execution"]),
        ("STOPPED", ["rerun_execution"]),
        ("TIMED_OUT", ["rerun_execution"]),
        ("COMPLETED", []),
        ("TERMINATED", []),
        ("DUPLICATE", []),
        ("SOMETHING_NEW", ["refresh_execution", "follow_execution"]),
    ],
)
def test_each_status_offers_exactly_its_actions(status: str, expected: list[str]) -> None:
    card = card_for({**running_doc(), "status": status}, linked_account_id="acme")
    assert_within_slack_limits(card)
    ids = [e["action_id"] for b in card.blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids == expected


def test_a_followed_card_offers_unfollow_and_says_for_whom() -> None:
    follow_id = "f" * 32
    card = render_execution(
        Execution.model_validate({**running_doc(), "_id": EXEC_ID}),
        now=NOW,
        linked_account_id="acme",
        follow=FollowMark(follow_id, "U42"),
    )
    assert_within_slack_limits(card)
    ids = [e["action_id"] for b in card.blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["refresh_execution", "unfollow_execution", "stop_execution"]
    unfollow = next(
        e
        for b in card.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if "unfollow" in e["action_id"]
    )
    assert decode_follow(unfollow["value"]) == (FoundExecution(EXEC_ID, "acme"), follow_id)
    body = text_of(card)
    assert "Following for <@U42>" in body and "updates itself" in body
    # Once the run ends, the same follow renders the final card: no Refresh, no Follow, no note.
    final = render_execution(
        Execution.model_validate({**errored_doc(), "_id": EXEC_ID}),
        now=NOW,
        linked_account_id="acme",
        follow=FollowMark(follow_id, "U42"),
        rerun_of="6a3149efd396207fd24f7aad",
    )
    ids = [e["action_id"] for b in final.blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["rerun_execution"]
    assert "Following" not in text_of(final) and "Rerun of `6a3149efd396207fd24f7aad`" in text_of(final)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "{}",
        json.dumps({"e": EXEC_ID}),
        json.dumps({"e": EXEC_ID, "f": "short"}),
        json.dumps({"e": EXEC_ID, "f": "F" * 32}),
        json.dumps({"e": "nope", "f": "f" * 32}),
        json.dumps({"e": EXEC_ID, "f": ["f" * 32]}),
    ],
)
def test_a_damaged_unfollow_value_is_refused(value: object) -> None:
    assert decode_follow(value) is None


def test_legacy_card_shows_workflow_and_app() -> None:
    legacy = {
        "createdAt": "2023-10-31T14:19:34.788Z",
        "name": "Retry for workflow",
        "status": "ERRORED",
        "environment": "test",
        "associated_application": {"name": "Slack"},
        "associated_workflow": {"name": "Post message to a channel"},
    }
    body = text_of(card_for(legacy))
    assert "workflow *Post message to a channel*" in body and "app *Slack*" in body
    assert "created 2023-10-31 14:19 UTC" in body
    assert "no node detail" in body


def test_five_thousand_nodes_fit_and_say_how_many_are_hidden() -> None:
    nodes = [node(i, "Errored" if i % 500 == 0 else "Success", {"e": "x" * 5000}) for i in range(5000)]
    card = card_for({"name": "Big", "status": "ERRORED", "nodes": nodes})
    assert_within_slack_limits(card)
    body = text_of(card)
    shown = body.count("att ·")
    assert "more nodes" in body
    hidden = int(body.split("…and ")[-1].split(" more nodes")[0])
    assert shown - 3 + hidden == 5000  # 3 failing-node headlines repeat their node line
    assert "…and 7 more failing nodes" in body


def test_one_megabyte_output_is_excerpted() -> None:
    card = card_for({"status": "ERRORED", "nodes": [node(1, "Errored", {"blob": "é" * 1_000_000})]})
    assert_within_slack_limits(card)
    assert "…" in text_of(card)


def test_zero_nodes() -> None:
    assert_within_slack_limits(card_for({"status": "RUNNING", "nodes": []}))


def test_hostile_text_cannot_ping_or_forge_links() -> None:
    evil = "<!channel> <!here> <@U123> <https://evil.example|click> *bold* ```break``` \x00nul"
    doc = {
        "name": evil,
        "status": evil,
        "environment": evil,
        "linked_account_id": evil,
        "nodes": [node(1, "Errored", evil, name=evil), node(2, evil, {"x": evil}, name=evil)],
    }
    card = card_for(doc)
    assert_within_slack_limits(card)
    for block in card.blocks:
        if block["type"] == "header":
            continue  # plain_text: Slack never parses mentions or links there
        blob = json.dumps(block, ensure_ascii=False)
        assert "<!channel>" not in blob and "<!here>" not in blob and "<@U123>" not in blob
        assert "<https://evil.example" not in blob
        assert "\x00" not in blob and "\\u0000" not in blob
    assert "<!channel>" not in card.text and "<!here>" not in card.text
    code = [b["text"]["text"] for b in card.blocks if b["type"] == "section" and "```" in b["text"]["text"]]
    assert all(c.count("```") == 2 for c in code)


def test_smaller_budget_makes_a_smaller_card() -> None:
    nodes = [node(i, "Errored", {"e": "y" * 3000}) for i in range(300)]
    doc = {"status": "ERRORED", "nodes": nodes}
    full = card_for(doc)
    small = card_for(doc, budget=CardBudget().smaller())
    assert len(json.dumps(small.blocks)) < len(json.dumps(full.blocks)) / 2
    assert_within_slack_limits(small)


def test_button_value_has_no_secret_and_stays_short() -> None:
    value = button_value(EXEC_ID, "a" * 256)
    assert len(value) < 2000 and json.loads(value) == {"e": EXEC_ID, "a": "a" * 256}


hostile_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=400)
json_leaf = st.none() | st.booleans() | st.integers() | hostile_text
json_value = st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(hostile_text, c, max_size=4), max_leaves=12
)
node_strategy = st.fixed_dictionaries(
    {
        "node_id": hostile_text,
        "node_name": hostile_text,
        "node_type": hostile_text,
        "node_status": st.sampled_from(["Success", "Errored", "Waiting", "Rejected"]) | hostile_text,
        "attempts_made": st.integers(0, 10**6),
        "execution_time": st.integers(0, 10**9),
        "latest_output": json_value,
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=hostile_text,
    status=st.sampled_from(["RUNNING", "ERRORED", "COMPLETED"]) | hostile_text,
    pct=st.none() | st.floats(-1e9, 1e9),
    nodes=st.lists(node_strategy, max_size=60),
    account=st.none() | hostile_text.filter(lambda s: 0 < len(s) <= 256),
)
def test_any_document_renders_within_limits(name, status, pct, nodes, account) -> None:
    execution = Execution.model_validate(
        {"_id": EXEC_ID, "name": name, "status": status, "completion_percentage": pct, "nodes": nodes}
    )
    card = render_execution(execution, now=NOW, linked_account_id=account, shareable=True, note=name)
    assert_within_slack_limits(card)
    for block in card.blocks:
        if block["type"] != "header":
            assert "<!" not in json.dumps(block, ensure_ascii=False).replace("&lt;!", "")


def test_escaping_never_pushes_a_section_past_the_limit() -> None:
    angry = "<&>" * 400_000
    card = card_for(
        {
            "name": angry,
            "status": "ERRORED",
            "nodes": [node(i, "Errored", angry, name=angry) for i in range(5)],
        }
    )
    assert_within_slack_limits(card)


def test_open_in_refold_links_every_card_when_a_dashboard_is_set() -> None:
    template = "https://app.refold.ai/executions/{execution_id}?tab=nodes"
    for doc, shareable in ((errored_doc(), False), (running_doc(), True)):
        card = card_for(doc, linked_account_id="acme", shareable=shareable, dashboard_url=template)
        assert_within_slack_limits(card)
        actions = next(b for b in card.blocks if b["type"] == "actions")
        link = actions["elements"][-1]
        assert link["action_id"] == "open_in_refold" and "value" not in link
        assert link["url"] == f"https://app.refold.ai/executions/{EXEC_ID}?tab=nodes"
    plain = card_for(errored_doc(), linked_account_id="acme", shareable=False)
    ids = [e["action_id"] for b in plain.blocks if b["type"] == "actions" for e in b["elements"]]
    assert "open_in_refold" not in ids  # no dashboard set: no link


def test_the_waiting_placeholder_says_what_the_lookup_waits_for() -> None:
    exec_id = "65410cf6cdf931a12d7ab009"
    queued = lookup_waiting(exec_id, 3, with_refold=False)
    assert "queued behind 3 other requests" in queued and exec_id in queued
    assert "next in line" in lookup_waiting(exec_id, 0, with_refold=False)
    assert "Refold is taking longer than usual" in lookup_waiting(exec_id, None, with_refold=True)
    # Not yet sent to Refold (the bot's storage is slow, or another lookup of it is under way):
    # Refold is not blamed.
    elsewhere = lookup_waiting(exec_id, None, with_refold=False)
    assert "Refold" not in elsewhere and "taking longer than usual" in elsewhere
    for text in (queued, elsewhere):
        assert text.startswith(":hourglass_flowing_sand: Looking up") and "The card will replace" in text
