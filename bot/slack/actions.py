"""Buttons on the execution card: Refresh (in place) and Share to channel."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.parse import FoundExecution
from bot.refold.ids import (
    InvalidExecutionId,
    InvalidLinkedAccount,
    normalize_execution_id,
    normalize_linked_account,
)
from bot.render.blocks import REFRESH_ACTION, SHARE_ACTION
from bot.render.text import escape_mrkdwn
from bot.slack.cards import card_of, fetch
from bot.slack.context import Reply, workspace_of
from bot.slack.dispatch import job, make_job, submit
from bot.slack.env import SlackEnv
from bot.workspace import Workspace

NOTE_BLOCK_ID = "refresh_note"
DAMAGED = ":warning: That button no longer carries a valid execution. Run `/execution <execution_id>` again."
MAX_VALUE_CHARS = 2000


def read_button_value(value: Any) -> FoundExecution | None:
    """Buttons carry {"e": id, "a": linked account}; anything else was tampered with or is stale."""
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


def register(app: AsyncApp, env: SlackEnv) -> None:
    for action_id, kind in ((REFRESH_ACTION, "refresh"), (SHARE_ACTION, "share")):
        app.action(action_id)(_button_listener(env, kind))


def _button_listener(env: SlackEnv, kind: str) -> Callable[..., Awaitable[None]]:
    """Ack at once; the lookup behind a button runs as a job, here or in a worker."""

    async def listener(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        work = make_job(
            kind, body, workspace_of(context, body), bool(context.is_enterprise_install), action=action
        )
        env.tasks.spawn(submit(env, work, client), kind)

    return listener


@job("refresh")
async def _refresh_job(
    env: SlackEnv, job_data: dict[str, Any], reply: Reply, client: AsyncWebClient, workspace: Workspace
) -> None:
    await _refresh(env, job_data["body"], job_data["args"]["action"], reply, workspace)


@job("share")
async def _share_job(
    env: SlackEnv, job_data: dict[str, Any], reply: Reply, client: AsyncWebClient, workspace: Workspace
) -> None:
    await _share(env, job_data["body"], job_data["args"]["action"], reply, workspace)


async def _target_or_refuse(action: dict[str, Any], reply: Reply) -> FoundExecution | None:
    target = read_button_value(action.get("value"))
    if target is None:
        await reply.send(response_type="ephemeral", replace_original=False, text=DAMAGED)
    return target


async def _refresh(
    env: SlackEnv, body: dict[str, Any], action: dict[str, Any], reply: Reply, workspace: Workspace
) -> None:
    target = await _target_or_refuse(action, reply)
    if target is None:
        return
    ephemeral = bool((body.get("container") or {}).get("is_ephemeral"))
    outcome = await fetch(env, workspace, target.execution_id, target.linked_account_id)
    if outcome.result is not None:
        card = card_of(env, outcome.result, shareable=ephemeral)
        await reply.send(replace_original=True, text=card.text, blocks=card.blocks)
        return
    # Keep the last good card: re-send it with a note saying why this refresh failed.
    original = body.get("message") or {}
    blocks = [b for b in original.get("blocks") or [] if b.get("block_id") != NOTE_BLOCK_ID]
    if blocks:
        note = {
            "type": "context",
            "block_id": NOTE_BLOCK_ID,
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Refresh failed at {env.clock().strftime('%H:%M:%S')} UTC: "
                    f"{escape_mrkdwn(outcome.error or '')}"[:1900],
                }
            ],
        }
        insert_at = next((i for i, b in enumerate(blocks) if b.get("type") == "actions"), len(blocks))
        blocks.insert(insert_at, note)
        await reply.send(replace_original=True, text=original.get("text") or "Execution", blocks=blocks)
    else:
        # Ephemeral cards come back without their blocks; leave the card alone and say why beside it.
        await reply.send(
            response_type="ephemeral",
            replace_original=False,
            text=f"Refresh failed: {outcome.error}",
        )


async def _share(
    env: SlackEnv, body: dict[str, Any], action: dict[str, Any], reply: Reply, workspace: Workspace
) -> None:
    target = await _target_or_refuse(action, reply)
    if target is None:
        return
    outcome = await fetch(env, workspace, target.execution_id, target.linked_account_id)
    if outcome.result is None:
        await reply.send(response_type="ephemeral", replace_original=False, text=outcome.error)
        return
    card = card_of(env, outcome.result, shareable=False)
    await reply.send(response_type="in_channel", replace_original=False, text=card.text, blocks=card.blocks)
