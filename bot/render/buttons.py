"""Card buttons: their action IDs, and the value each carries, encoded and decoded here only.

A value is `{"e": execution_id, "a": linked_account}`: enough to replay the lookup, never a credential.
Values come back from Slack untrusted, so decoding re-validates everything.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from urllib.parse import quote

from bot.parse import MAX_WORKFLOW_CHARS, SNOOZE_FOR, FoundExecution, SnoozeFor
from bot.refold.ids import (
    InvalidExecutionId,
    InvalidLinkedAccount,
    normalize_execution_id,
    normalize_linked_account,
)

REFRESH_ACTION = "refresh_execution"
SHARE_ACTION = "share_execution"
SHOW_OUTPUT_ACTION = "show_node_output"  # a failing node's button
PICK_OUTPUT_ACTION = "pick_node_output"  # the menu of every node
OPEN_ACTION = "open_in_refold"  # a link button: Slack opens the URL and tells the app it was pressed
FOLLOW_ACTION = "follow_execution"
UNFOLLOW_ACTION = "unfollow_execution"
RERUN_ACTION = "rerun_execution"
STOP_ACTION = "stop_execution"
# On an incident's message and in its thread.
INCIDENT_RERUN_ACTION = "incident_rerun"
INCIDENT_SNOOZE_ACTION = "incident_snooze"  # an overflow menu: its option's value names the hours
INCIDENT_UNSNOOZE_ACTION = "incident_unsnooze"
INCIDENT_RESOLVE_ACTION = "incident_resolve"
# On a failed run's alert card: snooze its workflow or its linked account in the card's channel.
ALERT_SNOOZE_ACTION = "alert_snooze"
SHOW_RUN_ACTION = "show_run_card"  # a run in an incident's thread or a search answer: its card, privately
SEARCH_NEXT_ACTION = "search_next_page"
SNOOZE_HOURS = (1, 4, 24)
INCIDENT_ACTIONS = (
    INCIDENT_RERUN_ACTION,
    INCIDENT_SNOOZE_ACTION,
    INCIDENT_UNSNOOZE_ACTION,
    INCIDENT_RESOLVE_ACTION,
)
CARD_ACTIONS = (
    REFRESH_ACTION,
    SHARE_ACTION,
    SHOW_OUTPUT_ACTION,
    PICK_OUTPUT_ACTION,
    OPEN_ACTION,
    FOLLOW_ACTION,
    UNFOLLOW_ACTION,
    RERUN_ACTION,
    STOP_ACTION,
    SHOW_RUN_ACTION,
    SEARCH_NEXT_ACTION,
    ALERT_SNOOZE_ACTION,
)
MAX_OPTION_VALUE_CHARS = 150  # Slack's bound on an overflow option's value
SnoozeChoice = tuple[Literal["workflow", "account"], str, SnoozeFor]

MAX_VALUE_CHARS = 2000
_FOLLOW_ID = re.compile(r"[0-9a-f]{32}")
_ROUTE_ID = re.compile(r"[0-9a-f]{32}")
_CAUSE = re.compile(r"[0-9a-f]{16,64}")
# A menu option's value holds at most 150 characters, too few for a linked account; the menu's
# block ID (255) carries it instead, after this prefix.
NODE_MENU_BLOCK = "nodes:"
MAX_BLOCK_ID_CHARS = 255


def encode_target(execution_id: str, linked_account_id: str | None, follow_id: str | None = None) -> str:
    """A card button's value; on a followed card it also names the follow, so Refresh and Stop keep it."""
    payload: dict[str, str] = {"e": execution_id}
    if linked_account_id:
        payload["a"] = linked_account_id
    if follow_id:
        payload["f"] = follow_id
    return json.dumps(payload, separators=(",", ":"))


def decode_target(value: Any) -> FoundExecution | None:
    """The execution a button names; None when the value was tampered with or is stale."""
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
        return None
    try:
        data = json.loads(value)
        execution_id = normalize_execution_id(data["e"])
        account = data.get("a")
        account = normalize_linked_account(account) if account is not None else None
    except (ValueError, KeyError, TypeError, AttributeError, InvalidExecutionId, InvalidLinkedAccount):
        return None
    return FoundExecution(execution_id, account)


def decode_follow(value: Any) -> tuple[FoundExecution, str] | None:
    """The execution and the follow a followed card's button names; None when there is none."""
    found = decode_target(value)
    try:
        follow_id = json.loads(value)["f"]
    except (ValueError, KeyError, TypeError):
        return None
    if found is None or not isinstance(follow_id, str) or not _FOLLOW_ID.fullmatch(follow_id):
        return None
    return found, follow_id


