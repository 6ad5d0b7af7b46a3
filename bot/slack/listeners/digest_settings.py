"""`/execution digest on [at 09:00] [tz:…] [quiet:skip]`, `off`, or on its own: a daily digest of a
route's alerts in its channel (admins and operators, like snoozes)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import assert_never
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.parse import DigestCommand
from bot.render import alerts as alert_words
from bot.render import digest as words
from bot.render.errors import describe
from bot.slack.admins import may_operate
from bot.slack.digest_jobs import schedule_digest
from bot.slack.digest_view import setting
from bot.slack.follow_records import Scheduler
from bot.slack.payloads import Interaction
from bot.slack.reply import Reply
from bot.usecases.actions import ExecutionActions
from bot.usecases.alerts import AlertService
from bot.usecases.digest import DEFAULT_AT, DEFAULT_ZONE, occurrence, zone_or_none

log = logging.getLogger(__name__)


async def handle_digest(
    client: AsyncWebClient,
    reply: Reply,
    interaction: Interaction,
    command: DigestCommand,
    alerts: AlertService,
    actions: ExecutionActions,
    scheduler: Scheduler,
) -> None:
    try:
        text = await _carry_out(client, interaction, command, alerts, actions, scheduler)
    except BotError as exc:
        text = describe(exc)
    await reply.send(response_type="ephemeral", text=text)


async def _carry_out(
    client: AsyncWebClient,
    interaction: Interaction,
    command: DigestCommand,
    alerts: AlertService,
    actions: ExecutionActions,
    scheduler: Scheduler,
) -> str:
    workspace, channel, who = interaction.workspace, interaction.channel_id, interaction.user_id
    if channel is None:
        return alert_words.NEEDS_CHANNEL
    route = await alerts.routes.for_channel(workspace.label, channel)
    if command.action == "show":
        config = await alerts.digests.store.get(route.route_id) if route is not None else None
        return words.digest_shown(setting(config) if config is not None else None)
    if who is None or not await may_operate(client, who, await actions.operators(workspace)):
        return words.DIGEST_NOT_ALLOWED
    if route is None:
        return words.NO_ROUTE_FOR_DIGEST
    match command.action:
        case "off":
            return (
                words.DIGEST_OFF if await alerts.digests.turn_off(workspace, route, who) else words.NO_DIGEST
            )
        case "on":
            zone = command.zone or await profile_zone(client, who) or DEFAULT_ZONE
            at, now = command.at or DEFAULT_AT, time.time()
            config, first = await alerts.digests.turn_on(workspace, route, at, zone, command.quiet, who, now)
            await schedule_digest(scheduler, route, config, first)
            when = occurrence(first, at, zone)
            return words.digest_on(setting(config), channel, datetime.fromtimestamp(when, ZoneInfo(zone)))
        case "show":
            raise AssertionError("answered above")
        case _:
            assert_never(command.action)


async def profile_zone(client: AsyncWebClient, user: str) -> str | None:
    """The time zone of the person's Slack profile, when Slack says and Python knows it."""
    try:
        response = await client.users_info(user=user)
    except SlackApiError as exc:
        log.info("users.info failed while reading a time zone: %s", exc.response.get("error"))
        return None
    zone = str((response.get("user") or {}).get("tz") or "")
    return zone if zone_or_none(zone) is not None else None
