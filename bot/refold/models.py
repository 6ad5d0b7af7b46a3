"""One Execution model for both response generations of `GET /api/v2/public/execution/{id}`.

The legacy shape (`_id`, `createdAt`, `associated_*`) has no nodes; the current shape has nodes and
`completion_percentage` but no ID. Both parse into the same fields; unknown fields are ignored.
Status strings are kept exactly as Refold sent them so that new statuses still display.
"""

from __future__ import annotations

import functools
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator


class ExecutionStatus(StrEnum):
    COMPLETED = "COMPLETED"
    ERRORED = "ERRORED"
    FAILED = "FAILED"
    RUNNING = "RUNNING"
    QUEUED = "QUEUED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    TIMED_OUT = "TIMED_OUT"
    TERMINATED = "TERMINATED"
    DUPLICATE = "DUPLICATE"


TERMINAL_STATUSES = frozenset(
    {
        ExecutionStatus.COMPLETED,
        ExecutionStatus.ERRORED,
        ExecutionStatus.FAILED,
        ExecutionStatus.STOPPED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.TERMINATED,
        ExecutionStatus.DUPLICATE,
    }
)
FAILED_STATUSES = frozenset(
    {ExecutionStatus.ERRORED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.TERMINATED}
)

# What the card offers: Rerun where a run ended without finishing its work, Stop where one is going.
RERUNNABLE_STATUSES = frozenset(
    {ExecutionStatus.ERRORED, ExecutionStatus.FAILED, ExecutionStatus.STOPPED, ExecutionStatus.TIMED_OUT}
)
STOPPABLE_STATUSES = frozenset({ExecutionStatus.RUNNING, ExecutionStatus.QUEUED})


class NodeStatus(StrEnum):
    SUCCESS = "Success"
    READY = "Ready"
    ERRORED = "Errored"
    WAITING = "Waiting"
    STOPPED = "Stopped"
    REJECTED = "Rejected"
    ERRORED_AND_SKIPPED = "Errored_and_Skipped"
    TIMED_OUT = "Timed_Out"
    PARTIALLY_SUCCESSFUL = "Partially Successful"


class NodeOutcome(StrEnum):
    """The coarse bucket a node status falls in, for tallies and ordering."""

    OK = "ok"
    FAILED = "failed"
    PENDING = "pending"
    STOPPED = "stopped"
    PARTIAL = "partial"
    UNKNOWN = "unknown"


_NODE_OUTCOMES = {
    NodeStatus.SUCCESS: NodeOutcome.OK,
    NodeStatus.READY: NodeOutcome.PENDING,
    NodeStatus.WAITING: NodeOutcome.PENDING,
    NodeStatus.ERRORED: NodeOutcome.FAILED,
    NodeStatus.REJECTED: NodeOutcome.FAILED,
    NodeStatus.ERRORED_AND_SKIPPED: NodeOutcome.FAILED,
    NodeStatus.TIMED_OUT: NodeOutcome.FAILED,
    NodeStatus.STOPPED: NodeOutcome.STOPPED,
    NodeStatus.PARTIALLY_SUCCESSFUL: NodeOutcome.PARTIAL,
}


def _canonical(value: str) -> str:
    return value.strip().upper().replace(" ", "_").replace("-", "_")


_NODE_BY_CANONICAL = {_canonical(s.value): s for s in NodeStatus}


@functools.lru_cache(maxsize=512)
def node_outcome(status: str | None) -> NodeOutcome:
    # Cached: a run has thousands of nodes but only a handful of distinct status strings.
    known = _NODE_BY_CANONICAL.get(_canonical(status or ""))
    return _NODE_OUTCOMES[known] if known else NodeOutcome.UNKNOWN


def execution_status(status: str | None) -> ExecutionStatus | None:
    """The known status this string denotes, tolerating case and spacing, else None."""
    try:
        return ExecutionStatus(_canonical(status or ""))
    except ValueError:
        return None


class Ref(BaseModel):
    """An associated application or workflow (legacy shape)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str | None = Field(default=None, validation_alias=AliasChoices("_id", "_id_", "id"))
    name: str | None = None
    icon: str | None = None


def _coerce_text(value: Any) -> Any:
    # Refold IDs are sometimes numbers in the wild; show them rather than reject the whole document.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class Node(BaseModel):
    model_config = ConfigDict(extra="ignore")

    node_id: str | None = None
    node_name: str | None = None
    node_type: str | None = None
    node_status: str | None = None
    is_batch: bool | None = None
    attempts_made: int | None = None
    execution_time_ms: int | None = Field(
        default=None, validation_alias=AliasChoices("execution_time", "execution_time_ms")
    )
    latest_output: Any = None

    @field_validator("node_id", "node_name", "node_type", "node_status", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _coerce_text(value)

    @field_validator("execution_time_ms", "attempts_made", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        if isinstance(value, float):
            return round(value)
        return value

    @property
    def outcome(self) -> NodeOutcome:
        return node_outcome(self.node_status)


class Execution(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str | None = Field(default=None, validation_alias=AliasChoices("_id", "id", "execution_id"))
    name: str | None = None
    status: str = "UNKNOWN"
    environment: str | None = None
    created_at: datetime | None = Field(
        default=None, validation_alias=AliasChoices("createdAt", "created_at")
    )
    updated_at: datetime | None = Field(
        default=None, validation_alias=AliasChoices("updatedAt", "updated_at")
    )
    completion_percentage: float | None = None
    config_id: str | None = None
    linked_account_id: str | None = None
    org_id: str | None = None
    associated_event_id: str | None = None
    application: Ref | None = Field(
        default=None, validation_alias=AliasChoices("associated_application", "application")
    )
    workflow: Ref | None = Field(
        default=None, validation_alias=AliasChoices("associated_workflow", "workflow")
    )
    workflow_id: str | None = None  # the current shape names its workflow by ID
    nodes: list[Node] = Field(default_factory=list)

    @field_validator(
        "id",
        "name",
        "environment",
        "config_id",
        "linked_account_id",
        "org_id",
        "associated_event_id",
        "workflow_id",
        mode="before",
    )
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _coerce_text(value)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        if value is None:
            return "UNKNOWN"
        return _coerce_text(value)

    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def known_status(self) -> ExecutionStatus | None:
        return execution_status(self.status)

    @property
    def is_terminal(self) -> bool:
        return self.known_status in TERMINAL_STATUSES

    @property
    def can_rerun(self) -> bool:
        return self.known_status in RERUNNABLE_STATUSES

    @property
    def can_stop(self) -> bool:
        return self.known_status in STOPPABLE_STATUSES

    @property
    def has_failed(self) -> bool:
        return self.known_status in FAILED_STATUSES

    @property
    def total_node_time_ms(self) -> int | None:
        times = [n.execution_time_ms for n in self.nodes if n.execution_time_ms is not None]
        return sum(times) if times else None

    @property
    def failing_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.outcome is NodeOutcome.FAILED]
