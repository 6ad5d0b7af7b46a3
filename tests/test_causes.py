"""A failure's cause: volatile parts out, identity in."""

from __future__ import annotations

import copy
import email.utils
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.refold.causes import (
    MAX_ERROR_CHARS,
    MAX_NAME_CHARS,
    Cause,
    cause_of,
    error_text,
    normalise_error,
)
from bot.refold.models import Execution
from tests.fakes.refold import errored_doc
from tests.test_models import _example

WF = "6a106ba44480b80424a65289"


def run(
    output: Any,
    *,
    node_name: str = "Create contact",
    node_type: str = "hubspot",
    status: str = "Errored",
) -> Execution:
    doc = errored_doc()
    doc["nodes"][1].update(node_name=node_name, node_type=node_type, node_status=status, latest_output=output)
    return Execution.model_validate(doc)


def cause(output: Any, **kwargs: Any) -> Cause:
    return cause_of(run(output, **kwargs), workflow_id=WF, workflow_name="Export contact to HubSpot")


# --- examples -----------------------------------------------------------------------------------------


def test_hubspot_expired_tokens_on_different_portals_are_one_cause() -> None:
    a = cause({"error": "401 Unauthorized: token 8f3a… expired for portal 123456"})
    b = cause({"error": "401 Unauthorized: token c1d9… expired for portal 998877"})
    assert a == b and a.key == b.key
    assert a.error == "<n> Unauthorized: token <id>… expired for portal <n>"
    assert (a.workflow, a.workflow_id, a.node_name, a.node_type) == (
        "Export contact to HubSpot",
        WF,
        "Create contact",
        "hubspot",
    )


def test_xero_pages_are_one_cause_and_the_host_stays() -> None:
    a = cause({"message": "Request to https://api.xero.com/api.xro/2.0/Invoices?page=3 failed with 503"})
    b = cause(
        {"message": "Request to https://api.xero.com/api.xro/2.0/Contacts/9f1e?where=x failed with 502"}
    )
    assert a.key == b.key
    assert a.error == "Request to https://api.xero.com/… failed with <n>"
    other_host = cause({"message": "Request to https://api.hubapi.com/crm/v3/objects failed with 503"})
    assert other_host.key != a.key


def test_the_fake_refold_errored_run() -> None:
    found = cause_of(Execution.model_validate(errored_doc()))
    assert found.node_name == "Create contact" and found.node_type == "hubspot"
    assert found.error == "<n> Unauthorized: HubSpot token expired"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        # HubSpot's error body: the message speaks, the correlation ID does not.
        (
            {
                "status": "error",
                "message": "Contact already exists. Existing ID: 51234",
                "correlationId": "123e4567-e89b-12d3-a456-426614174000",
                "category": "CONFLICT",
            },
            "Contact already exists. Existing ID: <n>",
        ),
        ({"error": {"message": "Invalid email 'bob@acme.com'", "code": 400}}, "Invalid email '…'"),
        (
            {"errors": [{"message": "Property values were not valid"}, {"message": "x"}]},
            "Property values were not valid",
        ),
        ({"error": "invalid_grant", "error_description": "Token expired"}, "invalid_grant: Token expired"),
        ({"ErrorMessage": "Account for alice@example.com is locked"}, "Account for <email> is locked"),
        ({"body": {"detail": "Quota exceeded until 2024-03-05T10:00:00Z"}}, "Quota exceeded until <time>"),
        (
            '{"message": "Embedded JSON from upstream, id 65410cf6cdf931a12d7ab009"}',
            "Embedded JSON from upstream, id <id>",
        ),
        ("Upstream timed out after 30000 ms", "Upstream timed out after <n> ms"),
        # No error fields: the output's shape, its values normalised.
        (
            {"statusCode": 500, "ok": False, "body": {"reason_code": "X 42"}, "items": [1, None]},
            '{"statusCode":<n>,"ok":false,"body":{"reason_code":"X <n>"},"items":[<n>,null]}',
        ),
        ({}, "Errored with no output"),
        (None, "Errored with no output"),
    ],
)
def test_error_fields(output: Any, expected: str) -> None:
    assert cause(output).error == expected


def test_urls_lose_their_credentials_and_paths() -> None:
    assert normalise_error("GET https://user:secret@10.0.0.1:8080/a/b?c=1. failed") == (
        "GET https://10.0.0.1:8080/…. failed"
    )
    assert normalise_error("see https://api.xero.com/") == "see https://api.xero.com/"


