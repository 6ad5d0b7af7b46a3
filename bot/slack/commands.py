"""`/execution`: lookups, help, status, connect and disconnect."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.jobs.kinds import LookupJob, Target
from bot.parse import InvalidCommand, LookupCommand, VerbCommand, parse_command
from bot.refold.credentials import AuthKind, mask_secret
from bot.render import messages
from bot.render.errors import describe
from bot.render.modals import connect_view, disconnect_prompt
from bot.render.status import ConnectionFacts, connection_status
from bot.render.text import inline
from bot.slack.admins import is_workspace_admin
from bot.slack.dispatch import Dispatcher
from bot.slack.payloads import Interaction
from bot.slack.reply import Reply
from bot.slack.responder import Responder
from bot.store.credentials import Scope
from bot.usecases.workspace import CredentialResolver, Workspace

log = logging.getLogger(__name__)

COMMAND = "/execution"


def register(
    app: AsyncApp, dispatcher: Dispatcher, responder: Responder, resolver: CredentialResolver
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
            dispatcher.submit(
                LookupJob(
                    origin=interaction.origin,
                    reply=interaction.reply_target(),
                    interaction=interaction.key,
                    target=Target(
                        execution_id=parsed.execution_id, linked_account_id=parsed.linked_account_id
                    ),
                )
            )
            return
        reply = responder.to(client, interaction.reply_target())
        if parsed.verb == "status":
            responder.later(_status(resolver, reply, interaction.workspace), "status")
        elif parsed.verb == "connect":
            responder.later(_connect(client, reply, interaction), "connect")
        elif parsed.verb == "disconnect":
            responder.later(_ask_disconnect(client, reply, interaction.user_id), "disconnect")


async def _status(resolver: CredentialResolver, reply: Reply, workspace: Workspace) -> None:
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
    await reply.send(response_type="ephemeral", text=connection_status(facts))


async def _connect(client: AsyncWebClient, reply: Reply, interaction: Interaction) -> None:
    if not await is_workspace_admin(client, interaction.user_id):
        await reply.send(response_type="ephemeral", text=messages.ADMIN_ONLY)
        return
    try:
        await client.views_open(trigger_id=interaction.trigger_id, view=connect_view())
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        await reply.send(response_type="ephemeral", text=messages.CONNECT_FORM_FAILED)


async def _ask_disconnect(client: AsyncWebClient, reply: Reply, user_id: str | None) -> None:
    if not await is_workspace_admin(client, user_id):
        await reply.send(response_type="ephemeral", text=messages.ADMIN_ONLY)
        return
    await reply.send(response_type="ephemeral", **disconnect_prompt())
