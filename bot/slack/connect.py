"""The connect modal and the disconnect confirmation. Admins and owners only, checked on every step."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    RadioButtonsElement,
    SectionBlock,
)
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.connect import ConnectRequest, InvalidSecret
from bot.refold import errors as refold_errors
from bot.refold.credentials import AuthKind, mask_secret
from bot.refold.ids import InvalidLinkedAccount
from bot.render.messages import describe_error
from bot.render.text import inline
from bot.slack.context import Reply, is_workspace_admin, workspace_of
from bot.slack.env import SlackEnv
from bot.store.errors import StoreUnavailable

log = logging.getLogger(__name__)

CONNECT_VIEW = "connect_refold"
DISCONNECT_CONFIRM = "disconnect_confirm"
DISCONNECT_CANCEL = "disconnect_cancel"
CONNECT_ACTIONS = (DISCONNECT_CONFIRM, DISCONNECT_CANCEL)

KIND_BLOCK, SECRET_BLOCK, ACCOUNT_BLOCK, BASE_URL_BLOCK = "auth_kind", "secret", "linked_account", "base_url"
VALUE = "value"
# A view_submission must be answered within 3 s; Refold's check gets most of that.
VERIFY_BUDGET_SECONDS = 2.2


def connect_view() -> View:
    return View(
        type="modal",
        callback_id=CONNECT_VIEW,
        title="Connect Refold",
        submit="Connect",
        close="Cancel",
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=(
                        "Paste a Refold API key (`pk…` production, `tk…` test) or a session token. It is checked "
                        "against Refold, stored encrypted, and never shown again."
                    )
                )
            ),
            InputBlock(
                block_id=KIND_BLOCK,
                label="Credential type",
                element=RadioButtonsElement(
                    action_id=VALUE,
                    options=[
                        Option(value=AuthKind.API_KEY.value, text="API key"),
                        Option(value=AuthKind.SESSION_TOKEN.value, text="Session token"),
                    ],
                    initial_option=Option(value=AuthKind.API_KEY.value, text="API key"),
                ),
            ),
            InputBlock(
                block_id=SECRET_BLOCK,
                label="API key or session token",
                element=PlainTextInputElement(action_id=VALUE, placeholder="tk_…", max_length=4096),
            ),
            InputBlock(
                block_id=ACCOUNT_BLOCK,
                label="Default linked account",
                optional=True,
                hint="Used when a lookup names none. Required with an API key.",
                element=PlainTextInputElement(
                    action_id=VALUE, placeholder="customer@example.com", max_length=256
                ),
            ),
            InputBlock(
                block_id=BASE_URL_BLOCK,
                label="Refold base URL",
                optional=True,
                hint="Leave empty for the default.",
                element=PlainTextInputElement(
                    action_id=VALUE, placeholder="https://app.refold.ai", max_length=200
                ),
            ),
        ],
    )


async def open_modal(client: AsyncWebClient, reply: Reply, trigger_id: str | None) -> None:
    try:
        await client.views_open(trigger_id=trigger_id, view=connect_view())
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        await reply.send(
            response_type="ephemeral",
            text=":warning: Slack would not open the connect form. Run `/execution connect` again.",
        )


def disconnect_prompt() -> dict[str, Any]:
    blocks = [
        SectionBlock(
            text=MarkdownTextObject(
                text="Disconnect Refold from this workspace? Lookups stop working until an admin connects again."
            )
        ),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Disconnect",
                    action_id=DISCONNECT_CONFIRM,
                    value="disconnect",
                    style="danger",
                    confirm=ConfirmObject(
                        title="Disconnect Refold?",
                        text="The stored key is deleted.",
                        confirm="Disconnect",
                        deny="Keep it",
                    ),
                ),
                ButtonElement(text="Cancel", action_id=DISCONNECT_CANCEL, value="cancel"),
            ]
        ),
    ]
    return {"text": "Disconnect Refold?", "blocks": [b.to_dict() for b in blocks]}


def _field(values: dict[str, Any], block: str) -> str | None:
    element = (values.get(block) or {}).get(VALUE) or {}
    if element.get("type") == "radio_buttons":
        return (element.get("selected_option") or {}).get("value")
    value = element.get("value")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _sentence(exc: BaseException) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


def _field_error(exc: BaseException) -> tuple[str, str]:
    """Which input a failure belongs to, and what to tell the admin there."""
    if isinstance(exc, InvalidSecret):
        target = ACCOUNT_BLOCK if "linked account" in str(exc) else SECRET_BLOCK
        return target, _sentence(exc)
    if isinstance(exc, InvalidLinkedAccount):
        return ACCOUNT_BLOCK, _sentence(exc)
    if isinstance(exc, refold_errors.DisallowedBaseUrl):
        return BASE_URL_BLOCK, _sentence(exc)
    if isinstance(exc, refold_errors.Unauthorized):
        return SECRET_BLOCK, f"Refold did not accept this key: {exc.message}"[:150]
    if isinstance(exc, refold_errors.RequestRejected):
        return ACCOUNT_BLOCK, f"Refold rejected it: {exc.message}"[:150]
    if isinstance(exc, TimeoutError):
        return SECRET_BLOCK, "Refold did not answer in time. Try again."
    return SECRET_BLOCK, describe_error(exc).split(". ")[0][:150]


def register(app: AsyncApp, env: SlackEnv) -> None:
    @app.view(CONNECT_VIEW)
    async def connect_submitted(
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        user_id = (body.get("user") or {}).get("id")
        # Re-checked here: a crafted view_submission must not get past what the command refused.
        if not await is_workspace_admin(client, user_id):
            await ack(
                response_action="errors",
                errors={SECRET_BLOCK: "Only workspace admins and owners can connect Refold."},
            )
            return
        workspace = workspace_of(context, body)
        scope = workspace.own_scope
        values = (view.get("state") or {}).get("values") or {}
        if scope is None:
            await ack(
                response_action="errors", errors={SECRET_BLOCK: "Could not tell which workspace this is."}
            )
            return
        kind = (
            AuthKind.SESSION_TOKEN
            if _field(values, KIND_BLOCK) == AuthKind.SESSION_TOKEN.value
            else AuthKind.API_KEY
        )
        request = ConnectRequest(
            scope=scope[0],
            scope_id=scope[1],
            kind=kind,
            secret=SecretStr(_field(values, SECRET_BLOCK) or ""),
            linked_account_id=_field(values, ACCOUNT_BLOCK),
            base_url=_field(values, BASE_URL_BLOCK),
            connected_by=user_id,
        )
        service = env.deps.connect
        try:
            record = service.prepare(request)
            async with asyncio.timeout(VERIFY_BUDGET_SECONDS):
                await service.verify(record)
            await service.save(request, record)
        except (
            InvalidSecret,
            InvalidLinkedAccount,
            refold_errors.DisallowedBaseUrl,
            refold_errors.RefoldError,
            StoreUnavailable,
            TimeoutError,
        ) as exc:
            block, message = _field_error(exc)
            log.info("connect refused: %s", type(exc).__name__)
            await ack(response_action="errors", errors={block: message})
            return
        masked = mask_secret(record.secret.get_secret_value())
        done = View(
            type="modal",
            title="Refold connected",
            close="Done",
            blocks=[
                SectionBlock(
                    text=MarkdownTextObject(
                        text=(
                            f":white_check_mark: Connected with `{masked}`"
                            f" (default linked account *{inline(record.linked_account_id or '–', 120)}*).\n"
                            "Try `/execution <execution_id>` now."
                        )
                    )
                ),
            ],
        )
        await ack(response_action="update", view=done)

    @app.action(DISCONNECT_CONFIRM)
    async def disconnect_confirmed(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        env.tasks.spawn(
            _disconnect(env, body, Reply.of(env.deps.http, client, body), client, context), "disconnect"
        )

    @app.action(DISCONNECT_CANCEL)
    async def disconnect_cancelled(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await Reply.of(env.deps.http, client, body).send(
            replace_original=True, text="Kept the Refold connection."
        )


async def _disconnect(
    env: SlackEnv,
    body: dict[str, Any],
    reply: Reply,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    if not await is_workspace_admin(client, (body.get("user") or {}).get("id")):
        await reply.send(
            response_type="ephemeral",
            replace_original=False,
            text=":lock: Only workspace admins and owners can disconnect Refold.",
        )
        return
    workspace = workspace_of(context, body)
    scope = workspace.own_scope
    if scope is None:
        return
    try:
        removed = await env.deps.connect.disconnect(*scope)
    except StoreUnavailable as exc:
        await reply.send(replace_original=False, text=describe_error(exc))
        return
    text = (
        ":wave: Refold is disconnected from this workspace."
        if removed
        else "This workspace had no Refold connection of its own."
    )
    await reply.send(replace_original=True, text=text)
