"""Uninstall and token revocation: forget everything the workspace left with the bot."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.store.errors import StoreUnavailable
from bot.store.installations import RedisInstallationStore
from bot.usecases.connect import ConnectService
from bot.usecases.workspace import Workspace

log = logging.getLogger(__name__)


def register(app: AsyncApp, service: ConnectService, installations: RedisInstallationStore | None) -> None:
    @app.event("app_uninstalled")
    async def uninstalled(context: AsyncBoltContext) -> None:
        await forget_workspace(
            service,
            installations,
            context.enterprise_id,
            context.team_id,
            bool(context.is_enterprise_install),
        )

    @app.event("tokens_revoked")
    async def revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        tokens = event.get("tokens") or {}
        if tokens.get("bot"):
            await forget_workspace(
                service,
                installations,
                context.enterprise_id,
                context.team_id,
                bool(context.is_enterprise_install),
            )
        elif installations is not None:
            for user_id in tokens.get("oauth") or []:
                await installations.async_delete_installation(
                    enterprise_id=context.enterprise_id, team_id=context.team_id, user_id=user_id
                )


async def forget_workspace(
    service: ConnectService,
    installations: RedisInstallationStore | None,
    enterprise_id: str | None,
    team_id: str | None,
    is_enterprise_install: bool,
) -> None:
    """Delete the installation, the Refold credentials and the remembered linked accounts."""
    team = None if is_enterprise_install else team_id
    try:
        if installations is not None:
            await installations.async_delete_all(enterprise_id=enterprise_id, team_id=team)
        scope = Workspace(team, enterprise_id).own_scope
        if scope is not None:
            await service.disconnect(*scope, uninstalled=True)
    except StoreUnavailable:
        # Slack does not resend these events; say so loudly so an operator can clean up by hand.
        log.error(
            "uninstall of %s/%s could not be recorded: Redis unavailable; run "
            "`python -m bot disconnect` for it",
            enterprise_id or "-",
            team_id or "-",
        )
        return
    log.info("forgot workspace %s/%s after uninstall", enterprise_id or "-", team or "-")