def test_times_of_every_spelling() -> None:
    for text in (
        "at 2024-03-05T10:00:00.123+05:30",
        "at 2024-03-05 10:00:00",
        "at Tue, 05 Mar 2024 10:00:00 GMT",
        "at March 5th, 2024",
        "at 05/03/2024 10:00",
        "at 10:00:01 PM",
    ):
        assert normalise_error(text) == "at <time>", text


def test_apostrophes_are_not_quotes() -> None:
    assert normalise_error("can't find customer's 'ACME-42' record") == "can't find customer's '…' record"


def test_legacy_shape_has_no_node() -> None:
    execution = Execution.model_validate_json(_example("get-execution-v1.mdx", "200"))
    found = cause_of(execution)
    assert found.node_name is None and found.node_type is None
    assert found.error == "ERRORED with no node details"
    assert execution.workflow is not None
    assert found.workflow == "Post message to a channel" and found.workflow_id == execution.workflow.id


def test_current_shape_names_its_workflow() -> None:
    execution = Execution.model_validate_json(_example("get-execution-v2.mdx", "200"))
    found = cause_of(execution)
    assert found.workflow_id == WF and found.workflow == WF
    assert found.error == "COMPLETED with no failing node"


def test_the_node_that_stopped_the_run_is_preferred_over_a_skipped_one() -> None:
    doc = errored_doc()
    skipped = dict(doc["nodes"][1], node_name="Enrich", node_status="Errored_and_Skipped")
    doc["nodes"].insert(1, skipped)
    assert cause_of(Execution.model_validate(doc)).node_name == "Create contact"
    doc["nodes"] = [skipped]
    assert cause_of(Execution.model_validate(doc)).node_name == "Enrich"


def test_workflow_name_is_shown_but_the_id_identifies() -> None:
    execution = run({"error": "boom"})
    renamed = cause_of(execution, workflow_id=WF, workflow_name="Old name")
    assert renamed.key == cause_of(execution, workflow_id=WF, workflow_name="New name").key
    by_name = cause_of(execution, workflow_name="Old name")
    assert by_name.workflow == "Old name" and by_name.workflow_id is None
    assert by_name.key != cause_of(execution, workflow_name="New name").key


def test_key_is_short_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", cause({"error": "boom"}).key)


# --- properties -----------------------------------------------------------------------------------------

WORDS = st.sampled_from(
    [
        "Unauthorized",
        "token",
        "expired",
        "for",
        "portal",
        "contact",
        "not",
        "found",
        "request",
        "failed",
        "with",
        "invalid",
        "property",
        "value",
        "rate",
        "limit",
        "exceeded",
        "Invoice",
        "is",
        "locked",
        "at",
        "in",
        "Request",
        "to",
        "bad",
        "face",
    ]
)
_HEX = "0123456789abcdef"
_SAFE = st.characters(codec="utf-8", exclude_characters="'\"\n\r“”‘’\x00")
_LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
_TIMES = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)

