"""Middleware: every log line of a Slack request names its workspace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.logs import bind_request


def register(app: AsyncApp) -> None:
    @app.middleware
    async def bind_log_context(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        bind_request(context.team_id or context.enterprise_id)
        await next()
