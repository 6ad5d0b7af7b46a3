"""The App Home tab: published each time someone opens it, with admin controls for admins only."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.refold.credentials import AuthKind, mask_secret
from bot.render.errors import describe
from bot.render.follow import FollowLine
from bot.render.home import (
    HOME_CONNECT_ACTION,
    HOME_ROUTE_OFF_ACTION,
    MAX_FOLLOWS,
    MAX_LOOKUPS,
    HomeFacts,
    RecentView,
    home_view,
)
from bot.render.incident import IncidentFacts
from bot.render.status import ConnectionFacts
from bot.slack.admins import is_workspace_admin
from bot.slack.follow_records import FollowKit, follow_lines
from bot.slack.incident_view import incident_facts
from bot.slack.listeners.alert_settings import route_view
from bot.slack.listeners.connect_form import open_connect_form
from bot.slack.payloads import HomeOpened, Interaction
from bot.slack.responder import Responder
from bot.store.credentials import Scope
from bot.usecases.alerts import AlertService
from bot.usecases.lookup import ExecutionLookup
from bot.usecases.workspace import CredentialResolver, Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HomeSources:
    resolver: CredentialResolver
    lookup: ExecutionLookup
    follows: FollowKit
    alerts: AlertService


def register(app: AsyncApp, responder: Responder, sources: HomeSources) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        opened = HomeOpened.read(event)
        user = opened.user_id
        if opened.tab != "home" or user is None:
            return
        workspace = Workspace(context.team_id, context.enterprise_id)
        responder.later(publish_home(client, user, workspace, sources), "home")

    @app.action(HOME_CONNECT_ACTION)
    async def connect_pressed(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        if not await is_workspace_admin(client, interaction.user_id):
            log.info("a non-admin pressed Connect on the App Home; nothing opened")
            return
        if not await open_connect_form(
            client, interaction.trigger_id, interaction.workspace, sources.resolver
        ):
            log.warning("the connect form could not be opened from the App Home")

    @app.action(HOME_ROUTE_OFF_ACTION)
    async def route_off_pressed(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        responder.later(_route_off(client, interaction, sources), "home-route-off")


async def _route_off(client: AsyncWebClient, interaction: Interaction, sources: HomeSources) -> None:
    user, workspace = interaction.user_id, interaction.workspace
    if user is None or not await is_workspace_admin(client, user):
        log.info("a non-admin pressed Turn off on the App Home; nothing changed")
        return
    try:
        route = await sources.alerts.routes.get(interaction.action_value or "")
        # A button value is the sender's to forge: only a route of this workspace is removed.
        if route is not None and Workspace(route.team_id, route.enterprise_id).label == workspace.label:
            await sources.alerts.remove(workspace, route, user)
    except BotError as exc:
        log.warning("turning a route off from the App Home failed: %s", exc.kind.value)
    await publish_home(client, user, workspace, sources)


async def publish_home(client: AsyncWebClient, user: str, workspace: Workspace, sources: HomeSources) -> None:
    facts = await gather(client, user, workspace, sources)
    try:
        await client.views_publish(user_id=user, view=home_view(facts, datetime.now(UTC)))
    except SlackApiError as exc:
        log.warning("views.publish of the App Home failed (%s)", exc.response.get("error"))


async def gather(client: AsyncWebClient, user: str, workspace: Workspace, sources: HomeSources) -> HomeFacts:
    """Each part on its own: one that cannot be read is shown empty, never the whole tab lost."""
    connection, problem = None, None
    try:
        resolved = await sources.resolver.resolve(workspace)
        creds, record = resolved.credentials, resolved.record
        connection = ConnectionFacts(
            kind_label="session token" if creds.kind is AuthKind.SESSION_TOKEN else "API key",
            masked_secret=mask_secret(creds.secret.get_secret_value()),
            linked_account_id=creds.linked_account_id,
            base_url=creds.base_url,
            stored=record is not None,
            org_wide=resolved.scope is Scope.ENTERPRISE,
            connected_by=record.connected_by if record else None,
            connected_at=record.connected_at if record else None,
            session_expires_at=record.session_expires_at if record else None,
        )
    except BotError as exc:
        problem = describe(exc)
    recent: list[RecentView] = []
    follows: list[FollowLine] = []
    routes = []
    incidents: list[tuple[str, IncidentFacts]] = []
    try:
        recent = [
            RecentView(e.execution_id, e.name, e.status, e.user_id, e.at)
            for e in await sources.lookup.recent(workspace, MAX_LOOKUPS)
        ]
        follows = follow_lines(await sources.follows.store.active(workspace.label, MAX_FOLLOWS + 1))
        routes = [
            (
                r.route_id,
                route_view(
                    r,
                    await sources.alerts.snoozes.of_route(r.route_id, now=time.time()),
                    await sources.alerts.digests.store.get(r.route_id),
                ),
            )
            for r in await sources.alerts.of_workspace(workspace)
        ]
        incidents = [
            (route.channel_id, incident_facts(view))
            for route, view in await sources.alerts.open_incidents(workspace, time.time())
        ]
    except BotError as exc:
        log.warning("part of the App Home could not be read: %s", exc.kind.value)
    return HomeFacts(
        connection=connection,
        connection_problem=problem,
        recent=recent,
        follows=follows,
        routes=routes,
        is_admin=await is_workspace_admin(client, user),
        incidents=incidents,
    )
