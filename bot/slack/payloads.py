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
