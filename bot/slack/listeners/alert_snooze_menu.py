"""The snooze menu on a failed run's alert card: its workflow or its linked account, for a time or
until a run succeeds, in the card's channel. The same people, checks, audit and end as
`/execution alerts snooze`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.parse import AlertsCommand
from bot.render import messages
from bot.render.buttons import ALERT_SNOOZE_ACTION, decode_alert_snooze
from bot.slack.follow_records import Scheduler
from bot.slack.listeners.alert_settings import handle_alerts
from bot.slack.payloads import Interaction
from bot.slack.responder import Responder
from bot.usecases.actions import ExecutionActions
from bot.usecases.alerts import AlertService


def register(
    app: AsyncApp, responder: Responder, alerts: AlertService, actions: ExecutionActions, scheduler: Scheduler
) -> None:
    @app.action(ALERT_SNOOZE_ACTION)
    async def snooze_chosen(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        chosen = decode_alert_snooze(interaction.action_value)
        if chosen is None:
            responder.tell(client, interaction.reply_target(), messages.DAMAGED_BUTTON)
            return
        kind, value, length = chosen
        command = AlertsCommand("snooze", snooze_kind=kind, snooze_value=value, snooze_for=length)
        reply = responder.to(client, interaction.reply_target())
        responder.later(
            handle_alerts(client, reply, interaction, command, alerts, actions, scheduler), "alert snooze"
        )
