"""`python -m bot serve`: HTTP under uvicorn, or Socket Mode when SLACK_APP_TOKEN is set."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn

from bot.app import build_app, build_web
from bot.container import build_container
from bot.scrape_endpoint import serve_metrics_port
from bot.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings) -> int:
    if settings.socket_mode:
        return asyncio.run(_socket_mode(settings))
    container = build_container(settings)
    web = build_web(container, build_app(container))
    config = uvicorn.Config(
        web,
        host="0.0.0.0",  # noqa: S104 - a web process must listen beyond loopback
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="asyncio",
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=15,
    )
    # uvicorn turns SIGTERM/SIGINT into a graceful shutdown, which runs the lifespan's drain.
    uvicorn.Server(config).run()
    return 0


async def _socket_mode(settings: Settings) -> int:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    container = build_container(settings)
    app = build_app(container)
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    handler = AsyncSocketModeHandler(app, app_token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # connect_async keeps retrying while Slack is unreachable; SIGTERM must still end the process.
    connecting = asyncio.create_task(handler.connect_async())
    log.info("connecting to Slack in Socket Mode")
    await container.start()
    await container.start_standby_worker()
    serving_metrics = (
        asyncio.create_task(serve_metrics_port(container, settings.metrics_port, stop))
        if settings.metrics_port and settings.metrics_token
        else None
    )
    await stop.wait()
    if serving_metrics is not None:
        await serving_metrics
    connecting.cancel()
    await handler.close_async()
    await container.aclose(10.0)
    return 0
