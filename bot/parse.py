"""Execution IDs and linked accounts out of slash-command text and Slack message payloads. Pure."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

from bot.refold.ids import (
    InvalidExecutionId,
    InvalidLinkedAccount,
    normalize_execution_id,
    normalize_linked_account,
)

# --- slash command ----------------------------------------------------------


@dataclass(frozen=True)
class LookupCommand:
    execution_id: str
    linked_account_id: str | None = None
    follow: bool = False  # `/execution <id> [account] follow`


Verb = Literal["help", "status", "connect", "disconnect", "following", "incidents"]
AlertAction = Literal["on", "off", "list", "help", "snooze", "unsnooze"]
SnoozeFor = Literal["1h", "4h", "24h", "until-success"]
SNOOZE_FOR: dict[str, SnoozeFor] = {choice: choice for choice in get_args(SnoozeFor)}


@dataclass(frozen=True)
class VerbCommand:
    verb: Verb


@dataclass(frozen=True)
class AlertsCommand:
    """`/execution alerts on [errored|completed|all] [env:…] [workflow:…]`, `off`, `list`."""

    action: AlertAction
    events: str = "errored"
    environment: str | None = None
    workflow: str | None = None
    # snooze / unsnooze: what (a workflow or a linked account), and for how long
    snooze_kind: Literal["workflow", "account"] | None = None
    snooze_value: str | None = None
    snooze_for: SnoozeFor = "1h"


SearchStatus = Literal["errored", "running", "completed", "stopped", "timed_out"]
SearchSource = Literal["event", "schedule", "api"]
SEARCH_STATUSES: dict[str, SearchStatus] = {status: status for status in get_args(SearchStatus)}
SEARCH_SOURCES: dict[str, SearchSource] = {source: source for source in get_args(SearchSource)}
SEARCH_KEYS = ("account", "status", "workflow", "since", "source")
SINCE_UNITS = {"m": 60, "h": 3600, "d": 86400}
MAX_SINCE_SECONDS = 90 * 86400


@dataclass(frozen=True)
class SearchCommand:
    """`/execution search [account:…] [status:…] [workflow:…] [since:…] [source:…]`."""

    account: str | None = None
    status: SearchStatus | None = None
    workflow: str | None = None
    since: str | None = None  # as typed: 30m, 2h, 1d, 7d
    source: SearchSource | None = None

    def as_text(self) -> str:
        """The filters as they would be typed: what a Next page button carries and parses again."""
        parts = [
            f"{key}:{value}"
            for key, value in (
                ("account", self.account),
                ("status", self.status),
                ("since", self.since),
                ("source", self.source),
                ("workflow", self.workflow),  # last: it may hold spaces
            )
            if value is not None
        ]
        return " ".join(parts)

    @property
    def since_seconds(self) -> int | None:
        if self.since is None:
            return None
        return int(self.since[:-1]) * SINCE_UNITS[self.since[-1]]


@dataclass(frozen=True)
class InvalidCommand:
    reason: str


DigestAction = Literal["on", "off", "show"]
DigestQuiet = Literal["post", "skip"]
DIGEST_ACTIONS: dict[str, DigestAction] = {action: action for action in get_args(DigestAction)}
DIGEST_QUIET: dict[str, DigestQuiet] = {choice: choice for choice in get_args(DigestQuiet)}
_CLOCK_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True)
class DigestCommand:
    """`/execution digest on [at 09:00] [tz:Europe/Berlin] [quiet:skip]`, `off`, or on its own."""

    action: DigestAction
    at: str | None = None  # HH:MM; None: the default
    zone: str | None = None  # an IANA zone; None: the person's own
    quiet: DigestQuiet = "post"


Command = LookupCommand | VerbCommand | AlertsCommand | SearchCommand | DigestCommand | InvalidCommand

ALERTS_WORD = "alerts"
SEARCH_WORD = "search"
DIGEST_WORD = "digest"
ALERT_EVENTS = frozenset({"errored", "completed", "all"})
ENVIRONMENTS = frozenset({"production", "test"})
MAX_WORKFLOW_CHARS = 200

VERBS: dict[str, Verb] = {verb: verb for verb in get_args(Verb)}
ALERT_ACTIONS: dict[str, AlertAction] = {action: action for action in get_args(AlertAction)}
FOLLOW_WORD = "follow"
_SLACK_LINK = re.compile(r"<(?:mailto:|tel:|https?://)?([^<>|]*)(?:\|([^<>]*))?>")
_QUOTES = "`'\"“”‘’"


def unwrap_slack_formatting(text: str) -> str:
    """`<mailto:a@b.com|a@b.com>` -> `a@b.com`; `<https://x|label>` -> `label`."""

    def replace(match: re.Match[str]) -> str:
        return match.group(2) if match.group(2) else match.group(1)

    return _SLACK_LINK.sub(replace, text)


def parse_command(text: str | None) -> Command:
    words = unwrap_slack_formatting(text or "").split()
    words = [w.strip(_QUOTES) for w in words]
    words = [w for w in words if w]
    if not words:
        return VerbCommand("help")
    first = words[0].lower()
    if first == SEARCH_WORD:
        return parse_search(unwrap_slack_formatting(text or "").strip()[len(words[0]) :])
    if first == DIGEST_WORD:
        return parse_digest(words[1:])
    if first == ALERTS_WORD:
        return parse_alerts(unwrap_slack_formatting(text or "").strip()[len(words[0]) :])
    verb = VERBS.get(first)
    if verb is not None:
        if len(words) > 1:
            return InvalidCommand(f"`{first}` takes no arguments.")
        return VerbCommand(verb)
    follow = len(words) > 1 and words[-1].lower() == FOLLOW_WORD
    if follow:
        words = words[:-1]
    if len(words) > 2:
        return InvalidCommand("Too many words: use `/execution <execution_id> [linked_account_id] [follow]`.")
    try:
        execution_id = normalize_execution_id(words[0])
    except InvalidExecutionId as exc:
        return InvalidCommand(f"{exc}.")
    account = None
    if len(words) == 2:
        try:
            account = normalize_linked_account(words[1])
        except InvalidLinkedAccount as exc:
            return InvalidCommand(f"That linked account can't be used: {exc}.")
    return LookupCommand(execution_id, account, follow)


def parse_alerts(rest: str) -> AlertsCommand | InvalidCommand:
    """What follows `alerts`. `workflow:` takes the rest of the text, so names may hold spaces."""
    at = rest.lower().find("workflow:")
    head, workflow_text = (rest, "") if at < 0 else (rest[:at], rest[at + len("workflow:") :])
    words = [w.strip(_QUOTES) for w in head.split()]
    words = [w for w in words if w]
    word = words[0].lower() if words else "help"
    action = ALERT_ACTIONS.get(word)
    if action is None:
        return InvalidCommand(
            f"`alerts {word[:20]}` is not a choice: use `on`, `off`, `list`, `snooze` or `unsnooze`."
        )
    if action in ("snooze", "unsnooze"):
        return _parse_snooze(action, rest.strip()[len(words[0]) :])
    if action != "on":
        if len(words) > 1 or workflow_text:
            return InvalidCommand(f"`alerts {action}` takes no filters.")
        return AlertsCommand(action)
    events, environment = "errored", None
    for word in words[1:]:
        lowered = word.lower()
        if lowered in ALERT_EVENTS:
            events = lowered
        elif lowered.startswith(("env:", "environment:")):
            environment = lowered.split(":", 1)[1]
            if environment not in ENVIRONMENTS:
                return InvalidCommand("`env:` takes `production` or `test`.")
        else:
            return InvalidCommand(
                f"`{word[:40]}` is not a filter: use `errored`, `completed` or `all`, "
                "`env:production` or `env:test`, and `workflow:<name or id>` last."
            )
    workflow = None
    if at >= 0:
        workflow = " ".join(workflow_text.split()).strip(_QUOTES).strip()
        if not workflow:
            return InvalidCommand("`workflow:` needs a workflow's name or ID after it.")
        if len(workflow) > MAX_WORKFLOW_CHARS or any(ord(ch) < 32 for ch in workflow):
            return InvalidCommand(f"That workflow name is longer than {MAX_WORKFLOW_CHARS} characters.")
    return AlertsCommand("on", events, environment, workflow)


def parse_digest(words: list[str]) -> DigestCommand | InvalidCommand:
    """What follows `digest`: `on` with its choices in any order, `off`, or nothing."""
    action = DIGEST_ACTIONS.get(words[0].lower()) if words else "show"
    if action is None or (action == "show" and words):
        return InvalidCommand(f"`digest {words[0][:20]}` is not a choice: use `digest on` or `digest off`.")
    if action != "on":
        if len(words) > 1:
            return InvalidCommand(f"`digest {action}` takes nothing after it.")
        return DigestCommand(action)
    at: str | None = None
    zone: str | None = None
    quiet: DigestQuiet = "post"
    rest = iter(words[1:])
    for word in rest:
        lowered = word.lower()
        if lowered == "at":
            clock = next(rest, "")
            matched = _CLOCK_TIME.fullmatch(clock)
            if matched is None:
                return InvalidCommand(
                    f"`at {clock[:20]}` is not a time I can read: use 24-hour `HH:MM`, like `at 09:00`."
                )
            at = f"{int(matched.group(1)):02d}:{matched.group(2)}"
        elif lowered.startswith("tz:"):
            zone = _zone_name(word[3:])
            if zone is None:
                return InvalidCommand(
                    f"`{word[:60]}` is not a time zone I know: use a name like `tz:Europe/Berlin`, "
                    "`tz:America/New_York` or `tz:UTC`."
                )
        elif lowered.startswith("quiet:"):
            chosen = DIGEST_QUIET.get(lowered[len("quiet:") :])
            if chosen is None:
                return InvalidCommand(f"`{word[:30]}` is not a choice: use `quiet:skip` or `quiet:post`.")
            quiet = chosen
        else:
            return InvalidCommand(
                f"I could not read `{word[:40]}`: use `digest on [at 09:00] [tz:Europe/Berlin] [quiet:skip]`."
            )
    return DigestCommand("on", at, zone, quiet)


def _zone_name(name: str) -> str | None:
    """The IANA zone as spelled in the database (`europe/berlin` is `Europe/Berlin`), or None."""
    if not name or len(name) > 64 or not all(ch.isalnum() or ch in "/_+-" for ch in name):
        return None
    return _zones_by_folded_name().get(name.casefold())


@functools.cache
def _zones_by_folded_name() -> dict[str, str]:
    # Reading the zone database's names walks its files: once a process.
    return {known.casefold(): known for known in zoneinfo.available_timezones()}


_SEARCH_KEY = re.compile(r"(?<![^\s])(" + "|".join(SEARCH_KEYS) + r"):", re.IGNORECASE)
_SINCE = re.compile(r"([1-9][0-9]{0,3})([mhd])")


def parse_search(rest: str) -> SearchCommand | InvalidCommand:
    """What follows `search`: `key:value` filters in any order. A workflow's name may hold spaces
    (it runs to the next filter); every other value is one word."""
    found = list(_SEARCH_KEY.finditer(rest))
    before = rest[: found[0].start()] if found else rest
    if before.strip():
        return InvalidCommand(f"I could not read `{before.strip()[:40]}`: each filter is `name:value`.")
    values: dict[str, str] = {}
    for at, match in enumerate(found):
        key = match.group(1).lower()
        end = found[at + 1].start() if at + 1 < len(found) else len(rest)
        value = " ".join(rest[match.end() : end].split()).strip(_QUOTES).strip()
        if key in values:
            return InvalidCommand(f"`{key}:` is given twice.")
        if not value:
            return InvalidCommand(f"`{key}:` needs a value after it.")
        if key != "workflow" and " " in value:
            extra = value.split(" ", 1)[1]
            return InvalidCommand(f"I could not read `{extra[:40]}` after `{key}:`.")
        values[key] = value
    return _search_command(values)


def _search_command(values: dict[str, str]) -> SearchCommand | InvalidCommand:
    account = None
    if "account" in values:
        try:
            account = normalize_linked_account(values["account"])
        except InvalidLinkedAccount as exc:
            return InvalidCommand(f"`account:{values['account'][:40]}` can't be used: {exc}.")
    status = SEARCH_STATUSES.get(values.get("status", "").lower()) if "status" in values else None
    if "status" in values and status is None:
        return InvalidCommand(
            f"`status:{values['status'][:30]}` is not a status: use errored, running, completed, stopped or "
            "timed_out."
        )
    source = SEARCH_SOURCES.get(values.get("source", "").lower()) if "source" in values else None
    if "source" in values and source is None:
        return InvalidCommand(
            f"`source:{values['source'][:30]}` is not a source: use event, schedule or api."
        )
    since = values.get("since", "").lower() or None
    if since is not None:
        matched = _SINCE.fullmatch(since)
        if matched is None or int(matched.group(1)) * SINCE_UNITS[matched.group(2)] > MAX_SINCE_SECONDS:
            return InvalidCommand(
                f"`since:{values['since'][:30]}` is not a time I can read: use minutes, hours or days, "
                "like `30m`, `2h` or `7d` (at most 90 days)."
            )
    workflow = values.get("workflow")
    if workflow is not None and (len(workflow) > MAX_WORKFLOW_CHARS or any(ord(ch) < 32 for ch in workflow)):
        return InvalidCommand(f"That workflow name is longer than {MAX_WORKFLOW_CHARS} characters.")
    return SearchCommand(account=account, status=status, workflow=workflow, since=since, source=source)


_SNOOZE = re.compile(r"\s*(workflow|account):\s*(.+?)(?:\s+for\s+(\S+))?\s*", re.IGNORECASE | re.DOTALL)


def _parse_snooze(action: AlertAction, rest: str) -> AlertsCommand | InvalidCommand:
    """`snooze workflow:<name or id>|account:<linked account> [for 1h|4h|24h|until-success]`."""
    what = "workflow:<name or id>` or `account:<linked account>"
    matched = _SNOOZE.fullmatch(rest)
    if matched is None:
        return InvalidCommand(f"`alerts {action}` needs `{what}` after it.")
    kind: Literal["workflow", "account"] = "workflow" if matched.group(1).lower() == "workflow" else "account"
    value = " ".join(matched.group(2).split()).strip(_QUOTES).strip()
    if not value:
        return InvalidCommand(f"`{kind}:` needs a value after it.")
    if kind == "account":
        try:
            value = normalize_linked_account(value)
        except InvalidLinkedAccount as exc:
            return InvalidCommand(f"That linked account can't be used: {exc}.")
    elif len(value) > MAX_WORKFLOW_CHARS or any(ord(ch) < 32 for ch in value):
        return InvalidCommand(f"That workflow name is longer than {MAX_WORKFLOW_CHARS} characters.")
    length = matched.group(3)
    if length is not None and action == "unsnooze":
        return InvalidCommand("`alerts unsnooze` takes no `for`.")
    chosen = SNOOZE_FOR.get((length or "1h").lower())
    if chosen is None:
        return InvalidCommand(
            f"`for {length[:20] if length else ''}` is not a choice: use `1h`, `4h`, `24h` or `until-success`."
        )
    return AlertsCommand(action, snooze_kind=kind, snooze_value=value, snooze_for=chosen)


# --- message shortcut -------------------------------------------------------

_HEX_ID = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{24}(?![0-9A-Za-z])")
_LABEL_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_ ]{0,30}?)[\"']?\s*[:=]\s*[\"'`*_]*\s*$")
# Other 24-hex Mongo IDs travel in the same alerts; their labels say they are not executions.
_NOT_EXECUTION_LABELS = frozenset(
    {
        "workflow_id",
        "workflow id",
        "org_id",
        "org id",
        "config_id",
        "config id",
        "associated_event_id",
        "event_id",
        "event id",
        "application_id",
        "app_id",
        "template_id",
        "node_id",
        "user_id",
    }
)
_PATH_LABEL = re.compile(r"/([A-Za-z_-]{2,30})/$")
_NOT_EXECUTION_PATHS = frozenset(
    {"workflow", "org", "config", "event", "app", "application", "template", "node", "user", "linked-account"}
)
# Attachment fields that hold a link rather than text.
_ATTACHMENT_LINKS = ("title_link", "from_url", "original_url", "author_link")
_LINKED_ACCOUNT = re.compile(
    r"linked[ _-]?account(?:[ _-]?id)?\s*[\"'`*_]*\s*[:=]\s*[\"'`*_]*\s*([^\s\"'`,;|<>*]+)",
    re.IGNORECASE,
)
# What scanning one message may cost: huge or deeply nested payloads are read in part, never in full.
MAX_SCAN_CHARS = 200_000
MAX_BLOCK_DEPTH = 12


@dataclass(frozen=True)
class FoundExecution:
    execution_id: str
    linked_account_id: str | None


def message_texts(message: dict[str, Any]) -> list[str]:
    """Every human-visible text in a message, in reading order: text, attachments, blocks."""
    texts: list[str] = []
    if isinstance(message.get("text"), str):
        texts.append(message["text"])
    for attachment in _as_list(message.get("attachments")):
        if not isinstance(attachment, dict):
            continue
        for key in ("pretext", "title", "text", "fallback", "footer", *_ATTACHMENT_LINKS):
            if isinstance(attachment.get(key), str):
                texts.append(attachment[key])
        for field in _as_list(attachment.get("fields")):
            if isinstance(field, dict):
                texts.append(f"{field.get('title', '')}: {field.get('value', '')}")
        for action in _as_list(attachment.get("actions")):
            if isinstance(action, dict) and isinstance(action.get("url"), str):
                texts.append(action["url"])
        texts.extend(_block_texts(attachment.get("blocks"), 0))
    texts.extend(_block_texts(message.get("blocks"), 0))
    return texts


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _block_texts(blocks: Any, depth: int) -> Iterator[str]:
    if depth > MAX_BLOCK_DEPTH:
        return
    for block in _as_list(blocks):
        if not isinstance(block, dict):
            continue
        text = block.get("text")
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            yield text["text"]
        elif isinstance(text, str):
            yield text
        for field in _as_list(block.get("fields")):
            if isinstance(field, dict) and isinstance(field.get("text"), str):
                yield field["text"]
        # A button's link (a section's accessory, or in an actions block) often names the run.
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and isinstance(accessory.get("url"), str):
            yield accessory["url"]
        if block.get("type") == "button" and isinstance(block.get("url"), str):
            yield block["url"]
        elements = block.get("elements")
        if isinstance(elements, list):
            # rich_text nests sections/lists/quotes of inline elements; join a level into one line.
            inline_parts = [
                _inline_text(e)
                for e in elements
                if isinstance(e, dict) and e.get("type") in {"text", "link", "mrkdwn", "plain_text"}
            ]
            if any(inline_parts):
                yield "".join(inline_parts)
            nested = [e for e in elements if isinstance(e, dict) and e.get("type") not in {"text", "link"}]
            yield from _block_texts(nested, depth + 1)


def _inline_text(element: dict[str, Any]) -> str:
    text, url = element.get("text"), element.get("url")
    text = text if isinstance(text, str) else ""
    url = url if isinstance(url, str) else ""
    # A link that shows a label hides its URL, which is where an alert puts the execution ID.
    return f"{text} ({url})" if text and url else text or url


def find_executions(message: dict[str, Any]) -> list[FoundExecution]:
    """Execution IDs in reading order, deduplicated, each with the linked account written near it."""
    budget = MAX_SCAN_CHARS
    found: dict[str, str | None] = {}
    message_account: str | None = None
    for raw in message_texts(message):
        if budget <= 0:
            break
        text = _with_link_targets(raw[:budget])
        budget -= len(raw)
        accounts = [(m.start(), m.group(1)) for m in _LINKED_ACCOUNT.finditer(text)]
        accounts = [(pos, acc) for pos, acc in accounts if _usable_account(acc)]
        if accounts and message_account is None:
            message_account = accounts[0][1]
        for match in _HEX_ID.finditer(text):
            if _labelled_as_other_id(text, match.start()):
                continue
            execution_id = match.group(0).lower()
            if execution_id in found:
                continue
            nearest = min(accounts, key=lambda a: abs(a[0] - match.start()), default=None)
            found[execution_id] = nearest[1] if nearest else None
    return [FoundExecution(eid, account or message_account) for eid, account in found.items()]


def _usable_account(account: str) -> bool:
    try:
        normalize_linked_account(account)
    except InvalidLinkedAccount:
        return False
    return True


def _with_link_targets(text: str) -> str:
    """Like unwrap_slack_formatting, but `<https://x|label>` keeps its URL too: `label (https://x)`."""

    def replace(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if not label or label == target:
            return label or target
        return f"{label} ({target})"

    return _SLACK_LINK.sub(replace, text)


def _labelled_as_other_id(text: str, start: int) -> bool:
    before = text[max(0, start - 40) : start]
    label = _LABEL_BEFORE.search(before)
    if label is not None and label.group(1).strip().lower() in _NOT_EXECUTION_LABELS:
        return True
    # In a URL path the segment before an ID says what it is: `/workflows/<id>/executions/<id>`.
    segment = _PATH_LABEL.search(before)
    return segment is not None and segment.group(1).lower().rstrip("s") in _NOT_EXECUTION_PATHS
