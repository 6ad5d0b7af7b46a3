"""Build the Bolt app and the ASGI web app around it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.container import Container
from bot.render.messages import NOT_INSTALLED
from bot.scrape_endpoint import metrics_endpoint
from bot.settings import SlackMode
from bot.slack.authorize import RotationSafeAuthorize
from bot.slack.listeners import (
    alert_snooze_menu,
    app_home,
    card_buttons,
    commands,
    connect_form,
    incident_buttons,
    lifecycle,
    link_shared,
    log_context,
    node_output,
    redelivery,
    shortcuts,
)
from bot.slack.oauth import oauth_settings
from bot.slack.payloads import sketch
from bot.store.redis import ping
from bot.webhooks import read_capped, webhook_endpoint

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0


def register_surfaces(app: AsyncApp, c: Container) -> None:
    """One listener module per Slack surface; each `register` takes the services it uses."""
    commands.register(app, c.dispatcher, c.responder, c.resolver, c.follows, c.actions, c.alerts, c.jobs)
    shortcuts.register(app, c.dispatcher)
    card_buttons.register(app, c.dispatcher, c.responder)
    incident_buttons.register(app, c.dispatcher, c.responder)
    alert_snooze_menu.register(app, c.responder, c.alerts, c.actions, c.jobs)
    node_output.register(app, c.responder, c.lookup)
    connect_form.register(app, c.responder, c.connect)
    lifecycle.register(app, c.connect, c.installations, c.alerts, c.lookup)
    link_shared.register(app, c.dispatcher, c.settings.refold_unfurl_domains, c.settings.refold_dashboard_url)
    app_home.register(app, c.responder, app_home.HomeSources(c.resolver, c.lookup, c.follows, c.alerts))


def build_app(c: Container) -> AsyncApp:
    settings = c.settings
    client = c.slack.default
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
    installations = c.installations
    if settings.slack_mode is SlackMode.OAUTH and installations is not None:
        client_secret = (
            settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else ""
        )
        app = AsyncApp(
            **common,
            installation_store=installations,
            # Bolt takes any AsyncAuthorize here; its annotation names only plain callables.
            authorize=RotationSafeAuthorize(  # type: ignore[arg-type]
                redis=c.redis,
                store=installations,
                client_id=settings.slack_client_id or "",
                client_secret=client_secret,
                client=client,
            ),
            oauth_settings=oauth_settings(settings, c.redis, installations),
        )
    else:
        app = AsyncApp(**common)

    log_context.register(app)
    redelivery.register(app, c.seen)
    register_surfaces(app, c)
    return app


# Slack's own payloads stay far below this; anything larger is refused before it is parsed or verified.
MAX_BODY_BYTES = 1024 * 1024


def build_web(c: Container, app: AsyncApp) -> Starlette:
    settings = c.settings
    handler = AsyncSlackRequestHandler(app)

    async def slack_events(request: Request) -> Response:
        with metrics.timed(metrics.ACK_SECONDS):
            return await answer_slack(request)

    async def answer_slack(request: Request) -> Response:
        if await read_capped(request, MAX_BODY_BYTES) is None:
            log.warning("refused a request of more than %d bytes on /slack/events", MAX_BODY_BYTES)
            return Response("request body too large", status_code=413)
        # Bolt's verifier raises on a non-numeric timestamp; answer such a request as the forgery it is.
        if not request.headers.get("x-slack-request-timestamp", "").isdigit():
            response: Response = Response("invalid request", status_code=401)
        else:
            response = await handler.handle(request)
        if response.status_code == 401:
            kind, team = sketch(await request.body())
            log.warning(
                "rejected a Slack request (%s, claimed team %s): invalid or missing signature", kind, team
            )
        return response

    async def slack_oauth(request: Request) -> Response:
        if settings.slack_mode is not SlackMode.OAUTH:
            return Response(
                "Not found: this deployment serves one workspace (no OAuth install).", status_code=404
            )
        return await handler.handle(request)

    async def healthz(request: Request) -> Response:
        healthy = await ping(c.redis)
        return JSONResponse(
            {"redis": "ok" if healthy else "unavailable"}, status_code=200 if healthy else 503
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        log.info("serving Slack requests on /slack/events")
        await c.start()
        await c.start_standby_worker()
        yield
        log.info("shutting down: waiting for %d in-flight replies", c.tasks.pending)
        await c.aclose(SHUTDOWN_GRACE_SECONDS)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/slack/install", slack_oauth, methods=["GET"]),
            Route("/slack/oauth_redirect", slack_oauth, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/refold/webhooks/{route_id}", webhook_endpoint(c), methods=["POST"]),
            Route("/metrics", metrics_endpoint(c), methods=["GET"]),
        ],
        lifespan=lifespan,
    )
