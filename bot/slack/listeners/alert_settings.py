"""`/execution alerts on|off|list`: which channels get Refold alerts (workspace admins); `snooze` and
`unsnooze` of a workflow or a linked account in a route's channel (admins and operators)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import assert_never

from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.jobs.kinds import SnoozeEndJob
from bot.parse import AlertsCommand
from bot.render import alerts as words
from bot.render.digest import setting_line
from bot.render.errors import describe
from bot.slack import web_api
from bot.slack.admins import is_workspace_admin, may_operate
from bot.slack.digest_view import setting
from bot.slack.follow_records import Scheduler
from bot.slack.payloads import Interaction
from bot.slack.reply import Reply
from bot.store.alert_routes import AlertEvents, AlertRoute
from bot.store.digests import DigestConfig
from bot.store.snoozes import AlertSnooze
from bot.usecases.actions import ExecutionActions
from bot.usecases.alerts import AlertService, RouteFilters

log = logging.getLogger(__name__)


def snooze_view(snooze: AlertSnooze) -> words.SnoozeView:
    return words.SnoozeView(
        kind=snooze.kind,
        value=snooze.value,
        by=snooze.by,
        until=datetime.fromtimestamp(snooze.until, UTC),
        until_success=snooze.until_success,
        held=snooze.held,
    )


def route_view(
    route: AlertRoute, snoozes: Sequence[AlertSnooze] = (), digest: DigestConfig | None = None
) -> words.RouteView:
    return words.RouteView(
        channel_id=route.channel_id,
        events=route.events.value,
        environment=route.environment,
        workflow=route.workflow,
        registered=route.refold_webhook_id is not None,
        created_by=route.created_by,
        snoozes=[snooze_view(s) for s in snoozes],
        digest=setting_line(setting(digest)) if digest is not None else None,
    )


async def handle_alerts(
    client: AsyncWebClient,
    reply: Reply,
    interaction: Interaction,
    command: AlertsCommand,
    alerts: AlertService,
    actions: ExecutionActions,
    scheduler: Scheduler,
) -> None:
    if command.action == "help":
        await reply.send(response_type="ephemeral", text=words.ALERTS_USAGE)
        return
    if command.action in ("snooze", "unsnooze"):
        try:
            text = await _snooze(client, interaction, command, alerts, actions, scheduler)
        except BotError as exc:
            text = describe(exc)
        # Also chosen from an alert card's menu: the answer goes beside the card, which stays.
        await reply.send(response_type="ephemeral", replace_original=False, text=text)
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
            now = time.time()
            views = [
                route_view(
                    r,
                    await alerts.snoozes.of_route(r.route_id, now=now),
                    await alerts.digests.store.get(r.route_id),
                )
                for r in await alerts.of_workspace(workspace)
            ]
            return words.routes_list(views)
        case "help" | "snooze" | "unsnooze":
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


async def _snooze(
    client: AsyncWebClient,
    interaction: Interaction,
    command: AlertsCommand,
    alerts: AlertService,
    actions: ExecutionActions,
    scheduler: Scheduler,
) -> str:
    """Snooze (or end the snooze of) a workflow or a linked account in this channel's route. The same
    people as Rerun may: admins and owners, and the connect form's operators."""
    workspace, channel, who = interaction.workspace, interaction.channel_id, interaction.user_id
    if not await may_operate(client, who, await actions.operators(workspace)):
        return words.SNOOZE_NOT_ALLOWED
    if channel is None:
        return words.NEEDS_CHANNEL
    route = await alerts.routes.for_channel(workspace.label, channel)
    if route is None:
        return words.NO_ROUTE_HERE
    assert command.snooze_kind is not None and command.snooze_value is not None and who is not None
    kind, value, now = command.snooze_kind, command.snooze_value, time.time()
    if command.action == "unsnooze":
        snooze = await alerts.unsnooze_alerts(workspace, route, kind, value, who, now)
        if snooze is None:
            return words.not_snoozed(kind, value)
        end = SnoozeEndJob.ending(
            interaction.origin,
            route.route_id,
            route.channel_id,
            snooze.snooze_id,
            snooze.since,
            "early",
            ended_by=who,
        )
        await scheduler.enqueue(end, at=now)
        return words.unsnoozing(kind, value)
    snooze = await alerts.snooze_alerts(workspace, route, kind, value, who, command.snooze_for, now)
    end = SnoozeEndJob.ending(
        interaction.origin, route.route_id, route.channel_id, snooze.snooze_id, snooze.since, "time"
    )
    await scheduler.enqueue(end, at=snooze.until)
    return words.snoozed(snooze_view(snooze), channel)


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
