"""Typed views of what the bot reads from Slack payloads. Surfaces read these, never `body.get(...)`.

Slack shapes differ by surface: a slash command is a flat form (`team_id`, `channel_id`, `user_id`),
interactions nest them (`team.id`, `channel.id`, `user.id`, `container.*`). One reader for all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from slack_bolt.context.async_context import AsyncBoltContext

from bot.jobs.kinds import Origin, ReplyTarget
from bot.slack.follow_records import derived_follow_id
from bot.usecases.workspace import Workspace


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Interaction:
    team_id: str | None
    enterprise_id: str | None
    org_wide: bool
    user_id: str | None
    channel_id: str | None
    response_url: str | None = field(repr=False)
    trigger_id: str | None
    # The message the interaction is about (a shortcut's alert, a button's card), when Slack sent it.
    message: dict[str, Any]
    message_ts: str | None
    thread_ts: str | None
    is_ephemeral: bool
    text: str | None  # a slash command's text
    action_value: str | None  # the first action's value: a button's, or a menu's chosen option's
    action_block_id: str | None
    action_ts: str | None

    @classmethod
    def read(cls, body: dict[str, Any], context: AsyncBoltContext | None = None) -> Interaction:
        team = _dict(body.get("team"))
        user = _dict(body.get("user"))
        channel = _dict(body.get("channel"))
        container = _dict(body.get("container"))
        message = _dict(body.get("message"))
        actions = body.get("actions") if isinstance(body.get("actions"), list) else []
        action = _dict(actions[0]) if actions else {}
        enterprise = _dict(body.get("enterprise"))
        team_id = (
            (context.team_id if context is not None else None)
            or _str(body.get("team_id"))
            or _str(user.get("team_id"))
            or _str(team.get("id"))
        )
        enterprise_id = (
            (context.enterprise_id if context is not None else None)
            or _str(body.get("enterprise_id"))
            or _str(enterprise.get("id"))
        )
        org_wide = bool(context.is_enterprise_install) if context is not None else False
        return cls(
            team_id=team_id,
            enterprise_id=enterprise_id,
            org_wide=org_wide,
            user_id=_str(body.get("user_id")) or _str(user.get("id")),
            channel_id=_str(body.get("channel_id"))
            or _str(channel.get("id"))
            or _str(container.get("channel_id")),
            response_url=_str(body.get("response_url")),
            trigger_id=_str(body.get("trigger_id")),
            message=message,
            message_ts=_str(message.get("ts")) or _str(container.get("message_ts")),
            thread_ts=_str(message.get("thread_ts")),
            is_ephemeral=bool(container.get("is_ephemeral")),
            text=_str(body.get("text")),
            action_value=_str(action.get("value")) or _str(_dict(action.get("selected_option")).get("value")),
            action_block_id=_str(action.get("block_id")),
            action_ts=_str(action.get("action_ts")) or _str(body.get("action_ts")),
        )

    @property
    def workspace(self) -> Workspace:
        return Workspace(self.team_id, self.enterprise_id)

    @property
    def origin(self) -> Origin:
        return Origin(
            team_id=self.team_id,
            enterprise_id=self.enterprise_id,
            org_wide=self.org_wide,
            user_id=self.user_id,
        )

    def reply_target(self, *, ephemeral: bool = True, in_thread: bool = False) -> ReplyTarget:
        thread = (self.thread_ts or self.message_ts) if in_thread else None
        return ReplyTarget(
            response_url=self.response_url,
            channel_id=self.channel_id,
            user_id=self.user_id,
            thread_ts=thread,
            message_ts=self.message_ts,
            ephemeral=ephemeral,
        )

    @property
    def card_follow_id(self) -> str:
        """The name of a follow of the card this interaction came from: one per message."""
        if self.channel_id and self.message_ts:
            return derived_follow_id(
                "card", self.team_id or self.enterprise_id or "", self.channel_id, self.message_ts
            )
        return derived_follow_id("interaction", self.key)

    @property
    def key(self) -> str:
        """One per interaction: Slack gives every interaction its own trigger_id and response_url."""
        parts = (
            self.enterprise_id,
            self.team_id,
            self.user_id,
            self.trigger_id,
            self.response_url,
            self.action_ts,
        )
        return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()[:32]


def sketch(raw: bytes) -> tuple[str, str]:
    """(kind, claimed team) of a raw Slack request, for a log line about a rejected one.

    The request is unverified: nothing here is trusted, and nothing of it beyond these two words is
    ever logged (bodies carry response_urls and message text).
    """
    text = raw[:65536].decode("utf-8", "replace")
    kind, team = "unknown", "-"
    try:
        if text.lstrip().startswith("{"):
            data = json.loads(text)
            kind = f"event:{_dict(data.get('event')).get('type') or data.get('type') or '?'}"
            team = _str(data.get("team_id")) or "-"
        else:
            form = parse_qs(text)
            if "command" in form:
                kind, team = f"command {form['command'][0][:40]}", (form.get("team_id") or ["-"])[0]
            elif "payload" in form:
                payload = _dict(json.loads(form["payload"][0]))
                kind = str(payload.get("type") or "interaction")
                team = _str(_dict(payload.get("team")).get("id")) or "-"
    except ValueError:
        kind = "unreadable"
    safe = "".join(ch for ch in team[:24] if ch.isalnum()) or "-"
    return "".join(ch for ch in kind[:60] if ch.isprintable()), safe


def _strings(value: Any, limit: int = 100) -> list[str]:
    return [v for v in value if isinstance(v, str)][:limit] if isinstance(value, list) else []


@dataclass(frozen=True)
class EventEnvelope:
    """An Events API delivery's outer fields: its ID (the same on Slack's redeliveries) and kind."""

    event_id: str | None
    kind: str | None

    @classmethod
    def read(cls, body: dict[str, Any]) -> EventEnvelope:
        if body.get("type") != "event_callback":
            return cls(None, None)
        return cls(_str(body.get("event_id")), _str(_dict(body.get("event")).get("type")))


@dataclass(frozen=True)
class SharedLinks:
    """A `link_shared` event: the links, where they were shared, and by whom."""

    event_id: str | None
    urls: list[str]
    channel_id: str | None
    message_ts: str | None
    user_id: str | None
    unfurl_id: str | None  # links still in the message composer
    source: str | None

    @classmethod
    def read(cls, body: dict[str, Any], event: dict[str, Any]) -> SharedLinks:
        raw = event.get("links")
        links: list[Any] = raw if isinstance(raw, list) else []
        return cls(
            event_id=_str(body.get("event_id")),
            urls=[url for url in (_str(_dict(link).get("url")) for link in links) if url],
            channel_id=_str(event.get("channel")),
            message_ts=_str(event.get("message_ts")),
            user_id=_str(event.get("user")),
            unfurl_id=_str(event.get("unfurl_id")),
            source=_str(event.get("source")),
        )


@dataclass(frozen=True)
class HomeOpened:
    """An `app_home_opened` event: who opened which tab."""

    user_id: str | None
    tab: str | None

    @classmethod
    def read(cls, event: dict[str, Any]) -> HomeOpened:
        return cls(_str(event.get("user")), _str(event.get("tab")))


@dataclass(frozen=True)
class RevokedTokens:
    """A `tokens_revoked` event: the bot's token, people's tokens (their user IDs), or both."""

    bot: bool
    users: list[str]

    @classmethod
    def read(cls, event: dict[str, Any]) -> RevokedTokens:
        tokens = _dict(event.get("tokens"))
        return cls(bool(tokens.get("bot")), _strings(tokens.get("oauth")))


@dataclass(frozen=True)
class ModalState:
    """A submitted modal's inputs, by block ID (each block holds one input under `action_id`)."""

    values: dict[str, Any]
    action_id: str

    @classmethod
    def read(cls, view: dict[str, Any], action_id: str) -> ModalState:
        return cls(_dict(_dict(view.get("state")).get("values")), action_id)

    def _element(self, block: str) -> dict[str, Any]:
        return _dict(_dict(self.values.get(block)).get(self.action_id))

    def text(self, block: str) -> str | None:
        """A text input's value (trimmed), or a radio group's chosen option; None when empty."""
        element = self._element(block)
        if element.get("type") == "radio_buttons":
            return _str(_dict(element.get("selected_option")).get("value"))
        value = element.get("value")
        return value.strip() if isinstance(value, str) and value.strip() else None

    def chosen(self, block: str) -> list[str]:
        """The IDs a multi-select holds: people (`selected_users`) or user groups (`selected_options`)."""
        element = self._element(block)
        if isinstance(element.get("selected_users"), list):
            return [u for u in _strings(element["selected_users"]) if u.isalnum()]
        options = element.get("selected_options")
        ids = _strings([_dict(o).get("value") for o in options] if isinstance(options, list) else [])
        return [i for i in ids if i.isalnum()]