def encode_node(execution_id: str, linked_account_id: str | None, index: int) -> str:
    """A failing node's button: the execution, its linked account, and the node's place in the run."""
    payload: dict[str, str | int] = {"e": execution_id, "i": index}
    if linked_account_id:
        payload["a"] = linked_account_id
    return json.dumps(payload, separators=(",", ":"))


def node_menu_block_id(linked_account_id: str | None) -> str | None:
    """The node menu's block ID, or None when the linked account is too long to carry."""
    block_id = NODE_MENU_BLOCK + (linked_account_id or "")
    return block_id if len(block_id) <= MAX_BLOCK_ID_CHARS else None


def encode_node_option(execution_id: str, index: int) -> str:
    return json.dumps({"e": execution_id, "i": index}, separators=(",", ":"))


def decode_node(value: Any, block_id: Any = None) -> tuple[FoundExecution, int] | None:
    """The execution and node index a button or menu option names; None when tampered with."""
    found = decode_target(value)
    try:
        index = json.loads(value)["i"]
    except (ValueError, KeyError, TypeError):
        return None
    if found is None or not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 100_000:
        return None
    if found.linked_account_id is None and isinstance(block_id, str) and block_id.startswith(NODE_MENU_BLOCK):
        account = block_id[len(NODE_MENU_BLOCK) :]
        if account:
            try:
                found = FoundExecution(found.execution_id, normalize_linked_account(account))
            except InvalidLinkedAccount:
                return None
    return found, index


def encode_incident(route_id: str, cause: str, hours: int | None = None) -> str:
    """An incident button's value: its route and cause (and, on a snooze option, for how long)."""
    payload: dict[str, str | int] = {"r": route_id, "c": cause}
    if hours is not None:
        payload["h"] = hours
    return json.dumps(payload, separators=(",", ":"))


def decode_incident(value: Any) -> tuple[str, str, int | None] | None:
    """(route ID, cause, snooze hours) an incident button names; None when tampered with."""
    if not isinstance(value, str) or len(value) > 200:
        return None
    try:
        data = json.loads(value)
        route_id, cause, hours = data["r"], data["c"], data.get("h")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not (isinstance(route_id, str) and _ROUTE_ID.fullmatch(route_id)):
        return None
    if not (isinstance(cause, str) and _CAUSE.fullmatch(cause)):
        return None
    if hours is not None and (isinstance(hours, bool) or hours not in SNOOZE_HOURS):
        return None
    return route_id, cause, hours


def encode_search(query: str, page: int) -> str:
    return json.dumps({"q": query, "p": page}, separators=(",", ":"))


def decode_search(value: Any) -> tuple[str, int] | None:
    """The search a Next page button names (its filters as typed, and the page); None when tampered
    with. The filters are parsed again by whoever uses them."""
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
        return None
    try:
        data = json.loads(value)
        query, page = data["q"], data["p"]
    except (ValueError, KeyError, TypeError):
        return None
    if (
        not isinstance(query, str)
        or not isinstance(page, int)
        or isinstance(page, bool)
        or not 1 <= page <= 1000
    ):
        return None
    return query, page


def dashboard_link(template: str, execution_id: str) -> str:
    return template.replace("{execution_id}", quote(execution_id, safe=""))


def encode_alert_snooze(kind: Literal["workflow", "account"], value: str, length: SnoozeFor) -> str | None:
    """An alert card's snooze option; None when what it names does not fit in an option's value."""
    encoded = json.dumps({"k": kind[0], "v": value, "f": length}, separators=(",", ":"), ensure_ascii=False)
    return encoded if len(encoded) <= MAX_OPTION_VALUE_CHARS else None


def decode_alert_snooze(value: Any) -> SnoozeChoice | None:
    """What a snooze option asks for, re-validated as the command's parser would."""
    try:
        payload = json.loads(value) if isinstance(value, str) and len(value) <= MAX_VALUE_CHARS else None
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    kind, what, length = payload.get("k"), payload.get("v"), SNOOZE_FOR.get(str(payload.get("f")))
    if not isinstance(what, str) or length is None:
        return None
    if kind == "a":
        try:
            return "account", normalize_linked_account(what), length
        except InvalidLinkedAccount:
            return None
    if kind == "w" and what.strip() and len(what) <= MAX_WORKFLOW_CHARS and all(ord(ch) >= 32 for ch in what):
        return "workflow", what, length
    return None
