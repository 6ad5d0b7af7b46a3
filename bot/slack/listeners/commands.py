"""`/execution`: lookups (and follows), search, alerts, digest, help, status, following, connect and disconnect."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, assert_never

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.jobs.kinds import FollowJob, LookupJob, SearchJob, Target
from bot.parse import (
    AlertsCommand,
    DigestCommand,
    InvalidCommand,
    LookupCommand,
    SearchCommand,
    VerbCommand,
    parse_command,
)
from bot.refold.credentials import AuthKind, mask_secret
from bot.render import messages
from bot.render.errors import describe
from bot.render.follow import AuditLine, audit_lines, following_list
from bot.render.incident import incidents_list
from bot.render.modals import disconnect_prompt
from bot.render.status import ConnectionFacts, connection_status
from bot.render.text import inline
from bot.slack.admins import is_workspace_admin
from bot.slack.dispatch import Dispatcher
from bot.slack.follow_records import FollowKit, Scheduler, derived_follow_id, follow_lines
from bot.slack.incident_view import incident_facts
from bot.slack.listeners.alert_settings import handle_alerts
from bot.slack.listeners.connect_form import open_connect_form
from bot.slack.listeners.digest_settings import handle_digest
from bot.slack.payloads import Interaction
from bot.slack.reply import Reply
from bot.slack.responder import Responder
from bot.store.credentials import Scope
from bot.usecases.actions import ExecutionActions
from bot.usecases.alerts import AlertService
from bot.usecases.workspace import CredentialResolver, Workspace

log = logging.getLogger(__name__)

COMMAND = "/execution"


def register(
    app: AsyncApp,
    dispatcher: Dispatcher,
    responder: Responder,
    resolver: CredentialResolver,
    follows: FollowKit,
    actions: ExecutionActions,
    alerts: AlertService,
    scheduler: Scheduler,
) -> None:
    @app.command(COMMAND)
    async def execution_command(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        interaction = Interaction.read(body, context)
        parsed = parse_command(interaction.text)
        if isinstance(parsed, InvalidCommand):
            await ack(
                response_type="ephemeral", text=f":warning: {inline(parsed.reason, 300)}\n\n{messages.USAGE}"
            )
            return
        if isinstance(parsed, VerbCommand) and parsed.verb == "help":
            await ack(response_type="ephemeral", text=messages.USAGE)
            return
        await ack()
        if isinstance(parsed, LookupCommand):
            target = Target(execution_id=parsed.execution_id, linked_account_id=parsed.linked_account_id)
            origin, reply_at, key = interaction.origin, interaction.reply_target(), interaction.key
            dispatcher.submit(
                FollowJob(
                    origin=origin,
                    reply=reply_at,
                    interaction=key,
                    target=target,
                    follow_id=derived_follow_id("interaction", key),
                    new_card=True,
                )
                if parsed.follow
                else LookupJob(
                    origin=origin, reply=reply_at, interaction=key, target=target, asked_at=time.time()
                )
            )
            return
        if isinstance(parsed, SearchCommand):
            dispatcher.submit(
                SearchJob(
                    origin=interaction.origin,
                    reply=interaction.reply_target(),
                    interaction=interaction.key,
                    query=parsed.as_text(),
                )
            )
            return
        reply = responder.to(client, interaction.reply_target())
        if isinstance(parsed, AlertsCommand):
            responder.later(
                handle_alerts(client, reply, interaction, parsed, alerts, actions, scheduler), "alerts"
            )
            return
        if isinstance(parsed, DigestCommand):
            responder.later(
                handle_digest(client, reply, interaction, parsed, alerts, actions, scheduler), "digest"
            )
            return
        match parsed.verb:
            case "status":
                responder.later(_status(resolver, actions, reply, interaction.workspace), "status")
            case "following":
                responder.later(_following(follows, reply, interaction.workspace), "following")
            case "incidents":
                responder.later(_incidents(alerts, reply, interaction.workspace), "incidents")
            case "connect":
                responder.later(_connect(client, reply, interaction, resolver), "connect")
            case "disconnect":
                responder.later(_ask_disconnect(client, reply, interaction.user_id), "disconnect")
            case "help":
                responder.later(reply.send(response_type="ephemeral", text=messages.USAGE), "help")
            case _:
                assert_never(parsed.verb)


async def _following(follows: FollowKit, reply: Reply, workspace: Workspace) -> None:
    try:
        active = await follows.store.active(workspace.label)
    except BotError as exc:
        await reply.send(response_type="ephemeral", text=describe(exc))
        return
    lines = follow_lines(active)
    await reply.send(response_type="ephemeral", text=following_list(lines, time.time()))


async def _incidents(alerts: AlertService, reply: Reply, workspace: Workspace) -> None:
    try:
        found = await alerts.open_incidents(workspace, time.time())
    except BotError as exc:
        await reply.send(response_type="ephemeral", text=describe(exc))
        return
    listed = [(route.channel_id, incident_facts(view)) for route, view in found]
    await reply.send(response_type="ephemeral", text=incidents_list(listed, datetime.now(UTC)))


async def _status(
    resolver: CredentialResolver, actions: ExecutionActions, reply: Reply, workspace: Workspace
) -> None:
    try:
        resolved = await resolver.resolve(workspace)
    except BotError as exc:
        await reply.send(response_type="ephemeral", text=describe(exc))
        return
    creds, record = resolved.credentials, resolved.record
    facts = ConnectionFacts(
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
    text = connection_status(facts)
    try:
        entries = await actions.latest(workspace, 5)
    except BotError:
        entries = []
        text += "\n_The audit log could not be read just now._"
    if entries:
        lines = audit_lines([AuditLine(**vars(e)) for e in entries], slack=True)
        text += "\n*Last actions*\n" + "\n".join(f"• {line}" for line in lines)
    await reply.send(response_type="ephemeral", text=text)


async def _connect(
    client: AsyncWebClient, reply: Reply, interaction: Interaction, resolver: CredentialResolver
) -> None:
    if not await is_workspace_admin(client, interaction.user_id):
        await reply.send(response_type="ephemeral", text=messages.ADMIN_ONLY)
        return
    if not await open_connect_form(client, interaction.trigger_id, interaction.workspace, resolver):
        await reply.send(response_type="ephemeral", text=messages.CONNECT_FORM_FAILED)


async def _ask_disconnect(client: AsyncWebClient, reply: Reply, user_id: str | None) -> None:
    if not await is_workspace_admin(client, user_id):
        await reply.send(response_type="ephemeral", text=messages.ADMIN_ONLY)
        return
    await reply.send(response_type="ephemeral", **disconnect_prompt())
