"""`/execution search` through the real server: the filters reach Refold's list as its documented
query parameters, the answer is private with a card button per run and Next page, an empty answer
names the filters, and a filter the bot cannot read gets a usage line and no Refold call."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.refold import FakeRefold, errored_doc, running_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, BotServer, block_actions, connect, lookup_answer

WORKFLOW_ID = "6495792b9b6ca6d77a17e513"


def add_runs(
    refold: FakeRefold, count: int, *, status: str, minutes_ago: int, account: str = "acme"
) -> list[str]:
    """`count` runs of *Nightly sync* for `account`, created `minutes_ago` (one minute apart)."""
    made = []
    for index in range(count):
        execution_id = uuid.uuid4().hex[:24]
        doc = (
            errored_doc(name="Nightly sync", linked_account_id=account)
            if status == "ERRORED"
            else running_doc(name="Nightly sync", status=status, done=3, linked_account_id=account)
        )
        created = datetime.now(UTC) - timedelta(minutes=minutes_ago + index)
        doc.update(
            createdAt=created.isoformat(),
            updatedAt=(created + timedelta(seconds=42)).isoformat(),
            workflow_id=WORKFLOW_ID,
            execution_source="Event",
        )
        refold.add_execution(execution_id, doc, linked_account_id=account)
        made.append(execution_id)
    return made


def list_queries(refold: FakeRefold) -> list[dict[str, str]]:
    with refold.lock:
        return [r["query"] for r in refold.requests if r["endpoint"] == "list"]


def row_ids(answer: dict[str, Any]) -> list[str]:
    return [
        json.loads(b["accessory"]["value"])["e"]
        for b in answer["blocks"]
        if b["type"] == "section" and b.get("accessory", {}).get("action_id") == "show_run_card"
    ]


def test_a_search_sends_refolds_filters_answers_privately_and_pages(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    connect(redis_url, bot_key)
    recent = add_runs(refold, 12, status="ERRORED", minutes_ago=5)
    add_runs(refold, 3, status="ERRORED", minutes_ago=300)  # before `since:2h`
    add_runs(refold, 4, status="COMPLETED", minutes_ago=5)
    add_runs(refold, 2, status="ERRORED", minutes_ago=5, account="beta")  # another customer's
    asked_at = datetime.now(UTC)
    assert (
        bot.command(
            "search status:errored since:2h source:event workflow:Nightly sync", slack.response_url("s1")
        ).status_code
        == 200
    )
    (first,) = slack.wait_responses("s1")
    (query,) = list_queries(refold)
    # The documented parameters (openapi.yaml, listExecutions), for the workspace's linked account.
    assert {k: query[k] for k in ("status", "workflow_name", "execution_source", "page", "limit")} == {
        "status": "ERRORED",
        "workflow_name": "Nightly sync",
        "execution_source": "Event",
        "page": "1",
        "limit": "10",
    }
    start = datetime.fromisoformat(query["start_date"].replace("Z", "+00:00"))
    assert abs((asked_at - timedelta(hours=2) - start).total_seconds()) < 30
    assert first["response_type"] == "ephemeral"
    assert "Runs of *acme* for status *errored*" in first["text"] and "1–10 of 12" in first["text"]
    # Newest first, each with its status, name, ID, when and how long, and a button to its card.
    assert row_ids(first) == recent[:10]
    shown = json.dumps(first["blocks"], ensure_ascii=False)
    assert "*ERRORED* · *Nightly sync*" in shown and "min ago" in shown and "took 42.0 s" in shown
    (next_button,) = [e for b in first["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert next_button["action_id"] == "search_next_page"
    payload = block_actions(
        "search_next_page", next_button["value"], slack.response_url("s2"), action_ts="2.1"
    )
    assert bot.interaction(payload).status_code == 200
    (second,) = slack.wait_responses("s2")
    assert row_ids(second) == recent[10:] and second["replace_original"] is True
    assert "11–12 of 12" in second["text"] and not [b for b in second["blocks"] if b["type"] == "actions"]
    assert list_queries(refold)[-1]["page"] == "2"
    # A row's button shows that run's card, privately.
    card_button = second["blocks"][1]["accessory"]
    payload = block_actions("show_run_card", card_button["value"], slack.response_url("s3"), action_ts="3.1")
    assert bot.interaction(payload).status_code == 200
    card = lookup_answer(slack, "s3")
    assert card["response_type"] == "ephemeral" and recent[10] in json.dumps(card["blocks"])


def test_a_search_of_another_account_by_workflow_id_that_finds_nothing_says_which_filters(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    connect(redis_url, bot_key)
    add_runs(refold, 2, status="COMPLETED", minutes_ago=5, account="beta")
    command = f"search account:beta status:timed_out workflow:{WORKFLOW_ID.upper()}"
    assert bot.command(command, slack.response_url("none")).status_code == 200
    (answer,) = slack.wait_responses("none")
    (query,) = list_queries(refold)
    assert query["workflow_id"] == WORKFLOW_ID and query["status"] == "TIMED_OUT"
    with refold.lock:
        (sent,) = [r for r in refold.requests if r["endpoint"] == "list"]
    assert sent["headers"]["linked_account_id"] == "beta"
    assert answer["text"].startswith(
        f":mag: No runs of *beta* matched status *timed_out*, workflow *{WORKFLOW_ID.upper()}*"
    )
    assert row_ids(answer) == []


def test_a_filter_the_bot_cannot_read_gets_a_usage_line_and_no_refold_call(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    connect(redis_url, bot_key)
    for text, named in [
        ("search status:broken", "`status:broken` is not a status"),
        ("search since:3w", "`since:3w` is not a time I can read"),
        ("search source:email", "`source:email` is not a source"),
        ("search status:errored colour:red", "I could not read `colour:red` after `status:`"),
        ("search yesterday", "I could not read `yesterday`"),
    ]:
        ack = bot.command(text, slack.response_url("bad"))
        assert ack.status_code == 200
        reply = ack.json()
        assert reply["response_type"] == "ephemeral" and named in reply["text"], reply
        assert "/execution search [account:" in reply["text"]  # the usage line
    assert list_queries(refold) == []
