"""The connect form: opening it (`/execution connect`, the App Home's Connect button), its submission,
and the disconnect confirmation. Admins and owners only, every step."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError, ErrorKind
from bot.refold.credentials import AuthKind, mask_secret
from bot.render import messages
from bot.render.errors import describe
from bot.render.modals import (
    ACCOUNT_BLOCK,
    BASE_URL_BLOCK,
    CONNECT_VIEW,
    DISCONNECT_CANCEL,
    DISCONNECT_CONFIRM,
    KIND_BLOCK,
    OPERATOR_GROUPS_BLOCK,
    OPERATOR_USERS_BLOCK,
    SECRET_BLOCK,
    VALUE,
    connect_view,
    connected_view,
)
from bot.slack.admins import is_workspace_admin
from bot.slack.payloads import Interaction, ModalState
from bot.slack.reply import Reply
from bot.slack.responder import Responder
from bot.usecases.connect import ConnectRequest, ConnectService
from bot.usecases.workspace import CredentialResolver, Workspace

log = logging.getLogger(__name__)

# A view_submission must be answered within 3 s; Refold's check gets most of that.
VERIFY_BUDGET_SECONDS = 2.2


def _sentence(exc: BaseException) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


def _field_error(exc: BaseException) -> tuple[str, str]:
    """Which input a failure belongs to, and what to tell the admin there."""
    kind = exc.kind if isinstance(exc, BotError) else None
    if kind is ErrorKind.INVALID_SECRET:
        target = ACCOUNT_BLOCK if "linked account" in str(exc) else SECRET_BLOCK
        return target, _sentence(exc)
    if kind is ErrorKind.INVALID_LINKED_ACCOUNT:
        return ACCOUNT_BLOCK, _sentence(exc)
    if kind is ErrorKind.DISALLOWED_BASE_URL:
        return BASE_URL_BLOCK, _sentence(exc)
    message = str(getattr(exc, "message", "") or exc)
    if kind is ErrorKind.UNAUTHORIZED:
        return SECRET_BLOCK, f"Refold did not accept this key: {message}"[:150]
    if kind is ErrorKind.REJECTED:
        return ACCOUNT_BLOCK, f"Refold rejected it: {message}"[:150]
    if isinstance(exc, TimeoutError):
        return SECRET_BLOCK, "Refold did not answer in time. Try again."
    return SECRET_BLOCK, describe(exc).split(". ")[0][:150]


def register(app: AsyncApp, responder: Responder, service: ConnectService) -> None:
    @app.view(CONNECT_VIEW)
    async def connect_submitted(
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        interaction = Interaction.read(body, context)
        user_id = interaction.user_id
        # Re-checked here: a crafted view_submission must not get past what the command refused.
        if not await is_workspace_admin(client, user_id):
            await ack(
                response_action="errors",
                errors={SECRET_BLOCK: "Only workspace admins and owners can connect Refold."},
            )
            return
        scope = interaction.workspace.own_scope
        state = ModalState.read(view, VALUE)
        if scope is None:
            await ack(
                response_action="errors", errors={SECRET_BLOCK: "Could not tell which workspace this is."}
            )
            return
        kind = (
            AuthKind.SESSION_TOKEN
            if state.text(KIND_BLOCK) == AuthKind.SESSION_TOKEN.value
            else AuthKind.API_KEY
        )
        request = ConnectRequest(
            scope=scope[0],
            scope_id=scope[1],
            kind=kind,
            secret=SecretStr(state.text(SECRET_BLOCK) or ""),
            linked_account_id=state.text(ACCOUNT_BLOCK),
            base_url=state.text(BASE_URL_BLOCK),
            connected_by=user_id,
            operator_users=state.chosen(OPERATOR_USERS_BLOCK),
            operator_groups=state.chosen(OPERATOR_GROUPS_BLOCK),
        )
        try:
            record = service.prepare(request)
            async with asyncio.timeout(VERIFY_BUDGET_SECONDS):
                await service.verify(record)
            await service.save(request, record)
        except (BotError, TimeoutError) as exc:
            block, message = _field_error(exc)
            log.info("connect refused: %s", type(exc).__name__)
            await ack(response_action="errors", errors={block: message})
            return
        masked = mask_secret(record.secret.get_secret_value())
        await ack(response_action="update", view=connected_view(masked, record.linked_account_id))

    @app.action(DISCONNECT_CONFIRM)
    async def disconnect_confirmed(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        interaction = Interaction.read(body, context)
        reply = responder.to(client, interaction.reply_target())
        responder.later(_disconnect(service, interaction, reply, client), "disconnect")

    @app.action(DISCONNECT_CANCEL)
    async def disconnect_cancelled(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        reply = responder.to(client, Interaction.read(body, context).reply_target())
        await reply.send(replace_original=True, text=messages.KEPT_CONNECTION)


async def _disconnect(
    service: ConnectService, interaction: Interaction, reply: Reply, client: AsyncWebClient
) -> None:
    if not await is_workspace_admin(client, interaction.user_id):
        await reply.send(
            response_type="ephemeral", replace_original=False, text=messages.DISCONNECT_ADMIN_ONLY
        )
        return
    scope = interaction.workspace.own_scope
    if scope is None:
        return
    try:
        removed = await service.disconnect(*scope, who=interaction.user_id)
    except BotError as exc:
        await reply.send(replace_original=False, text=describe(exc))
        return
    await reply.send(
        replace_original=True, text=messages.DISCONNECTED if removed else messages.NOTHING_TO_DISCONNECT
    )


# The connect form must open within Slack's 3 s trigger window: listing groups gets a slice of it.
USER_GROUPS_SECONDS = 1.0


async def open_connect_form(
    client: AsyncWebClient, trigger_id: str | None, workspace: Workspace, resolver: CredentialResolver
) -> bool:
    """Open the form, filled with who may Rerun and Stop today; False when Slack would not open it."""
    users: list[str] = []
    chosen: list[str] = []
    try:
        record = (await resolver.resolve(workspace)).record
        if record is not None:
            users, chosen = record.operator_users, record.operator_groups
    except BotError:
        pass  # not connected yet (or unreadable): the form starts empty
    groups = await _user_groups(client)
    try:
        await client.views_open(trigger_id=trigger_id, view=connect_view(groups, users, chosen))
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        return False
    return True


async def _user_groups(client: AsyncWebClient) -> list[tuple[str, str]]:
    """The workspace's user groups for the connect form; none when Slack will not list them."""
    try:
        async with asyncio.timeout(USER_GROUPS_SECONDS):
            response = await client.usergroups_list()
    except (SlackApiError, TimeoutError) as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else "timeout"
        log.info("user groups not offered in the connect form: usergroups.list %s", error)
        return []
    groups = response.get("usergroups") or []
    return [
        (str(g["id"]), str(g.get("name") or g.get("handle") or g["id"]))
        for g in groups
        if isinstance(g, dict) and g.get("id") and not g.get("date_delete")
    ]
