"""Uninstall and token revocation: forget everything the workspace left with the bot."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack.payloads import RevokedTokens
from bot.store.errors import StoreUnavailable
from bot.store.installations import RedisInstallationStore
from bot.usecases.alerts import AlertService
from bot.usecases.connect import ConnectService
from bot.usecases.lookup import ExecutionLookup
from bot.usecases.workspace import Workspace

log = logging.getLogger(__name__)


def register(
    app: AsyncApp,
    service: ConnectService,
    installations: RedisInstallationStore | None,
    alerts: AlertService,
    lookup: ExecutionLookup,
) -> None:
    def forget(context: AsyncBoltContext) -> Awaitable[None]:
        return forget_workspace(
            service,
            installations,
            context.enterprise_id,
            context.team_id,
            bool(context.is_enterprise_install),
            alerts,
            lookup,
        )

    @app.event("app_uninstalled")
    async def uninstalled(context: AsyncBoltContext) -> None:
        await forget(context)

    @app.event("tokens_revoked")
    async def revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        revoked = RevokedTokens.read(event)
        if revoked.bot:
            await forget(context)
        elif installations is not None:
            for user_id in revoked.users:
                await installations.async_delete_installation(
                    enterprise_id=context.enterprise_id, team_id=context.team_id, user_id=user_id
                )


async def forget_workspace(
    service: ConnectService,
    installations: RedisInstallationStore | None,
    enterprise_id: str | None,
    team_id: str | None,
    is_enterprise_install: bool,
    alerts: AlertService | None = None,
    lookup: ExecutionLookup | None = None,
) -> None:
    """Delete the installation, the Refold credentials, the remembered linked accounts, the alert
    routes and the recent lookups."""
    team = None if is_enterprise_install else team_id
    try:
        if installations is not None:
            await installations.async_delete_all(enterprise_id=enterprise_id, team_id=team)
        workspace = Workspace(team, enterprise_id)
        if alerts is not None:
            await alerts.forget(workspace)
        if lookup is not None:
            await lookup.forget_recent(workspace)
        scope = workspace.own_scope
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
