"""Buttons on an incident's message: Rerun failed, the Snooze menu, End snooze, Resolve.

Each acks at once, decodes its value (untrusted: re-validated) and hands the work to a job, which
checks who may press it.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.jobs.kinds import IncidentAction, IncidentActionJob
from bot.render.buttons import (
    INCIDENT_RERUN_ACTION,
    INCIDENT_RESOLVE_ACTION,
    INCIDENT_SNOOZE_ACTION,
    INCIDENT_UNSNOOZE_ACTION,
    decode_incident,
)
from bot.slack.dispatch import Dispatcher
from bot.slack.listeners.presses import on_press
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
    def decode(interaction: Interaction) -> tuple[str, str, int | None] | None:
        found = decode_incident(interaction.action_value)
        # The Snooze menu's options carry their hours; the other buttons carry none.
        return found if found is not None and (action == "snooze") == (found[2] is not None) else None

    def make(interaction: Interaction, found: tuple[str, str, int | None]) -> IncidentActionJob:
        route_id, cause, hours = found
        return IncidentActionJob(
            origin=interaction.origin,
            reply=interaction.reply_target(),
            interaction=interaction.key,
            action=action,
            route_id=route_id,
            cause=cause,
            hours=hours or 0,
        )

    on_press(app, action_id, dispatcher, responder, decode, make)