# Each kind of volatile value, as different runs of one failure would spell it.
SLOTS: dict[str, st.SearchStrategy[str]] = {
    "count": st.integers(0, 10**15).map(str),
    "decimal": st.floats(0, 1e6, allow_nan=False).map(lambda f: f"{f:.2f}"),
    "object_id": st.text(_HEX, min_size=22, max_size=22).map(lambda s: "a1" + s),
    "uuid": st.uuids().map(str),
    "short_hex": st.text(_HEX, min_size=2, max_size=10).map(lambda s: "9f" + s),
    "email": st.tuples(
        st.text("abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=0, max_size=12), _LABEL, _LABEL
    ).map(lambda t: f"x{t[0]}@{t[1]}.{t[2]}com"),
    "url": st.tuples(
        st.lists(_LABEL, min_size=1, max_size=5),
        st.dictionaries(_LABEL, _LABEL, max_size=3),
    ).map(
        lambda t: (
            "https://api.xero.com/"
            + "/".join(t[0])
            + ("?" + "&".join(f"{k}={v}" for k, v in t[1].items()) if t[1] else "")
        )
    ),
    "single_quoted": st.text(_SAFE, max_size=30).map(lambda s: f"'{s}'"),
    "double_quoted": st.text(_SAFE, max_size=30).map(lambda s: f'"{s}"'),
    "iso_time": _TIMES.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    "http_date": _TIMES.map(lambda d: email.utils.format_datetime(d, usegmt=True)),
    "slash_date": _TIMES.map(lambda d: d.strftime("%d/%m/%Y %H:%M")),
}
SEGMENTS = st.lists(
    st.one_of(WORDS, st.sampled_from(sorted(SLOTS)).map(lambda k: "$" + k)), min_size=1, max_size=12
)


@st.composite
def two_spellings(draw: st.DrawFn, segments: list[str] | None = None) -> tuple[str, str]:
    """One failure's wording with each volatile slot filled twice, independently."""
    template = draw(SEGMENTS) if segments is None else segments
    texts: list[list[str]] = [[], []]
    for segment in template:
        for text in texts:
            text.append(draw(SLOTS[segment[1:]]) if segment.startswith("$") else segment)
    return " ".join(texts[0]), " ".join(texts[1])


@settings(max_examples=300, deadline=None)
@given(two_spellings())
def test_volatile_parts_do_not_split_a_cause(pair: tuple[str, str]) -> None:
    first, second = pair
    assert normalise_error(first) == normalise_error(second)
    assert cause({"error": first}).key == cause({"error": second}).key
    assert cause({"error": {"message": first}}).key == cause({"message": second}).key


@settings(max_examples=200, deadline=None)
@given(st.data(), st.lists(WORDS, min_size=1, max_size=8), st.lists(WORDS, min_size=1, max_size=8))
def test_different_wording_is_a_different_cause(data: st.DataObject, a: list[str], b: list[str]) -> None:
    assume(a != b)
    slot = data.draw(st.sampled_from(sorted(SLOTS)))
    first, _ = data.draw(two_spellings([*a, "$" + slot]))
    second, _ = data.draw(two_spellings([*b, "$" + slot]))
    assert cause({"error": first}).key != cause({"error": second}).key


@settings(max_examples=100, deadline=None)
@given(
    two_spellings(),
    st.sampled_from(["node_name", "node_type", "workflow_id", "workflow_name"]),
    st.text(min_size=1, max_size=20),
)
def test_a_different_node_or_workflow_is_a_different_cause(
    pair: tuple[str, str], field: str, other: str
) -> None:
    output = {"error": pair[0]}
    assume(other.strip() and " ".join(other.split()) not in ("Create contact", "hubspot", WF, "Flow"))
    if field in ("node_name", "node_type"):
        base = cause_of(run(output), workflow_id=WF)
        changed = cause_of(run(output, **{field: other}), workflow_id=WF)
    elif field == "workflow_id":
        base = cause_of(run(output), workflow_id=WF)
        changed = cause_of(run(output), workflow_id=other)
    else:
        base = cause_of(run(output), workflow_name="Flow")
        changed = cause_of(run(output), workflow_name=other)
    assert base.key != changed.key


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=3000), two_spellings().map(lambda p: p[0])))
def test_normalise_error_is_idempotent_and_bounded(text: str) -> None:
    once = normalise_error(text)
    assert normalise_error(once) == once
    assert len(once) <= MAX_ERROR_CHARS and "\n" not in once


KEYS = st.one_of(
    st.sampled_from(
        [
            "error",
            "message",
            "error_message",
            "errorMessage",
            "detail",
            "errors",
            "description",
            "Error",
            "body",
        ]
    ),
    st.text(max_size=10),
)
JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=400),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=60,
)


@settings(max_examples=400, deadline=None)
@given(JSON_LIKE, st.text(max_size=400), st.text(max_size=400))
def test_any_output_gives_a_bounded_cause(output: Any, node_name: str, node_type: str) -> None:
    found = cause(copy.deepcopy(output), node_name=node_name, node_type=node_type)
    assert len(found.error) <= MAX_ERROR_CHARS
    assert found.node_name is None or len(found.node_name) <= MAX_NAME_CHARS
    assert found.node_type is None or len(found.node_type) <= MAX_NAME_CHARS
    assert re.fullmatch(r"[0-9a-f]{16}", found.key)
    assert found.error == (error_text(output) or "Errored with no output")


def test_deep_and_huge_outputs_are_cheap() -> None:
    deep: Any = "x"
    for _ in range(500):
        deep = {"a": [deep]}
    assert len(cause(deep).error) <= MAX_ERROR_CHARS
    assert len(cause("[" * 50_000).error) <= MAX_ERROR_CHARS
    assert len(cause({"message": "1 " * 1_000_000}).error) <= MAX_ERROR_CHARS
    assert len(cause({f"k{i}": "v" * 1000 for i in range(10_000)}).error) <= MAX_ERROR_CHARS
