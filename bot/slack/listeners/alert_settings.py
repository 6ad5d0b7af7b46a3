"""`/execution alerts on|off|list`: which channels get Refold alerts. Workspace admins only."""

from __future__ import annotations

import logging
from typing import assert_never

from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.parse import AlertsCommand
from bot.render import alerts as words
from bot.render.errors import describe
from bot.slack import web_api
from bot.slack.admins import is_workspace_admin
from bot.slack.payloads import Interaction
from bot.slack.reply import Reply
from bot.store.alert_routes import AlertEvents, AlertRoute
from bot.usecases.alerts import AlertService, RouteFilters

log = logging.getLogger(__name__)


def route_view(route: AlertRoute) -> words.RouteView:
    return words.RouteView(
        channel_id=route.channel_id,
        events=route.events.value,
        environment=route.environment,
        workflow=route.workflow,
        registered=route.refold_webhook_id is not None,
        created_by=route.created_by,
    )


async def handle_alerts(
    client: AsyncWebClient,
    reply: Reply,
    interaction: Interaction,
    command: AlertsCommand,
    alerts: AlertService,
) -> None:
    if command.action == "help":
        await reply.send(response_type="ephemeral", text=words.ALERTS_USAGE)
        return
    if not await is_workspace_admin(client, interaction.user_id):
        await reply.send(response_type="ephemeral", text=words.ALERTS_ADMIN_ONLY)
        return
    try:
        text = await _carry_out(client, interaction, command, alerts)
    except BotError as exc:
        text = describe(exc)
    await reply.send(response_type="ephemeral", text=text)


async def _carry_out(
    client: AsyncWebClient, interaction: Interaction, command: AlertsCommand, alerts: AlertService
) -> str:
    workspace, channel, who = interaction.workspace, interaction.channel_id, interaction.user_id
    match command.action:
        case "list":
            return words.routes_list([route_view(r) for r in await alerts.of_workspace(workspace)])
        case "help":
            return words.ALERTS_USAGE
        case "off":
            if channel is None:
                return words.NEEDS_CHANNEL
            turned_off = await alerts.turn_off(workspace, channel, who)
            if turned_off.route is None:
                return words.NO_ROUTE_HERE
            error = turned_off.unregister_error
            return words.turned_off(channel, describe(error) if error else None)
        case "on":
            if channel is None:
                return words.NEEDS_CHANNEL
            return await _turn_on(client, interaction, command, alerts, channel)
        case _:
            assert_never(command.action)


async def _turn_on(
    client: AsyncWebClient,
    interaction: Interaction,
    command: AlertsCommand,
    alerts: AlertService,
    channel: str,
) -> str:
    workspace, who = interaction.workspace, interaction.user_id
    filters = RouteFilters(AlertEvents(command.events), command.environment, command.workflow)
    turned_on = await alerts.turn_on(workspace, channel, filters, who)
    view = route_view(turned_on.route)
    posted_here = await _announce(client, channel, words.announcement(who, view))
    error = turned_on.register_error
    return words.turned_on(
        view,
        turned_on.route.route_id,
        created=turned_on.created,
        url=turned_on.url,
        registered=turned_on.registered,
        register_error=describe(error) if error else None,
        signed=turned_on.signed,
        posted_here=posted_here,
    )


async def _announce(client: AsyncWebClient, channel: str, text: str) -> bool:
    """Say in the channel that alerts arrive there; False when the bot cannot post there (yet)."""
    posted = await web_api.post(client, channel, text)
    if not posted:
        log.info("could not announce alerts in the channel (%s)", posted.error)
    return bool(posted)
