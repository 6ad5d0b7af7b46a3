"""Block Kit's pieces, built in one place: sections, context lines, headers, buttons and their
confirm dialogs, each cut to Slack's published size limits. Pure."""

from __future__ import annotations

from typing import Any

from bot.render.text import clip

# Slack refuses a section's text over 3,000 characters and a context element's over 2,000.
SECTION_CHARS = 3000
CONTEXT_CHARS = 1900
DIVIDER: dict[str, Any] = {"type": "divider"}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, 150), "emoji": True}}


def section(
    text: str, *, accessory: dict[str, Any] | None = None, block_id: str | None = None
) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_CHARS)}}
    if accessory is not None:
        block["accessory"] = accessory
    if block_id is not None:
        block["block_id"] = block_id
    return block


def context(*texts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(t, CONTEXT_CHARS)} for t in texts],
    }


def actions(*elements: dict[str, Any], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(elements)}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": clip(text, 75), "emoji": True},
        "value": value,
    }
    if style is not None:
        made["style"] = style
    return made


def confirmed(made: dict[str, Any], title: str, text: str, confirm: str, deny: str) -> dict[str, Any]:
    """Slack asks before it sends the click: the dialog is Block Kit's own `confirm`."""
    made["confirm"] = {
        "title": {"type": "plain_text", "text": title[:100]},
        "text": {"type": "mrkdwn", "text": clip(text, 300)},
        "confirm": {"type": "plain_text", "text": confirm[:30]},
        "deny": {"type": "plain_text", "text": deny[:30]},
    }
    if made.get("style") == "danger":
        made["confirm"]["style"] = "danger"
    return made


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": clip(text, 75)}, "value": value[:150]}
