"""Message shortcut `lookup_execution`: every execution in an alert, answered in its thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from bot.jobs.kinds import MAX_SHORTCUT_CARDS, ShortcutJob, Target
from bot.parse import find_executions
from bot.slack.dispatch import Dispatcher
from bot.slack.payloads import Interaction

SHORTCUT = "lookup_execution"


def register(app: AsyncApp, dispatcher: Dispatcher) -> None:
    @app.shortcut(SHORTCUT)
    async def lookup_from_message(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        found = find_executions(interaction.message)
        dispatcher.submit(
            ShortcutJob(
                origin=interaction.origin,
                reply=interaction.reply_target(in_thread=True),
                interaction=interaction.key,
                targets=[
                    Target(execution_id=f.execution_id, linked_account_id=f.linked_account_id)
                    for f in found[:MAX_SHORTCUT_CARDS]
                ],
                found=len(found),
            )
        )
