"""`GET /metrics`: Prometheus text for requests bearing METRICS_TOKEN.

Web processes serve it on PORT; a worker (or a Socket Mode process, which has no HTTP server) serves the
same on METRICS_PORT. Gauges that describe shared state (the job queue, follows) are read from Redis
when scraped, so every process reports the same figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot import metrics
from bot.container import Container
from bot.store.errors import StoreUnavailable

log = logging.getLogger(__name__)


async def refresh_gauges(c: Container) -> None:
    metrics.BACKGROUND_TASKS.set(c.tasks.pending + c.lookup.bookkeeping.pending)
    try:
        backlog = await c.jobs.backlog()
        live_follows = await c.follows.store.count_live()
    except StoreUnavailable:
        # The gauges keep their last values; the scrape still answers with every counter.
        log.warning("metrics scrape: Redis unavailable, queue and follow gauges not refreshed")
        return
    metrics.JOBS_WAITING.labels("queued").set(backlog.queued)
    metrics.JOBS_WAITING.labels("active").set(backlog.active)
    metrics.JOB_OLDEST_SECONDS.set(backlog.oldest_seconds)
    metrics.FOLLOWS_ACTIVE.set(live_follows)


def metrics_endpoint(c: Container) -> Callable[[Request], Awaitable[Response]]:
    async def serve_metrics(request: Request) -> Response:
        token = c.settings.metrics_token
        if token is None:
            return Response("Not found: set METRICS_TOKEN to serve metrics.", status_code=404)
        if not metrics.token_matches(request.headers.get("authorization"), token.get_secret_value()):
            return Response(
                "Unauthorized: send Authorization: Bearer <METRICS_TOKEN>.",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        await refresh_gauges(c)
        body, content_type = metrics.exposition()
        return Response(body, headers={"Content-Type": content_type})

    return serve_metrics


class _Unsignalled(uvicorn.Server):
    """The process's own signal handling stays in charge: this server stops only when asked."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_metrics_port(c: Container, port: int, stop: asyncio.Event) -> None:
    """Serve /metrics on `port` until `stop` is set (a worker's or Socket Mode process's)."""
    web = Starlette(routes=[Route("/metrics", metrics_endpoint(c), methods=["GET"])])
    config = uvicorn.Config(
        web,
        host="0.0.0.0",  # noqa: S104 - Prometheus scrapes from another host
        port=port,
        log_config=None,
        access_log=False,
        http="httptools",
        lifespan="off",
    )
    server = _Unsignalled(config)
    task = asyncio.create_task(server.serve())
    log.info("serving metrics on port %d", port)
    await stop.wait()
    server.should_exit = True
    await task
