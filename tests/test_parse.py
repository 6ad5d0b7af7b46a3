"""Slash-command text and message payloads -> execution IDs and linked accounts."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.parse import (
    ALERT_EVENTS,
    AlertsCommand,
    DigestCommand,
    FoundExecution,
    InvalidCommand,
    LookupCommand,
    SearchCommand,
    VerbCommand,
    find_executions,
    parse_command,
    unwrap_slack_formatting,
)

A = "65410cf6cdf931a12d7ab009"
B = "656f30f69144bb8f183c0118"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", VerbCommand("help")),
        ("   ", VerbCommand("help")),
        ("HELP", VerbCommand("help")),
        ("status", VerbCommand("status")),
        ("connect", VerbCommand("connect")),
        ("disconnect", VerbCommand("disconnect")),
        (A, LookupCommand(A)),
        (A.upper(), LookupCommand(A)),
        (f"`{A}`", LookupCommand(A)),
        (f"{A} acme", LookupCommand(A, "acme")),
        (f"{A} <mailto:a@b.com|a@b.com>", LookupCommand(A, "a@b.com")),
    ],
)
def test_commands(text: str, expected: object) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "nonsense",
        "../../etc/passwd",
        A[:-1],
        A + "0",
        f"{A} a b",
        "status please",
        "<!channel>",
        "x" * 10_000,
        f"{A} " + "a" * 300,
        "６５410cf6cdf931a12d7ab009",
    ],
)
def test_invalid_commands(text: str) -> None:
    assert isinstance(parse_command(text), InvalidCommand)


def test_unwrap_slack_formatting() -> None:
    assert unwrap_slack_formatting("<mailto:a@b.com|a@b.com>") == "a@b.com"
    assert (
        unwrap_slack_formatting("<https://x.example|label> and <https://y.example>") == "label and y.example"
    )


def test_refold_webhook_payload_posted_as_json() -> None:
    alert = {
        "linked_account_id": "12345",
        "instance_id": B,
        "workflow_id": "6495792b9b6ca6d77a17e513",
        "config_id": "12345",
        "event": "Workflow Errored",
        "workflow_name": "Export",
        "status": "ERRORED",
    }
    message = {"text": "```" + json.dumps(alert, indent=2) + "```"}
    assert find_executions(message) == [FoundExecution(B, "12345")]


def test_ids_from_attachments_and_blocks_in_order_deduplicated() -> None:
    message = {
        "text": f"Run {A} failed",
        "attachments": [
            {"pretext": f"again {A}", "fields": [{"title": "Execution", "value": B}], "fallback": "x"}
        ],
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "Linked account: bob@example.com"},
                "fields": [{"type": "mrkdwn", "text": "c" * 24}],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "d" * 24}]},
            {
                "type": "rich_text",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [
                            {"type": "text", "text": "execution "},
                            {"type": "text", "text": "e" * 24},
                        ],
                    }
                ],
            },
        ],
    }
    found = find_executions(message)
    assert [f.execution_id for f in found] == [A, B, "c" * 24, "d" * 24, "e" * 24]
    assert {f.linked_account_id for f in found} == {"bob@example.com"}


@pytest.mark.parametrize(
    "phrase",
    [
        "linked_account_id: acme-1",
        '"linked_account_id": "acme-1"',
        "Linked account: acme-1",
        "*Linked account:* acme-1",
        "linked account id = acme-1",
    ],
)
def test_linked_account_phrasings(phrase: str) -> None:
    assert find_executions({"text": f"{A}\n{phrase}"}) == [FoundExecution(A, "acme-1")]


def test_nearest_linked_account_wins() -> None:
    text = f"{A} linked_account_id: first\n\n\n{'filler ' * 20}\n{B} linked_account_id: second"
    assert find_executions({"text": text}) == [FoundExecution(A, "first"), FoundExecution(B, "second")]


def test_no_ids() -> None:
    assert find_executions({"text": "all good"}) == []
    assert find_executions({}) == []
    assert find_executions({"text": "hash 65410cf6cdf931a12d7ab009ff is longer"}) == []


def test_hostile_shapes_never_raise() -> None:
    deep: dict = {"type": "rich_text", "elements": []}
    cursor = deep
    for _ in range(500):
        child = {"type": "rich_text_section", "elements": []}
        cursor["elements"].append(child)
        cursor = child
    cursor["elements"].append({"type": "text", "text": A})
    for message in [
        {"blocks": [deep]},
        {"attachments": "nope"},
        {"blocks": [None, 1, "x"]},
        {"text": 42},
        {"text": "\u202e" + A + "\u200b"},
        {"text": ("x" * 1_000_000) + A},
    ]:
        found = find_executions(message)
        assert isinstance(found, list)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
@example("DIGEST")
@example("search")
def test_any_command_text_parses_to_something(text: str) -> None:
    result = parse_command(text)
    assert isinstance(
        result, LookupCommand | VerbCommand | AlertsCommand | SearchCommand | DigestCommand | InvalidCommand
    )
    if isinstance(result, LookupCommand):
        assert len(result.execution_id) == 24 and result.execution_id == result.execution_id.lower()
    if isinstance(result, AlertsCommand):
        assert result.action in {"on", "off", "list", "help"} and result.events in ALERT_EVENTS


def test_alert_commands_parse_whatever_their_case() -> None:
    # Found by the property above: typed in capitals, `alerts on` is still the alerts command.
    assert parse_command("ALERTS ON") == AlertsCommand(action="on")
    assert parse_command("Alerts On ALL env:Production") == AlertsCommand(
        action="on", events="all", environment="production"
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from([A, B]), st.text(max_size=200))
def test_an_id_surrounded_by_spaces_is_always_found(before: str, eid: str, after: str) -> None:
    found = find_executions({"text": f"{before} {eid} {after}"})
    labelled = any(label in before.lower() for label in ("_id", " id", "=", ":"))
    assert labelled or eid in [f.execution_id for f in found]


@pytest.mark.parametrize("account", ["müller@example.com", "😀", "acme\u200b", "a\x00b"])
def test_linked_accounts_must_fit_in_an_http_header(account: str) -> None:
    assert isinstance(parse_command(f"{A} {account}"), InvalidCommand)


WF = "6495792b9b6ca6d77a17e513"


def test_an_id_only_in_a_labelled_links_url_is_found() -> None:
    message = {"text": f"Workflow failed: <https://app.refold.ai/logs/executions/{A}|View run>"}
    assert find_executions(message) == [FoundExecution(A, None)]


def test_an_id_in_a_rich_text_link_that_shows_a_label_is_found() -> None:
    link = {"type": "link", "url": f"https://app.refold.ai/logs?execution_id={B}", "text": "Open the run"}
    message = {
        "blocks": [
            {
                "type": "rich_text",
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": "Failed: "}, link]}
                ],
            }
        ]
    }
    assert find_executions(message) == [FoundExecution(B, None)]


def test_ids_in_attachment_links_buttons_and_section_fields_are_found() -> None:
    c, d, e, f = "c" * 24, "d" * 24, "e" * 24, "f" * 24
    message = {
        "attachments": [
            {
                "title": "Workflow Errored",
                "title_link": f"https://app.refold.ai/logs/executions/{A}",
                "fields": [{"title": "Run", "value": f"<https://app.refold.ai/logs/executions/{B}|open>"}],
                "actions": [{"type": "button", "text": "Open", "url": f"https://app.refold.ai/x/{c}"}],
            }
        ],
        "blocks": [
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*Run:* <https://app.refold.ai/e/{d}|details>"}],
                "accessory": {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open"},
                    "url": f"https://x/{e}",
                },
            },
            {"type": "actions", "elements": [{"type": "button", "url": f"https://app.refold.ai/r/{f}"}]},
        ],
    }
    assert [found.execution_id for found in find_executions(message)] == [A, B, c, d, e, f]


def test_a_workflow_id_in_a_link_path_or_query_is_not_taken_for_an_execution() -> None:
    message = {
        "text": f"<https://app.refold.ai/workflows/{WF}/executions/{A}|run> "
        f"<https://app.refold.ai/logs?workflow_id={WF}|all runs>"
    }
    assert find_executions(message) == [FoundExecution(A, None)]


def test_a_linked_account_written_as_a_mailto_link_is_read_once() -> None:
    message = {"text": f"{A} linked account: <mailto:bob@example.com|bob@example.com>"}
    assert find_executions(message) == [FoundExecution(A, "bob@example.com")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("search", SearchCommand()),
        ("search status:ERRORED since:2h", SearchCommand(status="errored", since="2h")),
        (
            "search workflow:Nightly sync  status:timed_out account:acme source:api",
            SearchCommand(account="acme", status="timed_out", workflow="Nightly sync", source="api"),
        ),
        ('search workflow:"Nightly sync"', SearchCommand(workflow="Nightly sync")),
    ],
)
def test_search_filters_parse_in_any_order_and_survive_a_round_trip(
    text: str, expected: SearchCommand
) -> None:
    parsed = parse_command(text)
    assert parsed == expected
    # What a Next page button carries parses back to the same search.
    assert parse_command(f"search {expected.as_text()}") == expected


def test_search_since_reads_minutes_hours_and_days() -> None:
    assert [SearchCommand(since=s).since_seconds for s in ("30m", "2h", "7d")] == [1800, 7200, 604800]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("search status:", "`status:` needs a value"),
        ("search since:0m", "`since:0m`"),
        ("search since:91d", "`since:91d`"),
        ("search account:a b", "I could not read `b` after `account:`"),
        ("search status:errored status:running", "`status:` is given twice"),
    ],
)
def test_bad_search_filters_name_the_part_that_could_not_be_read(text: str, named: str) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, InvalidCommand) and named in parsed.reason


@pytest.mark.parametrize(
    ("text", "kind", "value", "length"),
    [
        ("alerts snooze workflow:Nightly sync for 4h", "workflow", "Nightly sync", "4h"),
        ("alerts snooze account:acme", "account", "acme", "1h"),
        ("alerts snooze account:acme for until-success", "account", "acme", "until-success"),
        ("alerts unsnooze workflow:6495792b9b6ca6d77a17e513", "workflow", "6495792b9b6ca6d77a17e513", "1h"),
    ],
)
def test_snooze_commands_name_a_workflow_or_an_account_and_how_long(
    text: str, kind: str, value: str, length: str
) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, AlertsCommand)
    assert (parsed.snooze_kind, parsed.snooze_value, parsed.snooze_for) == (kind, value, length)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("alerts snooze", "needs `workflow:<name or id>` or `account:<linked account>`"),
        ("alerts snooze workflow:x for 2d", "`for 2d` is not a choice"),
        ("alerts unsnooze account:acme for 1h", "`alerts unsnooze` takes no `for`"),
    ],
)
def test_bad_snooze_commands_say_why(text: str, named: str) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, InvalidCommand) and named in parsed.reason
