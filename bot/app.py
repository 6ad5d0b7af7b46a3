"""Build the Bolt app and the ASGI web app around it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.deps import Deps
from bot.jobs import JobQueue
from bot.logs import bind_request
from bot.settings import Settings, SlackMode
from bot.slack import actions, commands, connect, lifecycle, shortcuts
from bot.slack.authorize import RotationSafeAuthorize
from bot.slack.env import SlackEnv
from bot.slack.oauth import oauth_settings
from bot.store.installations import RedisInstallationStore
from bot.store.redis import ping
from bot.tasks import BackgroundTasks

log = logging.getLogger(__name__)

# One listener module per Slack surface, each with `register(app, env)`.
SURFACES = (commands, shortcuts, actions, connect, lifecycle)

SHUTDOWN_GRACE_SECONDS = 10.0
NOT_INSTALLED = (
    ":electric_plug: Refold Executions is not installed in this workspace (any more). "
    "An admin can install it again from the bot's `/slack/install` page."
)


def make_slack_client(settings: Settings) -> AsyncWebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = AsyncWebClient(token=token, base_url=settings.slack_api_url)
    # Slack's `ratelimited` answers carry Retry-After; the SDK's handler honours it.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


def build_app(settings: Settings, deps: Deps, tasks: BackgroundTasks) -> AsyncApp:
    client = make_slack_client(settings)
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    common: dict[str, Any] = {
        "signing_secret": signing_secret,
        "client": client,
        # Listeners ack at once and hand slow work to tracked tasks: no 10 ms ack polling.
        "process_before_response": True,
        "request_verification_enabled": not settings.socket_mode,
        "user_facing_authorize_error_message": NOT_INSTALLED,
    }
    installations = None
    if settings.slack_mode is SlackMode.OAUTH:
        installations = RedisInstallationStore(deps.redis, deps.cipher)
        client_secret = (
            settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else ""
        )
        app = AsyncApp(
            **common,
            installation_store=installations,
            authorize=RotationSafeAuthorize(
                redis=deps.redis,
                store=installations,
                client_id=settings.slack_client_id or "",
                client_secret=client_secret,
                client=client,
            ),
            oauth_settings=oauth_settings(settings, deps.redis, installations),
        )
    else:
        app = AsyncApp(**common)

    @app.middleware
    async def bind_log_context(
        context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> None:
        bind_request(context.team_id or context.enterprise_id)
        await next()

    env = SlackEnv(
        deps=deps, tasks=tasks, installations=installations, jobs=JobQueue(deps.redis, deps.cipher)
    )
    for surface in SURFACES:
        surface.register(app, env)
    return app


def build_web(settings: Settings, deps: Deps, app: AsyncApp, tasks: BackgroundTasks) -> Starlette:
    handler = AsyncSlackRequestHandler(app)

    async def slack_events(request: Request) -> Response:
        # Bolt's verifier raises on a non-numeric timestamp; answer such a request as the forgery it is.
        if not request.headers.get("x-slack-request-timestamp", "").isdigit():
            return Response("invalid request", status_code=401)
        return await handler.handle(request)

    async def slack_oauth(request: Request) -> Response:
        if settings.slack_mode is not SlackMode.OAUTH:
            return Response(
                "Not found: this deployment serves one workspace (no OAuth install).", status_code=404
            )
        return await handler.handle(request)

    async def healthz(request: Request) -> Response:
        healthy = await ping(deps.redis)
        return JSONResponse(
            {"redis": "ok" if healthy else "unavailable"}, status_code=200 if healthy else 503
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        log.info("serving Slack requests on /slack/events")
        yield
        log.info("shutting down: waiting for %d in-flight replies", tasks.pending)
        await tasks.drain(SHUTDOWN_GRACE_SECONDS)
        await deps.aclose()

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/slack/install", slack_oauth, methods=["GET"]),
            Route("/slack/oauth_redirect", slack_oauth, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
