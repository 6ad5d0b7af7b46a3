"""Buttons on the execution card: Refresh (in place) and Share to channel."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.kinds import RefreshJob, ShareJob, ShownCard, Target
from bot.render import messages
from bot.render.buttons import REFRESH_ACTION, SHARE_ACTION, decode_target
from bot.slack.dispatch import Dispatcher
from bot.slack.payloads import Interaction
from bot.slack.responder import Responder


def register(app: AsyncApp, dispatcher: Dispatcher, responder: Responder) -> None:
    @app.action(REFRESH_ACTION)
    async def refresh(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        target = _target_or_refuse(interaction, client, responder)
        if target is None:
            return
        message = interaction.message
        blocks = message.get("blocks")
        shown = (
            ShownCard(text=str(message.get("text") or ""), blocks=blocks)
            if isinstance(blocks, list) and blocks
            else None
        )
        dispatcher.submit(
            RefreshJob(
                origin=interaction.origin,
                reply=interaction.reply_target(ephemeral=interaction.is_ephemeral),
                interaction=interaction.key,
                target=target,
                shown=shown,
            )
        )

    @app.action(SHARE_ACTION)
    async def share(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        target = _target_or_refuse(interaction, client, responder)
        if target is None:
            return
        dispatcher.submit(
            ShareJob(
                origin=interaction.origin,
                reply=interaction.reply_target(),
                interaction=interaction.key,
                target=target,
            )
        )


def _target_or_refuse(
    interaction: Interaction, client: AsyncWebClient, responder: Responder
) -> Target | None:
    found = decode_target(interaction.action_value)
    if found is None:
        reply = responder.to(client, interaction.reply_target())
        responder.later(
            reply.send(response_type="ephemeral", replace_original=False, text=messages.DAMAGED_BUTTON),
            "damaged",
        )
        return None
    return Target(execution_id=found.execution_id, linked_account_id=found.linked_account_id)
