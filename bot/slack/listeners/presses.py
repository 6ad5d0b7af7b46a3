"""The one shape of a button listener: ack at once, decode the value (untrusted: re-validated), and
either say the button is damaged or hand the work to a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.kinds import AnyJob
from bot.render import messages
from bot.slack.dispatch import Dispatcher
from bot.slack.payloads import Interaction
from bot.slack.responder import Responder

Decoded = TypeVar("Decoded")


def on_press(
    app: AsyncApp,
    action_id: str,
    dispatcher: Dispatcher,
    responder: Responder,
    decode: Callable[[Interaction], Decoded | None],
    make_job: Callable[[Interaction, Decoded], AnyJob],
) -> None:
    @app.action(action_id)
    async def pressed(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        found = decode(interaction)
        if found is None:
            responder.tell(client, interaction.reply_target(), messages.DAMAGED_BUTTON)
            return
        dispatcher.submit(make_job(interaction, found))
