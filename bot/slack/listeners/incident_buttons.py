"""Buttons on an incident's message: Rerun failed, the Snooze menu, End snooze, Resolve.

Each acks at once, decodes its value (untrusted: re-validated) and hands the work to a job, which
checks who may press it.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.kinds import IncidentAction, IncidentActionJob
from bot.render import messages
from bot.render.buttons import (
    INCIDENT_RERUN_ACTION,
    INCIDENT_RESOLVE_ACTION,
    INCIDENT_SNOOZE_ACTION,
    INCIDENT_UNSNOOZE_ACTION,
    decode_incident,
)
from bot.slack.dispatch import Dispatcher
from bot.slack.payloads import Interaction
from bot.slack.responder import Responder

ACTIONS: dict[str, IncidentAction] = {
    INCIDENT_RERUN_ACTION: "rerun",
    INCIDENT_SNOOZE_ACTION: "snooze",
    INCIDENT_UNSNOOZE_ACTION: "unsnooze",
    INCIDENT_RESOLVE_ACTION: "resolve",
}


def register(app: AsyncApp, dispatcher: Dispatcher, responder: Responder) -> None:
    for action_id, action in ACTIONS.items():
        _incident_button(app, action_id, action, dispatcher, responder)


def _incident_button(
    app: AsyncApp, action_id: str, action: IncidentAction, dispatcher: Dispatcher, responder: Responder
) -> None:
    @app.action(action_id)
    async def pressed(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        found = decode_incident(interaction.action_value)
        if found is None or (action == "snooze") != (found[2] is not None):
            responder.tell(client, interaction.reply_target(), messages.DAMAGED_BUTTON)
            return
        route_id, cause, hours = found
        dispatcher.submit(
            IncidentActionJob(
                origin=interaction.origin,
                reply=interaction.reply_target(),
                interaction=interaction.key,
                action=action,
                route_id=route_id,
                cause=cause,
                hours=hours or 0,
            )
        )
