"""Buttons on the execution card: Refresh (in place) and Share to channel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.kinds import RefreshJob, ShareJob, ShownCard, Target
from bot.render import messages
from bot.render.buttons import OPEN_ACTION, REFRESH_ACTION, SHARE_ACTION, decode_target
from bot.slack.dispatch import Dispatcher
from bot.slack.payloads import Interaction
from bot.slack.responder import Responder


def register(app: AsyncApp, dispatcher: Dispatcher, responder: Responder) -> None:
    _button(app, REFRESH_ACTION, dispatcher, responder, _refresh_job)
    _button(app, SHARE_ACTION, dispatcher, responder, _share_job)

    @app.action(OPEN_ACTION)
    async def opened_in_refold(ack: AsyncAck) -> None:
        # A link button: Slack opens the page itself and only tells the app, which has nothing to add.
        await ack()


def _refresh_job(interaction: Interaction, target: Target) -> RefreshJob:
    message = interaction.message
    blocks = message.get("blocks")
    # Kept so that a failed refresh can leave the last good card in place, with a note.
    shown = (
        ShownCard(text=str(message.get("text") or ""), blocks=blocks)
        if isinstance(blocks, list) and blocks
        else None
    )
    return RefreshJob(
        origin=interaction.origin,
        reply=interaction.reply_target(ephemeral=interaction.is_ephemeral),
        interaction=interaction.key,
        target=target,
        shown=shown,
    )


def _share_job(interaction: Interaction, target: Target) -> ShareJob:
    return ShareJob(
        origin=interaction.origin,
        reply=interaction.reply_target(),
        interaction=interaction.key,
        target=target,
    )


def _button(
    app: AsyncApp,
    action_id: str,
    dispatcher: Dispatcher,
    responder: Responder,
    make_job: Callable[[Interaction, Target], RefreshJob | ShareJob],
) -> None:
    """Ack at once; decode the button's value; the lookup behind it runs as a job."""

    @app.action(action_id)
    async def pressed(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        target = _target_or_refuse(interaction, client, responder)
        if target is not None:
            dispatcher.submit(make_job(interaction, target))


def _target_or_refuse(
    interaction: Interaction, client: AsyncWebClient, responder: Responder
) -> Target | None:
    found = decode_target(interaction.action_value)
    if found is None:
        responder.tell(client, interaction.reply_target(), messages.DAMAGED_BUTTON)
        return None
    return Target(execution_id=found.execution_id, linked_account_id=found.linked_account_id)
