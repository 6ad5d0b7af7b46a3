"""Both documented response generations parse into one Execution model."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.refold.models import (
    TERMINAL_STATUSES,
    Execution,
    ExecutionStatus,
    NodeOutcome,
    node_outcome,
)
from tests.conftest import DATA


def _example(page: str, tab: str) -> str:
    text = (DATA / "refold-api" / page).read_text()
    match = re.search(r"```json " + tab + r"[^\n]*\n(.*?)```", text, re.DOTALL | re.IGNORECASE)
    assert match, f"no {tab} example in {page}"
    return match.group(1)


def test_legacy_example_parses_byte_for_byte() -> None:
    execution = Execution.model_validate_json(_example("get-execution-v1.mdx", "200"))
    assert execution.id == "65410cf6cdf931a12d7ab009"
    assert execution.status == "ERRORED"
    assert execution.is_terminal and execution.has_failed
    assert execution.application is not None and execution.application.name == "Slack"
    assert execution.application.id == "64f6d9f33234d3d6419cfdbc"
    assert execution.workflow is not None and execution.workflow.name == "Post message to a channel"
    assert execution.created_at is not None and execution.created_at.year == 2023
    assert execution.associated_event_id == "6523dfdeffed0fb7e2c3b90e"
    assert execution.nodes == []
    assert execution.completion_percentage is None


def test_current_example_parses_byte_for_byte() -> None:
    execution = Execution.model_validate_json(_example("get-execution-v2.mdx", "200"))
    assert execution.id is None  # the current generation carries no ID; the client fills it in
    assert execution.status == "COMPLETED" and execution.is_terminal and not execution.has_failed
    assert execution.completion_percentage == 100
    assert execution.linked_account_id == "user_12345"
    (node,) = execution.nodes
    assert (node.node_name, node.node_type, node.node_status) == ("Start", "start", "Success")
    assert node.execution_time_ms == 403 and node.attempts_made == 1 and node.is_batch is False
    assert node.latest_output == {
        "message": "Workflow started successfully",
        "node_id": "1",
        "node_type": "start",
        "status": "initialized",
    }
    assert node.outcome is NodeOutcome.OK


def test_unknown_fields_are_ignored_and_unknown_status_preserved() -> None:
    doc = {
        "name": "x",
        "status": "WARMING_UP",
        "brand_new_field": {"a": 1},
        "nodes": [{"node_status": "Pondering", "surprise": True}],
    }
    execution = Execution.model_validate(doc)
    assert execution.status == "WARMING_UP"
    assert execution.known_status is None
    assert not execution.is_terminal
    assert execution.nodes[0].node_status == "Pondering"
    assert execution.nodes[0].outcome is NodeOutcome.UNKNOWN


def test_missing_optional_fields_are_fine() -> None:
    execution = Execution.model_validate({})
    assert execution.status == "UNKNOWN" and execution.nodes == [] and not execution.is_terminal


def test_terminal_set_matches_design() -> None:
    assert {s.value for s in TERMINAL_STATUSES} == {
        "COMPLETED",
        "ERRORED",
        "FAILED",
        "STOPPED",
        "TIMED_OUT",
        "TERMINATED",
        "DUPLICATE",
    }
    for status in ("RUNNING", "QUEUED", "STOPPING"):
        assert not Execution(status=status).is_terminal
    assert Execution(status="completed").known_status is ExecutionStatus.COMPLETED


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("Success", NodeOutcome.OK),
        ("Ready", NodeOutcome.PENDING),
        ("Waiting", NodeOutcome.PENDING),
        ("Errored", NodeOutcome.FAILED),
        ("Rejected", NodeOutcome.FAILED),
        ("Errored_and_Skipped", NodeOutcome.FAILED),
        ("Timed_Out", NodeOutcome.FAILED),
        ("Stopped", NodeOutcome.STOPPED),
        ("Partially Successful", NodeOutcome.PARTIAL),
        ("partially_successful", NodeOutcome.PARTIAL),
        ("Mystery", NodeOutcome.UNKNOWN),
        (None, NodeOutcome.UNKNOWN),
    ],
)
def test_node_outcomes(status: str | None, outcome: NodeOutcome) -> None:
    assert node_outcome(status) is outcome


def test_latest_output_is_kept_raw() -> None:
    raw = {"nested": [1, {"deep": None}], "text": "ünïcødé"}
    execution = Execution.model_validate({"nodes": [{"latest_output": raw}]})
    assert execution.nodes[0].latest_output == raw
    round_trip = Execution.model_validate_json(execution.model_dump_json())
    assert round_trip.nodes[0].latest_output == raw


@given(
    st.dictionaries(
        st.text(max_size=10),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=8,
    )
)
def test_arbitrary_json_objects_parse_or_fail_cleanly(doc: dict) -> None:
    from pydantic import ValidationError

    try:
        execution = Execution.model_validate_json(json.dumps(doc))
    except ValidationError:
        return
    assert isinstance(execution.status, str)
