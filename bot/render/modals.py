"""The connect modal, its success view, and the disconnect confirmation. Pure Block Kit."""

from __future__ import annotations

from typing import Any

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
    StaticMultiSelectElement,
    UserMultiSelectElement,
)
from slack_sdk.models.views import View

from bot.refold.credentials import AuthKind
from bot.render.text import inline

CONNECT_VIEW = "connect_refold"
DISCONNECT_CONFIRM = "disconnect_confirm"
DISCONNECT_CANCEL = "disconnect_cancel"
CONNECT_ACTIONS = (DISCONNECT_CONFIRM, DISCONNECT_CANCEL)

KIND_BLOCK, SECRET_BLOCK, ACCOUNT_BLOCK, BASE_URL_BLOCK = "auth_kind", "secret", "linked_account", "base_url"
OPERATOR_USERS_BLOCK, OPERATOR_GROUPS_BLOCK = "operator_users", "operator_groups"
MAX_GROUP_OPTIONS = 100  # Block Kit's limit for a static menu
VALUE = "value"


def connect_view(
    groups: list[tuple[str, str]] | None = None,
    users: list[str] | None = None,
    chosen_groups: list[str] | None = None,
) -> View:
    """`groups`: the workspace's user groups as (ID, name), offered when Slack listed them."""
    operator_blocks: list[InputBlock] = [
        InputBlock(
            block_id=OPERATOR_USERS_BLOCK,
            label="May rerun and stop",
            optional=True,
            hint="Besides workspace admins and owners, who may press Rerun and Stop on a card.",
            element=UserMultiSelectElement(
                action_id=VALUE, placeholder="Choose people", initial_users=users or None
            ),
        )
    ]
    if groups:
        options = [
            Option(value=gid, text=inline(name, 70) or gid) for gid, name in groups[:MAX_GROUP_OPTIONS]
        ]
        initial = [o for o in options if o.value in set(chosen_groups or [])]
        operator_blocks.append(
            InputBlock(
                block_id=OPERATOR_GROUPS_BLOCK,
                label="User groups that may rerun and stop",
                optional=True,
                element=StaticMultiSelectElement(
                    action_id=VALUE,
                    placeholder="Choose user groups",
                    options=options,
                    initial_options=initial or None,
                ),
            )
        )
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
            *operator_blocks,
        ],
    )


def connected_view(masked_secret: str, linked_account_id: str | None) -> View:
    return View(
        type="modal",
        title="Refold connected",
        close="Done",
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=(
                        f":white_check_mark: Connected with `{masked_secret}`"
                        f" (default linked account *{inline(linked_account_id or '–', 120)}*).\n"
                        "Try `/execution <execution_id>` now."
                    )
                )
            ),
        ],
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
